//! The provider's signing key: ES256 (ECDSA P-256, RFC 7518 §3.4), published as a JWK
//! (RFC 7517) whose `kid` is its RFC 7638 thumbprint, so the same key always has the same `kid`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use p256::{
    elliptic_curve::sec1::ToEncodedPoint,
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
    SecretKey,
};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::ConfigError;

pub const ALGORITHM: Algorithm = Algorithm::ES256;

pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    x: String,
    y: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate() -> Self {
        Self::from_secret(&SecretKey::random(&mut rand::rngs::OsRng))
    }

    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let pem =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.display().to_string(), e.to_string()))?;
        let secret = SecretKey::from_pkcs8_pem(&pem).map_err(|e| {
            ConfigError::Invalid(format!("signing_key_file {}: not a PKCS#8 P-256 key: {e}", path.display()))
        })?;
        Ok(Self::from_secret(&secret))
    }

    fn from_secret(secret: &SecretKey) -> Self {
        let der = secret.to_pkcs8_der().expect("a P-256 key always encodes as PKCS#8");
        let point = secret.public_key().to_encoded_point(false);
        let x = URL_SAFE_NO_PAD.encode(point.x().expect("uncompressed point has x"));
        let y = URL_SAFE_NO_PAD.encode(point.y().expect("uncompressed point has y"));
        // RFC 7638 §3.2: the required members, in lexicographic order, without whitespace.
        let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        let decoding = DecodingKey::from_ec_components(&x, &y).expect("coordinates are valid base64url");
        Self { kid, encoding: EncodingKey::from_ec_der(der.as_bytes()), decoding, x, y }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a JWS with the given `typ` header (`JWT`, `at+jwt`, `logout+jwt`).
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> String {
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("ES256 signing does not fail")
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The public half as a JWK Set (RFC 7517 §5).
    pub fn jwks(&self) -> Value {
        json!({ "keys": [{
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        }]})
    }
}

#[cfg(test)]
mod tests {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    use super::*;

    #[test]
    fn a_key_loaded_from_a_file_keeps_its_kid_across_starts() {
        let secret = SecretKey::random(&mut rand::rngs::OsRng);
        let path = std::env::temp_dir().join(format!("idp-key-{}.pem", std::process::id()));
        std::fs::write(&path, secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        let first = SigningKey::from_pem_file(&path).unwrap();
        let second = SigningKey::from_pem_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.jwks()["keys"][0]["kid"], first.kid());

        // A token signed by one start verifies with the key of the next.
        let token = first.sign("JWT", &serde_json::json!({ "sub": "x" }));
        let mut validation = jsonwebtoken::Validation::new(ALGORITHM);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(&token, second.decoding_key(), &validation).unwrap();
    }

    #[test]
    fn generated_keys_differ_and_a_bad_file_is_a_clear_error() {
        assert_ne!(SigningKey::generate().kid(), SigningKey::generate().kid());
        let path = std::env::temp_dir().join(format!("idp-bad-key-{}.pem", std::process::id()));
        std::fs::write(&path, "not a key").unwrap();
        let error = SigningKey::from_pem_file(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(error.contains("signing_key_file"), "{error}");
    }
}

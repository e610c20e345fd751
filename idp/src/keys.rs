//! The provider's signing keys: ES256 (ECDSA P-256, RFC 7518 §3.4), each published as a JWK
//! (RFC 7517) whose `kid` is its RFC 7638 thumbprint, so the same key always has the same `kid`.
//!
//! Keys rotate (OIDC Core §10.1.1): a [`KeySet`] signs with its current key and keeps each
//! previous one in the JWK Set, and accepts it at `/userinfo`, until every token it signed has
//! expired; then the key drops out of the JWK Set. It still verifies `id_token_hint`s for a
//! while longer ([`Retirement::hint_secs`]): a hint is an ID token of a provider session, and
//! a session outlives its ID tokens; RP-Initiated Logout 1.0 §2 asks the provider to accept
//! ID tokens it issued as hints even once expired, so that a user can still sign out with the
//! session's own ID token after a rotation. Such a key is never published and never signs.
//!
//! With a state file, the keys live in it too (the current one, and each previous one with the
//! times it stops being published and stops verifying hints): the key generated at the first
//! start is the one every later start signs with, until a rotation, so the JWK Set, and every
//! token signed before a restart, stay valid across it; a rotation is on disk before its answer
//! is sent.
//!
//! Signatures are made with `ring`, whose P-256 is about twenty times faster on this kind of
//! machine than the pure-Rust signer behind `jsonwebtoken`; every refresh signs two tokens, so
//! this is most of a refresh grant's cost. Verification stays with `jsonwebtoken`, which the
//! tests also use, so each signature is checked by an independent implementation.

use std::sync::{Arc, RwLock};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, DecodingKey};
use p256::{
    elliptic_curve::sec1::ToEncodedPoint,
    pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding},
    SecretKey,
};
use ring::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    error::{ConfigError, NotSaved},
    store::{Change, Journal},
};

pub const ALGORITHM: Algorithm = Algorithm::ES256;

pub struct SigningKey {
    kid: String,
    /// The private key, PKCS#8 DER: kept only to be written to the state file.
    pkcs8: Vec<u8>,
    /// Signs; `FIXED` is the JWS encoding of an ECDSA signature, R and S of 32 bytes each
    /// (RFC 7518 §3.4).
    pair: EcdsaKeyPair,
    random: SystemRandom,
    decoding: DecodingKey,
    x: String,
    y: String,
}

/// The protected header of every JWS this provider makes.
#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
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

    /// A key as the state file keeps it.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, String> {
        let secret = SecretKey::from_pkcs8_der(der).map_err(|e| format!("not a PKCS#8 P-256 key: {e}"))?;
        Ok(Self::from_secret(&secret))
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
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
        let random = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_bytes(), &random)
            .expect("a P-256 PKCS#8 document is accepted");
        Self { kid, pkcs8: der.as_bytes().to_vec(), pair, random, decoding, x, y }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a JWS in compact serialization (RFC 7515 §7.1) with the given `typ`
    /// header (`JWT`, `at+jwt`, `logout+jwt`).
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> String {
        let header = JwsHeader { alg: "ES256", typ, kid: &self.kid };
        let header = serde_json::to_vec(&header).expect("a header serializes");
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let mut jws = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 100);
        URL_SAFE_NO_PAD.encode_string(header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
        let signature = self.pair.sign(&self.random, jws.as_bytes()).expect("ECDSA signing does not fail");
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
        jws
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The ES256 signature of a JWS signing input (`header.payload`), for the admin API's
    /// deliberately defective tokens, which need a header [`SigningKey::sign`] would not write.
    pub fn sign_input(&self, input: &[u8]) -> Vec<u8> {
        self.pair.sign(&self.random, input).expect("ECDSA signing does not fail").as_ref().to_vec()
    }

    /// The public key as SubjectPublicKeyInfo PEM (RFC 7468 §13), LF line endings and a final
    /// newline: what a library turns the JWK into, and the HMAC key of the classic key
    /// confusion attack (an HS256 token "signed" with the public key).
    pub fn public_key_pem(&self) -> String {
        let secret = SecretKey::from_pkcs8_der(&self.pkcs8).expect("the key was made from this document");
        secret.public_key().to_public_key_pem(LineEnding::LF).expect("a P-256 public key encodes as PEM")
    }

    /// The public half as a JWK (RFC 7517 §4, RFC 7518 §6.2.1).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }
}

/// The current signing key and the previous ones still needed to verify tokens in circulation.
pub struct KeySet {
    keys: RwLock<Keys>,
    /// Held through a rotation, from its write to the state file to the switch in memory.
    rotating: tokio::sync::Mutex<()>,
    /// Where rotations go to disk; `None` keeps the keys in memory.
    journal: Option<Arc<Journal>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("keys", &self.keys).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Keys {
    current: Arc<SigningKey>,
    /// Newest first.
    retiring: Vec<RetiringKey>,
}

#[derive(Debug)]
struct RetiringKey {
    key: Arc<SigningKey>,
    /// When the last token it signed expires: it is published until then.
    until: u64,
    /// Until when it still verifies an `id_token_hint` (never before `until`): from then on
    /// nothing needs it.
    hints_until: u64,
}

/// How long a key is kept once rotated out, from its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retirement {
    /// Published (and accepted at `/userinfo`): the longest lifetime of a token it signed.
    pub published_secs: u64,
    /// Still verifying `id_token_hint`s; at least `published_secs`.
    pub hint_secs: u64,
}

impl Retirement {
    /// `(published until, verifies hints until)` for a key rotated out at `now`.
    pub fn ends(self, now: u64) -> (u64, u64) {
        let until = now.saturating_add(self.published_secs);
        (until, until.max(now.saturating_add(self.hint_secs)))
    }
}

impl KeySet {
    pub fn new(key: SigningKey) -> Self {
        Self::with_keys(Keys { current: Arc::new(key), retiring: Vec::new() }, None)
    }

    /// The keys a state file holds: the current one, and the previous ones still needed, newest
    /// first, each with the times it stops being published and stops verifying hints. Later
    /// rotations go to `journal`.
    pub(crate) fn restored(current: SigningKey, retiring: Vec<(SigningKey, u64, u64)>, journal: Arc<Journal>) -> Self {
        let retiring = retiring
            .into_iter()
            .map(|(key, until, hints_until)| RetiringKey { key: Arc::new(key), until, hints_until })
            .collect();
        Self::with_keys(Keys { current: Arc::new(current), retiring }, Some(journal))
    }

    fn with_keys(keys: Keys, journal: Option<Arc<Journal>>) -> Self {
        Self { keys: RwLock::new(keys), rotating: tokio::sync::Mutex::new(()), journal }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The key that signs now.
    pub fn current(&self) -> Arc<SigningKey> {
        self.read().current.clone()
    }

    /// The published key named `kid`, if any: the current key or one still retiring at `now`.
    pub fn find(&self, kid: &str, now: u64) -> Option<Arc<SigningKey>> {
        self.published(now).into_iter().find(|key| key.kid() == kid)
    }

    /// The key named `kid` that may verify an `id_token_hint` at `now`: a published one, or one
    /// retired from the JWK Set but still within [`Retirement::hint_secs`] of its rotation.
    pub fn find_for_hint(&self, kid: &str, now: u64) -> Option<Arc<SigningKey>> {
        let keys = self.read();
        if keys.current.kid() == kid {
            return Some(keys.current.clone());
        }
        keys.retiring.iter().find(|r| r.key.kid() == kid && now < r.hints_until).map(|r| r.key.clone())
    }

    /// Every key a client may need at `now`: the current one first, then the retiring ones,
    /// newest first.
    pub fn published(&self, now: u64) -> Vec<Arc<SigningKey>> {
        let keys = self.read();
        let retiring = keys.retiring.iter().filter(|r| now < r.until).map(|r| r.key.clone());
        std::iter::once(keys.current.clone()).chain(retiring).collect()
    }

    /// The published keys as a JWK Set (RFC 7517 §5).
    pub fn jwks(&self, now: u64) -> Value {
        let keys: Vec<Value> = self.published(now).iter().map(|key| key.jwk()).collect();
        json!({ "keys": keys })
    }

    /// Makes `key` the signing key. The previous one stays published for
    /// `retirement.published_secs`, the longest lifetime of a token it may have signed up to
    /// `now`, and verifies hints for `retirement.hint_secs`.
    ///
    /// With a state file, the new key neither signs nor is published before the rotation is on
    /// disk: otherwise a token it signed could leave in a response that was itself saved before
    /// the rotation, and a crash in between would leave a client holding a token whose `kid` no
    /// JWK Set names. Rotations take turns, so that memory and the file agree on their order.
    pub async fn rotate_to(
        &self,
        key: SigningKey,
        now: u64,
        retirement: Retirement,
    ) -> Result<Arc<SigningKey>, NotSaved> {
        let key = Arc::new(key);
        let (until, hints_until) = retirement.ends(now);
        let _turn = self.rotating.lock().await;
        if let Some(journal) = &self.journal {
            let previous_kid = self.current().kid().to_owned();
            journal
                .append(Change::KeyRotated {
                    kid: key.kid().to_owned(),
                    pkcs8: key.pkcs8_der().to_vec(),
                    previous_kid,
                    published_until: until,
                    hints_until,
                    now,
                })
                .saved()
                .await?;
        }
        let mut keys = self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = std::mem::replace(&mut keys.current, key.clone());
        keys.retiring.retain(|r| now < r.hints_until);
        keys.retiring.insert(0, RetiringKey { key: previous, until, hints_until });
        Ok(key)
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
        assert_eq!(first.jwk()["kid"], first.kid());

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

    #[test]
    fn a_signature_verifies_with_an_independent_implementation() {
        let key = SigningKey::generate();
        let token = key.sign("at+jwt", &serde_json::json!({ "sub": "x", "n": 1 }));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(
            (header.alg, header.typ.as_deref(), header.kid.as_deref()),
            (ALGORITHM, Some("at+jwt"), Some(key.kid()))
        );
        let mut validation = jsonwebtoken::Validation::new(ALGORITHM);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(&token, key.decoding_key(), &validation).unwrap().claims;
        assert_eq!(claims, serde_json::json!({ "sub": "x", "n": 1 }));
        let other = SigningKey::generate();
        assert!(jsonwebtoken::decode::<Value>(&token, other.decoding_key(), &validation).is_err());
    }

    #[tokio::test]
    async fn a_rotated_out_key_stays_published_until_its_tokens_have_expired() {
        let first = SigningKey::generate();
        let first_kid = first.kid().to_owned();
        let keys = KeySet::new(first);
        let retirement = Retirement { published_secs: 300, hint_secs: 300 };
        let second = keys.rotate_to(SigningKey::generate(), 1000, retirement).await.unwrap();
        assert_eq!(keys.current().kid(), second.kid());
        let kids = |now| keys.published(now).iter().map(|k| k.kid().to_owned()).collect::<Vec<_>>();
        assert_eq!(kids(1299), [second.kid().to_owned(), first_kid.clone()]);
        assert!(keys.find(&first_kid, 1299).is_some());
        assert_eq!(kids(1300), [second.kid().to_owned()]);
        assert!(keys.find(&first_kid, 1300).is_none());
        assert_eq!(keys.jwks(1300)["keys"].as_array().unwrap().len(), 1);

        // A later rotation forgets the keys nobody needs any more.
        keys.rotate_to(SigningKey::generate(), 1400, retirement).await.unwrap();
        assert_eq!(keys.read().retiring.len(), 1);
    }

    #[tokio::test]
    async fn a_key_out_of_the_jwks_still_verifies_hints_until_its_hint_window_ends() {
        let first = SigningKey::generate();
        let first_kid = first.kid().to_owned();
        let keys = KeySet::new(first);
        let retirement = Retirement { published_secs: 300, hint_secs: 28800 };
        let second = keys.rotate_to(SigningKey::generate(), 1000, retirement).await.unwrap();
        assert!(keys.find_for_hint(second.kid(), 1000).is_some(), "the current key");
        assert!(keys.find(&first_kid, 1300).is_none(), "no longer published");
        assert_eq!(keys.published(1300).len(), 1);
        assert!(keys.find_for_hint(&first_kid, 1300).is_some(), "but it still verifies a hint");
        assert!(keys.find_for_hint(&first_kid, 29799).is_some());
        assert!(keys.find_for_hint(&first_kid, 29800).is_none());
        // Kept through a rotation within its hint window, forgotten by one after it.
        keys.rotate_to(SigningKey::generate(), 2000, retirement).await.unwrap();
        assert!(keys.find_for_hint(&first_kid, 2000).is_some());
        keys.rotate_to(SigningKey::generate(), 29800, retirement).await.unwrap();
        assert!(keys.read().retiring.iter().all(|r| r.key.kid() != first_kid));
        // A hint window shorter than publication is publication.
        assert_eq!(Retirement { published_secs: 300, hint_secs: 10 }.ends(1000), (1300, 1300));
    }
}

//! The provider's signing keys: ES256 (ECDSA P-256, RFC 7518 §3.4), which signs every access
//! token and, by default, ID and logout tokens; and RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC
//! 7518 §3.3), for the ID and logout tokens of clients registered with
//! `id_token_signed_response_alg = "RS256"` (OIDC Core §15.1: every provider must be able to
//! sign RS256, and discovery must say so). Each key is published as a JWK (RFC 7517) whose `kid`
//! is its RFC 7638 thumbprint, so the same key always has the same `kid`.
//!
//! Keys rotate (OIDC Core §10.1.1): a [`KeySet`] signs with its current key of each algorithm and
//! keeps each previous one in the JWK Set, and accepts it at `/userinfo`, until every token it
//! signed has expired; then the key drops out of the JWK Set. It still verifies `id_token_hint`s
//! for a while longer ([`Retirement::hint_secs`]): a hint is an ID token of a provider session,
//! and a session outlives its ID tokens; RP-Initiated Logout 1.0 §2 asks the provider to accept
//! ID tokens it issued as hints even once expired, so that a user can still sign out with the
//! session's own ID token after a rotation. Such a key is never published and never signs.
//!
//! With a state file, the keys live in it too (the current ones, and each previous one with the
//! times it stops being published and stops verifying hints): the keys generated at the first
//! start are the ones every later start signs with, until a rotation, so the JWK Set, and every
//! token signed before a restart, stay valid across it; a rotation is on disk before its answer
//! is sent.
//!
//! Signatures are made with `ring`, whose P-256 is about twenty times faster on this kind of
//! machine than the pure-Rust signer behind `jsonwebtoken`; every refresh signs two tokens, so
//! this is most of a refresh grant's cost. `ring` cannot make RSA keys: the `rsa` crate makes
//! them (and reads their public half), `ring` signs with them. Verification stays with
//! `jsonwebtoken`, which the tests also use, so each signature is checked by an independent
//! implementation.

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
    signature::{EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256},
};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    error::{ConfigError, NotSaved},
    store::{Change, Journal},
};

/// The algorithm of every access token, and of ID and logout tokens unless a client asks for
/// another.
pub const ALGORITHM: Algorithm = Algorithm::ES256;

/// The size of the RSA keys this provider makes (RFC 7518 §3.3: at least 2048 bits).
const RSA_BITS: usize = 2048;

/// How ID and logout tokens are signed for a client (OIDC Registration's
/// `id_token_signed_response_alg`; ES256 here unless the client's entry says otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum SigningAlg {
    #[default]
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "RS256")]
    Rs256,
}

impl SigningAlg {
    /// Every algorithm this provider signs with, in the order discovery lists them.
    pub const ALL: [SigningAlg; 2] = [SigningAlg::Es256, SigningAlg::Rs256];

    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
        }
    }
}

pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    /// The private key, PKCS#8 DER: kept only to be written to the state file.
    pkcs8: Vec<u8>,
    pair: KeyPair,
    random: SystemRandom,
    decoding: DecodingKey,
    /// The public half as a JWK.
    jwk: Value,
}

enum KeyPair {
    /// Signs with `FIXED`, the JWS encoding of an ECDSA signature: R and S of 32 bytes each
    /// (RFC 7518 §3.4).
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
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
        f.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new ES256 key.
    pub fn generate() -> Self {
        Self::from_secret(&SecretKey::random(&mut rand::rngs::OsRng))
    }

    /// A new key for `alg`. An RSA key takes a moment to make (a few hundred milliseconds).
    pub fn generate_for(alg: SigningAlg) -> Self {
        match alg {
            SigningAlg::Es256 => Self::generate(),
            SigningAlg::Rs256 => {
                let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)
                    .expect("an RSA key of a standard size can be made");
                let der = rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(&private).expect("an RSA key encodes as PKCS#8");
                Self::from_rsa(der.as_bytes(), &private).expect("a key made here is accepted")
            }
        }
    }

    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let pem =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.display().to_string(), e.to_string()))?;
        let secret = SecretKey::from_pkcs8_pem(&pem).map_err(|e| {
            ConfigError::Invalid(format!("signing_key_file {}: not a PKCS#8 P-256 key: {e}", path.display()))
        })?;
        Ok(Self::from_secret(&secret))
    }

    /// A key as the state file keeps it: P-256 or RSA, PKCS#8 DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, String> {
        if let Ok(secret) = SecretKey::from_pkcs8_der(der) {
            return Ok(Self::from_secret(&secret));
        }
        let private = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_der(der)
            .map_err(|e| format!("neither a PKCS#8 P-256 nor an RSA key: {e}"))?;
        Self::from_rsa(der, &private)
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    fn from_secret(secret: &SecretKey) -> Self {
        let der = secret.to_pkcs8_der().expect("a P-256 key always encodes as PKCS#8");
        let point = secret.public_key().to_encoded_point(false);
        let x = URL_SAFE_NO_PAD.encode(point.x().expect("uncompressed point has x"));
        let y = URL_SAFE_NO_PAD.encode(point.y().expect("uncompressed point has y"));
        // RFC 7638 §3.2: the required members, in lexicographic order, without whitespace.
        let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#));
        let decoding = DecodingKey::from_ec_components(&x, &y).expect("coordinates are valid base64url");
        let random = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_bytes(), &random)
            .expect("a P-256 PKCS#8 document is accepted");
        let jwk = json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256" });
        Self {
            kid,
            alg: SigningAlg::Es256,
            pkcs8: der.as_bytes().to_vec(),
            pair: KeyPair::Ec(pair),
            random,
            decoding,
            jwk,
        }
    }

    fn from_rsa(der: &[u8], private: &rsa::RsaPrivateKey) -> Result<Self, String> {
        let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
        let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
        let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|e| format!("an unusable RSA key: {e}"))?;
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| format!("an RSA key ring does not accept: {e}"))?;
        let jwk = json!({ "kty": "RSA", "n": n, "e": e, "kid": kid, "use": "sig", "alg": "RS256" });
        Ok(Self {
            kid,
            alg: SigningAlg::Rs256,
            pkcs8: der.to_vec(),
            pair: KeyPair::Rsa(pair),
            random: SystemRandom::new(),
            decoding,
            jwk,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a JWS in compact serialization (RFC 7515 §7.1) with the given `typ`
    /// header (`JWT`, `at+jwt`, `logout+jwt`).
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> String {
        let header = JwsHeader { alg: self.alg.name(), typ, kid: &self.kid };
        let header = serde_json::to_vec(&header).expect("a header serializes");
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let mut jws = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 400);
        URL_SAFE_NO_PAD.encode_string(header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
        let signature = self.sign_input(jws.as_bytes());
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        jws
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The signature of a JWS signing input (`header.payload`) by this key's algorithm; also for
    /// the admin API's deliberately defective tokens, which need a header [`SigningKey::sign`]
    /// would not write.
    pub fn sign_input(&self, input: &[u8]) -> Vec<u8> {
        match &self.pair {
            KeyPair::Ec(pair) => pair.sign(&self.random, input).expect("ECDSA signing does not fail").as_ref().to_vec(),
            KeyPair::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.random, input, &mut signature).expect("RSA signing does not fail");
                signature
            }
        }
    }

    /// The public key as SubjectPublicKeyInfo PEM (RFC 7468 §13), LF line endings and a final
    /// newline: what a library turns the JWK into, and the HMAC key of the classic key
    /// confusion attack (an HS256 token "signed" with the public key).
    pub fn public_key_pem(&self) -> String {
        match &self.pair {
            KeyPair::Ec(_) => {
                let secret = SecretKey::from_pkcs8_der(&self.pkcs8).expect("the key was made from this document");
                secret.public_key().to_public_key_pem(LineEnding::LF).expect("a P-256 public key encodes as PEM")
            }
            KeyPair::Rsa(_) => {
                let private = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_der(&self.pkcs8)
                    .expect("the key was made from this document");
                rsa::pkcs8::EncodePublicKey::to_public_key_pem(&private.to_public_key(), LineEnding::LF)
                    .expect("an RSA public key encodes as PEM")
            }
        }
    }

    /// The public half as a JWK (RFC 7517 §4; RFC 7518 §6.2.1 and §6.3.1).
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }
}

/// A JWK's RFC 7638 thumbprint, from its required members as the RFC serializes them.
fn thumbprint(required_members: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(required_members.as_bytes()))
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
    /// The ES256 key: every access token, and the ID and logout tokens of most clients.
    current: Arc<SigningKey>,
    /// The RS256 key, for the clients that ask for it.
    current_rsa: Arc<SigningKey>,
    /// Newest first, of both algorithms.
    retiring: Vec<RetiringKey>,
}

impl Keys {
    fn current_for(&self, alg: SigningAlg) -> &Arc<SigningKey> {
        match alg {
            SigningAlg::Es256 => &self.current,
            SigningAlg::Rs256 => &self.current_rsa,
        }
    }
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
    /// `key` signs ES256; an RS256 key is made beside it.
    pub fn new(key: SigningKey) -> Self {
        let rsa = SigningKey::generate_for(SigningAlg::Rs256);
        Self::with_keys(Keys { current: Arc::new(key), current_rsa: Arc::new(rsa), retiring: Vec::new() }, None)
    }

    /// The keys a state file holds: the current one of each algorithm, and the previous ones
    /// still needed, newest first, each with the times it stops being published and stops
    /// verifying hints. Later rotations go to `journal`.
    pub(crate) fn restored(
        current: SigningKey,
        current_rsa: SigningKey,
        retiring: Vec<(SigningKey, u64, u64)>,
        journal: Arc<Journal>,
    ) -> Self {
        let retiring = retiring
            .into_iter()
            .map(|(key, until, hints_until)| RetiringKey { key: Arc::new(key), until, hints_until })
            .collect();
        Self::with_keys(
            Keys { current: Arc::new(current), current_rsa: Arc::new(current_rsa), retiring },
            Some(journal),
        )
    }

    fn with_keys(keys: Keys, journal: Option<Arc<Journal>>) -> Self {
        Self { keys: RwLock::new(keys), rotating: tokio::sync::Mutex::new(()), journal }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The ES256 key that signs now.
    pub fn current(&self) -> Arc<SigningKey> {
        self.read().current.clone()
    }

    /// The key of `alg` that signs now.
    pub fn current_for(&self, alg: SigningAlg) -> Arc<SigningKey> {
        self.read().current_for(alg).clone()
    }

    /// The published key named `kid`, if any: the current key or one still retiring at `now`.
    pub fn find(&self, kid: &str, now: u64) -> Option<Arc<SigningKey>> {
        self.published(now).into_iter().find(|key| key.kid() == kid)
    }

    /// The key named `kid` that may verify an `id_token_hint` at `now`: a published one, or one
    /// retired from the JWK Set but still within [`Retirement::hint_secs`] of its rotation.
    pub fn find_for_hint(&self, kid: &str, now: u64) -> Option<Arc<SigningKey>> {
        let keys = self.read();
        if let Some(current) = [&keys.current, &keys.current_rsa].into_iter().find(|key| key.kid() == kid) {
            return Some(current.clone());
        }
        keys.retiring.iter().find(|r| r.key.kid() == kid && now < r.hints_until).map(|r| r.key.clone())
    }

    /// Every key a client may need at `now`: the current ones first (ES256, RS256), then the
    /// retiring ones, newest first.
    pub fn published(&self, now: u64) -> Vec<Arc<SigningKey>> {
        let keys = self.read();
        let retiring = keys.retiring.iter().filter(|r| now < r.until).map(|r| r.key.clone());
        [keys.current.clone(), keys.current_rsa.clone()].into_iter().chain(retiring).collect()
    }

    /// The published keys as a JWK Set (RFC 7517 §5).
    pub fn jwks(&self, now: u64) -> Value {
        let keys: Vec<Value> = self.published(now).iter().map(|key| key.jwk()).collect();
        json!({ "keys": keys })
    }

    /// Makes `key` the signing key of its algorithm. The previous one stays published for
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
            let previous_kid = self.current_for(key.alg()).kid().to_owned();
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
        let slot = match key.alg() {
            SigningAlg::Es256 => &mut keys.current,
            SigningAlg::Rs256 => &mut keys.current_rsa,
        };
        let previous = std::mem::replace(slot, key.clone());
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
        let rsa_kid = keys.current_for(SigningAlg::Rs256).kid().to_owned();
        let kids = |now| keys.published(now).iter().map(|k| k.kid().to_owned()).collect::<Vec<_>>();
        assert_eq!(kids(1299), [second.kid().to_owned(), rsa_kid.clone(), first_kid.clone()]);
        assert!(keys.find(&first_kid, 1299).is_some());
        assert_eq!(kids(1300), [second.kid().to_owned(), rsa_kid]);
        assert!(keys.find(&first_kid, 1300).is_none());
        assert_eq!(keys.jwks(1300)["keys"].as_array().unwrap().len(), 2);

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
        assert_eq!(keys.published(1300).len(), 2, "the current ES256 and RS256 keys");
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

    fn verify(token: &str, key: &SigningKey, alg: Algorithm) -> Result<Value, jsonwebtoken::errors::Error> {
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(token, key.decoding_key(), &validation).map(|data| data.claims)
    }

    #[test]
    fn an_rs256_key_signs_what_an_independent_implementation_verifies_from_its_jwk() {
        let key = SigningKey::generate_for(SigningAlg::Rs256);
        let token = key.sign("JWT", &serde_json::json!({ "sub": "x" }));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!((header.alg, header.kid.as_deref()), (Algorithm::RS256, Some(key.kid())));
        // From the published JWK alone, as a client would.
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
        let from_jwk = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(&token, &from_jwk, &validation).unwrap().claims;
        assert_eq!(claims, serde_json::json!({ "sub": "x" }));
        assert_eq!((key.jwk()["kty"].as_str(), key.jwk()["alg"].as_str()), (Some("RSA"), Some("RS256")));
        // Never taken for ES256, nor verified by another RSA key.
        assert!(verify(&token, &key, Algorithm::ES256).is_err());
        assert!(verify(&token, &SigningKey::generate_for(SigningAlg::Rs256), Algorithm::RS256).is_err());
        // The state file's copy is the same key: same kid, and it verifies the token.
        let restored = SigningKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
        assert_eq!((restored.kid(), restored.alg()), (key.kid(), SigningAlg::Rs256));
        verify(&token, &restored, Algorithm::RS256).unwrap();
        // The kid is the RFC 7638 thumbprint of the JWK's required members.
        let members = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            key.jwk()["e"].as_str().unwrap(),
            key.jwk()["n"].as_str().unwrap()
        );
        assert_eq!(key.kid(), thumbprint(&members));
    }

    #[tokio::test]
    async fn rotating_one_algorithm_leaves_the_other_signing() {
        let keys = KeySet::new(SigningKey::generate());
        let (es, rs) = (keys.current().kid().to_owned(), keys.current_for(SigningAlg::Rs256).kid().to_owned());
        let retirement = Retirement { published_secs: 300, hint_secs: 300 };
        let new_rs = keys.rotate_to(SigningKey::generate_for(SigningAlg::Rs256), 1000, retirement).await.unwrap();
        assert_eq!(keys.current().kid(), es, "the ES256 key still signs");
        assert_eq!(keys.current_for(SigningAlg::Rs256).kid(), new_rs.kid());
        assert!(keys.find(&rs, 1299).is_some(), "the old RS256 key stays published");
        assert!(keys.find_for_hint(&rs, 1299).is_some() && keys.find_for_hint(new_rs.kid(), 1299).is_some());
        assert!(keys.find(&rs, 1300).is_none());
    }
}

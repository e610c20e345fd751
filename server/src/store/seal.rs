//! Token sets are sealed before they reach any store: XChaCha20-Poly1305 (an AEAD, from
//! RustCrypto), a random 192-bit nonce per write, and the signed-in session's key as associated
//! data, so that a sealed record copied under another session's key does not open.
//!
//! `SESSION_SEAL_KEYS` holds one or more 256-bit keys: the first seals, every one unseals, so a
//! new key can be put first and the old one dropped once every session has been rewritten (each
//! renewal rewrites its session). Without it, a key is generated once and kept in the data
//! directory (development).
//!
//! A sealed record: `b"S1"`, the sealing key's id (the first 8 bytes of its SHA-256), the
//! nonce, the ciphertext with its tag.

use std::path::Path;

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use chacha20poly1305::{
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
    XChaCha20Poly1305, XNonce,
};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 2] = b"S1";
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;

/// A 256-bit sealing key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

impl SealKey {
    /// Base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(text))
            .map_err(|_| "a key is not base64".to_owned())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| "a key must be 32 bytes (256 bits)".to_owned())?;
        Ok(Self(bytes))
    }

    pub fn generate() -> Self {
        Self(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Reads the key kept at `path`, or generates one and keeps it there (readable by this user
    /// only).
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                write_private(path, &key.to_base64()).map_err(|e| format!("{}: {e}", path.display()))?;
                tracing::info!(path = %path.display(), "generated a session seal key (set SESSION_SEAL_KEYS in production)");
                Ok(key)
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Why a sealed record did not open. Each ends that one session, never the request with a 500.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnsealError {
    #[error("not a sealed record")]
    Malformed,
    #[error("sealed under a key that is not in SESSION_SEAL_KEYS")]
    UnknownKey,
    #[error("the record or its associated data was tampered with")]
    Tampered,
}

pub struct Sealer {
    /// The first seals; all unseal.
    keys: Vec<([u8; KEY_ID_LEN], XChaCha20Poly1305)>,
}

impl Sealer {
    pub fn new(keys: &[SealKey]) -> Self {
        assert!(!keys.is_empty(), "at least one seal key");
        let keys = keys
            .iter()
            .map(|key| {
                let mut id = [0u8; KEY_ID_LEN];
                id.copy_from_slice(&Sha256::digest(key.0)[..KEY_ID_LEN]);
                (id, XChaCha20Poly1305::new(&key.0.into()))
            })
            .collect();
        Self { keys }
    }

    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Vec<u8> {
        let (id, cipher) = &self.keys[0];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad: associated_data })
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory sizes");
        let mut sealed = Vec::with_capacity(MAGIC.len() + KEY_ID_LEN + NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn unseal(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, UnsealError> {
        let rest = sealed.strip_prefix(MAGIC.as_slice()).ok_or(UnsealError::Malformed)?;
        if rest.len() < KEY_ID_LEN + NONCE_LEN {
            return Err(UnsealError::Malformed);
        }
        let (id, rest) = rest.split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| UnsealError::Malformed)?;
        let (_, cipher) = self.keys.iter().find(|(key_id, _)| key_id == id).ok_or(UnsealError::UnknownKey)?;
        cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: associated_data })
            .map_err(|_| UnsealError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_opens_only_with_its_associated_data_and_a_listed_key() {
        let (old, new) = (SealKey::generate(), SealKey::generate());
        let sealed = Sealer::new(std::slice::from_ref(&old)).seal(b"refresh token", b"session-1");
        assert!(!sealed.windows(13).any(|w| w == b"refresh token"), "no plaintext in the record");

        // Rotation: the new key seals, the old one still unseals.
        let rotated = Sealer::new(&[new.clone(), old]);
        assert_eq!(rotated.unseal(&sealed, b"session-1").unwrap(), b"refresh token");
        assert_eq!(rotated.unseal(&sealed, b"session-2"), Err(UnsealError::Tampered));
        assert_eq!(Sealer::new(&[new]).unseal(&sealed, b"session-1"), Err(UnsealError::UnknownKey));

        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(rotated.unseal(&tampered, b"session-1"), Err(UnsealError::Tampered));
        assert_eq!(rotated.unseal(b"S1short", b"session-1"), Err(UnsealError::Malformed));
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes_only() {
        let key = SealKey::generate();
        assert_eq!(SealKey::parse(&key.to_base64()).unwrap(), key);
        assert_eq!(SealKey::parse(&STANDARD.encode(key.0)).unwrap(), key);
        assert!(SealKey::parse("c2hvcnQ").is_err());
        assert!(SealKey::parse("not base64!").is_err());
    }

    #[test]
    fn a_generated_key_is_kept_and_read_back() {
        let dir = std::env::temp_dir().join(format!("seal-key-{}", std::process::id()));
        let path = dir.join("seal.key");
        let first = SealKey::load_or_create(&path).unwrap();
        assert!(path.exists(), "kept in the file");
        assert_eq!(SealKey::load_or_create(&path).unwrap(), first);
        let elsewhere = SealKey::load_or_create(&dir.join("other.key")).unwrap();
        assert_ne!(elsewhere, first, "generated, not a constant");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

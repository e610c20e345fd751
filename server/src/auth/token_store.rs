//! Signed-in sessions and their tokens, kept apart from the browser's session record.
//!
//! tower-sessions loads a copy of the browser's session record with each request and writes it
//! back at the end if it changed. Tokens kept there could be overwritten by any slower request
//! that started before a renewal: the rotated refresh token lost, the retired one restored, and
//! the next renewal a reuse that makes the provider revoke the whole family. So the browser's
//! record holds only a [`SessionKey`], and the tokens live here, where a renewal replaces them
//! in one step and every reader sees either the old set or the new one.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::record::AuthenticatedSession;
use crate::unix_now;

/// A signed-in session that nobody has used for this long is forgotten (as its cookie is).
pub const IDLE_TIMEOUT_SECS: u64 = 8 * 3600;

/// The handle from a browser's session to its signed-in session: 256 random bits, server-side
/// only (it lives in the session store, never in the cookie).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionKey(String);

impl SessionKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

#[derive(Default)]
pub struct TokenStore {
    sessions: Mutex<HashMap<SessionKey, Entry>>,
}

struct Entry {
    session: Arc<AuthenticatedSession>,
    last_used: u64,
}

impl TokenStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionKey, Entry>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &SessionKey) -> Option<Arc<AuthenticatedSession>> {
        let mut sessions = self.lock();
        let entry = sessions.get_mut(key)?;
        entry.last_used = unix_now();
        Some(entry.session.clone())
    }

    pub fn insert(&self, key: SessionKey, session: AuthenticatedSession) {
        let now = unix_now();
        let mut sessions = self.lock();
        sessions.retain(|_, entry| now < entry.last_used + IDLE_TIMEOUT_SECS);
        sessions.insert(key, Entry { session: Arc::new(session), last_used: now });
    }

    /// Replaces the session under `key` if it is still there; `false` if it was signed out
    /// meanwhile, which a renewal must not undo.
    pub fn replace(&self, key: &SessionKey, session: AuthenticatedSession) -> bool {
        match self.lock().get_mut(key) {
            Some(entry) => {
                entry.session = Arc::new(session);
                entry.last_used = unix_now();
                true
            }
            None => false,
        }
    }

    pub fn remove(&self, key: &SessionKey) -> Option<Arc<AuthenticatedSession>> {
        self.lock().remove(key).map(|entry| entry.session)
    }
}

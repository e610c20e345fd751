//! Signed-in sessions and their tokens, kept apart from the browser's session record, and sealed.
//!
//! tower-sessions loads a copy of the browser's session record with each request and writes it
//! back at the end. Tokens kept there could be overwritten by any slower request that started
//! before a renewal: the rotated refresh token lost, the retired one restored, and the next
//! renewal a reuse that makes the provider revoke the whole family. So the browser's record
//! holds only a [`SessionKey`], and the token set lives under `tokens:{key}`, sealed
//! ([`Sealer`]) with the key as associated data, and replaced only by compare-and-set against
//! the exact record a renewal started from: a renewal never overwrites a newer one.
//!
//! The sign-ins in flight, which the browser's record does hold, are sealed by the same keys: a
//! PKCE verifier and a nonce are secrets too, for the ten minutes a sign-in may take.

use std::sync::Arc;

use app::auth::JournalEntry;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::record::{AuthenticatedSession, PendingLogin};
use crate::store::{
    decode_error, now_ms,
    seal::{Sealer, UnsealError},
    Kv, StoreError,
};

/// A signed-in session that has not been written (signed in, renewed) for this long is
/// forgotten, as its idle browser session is.
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

    fn store_key(&self) -> String {
        format!("tokens:{}", self.0)
    }

    /// The lock key of this session's renewal.
    pub fn lock_key(&self) -> String {
        format!("lock:renew:{}", self.0)
    }

    /// What names this session on the event bus: a hash of the key, so the bus (Redis pub/sub)
    /// never carries the handle itself.
    pub fn public_id(&self) -> String {
        crate::store::digest_name(self.0.as_bytes())
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

/// A token set as it was read: the session, and the sealed record it came from, which a later
/// replacement compares against.
#[derive(Clone)]
pub struct StoredSession {
    pub session: Arc<AuthenticatedSession>,
    sealed: Arc<Vec<u8>>,
}

impl StoredSession {
    /// Whether `other` has the same tokens (no renewal in between). A journal line written
    /// meanwhile does not count as a renewal.
    pub fn same_tokens(&self, other: &StoredSession) -> bool {
        let (mine, theirs) = (&self.session.tokens, &other.session.tokens);
        mine.access_token.secret() == theirs.access_token.secret()
            && mine.access_token_expires_at == theirs.access_token_expires_at
    }
}

/// What binds a sealed list of sign-ins in flight to that use: it opens as nothing else.
const PENDING_ASSOCIATED_DATA: &[u8] = b"sign-ins in flight";

pub struct TokenStore {
    kv: Arc<Kv>,
    sealer: Sealer,
}

impl TokenStore {
    pub fn new(kv: Arc<Kv>, sealer: Sealer) -> Self {
        Self { kv, sealer }
    }

    fn seal(&self, key: &SessionKey, session: &AuthenticatedSession) -> Vec<u8> {
        let json = serde_json::to_vec(session).expect("a session always serialises");
        self.sealer.seal(&json, key.0.as_bytes())
    }

    /// Marks the `state` of a sign-in as used, once for all instances and requests: `false` if it
    /// already was. The browser's record alone cannot say so: two callbacks at once (a redirect
    /// delivered twice, a quick reload) each read it before either writes it back.
    pub async fn use_state_once(&self, state: &str, until_ms: u64) -> Result<bool, StoreError> {
        let name = format!("used-state:{}", crate::store::digest_name(state.as_bytes()));
        self.kv.compare_and_set(&name, None, b"1".to_vec(), until_ms).await
    }

    /// The sign-ins in flight of one browser, sealed for its session record.
    pub fn seal_pending(&self, pending: &[PendingLogin]) -> String {
        let json = serde_json::to_vec(pending).expect("sign-ins in flight always serialise");
        URL_SAFE_NO_PAD.encode(self.sealer.seal(&json, PENDING_ASSOCIATED_DATA))
    }

    /// What [`Self::seal_pending`] sealed. Sign-ins that do not open (tampered with, or sealed
    /// under a key no longer listed) are dropped: their callbacks fail as an unknown `state`, and
    /// the user signs in again.
    pub fn open_pending(&self, sealed: &str) -> Vec<PendingLogin> {
        let opened = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| UnsealError::Malformed)
            .and_then(|sealed| self.sealer.unseal(&sealed, PENDING_ASSOCIATED_DATA))
            .map(|json| serde_json::from_slice(&json));
        match opened {
            Ok(Ok(pending)) => pending,
            Ok(Err(error)) => {
                let error = decode_error(&error);
                tracing::warn!(%error, "the sign-ins in flight opened but are not sign-ins; they are dropped");
                Vec::new()
            }
            Err(error) => {
                tracing::warn!(%error, "the sign-ins in flight did not open; they are dropped");
                Vec::new()
            }
        }
    }

    fn expiry() -> u64 {
        now_ms() + IDLE_TIMEOUT_SECS * 1000
    }

    /// The signed-in session under `key`. One that does not open reads as absent: that session
    /// is signed out, and the reason logged. A tampered or malformed record is deleted; one
    /// sealed under a key this instance does not list is left alone, since an instance that has
    /// the key (in the middle of a rolling key rotation) may still use it.
    pub async fn get(&self, key: &SessionKey) -> Result<Option<StoredSession>, StoreError> {
        let Some(sealed) = self.kv.get(&key.store_key()).await? else {
            return Ok(None);
        };
        let json = match self.sealer.unseal(&sealed, key.0.as_bytes()) {
            Ok(json) => json,
            Err(UnsealError::UnknownKey) => {
                tracing::warn!(
                    "a token set is sealed under a key not in SESSION_SEAL_KEYS; that session is signed out here"
                );
                return Ok(None);
            }
            Err(error) => {
                tracing::warn!(%error, "a token set did not open; that session is signed out");
                self.kv.delete(&key.store_key()).await?;
                return Ok(None);
            }
        };
        match serde_json::from_slice::<AuthenticatedSession>(&json) {
            Ok(session) => Ok(Some(StoredSession { session: Arc::new(session), sealed: Arc::new(sealed) })),
            Err(error) => {
                let error = decode_error(&error);
                tracing::warn!(%error, "a token set opened but is not one; that session is signed out");
                self.kv.delete(&key.store_key()).await?;
                Ok(None)
            }
        }
    }

    pub async fn insert(&self, key: &SessionKey, session: &AuthenticatedSession) -> Result<(), StoreError> {
        self.kv.set(&key.store_key(), self.seal(key, session), Self::expiry()).await?;
        self.index(key, session).await
    }

    /// Replaces `previous` by `next`; `false` (and nothing written) if the record is no longer
    /// `previous`: signed out, or renewed by someone else meanwhile.
    pub async fn replace(
        &self,
        key: &SessionKey,
        previous: &StoredSession,
        next: &AuthenticatedSession,
    ) -> Result<bool, StoreError> {
        let replaced = self
            .kv
            .compare_and_set(&key.store_key(), Some(&previous.sealed), self.seal(key, next), Self::expiry())
            .await?;
        // The record is written: its index failing now must not read as a failed write (the
        // caller would try again over a record that moved on). The next write or touch of the
        // session indexes it again.
        if replaced {
            if let Err(error) = self.index(key, next).await {
                tracing::warn!(%error, "a session was written, but not its logout index; indexed at its next write");
            }
        }
        Ok(replaced)
    }

    /// Moves the idle expiry of the token set and its logout index to [`IDLE_TIMEOUT_SECS`] from
    /// now, as the browser's session record's is moved: a provider whose access tokens outlive
    /// the session's idle timeout leaves nothing to renew, so nothing else would. Only over
    /// `stored` as it was read: a record signed out or renewed meanwhile is left as it is. Sealed
    /// again, with the first seal key: a session kept alive without renewals must not stay under
    /// a key that a rotation drops after the longest idle time.
    pub async fn touch(&self, key: &SessionKey, stored: &StoredSession) -> Result<(), StoreError> {
        let sealed = self.seal(key, &stored.session);
        if self.kv.compare_and_set(&key.store_key(), Some(&stored.sealed), sealed, Self::expiry()).await? {
            if let Err(error) = self.index(key, &stored.session).await {
                tracing::warn!(%error, "a session's logout index could not be kept alive; it is at the next write");
            }
        }
        Ok(())
    }

    /// Writes `change(record)` over the record, starting from `from`. When another write came
    /// first (a journal line, a silent renew), `change` is applied again to the record as it is
    /// now, and may decline it (`None`). `false` if nothing was written: signed out meanwhile, or
    /// declined. Lost to other writers every time is an error, as a store that failed would be:
    /// the change still stands, and a caller may try again.
    pub async fn update(
        &self,
        key: &SessionKey,
        from: StoredSession,
        change: impl Fn(&AuthenticatedSession) -> Option<AuthenticatedSession>,
    ) -> Result<bool, StoreError> {
        let mut current = from;
        for _ in 0..5 {
            let Some(next) = change(&current.session) else { return Ok(false) };
            if self.replace(key, &current, &next).await? {
                return Ok(true);
            }
            match self.get(key).await? {
                Some(now) => current = now,
                None => return Ok(false),
            }
        }
        Err(StoreError("too many writes to one session at once".into()))
    }

    /// Adds `entry` to the session's journal, best effort: a journal that misses a line is no
    /// reason to fail what happened, so a store error is logged, not returned.
    pub async fn note(&self, key: &SessionKey, entry: JournalEntry) {
        let noted = match self.get(key).await {
            Ok(Some(current)) => {
                self.update(key, current, |session| {
                    let mut next = session.clone();
                    next.journal.record(entry.clone());
                    Some(next)
                })
                .await
            }
            Ok(None) => return,
            Err(error) => Err(error),
        };
        if let Err(error) = noted {
            tracing::warn!(%error, "could not add to a session's journal");
        }
    }

    pub async fn remove(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.kv.delete(&key.store_key()).await
    }

    /// Records which provider session (`sid`) and which user the session belongs to, so that a
    /// back-channel logout, which names only those, finds it. Written with every write of the
    /// session, so the index lives as long as the session does (a session renewed all day
    /// outlives the idle timeout of its sign-in), and a new `sid` from a silent renew is found.
    async fn index(&self, key: &SessionKey, session: &AuthenticatedSession) -> Result<(), StoreError> {
        if let Some(sid) = &session.sid {
            self.kv.set_add(&format!("sessions-of-sid:{sid}"), &key.0, Self::expiry()).await?;
        }
        self.kv.set_add(&format!("sessions-of-sub:{}", session.subject), &key.0, Self::expiry()).await
    }

    /// The signed-in sessions of provider session `sid`, or, without one, of user `sub`.
    pub async fn sessions_of(&self, sid: Option<&str>, sub: Option<&str>) -> Result<Vec<SessionKey>, StoreError> {
        let set = match (sid, sub) {
            (Some(sid), _) => format!("sessions-of-sid:{sid}"),
            (None, Some(sub)) => format!("sessions-of-sub:{sub}"),
            (None, None) => return Ok(Vec::new()),
        };
        Ok(self.kv.set_members(&set).await?.into_iter().map(SessionKey).collect())
    }
}

//! Browser sessions (tower-sessions records) in the [`Kv`]: `session:{SHA-256 of the id}`,
//! JSON, expiring with the session; and their cookie. What a record holds is the sign-ins in
//! flight (sealed) and the key of the signed-in session, never a token (those are sealed, under
//! `tokens:{key}`).

use std::sync::Arc;

use async_trait::async_trait;
use tower_sessions::{
    cookie::{time::Duration, SameSite},
    session::{Id, Record},
    session_store::{Error, Result},
    Expiry, SessionManagerLayer, SessionStore,
};

use super::Kv;
use crate::config::Config;

/// Sessions end after this long without a request.
const IDLE_TIMEOUT: Duration = Duration::hours(8);
/// The expiry of a signed-in session's record. A record that holds only sign-ins in flight
/// expires with them instead (see `auth::record`), so that requests without a cookie, which
/// anyone can send, cannot fill the store with records that live for hours.
pub const SIGNED_IN_EXPIRY: Expiry = Expiry::OnInactivity(IDLE_TIMEOUT);

/// The session cookie: HttpOnly always; `SameSite=Lax` so that it comes along on the top-level
/// navigation back from the provider; `Secure` and the `__Host-` prefix (which pins it to this
/// host and path `/`) when the app is served over https. The idle timeout slides with use:
/// see `auth::record::keep_alive`.
pub fn layer(config: &Config, records: SessionRecords) -> SessionManagerLayer<SessionRecords> {
    let name = if config.secure_cookies() { "__Host-session" } else { "session" };
    SessionManagerLayer::new(records)
        .with_name(name)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        .with_path("/")
        .with_expiry(SIGNED_IN_EXPIRY)
}

#[derive(Clone)]
pub struct SessionRecords {
    kv: Arc<Kv>,
}

impl std::fmt::Debug for SessionRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionRecords")
    }
}

impl SessionRecords {
    pub fn new(kv: Arc<Kv>) -> Self {
        Self { kv }
    }
}

/// A record's key names it by a hash of its id, never the id: the id is the cookie's value, and
/// whoever reads the store (a backup, a replica, a `KEYS *`) must not get cookies to replay.
fn key(id: &Id) -> String {
    format!("session:{}", super::digest_name(id.to_string().as_bytes()))
}

fn expires_at_ms(record: &Record) -> u64 {
    u64::try_from(record.expiry_date.unix_timestamp()).unwrap_or_default() * 1000
}

fn encode(record: &Record) -> Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| Error::Encode(e.to_string()))
}

fn backend(error: super::StoreError) -> Error {
    Error::Backend(error.to_string())
}

#[async_trait]
impl SessionStore for SessionRecords {
    /// A new id never overwrites a live session: on a collision (2^-128), draw again.
    async fn create(&self, record: &mut Record) -> Result<()> {
        loop {
            let stored = self.kv.compare_and_set(&key(&record.id), None, encode(record)?, expires_at_ms(record)).await;
            if stored.map_err(backend)? {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.kv.set(&key(&record.id), encode(record)?, expires_at_ms(record)).await.map_err(backend)
    }

    /// A record that does not decode (damaged, or of another tower-sessions) is no session: the
    /// browser starts a new one, under a new id. As an error it would answer every request of
    /// that browser with a 503 until the record expired, sign-in included. The record is left to
    /// expire: an instance of another version may still read it.
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some(bytes) = self.kv.get(&key(id)).await.map_err(backend)? else {
            return Ok(None);
        };
        match serde_json::from_slice(&bytes) {
            Ok(record) => Ok(Some(record)),
            Err(error) => {
                let error = super::decode_error(&error);
                tracing::warn!(%error, "a browser session record does not decode; the browser starts anew");
                Ok(None)
            }
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.kv.delete(&key(id)).await.map_err(backend)
    }
}

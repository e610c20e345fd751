//! Where sessions live. One key-value store holds the browser sessions (tower-sessions records),
//! the sealed token sets and the renewal locks; `SESSION_STORE` chooses it:
//!
//! - unset, or a file path: SQLite ([`sqlite`]), the default, in `target/oidc-session/` unless
//!   told otherwise. Survives restarts; one server instance.
//! - `redis://host:port/db`: Redis ([`redis`]), shared by any number of server instances; every
//!   key carries its expiry as its TTL.
//! - `memory`: this process only ([`memory`]), for tests.
//!
//! Keys: `session:{SHA-256 of the id}` (a browser session), `tokens:{key}` (a sealed token set, see
//! [`seal`]), `lock:renew:{key}` (the renewal lock of a signed-in session), `logout-jti:{jti}`
//! (back-channel logout tokens seen). Sets: `sessions-of-sid:{sid}` and `sessions-of-sub:{sub}`
//! (which signed-in sessions a back-channel logout ends), whose members expire one by one (in
//! Redis, sorted sets scored by expiry). Every value has an expiry in milliseconds since the Unix
//! epoch; an expired value reads as absent.
//!
//! Two compare-and-set operations make the locks and the token writes safe across instances:
//! [`Kv::compare_and_set`] writes only over the exact bytes the caller read (or over nothing),
//! and [`Kv::compare_and_delete`] removes a lock only for its owner.

pub mod memory;
pub mod redis;
pub mod seal;
pub mod sessions;
pub mod sqlite;

use std::{
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// How long any one store operation may take before it fails (and the request with it).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// The store could not be used: down, unreachable or timed out. What the browser sees is a 503
/// with `Retry-After`; the detail goes to the log. (A record that does not open or decode is no
/// error: its session is signed out, see [`sessions`] and `auth::token_store`.)
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(pub String);

/// Why JSON from the store did not decode, for a log line: where and what kind of error, never
/// serde_json's message, which quotes the value it met (a token, in a record of another shape).
pub fn decode_error(error: &serde_json::Error) -> String {
    format!("{:?} error at line {} column {}", error.classify(), error.line(), error.column())
}

/// Where `SESSION_STORE` says the sessions are.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Memory,
    Sqlite(PathBuf),
    /// A Redis URL, which may hold a password: never printed whole (see [`redis::redacted`]).
    Redis(String),
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Redis(url) => f.debug_tuple("Redis").field(&redis::redacted(url)).finish(),
        }
    }
}

/// The chosen backend.
pub enum Kv {
    Memory(memory::MemoryKv),
    Sqlite(sqlite::SqliteKv),
    Redis(redis::RedisKv),
}

impl Kv {
    /// Opens (and for SQLite, creates) the store, and checks that it answers.
    pub async fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        Ok(match location {
            StoreLocation::Memory => Self::Memory(memory::MemoryKv::default()),
            StoreLocation::Sqlite(path) => Self::Sqlite(sqlite::SqliteKv::open(path).await?),
            StoreLocation::Redis(url) => Self::Redis(redis::RedisKv::connect(url).await?),
        })
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Memory(kv) => Ok(kv.get(key, now_ms())),
            Self::Sqlite(kv) => kv.get(key, now_ms()).await,
            Self::Redis(kv) => kv.get(key).await,
        }
    }

    pub async fn set(&self, key: &str, value: Vec<u8>, expires_at_ms: u64) -> Result<(), StoreError> {
        match self {
            Self::Memory(kv) => {
                kv.set(key, value, expires_at_ms);
                Ok(())
            }
            Self::Sqlite(kv) => kv.set(key, value, expires_at_ms).await,
            Self::Redis(kv) => kv.set(key, value, expires_at_ms).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(kv) => {
                kv.delete(key);
                Ok(())
            }
            Self::Sqlite(kv) => kv.delete(key).await,
            Self::Redis(kv) => kv.delete(key).await,
        }
    }

    /// Writes `value` only if the key now holds exactly `expected` (`None`: nothing, or an
    /// expired value). `false` if it holds something else.
    pub async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: Vec<u8>,
        expires_at_ms: u64,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Memory(kv) => Ok(kv.compare_and_set(key, expected, value, expires_at_ms, now_ms())),
            Self::Sqlite(kv) => kv.compare_and_set(key, expected, value, expires_at_ms, now_ms()).await,
            Self::Redis(kv) => kv.compare_and_set(key, expected, value, expires_at_ms).await,
        }
    }

    /// Deletes the key only if it holds exactly `expected`.
    pub async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        match self {
            Self::Memory(kv) => Ok(kv.compare_and_delete(key, expected)),
            Self::Sqlite(kv) => kv.compare_and_delete(key, expected).await,
            Self::Redis(kv) => kv.compare_and_delete(key, expected).await,
        }
    }

    /// Adds `member` to the set under `key`, until `expires_at_ms`.
    pub async fn set_add(&self, key: &str, member: &str, expires_at_ms: u64) -> Result<(), StoreError> {
        match self {
            Self::Memory(kv) => {
                kv.set_add(key, member, expires_at_ms);
                Ok(())
            }
            Self::Sqlite(kv) => kv.set_add(key, member, expires_at_ms).await,
            Self::Redis(kv) => kv.set_add(key, member, expires_at_ms).await,
        }
    }

    pub async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Memory(kv) => Ok(kv.set_members(key, now_ms())),
            Self::Sqlite(kv) => kv.set_members(key, now_ms()).await,
            Self::Redis(kv) => kv.set_members(key).await,
        }
    }

    pub async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(kv) => {
                kv.set_remove(key, member);
                Ok(())
            }
            Self::Sqlite(kv) => kv.set_remove(key, member).await,
            Self::Redis(kv) => kv.set_remove(key, member).await,
        }
    }

    /// The Redis store, when several instances share this one (for pub/sub).
    pub fn redis(&self) -> Option<&redis::RedisKv> {
        match self {
            Self::Redis(kv) => Some(kv),
            _ => None,
        }
    }

    /// Deletes what has expired (Redis does it by itself, with TTLs).
    pub async fn purge_expired(&self) -> Result<(), StoreError> {
        match self {
            Self::Memory(kv) => {
                kv.purge_expired(now_ms());
                Ok(())
            }
            Self::Sqlite(kv) => kv.purge_expired(now_ms()).await,
            Self::Redis(_) => Ok(()),
        }
    }

    /// Deletes expired values every `period`, for as long as the server runs.
    pub fn spawn_purge(self: &std::sync::Arc<Self>, period: Duration) {
        if matches!(**self, Self::Redis(_)) {
            return;
        }
        let kv = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.tick().await;
            loop {
                interval.tick().await;
                let Some(kv) = kv.upgrade() else { return };
                if let Err(error) = kv.purge_expired().await {
                    tracing::warn!(%error, "could not delete expired sessions");
                }
            }
        });
    }
}

/// The base64url SHA-256 of `secret`: a name for it that gives it away to nobody who reads the
/// store or the event bus.
pub fn digest_name(secret: &[u8]) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use sha2::{Digest, Sha256};
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decode_error_says_where_but_never_quotes_the_value() {
        let secret = "a-refresh-token-where-a-number-belongs";
        let error = serde_json::from_str::<u64>(&format!("\"{secret}\"")).unwrap_err();
        assert!(error.to_string().contains(secret), "serde_json's own message quotes it");
        let logged = decode_error(&error);
        assert!(!logged.contains(secret), "{logged}");
        assert!(logged.contains("Data") && logged.contains("column"), "{logged}");
    }
}

//! The default store: one SQLite file (WAL, `synchronous=NORMAL`: what is written survives the
//! process being killed, which is how `cargo leptos watch` restarts it). One connection behind a
//! mutex; each operation is a single statement, run on the blocking pool.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::{params, Connection, OptionalExtension};

use super::{StoreError, OPERATION_TIMEOUT};

pub struct SqliteKv {
    connection: Arc<Mutex<Connection>>,
}

fn error(context: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError(format!("{context}: {error}"))
}

impl SqliteKv {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let connection = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| error(&dir.display().to_string(), e))?;
            }
            let connection = Connection::open(&path).map_err(|e| error(&path.display().to_string(), e))?;
            connection
                .execute_batch(
                    "PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA busy_timeout = 2000;
                     CREATE TABLE IF NOT EXISTS kv (
                         key TEXT PRIMARY KEY,
                         value BLOB NOT NULL,
                         expires_at INTEGER NOT NULL
                     ) WITHOUT ROWID;
                     CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at);
                     CREATE TABLE IF NOT EXISTS members (
                         key TEXT NOT NULL,
                         member TEXT NOT NULL,
                         expires_at INTEGER NOT NULL,
                         PRIMARY KEY (key, member)
                     ) WITHOUT ROWID;
                     CREATE INDEX IF NOT EXISTS members_expires_at ON members (expires_at);",
                )
                .map_err(|e| error(&path.display().to_string(), e))?;
            Ok(connection)
        })
        .await
        .map_err(|e| error("opening the store", e))??;
        Ok(Self { connection: Arc::new(Mutex::new(connection)) })
    }

    /// Runs `operation` on the connection, off the async threads, within the time limit.
    async fn run<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        let task = tokio::task::spawn_blocking(move || {
            let connection = connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            operation(&connection)
        });
        match tokio::time::timeout(OPERATION_TIMEOUT, task).await {
            Ok(Ok(result)) => result.map_err(|e| error("SQLite", e)),
            Ok(Err(join)) => Err(error("SQLite", join)),
            Err(_) => Err(StoreError("SQLite: timed out".into())),
        }
    }

    pub async fn get(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.run(move |c| {
            c.query_row("SELECT value FROM kv WHERE key = ?1 AND expires_at > ?2", params![key, now_ms as i64], |row| {
                row.get(0)
            })
            .optional()
        })
        .await
    }

    pub async fn set(&self, key: &str, value: Vec<u8>, expires_at_ms: u64) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |c| {
            c.execute(
                "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                params![key, value, expires_at_ms as i64],
            )
            .map(|_| ())
        })
        .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |c| c.execute("DELETE FROM kv WHERE key = ?1", params![key]).map(|_| ())).await
    }

    pub async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: Vec<u8>,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let (key, expected) = (key.to_owned(), expected.map(<[u8]>::to_vec));
        self.run(move |c| {
            let changed = match expected {
                // Absent, or present but expired: both count as nothing.
                None => c.execute(
                    "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                     WHERE kv.expires_at <= ?4",
                    params![key, value, expires_at_ms as i64, now_ms as i64],
                )?,
                Some(expected) => c.execute(
                    "UPDATE kv SET value = ?2, expires_at = ?3 WHERE key = ?1 AND value = ?4 AND expires_at > ?5",
                    params![key, value, expires_at_ms as i64, expected, now_ms as i64],
                )?,
            };
            Ok(changed == 1)
        })
        .await
    }

    pub async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool, StoreError> {
        let (key, expected) = (key.to_owned(), expected.to_vec());
        self.run(move |c| {
            c.execute("DELETE FROM kv WHERE key = ?1 AND value = ?2", params![key, expected]).map(|n| n == 1)
        })
        .await
    }

    pub async fn purge_expired(&self, now_ms: u64) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute("DELETE FROM kv WHERE expires_at <= ?1", params![now_ms as i64])?;
            c.execute("DELETE FROM members WHERE expires_at <= ?1", params![now_ms as i64]).map(|_| ())
        })
        .await
    }

    pub async fn set_add(&self, key: &str, member: &str, expires_at_ms: u64) -> Result<(), StoreError> {
        let (key, member) = (key.to_owned(), member.to_owned());
        self.run(move |c| {
            c.execute(
                "INSERT INTO members (key, member, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key, member) DO UPDATE SET expires_at = excluded.expires_at",
                params![key, member, expires_at_ms as i64],
            )
            .map(|_| ())
        })
        .await
    }

    pub async fn set_members(&self, key: &str, now_ms: u64) -> Result<Vec<String>, StoreError> {
        let key = key.to_owned();
        self.run(move |c| {
            let mut statement = c.prepare_cached("SELECT member FROM members WHERE key = ?1 AND expires_at > ?2")?;
            let rows = statement.query_map(params![key, now_ms as i64], |row| row.get(0))?;
            rows.collect()
        })
        .await
    }

    pub async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        let (key, member) = (key.to_owned(), member.to_owned());
        self.run(move |c| {
            c.execute("DELETE FROM members WHERE key = ?1 AND member = ?2", params![key, member]).map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_values_read_as_absent_and_are_purged() {
        let dir = std::env::temp_dir().join(format!("kv-purge-{}", std::process::id()));
        let kv = SqliteKv::open(&dir.join("kv.sqlite3")).await.unwrap();
        kv.set("old", b"v".to_vec(), 1_000).await.unwrap();
        kv.set("live", b"v".to_vec(), 10_000).await.unwrap();
        assert_eq!(kv.get("old", 5_000).await.unwrap(), None);
        assert!(
            kv.compare_and_set("old", None, b"new".to_vec(), 9_000, 5_000).await.unwrap(),
            "expired counts as absent"
        );
        assert!(!kv.compare_and_set("live", None, b"new".to_vec(), 9_000, 5_000).await.unwrap());
        kv.purge_expired(9_500).await.unwrap();
        let count: i64 = kv.run(|c| c.query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))).await.unwrap();
        assert_eq!(count, 1, "only the live value is left");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! The state file: one SQLite database that keeps what must survive a restart, so that a
//! restart changes nothing for a signed-in user or for tokens already issued. Loaded whole at
//! start; from then on memory is the source of truth for reads, and the [`journal`](super::journal)
//! writes every change through.
//!
//! Schema (version 5, with `application_id` set so that no other database is mistaken for one;
//! an older file is migrated at start, see [`MIGRATE_FROM_1`] and the ones after it):
//! - `signing_keys`: each key (P-256 or RSA) in PKCS#8 DER with its `kid`; `published_until` and
//!   `hints_until` are NULL for the current key of each algorithm and, for a rotated-out one,
//!   when its last token expires (OIDC Core §10.1.1) and when it stops verifying
//!   `id_token_hint`s (see [`crate::keys`]). Newest last, by `seq`.
//! - `provider_sessions`: keyed by the SHA-256 of the session cookie; `sid`, `sub`,
//!   `auth_time`, `expires_at`, whether the user accepted the updated terms in it
//!   (`terms_accepted`), and the clients they allowed in it (`consents`, a JSON array).
//! - `families`: one row per refresh token family: its grant (client, `sub`, `sid`,
//!   `auth_time`, scopes), lifetimes, rotations, current generation, revocation reason, and the
//!   two plaintexts a feature may need (see [`families`](super::families)).
//! - `refresh_tokens`: SHA-256, family and generation of every token of a remembered family,
//!   retired ones included (reuse detection needs them); `forget_at` is when the family is
//!   forgotten.
//! - `access_tokens`: the `jti`, expiry, family and revocation of each access token issued,
//!   numbered in issue order (`row`), so that inserts append.
//!
//! Both growing tables are written in key order and indexed by the time their rows go, so a
//! commit touches few pages and the periodic purge deletes a range. The file is opened in WAL
//! mode, `synchronous=NORMAL`, and in exclusive locking mode: a second provider on the same
//! file is refused at start rather than left to diverge from the first.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{params, Connection, Row, Transaction, TransactionBehavior};

use super::{
    families::{Family, FamilyGrant, FamilyRow, FamilyState, RefreshTokenRecord, FAMILY_MEMORY_SECS},
    journal::{self, Change, Journal},
    AccessTokenRecord, FamilyId, Inner, ProviderSession, RevokedReason, Store, TokenHash,
};
use crate::{
    error::ConfigError,
    keys::{KeySet, Retirement, SigningAlg, SigningKey},
};

/// "idps", in `PRAGMA application_id`: this file is a state file of this provider.
const APPLICATION_ID: i32 = 0x6964_7073;
const SCHEMA_VERSION: i32 = 5;
/// The write-ahead log is copied into the database (a checkpoint, the only time a commit waits
/// for the disk) once it holds this many pages, 40 MB at most. SQLite's default of 1,000 pages
/// makes a busy provider checkpoint several times a second, each a stall for every request
/// waiting on the writer.
const WAL_CHECKPOINT_PAGES: i64 = 10_000;
/// How long start-up waits for another process to let go of the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

const SCHEMA: &str = "
CREATE TABLE signing_keys (
    seq INTEGER PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE,
    pkcs8 BLOB NOT NULL,
    published_until INTEGER,
    hints_until INTEGER
);
CREATE TABLE provider_sessions (
    key_hash BLOB PRIMARY KEY,
    sid TEXT NOT NULL,
    sub TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    terms_accepted INTEGER NOT NULL DEFAULT 0,
    consents TEXT NOT NULL DEFAULT '[]',
    browser_state TEXT NOT NULL,
    clients TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
CREATE TABLE families (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    sid TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    rotations INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    rotated_at INTEGER NOT NULL,
    current_token TEXT,
    retired_token TEXT,
    revoked TEXT
);
CREATE TABLE refresh_tokens (
    row INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    family INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    forget_at INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_by_forget_at ON refresh_tokens (forget_at);
CREATE TABLE access_tokens (
    row INTEGER PRIMARY KEY,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    family INTEGER,
    revoked INTEGER NOT NULL
);
CREATE INDEX access_tokens_by_expires_at ON access_tokens (expires_at);
";

/// Version 1 to 2: provider sessions remember consent and accepted terms. A session from
/// before has neither, so its user is asked once more, as after a sign-in.
const MIGRATE_FROM_1: &str = "
ALTER TABLE provider_sessions ADD COLUMN terms_accepted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provider_sessions ADD COLUMN consents TEXT NOT NULL DEFAULT '[]';
";

/// Version 2 to 3: provider sessions have a browser state (Session Management) and remember the
/// clients that received tokens in them (Back-Channel Logout). A session from before gets a
/// random browser state (its relying parties see one `changed`, and renew silently into the new
/// value) and no clients: nobody is told when it ends, as before.
const MIGRATE_FROM_2: &str = "
ALTER TABLE provider_sessions ADD COLUMN browser_state TEXT NOT NULL DEFAULT '';
ALTER TABLE provider_sessions ADD COLUMN clients TEXT NOT NULL DEFAULT '[]';
UPDATE provider_sessions SET browser_state = lower(hex(randomblob(32)));
";

/// Version 3 to 4: a rotated-out key verifies `id_token_hint`s for a while after it leaves the
/// JWK Set. A key retired before has no such window: it goes when its publication ends, as
/// before.
const MIGRATE_FROM_3: &str = "
ALTER TABLE signing_keys ADD COLUMN hints_until INTEGER;
UPDATE signing_keys SET hints_until = published_until;
";

/// Version 4 to 5: an RS256 key beside the ES256 one. Nothing to alter: the first start that
/// reads the file makes the key and keeps it there. The version says that a build without RSA
/// must not read the file (it would take the RSA key for a broken P-256 one).
const MIGRATE_FROM_4: &str = "";

/// What a provider needs from its configuration to open its state file.
pub(crate) struct Opening<'a> {
    pub path: &'a Path,
    /// `signing_key_file`'s key, if set: it becomes the current key if it is not already.
    pub configured_key: Option<SigningKey>,
    /// How long a rotated-out key stays published, and verifies hints.
    pub retirement: Retirement,
    pub now: u64,
}

/// Opens (creating it and its directory if missing) the state file, loads what has not expired
/// by `now`, and starts the journal's writer on it. Every failure names the file.
pub(crate) fn open(opening: Opening<'_>) -> Result<(Store, KeySet), ConfigError> {
    let Opening { path, configured_key, retirement, now } = opening;
    let fail = |reason: String| ConfigError::StateFile(path.display().to_string(), reason);
    create(path).map_err(&fail)?;
    let mut connection = Connection::open(path).map_err(|e| fail(e.to_string()))?;
    prepare(&connection).map_err(&fail)?;
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| fail(e.to_string()))?;
    let LoadedKeys { current, current_rsa, retiring } =
        load_keys(&tx, configured_key, retirement, now).map_err(|e| fail(format!("signing keys: {e}")))?;
    let inner = load(&tx, now).map_err(&fail)?;
    // Whatever expired while the provider was down goes now, as the first purge would.
    journal::write(&tx, &Change::Purged { now }).map_err(|e| fail(e.to_string()))?;
    tx.commit().map_err(|e| fail(e.to_string()))?;
    tracing::info!(
        file = %path.display(),
        sessions = inner.sessions.len(),
        families = inner.families.len(),
        access_tokens = inner.access_tokens.len(),
        kid = current.kid(),
        "provider state loaded"
    );
    let journal = Journal::start(connection, path.display().to_string()).map_err(|e| fail(e.to_string()))?;
    let keys = KeySet::restored(current, current_rsa, retiring, journal.clone());
    Ok((Store { inner: Mutex::new(inner), journal: Some(journal) }, keys))
}

/// Creates the directory and, readable by its owner only (it holds the signing keys), the file.
fn create(path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create its directory: {e}"))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop).map_err(|e| format!("cannot open it for reading and writing: {e}"))
}

/// Sets the connection up, then checks that the file is a state file of this provider (or
/// empty, and makes it one).
fn prepare(connection: &Connection) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    connection.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    connection.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(sql)?;
    // The first statements that read the file: a file that is no database fails here.
    let application_id: i32 = connection.pragma_query_value(None, "application_id", |row| row.get(0)).map_err(sql)?;
    let version: i32 = connection.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(sql)?;
    let tables: i64 = connection.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0)).map_err(sql)?;
    // The schema to create or the migration to run, if any.
    let update = match (application_id, version) {
        (0, 0) if tables == 0 => Some(SCHEMA.to_owned()),
        (APPLICATION_ID, SCHEMA_VERSION) => None,
        (APPLICATION_ID, 1) => Some(format!("{MIGRATE_FROM_1}{MIGRATE_FROM_2}{MIGRATE_FROM_3}{MIGRATE_FROM_4}")),
        (APPLICATION_ID, 2) => Some(format!("{MIGRATE_FROM_2}{MIGRATE_FROM_3}{MIGRATE_FROM_4}")),
        (APPLICATION_ID, 3) => Some(format!("{MIGRATE_FROM_3}{MIGRATE_FROM_4}")),
        (APPLICATION_ID, 4) => Some(MIGRATE_FROM_4.to_owned()),
        (APPLICATION_ID, other) => return Err(format!("schema version {other}, this provider reads {SCHEMA_VERSION}")),
        _ => return Err("an SQLite database, but not a state file of this provider".into()),
    };
    // Only now, so that a database of something else is refused before anything changes it.
    let mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("cannot use write-ahead logging (journal mode {mode})"));
    }
    connection.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
    connection.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES).map_err(sql)?;
    connection.set_prepared_statement_cache_capacity(32);
    if let Some(update) = update {
        let update = format!(
            "BEGIN; {update} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        );
        connection.execute_batch(&update).map_err(sql)?;
    }
    Ok(())
}

/// The store's contents, from the file: what has not expired by `now`.
fn load(tx: &Transaction<'_>, now: u64) -> Result<Inner, String> {
    let mut inner = Inner::default();
    load_sessions(tx, now, &mut inner).map_err(|e| format!("provider sessions: {e}"))?;
    load_families(tx, now, &mut inner).map_err(|e| format!("refresh token families: {e}"))?;
    load_access_tokens(tx, now, &mut inner).map_err(|e| format!("access tokens: {e}"))?;
    Ok(inner)
}

/// Reading a row: SQLite's errors, and values this provider could not have written.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
}

/// A rotated-out key: published until, verifies hints until.
type RetiredKey = (SigningKey, u64, u64);

struct LoadedKeys {
    current: SigningKey,
    current_rsa: SigningKey,
    retiring: Vec<RetiredKey>,
}

/// The current keys and the ones still needed at `now` (published, or verifying hints), newest
/// first; takes `signing_key_file`'s key into the file, or generates the first key of an
/// algorithm, if need be.
fn load_keys(
    tx: &Transaction<'_>,
    configured_key: Option<SigningKey>,
    retirement: Retirement,
    now: u64,
) -> Result<LoadedKeys, LoadError> {
    let mut current = None;
    let mut current_rsa = None;
    let mut retiring = Vec::new();
    let mut statement =
        tx.prepare("SELECT kid, pkcs8, published_until, hints_until FROM signing_keys ORDER BY seq DESC")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let kid: String = row.get(0)?;
        let key = SigningKey::from_pkcs8_der(&row.get::<_, Vec<u8>>(1)?).map_err(LoadError::Invalid)?;
        if key.kid() != kid {
            return Err(LoadError::Invalid(format!("key {kid} does not match its kid")));
        }
        let slot = match key.alg() {
            SigningAlg::Es256 => &mut current,
            SigningAlg::Rs256 => &mut current_rsa,
        };
        match row.get::<_, Option<u64>>(2)? {
            None if slot.is_none() => *slot = Some(key),
            None => return Err(LoadError::Invalid(format!("more than one current {} key", key.alg().name()))),
            Some(until) => {
                let hints_until = row.get::<_, Option<u64>>(3)?.unwrap_or(until).max(until);
                if now < hints_until {
                    retiring.push((key, until, hints_until));
                }
            }
        }
    }
    drop(rows);
    drop(statement);

    let current = match (current, configured_key) {
        (Some(current), None) => current,
        (Some(current), Some(configured)) if current.kid() == configured.kid() => current,
        (current, configured) => {
            // The first start, or a `signing_key_file` naming another key: that key (or a new
            // one) signs from now on, and the previous current key retires as in a rotation.
            let key = configured.unwrap_or_else(SigningKey::generate);
            retiring.retain(|(retired, _, _)| retired.kid() != key.kid());
            tx.execute("DELETE FROM signing_keys WHERE kid = ?1", params![key.kid()])?;
            if let Some(previous) = current {
                let (until, hints_until) = retirement.ends(now);
                tx.execute(
                    "UPDATE signing_keys SET published_until = ?1, hints_until = ?2 WHERE kid = ?3",
                    params![until, hints_until, previous.kid()],
                )?;
                retiring.insert(0, (previous, until, hints_until));
            }
            journal::insert_key(tx, key.kid(), key.pkcs8_der())?;
            key
        }
    };
    // The first start, or a file of a version without RSA: the RS256 key is made once, here.
    let current_rsa = match current_rsa {
        Some(key) => key,
        None => {
            let key = SigningKey::generate_for(SigningAlg::Rs256);
            journal::insert_key(tx, key.kid(), key.pkcs8_der())?;
            key
        }
    };
    Ok(LoadedKeys { current, current_rsa, retiring })
}

fn load_sessions(tx: &Transaction<'_>, now: u64, inner: &mut Inner) -> Result<(), LoadError> {
    let mut statement = tx.prepare(
        "SELECT key_hash, sid, sub, auth_time, expires_at, terms_accepted, consents, browser_state, clients
         FROM provider_sessions WHERE expires_at > ?1",
    )?;
    let mut rows = statement.query(params![now])?;
    let client_ids = |text: String, what: &str| {
        serde_json::from_str::<Vec<String>>(&text)
            .map_err(|e| LoadError::Invalid(format!("{what} are not a JSON array of strings: {e}")))
    };
    while let Some(row) = rows.next()? {
        let session = ProviderSession {
            sid: row.get(1)?,
            sub: row.get(2)?,
            auth_time: row.get(3)?,
            expires_at: row.get(4)?,
            terms_accepted: row.get(5)?,
            consents: client_ids(row.get(6)?, "consents")?,
            browser_state: row.get(7)?,
            clients: client_ids(row.get(8)?, "clients")?,
        };
        inner.insert_session(hash(row, 0)?, session);
    }
    Ok(())
}

fn load_families(tx: &Transaction<'_>, now: u64, inner: &mut Inner) -> Result<(), LoadError> {
    let mut statement = tx.prepare(
        "SELECT id, seq, client_id, sub, sid, auth_time, scopes, created_at, expires_at, last_used_at, rotations,
           generation, rotated_at, current_token, retired_token, revoked
         FROM families WHERE expires_at + ?1 > ?2",
    )?;
    let mut rows = statement.query(params![FAMILY_MEMORY_SECS, now])?;
    while let Some(row) = rows.next()? {
        let id = FamilyId(row.get::<_, i64>(0)? as u64);
        let revoked = match row.get::<_, Option<String>>(15)? {
            None => None,
            Some(name) => Some(
                RevokedReason::from_name(&name)
                    .ok_or_else(|| LoadError::Invalid(format!("family {id}: unknown revocation reason {name}")))?,
            ),
        };
        let scopes: String = row.get(6)?;
        let family = Family::restore(FamilyRow {
            id,
            grant: Arc::new(FamilyGrant {
                client_id: row.get(2)?,
                sub: row.get(3)?,
                sid: row.get(4)?,
                auth_time: row.get(5)?,
                scopes: scopes.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            }),
            seq: row.get(1)?,
            created_at: row.get(7)?,
            expires_at: row.get(8)?,
            state: FamilyState {
                last_used_at: row.get(9)?,
                rotations: row.get(10)?,
                generation: row.get(11)?,
                rotated_at: row.get(12)?,
                current_token: row.get(13)?,
                retired_token: row.get(14)?,
                revoked,
            },
        });
        inner.next_family_seq = inner.next_family_seq.max(family.seq() + 1);
        inner.families.insert(id, family);
    }
    drop(rows);
    drop(statement);

    let mut statement = tx.prepare("SELECT hash, family, generation FROM refresh_tokens WHERE forget_at > ?1")?;
    let mut rows = statement.query(params![now])?;
    while let Some(row) = rows.next()? {
        let family = FamilyId(row.get::<_, i64>(1)? as u64);
        if inner.families.contains_key(&family) {
            inner.refresh_tokens.insert(hash(row, 0)?, RefreshTokenRecord { family, generation: row.get(2)? });
        }
    }
    Ok(())
}

fn load_access_tokens(tx: &Transaction<'_>, now: u64, inner: &mut Inner) -> Result<(), LoadError> {
    let next_row: Option<u64> = tx.query_row("SELECT max(row) + 1 FROM access_tokens", [], |row| row.get(0))?;
    inner.next_access_token_row = next_row.unwrap_or_default();
    let mut statement =
        tx.prepare("SELECT row, jti, expires_at, family, revoked FROM access_tokens WHERE expires_at > ?1")?;
    let mut rows = statement.query(params![now])?;
    while let Some(row) = rows.next()? {
        let record = AccessTokenRecord {
            row: row.get(0)?,
            expires_at: row.get(2)?,
            family: row.get::<_, Option<i64>>(3)?.map(|id| FamilyId(id as u64)),
            revoked: row.get(4)?,
        };
        inner.access_tokens.insert(row.get(1)?, record);
    }
    Ok(())
}

fn hash(row: &Row<'_>, column: usize) -> Result<TokenHash, LoadError> {
    let bytes: Vec<u8> = row.get(column)?;
    TokenHash::try_from(bytes.as_slice()).map_err(|_| LoadError::Invalid(format!("a hash of {} bytes", bytes.len())))
}

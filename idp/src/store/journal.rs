//! The write path to the state file: every change that must survive a restart, in the order the
//! store made it, committed to SQLite by one writer thread with group commit.
//!
//! The store hands a [`Change`] to [`Journal::append`] while it still holds its lock, so the
//! channel's order is the order of the changes in memory, and the writer applies them in that
//! order. The writer takes whatever has queued up since its last commit (up to [`MAX_BATCH`]
//! changes; under load it first waits [`GROUP_COMMIT_WAIT`] for more) and commits it as one
//! transaction: one commit serves many requests, and the store's lock is never held for a disk
//! write. Each change comes with a [`Saving`]
//! that resolves once its transaction has committed; an endpoint awaits it before sending the
//! response that reveals the change (a rotated refresh token, a revocation, a session cookie, a
//! new signing key), so that a process killed right after answering has lost nothing that a
//! client holds. The file is in WAL mode with `synchronous=NORMAL`: a commit reaches the
//! operating system before it is acknowledged, which survives a killed process (SIGKILL, as
//! `cargo leptos watch` restarts its server), though not a power cut.
//!
//! Reads never wait: a request may see a change a moment before it is on disk (a refresh
//! refused as revoked while the revocation is being committed). If the process died in that
//! moment, the change is lost together with the response of the request that made it: a client
//! may have been refused on account of it, but none holds a token or a cookie the file does not
//! know.
//!
//! A failed commit is not retried: from then on the file no longer matches memory, so the writer
//! refuses every later change too ([`NotSaved`]), and each endpoint answers 500 instead of
//! revealing a change that a restart would undo. Restarting the provider reloads the file's
//! last good state.

use std::{
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
    time::Duration,
};

use rusqlite::{params, Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::{
    families::{FamilyRow, FamilyState, RefreshTokenRow},
    AccessTokenRow, FamilyId, ProviderSession, TokenHash,
};
use crate::error::NotSaved;

/// The most changes one transaction takes; more wait for the next.
const MAX_BATCH: usize = 4096;
/// Under concurrent load (the last commit served more than one change), the writer waits this
/// long after the first change of a batch, so that one commit serves more requests: a commit
/// writes whole pages, whatever it changed in them. A lone request is committed at once.
const GROUP_COMMIT_WAIT: Duration = Duration::from_micros(300);

/// A change to persistent state, as one operation of the store made it.
pub(crate) enum Change {
    /// A provider session started, or changed (a consent, accepted terms, a client that received
    /// tokens): the whole row.
    SessionSaved {
        key_hash: TokenHash,
        session: ProviderSession,
    },
    /// A provider session signed into again by its user: the same session under a new cookie,
    /// so a new key, with its new `auth_time` and browser state.
    SessionRekeyed {
        old_key_hash: TokenHash,
        key_hash: TokenHash,
        session: ProviderSession,
    },
    /// Provider sessions ended before their time: a sign-out, another user's sign-in, the admin
    /// API, reuse detection.
    SessionsEnded {
        key_hashes: Vec<TokenHash>,
    },
    AccessTokenIssued(AccessTokenRow),
    AccessTokenRevoked {
        row: u64,
    },
    /// A code came back: the access tokens issued for it are revoked, and its family.
    CodeReplayed {
        access_tokens: Vec<u64>,
        family: Option<(FamilyId, FamilyState)>,
    },
    FamilyStarted {
        family: Box<FamilyRow>,
        token: RefreshTokenRow,
        /// The access token issued with the code, now linked to the family.
        access_token_row: Option<u64>,
    },
    /// A revocation, or any other change to a family alone.
    FamilyChanged {
        id: FamilyId,
        state: FamilyState,
    },
    /// A refresh grant: the family's new state, its new refresh token if it rotated, and the new
    /// access token.
    Refreshed {
        id: FamilyId,
        state: FamilyState,
        token: Option<RefreshTokenRow>,
        access_token: AccessTokenRow,
    },
    /// A new signing key; the previous one stays published until `published_until` and verifies
    /// hints until `hints_until`, and keys no longer needed at `now` are forgotten.
    KeyRotated {
        kid: String,
        pkcs8: Vec<u8>,
        previous_kid: String,
        published_until: u64,
        hints_until: u64,
        now: u64,
    },
    /// What has expired by `now`, as the store's own purge removes it from memory.
    Purged {
        now: u64,
    },
}

#[expect(clippy::large_enum_variant, reason = "one Close per writer; boxing would allocate per change")]
enum Entry {
    Change(Change, oneshot::Sender<Result<(), NotSaved>>),
    /// Stop after everything before it has been written.
    Close,
}

/// A change the store has made in memory, on its way to the state file. Await [`Saving::saved`]
/// before sending the response that reveals the change; without a state file it is ready at
/// once.
#[must_use = "await it before the response that reveals the change"]
pub(crate) struct Saving(Option<oneshot::Receiver<Result<(), NotSaved>>>);

impl Saving {
    /// Nothing to wait for: nothing changed, or the store is in memory only.
    pub fn done() -> Self {
        Self(None)
    }

    /// Resolves once the change is on disk; `Err` if it never will be.
    pub async fn saved(self) -> Result<(), NotSaved> {
        match self.0 {
            None => Ok(()),
            Some(receiver) => receiver.await.unwrap_or(Err(NotSaved)),
        }
    }
}

/// The writer thread and the way to it.
pub(crate) struct Journal {
    sender: mpsc::Sender<Entry>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Journal {
    /// Starts the writer thread on `connection`, an open state file; `file` names it in logs.
    pub fn start(connection: Connection, file: String) -> Result<Arc<Self>, std::io::Error> {
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("idp-state-writer".into())
            .spawn(move || write_until_closed(connection, &file, &receiver))?;
        Ok(Arc::new(Self { sender, writer: Mutex::new(Some(writer)) }))
    }

    /// Queues `change` behind every change appended before it.
    pub fn append(&self, change: Change) -> Saving {
        let (ack, saved) = oneshot::channel();
        // If the writer has stopped, the entry comes back and is dropped with its `ack`, so
        // `saved` resolves to `NotSaved`.
        let _ = self.sender.send(Entry::Change(change, ack));
        Saving(Some(saved))
    }

    /// Waits until everything appended so far is written, then stops the writer, which closes
    /// the file. Later changes are refused.
    pub fn close(&self) {
        let writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(writer) = writer {
            // If the writer is gone already, there is nothing to stop.
            let _ = self.sender.send(Entry::Close);
            if writer.join().is_err() {
                tracing::error!("the provider's state writer panicked");
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_until_closed(mut connection: Connection, file: &str, receiver: &mpsc::Receiver<Entry>) {
    let mut batch: Vec<(Change, oneshot::Sender<Result<(), NotSaved>>)> = Vec::new();
    let mut broken = false;
    let mut closing = false;
    let mut under_load = false;
    while !closing {
        // Block for the first change; under load, give others a moment to join it; then take
        // what is queued. Sleeping rather than waiting on the channel spares each sender a wake-up.
        let Ok(first) = receiver.recv() else { break };
        if under_load {
            std::thread::sleep(GROUP_COMMIT_WAIT);
        }
        let mut next = Some(first);
        while let Some(entry) = next.take() {
            match entry {
                Entry::Change(change, ack) => batch.push((change, ack)),
                Entry::Close => {
                    closing = true;
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = receiver.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        under_load = batch.len() > 1;
        let result = if broken {
            Err(NotSaved)
        } else {
            commit(&mut connection, batch.iter().map(|(change, _)| change)).map_err(|error| {
                tracing::error!(%file, %error, "the provider's state file could not be written; changes are refused until restart");
                broken = true;
                NotSaved
            })
        };
        for (_, ack) in batch.drain(..) {
            // A request that went away no longer waits; its change is written all the same.
            let _ = ack.send(result);
        }
    }
    if let Err((_, error)) = connection.close() {
        tracing::warn!(%file, %error, "the provider's state file did not close cleanly");
    }
}

/// Writes `changes` in one transaction.
fn commit<'a>(connection: &mut Connection, changes: impl Iterator<Item = &'a Change>) -> rusqlite::Result<()> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for change in changes {
        write(&tx, change)?;
    }
    tx.commit()
}

/// Integers are stored as SQLite's signed 64 bits: times and counters always fit, and a family
/// id (random over all 64 bits) is stored by its bits.
pub(super) fn family_key(id: FamilyId) -> i64 {
    id.0 as i64
}

/// Writes the whole row of a provider session.
fn save_session(tx: &Transaction<'_>, key_hash: &TokenHash, session: &ProviderSession) -> rusqlite::Result<()> {
    // Client ids may contain spaces (RFC 6749 Appendix A.1): a JSON array keeps them apart.
    let consents = serde_json::to_string(&session.consents).expect("strings serialize");
    let clients = serde_json::to_string(&session.clients).expect("strings serialize");
    tx.prepare_cached(
        "INSERT OR REPLACE INTO provider_sessions
           (key_hash, sid, sub, auth_time, expires_at, terms_accepted, consents, browser_state, clients)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        &key_hash[..],
        session.sid,
        session.sub,
        session.auth_time,
        session.expires_at,
        session.terms_accepted,
        consents,
        session.browser_state,
        clients,
    ])?;
    Ok(())
}

/// Writes one change, in the transaction of its batch. The schema is in `state_file`.
pub(super) fn write(tx: &Transaction<'_>, change: &Change) -> rusqlite::Result<()> {
    match change {
        Change::SessionSaved { key_hash, session } => save_session(tx, key_hash, session)?,
        Change::SessionRekeyed { old_key_hash, key_hash, session } => {
            tx.prepare_cached("DELETE FROM provider_sessions WHERE key_hash = ?1")?
                .execute(params![&old_key_hash[..]])?;
            save_session(tx, key_hash, session)?;
        }
        Change::SessionsEnded { key_hashes } => {
            let mut statement = tx.prepare_cached("DELETE FROM provider_sessions WHERE key_hash = ?1")?;
            for key_hash in key_hashes {
                statement.execute(params![&key_hash[..]])?;
            }
        }
        Change::AccessTokenIssued(row) => insert_access_token(tx, row)?,
        Change::AccessTokenRevoked { row } => revoke_access_token(tx, *row)?,
        Change::CodeReplayed { access_tokens, family } => {
            for row in access_tokens {
                revoke_access_token(tx, *row)?;
            }
            if let Some((id, state)) = family {
                update_family(tx, *id, state)?;
            }
        }
        Change::FamilyStarted { family, token, access_token_row } => {
            let FamilyRow { id, grant, seq, created_at, expires_at, state } = &**family;
            tx.prepare_cached(
                "INSERT INTO families (id, seq, client_id, sub, sid, auth_time, scopes, created_at, expires_at,
                   last_used_at, rotations, generation, rotated_at, current_token, retired_token, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?
            .execute(params![
                family_key(*id),
                seq,
                grant.client_id,
                grant.sub,
                grant.sid,
                grant.auth_time,
                // Scope tokens never contain a space (RFC 6749 §3.3).
                grant.scopes.join(" "),
                created_at,
                expires_at,
                state.last_used_at,
                state.rotations,
                state.generation,
                state.rotated_at,
                state.current_token,
                state.retired_token,
                state.revoked.map(|reason| reason.as_str()),
            ])?;
            insert_refresh_token(tx, token)?;
            if let Some(row) = access_token_row {
                tx.prepare_cached("UPDATE access_tokens SET family = ?1 WHERE row = ?2")?
                    .execute(params![family_key(*id), row])?;
            }
        }
        Change::FamilyChanged { id, state } => update_family(tx, *id, state)?,
        Change::Refreshed { id, state, token, access_token } => {
            update_family(tx, *id, state)?;
            if let Some(token) = token {
                insert_refresh_token(tx, token)?;
            }
            insert_access_token(tx, access_token)?;
        }
        Change::KeyRotated { kid, pkcs8, previous_kid, published_until, hints_until, now } => {
            tx.prepare_cached("UPDATE signing_keys SET published_until = ?1, hints_until = ?2 WHERE kid = ?3")?
                .execute(params![published_until, hints_until, previous_kid])?;
            tx.prepare_cached("DELETE FROM signing_keys WHERE hints_until <= ?1")?.execute(params![now])?;
            insert_key(tx, kid, pkcs8)?;
        }
        Change::Purged { now } => {
            tx.prepare_cached("DELETE FROM provider_sessions WHERE expires_at <= ?1")?.execute(params![now])?;
            tx.prepare_cached("DELETE FROM access_tokens WHERE expires_at <= ?1")?.execute(params![now])?;
            tx.prepare_cached("DELETE FROM refresh_tokens WHERE forget_at <= ?1")?.execute(params![now])?;
            tx.prepare_cached("DELETE FROM families WHERE expires_at + ?1 <= ?2")?
                .execute(params![super::families::FAMILY_MEMORY_SECS, now])?;
            // Memory keeps them until the next rotation, but uses them no longer.
            tx.prepare_cached("DELETE FROM signing_keys WHERE hints_until <= ?1")?.execute(params![now])?;
        }
    }
    Ok(())
}

pub(super) fn insert_key(tx: &Transaction<'_>, kid: &str, pkcs8: &[u8]) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO signing_keys (kid, pkcs8, published_until) VALUES (?1, ?2, NULL)")?
        .execute(params![kid, pkcs8])?;
    Ok(())
}

fn insert_access_token(tx: &Transaction<'_>, token: &AccessTokenRow) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO access_tokens (row, jti, expires_at, family, revoked) VALUES (?1, ?2, ?3, ?4, 0)")?
        .execute(params![token.row, token.jti, token.expires_at, token.family.map(family_key)])?;
    Ok(())
}

fn revoke_access_token(tx: &Transaction<'_>, row: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE access_tokens SET revoked = 1 WHERE row = ?1")?.execute(params![row])?;
    Ok(())
}

fn insert_refresh_token(tx: &Transaction<'_>, token: &RefreshTokenRow) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO refresh_tokens (hash, family, generation, forget_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![&token.hash[..], family_key(token.family), token.generation, token.forget_at])?;
    Ok(())
}

fn update_family(tx: &Transaction<'_>, id: FamilyId, state: &FamilyState) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE families SET last_used_at = ?2, rotations = ?3, generation = ?4, rotated_at = ?5,
           current_token = ?6, retired_token = ?7, revoked = ?8
         WHERE id = ?1",
    )?
    .execute(params![
        family_key(id),
        state.last_used_at,
        state.rotations,
        state.generation,
        state.rotated_at,
        state.current_token,
        state.retired_token,
        state.revoked.map(|reason| reason.as_str()),
    ])?;
    Ok(())
}

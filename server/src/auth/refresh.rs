//! Renewal with the refresh token (RFC 6749 §6), single-flight per session, within a server
//! process and across the instances that share a store.
//!
//! Providers rotate refresh tokens and revoke the whole family when a retired one comes back
//! (RFC 9700 §4.14.2). Two tabs, two requests or two server instances that each present the
//! session's refresh token would therefore sign the user out. Two layers prevent it:
//!
//! 1. In this process, a session has at most one renewal in flight: the first caller starts it,
//!    every caller that arrives meanwhile waits for it and gets its result. The renewal runs as
//!    its own task, so a caller that goes away (a closed tab) cannot abandon it halfway.
//! 2. Across instances, that renewal first takes the session's lock in the store (`lock:renew:`,
//!    set-if-absent with an expiry and a random owner value; released only by its owner). An
//!    instance that finds the lock taken waits for it, then reads the token set again: if it
//!    changed, another instance renewed, and that renewal is the answer; if not (the holder
//!    failed, or died and its lock expired), this instance renews.
//!
//! Fencing. A lock with an expiry can outlive its holder's belief that it holds it: a holder
//! stalled past [`LOCK_TTL`] and another instance that took the lock over could both present the
//! same refresh token, and the provider would revoke the family. The holder therefore extends
//! its lock every [`LOCK_HEARTBEAT`] for as long as its renewal runs, until the new tokens are
//! written, however slow the token request, a key set fetch or the store; a holder that dies
//! stops extending it, and the lock is free within [`LOCK_TTL`]. The holder also checks the lock
//! is still its own right before the token request, and the write of the new token set is a
//! compare-and-set against the very record the renewal started from, so a late holder can never
//! overwrite a newer token set with an older one. What remains is a holder frozen (a paused VM)
//! for longer than [`LOCK_TTL`] between its check and its request: rare, and then the
//! provider's reuse detection fails safe (the user signs in again; no token is ever accepted
//! twice).
//!
//! The answer is kept. Once the provider has answered, the refresh token it was given is retired:
//! losing the new one would mean presenting the old one again, and a revoked family. So a store
//! that fails at that moment is tried again for [`WRITE_PATIENCE`], and if it still fails the
//! answer is kept in memory ([`Renewer::kept`]) until the store has it. A task tries every
//! [`KEPT_RETRY`] and holds the session's renewal lock meanwhile, so that no renewal, on another
//! instance either, presents the refresh token the answer retired. Should an outage outlast the
//! lock and the next renewal of the session here take it first, that renewal writes the answer
//! instead of a token request, and its task takes over. What remains: another instance taking
//! the lapsed lock first, after an outage of nearly [`LOCK_TTL`], or this instance stopping with
//! the answer unwritten; the provider's reuse detection then fails safe.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use app::auth::{JournalEntry, JournalOutcome, JournalStep, ReauthReason, RefreshOutcome};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use openidconnect::{AccessToken, RefreshToken};
use rand::RngCore;
use tokio::sync::watch;

use super::{
    oidc_client::{OidcClient, RefreshError, Refreshed},
    record::AuthenticatedSession,
    token_store::{SessionKey, StoredSession, TokenStore},
};
use crate::{
    config::RenewalConfig,
    store::{now_ms, Kv, StoreError},
    unix_now,
};

/// What the browser is told to wait before retrying after a transient failure.
const RETRY_AFTER_SECS: u64 = 2;
/// An access token with less than this left is renewed before server code uses it, so that it
/// cannot expire on the way to the API.
const MIN_ACCESS_TOKEN_SECS: u64 = 5;
/// How long a renewal lock lives unless its holder extends it, see above.
pub const LOCK_TTL: Duration = Duration::from_secs(15);
/// How often the holder of a renewal lock extends it: often, so that the lock lapses only after
/// a store outage of nearly [`LOCK_TTL`] (a renewal is over in milliseconds, before the first).
const LOCK_HEARTBEAT: Duration = Duration::from_secs(1);
/// How often a renewal waiting for another instance's lock looks again.
const LOCK_POLL: Duration = Duration::from_millis(20);
/// How long a renewal waits for another's lock before it answers "not now" (a holder that runs
/// longer is stuck on a provider or a store that the browser will be told about by then).
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// How long a failing store is tried again with the provider's answer, see above.
const WRITE_PATIENCE: Duration = Duration::from_secs(5);
/// How long an answer the store could not take is kept for its session's next renewal here: as
/// long as a session lasts without a request.
const KEPT_SECS: u64 = crate::auth::token_store::IDLE_TIMEOUT_SECS;
/// How often a kept answer is offered to the store again.
const KEPT_RETRY: Duration = Duration::from_secs(2);

type InFlight = HashMap<SessionKey, watch::Receiver<Option<RefreshOutcome>>>;

pub struct Renewer {
    oidc: Arc<OidcClient>,
    tokens: Arc<TokenStore>,
    kv: Arc<Kv>,
    config: RenewalConfig,
    in_flight: Mutex<InFlight>,
    /// Sessions whose next token response is to be dropped on the floor, as if the network lost
    /// it: a fault the dashboard injects in development, never set otherwise.
    lose_next_response: Mutex<HashSet<SessionKey>>,
    /// Provider answers the store could not take (see the module's doc), by session.
    kept: Mutex<HashMap<SessionKey, Rotation>>,
}

/// What a refresh brought, to be written over the session that presented `presented`.
#[derive(Clone)]
struct Rotation {
    presented: RefreshToken,
    refreshed: Refreshed,
    /// What the session keeps as its refresh token: the rotated one, or the presented one when
    /// reuse is allowed, or none.
    next_refresh_token: Option<RefreshToken>,
    rotated: bool,
    at: u64,
    took_ms: u64,
    /// Kept in memory: the lock owner of the task that writes it as soon as it can (see
    /// [`Renewer::flush_kept`]).
    flusher: Option<Vec<u8>>,
}

impl Rotation {
    /// The session with the new tokens, only over the refresh token just presented, which the
    /// provider has now retired: a journal line written meanwhile is kept, but a session signed
    /// out meanwhile stays signed out, and a new family that a silent renew brought is not
    /// replaced by the old.
    fn apply(&self, stored: &AuthenticatedSession) -> Option<AuthenticatedSession> {
        let presented =
            stored.tokens.refresh_token.as_ref().is_some_and(|kept| kept.secret() == self.presented.secret());
        presented.then(|| {
            let mut next = stored.clone();
            next.tokens.access_token = self.refreshed.access_token.clone();
            next.tokens.access_token_expires_at = self.expires_at();
            next.tokens.refresh_token = self.next_refresh_token.clone();
            if self.rotated {
                next.journal.rotations += 1;
            }
            if let Some(secs) = self.refreshed.refresh_expires_in {
                next.journal.refresh_expires_at = Some(self.at + secs);
            }
            next.journal.record(entry(JournalOutcome::Ok, self.took_ms, ""));
            if let Some((jwt, claims, display_name)) = &self.refreshed.id_token {
                next.tokens.id_token = jwt.clone();
                next.id_token_claims = claims.clone();
                next.display_name = display_name.clone();
            }
            next
        })
    }

    fn expires_at(&self) -> u64 {
        self.at + self.refreshed.expires_in
    }
}

/// Takes a finished renewal out of the in-flight map, also if its task panicked.
struct InFlightGuard<'a> {
    renewer: &'a Renewer,
    key: SessionKey,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.renewer.in_flight().remove(&self.key);
    }
}

impl Renewer {
    pub fn new(oidc: Arc<OidcClient>, tokens: Arc<TokenStore>, kv: Arc<Kv>, config: RenewalConfig) -> Self {
        Self {
            oidc,
            tokens,
            kv,
            config,
            in_flight: Mutex::default(),
            lose_next_response: Mutex::default(),
            kept: Mutex::default(),
        }
    }

    fn kept(&self) -> MutexGuard<'_, HashMap<SessionKey, Rotation>> {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn in_flight(&self) -> MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fault injection (development only): the next refresh of this session reaches the provider,
    /// which rotates the refresh token, but its answer is thrown away, as a lost response would
    /// be. The retry then presents the retired token: within the provider's grace window it is
    /// answered as a retry, outside it as a reuse that revokes the family.
    pub fn lose_next_response(&self, key: &SessionKey) {
        self.lost().insert(key.clone());
    }

    fn lost(&self) -> MutexGuard<'_, HashSet<SessionKey>> {
        self.lose_next_response.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Renews the session under `key` now, or joins the renewal of it already in flight.
    pub async fn renew(self: &Arc<Self>, key: &SessionKey) -> RefreshOutcome {
        let mut outcome = {
            let mut in_flight = self.in_flight();
            match in_flight.get(key) {
                Some(running) => running.clone(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    in_flight.insert(key.clone(), receiver.clone());
                    let (this, key) = (self.clone(), key.clone());
                    tokio::spawn(async move {
                        let guard = InFlightGuard { renewer: &this, key };
                        let outcome = this.renew_across_instances(&guard.key).await.unwrap_or_else(store_down);
                        // Out of the map before the result is out: a caller that sees the result
                        // and asks again gets a new renewal, not this one.
                        drop(guard);
                        let _ = sender.send(Some(outcome));
                    });
                    receiver
                }
            }
        };
        let finished = match outcome.wait_for(Option::is_some).await {
            Ok(done) => done.clone(),
            Err(_) => None,
        };
        // `None` only if the renewal's task panicked before it could answer.
        finished
            .unwrap_or(RefreshOutcome::Transient { retry_after: RETRY_AFTER_SECS, detail: "the renewal failed".into() })
    }

    /// A fresh access token for server code that calls an API: the stored one, or, if it is
    /// about to expire, a renewed one (through the same single flight). `Err` is why not.
    pub async fn fresh_access_token(self: &Arc<Self>, key: &SessionKey) -> Result<AccessToken, RefreshOutcome> {
        let stored = self.tokens.get(key).await.map_err(store_down)?;
        let stored = stored.ok_or(RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut })?;
        if stored.session.tokens.access_token_expires_at >= unix_now() + MIN_ACCESS_TOKEN_SECS {
            return Ok(stored.session.tokens.access_token.clone());
        }
        self.renewed_access_token(key).await
    }

    /// Renews (or joins a renewal) and returns the access token it stored.
    pub async fn renewed_access_token(self: &Arc<Self>, key: &SessionKey) -> Result<AccessToken, RefreshOutcome> {
        match self.renew(key).await {
            RefreshOutcome::Renewed { .. } => match self.tokens.get(key).await.map_err(store_down)? {
                Some(stored) => Ok(stored.session.tokens.access_token.clone()),
                None => Err(RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut }),
            },
            other => Err(other),
        }
    }

    /// Takes the session's lock in the store, then renews, unless another instance renewed
    /// while this one waited for the lock.
    async fn renew_across_instances(self: &Arc<Self>, key: &SessionKey) -> Result<RefreshOutcome, StoreError> {
        let Some(seen) = self.tokens.get(key).await? else {
            return Ok(RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut });
        };
        let lock = RenewalLock::new(key);
        let Some(waited) = lock.acquire(&self.kv).await? else {
            tracing::warn!(sub = %seen.session.subject, "another renewal of this session holds its lock for too long");
            return Ok(RefreshOutcome::Transient {
                retry_after: RETRY_AFTER_SECS,
                detail: "another renewal of this session is taking too long".into(),
            });
        };
        let heartbeat = lock.keep_extended(self.kv.clone());
        let outcome = async {
            match self.tokens.get(key).await? {
                None => Ok(RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut }),
                Some(current) if waited && !current.same_tokens(&seen) => {
                    tracing::debug!(sub = %current.session.subject, "another instance renewed this session");
                    Ok(renewed(&current))
                }
                Some(current) => self.refresh_now(key, &lock, current).await,
            }
        }
        .await;
        drop(heartbeat);
        // An answer the store could not take: the lock goes on being held, by a task that writes
        // the answer, so that no renewal anywhere starts from the refresh token it retired. This
        // renewal's lock is the one held now: its task takes over from one whose lock an outage
        // let lapse.
        let kept = self.kept().get_mut(key).map(|rotation| rotation.flusher = Some(lock.owner.clone())).is_some();
        if kept {
            tokio::spawn(self.clone().flush_kept(key.clone(), lock));
        } else {
            lock.release(&self.kv).await;
        }
        outcome
    }

    /// One token request, and the token set replaced in one step (compare-and-set).
    async fn refresh_now(
        &self,
        key: &SessionKey,
        lock: &RenewalLock,
        current: StoredSession,
    ) -> Result<RefreshOutcome, StoreError> {
        // Still kept while it is being written, so that a renewal that takes the lock meanwhile
        // writes it too rather than present the refresh token it retired.
        let kept = self.kept().get(key).cloned();
        let current = match kept {
            Some(rotation) => match self.store_kept(key, current, &rotation).await? {
                Some(stored) if stored.session.tokens.access_token_expires_at >= unix_now() + MIN_ACCESS_TOKEN_SECS => {
                    return Ok(renewed(&stored));
                }
                Some(stored) => stored,
                None => return Ok(RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut }),
            },
            None => current,
        };
        let session = &current.session;
        let Some(refresh_token) = session.tokens.refresh_token.clone() else {
            tracing::info!(sub = %session.subject, "renewal impossible: the session has no refresh token");
            return Ok(RefreshOutcome::ReauthRequired { reason: ReauthReason::NoRefreshToken });
        };
        if !lock.still_held(&self.kv).await? {
            tracing::warn!(sub = %session.subject, "the renewal lock expired before the token request; not sent");
            return Ok(RefreshOutcome::Transient {
                retry_after: RETRY_AFTER_SECS,
                detail: "the renewal took too long".into(),
            });
        }
        let now = unix_now();
        let started = Instant::now();
        let answer = self.oidc.refresh(&refresh_token, session, self.config.ignore_nonce_after_refresh, now).await;
        let took_ms = started.elapsed().as_millis() as u64;
        let mut refreshed = match answer {
            Ok(_) if self.lost().remove(key) => {
                tracing::warn!(sub = %session.subject, "fault injected: the token response is dropped");
                let detail = "the token response was lost (injected fault)";
                self.tokens.note(key, entry(JournalOutcome::Transient, took_ms, detail)).await;
                return Ok(RefreshOutcome::Transient { retry_after: RETRY_AFTER_SECS, detail: detail.into() });
            }
            Ok(refreshed) => refreshed,
            Err(error) => return self.failed(key, &current, error, took_ms).await,
        };

        let rotated = refreshed.refresh_token.take().filter(|rotated| rotated.secret() != refresh_token.secret());
        let next_refresh_token = match rotated {
            Some(_) => rotated.clone(),
            None if self.config.allow_unsafe_reuse_refresh_token => Some(refresh_token.clone()),
            None => {
                tracing::warn!(
                    sub = %session.subject,
                    "the provider did not rotate the refresh token; it is dropped, and the next renewal needs \
                     the user (set ALLOW_UNSAFE_REUSE_REFRESH_TOKEN to keep using it)"
                );
                None
            }
        };
        let rotation = Rotation {
            presented: refresh_token,
            rotated: rotated.is_some(),
            refreshed,
            next_refresh_token,
            at: now,
            took_ms,
            flusher: None,
        };
        match self.store_rotation(key, current.clone(), &rotation).await {
            Ok(true) => {}
            Ok(false) => {
                // Signed out while the request was in flight, or given other tokens meanwhile
                // (a silent renew, past the fencing above): the new tokens are dropped rather
                // than written over that. A session renewed another way is still renewed.
                tracing::warn!(sub = %session.subject, "the session changed during its renewal; the result is dropped");
                return Ok(match self.tokens.get(key).await? {
                    Some(now_stored) if now_stored.session.subject == session.subject => renewed(&now_stored),
                    _ => RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut },
                });
            }
            Err(error) => {
                tracing::error!(
                    sub = %session.subject,
                    %error,
                    "the renewed tokens could not be stored; kept in memory for the next renewal of this session"
                );
                let mut kept = self.kept();
                // Not for ever: a session not renewed here again within its idle timeout is over.
                kept.retain(|_, earlier| earlier.at + KEPT_SECS > now);
                kept.insert(key.clone(), rotation);
                return Err(error);
            }
        }
        let expires_in = rotation.refreshed.expires_in;
        tracing::info!(sub = %session.subject, expires_in, "session renewed");
        Ok(RefreshOutcome::Renewed { expires_at: rotation.expires_at(), expires_in })
    }

    /// Writes `rotation`, and while the store fails, tries again for [`WRITE_PATIENCE`]: the
    /// provider has retired the refresh token it was given. `Ok(false)`: the session changed
    /// meanwhile, and the rotation does not apply to it.
    async fn store_rotation(
        &self,
        key: &SessionKey,
        current: StoredSession,
        rotation: &Rotation,
    ) -> Result<bool, StoreError> {
        let deadline = Instant::now() + WRITE_PATIENCE;
        let mut pause = Duration::from_millis(100);
        let mut tried = false;
        loop {
            match self.tokens.update(key, current.clone(), |stored| rotation.apply(stored)).await {
                Err(error) if Instant::now() + pause < deadline => {
                    tracing::warn!(%error, "could not store the renewed tokens; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    tried = true;
                }
                // An attempt that failed may have been written all the same (the store did it,
                // its answer was lost): then the record holds the new tokens already.
                Ok(false) if tried => {
                    let stored = self.tokens.get(key).await?;
                    let access_token = rotation.refreshed.access_token.secret();
                    return Ok(stored.is_some_and(|s| s.session.tokens.access_token.secret() == access_token));
                }
                written => return written,
            }
        }
    }

    /// Offers the answer kept for `key` to the store every [`KEPT_RETRY`] until it is written
    /// (here, or by a renewal of the session on this instance), the session is gone, or it is too
    /// old to matter; holding the session's `lock` all along (or taking it again, if an outage
    /// outlasted it), as the renewal that kept the answer did. A renewal here that took the lock
    /// over meanwhile starts a task of its own, and this one stops.
    async fn flush_kept(self: Arc<Self>, key: SessionKey, lock: RenewalLock) {
        let heartbeat = lock.keep_extended(self.kv.clone());
        loop {
            tokio::time::sleep(KEPT_RETRY).await;
            let mine = |rotation: &&Rotation| rotation.flusher.as_ref() == Some(&lock.owner);
            let Some(rotation) = self.kept().get(&key).filter(mine).cloned() else { break };
            if rotation.at + KEPT_SECS <= unix_now() {
                self.forget_kept(&key, &rotation);
                break;
            }
            if !matches!(lock.hold_or_take(&self.kv).await, Ok(true)) {
                continue;
            }
            match self.tokens.get(&key).await {
                // On failure it stays kept, for the next round.
                Ok(Some(current)) => {
                    let _ = self.store_kept(&key, current, &rotation).await;
                }
                Ok(None) => self.forget_kept(&key, &rotation),
                Err(_) => {}
            }
        }
        drop(heartbeat);
        lock.release(&self.kv).await;
    }

    /// Writes a provider answer the store could not take before; it stays kept if the store
    /// fails again. `Some` is the session to go on with (with the answer's tokens, or as it was
    /// if it has moved on to others since); `None` if it is gone.
    async fn store_kept(
        &self,
        key: &SessionKey,
        current: StoredSession,
        rotation: &Rotation,
    ) -> Result<Option<StoredSession>, StoreError> {
        if self.store_rotation(key, current.clone(), rotation).await? {
            tracing::info!(sub = %current.session.subject, "the renewed tokens kept in memory are stored");
        }
        self.forget_kept(key, rotation);
        self.tokens.get(key).await
    }

    /// Drops the answer kept for `key`, written or of no more use, unless a later one has
    /// replaced it meanwhile.
    fn forget_kept(&self, key: &SessionKey, rotation: &Rotation) {
        let mut kept = self.kept();
        if kept.get(key).is_some_and(|now| now.presented.secret() == rotation.presented.secret()) {
            kept.remove(key);
        }
    }

    async fn failed(
        &self,
        key: &SessionKey,
        current: &StoredSession,
        error: RefreshError,
        took_ms: u64,
    ) -> Result<RefreshOutcome, StoreError> {
        let subject = &current.session.subject;
        Ok(match error {
            RefreshError::Transient { public, detail } => {
                tracing::warn!(sub = %subject, error = %detail, "renewal failed for now; the session is kept");
                self.tokens.note(key, entry(JournalOutcome::Transient, took_ms, public)).await;
                RefreshOutcome::Transient { retry_after: RETRY_AFTER_SECS, detail: public.to_owned() }
            }
            RefreshError::InvalidGrant(description) => {
                // The refresh token is of no use any more (expired, revoked, or its family revoked
                // for reuse): it is dropped, so that it is never presented again. The session
                // stays for a renewal through the provider's session (the iframe), which the
                // browser tries next, or for the user to sign in again.
                let refused = current.session.tokens.refresh_token.as_ref().map(|token| token.secret());
                let dropped = |stored: &AuthenticatedSession| {
                    let mut next = stored.clone();
                    if next.tokens.refresh_token.as_ref().map(|token| token.secret()) == refused {
                        next.tokens.refresh_token = None;
                    }
                    next.journal.record(entry(JournalOutcome::Refused, took_ms, "invalid_grant"));
                    Some(next)
                };
                self.tokens.update(key, current.clone(), dropped).await?;
                tracing::warn!(sub = %subject, %description, "the provider refused the refresh token; it is dropped");
                RefreshOutcome::ReauthRequired { reason: ReauthReason::InvalidGrant }
            }
            RefreshError::IdTokenRejected(why) => {
                self.tokens.remove(key).await?;
                tracing::error!(sub = %subject, %why, "the refreshed ID token was refused; the session ended");
                RefreshOutcome::ReauthRequired { reason: ReauthReason::IdTokenRejected }
            }
        })
    }
}

/// A line in the session's journal about a refresh made now.
fn entry(outcome: JournalOutcome, took_ms: u64, detail: &str) -> JournalEntry {
    JournalEntry {
        at_ms: now_ms(),
        step: JournalStep::RefreshToken,
        outcome,
        took_ms: Some(took_ms),
        detail: detail.to_owned(),
    }
}

/// The answer for a caller whose renewal another instance made.
fn renewed(stored: &StoredSession) -> RefreshOutcome {
    let expires_at = stored.session.tokens.access_token_expires_at;
    RefreshOutcome::Renewed { expires_at, expires_in: expires_at.saturating_sub(unix_now()) }
}

fn store_down(error: StoreError) -> RefreshOutcome {
    tracing::error!(%error, "renewal impossible: the session store is unavailable");
    RefreshOutcome::Transient { retry_after: RETRY_AFTER_SECS, detail: "the session store is unavailable".into() }
}

/// Stops extending a renewal lock when dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A session's renewal lock in the store: set if absent, with an expiry and a random owner
/// value; released only by that owner.
struct RenewalLock {
    key: String,
    owner: Vec<u8>,
}

impl RenewalLock {
    fn new(session: &SessionKey) -> Self {
        let mut owner = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut owner);
        Self { key: session.lock_key(), owner: URL_SAFE_NO_PAD.encode(owner).into_bytes() }
    }

    /// Takes the lock, waiting while another holder has it, for at most [`LOCK_WAIT`]. `false`
    /// if it was free at once, `true` if this waited for someone else's renewal, `None` if it
    /// waited in vain.
    async fn acquire(&self, kv: &Kv) -> Result<Option<bool>, StoreError> {
        let deadline = Instant::now() + LOCK_WAIT;
        let mut waited = false;
        loop {
            let expires_at = now_ms() + LOCK_TTL.as_millis() as u64;
            if kv.compare_and_set(&self.key, None, self.owner.clone(), expires_at).await? {
                return Ok(Some(waited));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            waited = true;
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Extends the lock every [`LOCK_HEARTBEAT`] while it is still this holder's, until the
    /// returned guard is dropped.
    fn keep_extended(&self, kv: Arc<Kv>) -> Heartbeat {
        let (key, owner) = (self.key.clone(), self.owner.clone());
        Heartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_HEARTBEAT).await;
                let expires_at = now_ms() + LOCK_TTL.as_millis() as u64;
                match kv.compare_and_set(&key, Some(&owner), owner.clone(), expires_at).await {
                    Ok(true) => {}
                    Ok(false) => return tracing::warn!("a renewal lock was lost before its renewal ended"),
                    Err(error) => tracing::warn!(%error, "could not extend a renewal lock"),
                }
            }
        }))
    }

    async fn still_held(&self, kv: &Kv) -> Result<bool, StoreError> {
        Ok(kv.get(&self.key).await?.as_deref() == Some(self.owner.as_slice()))
    }

    /// Whether this holds the lock now, for another [`LOCK_TTL`]: still (extended), or again if
    /// it had expired and nobody took it.
    async fn hold_or_take(&self, kv: &Kv) -> Result<bool, StoreError> {
        let expires_at = now_ms() + LOCK_TTL.as_millis() as u64;
        Ok(kv.compare_and_set(&self.key, Some(&self.owner), self.owner.clone(), expires_at).await?
            || kv.compare_and_set(&self.key, None, self.owner.clone(), expires_at).await?)
    }

    /// Releases the lock if this still holds it; a failure to release only costs the lock's
    /// expiry.
    async fn release(&self, kv: &Kv) {
        if let Err(error) = kv.compare_and_delete(&self.key, &self.owner).await {
            tracing::warn!(%error, "could not release a renewal lock; it expires by itself");
        }
    }
}

//! The provider's state, in memory: sign-in interactions waiting for a password, provider
//! (browser) sessions, authorization codes, the access tokens issued, and refresh token
//! families (in [`families`]).
//!
//! One mutex guards it all; it is never held across an `.await`, and every operation that must
//! be atomic (redeeming a code exactly once, rotating a refresh token exactly once) happens
//! under a single lock. Nothing is signed, and little is allocated, while it is held: callers
//! prepare random values and hashes before, and sign after.
//!
//! With a state file (`state_file` in the configuration), the maps stay the source of truth
//! for every read, and each change that must survive a restart is also handed, under the same
//! lock and so in the same order, to the [`journal`]'s writer thread, which commits it to
//! SQLite ([`state_file`] has the schema and what is loaded at start). The operation returns a
//! [`Saving`]; the endpoint awaits it before sending the response that reveals the change.
//! What is kept: provider sessions (with the consents and accepted terms recorded in them, their
//! browser state for Session Management, and the clients that received tokens in them),
//! refresh token families and their tokens (hashed), the access tokens' records, revocations
//! and their reasons. What is not: interactions waiting at the sign-in, terms or consent page
//! (ten minutes at most, and the page can be opened again) and authorization codes (a minute;
//! after a restart a pending code is unknown, so the client starts the sign-in again, and a
//! code replayed across a restart is refused as unknown rather than revoking its tokens).

mod families;
mod journal;
mod state_file;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};

use families::{Family, RefreshTokenRecord};
pub use families::{
    FamilyFilter, FamilyGrant, FamilyId, NewFamily, Refresh, RefreshPolicy, RefreshRequest, Refusal, RevokedReason,
    Successor,
};
pub(crate) use journal::{Change, Journal, Saving};
pub(crate) use state_file::{open as open_state_file, Opening};

/// How long a code is remembered after it is issued, so that a late replay is still recognised
/// as one (and its tokens revoked) rather than as an unknown code.
const CODE_MEMORY_SECS: u64 = 600;
/// How long the sign-in form may stay open.
const INTERACTION_SECS: u64 = 600;
/// Expired entries are swept at most this often: lookups check expiry themselves, so the sweep
/// only frees memory, and running it on every request would make the lock's hold time grow
/// with the number of live tokens.
const PURGE_INTERVAL_SECS: u64 = 10;

/// 256 bits from the OS generator, base64url: codes, session keys, `sid`, `jti`.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a refresh token or a provider session's cookie: the store keys both by it, so
/// that neither its memory nor its state file holds a usable token (except the few refresh
/// tokens kept in plaintext on purpose, see [`families`]).
pub type TokenHash = [u8; 32];

pub fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// An authorization request that passed every check of `/authorize`.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// `prompt=consent` (OIDC Core §3.1.2.1): the consent page is shown even to a user who
    /// allowed this client before.
    pub prompt_consent: bool,
    /// The `sub` of a valid `id_token_hint`: the user the client expects, and the only one whose
    /// sign-in answers it with a code (OIDC Core §3.1.2.1).
    pub hinted_sub: Option<String>,
}

/// A request waiting for the user at one of the provider's pages, bound to the browser that
/// opened it.
#[derive(Debug, Clone)]
pub struct Interaction {
    pub request: AuthorizationRequest,
    pub browser: String,
    pub created_at: u64,
    pub step: Step,
}

/// The page an [`Interaction`] waits at; each form posts to its own endpoint, which accepts
/// only interactions at its own step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The sign-in form (`/login`).
    SignIn,
    /// The updated terms (`/terms`), to be accepted in the provider session with this `sid`.
    Terms(String),
    /// The consent page (`/consent`), for the provider session with this `sid`: a page opened
    /// for one session must not record consent in another that replaced it meanwhile.
    Consent(String),
}

/// The user's session at the provider (OIDC Core `sid`), keyed by the hash of its cookie.
#[derive(Debug, Clone)]
pub struct ProviderSession {
    pub sid: String,
    pub sub: String,
    pub auth_time: u64,
    pub expires_at: u64,
    /// The clients the user allowed in this session, on the consent page.
    pub consents: Vec<String>,
    /// Whether the user accepted the updated terms in this session (a user with
    /// `interaction_required`).
    pub terms_accepted: bool,
    /// The OP browser state of OIDC Session Management 1.0 §3.2: random, new with every sign-in
    /// into the session, so that it changes whenever the browser's session does (see
    /// [`crate::check_session`]).
    pub browser_state: String,
    /// The clients that received tokens in this session, in the order they first did: the ones
    /// told when it ends (Back-Channel Logout 1.0 §2.7).
    pub clients: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    pub request: AuthorizationRequest,
    pub sub: String,
    pub sid: String,
    pub auth_time: u64,
    pub issued_at: u64,
}

#[derive(Debug)]
struct CodeRecord {
    grant: AuthorizationCode,
    redeemed: bool,
    /// `jti`s of the access tokens issued for this code: revoked if the code comes back.
    issued_tokens: Vec<String>,
    /// The refresh token family started from this code, revoked too if the code comes back.
    family: Option<FamilyId>,
}

#[derive(Debug)]
struct AccessTokenRecord {
    /// Its row in the state file: numbered here, in issue order, so that the file appends
    /// rather than inserts at random, and a revocation finds the row by its key.
    row: u64,
    expires_at: u64,
    revoked: bool,
    /// The refresh token family it was issued from: revoking the family revokes it, without
    /// the family having to list its access tokens (and the hot path having to grow that list).
    family: Option<FamilyId>,
}

/// The outcome of presenting a code at the token endpoint.
#[derive(Debug)]
pub enum Redemption {
    Redeemed(AuthorizationCode),
    Unknown,
    Expired,
    /// Issued to another client (RFC 6749 §4.1.3): left as it is, neither consumed nor revoked,
    /// so that a client holding another's code can neither use it up nor have its tokens revoked.
    IssuedToAnotherClient,
    /// Presented before: the tokens first issued for it have now been revoked (RFC 6749 §4.1.2).
    Replayed {
        revoked_tokens: usize,
        /// The refresh token family started from the code, if this replay revoked it.
        revoked_family: Option<FamilyId>,
        /// The provider session the code was issued in.
        sid: String,
    },
}

#[derive(Default)]
pub struct Store {
    inner: Mutex<Inner>,
    /// Where changes go to disk; `None` keeps everything in memory.
    journal: Option<Arc<Journal>>,
}

#[derive(Debug, Default)]
struct Inner {
    interactions: HashMap<String, Interaction>,
    sessions: HashMap<TokenHash, ProviderSession>,
    /// Each session's key by its `sid`: the back channel, the admin API and reuse detection know
    /// a session by its `sid` only.
    sids: HashMap<String, TokenHash>,
    codes: HashMap<String, CodeRecord>,
    access_tokens: HashMap<String, AccessTokenRecord>,
    families: HashMap<FamilyId, Family>,
    refresh_tokens: HashMap<TokenHash, RefreshTokenRecord>,
    /// Orders families by creation, so that "newest first" holds within one clock second.
    next_family_seq: u64,
    /// The row of the next access token in the state file.
    next_access_token_row: u64,
    next_purge: u64,
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave these maps half-updated in a way that
        // matters more than refusing every request from then on would.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands the change `make` describes to the journal; called with the lock held, so that
    /// changes reach the file in the order they were made. In memory, `make` is never called.
    fn save(&self, make: impl FnOnce() -> Change) -> Saving {
        match &self.journal {
            Some(journal) => journal.append(make()),
            None => Saving::done(),
        }
    }

    /// Frees what has expired, now and then, here and in the state file.
    fn purge_if_due(&self, inner: &mut Inner, now: u64) {
        if now >= inner.next_purge {
            inner.purge(now);
            inner.next_purge = now + PURGE_INTERVAL_SECS;
            // Nobody waits for it: a purge lost to a crash is done again at the next start.
            drop(self.save(|| Change::Purged { now }));
        }
    }

    /// Stops the journal's writer after it has written everything handed to it, and closes the
    /// state file, so that another provider may open it; every later change is refused as not
    /// saved. Nothing to do in memory.
    pub fn close(&self) {
        if let Some(journal) = &self.journal {
            journal.close();
        }
    }

    pub fn start_interaction(&self, request: AuthorizationRequest, browser: String, step: Step, now: u64) -> String {
        let id = random_token();
        let mut inner = self.lock();
        self.purge_if_due(&mut inner, now);
        inner.interactions.insert(id.clone(), Interaction { request, browser, created_at: now, step });
        id
    }

    /// Returns the interaction if it exists, is fresh and belongs to `browser`; it stays in
    /// place so that a mistyped password can be tried again.
    pub fn interaction(&self, id: &str, browser: &str, now: u64) -> Option<Interaction> {
        let inner = self.lock();
        inner.interactions.get(id).filter(|i| i.browser == browser && now < i.created_at + INTERACTION_SECS).cloned()
    }

    pub fn finish_interaction(&self, id: &str) {
        self.lock().interactions.remove(id);
    }

    /// Starts a provider session and returns its cookie value, which the store keeps only as
    /// a hash: the cookie must not be set before the session is saved.
    pub fn start_session(&self, session: ProviderSession) -> (String, Saving) {
        let key = random_token();
        let key_hash = token_hash(&key);
        let mut inner = self.lock();
        let saving = self.save(|| Change::SessionSaved { key_hash, session: session.clone() });
        inner.insert_session(key_hash, session);
        (key, saving)
    }

    /// Signs the user of the session behind `key` in again (a re-authentication, after a
    /// password): the same session, with its `sid`, consents, accepted terms, clients and expiry,
    /// but `auth_time` now and a new `browser_state` (a login event, Session Management 1.0
    /// §3.2), under a new cookie value, returned as [`Self::start_session`] returns one; the old
    /// value names nothing from then on. `None` if the session has ended or expired.
    pub fn reauthenticate(&self, key: &str, now: u64) -> Option<(String, ProviderSession, Saving)> {
        let new_key = random_token();
        let (old_key_hash, key_hash) = (token_hash(key), token_hash(&new_key));
        let mut inner = self.lock();
        inner.sessions.get(&old_key_hash).filter(|s| now < s.expires_at)?;
        let mut session = inner.remove_session(&old_key_hash)?;
        session.auth_time = now;
        session.browser_state = random_token();
        let saving = self.save(|| Change::SessionRekeyed { old_key_hash, key_hash, session: session.clone() });
        inner.insert_session(key_hash, session.clone());
        Some((new_key, session, saving))
    }

    pub fn session(&self, key: &str, now: u64) -> Option<ProviderSession> {
        let key_hash = token_hash(key);
        self.lock().sessions.get(&key_hash).filter(|s| now < s.expires_at).cloned()
    }

    /// Remembers, in the session behind `key`, that its user allowed `client_id`; `None` if the
    /// session has ended or expired.
    pub fn grant_consent(&self, key: &str, client_id: &str, now: u64) -> Option<Saving> {
        self.change_session(key, now, |session| {
            if !session.consents.iter().any(|c| c == client_id) {
                session.consents.push(client_id.to_owned());
            }
        })
    }

    /// Remembers, in the session behind `key`, that its user accepted the updated terms.
    pub fn accept_terms(&self, key: &str, now: u64) -> Option<Saving> {
        self.change_session(key, now, |session| session.terms_accepted = true)
    }

    fn change_session(&self, key: &str, now: u64, change: impl FnOnce(&mut ProviderSession)) -> Option<Saving> {
        let key_hash = token_hash(key);
        let mut inner = self.lock();
        let session = inner.sessions.get_mut(&key_hash).filter(|s| now < s.expires_at)?;
        change(session);
        // The whole row, taken under the lock: of two changes to one session, the file keeps
        // the later, which includes the earlier.
        Some(self.save(|| Change::SessionSaved { key_hash, session: session.clone() }))
    }

    /// Ends every provider session of `sub`, in memory and in the state file; returns the ones
    /// that were still running. Their refresh token families are left alone: signing out of the
    /// provider is not revoking what a client was granted (`offline_access` is for exactly that).
    pub fn end_sessions_of(&self, sub: &str, now: u64) -> (Vec<ProviderSession>, Saving) {
        let mut inner = self.lock();
        let ended: Vec<TokenHash> = inner.sessions.iter().filter(|(_, s)| s.sub == sub).map(|(key, _)| *key).collect();
        self.end(&mut inner, ended, now)
    }

    /// Ends the session behind the cookie value `key` (a sign-out); `None` if it has ended or
    /// expired already.
    pub fn end_session(&self, key: &str, now: u64) -> Option<(ProviderSession, Saving)> {
        let key_hash = token_hash(key);
        let mut inner = self.lock();
        if !inner.sessions.contains_key(&key_hash) {
            return None;
        }
        let (mut ended, saving) = self.end(&mut inner, vec![key_hash], now);
        ended.pop().map(|session| (session, saving))
    }

    /// Ends the session with this `sid`; `None` if there is no such session running.
    pub fn end_session_by_sid(&self, sid: &str, now: u64) -> Option<(ProviderSession, Saving)> {
        let mut inner = self.lock();
        let key_hash = *inner.sids.get(sid)?;
        let (mut ended, saving) = self.end(&mut inner, vec![key_hash], now);
        ended.pop().map(|session| (session, saving))
    }

    /// Removes the sessions `keys` (all present), in memory and in the state file; returns those
    /// still running at `now`.
    fn end(&self, inner: &mut Inner, keys: Vec<TokenHash>, now: u64) -> (Vec<ProviderSession>, Saving) {
        let running = keys
            .iter()
            .filter_map(|key| inner.remove_session(key))
            .filter(|session| now < session.expires_at)
            .collect();
        let saving =
            if keys.is_empty() { Saving::done() } else { self.save(|| Change::SessionsEnded { key_hashes: keys }) };
        (running, saving)
    }

    /// Records that `client_id` receives tokens in the session `sid`, so that it is told when
    /// the session ends (nothing to save if it was already). `None` if the session has ended:
    /// its logout tokens are sent, and a client given tokens now would never hear of it.
    pub fn record_client(&self, sid: &str, client_id: &str, now: u64) -> Option<Saving> {
        let mut inner = self.lock();
        let key_hash = inner.sids.get(sid).copied()?;
        let session = inner.sessions.get_mut(&key_hash).filter(|s| now < s.expires_at)?;
        if session.clients.iter().any(|c| c == client_id) {
            return Some(Saving::done());
        }
        session.clients.push(client_id.to_owned());
        Some(self.save(|| Change::SessionSaved { key_hash, session: session.clone() }))
    }

    pub fn issue_code(&self, grant: AuthorizationCode) -> String {
        let code = random_token();
        let mut inner = self.lock();
        self.purge_if_due(&mut inner, grant.issued_at);
        inner
            .codes
            .insert(code.clone(), CodeRecord { grant, redeemed: false, issued_tokens: Vec::new(), family: None });
        code
    }

    /// Redeems `code` once: the first presentation consumes it whatever happens next, so that a
    /// stolen code cannot be used to guess a PKCE verifier either. On success the access token
    /// about to be issued (`jti`) is recorded under the same lock, so that a replay racing this
    /// request still finds it to revoke. The [`Saving`] covers that record, or the revocations
    /// of a replay.
    pub fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        now: u64,
        lifetime: u64,
        jti: &str,
        token_expires_at: u64,
    ) -> (Redemption, Saving) {
        let mut inner = self.lock();
        let Inner { codes, access_tokens, families, next_access_token_row, .. } = &mut *inner;
        let Some(record) = codes.get_mut(code) else {
            return (Redemption::Unknown, Saving::done());
        };
        if record.grant.request.client_id != client_id {
            return (Redemption::IssuedToAnotherClient, Saving::done());
        }
        if record.redeemed {
            let mut revoked_rows = Vec::new();
            for jti in &record.issued_tokens {
                if let Some(token) = access_tokens.get_mut(jti) {
                    if !std::mem::replace(&mut token.revoked, true) {
                        revoked_rows.push(token.row);
                    }
                }
            }
            let revoked_family = record
                .family
                .filter(|id| families.get_mut(id).is_some_and(|family| family.revoke(RevokedReason::Reuse)));
            let revoked_tokens = revoked_rows.len();
            let saving = self.save(|| Change::CodeReplayed {
                access_tokens: revoked_rows,
                family: revoked_family.and_then(|id| families.get(&id).map(|family| (id, family.state()))),
            });
            let sid = record.grant.sid.clone();
            return (Redemption::Replayed { revoked_tokens, revoked_family, sid }, saving);
        }
        record.redeemed = true;
        if now >= record.grant.issued_at + lifetime {
            return (Redemption::Expired, Saving::done());
        }
        record.issued_tokens.push(jti.to_owned());
        let row = std::mem::replace(next_access_token_row, *next_access_token_row + 1);
        let saving = self.save(|| {
            Change::AccessTokenIssued(AccessTokenRow {
                row,
                jti: jti.to_owned(),
                expires_at: token_expires_at,
                family: None,
            })
        });
        access_tokens.insert(
            jti.to_owned(),
            AccessTokenRecord { row, expires_at: token_expires_at, revoked: false, family: None },
        );
        (Redemption::Redeemed(record.grant.clone()), saving)
    }

    /// True if this provider issued the token and has revoked neither it nor its family.
    pub fn access_token_is_active(&self, jti: &str, now: u64) -> bool {
        let inner = self.lock();
        inner.access_tokens.get(jti).is_some_and(|token| {
            !token.revoked
                && now < token.expires_at
                // A family the store no longer remembers ended long ago: refuse rather than guess.
                && token.family.is_none_or(|id| inner.families.get(&id).is_some_and(|f| f.revoked.is_none()))
        })
    }

    /// Revokes one access token (RFC 7009 §2.1); `None` if it is unknown, expired and
    /// forgotten, or already revoked.
    pub fn revoke_access_token(&self, jti: &str) -> Option<Saving> {
        let mut inner = self.lock();
        let token = inner.access_tokens.get_mut(jti).filter(|token| !token.revoked)?;
        token.revoked = true;
        let row = token.row;
        Some(self.save(|| Change::AccessTokenRevoked { row }))
    }
}

/// An access token's record as the state file keeps it.
pub(crate) struct AccessTokenRow {
    pub row: u64,
    pub jti: String,
    pub expires_at: u64,
    pub family: Option<FamilyId>,
}

impl Inner {
    fn insert_session(&mut self, key_hash: TokenHash, session: ProviderSession) {
        self.sids.insert(session.sid.clone(), key_hash);
        self.sessions.insert(key_hash, session);
    }

    fn remove_session(&mut self, key_hash: &TokenHash) -> Option<ProviderSession> {
        let session = self.sessions.remove(key_hash)?;
        self.sids.remove(&session.sid);
        Some(session)
    }

    /// Removes what has expired; the state file's purge ([`Change::Purged`]) removes the same.
    fn purge(&mut self, now: u64) {
        self.interactions.retain(|_, i| now < i.created_at + INTERACTION_SECS);
        self.sessions.retain(|_, s| now < s.expires_at);
        let sessions = &self.sessions;
        self.sids.retain(|_, key_hash| sessions.contains_key(key_hash));
        self.codes.retain(|_, c| now < c.grant.issued_at + CODE_MEMORY_SECS);
        self.access_tokens.retain(|_, t| now < t.expires_at);
        let families = self.families.len();
        self.families.retain(|_, family| !family.forgotten_at(now));
        if self.families.len() < families {
            let live = &self.families;
            self.refresh_tokens.retain(|_, token| live.contains_key(&token.family));
        }
    }
}

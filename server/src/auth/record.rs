//! What the server keeps in a browser's session: the sign-ins in flight, and once signed in, the
//! key of its [`AuthenticatedSession`] in the [`TokenStore`]. Secrets are types whose `Debug` is
//! redacted, so they cannot reach a log by accident.

use app::auth::{CheckSession, Claims, IdTokenClaims, RenewalPolicy, SessionInfo, SessionJournal, SessionView};
use openidconnect::{AccessToken, CsrfToken, Nonce, PkceCodeVerifier, RefreshToken};
use serde::{Deserialize, Serialize};
use tower_sessions::{cookie::time::Duration, Expiry, Session};

use super::{
    return_to::ReturnTo,
    token_store::{SessionKey, StoredSession, TokenStore},
};
use crate::{error::AuthError, store::sessions::SIGNED_IN_EXPIRY};

const SESSION_KEY: &str = "auth.session_key";
/// The sign-ins in flight, sealed (see [`TokenStore::seal_pending`]).
const PENDING_KEY: &str = "auth.pending.sealed";
/// When the signed-in session's record was last written, to slide its idle timeout.
const TOUCHED_KEY: &str = "auth.touched_at";
/// How stale that may get: the record is written again (and its expiry moved) at most this often.
const TOUCH_EVERY_SECS: u64 = 600;
/// How many sign-ins may be in flight per browser (one per tab, say); the oldest goes first.
const MAX_PENDING: usize = 8;
/// How long a sign-in may take from `/auth/login` to `/auth/callback`.
const PENDING_LIFETIME_SECS: u64 = 600;
/// The expiry of a record that holds only sign-ins in flight: it is of no use after them, and
/// anyone can have one created (a request to `/auth/login` without a cookie).
const PENDING_EXPIRY: Expiry = Expiry::OnInactivity(Duration::seconds(PENDING_LIFETIME_SECS as i64));

/// The raw ID token, kept for `id_token_hint` at logout and silent renew.
#[derive(Clone, Serialize, Deserialize)]
pub struct IdTokenJwt(String);

impl IdTokenJwt {
    pub fn new(jwt: String) -> Self {
        Self(jwt)
    }

    /// The JWT itself, for `id_token_hint` (server-to-provider only, never to a page).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for IdTokenJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenJwt([redacted])")
    }
}

/// The tokens of a signed-in session. Never leaves the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: AccessToken,
    pub access_token_expires_at: u64,
    /// `None` when the provider issued none, or it was dropped (refused, or not rotated).
    pub refresh_token: Option<RefreshToken>,
    pub id_token: IdTokenJwt,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthenticatedSession {
    pub subject: String,
    pub display_name: String,
    pub sid: Option<String>,
    /// The sign-in's nonce: a refreshed ID token that carries one must carry this one
    /// (OIDC Core §12.2).
    pub nonce: Nonce,
    /// The `auth_time` of the sign-in the refresh token came from: a refreshed ID token must not
    /// tell of an earlier one (OIDC Core §12.2, see `oidc_client::same_authentication`). Kept
    /// with `nonce`: a silent renew that brings no new refresh token changes neither, though its
    /// ID token may tell of a later authentication.
    #[serde(default)]
    pub auth_time: Option<i64>,
    pub id_token_claims: IdTokenClaims,
    pub userinfo_claims: Option<Claims>,
    /// OIDC Session Management 1.0: the provider's `session_state` of the last authorization
    /// response, which check_session compares. Not a secret.
    #[serde(default)]
    pub session_state: Option<String>,
    pub tokens: TokenSet,
    /// Sign-in time, rotations and the latest renewals, for the dashboard.
    #[serde(default)]
    pub journal: SessionJournal,
}

/// What the browser is told about keeping a session alive and watching it: the same for every
/// session, from the configuration and the provider's metadata.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    pub renewal: RenewalPolicy,
    pub check_session: Option<CheckSession>,
    /// The fault panel's routes are mounted (development only).
    pub dev_faults: bool,
}

impl AuthenticatedSession {
    /// What the browser may see of this session at `now`.
    pub fn info(&self, now: u64, settings: &BrowserSettings) -> SessionInfo {
        SessionInfo {
            authenticated: true,
            subject: Some(self.subject.clone()),
            display_name: Some(self.display_name.clone()),
            access_token_expires_at: Some(self.tokens.access_token_expires_at),
            access_token_expires_in: Some(self.tokens.access_token_expires_at.saturating_sub(now)),
            sid: self.sid.clone(),
            has_refresh_token: self.tokens.refresh_token.is_some(),
            session_state: self.session_state.clone(),
            renewal: Some(settings.renewal),
            check_session: settings.check_session.clone().filter(|_| self.session_state.is_some()),
        }
    }

    pub fn view(&self, now: u64, settings: &BrowserSettings) -> SessionView {
        SessionView {
            info: self.info(now, settings),
            id_token_claims: self.id_token_claims.clone(),
            userinfo_claims: self.userinfo_claims.clone(),
            journal: self.journal.clone(),
            dev_faults: settings.dev_faults,
        }
    }
}

/// A sign-in between `/auth/login` and `/auth/callback`, or a silent renew between
/// `/auth/silent-renew` and `/auth/silent-callback`, found again by its `state`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub pkce_verifier: PkceCodeVerifier,
    pub return_to: ReturnTo,
    pub created_at: u64,
    /// A silent renew (`prompt=none` in an iframe): answered only at the silent callback, and
    /// never at the interactive one, nor the other way round.
    #[serde(default)]
    pub silent: bool,
}

/// The signed-in session of this browser, if any, with its key.
pub async fn authenticated(
    session: &Session,
    store: &TokenStore,
) -> Result<Option<(SessionKey, StoredSession)>, AuthError> {
    let Some(key) = session.get::<SessionKey>(SESSION_KEY).await? else {
        return Ok(None);
    };
    Ok(store.get(&key).await?.map(|stored| (key, stored)))
}

/// A previous sign-in of this browser that a new one replaced: its open tabs must be told.
pub enum Replaced {
    /// Another user's: their tabs stop showing them.
    ByAnotherUser(SessionKey),
    /// The same user's (or one already over): the tabs go on, with the new session.
    BySameUser(SessionKey),
}

/// Stores the signed-in session under a new session id, so that an id planted in the browser
/// before sign-in is worth nothing after it (session fixation). A previous sign-in of this
/// browser is replaced, and returned.
pub async fn sign_in(
    session: &Session,
    store: &TokenStore,
    authenticated: &AuthenticatedSession,
) -> Result<Option<Replaced>, AuthError> {
    let mut replaced = None;
    if let Some(previous) = session.get::<SessionKey>(SESSION_KEY).await? {
        let someone_else =
            store.get(&previous).await?.is_some_and(|stored| stored.session.subject != authenticated.subject);
        store.remove(&previous).await?;
        replaced = Some(if someone_else {
            Replaced::ByAnotherUser(previous.clone())
        } else {
            Replaced::BySameUser(previous.clone())
        });
        // Its silent renewals in flight were for it: an answer to one (a `login_required`,
        // say) must not act on the session made now.
        let pending = read_pending(session, store).await?;
        if pending.iter().any(|p| p.silent) {
            let interactive: Vec<PendingLogin> = pending.into_iter().filter(|p| !p.silent).collect();
            write_pending(session, store, &interactive).await?;
        }
    }
    session.cycle_id().await?;
    let key = SessionKey::generate();
    store.insert(&key, authenticated).await?;
    session.insert(SESSION_KEY, &key).await?;
    // The callback took its sign-in out of the record, which gave it the short expiry of one
    // that holds only sign-ins in flight; signed in, it lives as long as a session does.
    session.set_expiry(Some(SIGNED_IN_EXPIRY));
    Ok(replaced)
}

/// The key of this browser's signed-in session, if it has one (signed in or not any more).
pub async fn session_key(session: &Session) -> Result<Option<SessionKey>, AuthError> {
    Ok(session.get::<SessionKey>(SESSION_KEY).await?)
}

/// Ends the signed-in session; returns it, for what the caller still has to tell others.
pub async fn sign_out(session: &Session, store: &TokenStore) -> Result<Option<StoredSession>, AuthError> {
    let ended = match session.get::<SessionKey>(SESSION_KEY).await? {
        Some(key) => {
            let ended = store.get(&key).await?;
            store.remove(&key).await?;
            ended
        }
        None => None,
    };
    session.flush().await?;
    Ok(ended)
}

/// tower-sessions moves a session's idle expiry only when its record is written, and writes it
/// only when it changed. A signed-in session in use is marked changed every few minutes, so that
/// it ends after hours of idleness, not hours after sign-in, without a write per request. Its
/// token set is moved with it.
pub async fn keep_alive(
    session: &Session,
    tokens: &TokenStore,
    (key, stored): (&SessionKey, &StoredSession),
    now: u64,
) -> Result<(), AuthError> {
    let touched: Option<u64> = session.get(TOUCHED_KEY).await?;
    if touched.is_none_or(|touched| now >= touched + TOUCH_EVERY_SECS) {
        session.insert(TOUCHED_KEY, now).await?;
        tokens.touch(key, stored).await?;
    }
    Ok(())
}

/// The sign-ins in flight; none when there are none, or when they do not open.
async fn read_pending(session: &Session, store: &TokenStore) -> Result<Vec<PendingLogin>, AuthError> {
    let sealed: Option<String> = session.get(PENDING_KEY).await?;
    Ok(sealed.map(|sealed| store.open_pending(&sealed)).unwrap_or_default())
}

pub async fn push_pending(session: &Session, store: &TokenStore, login: PendingLogin) -> Result<(), AuthError> {
    let now = login.created_at;
    let mut pending = read_pending(session, store).await?;
    pending.retain(|p| now < p.created_at + PENDING_LIFETIME_SECS);
    if pending.len() >= MAX_PENDING {
        pending.remove(0);
    }
    pending.push(login);
    write_pending(session, store, &pending).await
}

/// Writes the sign-ins in flight. A record without a signed-in session then expires with them
/// ([`PENDING_EXPIRY`]); one with a signed-in session keeps that session's expiry.
async fn write_pending(session: &Session, store: &TokenStore, pending: &[PendingLogin]) -> Result<(), AuthError> {
    if pending.is_empty() {
        session.remove_value(PENDING_KEY).await?;
    } else {
        session.insert(PENDING_KEY, store.seal_pending(pending)).await?;
    }
    if session.get::<SessionKey>(SESSION_KEY).await?.is_none() {
        session.set_expiry(Some(PENDING_EXPIRY));
    }
    Ok(())
}

/// Removes and returns the sign-in started with `state`: each `state` is good for one callback.
/// A `state` this browser did not start changes nothing (and creates no session record).
pub async fn take_pending(
    session: &Session,
    store: &TokenStore,
    state: &str,
    now: u64,
) -> Result<Option<PendingLogin>, AuthError> {
    let mut pending = read_pending(session, store).await?;
    let Some(found) = pending.iter().position(|p| p.state.secret() == state).map(|i| pending.remove(i)) else {
        return Ok(None);
    };
    let expires_at = found.created_at + PENDING_LIFETIME_SECS;
    let first_use = store.use_state_once(state, expires_at.max(now + 1) * 1000).await?;
    write_pending(session, store, &pending).await?;
    if !first_use {
        tracing::warn!("a sign-in's state came back a second time while its first callback was under way");
    }
    Ok((first_use && now < expires_at).then_some(found))
}

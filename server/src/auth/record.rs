//! What the server keeps in a browser's session: the sign-ins in flight, and once signed in,
//! the tokens. Secrets are types whose `Debug` is redacted, so they cannot reach a log by accident.

use app::auth::{IdTokenClaims, SessionInfo, SessionView};
use openidconnect::{AccessToken, CsrfToken, Nonce, PkceCodeVerifier, RefreshToken};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::return_to::ReturnTo;
use crate::error::AuthError;

const AUTHENTICATED_KEY: &str = "auth.authenticated";
const PENDING_KEY: &str = "auth.pending";
/// How many sign-ins may be in flight per browser (one per tab, say); the oldest goes first.
const MAX_PENDING: usize = 8;
/// How long a sign-in may take from `/auth/login` to `/auth/callback`.
const PENDING_LIFETIME_SECS: u64 = 600;

/// The raw ID token, kept for `id_token_hint` at logout and silent renew.
#[derive(Clone, Serialize, Deserialize)]
pub struct IdTokenJwt(String);

impl IdTokenJwt {
    pub fn new(jwt: String) -> Self {
        Self(jwt)
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
    pub refresh_token: Option<RefreshToken>,
    pub id_token: IdTokenJwt,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthenticatedSession {
    pub subject: String,
    pub display_name: String,
    pub sid: Option<String>,
    pub id_token_claims: IdTokenClaims,
    pub tokens: TokenSet,
}

impl AuthenticatedSession {
    /// What the browser may see of this session.
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            authenticated: true,
            subject: Some(self.subject.clone()),
            display_name: Some(self.display_name.clone()),
            access_token_expires_at: Some(self.tokens.access_token_expires_at),
            sid: self.sid.clone(),
        }
    }

    pub fn view(&self) -> SessionView {
        SessionView { info: self.info(), id_token_claims: self.id_token_claims.clone() }
    }
}

/// A sign-in between `/auth/login` and `/auth/callback`, found again by its `state`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub pkce_verifier: PkceCodeVerifier,
    pub return_to: ReturnTo,
    pub created_at: u64,
}

pub async fn authenticated(session: &Session) -> Result<Option<AuthenticatedSession>, AuthError> {
    Ok(session.get(AUTHENTICATED_KEY).await?)
}

/// Stores the signed-in session under a new session id, so that an id planted in the browser
/// before sign-in is worth nothing after it (session fixation).
pub async fn sign_in(session: &Session, authenticated: &AuthenticatedSession) -> Result<(), AuthError> {
    session.cycle_id().await?;
    session.insert(AUTHENTICATED_KEY, authenticated).await?;
    Ok(())
}

pub async fn sign_out(session: &Session) -> Result<(), AuthError> {
    Ok(session.flush().await?)
}

pub async fn push_pending(session: &Session, login: PendingLogin) -> Result<(), AuthError> {
    let now = login.created_at;
    let mut pending: Vec<PendingLogin> = session.get(PENDING_KEY).await?.unwrap_or_default();
    pending.retain(|p| now < p.created_at + PENDING_LIFETIME_SECS);
    if pending.len() >= MAX_PENDING {
        pending.remove(0);
    }
    pending.push(login);
    Ok(session.insert(PENDING_KEY, pending).await?)
}

/// Removes and returns the sign-in started with `state`: each `state` is good for one callback.
pub async fn take_pending(session: &Session, state: &str, now: u64) -> Result<Option<PendingLogin>, AuthError> {
    let mut pending: Vec<PendingLogin> = session.get(PENDING_KEY).await?.unwrap_or_default();
    let found = pending.iter().position(|p| p.state.secret() == state).map(|i| pending.remove(i));
    session.insert(PENDING_KEY, &pending).await?;
    Ok(found.filter(|p| now < p.created_at + PENDING_LIFETIME_SECS))
}

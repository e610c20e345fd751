//! `GET /auth/callback`, the redirect URI: matches `state` to a sign-in this browser started,
//! exchanges the code with the PKCE verifier, validates the ID token, and only then signs in.

use app::auth::{JournalEntry, JournalOutcome, JournalStep};
use axum::{
    extract::{rejection::QueryRejection, Query, State},
    response::Redirect,
};
use serde::Deserialize;
use tower_sessions::Session;

use super::oidc_client::RedirectTarget;
use super::record;
use crate::{error::AuthError, store::now_ms, unix_now, AppState};

/// The authorization response (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207 `iss`).
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
    /// OIDC Session Management 1.0 §3, when the provider supports it.
    pub session_state: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<Redirect, AuthError> {
    let Query(query) = query?;
    let now = unix_now();
    let client_state = query.state.ok_or(AuthError::UnknownState)?;
    // The state is consumed whatever happens next: a callback URL works once.
    let pending = record::take_pending(&session, &state.tokens, &client_state, now)
        .await?
        .filter(|pending| !pending.silent)
        .ok_or(AuthError::UnknownState)?;
    if !state.oidc.response_issuer_is_ours(query.iss.as_deref()) {
        return Err(AuthError::IssuerMismatch);
    }
    if let Some(error) = query.error {
        return Err(AuthError::ProviderRefused { error });
    }
    let code = query.code.ok_or(AuthError::MissingCode)?;

    let mut authenticated =
        state.oidc.exchange_code(code, pending.pkce_verifier, pending.nonce, RedirectTarget::SignIn, now).await?;
    authenticated.session_state = query.session_state;
    // A sign-in again after the session could not be renewed continues its journal, so that the
    // dashboard shows the whole story: the failed renewal, then this sign-in.
    if let Ok(Some((_, earlier))) = record::authenticated(&session, &state.tokens).await {
        if earlier.session.subject == authenticated.subject {
            authenticated.journal.entries = earlier.session.journal.entries.clone();
        }
    }
    authenticated.journal.record(JournalEntry {
        at_ms: now_ms(),
        step: JournalStep::Interactive,
        outcome: JournalOutcome::Ok,
        took_ms: None,
        detail: String::new(),
    });
    let (sub, sid, refresh) =
        (authenticated.subject.clone(), authenticated.sid.clone(), authenticated.tokens.refresh_token.is_some());
    match record::sign_in(&session, &state.tokens, &authenticated).await? {
        // Another user's tabs in this browser stop showing them at once, not at their next renewal.
        Some(record::Replaced::ByAnotherUser(key)) => state.events.ended(&key).await,
        // The same user's go on, their push channels now watching the new session.
        Some(record::Replaced::BySameUser(key)) => state.events.moved(&key).await,
        None => {}
    }
    tracing::info!(%sub, ?sid, refresh_token = refresh, "signed in");
    Ok(Redirect::to(pending.return_to.as_str()))
}

//! `GET /auth/login`: starts the authorization code flow (RFC 6749 §4.1.1) with PKCE, `state`
//! and `nonce`, all kept server-side in this browser's session.

use axum::{
    extract::{rejection::QueryRejection, Query, State},
    response::Redirect,
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    record::{self, PendingLogin},
    return_to::ReturnTo,
};
use crate::{error::AuthError, unix_now, AppState};

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Redirect, AuthError> {
    let Query(query) = query?;
    let return_to = match query.return_to.as_deref() {
        Some(raw) => ReturnTo::parse(raw)?,
        None => ReturnTo::home(),
    };
    let start = state.oidc.start();
    record::push_pending(
        &session,
        &state.tokens,
        PendingLogin {
            state: start.state,
            nonce: start.nonce,
            pkce_verifier: start.pkce_verifier,
            return_to,
            created_at: unix_now(),
            silent: false,
        },
    )
    .await?;
    Ok(Redirect::to(start.url.as_str()))
}

//! `POST /auth/logout`: ends the session at this app. (Ending it at the provider too, and
//! revoking the refresh token, is RP-initiated logout, which comes later.)

use axum::{extract::State, response::Redirect};
use tower_sessions::Session;

use super::record;
use crate::{error::AuthError, AppState};

pub async fn logout(State(state): State<AppState>, session: Session) -> Result<Redirect, AuthError> {
    if let Some(ended) = record::sign_out(&session, &state.tokens).await? {
        tracing::info!(sub = %ended.session.subject, "signed out");
    }
    Ok(Redirect::to("/"))
}

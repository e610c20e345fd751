//! `POST /auth/logout`: ends the session at this app. (Ending it at the provider too, and
//! revoking the refresh token, is RP-initiated logout, which comes later.)

use axum::response::Redirect;
use tower_sessions::Session;

use super::record;
use crate::error::AuthError;

pub async fn logout(session: Session) -> Result<Redirect, AuthError> {
    if let Some(authenticated) = record::authenticated(&session).await? {
        tracing::info!(sub = %authenticated.subject, "signed out");
    }
    record::sign_out(&session).await?;
    Ok(Redirect::to("/"))
}

//! `POST /auth/logout`: RP-Initiated Logout 1.0 with revocation. The server revokes the refresh
//! token (RFC 7009; its whole family goes with it), then the access token, destroys the session,
//! tells every open tab of it ([`events`](super::events)), and sends the browser to the
//! provider's `end_session_endpoint` with `id_token_hint` and `post_logout_redirect_uri`, so
//! that the provider session ends too. A revocation that fails is logged and the sign-out goes
//! on: the user asked to leave, and the tokens die with the session here anyway.

use axum::{extract::State, response::Redirect};
use openidconnect::CsrfToken;
use tower_sessions::Session;

use super::{oidc_client::Revocable, record};
use crate::{error::AuthError, AppState};

pub async fn logout(State(state): State<AppState>, session: Session) -> Result<Redirect, AuthError> {
    let Some((key, stored)) = record::authenticated(&session, &state.tokens).await? else {
        record::sign_out(&session, &state.tokens).await?;
        return Ok(Redirect::to("/"));
    };
    let signed_in = &stored.session;
    let tokens = &signed_in.tokens;
    let mut revocations = Vec::new();
    if let Some(refresh_token) = &tokens.refresh_token {
        revocations.push(("refresh token", Revocable::RefreshToken(refresh_token)));
    }
    revocations.push(("access token", Revocable::AccessToken(&tokens.access_token)));
    for (what, token) in revocations {
        match state.oidc.revoke(token).await {
            Ok(true) => tracing::info!(sub = %signed_in.subject, "{what} revoked"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(sub = %signed_in.subject, %error, "could not revoke the {what}; signing out anyway")
            }
        }
    }
    record::sign_out(&session, &state.tokens).await?;
    state.events.ended(&key).await;
    tracing::info!(sub = %signed_in.subject, "signed out");

    let after = format!("{}/", state.config.origin());
    let end_session = state.oidc.end_session_url(tokens.id_token.as_str(), &after, CsrfToken::new_random().secret());
    Ok(Redirect::to(end_session.as_ref().map(|url| url.as_str()).unwrap_or("/")))
}

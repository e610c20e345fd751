//! `POST /auth/backchannel-logout` (Back-Channel Logout 1.0): the provider tells this app, server
//! to server, that a provider session ended. There is no cookie and no `Origin` here, so the
//! route sits outside the same-origin check of browser requests: the logout token alone
//! authenticates it, validated per §2.6 ([`logout_token`](super::logout_token)). Every
//! signed-in session of that `sid` (or, without one, of that `sub`) ends, on every instance
//! sharing the store, and every open tab of those sessions hears of it at once
//! ([`events`](super::events)).
//!
//! Answers 200, or 400 with a JSON error body (§2.8), or 503 while the session store is down (so
//! that the provider may retry: a 400 is final); always `Cache-Control: no-store`.

use std::collections::HashMap;

use axum::{
    extract::{rejection::FormRejection, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Form, Json,
};
use serde_json::json;

use super::logout_token::{self, Refusal};
use crate::{unix_now, AppState};

/// A body that is not a form (another `Content-Type`, say) gets this endpoint's 400 with
/// `no-store` (§2.8), not axum's own answer (a 415 without it).
pub async fn backchannel_logout(
    State(state): State<AppState>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            tracing::warn!(error = %rejection.body_text(), "back-channel logout: the body is not a form");
            return refused("the body must be a form (application/x-www-form-urlencoded) with logout_token");
        }
    };
    let Some(token) = form.get("logout_token") else {
        return refused("logout_token is required");
    };
    let claims = match logout_token::validate(&state, token, unix_now()).await {
        Ok(claims) => claims,
        Err(Refusal::Invalid(reason)) => return refused(reason),
        Err(Refusal::StoreUnavailable) => {
            tracing::error!("back-channel logout: the replay cache (the session store) is unavailable");
            return store_down();
        }
    };
    // The protected API refuses this provider session's access tokens from now on.
    state.logged_out.record(claims.sid.as_deref(), claims.sub.as_deref(), unix_now()).await;
    let keys = match state.tokens.sessions_of(claims.sid.as_deref(), claims.sub.as_deref()).await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::error!(%error, "back-channel logout: the sessions to end cannot be listed");
            logout_token::release(&state, &claims).await;
            return store_down();
        }
    };
    // Every session that can be ended is; if one cannot, the answer is a 503 and the token's
    // jti is released, so that the provider's retry ends the rest (those ended already are
    // simply not found again).
    let (mut ended, mut failed) = (0, 0);
    for key in keys {
        let stored = match state.tokens.get(&key).await {
            Ok(Some(stored)) => stored,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(%error, "back-channel logout: a session to end cannot be read");
                failed += 1;
                continue;
            }
        };
        // With both `sid` and `sub`, a session must match both. The index of a `sid` keeps a
        // session that a silent renew has since moved to another provider session: the `sid` it
        // holds now is the one that counts.
        let other_sid = claims.sid.as_deref().is_some_and(|sid| stored.session.sid.as_deref() != Some(sid));
        if other_sid || claims.sub.as_deref().is_some_and(|sub| sub != stored.session.subject) {
            continue;
        }
        match state.tokens.remove(&key).await {
            Ok(()) => {
                state.events.ended(&key).await;
                ended += 1;
            }
            Err(error) => {
                tracing::error!(%error, "back-channel logout: a session to end cannot be removed");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        tracing::error!(sid = ?claims.sid, sub = ?claims.sub, ended, failed, "back-channel logout: not every session ended; asking the provider to retry");
        logout_token::release(&state, &claims).await;
        return store_down();
    }
    tracing::info!(sid = ?claims.sid, sub = ?claims.sub, ended, "back-channel logout: sessions ended");
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

fn store_down() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, [(header::CACHE_CONTROL, "no-store"), (header::RETRY_AFTER, "5")]).into_response()
}

fn refused(reason: &'static str) -> Response {
    tracing::warn!(reason, "back-channel logout refused");
    let body = json!({ "error": "invalid_request", "error_description": reason });
    (StatusCode::BAD_REQUEST, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

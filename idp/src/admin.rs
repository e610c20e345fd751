//! A JSON admin API for development and tests, under `/admin/`, mounted only when the
//! configuration sets `admin_api`: counters, refresh token families, a simulated refresh token
//! reuse, and signing key rotation.
//!
//! It has no authentication of its own. What it does refuse is a request that the browser marks
//! `Sec-Fetch-Site: cross-site` (Fetch Metadata): a page on another site must not be able to
//! drive it through a developer's browser. Same-site callers (the demo app on another port of
//! `localhost`) and non-browser clients, which send no such header, are served.
//!
//! - `GET  /admin/metrics`: counts since start (see [`crate::metrics`]).
//! - `GET  /admin/users/{sub}/families`: `{"families": [...]}`, newest first.
//! - `POST /admin/families/{id}/revoke`: `{"revoked": true}`, or 404 `{"error": "unknown family"}`.
//! - `POST /admin/users/{sub}/simulate-reuse`: presents the newest retired refresh token of the
//!   user's newest active family through the real refresh grant, as its client would:
//!   `{"family", "error", "error_description"}`; 404 without an active family, 409 before the
//!   family has rotated.
//! - `POST /admin/keys/rotate`: `{"kid": new, "kids": [every kid in the JWKS]}`.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{Path, Request, State},
    http::HeaderMap,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

use crate::{
    error::{no_store, AdminError},
    keys::SigningKey,
    metrics::Metrics,
    refresh,
    store::{FamilyId, RevokedReason},
    ProviderState,
};

pub fn router() -> Router<Arc<ProviderState>> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/users/{sub}/families", get(families))
        .route("/users/{sub}/simulate-reuse", post(simulate_reuse))
        .route("/families/{id}/revoke", post(revoke_family))
        .route("/keys/rotate", post(rotate_keys))
        .layer(middleware::from_fn(refuse_cross_site))
}

async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if is_cross_site(request.headers()) {
        return AdminError::CrossSite.into_response();
    }
    next.run(request).await
}

fn is_cross_site(headers: &HeaderMap) -> bool {
    headers.get("sec-fetch-site").is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"cross-site"))
}

fn answer(body: Value) -> Response {
    (no_store(), Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<ProviderState>>) -> Response {
    answer(state.metrics.snapshot())
}

async fn families(State(state): State<Arc<ProviderState>>, Path(sub): Path<String>) -> Response {
    let families = state.store.families_of(&sub, state.now(), state.config.lifetimes.refresh_token_idle_secs);
    answer(json!({ "families": families }))
}

async fn revoke_family(
    State(state): State<Arc<ProviderState>>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let unknown = AdminError::NotFound("unknown family");
    let id: FamilyId = id.parse().map_err(|_| AdminError::NotFound("unknown family"))?;
    let (newly, saving) = state.store.revoke_family(id, RevokedReason::Admin).ok_or(unknown)?;
    if newly {
        Metrics::increment(&state.metrics.families_revoked);
        tracing::info!(family = %id, "refresh token family revoked through the admin API");
    }
    saving.saved().await?;
    Ok(answer(json!({ "revoked": true })))
}

async fn simulate_reuse(
    State(state): State<Arc<ProviderState>>,
    Path(sub): Path<String>,
) -> Result<Response, AdminError> {
    let idle_secs = state.config.lifetimes.refresh_token_idle_secs;
    let (family, client_id, retired) = state
        .store
        .newest_active_family(&sub, state.now(), idle_secs)
        .ok_or(AdminError::NotFound("no active refresh token family for this user"))?;
    let retired = retired.ok_or(AdminError::Conflict("the family has not rotated yet"))?;
    let client =
        state.config.client(&client_id).ok_or(AdminError::NotFound("the family's client is not registered"))?;
    tracing::info!(%family, %client_id, %sub, "simulating the reuse of a retired refresh token");
    let params = HashMap::from([("refresh_token".to_owned(), retired)]);
    match refresh::refresh_token_grant(&state, client, &params).await {
        Err(error) => Ok(answer(json!({
            "family": family.to_string(),
            "error": error.code(),
            "error_description": error.description(),
        }))),
        // The client has a grace window and the token is its newest retired one, retired within
        // it: the provider took it for a retry, as it would from the client itself.
        Ok(_) => Err(AdminError::Conflict(
            "the retired token is inside the client's grace window, so it was answered as a retry, not as reuse",
        )),
    }
}

async fn rotate_keys(State(state): State<Arc<ProviderState>>) -> Result<Response, AdminError> {
    let now = state.now();
    let key = state.keys.rotate_to(SigningKey::generate(), now, state.longest_signed_token_secs()).await?;
    let kids: Vec<String> = state.keys.published(now).iter().map(|k| k.kid().to_owned()).collect();
    tracing::info!(kid = key.kid(), published = kids.len(), "signing key rotated through the admin API");
    Ok(answer(json!({ "kid": key.kid(), "kids": kids })))
}

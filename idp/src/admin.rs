//! A JSON admin API for development and tests, under `/admin/`, mounted only when the
//! configuration sets `admin_api`: counters, refresh token families, a simulated refresh token
//! reuse, signing key rotation, ending provider sessions, a slow `/authorize`, and logout
//! tokens with chosen defects.
//!
//! It has no authentication of its own. What it does refuse is a request that the browser marks
//! `Sec-Fetch-Site: cross-site` (Fetch Metadata): a page on another site must not be able to
//! drive it through a developer's browser. Same-site callers (the demo app on another port of
//! `localhost`) and non-browser clients, which send no such header, are served. So that a page
//! on another site cannot reach it as its own origin either, by rebinding its name to this
//! address (DNS rebinding), a request must name this provider's host, or a loopback one, in
//! `Host`.
//!
//! - `GET  /admin/metrics`: counts since start (see [`crate::metrics`]), among them
//!   `authorize_requests` by `prompt`: `{"default", "none", "login", "consent", "login consent",
//!   "invalid"}`, and `backchannel_logouts`: `{"sent", "delivered", "failed", "retries"}` (see
//!   [`crate::backchannel`]; the tokens of `/admin/logout-token` are not counted).
//! - `GET  /admin/users/{sub}/families`: `{"families": [...]}`, newest first.
//! - `POST /admin/families/{id}/revoke`: `{"revoked": true}`, or 404 `{"error": "unknown family"}`.
//! - `POST /admin/users/{sub}/simulate-reuse[?sid=..&client_id=..]`: presents the newest retired
//!   refresh token of the user's newest active family (of that provider session and client,
//!   where given) through the real refresh grant, as its client would:
//!   `{"family", "error", "error_description"}`; 404 without an active family, 409 before the
//!   family has rotated.
//! - `POST /admin/keys/rotate[?alg=RS256]`: rotates the ES256 key (or the RS256 one);
//!   `{"kid": new, "kids": [every kid of that algorithm in the JWKS]}`.
//! - `POST /admin/users/{sub}/end-session[?backchannel=false]`: ends every provider session of
//!   the user (without telling the clients, if asked), as if they
//!   had signed out of the provider elsewhere (the state file forgets them too; their refresh
//!   token families are left alone): `{"ended": N}`, the number still running. The next
//!   `prompt=none` from any of their browsers answers `login_required`, their OP iframes answer
//!   `changed`, and each session's clients get logout tokens (Back-Channel Logout), in the
//!   background.
//! - `POST /admin/sessions/{sid}/end[?backchannel=false]`: the same for one provider session:
//!   `{"ended": true}`, or 404 `{"error": "unknown session"}` (never was, ended, or expired).
//! - `POST /admin/logout-token` with `{"client_id", "sub"?, "sid"?, "defects"?: [..],
//!   "replay_jti"?}`: builds a logout token for the client (`sub` and `sid` as given, at least
//!   one of them; `jti` random, or `replay_jti`), gives it the chosen defects (see
//!   [`crate::backchannel::Defect`]: `bad_signature`, `alg_none`, `hs256_with_public_key`,
//!   `unknown_kid`, `wrong_iss`, `wrong_aud`, `expired`, `iat_future`, `iat_old`, `nonce_present`,
//!   `events_missing`, `events_wrong`, `no_sub_no_sid`, `typ_wrong`; none: a valid token; `typ_generic`
//!   or `typ_absent`: valid, but not explicitly typed), POSTs
//!   it to the client's `backchannel_logout_uri` once, and answers `{"status": <the client's
//!   HTTP status>, "body": <its body as text>, "jti": "..."}`. 404 for an unknown client, 409
//!   for one without a `backchannel_logout_uri`, 400 for an unknown defect or a combination
//!   that cannot be built, 502 `{"error"}` when the client cannot be reached.
//! - `POST /admin/delay` with `{"authorize_ms": N, "token_ms": M}` (either may be left out: it
//!   keeps its value): every later `/authorize` request waits N milliseconds, every `/token`
//!   request M, before it is answered (a slow provider, for timeout tests); 0 turns it off.
//!   Answers the settings, `{"authorize_ms": N, "token_ms": M}`; each at most [`MAX_DELAY_MS`].
//! - `POST /admin/outage` with `{"token": true|false}`: while on, `/token` answers 503 (a
//!   provider that is down); answers the setting.

use std::{
    collections::HashMap,
    sync::{atomic::Ordering, Arc},
};

use axum::{
    body::Bytes,
    extract::{Path, Query, Request, State},
    http::HeaderMap,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    backchannel::{self, Defect, Ending, Forging},
    error::{no_store, AdminError},
    keys::{SigningAlg, SigningKey},
    metrics::Metrics,
    refresh,
    store::{FamilyFilter, FamilyId, RevokedReason},
    ProviderState,
};

pub fn router(state: Arc<ProviderState>) -> Router<Arc<ProviderState>> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/users/{sub}/families", get(families))
        .route("/users/{sub}/simulate-reuse", post(simulate_reuse))
        .route("/families/{id}/revoke", post(revoke_family))
        .route("/keys/rotate", post(rotate_keys))
        .route("/users/{sub}/end-session", post(end_sessions))
        .route("/sessions/{sid}/end", post(end_session))
        .route("/logout-token", post(logout_token))
        .route("/delay", post(set_delay))
        .route("/outage", post(set_outage))
        .layer(middleware::from_fn_with_state(state, refuse_cross_site))
}

async fn refuse_cross_site(State(state): State<Arc<ProviderState>>, request: Request, next: Next) -> Response {
    if is_cross_site(request.headers()) {
        return AdminError::CrossSite.into_response();
    }
    let issuer_host = state.config.issuer.host_str().unwrap_or_default();
    // HTTP/2 carries the host in the URI's authority, HTTP/1.1 in `Host`.
    let named = match request.uri().authority() {
        Some(authority) => Some(authority.as_str().to_owned()),
        None => request.headers().get(axum::http::header::HOST).map(|host| host.to_str().unwrap_or("?").to_owned()),
    };
    if !names_this_provider(named.as_deref(), issuer_host) {
        tracing::warn!("admin API: a request for a foreign Host refused (DNS rebinding?)");
        return AdminError::ForeignHost.into_response();
    }
    next.run(request).await
}

/// Whether the host a request names (none: not a browser) is the issuer's host or a loopback
/// one, whatever the port.
fn names_this_provider(named: Option<&str>, issuer_host: &str) -> bool {
    let Some(named) = named else { return true };
    let Ok(authority) = named.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let name = authority.host().trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case(issuer_host.trim_start_matches('[').trim_end_matches(']'))
        || name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
    Query(of): Query<FamilyFilter>,
) -> Result<Response, AdminError> {
    let idle_secs = state.config.lifetimes.refresh_token_idle_secs;
    let (family, client_id, retired) = state
        .store
        .newest_active_family(&sub, &of, state.now(), idle_secs)
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

/// `?alg=RS256` rotates the RS256 key; without it, the ES256 key, which signs access tokens and
/// (by default) ID tokens.
#[derive(Deserialize)]
struct RotateOptions {
    #[serde(default)]
    alg: SigningAlg,
}

async fn rotate_keys(
    State(state): State<Arc<ProviderState>>,
    Query(options): Query<RotateOptions>,
) -> Result<Response, AdminError> {
    // An RSA key takes a moment to make: not on a thread that serves requests.
    let key = tokio::task::spawn_blocking(move || SigningKey::generate_for(options.alg))
        .await
        .map_err(|_| AdminError::Conflict("the new key could not be made"))?;
    let now = state.now();
    let key = state.keys.rotate_to(key, now, state.key_retirement()).await?;
    let published = state.keys.published(now);
    let kids: Vec<&str> = published.iter().filter(|k| k.alg() == options.alg).map(|k| k.kid()).collect();
    tracing::info!(kid = key.kid(), published = kids.len(), "signing key rotated through the admin API");
    Ok(answer(json!({ "kid": key.kid(), "kids": kids })))
}

/// `?backchannel=false` ends the sessions without telling the clients: what a provider without
/// back-channel logout does, so that a test can prove the app notices through check_session.
#[derive(Deserialize)]
struct EndOptions {
    #[serde(default = "yes")]
    backchannel: bool,
}

fn yes() -> bool {
    true
}

async fn end_sessions(
    State(state): State<Arc<ProviderState>>,
    Path(sub): Path<String>,
    Query(options): Query<EndOptions>,
) -> Result<Response, AdminError> {
    let (ended, saving) = state.store.end_sessions_of(&sub, state.now());
    saving.saved().await?;
    tracing::info!(%sub, ended = ended.len(), backchannel = options.backchannel, "provider sessions ended through the admin API");
    if options.backchannel {
        for session in &ended {
            drop(backchannel::notify(&state, session, Ending::Admin));
        }
    }
    Ok(answer(json!({ "ended": ended.len() })))
}

async fn end_session(
    State(state): State<Arc<ProviderState>>,
    Path(sid): Path<String>,
    Query(options): Query<EndOptions>,
) -> Result<Response, AdminError> {
    let (session, saving) =
        state.store.end_session_by_sid(&sid, state.now()).ok_or(AdminError::NotFound("unknown session"))?;
    saving.saved().await?;
    tracing::info!(%sid, backchannel = options.backchannel, "provider session ended through the admin API");
    if options.backchannel {
        drop(backchannel::notify(&state, &session, Ending::Admin));
    }
    Ok(answer(json!({ "ended": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutTokenRequest {
    client_id: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    defects: Vec<Defect>,
    #[serde(default)]
    replay_jti: Option<String>,
}

/// A logout token with the asked defects, delivered once and synchronously, for testing a
/// client's validation; nothing is ended and nothing is counted.
async fn logout_token(State(state): State<Arc<ProviderState>>, body: Bytes) -> Result<Response, AdminError> {
    let request: LogoutTokenRequest = serde_json::from_slice(&body).map_err(|_| {
        AdminError::BadRequest(
            r#"expected {"client_id", "sub"?, "sid"?, "defects"?: [...], "replay_jti"?} with defects among bad_signature, alg_none, hs256_with_public_key, unknown_kid, wrong_iss, wrong_aud, expired, iat_future, iat_old, nonce_present, events_missing, events_wrong, no_sub_no_sid, typ_wrong, typ_generic, typ_absent"#,
        )
    })?;
    let client = state.config.client(&request.client_id).ok_or(AdminError::NotFound("unknown client"))?;
    let uri = client
        .backchannel_logout_uri
        .as_deref()
        .ok_or(AdminError::Conflict("the client has no backchannel_logout_uri"))?;
    let forging = Forging {
        client_id: &client.client_id,
        sub: request.sub.as_deref(),
        sid: request.sid.as_deref(),
        defects: &request.defects,
        jti: request.replay_jti.as_deref(),
    };
    let (jti, token) = backchannel::forge(&state, &forging)?;
    let (status, body) = backchannel::deliver_once(&state, uri, &token)
        .await
        .map_err(|error| AdminError::Unreachable(error.to_string()))?;
    tracing::info!(client_id = %client.client_id, defects = ?request.defects, status, "logout token sent through the admin API");
    Ok(answer(json!({ "status": status, "body": body, "jti": jti })))
}

/// The longest delay `POST /admin/delay` sets: a minute, longer than any client's timeout, and
/// short enough that a forgotten setting does not leave requests hanging for good.
pub const MAX_DELAY_MS: u64 = 60_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Delay {
    #[serde(default)]
    authorize_ms: Option<u64>,
    #[serde(default)]
    token_ms: Option<u64>,
}

async fn set_delay(State(state): State<Arc<ProviderState>>, body: Bytes) -> Result<Response, AdminError> {
    let delay: Delay = serde_json::from_slice(&body).map_err(|_| {
        AdminError::BadRequest(r#"expected {"authorize_ms": <milliseconds>, "token_ms": <milliseconds>}"#)
    })?;
    if delay.authorize_ms.or(delay.token_ms).is_none() {
        return Err(AdminError::BadRequest("authorize_ms or token_ms is required"));
    }
    if delay.authorize_ms.max(delay.token_ms).is_some_and(|ms| ms > MAX_DELAY_MS) {
        return Err(AdminError::BadRequest("a delay is at most 60000 ms"));
    }
    if let Some(ms) = delay.authorize_ms {
        state.authorize_delay_ms.store(ms, Ordering::Relaxed);
    }
    if let Some(ms) = delay.token_ms {
        state.token_delay_ms.store(ms, Ordering::Relaxed);
    }
    let (authorize_ms, token_ms) =
        (state.authorize_delay_ms.load(Ordering::Relaxed), state.token_delay_ms.load(Ordering::Relaxed));
    tracing::info!(authorize_ms, token_ms, "endpoint delays set through the admin API");
    Ok(answer(json!({ "authorize_ms": authorize_ms, "token_ms": token_ms })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outage {
    token: bool,
}

async fn set_outage(State(state): State<Arc<ProviderState>>, body: Bytes) -> Result<Response, AdminError> {
    let outage: Outage =
        serde_json::from_slice(&body).map_err(|_| AdminError::BadRequest(r#"expected {"token": true|false}"#))?;
    state.token_outage.store(outage.token, Ordering::Relaxed);
    tracing::info!(token = outage.token, "token endpoint outage set through the admin API");
    Ok(answer(json!({ "token": outage.token })))
}

#[cfg(test)]
mod tests {
    use super::names_this_provider;

    #[test]
    fn only_the_issuers_host_and_loopback_names_are_this_provider() {
        for own in [
            "idp.internal:4000",
            "IDP.INTERNAL",
            "localhost",
            "localhost:1",
            "127.0.0.1:4000",
            "127.9.9.9",
            "[::1]:4000",
            "[::1]",
        ] {
            assert!(names_this_provider(Some(own), "idp.internal"), "{own}");
        }
        // A name rebound to this address, look-alikes, and what is not a host at all.
        for foreign in [
            "rebind.example",
            "localhost.",
            "localhost.rebind.example",
            "127.0.0.1.nip.io",
            "[::ffff:127.0.0.1]",
            "[::2]",
            "evil@rebind.example",
            "",
            "?",
        ] {
            assert!(!names_this_provider(Some(foreign), "idp.internal"), "{foreign}");
        }
        assert!(names_this_provider(None, "idp.internal"), "no host at all: not a browser");
    }
}

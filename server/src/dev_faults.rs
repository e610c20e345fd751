//! The dashboard's fault panel, development only: the routes exist when the embedded provider
//! runs (no `OIDC_ISSUER`), and are absent otherwise. Each fault is injected for real, through
//! the embedded provider's admin API or this server's renewal, so that what the app does about it
//! is what it would do in production.
//!
//! - `GET  /dev/faults`: the switches that stay on, `{"slow_provider", "provider_down"}`.
//! - `POST /dev/faults/{fault}[?on=true|false]`, for the signed-in session (same-origin only,
//!   like every write), where `fault` is one of:
//!   - `slow-provider` (a switch): `/authorize` and `/token` answer after [`SLOW_PROVIDER_MS`];
//!   - `provider-down` (a switch): `/token` answers 503;
//!   - `refresh-token-reuse`: the provider sees this user's retired refresh token come back and
//!     revokes the family (as an attacker replaying a stolen token would cause);
//!   - `end-provider-session`: the user signs out at the provider, with no back-channel logout
//!     (check_session is what notices);
//!   - `backchannel-logout`: the provider sends this app a logout token for the session;
//!   - `lose-next-response`: the next refresh reaches the provider, and its answer is dropped;
//!   - `expire-access-token`: the access token counts as expired now.
//!
//! Every fault goes into the session's journal, so the dashboard's timeline shows cause and
//! effect side by side. The switches change the provider for every user of it.

use std::sync::atomic::{AtomicBool, Ordering};

use app::auth::{JournalEntry, JournalOutcome, JournalStep};
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use openidconnect::reqwest;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

use crate::{
    auth::{oidc_client::error_chain, record, token_store::SessionKey},
    store::now_ms,
    unix_now, AppState,
};

/// How slow the slow provider is: enough to watch a renewal in flight, less than the token
/// request's 10 s timeout.
pub const SLOW_PROVIDER_MS: u64 = 3_000;

/// The faults the panel offers, as their routes name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    SlowProvider,
    ProviderDown,
    RefreshTokenReuse,
    EndProviderSession,
    BackchannelLogout,
    LoseNextResponse,
    ExpireAccessToken,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Self::SlowProvider => "slow-provider",
            Self::ProviderDown => "provider-down",
            Self::RefreshTokenReuse => "refresh-token-reuse",
            Self::EndProviderSession => "end-provider-session",
            Self::BackchannelLogout => "backchannel-logout",
            Self::LoseNextResponse => "lose-next-response",
            Self::ExpireAccessToken => "expire-access-token",
        }
    }
}

/// The switches as this server set them, and a client for the provider's admin API.
pub struct FaultSwitches {
    admin: String,
    http: reqwest::Client,
    slow_provider: AtomicBool,
    provider_down: AtomicBool,
}

impl FaultSwitches {
    pub fn new(issuer: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            admin: format!("{}/admin", issuer.trim_end_matches('/')),
            http,
            slow_provider: AtomicBool::new(false),
            provider_down: AtomicBool::new(false),
        }
    }

    async fn admin(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value, FaultError> {
        let response = self
            .http
            .post(format!("{}{path}", self.admin))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| FaultError::Provider(error_chain(&e)))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            return Ok(body);
        }
        let why = body["error"].as_str().unwrap_or("no reason given");
        Err(match status {
            StatusCode::NOT_FOUND if why == "no reason given" => {
                FaultError::Provider("the provider's admin API is off (admin_api in EMBEDDED_IDP_CONFIG)".into())
            }
            _ => FaultError::Refused(format!("the provider answered {status}: {why}")),
        })
    }
}

/// What the panel is told when a fault could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// 401: faults apply to a signed-in session.
    #[error("sign in first")]
    SignedOut,
    /// 409: the provider would not (a reuse before any rotation, say).
    #[error("{0}")]
    Refused(String),
    /// 502: the provider's admin API could not be reached.
    #[error("{0}")]
    Provider(String),
    /// 503: the session store is unavailable.
    #[error("the session store is unavailable")]
    Store,
}

impl IntoResponse for FaultError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::SignedOut => StatusCode::UNAUTHORIZED,
            Self::Refused(_) => StatusCode::CONFLICT,
            Self::Provider(_) => StatusCode::BAD_GATEWAY,
            Self::Store => StatusCode::SERVICE_UNAVAILABLE,
        };
        tracing::warn!(error = %self, "a fault could not be injected");
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/dev/faults", get(switches)).route("/dev/faults/{fault}", post(inject))
}

async fn switches(State(state): State<AppState>) -> Json<serde_json::Value> {
    let faults = &state.faults;
    Json(json!({
        "slow_provider": faults.slow_provider.load(Ordering::Relaxed),
        "provider_down": faults.provider_down.load(Ordering::Relaxed),
    }))
}

#[derive(Deserialize)]
struct Switch {
    #[serde(default = "on")]
    on: bool,
}

fn on() -> bool {
    true
}

async fn inject(
    State(state): State<AppState>,
    session: Session,
    Path(fault): Path<Fault>,
    Query(switch): Query<Switch>,
) -> Result<Json<serde_json::Value>, FaultError> {
    let (key, stored) = record::authenticated(&session, &state.tokens)
        .await
        .map_err(|_| FaultError::Store)?
        .ok_or(FaultError::SignedOut)?;
    let faults = &state.faults;
    let session = &stored.session;
    let client_id = state.config.client_id.as_str();
    let detail = match fault {
        Fault::SlowProvider => {
            let ms = if switch.on { SLOW_PROVIDER_MS } else { 0 };
            faults.admin("/delay", json!({ "authorize_ms": ms, "token_ms": ms })).await?;
            faults.slow_provider.store(switch.on, Ordering::Relaxed);
            if switch.on {
                format!("the provider answers after {ms} ms")
            } else {
                "the provider is fast again".into()
            }
        }
        Fault::ProviderDown => {
            faults.admin("/outage", json!({ "token": switch.on })).await?;
            faults.provider_down.store(switch.on, Ordering::Relaxed);
            if switch.on {
                "the token endpoint answers 503".into()
            } else {
                "the token endpoint is back".into()
            }
        }
        // Aimed at this session (its provider session, this app), not at whatever else the same
        // user has open in another browser.
        Fault::RefreshTokenReuse => {
            let mut path =
                format!("/users/{}/simulate-reuse?client_id={}", encode(&session.subject), encode(client_id));
            if let Some(sid) = &session.sid {
                path.push_str(&format!("&sid={}", encode(sid)));
            }
            let answer = faults.admin(&path, json!({})).await?;
            format!("a retired refresh token was presented: {}", answer["error"].as_str().unwrap_or("accepted"))
        }
        Fault::EndProviderSession => {
            let path = match &session.sid {
                Some(sid) => format!("/sessions/{}/end?backchannel=false", encode(sid)),
                None => format!("/users/{}/end-session?backchannel=false", encode(&session.subject)),
            };
            faults.admin(&path, json!({})).await?;
            "the provider session ended, with no back-channel logout".into()
        }
        Fault::BackchannelLogout => {
            let body = json!({ "client_id": client_id, "sub": session.subject, "sid": session.sid });
            let answer = faults.admin("/logout-token", body).await?;
            format!("a logout token was sent; this app answered {}", answer["status"])
        }
        Fault::LoseNextResponse => {
            state.renewer.lose_next_response(&key);
            "the next token response will be lost".into()
        }
        Fault::ExpireAccessToken => {
            expire_access_token(&state, &key).await?;
            "the access token counts as expired".into()
        }
    };
    tracing::info!(fault = fault.name(), on = switch.on, sub = %session.subject, "fault injected");
    let entry = JournalEntry {
        at_ms: now_ms(),
        step: JournalStep::Fault,
        outcome: JournalOutcome::Ok,
        took_ms: None,
        detail: fault_label(fault, switch.on),
    };
    state.tokens.note(&key, entry).await;
    Ok(Json(json!({ "fault": fault.name(), "on": switch.on, "detail": detail })))
}

fn fault_label(fault: Fault, on: bool) -> String {
    match fault {
        Fault::SlowProvider | Fault::ProviderDown => format!("{} {}", fault.name(), if on { "on" } else { "off" }),
        _ => fault.name().to_owned(),
    }
}

async fn expire_access_token(state: &AppState, key: &SessionKey) -> Result<(), FaultError> {
    for _ in 0..3 {
        let current = state.tokens.get(key).await.map_err(|_| FaultError::Store)?.ok_or(FaultError::SignedOut)?;
        let mut next = (*current.session).clone();
        next.tokens.access_token_expires_at = unix_now();
        if state.tokens.replace(key, &current, &next).await.map_err(|_| FaultError::Store)? {
            return Ok(());
        }
    }
    Err(FaultError::Refused("the session kept changing; try again".into()))
}

fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

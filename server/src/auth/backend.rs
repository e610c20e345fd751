//! The server's side of the app's server functions ([`app::auth::AuthBackend`]): renewal for
//! `POST /auth/refresh`, and saving the long form through the protected API with the session's
//! access token.

use std::sync::Arc;

use app::{
    auth::{AuthBackend, BoxFuture, ReauthReason, RefreshOutcome, SubmitOutcome},
    report::Report,
};
use axum::{
    body::Body,
    http::{header, request::Parts, Request, StatusCode},
    Router,
};
use openidconnect::AccessToken;
use tower::ServiceExt;

use super::{refresh::Renewer, token_store::SessionKey};

pub struct Backend {
    renewer: Arc<Renewer>,
    /// The protected API's router, called in-process: the same HTTP semantics (status codes,
    /// headers) as over the network, without a round trip to this server's own address.
    api: Router,
}

impl Backend {
    pub fn new(renewer: Arc<Renewer>, api: Router) -> Self {
        Self { renewer, api }
    }
}

/// How the protected API answered one call.
enum ApiAnswer {
    Saved(usize),
    Unauthorized,
    Refused(String),
}

impl AuthBackend for Backend {
    fn renew(&self, request: &Parts) -> BoxFuture<RefreshOutcome> {
        let key = request.extensions.get::<SessionKey>().cloned();
        let renewer = self.renewer.clone();
        Box::pin(async move {
            match key {
                Some(key) => renewer.renew(&key).await,
                None => RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut },
            }
        })
    }

    fn submit_report(&self, request: &Parts, report: Report) -> BoxFuture<SubmitOutcome> {
        let key = request.extensions.get::<SessionKey>().cloned();
        let (renewer, api) = (self.renewer.clone(), self.api.clone());
        Box::pin(async move {
            let Some(key) = key else {
                return SubmitOutcome::SessionEnded { reason: ReauthReason::SignedOut };
            };
            let token = match renewer.fresh_access_token(&key).await {
                Ok(token) => token,
                Err(outcome) => return not_renewed(outcome),
            };
            let answer = match call_api(&api, &token, &report).await {
                // The API refused a token the server thought good (revoked, or expired early):
                // one renewal and one retry, never a loop.
                Ok(ApiAnswer::Unauthorized) => match renewer.renewed_access_token(&key).await {
                    Ok(token) => call_api(&api, &token, &report).await,
                    Err(outcome) => return not_renewed(outcome),
                },
                other => other,
            };
            match answer {
                Ok(ApiAnswer::Saved(characters)) => SubmitOutcome::Saved { characters },
                Ok(ApiAnswer::Unauthorized) => {
                    tracing::error!("the protected API refused a freshly renewed access token");
                    SubmitOutcome::Rejected { detail: "the API refused this session's access token".into() }
                }
                Ok(ApiAnswer::Refused(detail)) => SubmitOutcome::Rejected { detail },
                Err(detail) => SubmitOutcome::Unavailable { detail },
            }
        })
    }
}

fn not_renewed(outcome: RefreshOutcome) -> SubmitOutcome {
    match outcome {
        RefreshOutcome::ReauthRequired { reason } => SubmitOutcome::SessionEnded { reason },
        RefreshOutcome::Transient { detail, .. } => SubmitOutcome::Unavailable { detail },
        RefreshOutcome::Renewed { .. } => SubmitOutcome::Unavailable { detail: "the renewal was lost".into() },
    }
}

async fn call_api(api: &Router, token: &AccessToken, report: &Report) -> Result<ApiAnswer, String> {
    let body = serde_json::to_vec(report).map_err(|e| e.to_string())?;
    let request = Request::post("/api/reports")
        .header(header::AUTHORIZATION, format!("Bearer {}", token.secret()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    let response = api.clone().oneshot(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match status {
        StatusCode::CREATED => Ok(ApiAnswer::Saved(json["characters"].as_u64().unwrap_or_default() as usize)),
        StatusCode::UNAUTHORIZED => Ok(ApiAnswer::Unauthorized),
        status if status.is_client_error() => {
            Ok(ApiAnswer::Refused(json["error"].as_str().unwrap_or("the API refused the report").to_owned()))
        }
        status => Err(format!("the API answered {status}")),
    }
}

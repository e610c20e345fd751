//! `POST /api/reports`: stores an incident report for the access token's subject. This demo
//! counts the text and logs the count; storing reports for real is not its subject.

use std::sync::Arc;

use app::report::Report;
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use super::access_token::{AccessTokenValidator, Unauthorized};

pub async fn create(
    State(validator): State<Arc<AccessTokenValidator>>,
    headers: HeaderMap,
    Json(report): Json<Report>,
) -> Result<Response, Unauthorized> {
    let token = bearer_token(&headers).ok_or(Unauthorized::NoToken)?;
    let claims = validator.validate(token).await?;
    if let Some(problem) = report.problem() {
        tracing::warn!(sub = %claims.sub, %problem, "report refused");
        return Ok((StatusCode::BAD_REQUEST, Json(json!({ "error": problem }))).into_response());
    }
    let characters = report.characters();
    tracing::info!(sub = %claims.sub, client_id = ?claims.client_id, characters, "report saved");
    Ok((StatusCode::CREATED, Json(json!({ "characters": characters }))).into_response())
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))
}

//! The userinfo endpoint (OIDC Core §5.3): a protected resource that validates the access token
//! as RFC 9068 §4 tells a resource server to, and also refuses tokens it has revoked.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    Json,
};
use jsonwebtoken::Validation;
use serde_json::Value;

use crate::{
    claims::{user_claims, AccessTokenClaims, ACCESS_TOKEN_TYP},
    error::{no_store, BearerRequired, InsufficientScope, InvalidToken},
    keys::ALGORITHM,
    ProviderState,
};

pub async fn userinfo(State(state): State<Arc<ProviderState>>, headers: HeaderMap) -> Response {
    // No token at all is not an invalid one: no error code (RFC 6750 §3.1).
    match bearer_token(&headers) {
        None => BearerRequired.into_response(),
        Some(token) => claims_of(&state, token).into_response(),
    }
}

fn claims_of(state: &ProviderState, token: &str) -> Result<Response, InvalidToken> {
    let claims = validate_access_token(state, token)?;
    let user = state.config.user_by_sub(&claims.sub).ok_or(InvalidToken("unknown subject"))?;
    let scopes: Vec<String> = claims.scope.split(' ').map(str::to_owned).collect();
    // OIDC Core §5.3: userinfo is for tokens of an OpenID request; one narrowed at refresh to
    // leave `openid` out is valid, but not for this (RFC 6750 §3.1).
    if !scopes.iter().any(|scope| scope == "openid") {
        return Ok(InsufficientScope("openid").into_response());
    }
    let mut body = user_claims(user, &scopes);
    body.insert("sub".into(), Value::String(claims.sub));
    Ok((no_store(), Json(body)).into_response())
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))
}

/// Checks what RFC 9068 §4 asks of a resource server except expiry: `typ`, the signature with a
/// published key named by `kid` (the current one or one still retiring), `iss` and `aud`.
pub(crate) fn verify_access_token(
    state: &ProviderState,
    token: &str,
    now: u64,
) -> Result<AccessTokenClaims, InvalidToken> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| InvalidToken("malformed token"))?;
    let typ = header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
    if typ != ACCESS_TOKEN_TYP && typ != "application/at+jwt" {
        return Err(InvalidToken("not an access token"));
    }
    let key = header.kid.and_then(|kid| state.keys.find(&kid, now)).ok_or(InvalidToken("unknown signing key"))?;
    let mut validation = Validation::new(ALGORITHM);
    validation.set_issuer(&[&state.issuer]);
    validation.set_audience(&[&state.config.access_token.audience]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat", "jti"]);
    // Expiry is checked against the provider's clock, which tests can move.
    validation.validate_exp = false;
    jsonwebtoken::decode::<AccessTokenClaims>(token, key.decoding_key(), &validation)
        .map(|data| data.claims)
        .map_err(|_| InvalidToken("signature or claims invalid"))
}

fn validate_access_token(state: &ProviderState, token: &str) -> Result<AccessTokenClaims, InvalidToken> {
    let now = state.now();
    let claims = verify_access_token(state, token, now)?;
    if now >= claims.exp {
        return Err(InvalidToken("the access token has expired"));
    }
    if !state.store.access_token_is_active(&claims.jti, now) {
        return Err(InvalidToken("the access token was revoked"));
    }
    Ok(claims)
}

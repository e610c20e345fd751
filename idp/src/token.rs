//! The token endpoint (RFC 6749 §3.2, §4.1.3): client authentication and the
//! `authorization_code` grant with PKCE (RFC 7636 §4.6). The `refresh_token` grant is in
//! [`crate::refresh`]; client authentication is shared with [`crate::revoke`].

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    Json,
};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::form_urlencoded;

use crate::{
    claims::{TokenGrant, OFFLINE_ACCESS},
    config::ClientConfig,
    error::{no_store, TokenError},
    metrics::Metrics,
    refresh,
    store::{random_token, Redemption},
    ProviderState,
};

pub async fn token(State(state): State<Arc<ProviderState>>, headers: HeaderMap, body: String) -> Response {
    // Faults the admin API can switch on, for demos and tests: slow, or down.
    let delay = state.token_delay_ms.load(std::sync::atomic::Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if state.token_outage.load(std::sync::atomic::Ordering::Relaxed) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "token endpoint down (admin API outage)").into_response();
    }
    match grant(&state, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn grant(state: &ProviderState, headers: &HeaderMap, body: &str) -> Result<Response, TokenError> {
    let params = parse_form(body)?;
    if let Some(grant_type) = params.get("grant_type") {
        state.metrics.count_token_request(grant_type);
    }
    let client = authenticate_client(state, headers, &params)?;
    match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code_grant(state, client, &params).await,
        Some("refresh_token") => refresh::refresh_token_grant(state, client, &params).await,
        Some(_) => Err(TokenError::UnsupportedGrantType),
        None => Err(TokenError::InvalidRequest("grant_type is required")),
    }
}

/// RFC 6749 §3.2: form-encoded; a parameter must not appear twice, and one sent without a value
/// counts as absent.
pub(crate) fn parse_form(body: &str) -> Result<HashMap<String, String>, TokenError> {
    let mut params = HashMap::new();
    for (name, value) in form_urlencoded::parse(body.as_bytes()) {
        if value.is_empty() {
            continue;
        }
        if params.insert(name.into_owned(), value.into_owned()).is_some() {
            return Err(TokenError::InvalidRequest("a parameter was repeated"));
        }
    }
    Ok(params)
}

/// RFC 6749 §2.3.1: `client_secret_basic` or `client_secret_post` for a confidential client,
/// `none` (just `client_id`) for a public one; never two methods at once.
pub(crate) fn authenticate_client<'a>(
    state: &'a ProviderState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<&'a ClientConfig, TokenError> {
    let basic = basic_credentials(headers)?;
    let used_basic = basic.is_some();
    let invalid = |reason| TokenError::InvalidClient { reason, used_basic };
    let (client_id, secret) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => return Err(TokenError::InvalidRequest("more than one client authentication method")),
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|body_id| *body_id != id) {
                return Err(TokenError::InvalidRequest("client_id differs from the authenticated client"));
            }
            (id, Some(secret))
        }
        (None, secret) => {
            let id = params.get("client_id").ok_or(invalid("no client authentication"))?;
            (id.clone(), secret.cloned())
        }
    };
    let client = state.config.client(&client_id).ok_or(invalid("unknown client"))?;
    match (&client.client_secret, secret) {
        (None, None) => Ok(client),
        (None, Some(_)) => Err(invalid("a public client sent a secret")),
        (Some(_), None) => Err(invalid("a confidential client sent no secret")),
        (Some(expected), Some(given)) if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) => Ok(client),
        (Some(_), Some(_)) => Err(invalid("wrong client secret")),
    }
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`, RFC 6749 §2.3.1.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = TokenError::InvalidClient { reason: "malformed Basic credentials", used_basic: true };
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .ok_or(TokenError::InvalidClient { reason: "unsupported Authorization scheme", used_basic: true })?;
    let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|d| String::from_utf8(d).ok());
    let (id, secret) = decoded.as_deref().and_then(|d| d.split_once(':')).ok_or(malformed)?;
    let unescape = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Ok(unescape(id).zip(unescape(secret)))
}

/// The code's access token record (and any family) is saved before the tokens are sent; so are
/// the revocations of a replay before it is refused. Codes themselves live in memory only (see
/// `store`): a code replayed across a restart is refused as unknown.
async fn authorization_code_grant(
    state: &ProviderState,
    client: &ClientConfig,
    params: &HashMap<String, String>,
) -> Result<Response, TokenError> {
    let code = params.get("code").ok_or(TokenError::InvalidRequest("code is required"))?;
    let now = state.now();
    let jti = random_token();
    let access_token_expires_at = now + state.config.lifetimes.access_token_secs;
    let (redemption, saving) = state.store.redeem_code(
        code,
        &client.client_id,
        now,
        state.config.lifetimes.authorization_code_secs,
        &jti,
        access_token_expires_at,
    );
    saving.saved().await?;
    let grant = match redemption {
        Redemption::Redeemed(grant) => grant,
        Redemption::Unknown => return Err(TokenError::InvalidGrant("unknown authorization code")),
        Redemption::Expired => return Err(TokenError::InvalidGrant("the authorization code has expired")),
        Redemption::IssuedToAnotherClient => {
            return Err(TokenError::InvalidGrant("the authorization code was issued to another client"))
        }
        Redemption::Replayed { revoked_tokens, revoked_family, sid } => {
            if let Some(family) = revoked_family {
                Metrics::increment(&state.metrics.families_revoked);
                tracing::warn!(client_id = %client.client_id, %family, "authorization code replayed; its refresh token family is revoked");
                refresh::end_session_after_reuse(state, &sid).await?;
            }
            tracing::warn!(client_id = %client.client_id, revoked_tokens, "authorization code replayed; its tokens are revoked");
            return Err(TokenError::InvalidGrant("the authorization code was already used"));
        }
    };
    let request = &grant.request;
    if params.get("redirect_uri") != Some(&request.redirect_uri) {
        return Err(TokenError::InvalidGrant("redirect_uri differs from the authorization request"));
    }
    let verifier = params.get("code_verifier").ok_or(TokenError::InvalidGrant("code_verifier is required"))?;
    if !verifier_matches(verifier, &request.code_challenge) {
        return Err(TokenError::InvalidGrant("code_verifier does not match the code_challenge"));
    }
    // The client now holds tokens of this provider session: it is told when the session ends
    // (Back-Channel Logout 1.0 §2.3), after a restart too. A session that ended since the code
    // was issued has told its clients already: no tokens of it now.
    let Some(recorded) = state.store.record_client(&grant.sid, &client.client_id, now) else {
        tracing::warn!(client_id = %client.client_id, "authorization code of a provider session that has ended");
        return Err(TokenError::InvalidGrant("the provider session of the authorization code has ended"));
    };
    recorded.saved().await?;

    // offline_access reached the code only if the client may have it (see `authorize`).
    let offline = client.offline_access && request.scopes.iter().any(|s| s == OFFLINE_ACCESS);
    let refresh_token = match offline {
        false => None,
        true => match refresh::start_family(state, client, code, &jti, &grant, now).await? {
            Some(token) => Some(token),
            // Replayed since its redemption above: its access token is revoked, and so is this.
            None => return Err(TokenError::InvalidGrant("the authorization code was already used")),
        },
    };
    let token_grant = TokenGrant {
        client_id: &request.client_id,
        sub: &grant.sub,
        sid: &grant.sid,
        auth_time: grant.auth_time,
        scopes: &request.scopes,
        nonce: request.nonce.as_deref(),
    };
    let tokens = state.mint_tokens(&token_grant, jti, now);
    tracing::info!(client_id = %client.client_id, sub = %grant.sub, offline, "tokens issued for an authorization code");
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": state.config.lifetimes.access_token_secs,
        "id_token": tokens.id_token,
        "scope": request.scopes.join(" "),
    });
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = refresh_token.into();
        let family_expires_at = now + state.config.lifetimes.refresh_token_absolute_secs;
        body["refresh_expires_in"] = refresh::refresh_expires_in(state, family_expires_at, now).into();
    }
    Ok((no_store(), Json(body)).into_response())
}

/// RFC 7636 §4.1 and §4.6: a verifier is 43 to 128 unreserved characters, and its SHA-256,
/// base64url-encoded, must equal the challenge. Compared in constant time.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2), code flow only.
//!
//! Checks come in the order RFC 6749 §4.1.2.1 requires: first the client and its redirect URI,
//! whose failure is shown as a page (a redirect would make this an open redirector); then
//! everything else, whose failure goes back to the now-trusted redirect URI.

use std::sync::Arc;

use axum::{
    extract::{Query, State},
    response::Response,
    Form,
};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::{
    claims::{OFFLINE_ACCESS, SUPPORTED_SCOPES},
    error::{redirect_with, AuthorizeError, AuthorizePageError, AuthorizeRedirectError},
    login,
    store::{AuthorizationCode, AuthorizationRequest, ProviderSession},
    ProviderState,
};

#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    /// Seconds since the user last entered a password beyond which they must do so again.
    max_age: Option<u64>,
}

/// How the request wants the user treated (OIDC Core §3.1.2.1 `prompt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prompt {
    /// Reuse the provider session if there is one, else show the sign-in form.
    Default,
    /// Always ask for the password, even with a session.
    Login,
    /// Never show anything: answer from the session or with `login_required`.
    None,
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<Arc<ProviderState>>,
    jar: CookieJar,
    Query(params): Query<AuthorizeParams>,
) -> Result<Response, AuthorizeError> {
    answer(&state, jar, params)
}

/// `POST /authorize`, form-encoded: OIDC Core §3.1.2.1 requires both methods.
pub async fn authorize_form(
    State(state): State<Arc<ProviderState>>,
    jar: CookieJar,
    Form(params): Form<AuthorizeParams>,
) -> Result<Response, AuthorizeError> {
    answer(&state, jar, params)
}

fn answer(state: &ProviderState, jar: CookieJar, params: AuthorizeParams) -> Result<Response, AuthorizeError> {
    let max_age = params.max_age;
    let (request, prompt) = validate(state, params)?;
    let now = state.now();
    // A session older than `max_age` counts as none (OIDC Core §3.1.2.1).
    let session = login::current_session(state, &jar, now)
        .filter(|session| max_age.is_none_or(|max_age| now.saturating_sub(session.auth_time) <= max_age));

    match (prompt, session) {
        (Prompt::None | Prompt::Default, Some(session)) => Ok(issue_code(state, request, &session, now)),
        (Prompt::None, None) => {
            Err(redirect_error(state, &request, "login_required", "no active session at the provider").into())
        }
        (Prompt::Login | Prompt::Default, _) => Ok(login::show_form(state, jar, request, now)),
    }
}

fn validate(state: &ProviderState, params: AuthorizeParams) -> Result<(AuthorizationRequest, Prompt), AuthorizeError> {
    let client =
        params.client_id.as_deref().and_then(|id| state.config.client(id)).ok_or(AuthorizePageError::UnknownClient)?;
    // Exact string comparison, no prefix or pattern matching (RFC 9700 §4.1.3).
    let redirect_uri = params
        .redirect_uri
        .filter(|uri| client.redirect_uris.iter().any(|registered| registered == uri))
        .ok_or(AuthorizePageError::UnregisteredRedirectUri)?;

    let mut request = AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        scopes: Vec::new(),
        state: params.state,
        nonce: params.nonce,
        code_challenge: String::new(),
    };
    let refuse = |request: &AuthorizationRequest, error, description| {
        AuthorizeError::from(redirect_error(state, request, error, description))
    };

    if params.response_type.as_deref() != Some("code") {
        return Err(refuse(&request, "unsupported_response_type", "only response_type=code is supported"));
    }
    let requested: Vec<&str> = params.scope.as_deref().unwrap_or_default().split(' ').collect();
    if !requested.contains(&"openid") {
        return Err(refuse(&request, "invalid_scope", "the openid scope is required"));
    }
    // Unknown scopes are dropped, not refused (RFC 6749 §3.3); the token response says what was
    // granted. So is `offline_access` for a client not registered for it. For one that is, the
    // registration stands in for the `prompt=consent` of OIDC Core §11: this provider has no
    // consent screen, and its clients are the operator's own.
    request.scopes = SUPPORTED_SCOPES
        .iter()
        .filter(|s| requested.contains(s))
        .filter(|s| **s != OFFLINE_ACCESS || client.offline_access)
        .map(|s| s.to_string())
        .collect();

    // PKCE is required of every client (RFC 9700 §2.1.1), and only with S256.
    let Some(challenge) = params.code_challenge else {
        return Err(refuse(&request, "invalid_request", "code_challenge is required (PKCE)"));
    };
    match params.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some("plain") | None => {
            return Err(refuse(&request, "invalid_request", "code_challenge_method must be S256"));
        }
        Some(_) => return Err(refuse(&request, "invalid_request", "unsupported code_challenge_method")),
    }
    if !is_s256_challenge(&challenge) {
        return Err(refuse(&request, "invalid_request", "code_challenge is not a base64url SHA-256 digest"));
    }
    request.code_challenge = challenge;

    let prompt = match params.prompt.as_deref() {
        None | Some("") => Prompt::Default,
        Some("login") => Prompt::Login,
        Some("none") => Prompt::None,
        Some(_) => return Err(refuse(&request, "invalid_request", "prompt must be none or login")),
    };
    Ok((request, prompt))
}

/// `BASE64URL(SHA256(verifier))` without padding is always 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Issues a code for `request` from `session` and sends the browser back to the client.
pub(crate) fn issue_code(
    state: &ProviderState,
    request: AuthorizationRequest,
    session: &ProviderSession,
    now: u64,
) -> Response {
    let redirect_uri = request.redirect_uri.clone();
    let client_state = request.state.clone();
    let code = state.store.issue_code(AuthorizationCode {
        request,
        sub: session.sub.clone(),
        sid: session.sid.clone(),
        auth_time: session.auth_time,
        issued_at: now,
    });
    let issuer = state.config.issuer_str();
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &client_state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &issuer));
    redirect_with(&redirect_uri, &pairs)
}

pub(crate) fn redirect_error(
    state: &ProviderState,
    request: &AuthorizationRequest,
    error: &'static str,
    description: &'static str,
) -> AuthorizeRedirectError {
    AuthorizeRedirectError {
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
        issuer: state.config.issuer_str(),
        error,
        description,
    }
}

//! The provider's errors, one enum per boundary, each mapped to what the spec says the other
//! side must see.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Json,
};
use serde_json::json;
use url::Url;

use crate::html;

/// A configuration that cannot start the provider.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("provider configuration: {0}")]
    Parse(String),
    #[error("provider configuration: cannot read {0}: {1}")]
    Read(String, String),
    #[error("provider configuration: {0}")]
    Invalid(String),
    /// The state file (`state_file`, `--state`) cannot be created, opened or read, is not a
    /// state file of this provider, or holds something it cannot load: named, with the cause.
    #[error("provider state file {0}: {1}")]
    StateFile(String, String),
}

/// A change the provider made could not be written to its state file, so the response that
/// would reveal it is not sent: each endpoint turns this into a 500 of its own kind. What it
/// failed on is logged once by the writer, never sent.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the provider could not save its state")]
pub struct NotSaved;

/// An error at the token endpoint, sent as RFC 6749 §5.2 JSON; the revocation endpoint answers
/// its errors the same way (RFC 7009 §2.2.1).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// 400: a parameter is missing, repeated or malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// 401: unknown client, wrong secret, or no authentication where it is required. Says
    /// nothing about which, so that it cannot be used to probe for client ids.
    #[error("invalid_client: {reason}")]
    InvalidClient { reason: &'static str, used_basic: bool },
    /// 400: the code or refresh token is unknown, expired, used, revoked, issued to another
    /// client or another redirect URI, or the PKCE verifier does not match. For a refresh token
    /// the description names the case with one of the words `unknown`, `expired`, `revoked` or
    /// `reused` (or says "issued to another client"), so that a client can tell a lost race
    /// from a stolen token in its logs; each case means the same to it: sign in again.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// 400: a refresh request asked for a scope its refresh token was not granted (RFC 6749 §6).
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    /// 400: the client is not registered for this grant type (a refresh token for a client
    /// without `offline_access`).
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// 400
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// 500 `server_error`: the grant or revocation could not be saved, so its tokens are not
    /// sent. The client may retry; what it failed on is in the provider's log only.
    #[error("server_error: {0}")]
    ServerError(NotSaved),
}

impl From<NotSaved> for TokenError {
    fn from(error: NotSaved) -> Self {
        Self::ServerError(error)
    }
}

impl TokenError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::InvalidScope(_) => "invalid_scope",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::ServerError(_) => "server_error",
        }
    }
}

impl TokenError {
    /// The `error_description` the client sees.
    pub(crate) fn description(&self) -> &'static str {
        match self {
            Self::InvalidRequest(d) | Self::InvalidGrant(d) | Self::InvalidScope(d) | Self::UnauthorizedClient(d) => d,
            Self::InvalidClient { .. } => "client authentication failed",
            Self::UnsupportedGrantType => "only authorization_code and refresh_token are supported",
            Self::ServerError(_) => "the provider could not save the result; try again",
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "token request refused");
        let status = match self {
            Self::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Self::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = json!({ "error": self.code(), "error_description": self.description() });
        let mut response = (status, no_store(), Json(body)).into_response();
        if let Self::InvalidClient { used_basic: true, .. } = self {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="token""#));
        }
        response
    }
}

/// A refused request to the admin API, as JSON `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 403: the browser says the request comes from another site (`Sec-Fetch-Site: cross-site`):
    /// a page elsewhere must not drive this API through a visitor's browser.
    #[error("cross-site requests are refused")]
    CrossSite,
    /// 403: the request names another host than this provider's or a loopback one: a page
    /// whose name was rebound to this address (DNS rebinding) counts as same-origin in the
    /// browser, and must not drive this API either.
    #[error("requests for another host are refused")]
    ForeignHost,
    /// 400: the body is not what the endpoint takes.
    #[error("{0}")]
    BadRequest(&'static str),
    /// 404: no such user's family, or no such family.
    #[error("{0}")]
    NotFound(&'static str),
    /// 409: the request does not apply to the thing's current state.
    #[error("{0}")]
    Conflict(&'static str),
    /// 502: the client the admin API was asked to call could not be reached; the cause (no
    /// token in it) is the message.
    #[error("the client could not be reached: {0}")]
    Unreachable(String),
    /// 500: the change could not be saved to the state file.
    #[error(transparent)]
    NotSaved(#[from] NotSaved),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::CrossSite | Self::ForeignHost => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unreachable(_) => StatusCode::BAD_GATEWAY,
            Self::NotSaved(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        tracing::warn!(error = %self, "admin request refused");
        (status, no_store(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// A request to a protected endpoint without a bearer token (no `Authorization` header, or
/// another scheme): 401 with a bare `WWW-Authenticate: Bearer` challenge. RFC 6750 §3.1: a
/// request that lacks any authentication information SHOULD NOT be told an error code.
#[derive(Debug, thiserror::Error)]
#[error("no bearer token")]
pub struct BearerRequired;

impl IntoResponse for BearerRequired {
    fn into_response(self) -> Response {
        tracing::info!("protected resource requested without a bearer token");
        let challenge = HeaderValue::from_static("Bearer");
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], no_store()).into_response()
    }
}

/// A refused bearer token at a protected endpoint (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
#[error("invalid_token: {0}")]
pub struct InvalidToken(pub &'static str);

impl IntoResponse for InvalidToken {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "bearer token refused");
        let challenge = format!(r#"Bearer error="invalid_token", error_description="{}""#, self.0);
        let challenge = HeaderValue::from_str(&challenge).expect("descriptions are ASCII");
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], no_store()).into_response()
    }
}

/// A valid bearer token without the scope a protected endpoint needs (RFC 6750 §3.1): 403.
#[derive(Debug, thiserror::Error)]
#[error("insufficient_scope: {0} needed")]
pub struct InsufficientScope(pub &'static str);

impl IntoResponse for InsufficientScope {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "bearer token refused");
        let challenge = format!(r#"Bearer error="insufficient_scope", scope="{}""#, self.0);
        let challenge = HeaderValue::from_str(&challenge).expect("scopes are ASCII");
        (StatusCode::FORBIDDEN, [(header::WWW_AUTHENTICATE, challenge)], no_store()).into_response()
    }
}

/// An authorization request that cannot be answered at the client's redirect URI: the client or
/// the redirect URI is not trustworthy, so redirecting would make the provider an open
/// redirector (RFC 6749 §4.1.2.1). Shown to the user as a page.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizePageError {
    #[error("unknown client")]
    UnknownClient,
    #[error("the redirect_uri is missing or not registered for this client")]
    UnregisteredRedirectUri,
    /// RFC 6749 §3.1: which of the values was meant cannot be known.
    #[error("the sign-in request repeats {0}")]
    RepeatedParameter(&'static str),
    #[error("this sign-in request is unknown or has expired; return to the application and start again")]
    UnknownInteraction,
    /// The terms or consent page was answered after its provider session ended (signed out
    /// elsewhere, or expired): nothing is recorded, no code is issued.
    #[error("your sign-in at the provider has ended; return to the application and start again")]
    SessionEnded,
    /// 500: the provider session could not be saved, so no session cookie is set.
    #[error("the provider could not save your sign-in; return to the application and try again")]
    NotSaved(#[from] NotSaved),
}

impl IntoResponse for AuthorizePageError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "authorization request shown an error page");
        let status = match self {
            Self::NotSaved(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = format!("<h1>Sign-in cannot continue</h1><p>{}</p>", html::escape(&self.to_string()));
        (status, html::page("Error", &body, None, &html::FrameAncestors::NONE)).into_response()
    }
}

/// A logout request the end-session endpoint refuses (RP-Initiated Logout 1.0 §2, §4): nothing
/// is ended, and the browser is not redirected (§4: never after a failed validation); the user
/// sees a page saying why, 400 (500 for [`EndSessionError::NotSaved`]).
#[derive(Debug, thiserror::Error)]
pub enum EndSessionError {
    /// `id_token_hint` is not an ID token this provider issued to one client: malformed, signed
    /// by another key, another issuer's, an access token, or for several audiences.
    #[error("the sign-out request's id_token_hint was not issued by this provider")]
    InvalidHint,
    /// `client_id`, or the hint's audience, names no registered client.
    #[error("the sign-out request names an unknown application")]
    UnknownClient,
    /// `client_id` and the hint's `aud` disagree (§2: the provider MUST verify they match).
    #[error("the sign-out request's client_id does not match its id_token_hint")]
    ClientMismatch,
    /// The session's end could not be saved, so it is not ended.
    #[error("the provider could not save your sign-out; try again")]
    NotSaved(#[from] NotSaved),
}

impl IntoResponse for EndSessionError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "sign-out request refused");
        let (status, kept) = match self {
            Self::NotSaved(_) => (StatusCode::INTERNAL_SERVER_ERROR, ""),
            _ => (StatusCode::BAD_REQUEST, "<p>You are still signed in at the provider.</p>"),
        };
        let body = format!("<h1>Sign-out cannot continue</h1><p>{}</p>{kept}", html::escape(&self.to_string()));
        (status, html::page("Error", &body, None, &html::FrameAncestors::NONE)).into_response()
    }
}

/// An authorization error sent back to a verified redirect URI (RFC 6749 §4.1.2.1, OIDC Core
/// §3.1.2.6), with `state` and, per RFC 9207, `iss`.
#[derive(Debug)]
pub struct AuthorizeRedirectError {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub issuer: String,
    pub error: &'static str,
    pub description: &'static str,
}

impl IntoResponse for AuthorizeRedirectError {
    fn into_response(self) -> Response {
        self.with_session_state(None)
    }
}

impl AuthorizeRedirectError {
    /// The redirect, with a `session_state` when there is one: Session Management 1.0 §2 sends
    /// it with an authentication failure under `prompt=none` too, so that the relying party
    /// can go on watching the browser state.
    pub fn with_session_state(self, session_state: Option<&str>) -> Response {
        tracing::warn!(error = self.error, description = self.description, "authorization request refused");
        let mut pairs = vec![("error", self.error), ("error_description", self.description)];
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &self.issuer));
        if let Some(session_state) = session_state {
            pairs.push(("session_state", session_state));
        }
        redirect_with(&self.redirect_uri, &pairs)
    }
}

/// A 303 to `base` with `pairs` appended to its query, keeping any query it already has; with
/// no pairs, to `base` exactly as registered.
pub(crate) fn redirect_with(base: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = Url::parse(base).expect("redirect URIs are validated at registration");
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Redirect::to(url.as_str()).into_response()
}

/// RFC 6749 §5.1: responses carrying tokens or credentials must not be cached.
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

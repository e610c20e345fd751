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
}

/// An error at the token endpoint, sent as RFC 6749 §5.2 JSON.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// 400: a parameter is missing, repeated or malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// 401: unknown client, wrong secret, or no authentication where it is required. Says
    /// nothing about which, so that it cannot be used to probe for client ids.
    #[error("invalid_client: {reason}")]
    InvalidClient { reason: &'static str, used_basic: bool },
    /// 400: the code (or later the refresh token) is unknown, expired, used, issued to another
    /// client or another redirect URI, or the PKCE verifier does not match.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// 400
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
}

impl TokenError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "token request refused");
        let (status, description) = match &self {
            Self::InvalidRequest(d) | Self::InvalidGrant(d) => (StatusCode::BAD_REQUEST, *d),
            Self::InvalidClient { .. } => (StatusCode::UNAUTHORIZED, "client authentication failed"),
            Self::UnsupportedGrantType => (StatusCode::BAD_REQUEST, "only authorization_code is supported"),
        };
        let body = json!({ "error": self.code(), "error_description": description });
        let mut response = (status, no_store(), Json(body)).into_response();
        if let Self::InvalidClient { used_basic: true, .. } = self {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="token""#));
        }
        response
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

/// An authorization request that cannot be answered at the client's redirect URI: the client or
/// the redirect URI is not trustworthy, so redirecting would make the provider an open
/// redirector (RFC 6749 §4.1.2.1). Shown to the user as a page.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizePageError {
    #[error("unknown client")]
    UnknownClient,
    #[error("the redirect_uri is missing or not registered for this client")]
    UnregisteredRedirectUri,
    #[error("this sign-in request is unknown or has expired; return to the application and start again")]
    UnknownInteraction,
}

impl IntoResponse for AuthorizePageError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "authorization request shown an error page");
        let body = format!("<h1>Sign-in cannot continue</h1><p>{}</p>", html::escape(&self.to_string()));
        (StatusCode::BAD_REQUEST, html::page("Error", &body, None)).into_response()
    }
}

/// Either way an authorization request can be refused.
#[derive(Debug)]
pub enum AuthorizeError {
    Page(AuthorizePageError),
    Redirect(AuthorizeRedirectError),
}

impl From<AuthorizePageError> for AuthorizeError {
    fn from(error: AuthorizePageError) -> Self {
        Self::Page(error)
    }
}

impl From<AuthorizeRedirectError> for AuthorizeError {
    fn from(error: AuthorizeRedirectError) -> Self {
        Self::Redirect(error)
    }
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            Self::Page(error) => error.into_response(),
            Self::Redirect(error) => error.into_response(),
        }
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
        tracing::warn!(error = self.error, description = self.description, "authorization request refused");
        let mut pairs = vec![("error", self.error), ("error_description", self.description)];
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &self.issuer));
        redirect_with(&self.redirect_uri, &pairs)
    }
}

/// A 303 to `base` with `pairs` appended to its query, keeping any query it already has.
pub(crate) fn redirect_with(base: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = Url::parse(base).expect("redirect URIs are validated at registration");
    url.query_pairs_mut().extend_pairs(pairs);
    Redirect::to(url.as_str()).into_response()
}

/// RFC 6749 §5.1: responses carrying tokens or credentials must not be cached.
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

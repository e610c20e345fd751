//! The errors a browser can meet on the `/auth/*` routes, and what each one withholds: the page
//! says what happened and what to do; the details (provider messages, validation failures) go
//! to the log only.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 400: `return_to` is not a path on this site (it would make an open redirector).
    #[error("return_to is not a path on this site")]
    InvalidReturnTo,
    /// 400: the callback's `state` is missing, unknown, expired or already used: a forged or
    /// replayed callback, or one that belongs to another browser.
    #[error("the callback's state matches no sign-in in progress")]
    UnknownState,
    /// 400: the callback names an issuer other than ours (RFC 9207, mix-up attacks).
    #[error("the callback's iss is not this app's provider")]
    IssuerMismatch,
    /// 400: a callback with neither a code nor an error.
    #[error("the callback has no code")]
    MissingCode,
    /// 400: a query axum cannot parse (a parameter twice, say). Answered here, not by axum, so
    /// that it gets this page, `no-store` and a log line like every other refusal.
    #[error("the query does not parse: {0}")]
    MalformedQuery(String),
    /// 403: the provider answered with an error (`access_denied`, `login_required`, …). Its code
    /// is shown; its description is not, as anyone can put text in a callback URL.
    #[error("the provider refused the sign-in: {error}")]
    ProviderRefused { error: String },
    /// 502: the token endpoint refused the code (a replayed code, a wrong PKCE verifier…).
    #[error("the token endpoint refused the code: {error} ({description})")]
    TokenRefused { error: String, description: String },
    /// 502: the provider could not be reached or answered nonsense.
    #[error("the provider is unavailable: {0}")]
    ProviderUnavailable(String),
    /// 502: the ID token failed validation (signature, alg, iss, aud, azp, exp, iat or nonce).
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
    /// 503 with `Retry-After`: the session store is down, unreachable or too slow. Nothing is
    /// lost; the same request works once it is back.
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
    /// 503 with `Retry-After`, as above, from the token store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What a browser is told to wait before trying again when the session store is unavailable.
pub const STORE_RETRY_AFTER_SECS: u64 = 5;

impl AuthError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidReturnTo
            | Self::UnknownState
            | Self::IssuerMismatch
            | Self::MissingCode
            | Self::MalformedQuery(_) => StatusCode::BAD_REQUEST,
            Self::ProviderRefused { .. } => StatusCode::FORBIDDEN,
            Self::TokenRefused { .. } | Self::ProviderUnavailable(_) | Self::InvalidIdToken(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::Session(_) | Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What the user reads.
    fn public_message(&self) -> String {
        match self {
            Self::InvalidReturnTo => "The page to return to after sign-in is not on this site.".into(),
            Self::UnknownState => {
                "This sign-in response does not belong to a sign-in started in this browser, or it was already used."
                    .into()
            }
            Self::IssuerMismatch | Self::MissingCode => "The sign-in response is malformed.".into(),
            Self::MalformedQuery(_) => "The sign-in request or response is malformed.".into(),
            Self::ProviderRefused { error } if error == "access_denied" => "Sign-in was cancelled.".into(),
            Self::ProviderRefused { error } => {
                format!("The identity provider did not sign you in ({}).", sanitize_error_code(error))
            }
            Self::TokenRefused { .. } | Self::InvalidIdToken(_) => {
                "The identity provider's answer could not be verified, so you were not signed in.".into()
            }
            Self::ProviderUnavailable(_) => "The identity provider cannot be reached right now.".into(),
            Self::Session(_) | Self::Store(_) => {
                "Sessions are unavailable for a moment. Nothing is lost: try again in a few seconds.".into()
            }
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let unavailable = status == StatusCode::SERVICE_UNAVAILABLE;
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::warn!(error = %self, "sign-in refused");
        }
        let title = if unavailable { "Try again in a moment" } else { "Sign-in failed" };
        let body = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
             <link rel=\"stylesheet\" href=\"/pkg/oidc-session.css\"></head><body><main>\
             <h1>{title}</h1><p data-testid=\"auth-error\">{}</p>\
             <p><a href=\"/\">Back to the app</a> · <a href=\"/auth/login\">Sign in again</a></p>\
             </main></body></html>",
            self.public_message()
        );
        let mut response = (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response();
        if unavailable {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(STORE_RETRY_AFTER_SECS));
        }
        response
    }
}

/// OAuth error codes are `[\x20-\x21\x23-\x5B\x5D-\x7E]+`; showing only letters, digits and `_`
/// keeps any markup out.
fn sanitize_error_code(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

impl From<axum::extract::rejection::QueryRejection> for AuthError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::MalformedQuery(rejection.body_text())
    }
}

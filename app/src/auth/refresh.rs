//! `POST /auth/refresh`: the server renews the session's tokens, and says how it went.
//!
//! The client decides when to renew; the server, which holds the refresh token, does it. A
//! renewal of a session already in flight is joined rather than repeated (single-flight), so
//! that two tabs or two requests can never present one refresh token twice and trip the
//! provider's reuse detection (RFC 9700 §4.14.2).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The JSON answer of `POST /auth/refresh`, tagged by `outcome`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RefreshOutcome {
    /// New tokens are stored; the access token now expires at `expires_at` (Unix seconds),
    /// `expires_in` seconds from the answer.
    Renewed { expires_at: u64, expires_in: u64 },
    /// The provider could not be reached, timed out or failed (5xx). The session is kept; try
    /// again after `retry_after` seconds, with backoff.
    Transient { retry_after: u64, detail: String },
    /// This session cannot be renewed without the user: sign in again.
    ReauthRequired { reason: ReauthReason },
}

/// Why a session needs the user again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReauthReason {
    /// The provider refused the refresh token: expired, revoked, or reused (RFC 6749 §5.2). The
    /// refresh token is dropped; the session may still be renewed through the iframe.
    InvalidGrant,
    /// The session holds no refresh token (none was issued, or a non-rotating one was refused).
    NoRefreshToken,
    /// The refreshed ID token failed validation or names another subject; the session ended.
    IdTokenRejected,
    /// There is no signed-in session (signed out, or ended elsewhere).
    SignedOut,
    /// Silent renew: the provider has no session for the user any more (OIDC Core §3.1.2.6).
    LoginRequired,
    /// Silent renew: the provider needs the user's consent first.
    ConsentRequired,
    /// Silent renew: the provider needs the user for something else first.
    InteractionRequired,
    /// Silent renew kept failing until the access token expired.
    RenewalFailed,
    /// The session was ended from outside: a back-channel logout, the provider session gone
    /// (check_session), or a sign-out in another tab.
    EndedElsewhere,
}

impl ReauthReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidGrant => "invalid_grant",
            Self::NoRefreshToken => "no_refresh_token",
            Self::IdTokenRejected => "id_token_rejected",
            Self::SignedOut => "signed_out",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::RenewalFailed => "renewal_failed",
            Self::EndedElsewhere => "ended_elsewhere",
        }
    }
}

/// Renews this browser's session now, or joins the renewal already in flight.
#[server(prefix = "/auth", endpoint = "refresh")]
pub async fn refresh() -> Result<RefreshOutcome, ServerFnError> {
    let backend = super::backend::use_backend()?;
    let parts = use_context::<http::request::Parts>().ok_or_else(|| ServerFnError::new("no request"))?;
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.insert_header(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    }
    Ok(backend.renew(&parts).await)
}

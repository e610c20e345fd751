//! The data of a session that the browser may see.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::journal::SessionJournal;

/// The JSON of `GET /auth/session`, and what the pages show. Never a token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub authenticated: bool,
    /// The ID token's `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `name`, else `preferred_username`, else `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When the access token the server holds expires, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_expires_at: Option<u64>,
    /// Seconds the access token had left when this answer was made. The browser schedules
    /// renewal from this and its own clock, so a browser clock that is off does not matter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_expires_in: Option<u64>,
    /// The provider's session id (`sid`), which back-channel logout names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Whether the server holds a refresh token for this session (never the token itself): the
    /// browser renews with it, else through the provider's session in a hidden iframe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_refresh_token: bool,
    /// OIDC Session Management 1.0: the provider's `session_state` at the last authorization
    /// response (not a secret), which check_session compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_state: Option<String>,
    /// How the browser should keep this session alive; set by the server's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<RenewalPolicy>,
    /// How the browser watches the provider session, if the provider offers check_session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_session: Option<CheckSession>,
}

/// Where and how often the browser asks the provider whether its session changed (OIDC Session
/// Management 1.0 §4): the provider's `check_session_iframe`, this app's `client_id`, every
/// `interval_secs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSession {
    pub iframe: String,
    pub client_id: String,
    pub interval_secs: u64,
}

/// When and how the client auth context renews: `before_expiry_secs` ahead of expiry, minus a
/// random part of `jitter_secs`, so that many clients signed in at once do not renew in lockstep;
/// by the path `strategy` says; an iframe renewal given up after `silent_renew_timeout_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalPolicy {
    pub before_expiry_secs: u64,
    pub jitter_secs: u64,
    #[serde(default)]
    pub strategy: RenewStrategy,
    #[serde(default = "default_silent_renew_timeout")]
    pub silent_renew_timeout_secs: u64,
}

fn default_silent_renew_timeout() -> u64 {
    10
}

/// `RENEW_STRATEGY`: which path renews a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewStrategy {
    /// The refresh token; when the provider refuses it, the hidden iframe before asking the user.
    RefreshToken,
    /// The hidden iframe only (`prompt=none` against the provider's session); no refresh token is
    /// asked for.
    Iframe,
    /// The refresh token when the session has one, else the iframe.
    #[default]
    Auto,
}

impl RenewStrategy {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "refresh_token" => Some(Self::RefreshToken),
            "iframe" => Some(Self::Iframe),
            "auto" => Some(Self::Auto),
            _ => None,
        }
    }
}

/// Verified claims about the user (from the ID token or the userinfo endpoint): facts, not a
/// credential.
pub type Claims = BTreeMap<String, serde_json::Value>;

/// The ID token's verified claims.
pub type IdTokenClaims = Claims;

/// What the server attaches to a request from a signed-in browser (ssr only reads it).
#[derive(Clone, Debug)]
pub struct SessionView {
    pub info: SessionInfo,
    pub id_token_claims: IdTokenClaims,
    /// The userinfo endpoint's answer at sign-in, when `auto_userinfo` is on.
    pub userinfo_claims: Option<Claims>,
    pub journal: SessionJournal,
    /// Whether the dashboard's fault panel is on (development only: the embedded provider).
    pub dev_faults: bool,
}

/// `/auth/login`, which starts the code flow and comes back to `return_to` (a same-origin path).
pub fn login_url(return_to: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    format!("/auth/login?return_to={encoded}")
}

//! The data of a session that the browser may see.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// The provider's session id (`sid`), which back-channel logout names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// The verified claims of the ID token: facts about the user, not a credential.
pub type IdTokenClaims = BTreeMap<String, serde_json::Value>;

/// What the server attaches to a request from a signed-in browser (ssr only reads it).
#[derive(Clone, Debug)]
pub struct SessionView {
    pub info: SessionInfo,
    pub id_token_claims: IdTokenClaims,
}

/// `/auth/login`, which starts the code flow and comes back to `return_to` (a same-origin path).
pub fn login_url(return_to: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    format!("/auth/login?return_to={encoded}")
}

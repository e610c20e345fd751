//! OpenID Connect Discovery 1.0 §3 and the JWK Set. The metadata lists only what this provider
//! implements, so that a client never negotiates a feature that is not there.

use std::sync::Arc;

use axum::{extract::State, Json};
use serde_json::{json, Value};

use crate::{claims::SUPPORTED_SCOPES, keys::SigningAlg, metrics::Metrics, ProviderState};

/// Client authentication at `/token` and `/revoke` alike (RFC 6749 §2.3.1).
const CLIENT_AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

pub async fn configuration(State(state): State<Arc<ProviderState>>) -> Json<Value> {
    let config = &state.config;
    Json(json!({
        "issuer": config.issuer_str(),
        "authorization_endpoint": config.endpoint("/authorize"),
        "token_endpoint": config.endpoint("/token"),
        "userinfo_endpoint": config.endpoint("/userinfo"),
        "jwks_uri": config.endpoint("/jwks"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": SigningAlg::ALL.map(SigningAlg::name),
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        // RFC 8414 §2 (also used by OpenID providers): RFC 7009 revocation.
        "revocation_endpoint": config.endpoint("/revoke"),
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        // OIDC Core §3.1.2.1 (see `authorize::Prompt`).
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "azp",
            "name", "preferred_username", "email", "email_verified"
        ],
        "authorization_response_iss_parameter_supported": true,
        // Discovery 1.0 §3: omitted, `request_uri_parameter_supported` would mean true.
        // `/authorize` refuses both (OIDC Core §6.1, §6.2).
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        // Session Management 1.0 §3.3, RP-Initiated Logout 1.0 §2.1, Back-Channel Logout 1.0
        // §2.1: every logout token carries `sid`, as every ID token does.
        "check_session_iframe": config.endpoint("/check-session"),
        "end_session_endpoint": config.endpoint("/end-session"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    }))
}

/// The current key and every rotated-out key still needed to verify a token in circulation.
pub async fn jwks(State(state): State<Arc<ProviderState>>) -> Json<Value> {
    Metrics::increment(&state.metrics.jwks_requests);
    Json(state.keys.jwks(state.now()))
}

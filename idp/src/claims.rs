//! What the provider says about a user, and in which token: the ID token (OIDC Core §2), the JWT
//! access token (RFC 9068 §2.2), and the scope-dependent user claims (OIDC Core §5.4).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{config::UserConfig, store::AuthorizationCode, ProviderState};

pub const SUPPORTED_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// The `typ` header of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

#[derive(Debug, Serialize)]
pub struct IdTokenClaims<'a> {
    pub iss: String,
    pub sub: &'a str,
    pub aud: &'a str,
    pub exp: u64,
    pub iat: u64,
    pub auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    pub sid: &'a str,
    pub azp: &'a str,
    #[serde(flatten)]
    pub user: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub auth_time: u64,
    pub sid: String,
}

/// The user claims released for `scopes`: `profile` gives names, `email` the address.
pub fn user_claims(user: &UserConfig, scopes: &[String]) -> Map<String, Value> {
    let mut claims = Map::new();
    if scopes.iter().any(|s| s == "profile") {
        claims.insert("name".into(), user.name.clone().into());
        claims.insert("preferred_username".into(), user.username.clone().into());
    }
    if scopes.iter().any(|s| s == "email") {
        claims.insert("email".into(), user.email.clone().into());
        claims.insert("email_verified".into(), true.into());
    }
    claims
}

/// The signed tokens of one successful token request.
pub struct IssuedTokens {
    pub access_token: String,
    pub id_token: String,
}

impl ProviderState {
    /// Mints the ID token and access token for a redeemed code; `jti` was recorded with it.
    pub fn mint_tokens(&self, grant: &AuthorizationCode, jti: String, now: u64) -> IssuedTokens {
        let lifetimes = &self.config.lifetimes;
        let request = &grant.request;
        let user = self.config.user_by_sub(&grant.sub).map(|u| user_claims(u, &request.scopes)).unwrap_or_default();
        let id_token = IdTokenClaims {
            iss: self.config.issuer_str(),
            sub: &grant.sub,
            aud: &request.client_id,
            exp: now + lifetimes.id_token_secs,
            iat: now,
            auth_time: grant.auth_time,
            nonce: request.nonce.as_deref(),
            sid: &grant.sid,
            azp: &request.client_id,
            user,
        };
        let access_token = AccessTokenClaims {
            iss: self.config.issuer_str(),
            sub: grant.sub.clone(),
            aud: self.config.access_token.audience.clone(),
            exp: now + lifetimes.access_token_secs,
            iat: now,
            jti,
            client_id: request.client_id.clone(),
            scope: request.scopes.join(" "),
            auth_time: grant.auth_time,
            sid: grant.sid.clone(),
        };
        IssuedTokens {
            access_token: self.key.sign(ACCESS_TOKEN_TYP, &access_token),
            id_token: self.key.sign("JWT", &id_token),
        }
    }
}

//! What the provider says about a user, and in which token: the ID token (OIDC Core §2), the JWT
//! access token (RFC 9068 §2.2), and the scope-dependent user claims (OIDC Core §5.4).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{config::UserConfig, keys::SigningKey, ProviderState};

/// `offline_access` (OIDC Core §11) asks for a refresh token; it is granted only to clients
/// registered for it.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

pub const OFFLINE_ACCESS: &str = "offline_access";

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

/// What the tokens of one token response are issued for: from a redeemed code, or from a
/// refresh token family.
pub struct TokenGrant<'a> {
    pub client_id: &'a str,
    pub sub: &'a str,
    pub sid: &'a str,
    pub auth_time: u64,
    pub scopes: &'a [String],
    /// Only in the ID token of the code exchange; a refreshed ID token has none (OIDC Core §12.2).
    pub nonce: Option<&'a str>,
}

/// The signed tokens of one successful token request.
pub struct IssuedTokens {
    pub access_token: String,
    /// Present when the grant's scope includes `openid`.
    pub id_token: Option<String>,
}

impl ProviderState {
    /// The key that signs `client_id`'s ID and logout tokens: of the algorithm it registered
    /// (`id_token_signed_response_alg`), ES256 by default. Access tokens are always ES256.
    pub fn id_token_key(&self, client_id: &str) -> Arc<SigningKey> {
        let alg = self.config.client(client_id).map(|client| client.id_token_signed_response_alg).unwrap_or_default();
        self.keys.current_for(alg)
    }

    /// Mints the access token, and the ID token if the scope has `openid`, for `grant`; `jti`
    /// was recorded in the store with it. Both are signed with the current key.
    pub fn mint_tokens(&self, grant: &TokenGrant<'_>, jti: String, now: u64) -> IssuedTokens {
        let lifetimes = &self.config.lifetimes;
        let key = self.keys.current();
        let id_token = grant.scopes.iter().any(|s| s == "openid").then(|| {
            let id_token_key = self.id_token_key(grant.client_id);
            let user = self.config.user_by_sub(grant.sub).map(|u| user_claims(u, grant.scopes)).unwrap_or_default();
            let claims = IdTokenClaims {
                iss: self.issuer.clone(),
                sub: grant.sub,
                aud: grant.client_id,
                exp: now + lifetimes.id_token_secs,
                iat: now,
                auth_time: grant.auth_time,
                nonce: grant.nonce,
                sid: grant.sid,
                azp: grant.client_id,
                user,
            };
            id_token_key.sign("JWT", &claims)
        });
        let access_token = AccessTokenClaims {
            iss: self.issuer.clone(),
            sub: grant.sub.to_owned(),
            aud: self.config.access_token.audience.clone(),
            exp: now + lifetimes.access_token_secs,
            iat: now,
            jti,
            client_id: grant.client_id.to_owned(),
            scope: grant.scopes.join(" "),
            auth_time: grant.auth_time,
            sid: grant.sid.to_owned(),
        };
        IssuedTokens { access_token: key.sign(ACCESS_TOKEN_TYP, &access_token), id_token }
    }
}

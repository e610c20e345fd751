//! Access token validation as a resource server does it (RFC 9068 §4): `typ` `at+jwt`, an
//! asymmetric `alg`, the signature by the provider's key named by `kid` (fetching the JWKS again
//! for a key it does not know yet), `iss`, `aud` containing this API, `exp`. And one more check
//! than the token itself can give: a token of a provider session that a back-channel logout
//! ended (its `sid`, or its user before the logout) is refused, though it has not expired. Many
//! providers put no `sid` in access tokens (panva's oidc-provider among them): such a token is
//! refused when its user had a provider session logged out after it was issued.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use jsonwebtoken::Validation;
use serde::Deserialize;

use crate::auth::oidc_client::OidcClient;

/// The claims this API uses (RFC 9068 §2.2).
#[derive(Debug, Deserialize)]
pub struct AccessTokenClaims {
    pub sub: String,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub iat: Option<u64>,
    pub exp: u64,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

pub struct AccessTokenValidator {
    oidc: Arc<OidcClient>,
    audience: String,
    logouts: Arc<LoggedOut>,
}

/// 401 with a `WWW-Authenticate` challenge (RFC 6750 §3.1). The reason is logged, not sent.
#[derive(Debug, thiserror::Error)]
pub enum Unauthorized {
    /// No Bearer token at all: the challenge names no error (RFC 6750 §3.1).
    #[error("no Bearer token")]
    NoToken,
    #[error("invalid_token: {0}")]
    InvalidToken(String),
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "protected API refused a request");
        let challenge = match self {
            Self::NoToken => HeaderValue::from_static("Bearer"),
            Self::InvalidToken(_) => HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        };
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)]).into_response()
    }
}

impl AccessTokenValidator {
    pub fn new(oidc: Arc<OidcClient>, audience: String, logouts: Arc<LoggedOut>) -> Self {
        Self { oidc, audience, logouts }
    }

    pub async fn validate(&self, token: &str) -> Result<AccessTokenClaims, Unauthorized> {
        let refuse = |why: &str| Unauthorized::InvalidToken(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("not a JWS"))?;
        let typ = header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(refuse("typ is not at+jwt"));
        }
        let key = self.oidc.jwks().decoding_key(&header).await.map_err(refuse)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.oidc.issuer()]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
        // The BFF renews ahead of expiry, so no grace is needed here: expired means expired.
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| Unauthorized::InvalidToken(format!("{e}")))?;
        if let Some(iat) = claims.iat {
            self.logouts.saw_lifetime(claims.exp.saturating_sub(iat));
        }
        if self.logouts.covers(&claims).await {
            return Err(refuse("its provider session was logged out (back-channel)"));
        }
        Ok(claims)
    }
}

/// Provider sessions and users that a back-channel logout ended, remembered in the session store
/// (so every instance knows) for as long as an access token issued before could still be
/// presented.
pub struct LoggedOut {
    kv: Arc<crate::store::Kv>,
    /// The longest access token lifetime (`exp - iat`) this instance has seen.
    longest_lifetime_secs: AtomicU64,
}

/// How long a logout is remembered at least: longer than most access tokens live. A provider
/// whose tokens live longer (Auth0's default is a day) makes it longer, from the tokens seen.
const REMEMBER_SECS: u64 = 3600;

impl LoggedOut {
    pub fn new(kv: Arc<crate::store::Kv>) -> Self {
        Self { kv, longest_lifetime_secs: AtomicU64::new(0) }
    }

    fn saw_lifetime(&self, secs: u64) {
        self.longest_lifetime_secs.fetch_max(secs, Ordering::Relaxed);
    }

    /// As long as an access token issued just before a logout could still be presented.
    fn remember_secs(&self) -> u64 {
        REMEMBER_SECS.max(self.longest_lifetime_secs.load(Ordering::Relaxed))
    }

    /// Records a logout of `sid`, or of every session of `sub` up to `at` (Unix seconds). With
    /// both, the access tokens without a `sid` claim cannot be told apart by session: those of
    /// `sub` issued up to `at` are refused (a token of another session of that user costs the
    /// caller one renewal).
    pub async fn record(&self, sid: Option<&str>, sub: Option<&str>, at: u64) {
        let until = crate::store::now_ms() + self.remember_secs() * 1000;
        let at = at.to_string().into_bytes();
        let mut writes = Vec::new();
        match (sid, sub) {
            (Some(sid), sub) => {
                writes.push((format!("logged-out-sid:{sid}"), b"1".to_vec()));
                if let Some(sub) = sub {
                    writes.push((format!("logged-out-sidless:{sub}"), at));
                }
            }
            (None, Some(sub)) => writes.push((format!("logged-out-sub:{sub}"), at)),
            (None, None) => {}
        }
        for (key, value) in writes {
            if let Err(error) = self.kv.set(&key, value, until).await {
                tracing::warn!(%error, "could not record a back-channel logout for the API");
            }
        }
    }

    async fn covers(&self, claims: &AccessTokenClaims) -> bool {
        if let Some(sid) = &claims.sid {
            if matches!(self.kv.get(&format!("logged-out-sid:{sid}")).await, Ok(Some(_))) {
                return true;
            }
        }
        if self.issued_before(&format!("logged-out-sub:{}", claims.sub), claims.iat).await {
            return true;
        }
        claims.sid.is_none() && self.issued_before(&format!("logged-out-sidless:{}", claims.sub), claims.iat).await
    }

    /// Whether a logout recorded under `key` came at or after `iat` (or the token has no `iat`).
    async fn issued_before(&self, key: &str, iat: Option<u64>) -> bool {
        let Ok(Some(at)) = self.kv.get(key).await else {
            return false;
        };
        let at: u64 = String::from_utf8_lossy(&at).parse().unwrap_or(0);
        iat.is_none_or(|iat| iat <= at)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{AccessTokenClaims, LoggedOut};
    use crate::store::{Kv, StoreLocation};

    fn token(sub: &str, sid: Option<&str>, iat: u64) -> AccessTokenClaims {
        AccessTokenClaims {
            sub: sub.into(),
            sid: sid.map(Into::into),
            iat: Some(iat),
            exp: iat + 60,
            client_id: None,
            scope: None,
        }
    }

    #[tokio::test]
    async fn a_logout_is_remembered_as_long_as_the_longest_access_token_seen_lives() {
        let logouts = LoggedOut::new(Arc::new(Kv::open(&StoreLocation::Memory).await.unwrap()));
        assert_eq!(logouts.remember_secs(), 3600, "an hour at least");
        logouts.saw_lifetime(600);
        assert_eq!(logouts.remember_secs(), 3600);
        logouts.saw_lifetime(86_400);
        logouts.saw_lifetime(300);
        assert_eq!(logouts.remember_secs(), 86_400, "a day, once a token of a day was seen");
    }

    #[tokio::test]
    async fn a_logout_by_sid_refuses_that_sessions_tokens_and_the_users_tokens_without_sid_issued_before() {
        let logouts = LoggedOut::new(Arc::new(Kv::open(&StoreLocation::Memory).await.unwrap()));
        logouts.record(Some("sid-1"), Some("alice"), 1_000).await;
        assert!(logouts.covers(&token("alice", Some("sid-1"), 990)).await);
        assert!(logouts.covers(&token("alice", Some("sid-1"), 2_000)).await, "the session is over");
        assert!(!logouts.covers(&token("alice", Some("sid-2"), 990)).await, "another session of hers");
        // Access tokens without `sid` (panva's oidc-provider issues such).
        assert!(logouts.covers(&token("alice", None, 990)).await);
        assert!(!logouts.covers(&token("alice", None, 1_001)).await, "issued after the logout");
        assert!(!logouts.covers(&token("bob", None, 990)).await);
    }

    #[tokio::test]
    async fn a_logout_by_sub_alone_refuses_every_token_of_the_user_issued_before() {
        let logouts = LoggedOut::new(Arc::new(Kv::open(&StoreLocation::Memory).await.unwrap()));
        logouts.record(None, Some("alice"), 1_000).await;
        assert!(logouts.covers(&token("alice", Some("sid-1"), 1_000)).await);
        assert!(logouts.covers(&token("alice", None, 999)).await);
        assert!(!logouts.covers(&token("alice", Some("sid-1"), 1_001)).await);
    }
}

//! Access token validation as a resource server does it (RFC 9068 §4): `typ` `at+jwt`, an
//! asymmetric `alg`, the signature by the provider's key named by `kid` (fetching the JWKS again
//! for a key it does not know yet), `iss`, `aud` containing this API, `exp`. And one more check
//! than the token itself can give: a token of a provider session that a back-channel logout
//! ended (its `sid`, or its user before the logout) is refused, though it has not expired.

use std::sync::Arc;

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
#[error("invalid_token: {0}")]
pub struct InvalidToken(pub String);

impl IntoResponse for InvalidToken {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "protected API refused an access token");
        let challenge = HeaderValue::from_static(r#"Bearer error="invalid_token""#);
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)]).into_response()
    }
}

impl AccessTokenValidator {
    pub fn new(oidc: Arc<OidcClient>, audience: String, logouts: Arc<LoggedOut>) -> Self {
        Self { oidc, audience, logouts }
    }

    pub async fn validate(&self, token: &str) -> Result<AccessTokenClaims, InvalidToken> {
        let refuse = |why: &str| InvalidToken(why.to_owned());
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
            .map_err(|e| InvalidToken(format!("{e}")))?;
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
}

/// Longer than any access token lives.
const REMEMBER_SECS: u64 = 3600;

impl LoggedOut {
    pub fn new(kv: Arc<crate::store::Kv>) -> Self {
        Self { kv }
    }

    /// Records a logout of `sid`, or of every session of `sub` up to `at` (Unix seconds).
    pub async fn record(&self, sid: Option<&str>, sub: Option<&str>, at: u64) {
        let until = crate::store::now_ms() + REMEMBER_SECS * 1000;
        let written = match (sid, sub) {
            (Some(sid), _) => self.kv.set(&format!("logged-out-sid:{sid}"), b"1".to_vec(), until).await,
            (None, Some(sub)) => {
                self.kv.set(&format!("logged-out-sub:{sub}"), at.to_string().into_bytes(), until).await
            }
            (None, None) => Ok(()),
        };
        if let Err(error) = written {
            tracing::warn!(%error, "could not record a back-channel logout for the API");
        }
    }

    async fn covers(&self, claims: &AccessTokenClaims) -> bool {
        if let Some(sid) = &claims.sid {
            if matches!(self.kv.get(&format!("logged-out-sid:{sid}")).await, Ok(Some(_))) {
                return true;
            }
        }
        let Ok(Some(at)) = self.kv.get(&format!("logged-out-sub:{}", claims.sub)).await else {
            return false;
        };
        let at: u64 = String::from_utf8_lossy(&at).parse().unwrap_or(0);
        claims.iat.is_none_or(|iat| iat <= at)
    }
}

//! Access token validation as a resource server does it (RFC 9068 §4): `typ` `at+jwt`, an
//! asymmetric `alg`, the signature by the provider's key named by `kid` (fetching the JWKS again
//! for a key it does not know yet), `iss`, `aud` containing this API, `exp`.

use std::sync::Arc;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use jsonwebtoken::{jwk::Jwk, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::auth::oidc_client::OidcClient;

/// Only asymmetric algorithms: with HMAC, anyone holding the shared secret could mint tokens.
const ALLOWED_ALGS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The claims this API uses (RFC 9068 §2.2).
#[derive(Debug, Deserialize)]
pub struct AccessTokenClaims {
    pub sub: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

pub struct AccessTokenValidator {
    oidc: Arc<OidcClient>,
    audience: String,
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
    pub fn new(oidc: Arc<OidcClient>, audience: String) -> Self {
        Self { oidc, audience }
    }

    pub async fn validate(&self, token: &str) -> Result<AccessTokenClaims, InvalidToken> {
        let refuse = |why: &str| InvalidToken(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("not a JWS"))?;
        let typ = header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(refuse("typ is not at+jwt"));
        }
        if !ALLOWED_ALGS.contains(&header.alg) {
            return Err(refuse("alg not allowed"));
        }
        let jwks = self.oidc.jwks();
        let keys = jwks.current();
        let jwk = match find_key(&keys.jwt, header.kid.as_deref(), header.alg) {
            Some(jwk) => jwk,
            None => {
                let keys = jwks.refetch_after(&keys).await.ok_or_else(|| refuse("unknown signing key"))?;
                find_key(&keys.jwt, header.kid.as_deref(), header.alg).ok_or_else(|| refuse("unknown signing key"))?
            }
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| refuse("unusable signing key"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.oidc.issuer()]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
        // The BFF renews ahead of expiry, so no grace is needed here: expired means expired.
        validation.leeway = 0;
        jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| InvalidToken(format!("{e}")))
    }
}

/// The key named by `kid`, or the only key if the token names none; it must suit `alg`.
fn find_key(keys: &[Jwk], kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    let suits = |jwk: &&Jwk| {
        jwk.common.key_algorithm.is_none_or(|key_alg| key_alg.to_string().parse::<Algorithm>().ok() == Some(alg))
            && jwk.common.public_key_use.as_ref().is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature)
    };
    match kid {
        Some(kid) => keys.iter().filter(suits).find(|jwk| jwk.common.key_id.as_deref() == Some(kid)).cloned(),
        None => {
            let mut candidates = keys.iter().filter(suits);
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Some(only.clone()),
                _ => None,
            }
        }
    }
}

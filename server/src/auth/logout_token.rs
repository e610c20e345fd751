//! The logout token of Back-Channel Logout 1.0, validated per §2.6: a JWS (`alg` asymmetric,
//! never `none` nor HMAC; `typ` `logout+jwt`, or only `JWT`, or none) signed by a key of the provider's JWKS (fetched
//! again for an unknown `kid`); `iss` the provider; `aud` this client; `iat` neither in the
//! future nor older than [`MAX_AGE_SECS`] (§2.6: "in the same way" as an ID token's, whose age
//! the client bounds) and `exp` not past; `events` holding the back-channel logout member; `sub` and/or `sid`;
//! no `nonce` (so an ID token cannot pass for one); and a `jti` never seen before (the replay
//! cache lives in the session store, so it is shared by every instance).

use jsonwebtoken::{errors::ErrorKind, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::{store::now_ms, AppState};

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Clock skew allowed either way.
const LEEWAY_SECS: u64 = 60;
/// How old a logout token may be, as an ID token's `iat` may be (`oidc_client`): a provider
/// sends it at once, and retries within seconds. An old one is refused even before its `exp`,
/// so that a captured token cannot be played back after a restart of a store that forgot its
/// `jti` (`SESSION_STORE=memory`).
const MAX_AGE_SECS: u64 = 300;

#[derive(Debug, Deserialize)]
struct Claims {
    iat: u64,
    exp: u64,
    jti: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    events: Option<Value>,
    #[serde(default)]
    nonce: Option<Value>,
}

/// Who is logged out.
#[derive(Debug)]
pub struct LogoutClaims {
    pub sub: Option<String>,
    pub sid: Option<String>,
    /// The replay cache's entry for this token's `jti`, written by [`validate`]: [`release`]
    /// deletes it when the logout could not be carried out, so that the provider's retry of
    /// the same token is not refused as a replay.
    seen: String,
}

/// Why a logout token was not acted on.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The token is not acceptable: a 400 (§2.8), which the provider does not retry. The text is
    /// what the provider is told: what was wrong with the token, which it knows anyway, and
    /// nothing about this app's sessions.
    Invalid(&'static str),
    /// The replay cache (the session store) cannot be read: a 503, so that a provider that
    /// retries does, rather than a logout lost for good.
    StoreUnavailable,
}

impl From<&'static str> for Refusal {
    fn from(reason: &'static str) -> Self {
        Self::Invalid(reason)
    }
}

/// Validates `token`.
pub async fn validate(state: &AppState, token: &str, now: u64) -> Result<LogoutClaims, Refusal> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "not a signed JWT (alg none is refused)")?;
    // Explicit typing is RECOMMENDED, not required (§2.4): Keycloak before 25 sent `JWT`. A
    // token typed as anything else is another kind of token; an ID token, typed or not, has no
    // `events` claim and may have a `nonce`, both checked below (§4.1).
    let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
    if !matches!(typ.as_deref(), None | Some("jwt" | "logout+jwt" | "application/logout+jwt")) {
        return Err("typ is neither logout+jwt nor JWT".into());
    }
    let key = state.oidc.jwks().decoding_key(&header).await?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[state.oidc.issuer()]);
    validation.set_audience(&[state.config.client_id.as_str()]);
    validation.set_required_spec_claims(&["iss", "aud", "iat", "exp", "jti"]);
    validation.leeway = LEEWAY_SECS;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature => "bad signature",
            ErrorKind::ExpiredSignature => "expired",
            ErrorKind::InvalidIssuer => "wrong iss",
            ErrorKind::InvalidAudience => "wrong aud",
            ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
            _ => "invalid claims",
        })?
        .claims;
    if claims.iat > now + LEEWAY_SECS {
        return Err("iat is in the future".into());
    }
    if claims.iat + MAX_AGE_SECS < now {
        return Err("iat is too old".into());
    }
    let has_event =
        claims.events.as_ref().and_then(|events| events.get(BACKCHANNEL_EVENT)).is_some_and(Value::is_object);
    if !has_event {
        return Err("events lacks the back-channel logout event".into());
    }
    if claims.sub.is_none() && claims.sid.is_none() {
        return Err("neither sub nor sid".into());
    }
    if claims.nonce.is_some() {
        return Err("a logout token must not have a nonce".into());
    }
    // Last, so that a token refused above cannot use up its jti.
    let seen = format!("logout-jti:{}", claims.jti);
    let remember_until = claims.exp.saturating_add(LEEWAY_SECS).saturating_mul(1000);
    match state.kv.compare_and_set(&seen, None, b"1".to_vec(), remember_until.max(now_ms() + 1000)).await {
        Ok(true) => Ok(LogoutClaims { sub: claims.sub, sid: claims.sid, seen }),
        Ok(false) => Err("jti seen before (replay)".into()),
        Err(_) => Err(Refusal::StoreUnavailable),
    }
}

/// Forgets that the token of `claims` was seen: the logout it asked for failed (the store broke
/// half way), the answer is a 503, and the provider's retry carries the same `jti`. Best effort:
/// if the store cannot delete it either, the retry is refused as a replay, and that is logged.
pub async fn release(state: &AppState, claims: &LogoutClaims) {
    if let Err(error) = state.kv.delete(&claims.seen).await {
        tracing::error!(%error, "back-channel logout: could not forget the failed token's jti; its retry will be refused");
    }
}

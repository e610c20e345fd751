//! The provider's signing keys (its JWK Set), cached, and fetched again when a token names a key
//! the cache lacks (OIDC Core §10.1.1: providers rotate keys, and a client that never re-fetches
//! breaks on the first token signed with a new one).
//!
//! Re-fetches are rate-limited: one at a time, and none within [`REFETCH_INTERVAL`] of the last.
//! Tokens with forged `kid`s therefore cannot turn the server into a load generator against the
//! provider: a flood of them costs one JWKS request per interval. Concurrent callers share one
//! re-fetch. A `kid` still unknown after it is refused.
//!
//! Each [`KidSource`] has an allowance of its own. Anyone can POST a logout token with a forged
//! `kid`; if that used up the only allowance, an ID token the token endpoint signed with a key
//! rotated moments later would be refused, and the session it renews ended. ID tokens from the
//! token endpoint come server to server over the provider's TLS, so nobody else can spend theirs.
//! The price left: a token *presented to* this app (a logout token, an access token at the API)
//! signed with a brand-new key, arriving within the interval after a re-fetch that a forged `kid`
//! could have caused, is refused once, and accepted after the interval.
//!
//! A re-fetch for the token endpoint that fails (the JWKS endpoint, or a CDN before it, answers
//! an error during the rotation) does not start the interval: the renewal tries again at once
//! rather than end a session whose refresh token the provider has already rotated.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{jwk::Jwk, Algorithm, DecodingKey, Header};
use openidconnect::{core::CoreJsonWebKeySet, reqwest};

use super::oidc_client::error_chain;

/// The least time between two re-fetches.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// One JWK Set, parsed twice: for `openidconnect` (ID tokens) and for `jsonwebtoken` (access
/// tokens at the protected API).
pub struct Keys {
    pub oidc: CoreJsonWebKeySet,
    pub jwt: Vec<jsonwebtoken::jwk::Jwk>,
}

/// Why no newer key set came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefetchFailed {
    /// The set was fetched moments ago, and the token's key is not in it.
    TooSoon,
    /// The provider's JWKS could not be fetched.
    Unreachable,
}

/// Where a token naming an unknown `kid` came from: each source has its own re-fetch allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KidSource {
    /// An ID token in the token endpoint's answer to this server: only the provider can send one.
    TokenEndpoint,
    /// A token anyone can send this app (a logout token, an access token at the protected API).
    Presented,
}

pub struct JwksCache {
    uri: String,
    http: reqwest::Client,
    keys: RwLock<Arc<Keys>>,
    /// When the last re-fetch of each [`KidSource`] started (`[TokenEndpoint, Presented]`); held
    /// while one runs, so that the re-fetches of one source never overlap.
    last_refetch: [tokio::sync::Mutex<Option<Instant>>; 2],
}

impl JwksCache {
    /// Fetches the set at `uri` once, at start.
    pub async fn load(uri: String, http: reqwest::Client) -> Result<Self, String> {
        let keys = fetch(&http, &uri).await?;
        Ok(Self { uri, http, keys: RwLock::new(Arc::new(keys)), last_refetch: Default::default() })
    }

    pub fn current(&self) -> Arc<Keys> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Called when a token from `source` names a key that `seen` lacks: returns a newer set,
    /// fetched now or by a concurrent caller, or why there is none (and so the token cannot be
    /// validated, for now at least).
    pub async fn refetch_after(&self, seen: &Arc<Keys>, source: KidSource) -> Result<Arc<Keys>, RefetchFailed> {
        let mut last_refetch = self.last_refetch[source as usize].lock().await;
        let current = self.current();
        if !Arc::ptr_eq(&current, seen) {
            // Another caller re-fetched while this one waited.
            return Ok(current);
        }
        if last_refetch.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            tracing::warn!(
                ?source,
                "a token names an unknown kid, and the JWKS was fetched again moments ago: refused"
            );
            return Err(RefetchFailed::TooSoon);
        }
        let before = last_refetch.replace(Instant::now());
        match fetch(&self.http, &self.uri).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = keys.clone();
                tracing::info!(keys = keys.jwt.len(), ?source, "fetched the provider's JWKS again for an unknown kid");
                Ok(keys)
            }
            Err(error) => {
                tracing::warn!(%error, ?source, "could not fetch the provider's JWKS again");
                if source == KidSource::TokenEndpoint {
                    *last_refetch = before;
                }
                Err(RefetchFailed::Unreachable)
            }
        }
    }
}

/// The asymmetric algorithms a JWS from the provider may use. Never `none`, never HMAC: with
/// HMAC, anyone holding the "key" (for a public key, everyone) could sign.
pub const ASYMMETRIC_ALGS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl JwksCache {
    /// The key that verifies a JWS with `header` (for `jsonwebtoken`): the one its `kid` names,
    /// fetching the JWKS again if the cache lacks it (a [`KidSource::Presented`] token: these are
    /// the tokens anyone can send); refused if its `alg` is not asymmetric or does not suit the
    /// key.
    pub async fn decoding_key(&self, header: &Header) -> Result<DecodingKey, &'static str> {
        if !ASYMMETRIC_ALGS.contains(&header.alg) {
            return Err("alg not allowed");
        }
        let keys = self.current();
        let jwk = match find_key(&keys.jwt, header.kid.as_deref(), header.alg) {
            Some(jwk) => jwk,
            None => {
                let keys = self.refetch_after(&keys, KidSource::Presented).await.map_err(|_| "unknown signing key")?;
                find_key(&keys.jwt, header.kid.as_deref(), header.alg).ok_or("unknown signing key")?
            }
        };
        DecodingKey::from_jwk(&jwk).map_err(|_| "unusable signing key")
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

async fn fetch(http: &reqwest::Client, uri: &str) -> Result<Keys, String> {
    let response = http.get(uri).send().await.map_err(|e| format!("JWKS {uri}: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("JWKS {uri}: HTTP {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| format!("JWKS {uri}: {}", error_chain(&e)))?;
    let oidc: CoreJsonWebKeySet = serde_json::from_slice(&body).map_err(|e| format!("JWKS {uri}: {e}"))?;
    // Keys that jsonwebtoken cannot read (encryption keys, unknown types) are left out, not fatal.
    let raw: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("JWKS {uri}: {e}"))?;
    let jwt = raw["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|key| serde_json::from_value(key.clone()).ok())
        .collect();
    Ok(Keys { oidc, jwt })
}

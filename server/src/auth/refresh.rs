//! Renewal with the refresh token (RFC 6749 §6), single-flight per session.
//!
//! Providers rotate refresh tokens and revoke the whole family when a retired one comes back
//! (RFC 9700 §4.14.2). Two tabs, or two requests, that each present the session's refresh token
//! would therefore sign the user out. Here a session has at most one renewal in flight: the
//! first caller starts it, every caller that arrives meanwhile waits for it and gets its result,
//! and exactly one token request is made. The renewal runs as its own task, so a caller that
//! goes away (a closed tab) cannot abandon it halfway: the rotated token is always stored.
//!
//! This holds within one server process. Several instances sharing sessions need a lock in the
//! shared store as well (the Redis issue).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use app::auth::{ReauthReason, RefreshOutcome};
use openidconnect::AccessToken;
use tokio::sync::watch;

use super::{
    oidc_client::{OidcClient, RefreshError},
    token_store::{SessionKey, TokenStore},
};
use crate::{config::RenewalConfig, unix_now};

/// What the browser is told to wait before retrying after a transient failure.
const RETRY_AFTER_SECS: u64 = 2;
/// An access token with less than this left is renewed before server code uses it, so that it
/// cannot expire on the way to the API.
const MIN_ACCESS_TOKEN_SECS: u64 = 5;

type InFlight = HashMap<SessionKey, watch::Receiver<Option<RefreshOutcome>>>;

pub struct Renewer {
    oidc: Arc<OidcClient>,
    tokens: Arc<TokenStore>,
    config: RenewalConfig,
    in_flight: Mutex<InFlight>,
}

/// Takes a finished renewal out of the in-flight map, also if its task panicked.
struct InFlightGuard<'a> {
    renewer: &'a Renewer,
    key: SessionKey,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.renewer.in_flight().remove(&self.key);
    }
}

impl Renewer {
    pub fn new(oidc: Arc<OidcClient>, tokens: Arc<TokenStore>, config: RenewalConfig) -> Self {
        Self { oidc, tokens, config, in_flight: Mutex::default() }
    }

    fn in_flight(&self) -> MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Renews the session under `key` now, or joins the renewal of it already in flight.
    pub async fn renew(self: &Arc<Self>, key: &SessionKey) -> RefreshOutcome {
        let mut outcome = {
            let mut in_flight = self.in_flight();
            match in_flight.get(key) {
                Some(running) => running.clone(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    in_flight.insert(key.clone(), receiver.clone());
                    let (this, key) = (self.clone(), key.clone());
                    tokio::spawn(async move {
                        let guard = InFlightGuard { renewer: &this, key };
                        let outcome = this.refresh_now(&guard.key).await;
                        // Out of the map before the result is out: a caller that sees the result
                        // and asks again gets a new renewal, not this one.
                        drop(guard);
                        let _ = sender.send(Some(outcome));
                    });
                    receiver
                }
            }
        };
        let finished = match outcome.wait_for(Option::is_some).await {
            Ok(done) => done.clone(),
            Err(_) => None,
        };
        // `None` only if the renewal's task panicked before it could answer.
        finished
            .unwrap_or(RefreshOutcome::Transient { retry_after: RETRY_AFTER_SECS, detail: "the renewal failed".into() })
    }

    /// A fresh access token for server code that calls an API: the stored one, or, if it is
    /// about to expire, a renewed one (through the same single flight). `Err` is why not.
    pub async fn fresh_access_token(self: &Arc<Self>, key: &SessionKey) -> Result<AccessToken, RefreshOutcome> {
        let signed_out = RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut };
        let session = self.tokens.get(key).ok_or(signed_out.clone())?;
        if session.tokens.access_token_expires_at >= unix_now() + MIN_ACCESS_TOKEN_SECS {
            return Ok(session.tokens.access_token.clone());
        }
        self.renewed_access_token(key).await
    }

    /// Renews (or joins a renewal) and returns the access token it stored.
    pub async fn renewed_access_token(self: &Arc<Self>, key: &SessionKey) -> Result<AccessToken, RefreshOutcome> {
        match self.renew(key).await {
            RefreshOutcome::Renewed { .. } => self
                .tokens
                .get(key)
                .map(|session| session.tokens.access_token.clone())
                .ok_or(RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut }),
            other => Err(other),
        }
    }

    /// One token request, and the token set replaced in one step.
    async fn refresh_now(&self, key: &SessionKey) -> RefreshOutcome {
        let Some(current) = self.tokens.get(key) else {
            return RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut };
        };
        let Some(refresh_token) = current.tokens.refresh_token.clone() else {
            tracing::info!(sub = %current.subject, "renewal impossible: the session has no refresh token");
            return RefreshOutcome::ReauthRequired { reason: ReauthReason::NoRefreshToken };
        };
        let now = unix_now();
        let refreshed =
            match self.oidc.refresh(&refresh_token, &current, self.config.ignore_nonce_after_refresh, now).await {
                Ok(refreshed) => refreshed,
                Err(error) => return self.failed(key, &current.subject, error),
            };

        let mut next = (*current).clone();
        next.tokens.access_token = refreshed.access_token;
        next.tokens.access_token_expires_at = now + refreshed.expires_in;
        next.tokens.refresh_token = match refreshed.refresh_token {
            Some(rotated) if rotated.secret() != refresh_token.secret() => Some(rotated),
            _ if self.config.allow_unsafe_reuse_refresh_token => Some(refresh_token),
            _ => {
                tracing::warn!(
                    sub = %current.subject,
                    "the provider did not rotate the refresh token; it is dropped, and the next renewal needs \
                     the user (set ALLOW_UNSAFE_REUSE_REFRESH_TOKEN to keep using it)"
                );
                None
            }
        };
        if let Some((jwt, claims, display_name)) = refreshed.id_token {
            next.tokens.id_token = jwt;
            next.id_token_claims = claims;
            next.display_name = display_name;
        }
        if !self.tokens.replace(key, next) {
            // Signed out while the request was in flight: the new tokens are dropped with it.
            return RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut };
        }
        tracing::info!(sub = %current.subject, expires_in = refreshed.expires_in, "session renewed");
        RefreshOutcome::Renewed { expires_at: now + refreshed.expires_in, expires_in: refreshed.expires_in }
    }

    fn failed(&self, key: &SessionKey, subject: &str, error: RefreshError) -> RefreshOutcome {
        match error {
            RefreshError::Transient { public, detail } => {
                tracing::warn!(sub = %subject, error = %detail, "renewal failed for now; the session is kept");
                RefreshOutcome::Transient { retry_after: RETRY_AFTER_SECS, detail: public.to_owned() }
            }
            RefreshError::InvalidGrant(description) => {
                // The family may have been revoked for reuse, which also revoked the access
                // token: nothing of this session is usable any more.
                self.tokens.remove(key);
                tracing::warn!(sub = %subject, %description, "the provider refused the refresh token; the session ended");
                RefreshOutcome::ReauthRequired { reason: ReauthReason::InvalidGrant }
            }
            RefreshError::IdTokenRejected(why) => {
                self.tokens.remove(key);
                tracing::error!(sub = %subject, %why, "the refreshed ID token was refused; the session ended");
                RefreshOutcome::ReauthRequired { reason: ReauthReason::IdTokenRejected }
            }
        }
    }
}

//! The `refresh_token` grant at the token endpoint (RFC 6749 §6, OIDC Core §12), with refresh
//! token rotation and reuse detection (RFC 9700 §4.14.2).
//!
//! A refresh token family starts when a code is exchanged with the `offline_access` scope
//! granted ([`start_family`]). Each refresh retires the presented token and returns its
//! successor, in one critical section of the store, so that of concurrent requests with one
//! token exactly one wins; a retired token presented again revokes the whole family. Signing
//! happens outside the lock, which is held for a few map operations only:
//! `cargo bench -p idp --bench refresh_grants` measures the grants per second.
//!
//! Every refusal is `invalid_grant` (RFC 6749 §5.2) and its description names the case, with
//! the word `unknown`, `expired`, `revoked` or `reused`, or "issued to another client". A reuse
//! also ends the provider session the family was granted in ([`end_session_after_reuse`]), and
//! its clients get logout tokens.

use std::collections::HashMap;

use axum::{
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::{
    backchannel::{self, Ending},
    claims::TokenGrant,
    config::ClientConfig,
    error::{no_store, NotSaved, TokenError},
    metrics::Metrics,
    store::{
        random_token, token_hash, AuthorizationCode, FamilyGrant, NewFamily, Refresh, RefreshPolicy, RefreshRequest,
        Refusal, Successor,
    },
    ProviderState,
};

/// Starts a refresh token family for a code just redeemed, whose access token is `jti`, and
/// returns the family's first refresh token once the family is saved; `None` when the code was
/// replayed meanwhile, so that the family was born revoked and the exchange must be refused too.
pub(crate) async fn start_family(
    state: &ProviderState,
    client: &ClientConfig,
    code: &str,
    jti: &str,
    grant: &AuthorizationCode,
    now: u64,
) -> Result<Option<String>, NotSaved> {
    let token = random_token();
    let new = NewFamily {
        grant: FamilyGrant {
            client_id: client.client_id.clone(),
            sub: grant.sub.clone(),
            sid: grant.sid.clone(),
            auth_time: grant.auth_time,
            scopes: grant.request.scopes.clone(),
        },
        token_hash: token_hash(&token),
        token: (client.refresh_reuse_grace_secs > 0).then(|| token.clone()),
        absolute_secs: state.config.lifetimes.refresh_token_absolute_secs,
        now,
    };
    let (family, born_revoked, saving) = state.store.start_family(code, jti, new);
    saving.saved().await?;
    if born_revoked {
        // The code was replayed between its redemption and now: the replay wins.
        Metrics::increment(&state.metrics.families_revoked);
        tracing::warn!(%family, client_id = %client.client_id, sub = %grant.sub, "refresh token family revoked at birth: its code was replayed");
        return Ok(None);
    }
    tracing::info!(%family, client_id = %client.client_id, sub = %grant.sub, "refresh token family started");
    Ok(Some(token))
}

/// `grant_type=refresh_token` for the authenticated `client` (RFC 6749 §6). The admin API's
/// simulated reuse comes through here too, so that it exercises the real detection.
///
/// Whatever the grant changed (a rotation, a revocation for reuse, the new access token) is
/// saved before the answer is sent: a provider killed right after answering still knows the
/// successor it handed out, and the retired token it must refuse.
pub(crate) async fn refresh_token_grant(
    state: &ProviderState,
    client: &ClientConfig,
    params: &HashMap<String, String>,
) -> Result<Response, TokenError> {
    if !client.offline_access {
        return Err(TokenError::UnauthorizedClient("the client is not registered for refresh tokens (offline_access)"));
    }
    let presented = params.get("refresh_token").ok_or(TokenError::InvalidRequest("refresh_token is required"))?;
    // RFC 6749 §6: `scope` may narrow the new access token's scope, never widen it.
    let requested_scopes: Option<Vec<String>> =
        params.get("scope").map(|scope| scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect());

    // Everything random, hashed or copied is made before the store's lock is taken.
    let now = state.now();
    let jti = random_token();
    let successor = client.rotate_refresh_tokens.then(random_token);
    let keep_successor = client.refresh_reuse_grace_secs > 0;
    let request = RefreshRequest {
        client_id: &client.client_id,
        token_hash: token_hash(presented),
        presented: state.config.admin_api.then(|| presented.clone()),
        successor: successor
            .as_ref()
            .map(|token| Successor { hash: token_hash(token), token: keep_successor.then(|| token.clone()) }),
        requested_scopes: requested_scopes.as_deref(),
        jti: jti.clone(),
        access_token_expires_at: now + state.config.lifetimes.access_token_secs,
        now,
    };
    let policy = RefreshPolicy {
        idle_secs: state.config.lifetimes.refresh_token_idle_secs,
        grace_secs: client.refresh_reuse_grace_secs,
        keep_retired: state.config.admin_api,
    };

    let (refresh, saving) = state.store.refresh(request, policy);
    let (family, grant, family_expires_at, refresh_token) = match refresh {
        Refresh::Granted { family, grant, expires_at, reissued: Some(successor) } => {
            Metrics::increment(&state.metrics.refresh_grace_reissues);
            tracing::info!(%family, client_id = %client.client_id, sub = %grant.sub, "retired refresh token back inside the grace window: its successor is handed out again");
            (family, grant, expires_at, Some(successor))
        }
        Refresh::Granted { family, grant, expires_at, reissued: None } => (family, grant, expires_at, successor),
        Refresh::Refused(refusal) => {
            let reused_in = match &refusal {
                Refusal::Reused { grant, .. } => Some(grant.sid.clone()),
                _ => None,
            };
            let error = refused(state, refusal);
            saving.saved().await?;
            if let Some(sid) = reused_in {
                end_session_after_reuse(state, &sid).await?;
            }
            return Err(error);
        }
    };

    let scopes = requested_scopes.as_deref().unwrap_or(&grant.scopes);
    // OIDC Core §12.2: the same iss, sub, aud, azp, auth_time and sid as the original ID token,
    // and no nonce.
    let token_grant = TokenGrant {
        client_id: &grant.client_id,
        sub: &grant.sub,
        sid: &grant.sid,
        auth_time: grant.auth_time,
        scopes,
        nonce: None,
    };
    let tokens = state.mint_tokens(&token_grant, jti, now);
    tracing::debug!(%family, client_id = %client.client_id, rotated = refresh_token.is_some(), "tokens issued for a refresh token");
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": state.config.lifetimes.access_token_secs,
        "scope": scopes.join(" "),
    });
    if let Some(id_token) = tokens.id_token {
        body["id_token"] = id_token.into();
    }
    // Without rotation the member is absent: the client keeps the token it has (RFC 6749 §5.1).
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = refresh_token.into();
    }
    body["refresh_expires_in"] = refresh_expires_in(state, family_expires_at, now).into();
    // The tokens were signed while the grant was being written; they leave once it is on disk.
    saving.saved().await?;
    Ok((no_store(), Json(body)).into_response())
}

/// `refresh_expires_in` (not in RFC 6749; Keycloak's name for it): how long the refresh token
/// stays usable if it is used no more, the sooner of its idle expiry and its family's absolute
/// one. A hint for the client's display; the token's validity is decided here, at use.
pub(crate) fn refresh_expires_in(state: &ProviderState, family_expires_at: u64, now: u64) -> u64 {
    let idle_expires_at = now + state.config.lifetimes.refresh_token_idle_secs;
    idle_expires_at.min(family_expires_at).saturating_sub(now)
}

/// Ends the provider session `sid` after one of its families was revoked for reuse: whoever
/// holds the stolen token may hold that session's cookie too. Its clients are told through the
/// back channel, in the background.
pub(crate) async fn end_session_after_reuse(state: &ProviderState, sid: &str) -> Result<(), NotSaved> {
    let Some((session, saving)) = state.store.end_session_by_sid(sid, state.now()) else {
        return Ok(());
    };
    saving.saved().await?;
    tracing::warn!(%sid, sub = %session.sub, "the provider session of a reused token's family is ended");
    drop(backchannel::notify(state, &session, Ending::Reuse));
    Ok(())
}

/// The error for a refused refresh token; a reuse is also logged and counted.
fn refused(state: &ProviderState, refusal: Refusal) -> TokenError {
    match refusal {
        Refusal::Unknown => TokenError::InvalidGrant("unknown refresh token"),
        Refusal::OtherClient => TokenError::InvalidGrant("the refresh token was issued to another client"),
        Refusal::Revoked => TokenError::InvalidGrant("the refresh token has been revoked"),
        Refusal::IdleExpired => TokenError::InvalidGrant("the refresh token has expired: idle for too long"),
        Refusal::FamilyExpired => {
            TokenError::InvalidGrant("the refresh token has expired: its family reached its absolute lifetime")
        }
        Refusal::ScopeNotGranted => TokenError::InvalidScope("the requested scope exceeds the refresh token's scope"),
        Refusal::Reused { family, grant } => {
            Metrics::increment(&state.metrics.refresh_tokens_reused);
            Metrics::increment(&state.metrics.families_revoked);
            tracing::warn!(%family, client_id = %grant.client_id, sub = %grant.sub, "retired refresh token presented again: the whole family is revoked");
            TokenError::InvalidGrant(
                "the refresh token was reused after rotation; every token of its family is now invalid",
            )
        }
    }
}

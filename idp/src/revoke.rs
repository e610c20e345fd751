//! The revocation endpoint (RFC 7009): a client tells the provider it no longer needs a token.
//!
//! The client authenticates as at `/token` (RFC 7009 §2.1). A refresh token, current or
//! retired, revokes its whole family, and with it every access token issued from it (RFC 7009
//! §2.1: the access tokens of the same grant SHOULD go too); an access token revokes itself.
//! `token_type_hint` only decides which kind is looked up first.
//!
//! The answer is 200 with an empty body whether or not anything was revoked: for an unknown,
//! expired or already revoked token (RFC 7009 §2.2), and for another client's token, which is
//! left alone; so the endpoint tells no client anything about tokens that are not its own.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use crate::{
    config::ClientConfig,
    error::{no_store, TokenError},
    metrics::Metrics,
    store::{token_hash, Saving},
    token::{authenticate_client, parse_form},
    userinfo::verify_access_token,
    ProviderState,
};

pub async fn revoke(State(state): State<Arc<ProviderState>>, headers: HeaderMap, body: String) -> Response {
    match revoke_token(&state, &headers, &body).await {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Revokes `token` if it is of its kind and the client's: `Some` if it was found, with the
/// revocation on its way to disk.
type Lookup = fn(&ProviderState, &ClientConfig, &str) -> Option<Saving>;

async fn revoke_token(state: &ProviderState, headers: &HeaderMap, body: &str) -> Result<(), TokenError> {
    let params = parse_form(body)?;
    let client = authenticate_client(state, headers, &params)?;
    let token = params.get("token").ok_or(TokenError::InvalidRequest("token is required"))?;
    // RFC 7009 §2.1: the hint orders the search; a token not found with it is looked for as
    // the other kind. Refresh tokens first otherwise: their lookup is a hash, not a signature.
    let mut lookups: [Lookup; 2] = [revoke_refresh_token, revoke_access_token];
    if params.get("token_type_hint").map(String::as_str) == Some("access_token") {
        lookups.reverse();
    }
    match lookups.iter().find_map(|revoke| revoke(state, client, token)) {
        // The client is told its token is revoked only once a restart would not bring it back.
        Some(saving) => saving.saved().await?,
        None => {
            tracing::debug!(client_id = %client.client_id, "revocation of a token that is unknown, inactive or not the client's")
        }
    }
    Ok(())
}

/// `Some` if `token` is a refresh token of `client` (its family is now revoked, or already was).
fn revoke_refresh_token(state: &ProviderState, client: &ClientConfig, token: &str) -> Option<Saving> {
    let (family, newly, saving) = state.store.revoke_family_of(&token_hash(token), &client.client_id)?;
    if newly {
        Metrics::increment(&state.metrics.families_revoked);
        tracing::info!(%family, client_id = %client.client_id, "refresh token family revoked by its client");
    }
    Some(saving)
}

/// `Some` if `token` is an access token this provider signed for `client` (now revoked). The
/// signature is checked first, so that the `client_id` it names can be trusted; an expired
/// token still counts, though there is nothing left to revoke.
fn revoke_access_token(state: &ProviderState, client: &ClientConfig, token: &str) -> Option<Saving> {
    let claims = verify_access_token(state, token, state.now()).ok()?;
    if claims.client_id != client.client_id {
        return None;
    }
    match state.store.revoke_access_token(&claims.jti) {
        Some(saving) => {
            tracing::info!(client_id = %client.client_id, sub = %claims.sub, "access token revoked by its client");
            Some(saving)
        }
        // Revoked already, or expired and forgotten: nothing left to do.
        None => Some(Saving::done()),
    }
}

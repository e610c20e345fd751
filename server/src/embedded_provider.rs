//! Starts the development OpenID Provider in this process when no external issuer is set, on
//! its own port: another origin than the app, the same site. Its state (signing keys, provider
//! sessions, refresh token families) is kept in `provider.sqlite3` in the data directory.

use std::{net::SocketAddr, path::Path};

use idp::{Provider, ProviderConfig};

use crate::{
    config::{Config, ConfigError},
    store::StoreLocation,
    StartError,
};

/// Binds `addr` and serves the provider until the process ends, configured from `config_file`
/// (`EMBEDDED_IDP_CONFIG`) or the built-in default, with this app's issuer and callback.
pub async fn start(
    config: &Config,
    addr: SocketAddr,
    config_file: Option<&Path>,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    let issuer = config.issuer.as_str().parse().map_err(|e| StartError::EmbeddedProvider(format!("issuer: {e}")))?;
    let base = match config_file {
        Some(path) => ProviderConfig::from_file(path)
            .map_err(|e| StartError::EmbeddedProvider(format!("EMBEDDED_IDP_CONFIG {}: {e}", path.display())))?,
        None => ProviderConfig::default(),
    };
    let mut provider_config = ProviderConfig { issuer, ..base };
    // Beside the app's sessions, so that a restart changes nothing for anyone signed in; not
    // with the memory store, which forgets everything anyway.
    if provider_config.state_file.is_none() && config.store != StoreLocation::Memory {
        provider_config.state_file = Some(config.data_dir.join("provider.sqlite3"));
    }
    // The app must be a client of it, with its secret: otherwise every sign-in would fail at the
    // provider, long after a start-up that looked fine.
    let client_id = config.client_id.as_str();
    let Some(client) = provider_config.clients.iter().find(|client| client.client_id == client_id) else {
        let problem = format!("{client_id}: no such client in the embedded provider's configuration");
        return Err(ConfigError { setting: "OIDC_CLIENT_ID", problem }.into());
    };
    if client.client_secret.as_deref() != config.client_secret.as_ref().map(|secret| secret.secret().as_str()) {
        let problem = format!("not the secret the embedded provider has for {client_id}");
        return Err(ConfigError { setting: "OIDC_CLIENT_SECRET", problem }.into());
    }
    provider_config.register_redirect_uri(&config.client_id, &config.callback_url());
    provider_config.register_redirect_uri(&config.client_id, &config.silent_callback_url());
    provider_config.register_post_logout_redirect_uri(&config.client_id, &config.post_logout_url());
    provider_config.register_backchannel_logout_uri(&config.client_id, &config.backchannel_logout_url());
    let provider = Provider::new(provider_config).map_err(|e| StartError::EmbeddedProvider(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::EmbeddedProvider(format!("EMBEDDED_IDP_ADDR {addr}: {e}")))?;
    tracing::info!(%addr, issuer = %config.issuer.as_str(), "embedded OpenID Provider listening");
    Ok(tokio::spawn(async move {
        if let Err(error) = provider.serve(listener).await {
            tracing::error!(%error, "embedded OpenID Provider stopped");
        }
    }))
}

//! A small OpenID Provider for development and tests: spec-true, in memory, one process.
//!
//! It implements what the demo application needs and nothing it would have to fake: the
//! authorization code flow with PKCE (RFC 6749, RFC 7636, OIDC Core 1.0), ES256-signed ID tokens,
//! JWT access tokens (RFC 9068) and the userinfo endpoint. Discovery lists exactly that.
//!
//! Module map, one endpoint per file:
//! - [`config`]: the TOML configuration (clients, demo users, lifetimes); `provider.toml` is the default.
//! - `discovery`: `/.well-known/openid-configuration` and `/jwks`.
//! - `authorize`: `/authorize`, the front door of the code flow.
//! - `login`: the sign-in form and the provider session cookie.
//! - `token`: `/token`, client authentication and the `authorization_code` grant.
//! - `userinfo`: `/userinfo`, a protected resource that checks the access token.
//! - `claims`: the contents of ID tokens and access tokens.
//! - [`testing`]: a provider on an ephemeral port for integration tests.
//! - `keys`, `store`, [`clock`], [`error`], `html`: signing key, state, time, errors, pages.

mod authorize;
mod claims;
pub mod clock;
pub mod config;
mod discovery;
pub mod error;
mod html;
mod keys;
mod login;
mod store;
pub mod testing;
mod token;
mod userinfo;

use std::sync::Arc;

use axum::{
    routing::{get, post},
    Router,
};

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::ProviderConfig;
pub use error::ConfigError;

use keys::SigningKey;
use store::Store;

/// A configured provider; [`Provider::router`] serves it.
#[derive(Clone)]
pub struct Provider {
    state: Arc<ProviderState>,
}

pub(crate) struct ProviderState {
    pub config: ProviderConfig,
    pub key: SigningKey,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

impl ProviderState {
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Cookies get the `__Host-` prefix and `Secure` when the provider is served over https.
    pub fn secure_cookies(&self) -> bool {
        self.config.issuer.scheme() == "https"
    }

    pub fn cookie_name(&self, name: &str) -> String {
        if self.secure_cookies() {
            format!("__Host-{name}")
        } else {
            name.to_owned()
        }
    }
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: ProviderConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let key = match &config.signing_key_file {
            Some(path) => SigningKey::from_pem_file(path)?,
            None => SigningKey::generate(),
        };
        tracing::info!(issuer = %config.issuer_str(), kid = key.kid(), "OpenID Provider ready");
        Ok(Self { state: Arc::new(ProviderState { config, key, store: Store::default(), clock }) })
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.state.config
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(discovery::configuration))
            .route("/jwks", get(discovery::jwks))
            .route("/authorize", get(authorize::authorize).post(authorize::authorize_form))
            .route("/login", post(login::submit))
            .route("/token", post(token::token))
            .route("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
            // Browsers ask every origin for one; an empty answer keeps their consoles clean.
            .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
            .with_state(self.state.clone())
    }

    /// Serves the provider on `listener` until the future is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }
}

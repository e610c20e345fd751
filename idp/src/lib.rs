//! A small OpenID Provider for development and tests: spec-true, one process, in memory or, with
//! a state file, surviving restarts.
//!
//! It implements what the demo application needs and nothing it would have to fake: the
//! authorization code flow with PKCE (RFC 6749, RFC 7636, OIDC Core 1.0), ES256-signed ID tokens
//! from rotating keys, JWT access tokens (RFC 9068), refresh tokens with rotation and reuse
//! detection (RFC 6749 §6, RFC 9700 §4.14), token revocation (RFC 7009), the userinfo endpoint,
//! and the end of sessions: Session Management 1.0 (`session_state`, the OP iframe),
//! RP-Initiated Logout 1.0 and Back-Channel Logout 1.0. Discovery lists exactly that.
//!
//! Module map, one endpoint per file:
//! - [`config`]: the TOML configuration (clients, demo users, lifetimes); `provider.toml` is the default.
//! - `discovery`: `/.well-known/openid-configuration` and `/jwks`.
//! - `authorize`: `/authorize`, the front door of the code flow: `prompt` (with `none`, silent
//!   renew), `id_token_hint`, `max_age`, and what a signed-in request still needs before its code.
//! - `login`: the sign-in form and the provider session cookie.
//! - `terms`: `/terms`, updated terms a user must accept after the password (`interaction_required`).
//! - `consent`: `/consent`, the consent page of a client that requires it (`consent_required`).
//! - `token`: `/token`, client authentication and the `authorization_code` grant.
//! - `refresh`: the `refresh_token` grant at `/token`: rotation, reuse detection, grace window.
//! - `revoke`: `/revoke`, token revocation.
//! - `userinfo`: `/userinfo`, a protected resource that checks the access token.
//! - `check_session`: `session_state`, the browser state cookie, and `/check-session`, the OP
//!   iframe of Session Management.
//! - `end_session`: `/end-session`, RP-Initiated Logout.
//! - `backchannel`: logout tokens, sent to clients when a provider session ends (Back-Channel
//!   Logout), and the admin API's defective ones.
//! - `admin`: `/admin/…`, a JSON API for development (metrics, families, key rotation, ending
//!   provider sessions, a slow `/authorize`, logout tokens with defects), only when `admin_api`
//!   is set.
//! - `claims`: the contents of ID tokens and access tokens.
//! - [`testing`]: a provider on an ephemeral port for integration tests.
//! - `keys`, `store` (with `store::families`, the refresh token families; `store::state_file`
//!   and `store::journal`, the SQLite file that keeps them across restarts), `metrics`,
//!   [`clock`], [`error`], `html`: signing keys, state, counters, time, errors, pages.

mod admin;
mod authorize;
mod backchannel;
mod check_session;
mod claims;
pub mod clock;
pub mod config;
mod consent;
mod discovery;
mod end_session;
pub mod error;
mod html;
mod keys;
mod login;
mod metrics;
mod refresh;
mod revoke;
mod store;
mod terms;
pub mod testing;
mod token;
mod userinfo;

use std::sync::{atomic::AtomicU64, Arc};

use axum::{
    routing::{get, post},
    Router,
};

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::ProviderConfig;
pub use error::ConfigError;
pub use keys::SigningAlg;

use keys::{KeySet, Retirement, SigningKey};
use metrics::Metrics;
use store::Store;

/// A configured provider; [`Provider::router`] serves it.
#[derive(Clone)]
pub struct Provider {
    state: Arc<ProviderState>,
}

pub(crate) struct ProviderState {
    pub config: ProviderConfig,
    /// `config.issuer_str()`, computed once: every token carries it.
    pub issuer: String,
    pub keys: KeySet,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// Milliseconds every `/authorize` request waits before it is answered: a slow provider,
    /// set through the admin API for timeout tests. 0, the default, is off.
    pub authorize_delay_ms: AtomicU64,
    /// Set through the admin API: how long `/token` waits, and whether it answers 503.
    pub token_delay_ms: AtomicU64,
    pub token_outage: std::sync::atomic::AtomicBool,
    /// The provider's own HTTP client: back-channel logout requests.
    pub http: reqwest::Client,
}

impl ProviderState {
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// How long a rotated-out key stays published, and verifies `id_token_hint`s.
    pub fn key_retirement(&self) -> Retirement {
        key_retirement(&self.config)
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

/// A rotated-out key is published as long as a token it signed lives (access, ID or logout
/// token). It verifies `id_token_hint`s as long as the ID tokens it signed may still be offered
/// as hints (RP-Initiated Logout 1.0 §2: expired ones too): for the life of the provider session
/// they were issued in, or of the relying party's session resting on a refresh token family
/// started in it, whichever is longer.
fn key_retirement(config: &ProviderConfig) -> Retirement {
    let lifetimes = &config.lifetimes;
    let published_secs = lifetimes.access_token_secs.max(lifetimes.id_token_secs).max(backchannel::LOGOUT_TOKEN_SECS);
    let hint_secs = lifetimes.provider_session_secs.max(lifetimes.refresh_token_absolute_secs).max(published_secs);
    Retirement { published_secs, hint_secs }
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// With `state_file` set, opens it (creating it if missing) and loads the provider's state
    /// from it; a file that cannot be opened or read is a [`ConfigError`] that names it.
    pub fn with_clock(config: ProviderConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        // Again: URIs registered in code after loading are held to the file's rules.
        config.validate()?;
        let http = backchannel::http_client()
            .map_err(|e| ConfigError::Invalid(format!("the back-channel HTTP client cannot start: {e}")))?;
        let configured_key = config.signing_key_file.as_deref().map(SigningKey::from_pem_file).transpose()?;
        let (store, keys) = match &config.state_file {
            Some(path) => store::open_state_file(store::Opening {
                path,
                configured_key,
                retirement: key_retirement(&config),
                now: clock.now(),
            })?,
            None => (Store::default(), KeySet::new(configured_key.unwrap_or_else(SigningKey::generate))),
        };
        tracing::info!(issuer = %config.issuer_str(), kid = keys.current().kid(), "OpenID Provider ready");
        let state = ProviderState {
            issuer: config.issuer_str(),
            config,
            keys,
            store,
            clock,
            metrics: Metrics::default(),
            authorize_delay_ms: AtomicU64::new(0),
            token_delay_ms: AtomicU64::new(0),
            token_outage: std::sync::atomic::AtomicBool::new(false),
            http,
        };
        Ok(Self { state: Arc::new(state) })
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.state.config
    }

    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery::configuration))
            .route("/jwks", get(discovery::jwks))
            .route("/authorize", get(authorize::authorize).post(authorize::authorize_form))
            .route("/login", post(login::submit))
            .route("/terms", post(terms::submit))
            .route("/consent", post(consent::submit))
            .route("/token", post(token::token))
            .route("/revoke", post(revoke::revoke))
            .route("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
            .route("/check-session", get(check_session::page))
            .route("/check-session/state", get(check_session::refresh))
            .route("/end-session", get(end_session::end_session).post(end_session::end_session_form))
            // Browsers ask every origin for one; an empty answer keeps their consoles clean.
            .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }));
        // Off, the admin routes do not exist at all (404), rather than refuse.
        if self.state.config.admin_api {
            router = router.nest("/admin", admin::router(self.state.clone()));
        }
        router.with_state(self.state.clone())
    }

    /// Serves the provider on `listener` until the future is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Serves the provider on `listener` until `signal` completes, lets the requests in flight
    /// finish, then closes the state file: once this returns, another provider may open it.
    pub async fn serve_with_shutdown(
        self,
        listener: tokio::net::TcpListener,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = axum::serve(listener, self.router()).with_graceful_shutdown(signal).await;
        self.close();
        served
    }

    /// Writes whatever is still on its way to the state file and closes it; the provider
    /// refuses every change from then on (500). Without a state file, nothing happens.
    pub fn close(&self) {
        self.state.store.close();
    }
}

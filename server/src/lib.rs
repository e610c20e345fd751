//! The axum server: renders the Leptos app, answers its server functions, and runs the
//! backend-for-frontend auth routes. Tokens live here and nowhere else.
//!
//! Module map:
//! - [`config`]: the one typed configuration, from the environment.
//! - [`auth`]: `/auth/login`, `/auth/callback`, `/auth/session`, `/auth/refresh`,
//!   `/auth/logout`; the `openidconnect` client, the token store and single-flight renewal.
//! - [`api`]: the protected API (`/api/reports`), a resource server that checks access tokens.
//! - [`store`]: where sessions live (SQLite by default, Redis, or memory), their cookie, and
//!   the sealing of token sets at rest.
//! - [`security`]: CSP, baseline headers, the same-origin check on writes.
//! - [`embedded_provider`]: the development OpenID Provider, started when no issuer is set.
//! - [`dev_faults`]: the dashboard's fault panel, mounted only with the embedded provider.
//! - [`error`]: what a browser sees when sign-in fails.

pub mod api;
pub mod auth;
pub mod config;
pub mod dev_faults;
pub mod embedded_provider;
pub mod error;
pub mod logging;
pub mod security;
pub mod store;

use std::{
    convert::Infallible,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use app::{
    auth::{CheckSession, SharedBackend},
    shell, App,
};
use axum::{
    extract::{FromRef, Request},
    http::{header, HeaderValue, StatusCode},
    middleware,
    response::Response,
    Router,
};
use leptos::{config::LeptosOptions, context::provide_context};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower::{util::BoxCloneSyncService, Layer};
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer, trace::TraceLayer};

use crate::{
    api::{AccessTokenValidator, LoggedOut},
    auth::{
        backend::Backend,
        events::SessionEvents,
        oidc_client::{DiscoveryError, OidcClient},
        record::BrowserSettings,
        refresh::Renewer,
        token_store::TokenStore,
    },
    config::{Config, ConfigError},
    dev_faults::FaultSwitches,
    security::PageCsp,
    store::{
        seal::{SealKey, Sealer},
        sessions::SessionRecords,
        Kv, StoreLocation,
    },
};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub oidc: Arc<OidcClient>,
    pub tokens: Arc<TokenStore>,
    pub renewer: Arc<Renewer>,
    pub kv: Arc<Kv>,
    pub events: Arc<SessionEvents>,
    /// What every page learns about keeping its session alive and watching it.
    pub browser: Arc<BrowserSettings>,
    /// Back-channel logouts, which the protected API honours.
    pub logged_out: Arc<LoggedOut>,
    /// The fault panel's switches; its routes are mounted in development only.
    pub faults: Arc<FaultSwitches>,
}

/// Why the server could not start; each names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("embedded provider: {0}")]
    EmbeddedProvider(String),
    #[error("Leptos site configuration: {0}")]
    Site(String),
    #[error("LEPTOS_SITE_ADDR {0}")]
    Listen(String),
    #[error("SESSION_STORE: {0}")]
    Store(String),
    #[error("SESSION_SEAL_KEYS: {0}")]
    SealKey(String),
}

/// Discovers the provider and builds the whole application.
pub async fn app(config: Config, leptos_options: LeptosOptions) -> Result<Router, StartError> {
    let kv = Arc::new(Kv::open(&config.store).await.map_err(|e| StartError::Store(e.0))?);
    kv.spawn_purge(PURGE_PERIOD);
    let sealer = Sealer::new(&seal_keys(&config)?);
    let oidc = Arc::new(OidcClient::discover(&config).await?);
    tracing::info!(issuer = %config.issuer.as_str(), client_id = %config.client_id.as_str(), "provider discovered");
    let tokens = Arc::new(TokenStore::new(kv.clone(), sealer));
    let renewer = Arc::new(Renewer::new(oidc.clone(), tokens.clone(), kv.clone(), config.renewal.clone()));
    let logged_out = Arc::new(LoggedOut::new(kv.clone()));
    let validator = AccessTokenValidator::new(oidc.clone(), config.api_audience.clone(), logged_out.clone());
    let api = api::router(Arc::new(validator));
    let backend: SharedBackend = Arc::new(Backend::new(renewer.clone(), api.clone()));
    let browser = Arc::new(BrowserSettings {
        renewal: config.renewal_policy(),
        check_session: oidc
            .session_metadata()
            .check_session_iframe
            .clone()
            .filter(|_| config.renewal.check_session_interval_secs > 0)
            .map(|iframe| CheckSession {
                iframe,
                client_id: config.client_id.to_string(),
                interval_secs: config.renewal.check_session_interval_secs,
            }),
        dev_faults: config.dev_faults(),
    });
    let events = SessionEvents::new(kv.clone());
    let faults = Arc::new(FaultSwitches::new(config.issuer.as_str()));
    let state = AppState {
        leptos_options,
        config: Arc::new(config),
        oidc,
        tokens,
        renewer,
        kv: kv.clone(),
        events,
        browser,
        logged_out,
        faults,
    };
    Ok(router(state, backend, api, SessionRecords::new(kv)))
}

/// How often expired sessions are deleted from a store that does not expire keys by itself.
const PURGE_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

/// `SESSION_SEAL_KEYS`, or in development a key generated once and kept in the data directory
/// (with the memory store, one that lives as long as the process).
fn seal_keys(config: &Config) -> Result<Vec<SealKey>, StartError> {
    if !config.seal_keys.is_empty() {
        return Ok(config.seal_keys.clone());
    }
    if config.store == StoreLocation::Memory {
        return Ok(vec![SealKey::generate()]);
    }
    Ok(vec![SealKey::load_or_create(&config.data_dir.join("seal.key")).map_err(StartError::SealKey)?])
}

fn router(state: AppState, backend: SharedBackend, api: Router, records: SessionRecords) -> Router {
    let https = state.config.secure_cookies();
    let csp = PageCsp::new(
        state.config.app_url.host_str().unwrap_or("localhost"),
        &state.oidc.browser_origins(),
        &state.leptos_options,
    );
    // What every rendered page gets, the not-found page included.
    let page_context = move || {
        provide_context(backend.clone());
        PageCsp::note_nonce();
    };
    let options = state.leptos_options.clone();
    let leptos = Router::new()
        .leptos_routes_with_context(&state, generate_route_list(App), page_context.clone(), move || {
            shell(options.clone())
        })
        .layer(middleware::from_fn_with_state(state.clone(), auth::session::attach_session_view));

    // Server to server: authenticated by the logout token, not by a browser's cookie or Origin.
    let provider_facing = auth::provider_routes().with_state(state.clone());
    let mut browser_facing = Router::new().merge(auth::routes());
    if state.browser.dev_faults {
        browser_facing = browser_facing.merge(dev_faults::routes());
    }
    let browser_facing = browser_facing
        .merge(leptos)
        .fallback_service(site_files(&state, page_context))
        .layer(middleware::from_fn_with_state(Arc::new(csp), security::page_headers))
        .layer(middleware::from_fn_with_state(state.clone(), security::require_same_origin))
        .layer(store::sessions::layer(&state.config, records))
        .with_state(state);

    let app = Router::new().merge(browser_facing).merge(provider_facing).merge(api);
    // Served over https: browsers are told to come back over https only (RFC 6797), so that no
    // later visit starts in clear text where the session cookie could be stripped of its use.
    let app = if https {
        app.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        app
    };
    app.layer(middleware::from_fn(security::baseline_headers))
        // Spans name the path only: a query can hold an authorization code or a state.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
            tracing::info_span!("request", method = %request.method(), path = request.uri().path())
        }))
}

/// The built site (the wasm, its JS, the CSS, `public/`) from its root, and the app's not-found
/// page for whatever is neither a route nor a file there. That page reads the session as every
/// other page does: without it a signed-in user would see "Signed out" there, and a link from it
/// would send them through a needless sign-in.
///
/// Not `leptos_axum::file_and_error_handler` (0.8.10): it answers a file under a new reactive
/// owner, a child of whatever owner is current on that worker thread, and applies the
/// `ResponseOptions` it finds there, which can be another request's: one in three `/pkg/*.js`
/// requests made beside pages that redirect to sign-in came back as that page's 302, and the
/// page never hydrated (`server/tests/callback.rs::static_files_never_carry_another_requests_answer`).
fn site_files(
    state: &AppState,
    page_context: impl Fn() + Clone + Send + Sync + 'static,
) -> ServeDir<BoxCloneSyncService<Request, Response, Infallible>> {
    let options = &state.leptos_options;
    let shell_options = options.clone();
    let render = leptos_axum::render_app_to_stream_with_context(page_context, move || shell(shell_options.clone()));
    let not_found = tower::service_fn(move |request: Request| {
        let render = render.clone();
        async move {
            let mut response = render(request).await;
            // A redirect (or another status the page set) stands; the page itself is a 404.
            if response.status() == StatusCode::OK {
                *response.status_mut() = StatusCode::NOT_FOUND;
            }
            Ok(response)
        }
    });
    let not_found = middleware::from_fn_with_state(state.clone(), auth::session::attach_session_view).layer(not_found);
    ServeDir::new(&*options.site_root)
        .call_fallback_on_method_not_allowed(true)
        .fallback(BoxCloneSyncService::new(not_found))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

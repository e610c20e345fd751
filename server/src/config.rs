//! The server's configuration: one typed struct, loaded from the environment in one place.
//! A bad value stops start-up with one message that names the setting.
//!
//! | variable             | default                                   |
//! |----------------------|-------------------------------------------|
//! | `APP_URL`            | `http://localhost:3000`                   |
//! | `OIDC_ISSUER`        | unset: the embedded provider              |
//! | `OIDC_CLIENT_ID`     | `demo-app` with the embedded provider     |
//! | `OIDC_CLIENT_SECRET` | `demo-app-secret` with the embedded one   |
//! | `OIDC_SCOPES`        | `openid profile email`                    |
//! | `EMBEDDED_IDP_ADDR`  | `127.0.0.1:4000`                          |
//! | `EMBEDDED_IDP_CONFIG`| unset: the built-in `idp/provider.toml`   |
//! | `USE_REFRESH_TOKEN`  | `true`: ask for `offline_access`          |
//! | `RENEW_STRATEGY`     | `auto` (`refresh_token`, `iframe`)        |
//! | `SILENT_RENEW_TIMEOUT_SECS` | `10`                               |
//! | `CHECK_SESSION_INTERVAL_SECS` | `5` (0: off)                     |
//! | `RENEW_BEFORE_EXPIRY_SECS` | `15`                                |
//! | `RENEW_JITTER_SECS`  | `5`                                       |
//! | `IGNORE_NONCE_AFTER_REFRESH` | `false`                           |
//! | `ALLOW_UNSAFE_REUSE_REFRESH_TOKEN` | `false`                     |
//! | `AUTO_USERINFO`      | `false`                                   |
//! | `API_AUDIENCE`       | `demo-api`                                |
//! | `SESSION_STORE`      | `target/oidc-session/sessions.sqlite3`    |
//! | `SESSION_SEAL_KEYS`  | a key generated once in the data directory |

use std::{net::SocketAddr, path::PathBuf};

use openidconnect::{ClientId, ClientSecret, IssuerUrl};
use url::Url;

use app::auth::RenewStrategy;

use crate::store::{seal::SealKey, StoreLocation};

const DEFAULT_APP_URL: &str = "http://localhost:3000";
const DEFAULT_EMBEDDED_ADDR: &str = "127.0.0.1:4000";
const DEFAULT_SCOPES: &str = "openid profile email";
const EMBEDDED_CLIENT_ID: &str = "demo-app";
const EMBEDDED_CLIENT_SECRET: &str = "demo-app-secret";
const DEFAULT_API_AUDIENCE: &str = "demo-api";
/// Where files are kept by default: the session database, a generated seal key, the embedded
/// provider's state. Under `target/`, so that `cargo clean` is a fresh start.
const DEFAULT_DATA_DIR: &str = "target/oidc-session";
/// RFC 6749 §6 and OIDC Core §11: the scope that asks for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

#[derive(Debug, Clone)]
pub struct Config {
    /// The origin the browser uses for this app; the callback is `{app_url}/auth/callback`.
    pub app_url: Url,
    pub provider: ProviderSource,
    pub issuer: IssuerUrl,
    pub client_id: ClientId,
    /// `None` for a public client (PKCE only).
    pub client_secret: Option<ClientSecret>,
    /// `openid` first; `offline_access` added or removed by `renewal.use_refresh_token`.
    pub scopes: Vec<String>,
    pub renewal: RenewalConfig,
    /// Fetch the userinfo endpoint at sign-in and show its claims (oidc-client-ts's
    /// `loadUserInfo`).
    pub auto_userinfo: bool,
    /// The `aud` the protected API requires of access tokens (RFC 9068 §4).
    pub api_audience: String,
    /// Where sessions are kept (`SESSION_STORE`).
    pub store: StoreLocation,
    /// The keys that seal token sets at rest (`SESSION_SEAL_KEYS`): the first seals, all
    /// unseal. Empty: a key generated once and kept in [`Config::data_dir`].
    pub seal_keys: Vec<SealKey>,
    /// Where the files this server keeps live: beside the SQLite store, else the default.
    pub data_dir: PathBuf,
}

/// How sessions are kept alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalConfig {
    /// Ask for a refresh token (`offline_access`) and renew with it. Off with the `iframe`
    /// strategy, which renews through the provider's session only.
    pub use_refresh_token: bool,
    /// Which path renews: the refresh token, the hidden iframe (`prompt=none`), or the first
    /// that the session allows.
    pub strategy: RenewStrategy,
    /// How long the browser waits for an iframe renewal before counting it as failed.
    pub silent_renew_timeout_secs: u64,
    /// How often the browser asks the provider's check_session iframe (0: never).
    pub check_session_interval_secs: u64,
    /// The browser renews this long before the access token expires…
    pub before_expiry_secs: u64,
    /// …and up to this much earlier still, at random, so that clients spread out.
    pub jitter_secs: u64,
    /// Accept a `nonce` in a refreshed ID token even when it differs from the sign-in's (some
    /// providers put a fresh one there; OIDC Core §12.2 says it must be the original).
    pub ignore_nonce_after_refresh: bool,
    /// Keep using a refresh token that the provider did not rotate. Off by default: without
    /// rotation a stolen refresh token stays good for its whole lifetime (RFC 9700 §4.14.2).
    pub allow_unsafe_reuse_refresh_token: bool,
}

/// Where the OpenID Provider comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSource {
    /// Started in this process, listening on `addr`: a different origin from the app (another
    /// port) but the same site, like a provider on a sibling subdomain.
    Embedded {
        addr: SocketAddr,
        /// The provider's TOML (clients, users, lifetimes); `None` for the built-in one.
        config_file: Option<PathBuf>,
    },
    /// Any standard provider, found through discovery.
    External,
}

/// The setting at fault and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting, problem: problem.into() }
}

impl Config {
    /// Development mode: the embedded provider runs, and with it the dashboard's fault panel.
    pub fn dev_faults(&self) -> bool {
        matches!(self.provider, ProviderSource::Embedded { .. })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Builds the configuration from any source of variables (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let app_url = parse_app_url(&var("APP_URL").unwrap_or_else(|| DEFAULT_APP_URL.into()))?;
        let store = parse_store(var("SESSION_STORE"))?;
        let seal_keys = match var("SESSION_SEAL_KEYS") {
            Some(list) => list
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(SealKey::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("SESSION_SEAL_KEYS", e))?,
            None => Vec::new(),
        };
        let strategy = match var("RENEW_STRATEGY") {
            Some(text) => RenewStrategy::parse(text.trim())
                .ok_or_else(|| invalid("RENEW_STRATEGY", format!("{text}: must be refresh_token, iframe or auto")))?,
            None => RenewStrategy::Auto,
        };
        let renewal = RenewalConfig {
            use_refresh_token: strategy != RenewStrategy::Iframe && flag(&var, "USE_REFRESH_TOKEN", true)?,
            strategy,
            silent_renew_timeout_secs: seconds(&var, "SILENT_RENEW_TIMEOUT_SECS", 10)?,
            check_session_interval_secs: seconds(&var, "CHECK_SESSION_INTERVAL_SECS", 5)?,
            before_expiry_secs: seconds(&var, "RENEW_BEFORE_EXPIRY_SECS", 15)?,
            jitter_secs: seconds(&var, "RENEW_JITTER_SECS", 5)?,
            ignore_nonce_after_refresh: flag(&var, "IGNORE_NONCE_AFTER_REFRESH", false)?,
            allow_unsafe_reuse_refresh_token: flag(&var, "ALLOW_UNSAFE_REUSE_REFRESH_TOKEN", false)?,
        };
        let mut scopes: Vec<String> =
            var("OIDC_SCOPES").unwrap_or_else(|| DEFAULT_SCOPES.into()).split_whitespace().map(str::to_owned).collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(invalid("OIDC_SCOPES", "must include openid"));
        }
        scopes.retain(|s| s != OFFLINE_ACCESS);
        if renewal.use_refresh_token {
            scopes.push(OFFLINE_ACCESS.to_owned());
        }

        let (provider, issuer, client_id, client_secret) = match var("OIDC_ISSUER") {
            Some(issuer) => {
                let issuer = parse_issuer(&issuer)?;
                let client_id = var("OIDC_CLIENT_ID")
                    .ok_or_else(|| invalid("OIDC_CLIENT_ID", "is required when OIDC_ISSUER is set"))?;
                (ProviderSource::External, issuer, client_id, var("OIDC_CLIENT_SECRET"))
            }
            None => {
                let addr_text = var("EMBEDDED_IDP_ADDR").unwrap_or_else(|| DEFAULT_EMBEDDED_ADDR.into());
                let addr: SocketAddr =
                    addr_text.parse().map_err(|e| invalid("EMBEDDED_IDP_ADDR", format!("{addr_text}: {e}")))?;
                // Same host name as the app, so that app and provider are one site.
                let host = app_url.host_str().unwrap_or("localhost");
                let issuer = parse_issuer(&format!("http://{host}:{}", addr.port()))?;
                let client_id = var("OIDC_CLIENT_ID").unwrap_or_else(|| EMBEDDED_CLIENT_ID.into());
                let secret = var("OIDC_CLIENT_SECRET").unwrap_or_else(|| EMBEDDED_CLIENT_SECRET.into());
                let config_file = var("EMBEDDED_IDP_CONFIG").map(PathBuf::from);
                if let Some(path) = config_file.as_ref().filter(|path| !path.is_file()) {
                    return Err(invalid("EMBEDDED_IDP_CONFIG", format!("{}: no such file", path.display())));
                }
                (ProviderSource::Embedded { addr, config_file }, issuer, client_id, Some(secret))
            }
        };
        Ok(Self {
            app_url,
            provider,
            issuer,
            client_id: ClientId::new(client_id),
            client_secret: client_secret.map(ClientSecret::new),
            scopes,
            renewal,
            auto_userinfo: flag(&var, "AUTO_USERINFO", false)?,
            api_audience: var("API_AUDIENCE").unwrap_or_else(|| DEFAULT_API_AUDIENCE.into()),
            data_dir: match &store {
                StoreLocation::Sqlite(path) => path.parent().map(PathBuf::from).unwrap_or_default(),
                _ => PathBuf::from(DEFAULT_DATA_DIR),
            },
            store,
            seal_keys,
        })
    }

    /// The redirect URI to register at the provider.
    pub fn callback_url(&self) -> String {
        format!("{}/auth/callback", self.origin())
    }

    /// The redirect URI of silent renew, to register at the provider too.
    pub fn silent_callback_url(&self) -> String {
        format!("{}/auth/silent-callback", self.origin())
    }

    /// The redirect URI after RP-initiated logout, to register at the provider.
    pub fn post_logout_url(&self) -> String {
        format!("{}/", self.origin())
    }

    /// The back-channel logout URI, to register at the provider.
    pub fn backchannel_logout_url(&self) -> String {
        format!("{}/auth/backchannel-logout", self.origin())
    }

    /// What the browser is told about when to renew.
    pub fn renewal_policy(&self) -> app::auth::RenewalPolicy {
        app::auth::RenewalPolicy {
            before_expiry_secs: self.renewal.before_expiry_secs,
            jitter_secs: self.renewal.jitter_secs,
            strategy: self.renewal.strategy,
            silent_renew_timeout_secs: self.renewal.silent_renew_timeout_secs,
        }
    }

    /// `scheme://host[:port]`, as the browser sends it in `Origin`.
    pub fn origin(&self) -> String {
        self.app_url.origin().ascii_serialization()
    }

    /// Cookies get `Secure` and the `__Host-` prefix when the app is served over https.
    pub fn secure_cookies(&self) -> bool {
        self.app_url.scheme() == "https"
    }
}

/// `memory`, `redis://…` (or `rediss://…`), a file path (`sqlite:` in front optional), or
/// unset for the default file.
fn parse_store(value: Option<String>) -> Result<StoreLocation, ConfigError> {
    let Some(value) = value else {
        return Ok(StoreLocation::Sqlite(PathBuf::from(DEFAULT_DATA_DIR).join("sessions.sqlite3")));
    };
    let value = value.trim();
    if value == "memory" {
        return Ok(StoreLocation::Memory);
    }
    if value.starts_with("redis://") || value.starts_with("rediss://") {
        // Not repeated in the error: the URL may hold a password.
        Url::parse(value).map_err(|e| invalid("SESSION_STORE", format!("not a valid Redis URL: {e}")))?;
        return Ok(StoreLocation::Redis(value.to_owned()));
    }
    let path = value.strip_prefix("sqlite://").or_else(|| value.strip_prefix("sqlite:")).unwrap_or(value);
    if path.is_empty() || path.contains("://") {
        return Err(invalid("SESSION_STORE", format!("{value}: must be a file path, redis://host:port/db or memory")));
    }
    Ok(StoreLocation::Sqlite(PathBuf::from(path)))
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
fn flag(var: &impl Fn(&str) -> Option<String>, setting: &'static str, default: bool) -> Result<bool, ConfigError> {
    match var(setting).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
        Some(v) => Err(invalid(setting, format!("{v}: must be true or false"))),
    }
}

fn seconds(var: &impl Fn(&str) -> Option<String>, setting: &'static str, default: u64) -> Result<u64, ConfigError> {
    match var(setting) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| invalid(setting, format!("{v}: must be a whole number of seconds"))),
    }
}

/// Plain http is accepted for loopback hosts only, as for the issuer: anywhere else the session
/// cookie would travel without `Secure` and without the `__Host-` prefix, and no HSTS be sent.
fn parse_app_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| invalid("APP_URL", format!("{text}: {e}")))?;
    if !(url.scheme() == "https" || url.scheme() == "http" && is_loopback(&url)) {
        return Err(invalid("APP_URL", format!("{text}: must be https (http only for localhost)")));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("APP_URL", format!("{text}: must be an origin, without path, query or fragment")));
    }
    Ok(url)
}

/// OIDC Discovery §3: the issuer is an https URL without query or fragment. Plain http is
/// accepted for loopback hosts only, for development.
fn parse_issuer(text: &str) -> Result<IssuerUrl, ConfigError> {
    let url = Url::parse(text).map_err(|e| invalid("OIDC_ISSUER", format!("{text}: {e}")))?;
    if !(url.scheme() == "https" || url.scheme() == "http" && is_loopback(&url)) {
        return Err(invalid("OIDC_ISSUER", format!("{text}: must be https (http only for localhost)")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("OIDC_ISSUER", format!("{text}: must not have a query or fragment")));
    }
    // Kept exactly as given: discovery compares it byte for byte with the provider's `issuer`
    // (Auth0's, for one, ends with a slash).
    IssuerUrl::new(text.to_owned()).map_err(|e| invalid("OIDC_ISSUER", format!("{text}: {e}")))
}

fn is_loopback(url: &Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_use_the_embedded_provider_on_the_same_site() {
        let config = load(&[]).unwrap();
        assert_eq!(
            config.provider,
            ProviderSource::Embedded { addr: "127.0.0.1:4000".parse().unwrap(), config_file: None }
        );
        assert_eq!(config.scopes, ["openid", "profile", "email", "offline_access"]);
        assert!(config.renewal.use_refresh_token && !config.renewal.allow_unsafe_reuse_refresh_token);
        assert_eq!(config.issuer.as_str(), "http://localhost:4000");
        assert_eq!(config.callback_url(), "http://localhost:3000/auth/callback");
        assert!(!config.secure_cookies());
    }

    #[test]
    fn each_bad_value_names_its_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("APP_URL", "not a url")], "APP_URL"),
            (&[("APP_URL", "http://localhost:3000/app")], "APP_URL"),
            (&[("APP_URL", "http://app.example.com"), ("OIDC_ISSUER", "https://idp.example/")], "APP_URL"),
            (&[("APP_URL", "ftp://localhost")], "APP_URL"),
            (&[("OIDC_ISSUER", "https://idp.example")], "OIDC_CLIENT_ID"),
            (&[("OIDC_ISSUER", "http://idp.example"), ("OIDC_CLIENT_ID", "x")], "OIDC_ISSUER"),
            (&[("OIDC_ISSUER", "::"), ("OIDC_CLIENT_ID", "x")], "OIDC_ISSUER"),
            (&[("OIDC_SCOPES", "profile email")], "OIDC_SCOPES"),
            (&[("EMBEDDED_IDP_ADDR", "4000")], "EMBEDDED_IDP_ADDR"),
            (&[("EMBEDDED_IDP_CONFIG", "/no/such/provider.toml")], "EMBEDDED_IDP_CONFIG"),
            (&[("USE_REFRESH_TOKEN", "maybe")], "USE_REFRESH_TOKEN"),
            (&[("RENEW_BEFORE_EXPIRY_SECS", "-1")], "RENEW_BEFORE_EXPIRY_SECS"),
            (&[("RENEW_JITTER_SECS", "1.5")], "RENEW_JITTER_SECS"),
            (&[("ALLOW_UNSAFE_REUSE_REFRESH_TOKEN", "sure")], "ALLOW_UNSAFE_REUSE_REFRESH_TOKEN"),
            (&[("SESSION_STORE", "postgres://db/sessions")], "SESSION_STORE"),
            (&[("SESSION_STORE", "redis://[bad")], "SESSION_STORE"),
            (&[("SESSION_SEAL_KEYS", "c2hvcnQ")], "SESSION_SEAL_KEYS"),
            (&[("RENEW_STRATEGY", "magic")], "RENEW_STRATEGY"),
            (&[("SILENT_RENEW_TIMEOUT_SECS", "soon")], "SILENT_RENEW_TIMEOUT_SECS"),
            (&[("CHECK_SESSION_INTERVAL_SECS", "often")], "CHECK_SESSION_INTERVAL_SECS"),
        ];
        for (vars, setting) in cases {
            let error = load(vars).unwrap_err();
            assert_eq!(error.setting, *setting, "{vars:?}: {error}");
        }
    }

    #[test]
    fn external_provider_needs_only_issuer_and_client() {
        let config = load(&[("OIDC_ISSUER", "https://idp.example/"), ("OIDC_CLIENT_ID", "app")]).unwrap();
        assert_eq!(config.provider, ProviderSource::External);
        assert_eq!(config.issuer.as_str(), "https://idp.example/");
        assert!(config.client_secret.is_none());
    }

    #[test]
    fn without_refresh_tokens_offline_access_is_never_asked_for() {
        let config = load(&[("USE_REFRESH_TOKEN", "false"), ("OIDC_SCOPES", "openid offline_access email")]).unwrap();
        assert_eq!(config.scopes, ["openid", "email"]);
        let config = load(&[("OIDC_SCOPES", "openid offline_access")]).unwrap();
        assert_eq!(config.scopes, ["openid", "offline_access"], "asked for once");
    }

    #[test]
    fn the_session_store_is_a_file_by_default_and_redis_or_memory_on_request() {
        let config = load(&[]).unwrap();
        assert_eq!(config.store, StoreLocation::Sqlite("target/oidc-session/sessions.sqlite3".into()));
        assert_eq!(config.data_dir, PathBuf::from("target/oidc-session"));
        let config = load(&[("SESSION_STORE", "sqlite:/var/lib/app/s.db")]).unwrap();
        assert_eq!(config.store, StoreLocation::Sqlite("/var/lib/app/s.db".into()));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/app"));
        let config = load(&[("SESSION_STORE", "redis://127.0.0.1:6379/2")]).unwrap();
        assert_eq!(config.store, StoreLocation::Redis("redis://127.0.0.1:6379/2".into()));
        assert_eq!(load(&[("SESSION_STORE", "memory")]).unwrap().store, StoreLocation::Memory);
    }

    #[test]
    fn a_redis_password_is_never_printed() {
        let config = load(&[("SESSION_STORE", "redis://user:hunter2@redis.internal:6379/0")]).unwrap();
        let printed = format!("{config:?}");
        assert!(printed.contains("redis.internal") && !printed.contains("hunter2"), "{printed}");
        let refused = load(&[("SESSION_STORE", "redis://:hunter2@[bad/0")]).unwrap_err().to_string();
        assert!(!refused.contains("hunter2"), "{refused}");
    }

    #[tokio::test]
    async fn a_redis_that_does_not_answer_is_reported_without_its_password() {
        // Accepts connections (the kernel's backlog) and never says a word.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let url = format!("redis://:hunter2@127.0.0.1:{port}/0");
        let Err(error) = crate::store::Kv::open(&StoreLocation::Redis(url)).await else {
            panic!("nothing listens there");
        };
        assert!(
            error.to_string().contains(&format!("127.0.0.1:{port}")) && !error.to_string().contains("hunter2"),
            "{error}"
        );
    }

    #[test]
    fn the_iframe_strategy_asks_for_no_refresh_token() {
        let config = load(&[("RENEW_STRATEGY", "iframe")]).unwrap();
        assert!(!config.renewal.use_refresh_token);
        assert!(!config.scopes.iter().any(|s| s == "offline_access"));
        assert_eq!(load(&[]).unwrap().renewal.strategy, RenewStrategy::Auto);
    }

    #[test]
    fn seal_keys_are_a_comma_separated_list() {
        let (a, b) = (SealKey::generate(), SealKey::generate());
        let config = load(&[("SESSION_SEAL_KEYS", &format!("{}, {}", a.to_base64(), b.to_base64()))]).unwrap();
        assert_eq!(config.seal_keys, [a, b]);
    }
}

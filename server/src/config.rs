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

use std::net::SocketAddr;

use openidconnect::{ClientId, ClientSecret, IssuerUrl};
use url::Url;

const DEFAULT_APP_URL: &str = "http://localhost:3000";
const DEFAULT_EMBEDDED_ADDR: &str = "127.0.0.1:4000";
const DEFAULT_SCOPES: &str = "openid profile email";
const EMBEDDED_CLIENT_ID: &str = "demo-app";
const EMBEDDED_CLIENT_SECRET: &str = "demo-app-secret";

#[derive(Debug, Clone)]
pub struct Config {
    /// The origin the browser uses for this app; the callback is `{app_url}/auth/callback`.
    pub app_url: Url,
    pub provider: ProviderSource,
    pub issuer: IssuerUrl,
    pub client_id: ClientId,
    /// `None` for a public client (PKCE only).
    pub client_secret: Option<ClientSecret>,
    pub scopes: Vec<String>,
}

/// Where the OpenID Provider comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSource {
    /// Started in this process, listening on `addr`: a different origin from the app (another
    /// port) but the same site, like a provider on a sibling subdomain.
    Embedded { addr: SocketAddr },
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
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Builds the configuration from any source of variables (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let app_url = parse_app_url(&var("APP_URL").unwrap_or_else(|| DEFAULT_APP_URL.into()))?;
        let scopes: Vec<String> =
            var("OIDC_SCOPES").unwrap_or_else(|| DEFAULT_SCOPES.into()).split_whitespace().map(str::to_owned).collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(invalid("OIDC_SCOPES", "must include openid"));
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
                (ProviderSource::Embedded { addr }, issuer, client_id, Some(secret))
            }
        };
        Ok(Self {
            app_url,
            provider,
            issuer,
            client_id: ClientId::new(client_id),
            client_secret: client_secret.map(ClientSecret::new),
            scopes,
        })
    }

    /// The redirect URI to register at the provider.
    pub fn callback_url(&self) -> String {
        format!("{}/auth/callback", self.origin())
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

fn parse_app_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| invalid("APP_URL", format!("{text}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("APP_URL", format!("{text}: must be an http or https URL")));
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
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if !(url.scheme() == "https" || url.scheme() == "http" && loopback) {
        return Err(invalid("OIDC_ISSUER", format!("{text}: must be https (http only for localhost)")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("OIDC_ISSUER", format!("{text}: must not have a query or fragment")));
    }
    // Kept exactly as given: discovery compares it byte for byte with the provider's `issuer`
    // (Auth0's, for one, ends with a slash).
    IssuerUrl::new(text.to_owned()).map_err(|e| invalid("OIDC_ISSUER", format!("{text}: {e}")))
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
        assert_eq!(config.provider, ProviderSource::Embedded { addr: "127.0.0.1:4000".parse().unwrap() });
        assert_eq!(config.issuer.as_str(), "http://localhost:4000");
        assert_eq!(config.callback_url(), "http://localhost:3000/auth/callback");
        assert!(!config.secure_cookies());
    }

    #[test]
    fn each_bad_value_names_its_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("APP_URL", "not a url")], "APP_URL"),
            (&[("APP_URL", "http://localhost:3000/app")], "APP_URL"),
            (&[("OIDC_ISSUER", "https://idp.example")], "OIDC_CLIENT_ID"),
            (&[("OIDC_ISSUER", "http://idp.example"), ("OIDC_CLIENT_ID", "x")], "OIDC_ISSUER"),
            (&[("OIDC_ISSUER", "::"), ("OIDC_CLIENT_ID", "x")], "OIDC_ISSUER"),
            (&[("OIDC_SCOPES", "profile email")], "OIDC_SCOPES"),
            (&[("EMBEDDED_IDP_ADDR", "4000")], "EMBEDDED_IDP_ADDR"),
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
}

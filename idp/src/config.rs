//! The provider's configuration: one TOML document with the issuer, clients, demo users and
//! lifetimes. `provider.toml` beside this crate is the built-in default.

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use crate::error::ConfigError;

const DEFAULT_TOML: &str = include_str!("../provider.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The `iss` of every token, and the base of every endpoint URL. No trailing slash.
    pub issuer: Url,
    /// PKCS#8 PEM file with the ES256 signing key; generated at start when absent.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    pub lifetimes: Lifetimes,
    pub access_token: AccessTokenConfig,
    pub clients: Vec<ClientConfig>,
    pub users: Vec<UserConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    pub authorization_code_secs: u64,
    pub access_token_secs: u64,
    pub id_token_secs: u64,
    pub provider_session_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessTokenConfig {
    pub audience: String,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    /// `None` makes a public client: it authenticates with `none` and relies on PKCE alone.
    #[serde(default)]
    pub client_secret: Option<String>,
    pub redirect_uris: Vec<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub sub: String,
    pub username: String,
    pub password: String,
    pub name: String,
    pub email: String,
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig").field("sub", &self.sub).field("username", &self.username).finish_non_exhaustive()
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self::from_toml(DEFAULT_TOML).expect("the built-in provider.toml is valid")
    }
}

impl ProviderConfig {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.display().to_string(), e.to_string()))?;
        Self::from_toml(&text)
    }

    /// Registers `redirect_uri` for `client_id`, as an embedding server does for its own callback
    /// when it listens somewhere other than the default.
    pub fn register_redirect_uri(&mut self, client_id: &str, redirect_uri: &str) {
        if let Some(client) = self.clients.iter_mut().find(|c| c.client_id == client_id) {
            if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
                client.redirect_uris.push(redirect_uri.to_owned());
            }
        }
    }

    /// The issuer as a string without a trailing slash, exactly as it appears in `iss`.
    pub fn issuer_str(&self) -> String {
        self.issuer.as_str().trim_end_matches('/').to_owned()
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer_str())
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    pub(crate) fn user_by_sub(&self, sub: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.sub == sub)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.issuer.scheme(), "http" | "https") || self.issuer.query().is_some() {
            return Err(ConfigError::Invalid("issuer must be an http(s) URL without a query".into()));
        }
        for client in &self.clients {
            for uri in &client.redirect_uris {
                let parsed = Url::parse(uri).map_err(|e| {
                    ConfigError::Invalid(format!("client {}: redirect URI {uri}: {e}", client.client_id))
                })?;
                if parsed.fragment().is_some() {
                    return Err(ConfigError::Invalid(format!(
                        "client {}: redirect URI {uri} has a fragment (RFC 6749 §3.1.2)",
                        client.client_id
                    )));
                }
            }
        }
        Ok(())
    }
}

//! The provider's configuration: one TOML document with the issuer, clients, demo users and
//! lifetimes. `provider.toml` beside this crate is the built-in default.
//!
//! Every field added after the first release has a serde default, so that older files still load.

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use crate::{error::ConfigError, keys::SigningAlg};

const DEFAULT_TOML: &str = include_str!("../provider.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The `iss` of every token, and the base of every endpoint URL. No trailing slash.
    pub issuer: Url,
    /// PKCS#8 PEM file with the ES256 signing key; generated at start when absent. With a
    /// `state_file` too, this key signs, and a different key found in the state file retires as
    /// in a rotation.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// An SQLite file (created, with its directory, if missing) that keeps the signing keys,
    /// provider sessions, refresh token families and access tokens' records across restarts;
    /// see `store::state_file`. Relative to the working directory. Unset, everything is in
    /// memory and a restart signs everyone out.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// Mounts the JSON admin API under `/admin/` (metrics, refresh token families, key
    /// rotation). It has no authentication of its own: for development and tests only.
    #[serde(default)]
    pub admin_api: bool,
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
    /// A refresh token unused for this long has expired (RFC 9700 §4.14.2 recommends
    /// expiring idle tokens). With rotation, each token's idle time starts when it is issued.
    #[serde(default = "default_refresh_token_idle_secs")]
    pub refresh_token_idle_secs: u64,
    /// Nothing in a refresh token family works after `created_at` plus this; rotation never
    /// extends it, so a stolen family dies at the latest here.
    #[serde(default = "default_refresh_token_absolute_secs")]
    pub refresh_token_absolute_secs: u64,
}

fn default_refresh_token_idle_secs() -> u64 {
    8 * 3600
}

fn default_refresh_token_absolute_secs() -> u64 {
    24 * 3600
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
    /// Whether the client may be granted the `offline_access` scope, and so refresh tokens
    /// (OIDC Core §11). Without it the scope is dropped silently (RFC 6749 §3.3).
    #[serde(default)]
    pub offline_access: bool,
    /// Each refresh returns a new refresh token and retires the presented one (RFC 9700
    /// §4.14.2). Off, the same refresh token is used until it expires; a public client must
    /// rotate, since this provider does not sender-constrain its tokens.
    #[serde(default = "default_true")]
    pub rotate_refresh_tokens: bool,
    /// Seconds during which the most recently retired refresh token may come back from this
    /// client and get the same successor again, instead of being treated as reuse.
    ///
    /// The trade-off: a grace window tolerates a lost response (the client never received the
    /// successor and retries with the old token), at the cost of letting a thief who replays the
    /// old token within the window receive the same successor as the legitimate client, with no
    /// alarm. 0 is strict: any retired token coming back revokes its family.
    #[serde(default)]
    pub refresh_reuse_grace_secs: u64,
    /// After sign-in, the user is asked to allow this client (a consent page: Allow or Deny,
    /// OIDC Core §3.1.2.4), once per provider session. Until they have, `prompt=none` answers
    /// `consent_required` (§3.1.2.6). Off, the registration stands for consent, as it does for
    /// the operator's own clients.
    #[serde(default)]
    pub require_consent: bool,
    /// Where the provider POSTs a logout token when a provider session in which this client
    /// received tokens ends (Back-Channel Logout 1.0 §2.2, `backchannel_logout_uri`): an
    /// absolute http(s) URI without a fragment. Unset, the client is not told.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// Where `/end-session` may send the browser back after signing out (RP-Initiated Logout 1.0
    /// §3, `post_logout_redirect_uris`), compared exactly, like redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// How this client's ID tokens, and its logout tokens, are signed (OIDC Registration's
    /// `id_token_signed_response_alg`): `"ES256"`, the default here, or `"RS256"`, which OIDC
    /// Registration makes the default and which many client libraries expect.
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
}

fn default_true() -> bool {
    true
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("redirect_uris", &self.redirect_uris)
            .field("offline_access", &self.offline_access)
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .field("refresh_reuse_grace_secs", &self.refresh_reuse_grace_secs)
            .field("require_consent", &self.require_consent)
            .field("backchannel_logout_uri", &self.backchannel_logout_uri)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
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
    /// The user must accept updated terms, on a page shown after the password, before any
    /// client gets a code; accepted once per provider session. Until then `prompt=none`
    /// answers `interaction_required` (OIDC Core §3.1.2.6): the user is signed in, but the
    /// provider needs them at the screen.
    #[serde(default)]
    pub interaction_required: bool,
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("sub", &self.sub)
            .field("username", &self.username)
            .field("interaction_required", &self.interaction_required)
            .finish_non_exhaustive()
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

    /// Sets `client_id`'s back-channel logout URI, as an embedding server does for its own
    /// endpoint; it replaces any URI the file set (a client has one).
    pub fn register_backchannel_logout_uri(&mut self, client_id: &str, uri: &str) {
        if let Some(client) = self.clients.iter_mut().find(|c| c.client_id == client_id) {
            client.backchannel_logout_uri = Some(uri.to_owned());
        }
    }

    /// Registers `uri` as a post-logout redirect URI of `client_id`, as an embedding server does
    /// for its own pages.
    pub fn register_post_logout_redirect_uri(&mut self, client_id: &str, uri: &str) {
        if let Some(client) = self.clients.iter_mut().find(|c| c.client_id == client_id) {
            if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
                client.post_logout_redirect_uris.push(uri.to_owned());
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

    /// Checks what serde cannot; [`crate::Provider::new`] runs it again, so that URIs registered
    /// in code (`register_*`) are held to the same rules as the file's.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.issuer.scheme(), "http" | "https") || self.issuer.query().is_some() {
            return Err(ConfigError::Invalid("issuer must be an http(s) URL without a query".into()));
        }
        for client in &self.clients {
            // RFC 9700 §4.14.2: a public client's refresh tokens must be sender-constrained or
            // rotated; this provider has no sender constraint, so rotation is the only option.
            if client.client_secret.is_none() && client.offline_access && !client.rotate_refresh_tokens {
                return Err(ConfigError::Invalid(format!(
                    "client {}: a public client with offline_access must rotate_refresh_tokens (RFC 9700 §4.14.2)",
                    client.client_id
                )));
            }
            for uri in &client.redirect_uris {
                check_uri(client, "redirect URI", uri, "RFC 6749 §3.1.2", false)?;
            }
            for uri in &client.post_logout_redirect_uris {
                check_uri(client, "post_logout_redirect_uri", uri, "RP-Initiated Logout 1.0 §3", false)?;
            }
            if let Some(uri) = &client.backchannel_logout_uri {
                check_uri(client, "backchannel_logout_uri", uri, "Back-Channel Logout 1.0 §2.2", true)?;
            }
        }
        Ok(())
    }
}

/// An absolute URI without a fragment; `http_only` also requires http or https (the provider
/// itself POSTs to it).
fn check_uri(client: &ClientConfig, setting: &str, uri: &str, spec: &str, http_only: bool) -> Result<(), ConfigError> {
    let invalid = |why: String| ConfigError::Invalid(format!("client {}: {setting} {uri}: {why}", client.client_id));
    let parsed = Url::parse(uri).map_err(|e| invalid(e.to_string()))?;
    if parsed.fragment().is_some() {
        return Err(invalid(format!("has a fragment ({spec})")));
    }
    if http_only && !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!("must be http or https ({spec})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        issuer = "http://localhost:4000"
        users = []
        [lifetimes]
        authorization_code_secs = 60
        access_token_secs = 60
        id_token_secs = 300
        provider_session_secs = 28800
        [access_token]
        audience = "api"
        [[clients]]
        client_id = "c"
        client_secret = "s"
        redirect_uris = ["http://localhost/cb"]
    "#;

    #[test]
    fn a_file_without_the_refresh_settings_loads_with_their_defaults() {
        let config = ProviderConfig::from_toml(MINIMAL).unwrap();
        assert!(!config.admin_api);
        assert_eq!(config.state_file, None, "in memory unless asked");
        assert_eq!(config.lifetimes.refresh_token_idle_secs, 28800);
        assert_eq!(config.lifetimes.refresh_token_absolute_secs, 86400);
        let client = &config.clients[0];
        assert!(!client.offline_access);
        assert!(client.rotate_refresh_tokens);
        assert_eq!(client.refresh_reuse_grace_secs, 0);
        assert!(!client.require_consent);
        assert_eq!(client.backchannel_logout_uri, None);
        assert!(client.post_logout_redirect_uris.is_empty());
    }

    #[test]
    fn the_demo_app_is_registered_for_back_channel_logout_and_a_post_logout_redirect() {
        let config = ProviderConfig::default();
        let app = config.client("demo-app").unwrap();
        assert_eq!(app.backchannel_logout_uri.as_deref(), Some("http://localhost:3000/auth/backchannel-logout"));
        assert_eq!(app.post_logout_redirect_uris, ["http://localhost:3000/"]);
    }

    #[test]
    fn logout_uris_registered_in_code_are_added_once_and_the_back_channel_uri_replaced() {
        let mut config = ProviderConfig::from_toml(MINIMAL).unwrap();
        config.register_post_logout_redirect_uri("c", "http://localhost/bye");
        config.register_post_logout_redirect_uri("c", "http://localhost/bye");
        config.register_backchannel_logout_uri("c", "http://localhost/one");
        config.register_backchannel_logout_uri("c", "http://localhost/two");
        config.register_backchannel_logout_uri("nobody", "http://localhost/three");
        assert_eq!(config.clients[0].post_logout_redirect_uris, ["http://localhost/bye"]);
        assert_eq!(config.clients[0].backchannel_logout_uri.as_deref(), Some("http://localhost/two"));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn logout_uris_with_a_fragment_or_a_back_channel_uri_that_is_not_http_are_refused() {
        let client = r#"client_secret = "s""#;
        for (setting, needle) in [
            ("post_logout_redirect_uris = [\"http://localhost/#bye\"]", "post_logout_redirect_uri"),
            ("backchannel_logout_uri = \"http://localhost/bc#x\"", "backchannel_logout_uri"),
            ("backchannel_logout_uri = \"mailto:rp@example.org\"", "backchannel_logout_uri"),
            ("backchannel_logout_uri = \"/relative\"", "backchannel_logout_uri"),
        ] {
            let text = MINIMAL.replace(client, &format!("{client}\n{setting}"));
            let error = ProviderConfig::from_toml(&text).unwrap_err().to_string();
            assert!(error.contains(needle), "{setting}: {error}");
        }
    }

    #[test]
    fn consent_and_interaction_settings_load_and_default_to_off() {
        let text = MINIMAL.replace(r#"client_secret = "s""#, "client_secret = \"s\"\nrequire_consent = true")
            + r#"
            [[users]]
            sub = "1"
            username = "u"
            password = "p"
            name = "U"
            email = "u@example.org"
            interaction_required = true
            "#;
        let text = text.replace("users = []\n", "");
        let config = ProviderConfig::from_toml(&text).unwrap();
        assert!(config.clients[0].require_consent);
        assert!(config.users[0].interaction_required);
        let defaults = ProviderConfig::default();
        assert!(defaults.clients.iter().all(|c| !c.require_consent));
        assert!(defaults.users.iter().all(|u| !u.interaction_required));
    }

    #[test]
    fn the_development_default_enables_refresh_tokens_and_the_admin_api() {
        let config = ProviderConfig::default();
        assert!(config.admin_api);
        for id in ["demo-app", "demo-spa"] {
            let client = config.client(id).unwrap();
            assert!(client.offline_access && client.rotate_refresh_tokens, "{id}");
            assert_eq!(client.refresh_reuse_grace_secs, 0, "{id} is strict");
        }
    }

    #[test]
    fn a_public_client_with_refresh_tokens_must_rotate_them() {
        let text = MINIMAL.replace(r#"client_secret = "s""#, "offline_access = true\nrotate_refresh_tokens = false");
        let error = ProviderConfig::from_toml(&text).unwrap_err().to_string();
        assert!(error.contains("rotate_refresh_tokens"), "{error}");
    }

    #[test]
    fn a_state_file_is_read_from_the_toml() {
        let text = format!("state_file = \"target/idp-state.db\"\n{MINIMAL}");
        let config = ProviderConfig::from_toml(&text).unwrap();
        assert_eq!(config.state_file.as_deref(), Some(std::path::Path::new("target/idp-state.db")));
    }

    #[test]
    fn unknown_fields_are_refused_in_every_table() {
        // A misspelt setting must not silently fall back to its default.
        let misspelt = [
            ("top level", MINIMAL.replace("users = []", "users = []\nrefresh_everything = true")),
            ("lifetimes", MINIMAL.replace("[access_token]", "refresh_everything = true\n[access_token]")),
            ("access_token", MINIMAL.replace("[[clients]]", "refresh_everything = true\n[[clients]]")),
            ("a client", format!("{MINIMAL}\nrefresh_everything = true")),
            (
                "a user",
                MINIMAL.replace(
                    "users = []",
                    "[[users]]\nsub = \"1\"\nusername = \"u\"\npassword = \"p\"\nname = \"U\"\nemail = \"u@example.org\"\nrefresh_everything = true",
                ),
            ),
        ];
        for (table, text) in misspelt {
            let error = ProviderConfig::from_toml(&text).expect_err(table).to_string();
            assert!(error.contains("refresh_everything"), "{table}: {error}");
        }
    }
}

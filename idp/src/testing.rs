//! Helpers for tests that need a live provider: [`TestProvider`] listens on an ephemeral port of
//! 127.0.0.1 with a [`ManualClock`], so a test can move time instead of sleeping, and can be
//! restarted on the same address, clock and state file; [`TempDir`] holds a state file.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use tokio::sync::oneshot;

use crate::{ConfigError, ManualClock, Provider, ProviderConfig};

pub struct TestProvider {
    /// The issuer: `http://127.0.0.1:<port>` unless `adjust` set another (a proxy in front).
    pub issuer: String,
    /// Where the provider itself listens.
    pub addr: std::net::SocketAddr,
    pub clock: Arc<ManualClock>,
    config: ProviderConfig,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestProvider {
    /// Starts the default configuration, with `adjust` applied first (register a redirect URI…).
    pub async fn start(adjust: impl FnOnce(&mut ProviderConfig)) -> Self {
        Self::try_start(adjust).await.expect("valid test configuration")
    }

    /// Like [`TestProvider::start`], on a listener the caller bound (to know the port first).
    pub async fn start_on(listener: tokio::net::TcpListener, adjust: impl FnOnce(&mut ProviderConfig)) -> Self {
        let config = Self::config_for(&listener, adjust);
        Self::launch(listener, config, Arc::new(ManualClock::default())).expect("valid test configuration")
    }

    /// Like [`TestProvider::start`], but a configuration (or a state file) that cannot start a
    /// provider is returned as the error the provider gives.
    pub async fn try_start(adjust: impl FnOnce(&mut ProviderConfig)) -> Result<Self, ConfigError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
        let config = Self::config_for(&listener, adjust);
        Self::launch(listener, config, Arc::new(ManualClock::default()))
    }

    /// The built-in configuration on `listener`'s address, then `adjust`. The built-in
    /// back-channel logout URIs are dropped first: they point at the development app on
    /// `localhost:3000`, where a test has no business posting logout tokens; a test that wants
    /// them registers its own (`register_backchannel_logout_uri`).
    fn config_for(listener: &tokio::net::TcpListener, adjust: impl FnOnce(&mut ProviderConfig)) -> ProviderConfig {
        let addr = listener.local_addr().expect("bound");
        let mut config =
            ProviderConfig { issuer: format!("http://{addr}").parse().expect("valid URL"), ..Default::default() };
        for client in &mut config.clients {
            client.backchannel_logout_uri = None;
        }
        adjust(&mut config);
        config
    }

    fn launch(
        listener: tokio::net::TcpListener,
        config: ProviderConfig,
        clock: Arc<ManualClock>,
    ) -> Result<Self, ConfigError> {
        let addr = listener.local_addr().expect("bound");
        let issuer = config.issuer_str();
        let provider = Provider::with_clock(config.clone(), clock.clone())?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let signal = async {
                // A dropped sender stops the provider too.
                let _ = stopped.await;
            };
            provider.serve_with_shutdown(listener, signal).await.expect("provider serves");
        });
        Ok(Self { issuer, addr, clock, config, shutdown: Some(shutdown), task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The configuration it runs with, `adjust` applied.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Stops the provider: it stops accepting, lets the requests in flight finish, and closes
    /// its state file, so that another provider can open it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        (&mut self.task).await.expect("the provider stops cleanly");
    }

    /// Stops this provider and starts another with the same configuration (and so the same
    /// state file), address and clock: a restart of the server, as its clients see it.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// Like [`TestProvider::restart`], with `adjust` applied to the configuration first.
    pub async fn restart_with(self, adjust: impl FnOnce(&mut ProviderConfig)) -> Self {
        let (addr, clock, mut config) = (self.addr, self.clock.clone(), self.config.clone());
        adjust(&mut config);
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the same address again");
        Self::launch(listener, config, clock).expect("the provider starts again")
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A directory of its own under the system's temporary directory, removed with everything in it
/// when dropped: where a test or a benchmark keeps a state file.
pub struct TempDir(PathBuf);

impl Default for TempDir {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let name = format!("idp-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }
}

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside this directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The hidden `interaction` field of the sign-in form.
pub fn interaction_id(login_page: &str) -> Option<String> {
    let start = login_page.find(r#"name="interaction" value=""#)? + r#"name="interaction" value=""#.len();
    let len = login_page[start..].find('"')?;
    Some(login_page[start..start + len].to_owned())
}

/// The `kid`s of the ES256 keys of a JWK Set, in its order (the current key first): the keys a
/// rotation test follows, the RS256 key beside them rotating on its own.
pub fn es256_kids(jwks: &serde_json::Value) -> Vec<String> {
    let keys = jwks["keys"].as_array().map(Vec::as_slice).unwrap_or_default();
    keys.iter().filter(|key| key["alg"] == "ES256").filter_map(|key| key["kid"].as_str().map(str::to_owned)).collect()
}

/// A signing key that a test holds as well as the provider (`signing_key_file`): a test signs
/// with it the tokens this provider would never issue, as a provider that misbehaves would,
/// to check that a client refuses them for what they say and not for their signature.
pub struct KnownSigningKey {
    /// The PKCS#8 PEM file to give the provider as `signing_key_file`.
    pub path: PathBuf,
    key: crate::keys::SigningKey,
}

impl KnownSigningKey {
    /// A new P-256 key, written to `dir`.
    pub fn write_to(dir: &Path) -> Self {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};

        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let path = dir.join("known-signing-key.pem");
        std::fs::write(&path, secret.to_pkcs8_pem(LineEnding::LF).expect("a P-256 key encodes").as_bytes())
            .expect("write the key file");
        let key = crate::keys::SigningKey::from_pem_file(&path).expect("a key written here is read back");
        Self { path, key }
    }

    /// `claims` signed as an ID token (`typ` JWT), under the `kid` the provider publishes.
    pub fn sign_id_token(&self, claims: &serde_json::Value) -> String {
        self.key.sign("JWT", claims)
    }
}

//! Helpers for tests that need a live provider: [`TestProvider`] listens on an ephemeral port of
//! 127.0.0.1 with a [`ManualClock`], so a test can move time instead of sleeping.

use std::sync::Arc;

use crate::{ManualClock, Provider, ProviderConfig};

pub struct TestProvider {
    /// The issuer: `http://127.0.0.1:<port>` unless `adjust` set another (a proxy in front).
    pub issuer: String,
    /// Where the provider itself listens.
    pub addr: std::net::SocketAddr,
    pub clock: Arc<ManualClock>,
    task: tokio::task::JoinHandle<()>,
}

impl TestProvider {
    /// Starts the default configuration, with `adjust` applied first (register a redirect URI…).
    pub async fn start(adjust: impl FnOnce(&mut ProviderConfig)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
        Self::start_on(listener, adjust).await
    }

    /// Like [`TestProvider::start`], on a listener the caller bound (to know the port first).
    pub async fn start_on(listener: tokio::net::TcpListener, adjust: impl FnOnce(&mut ProviderConfig)) -> Self {
        let addr = listener.local_addr().expect("bound");
        let mut config =
            ProviderConfig { issuer: format!("http://{addr}").parse().expect("valid URL"), ..Default::default() };
        adjust(&mut config);
        let issuer = config.issuer_str();
        let clock = Arc::new(ManualClock::default());
        let provider = Provider::with_clock(config, clock.clone()).expect("valid test configuration");
        let task = tokio::spawn(async move {
            provider.serve(listener).await.expect("provider serves");
        });
        Self { issuer, addr, clock, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The hidden `interaction` field of the sign-in form.
pub fn interaction_id(login_page: &str) -> Option<String> {
    let start = login_page.find(r#"name="interaction" value=""#)? + r#"name="interaction" value=""#.len();
    let len = login_page[start..].find('"')?;
    Some(login_page[start..start + len].to_owned())
}

//! A live app and provider on ephemeral ports, and a cookie-keeping client that plays the
//! browser without following redirects, so each hop can be checked. A [`Proxy`] can stand in
//! front of the provider to change its answers as a network or a man in the middle would.

#![allow(dead_code)] // Each test binary uses its own part of this.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use idp::{
    testing::{interaction_id, KnownSigningKey, TestProvider},
    ProviderConfig,
};
use leptos::config::LeptosOptions;
use reqwest::{header::LOCATION, redirect::Policy, StatusCode};
use serde_json::{json, Value};
use server::config::Config;

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// The settings it was started with.
    pub vars: HashMap<&'static str, String>,
    pub provider: TestProvider,
    /// The proxy in front of the provider, if the app was started with one.
    pub proxy: Option<Proxy>,
    pub browser: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A change to the provider's configuration.
pub type AdjustProvider = Box<dyn FnOnce(&mut ProviderConfig)>;

/// How a test wants the app and its provider set up.
#[derive(Default)]
pub struct Setup {
    /// Changes to the provider's configuration (lifetimes, a client's switches).
    pub provider: Option<AdjustProvider>,
    /// Settings for the app, beyond the issuer and client.
    pub vars: Vec<(&'static str, String)>,
    /// Put a [`Proxy`] in front of the provider, starting in this mode.
    pub proxy: Option<ProxyMode>,
    /// Register demo-app at the provider without a `backchannel_logout_uri`, as with a provider
    /// that has no Back-Channel Logout: nothing tells the app when a provider session ends.
    pub without_backchannel_logout: bool,
    /// The provider signs with a key the proxy holds too ([`ProxyMode::ReissueIdToken`]).
    pub proxy_signs_id_tokens: bool,
}

impl Setup {
    pub fn provider(mut self, adjust: impl FnOnce(&mut ProviderConfig) + 'static) -> Self {
        self.provider = Some(Box::new(adjust));
        self
    }

    pub fn var(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.vars.push((name, value.into()));
        self
    }

    pub fn proxy(mut self, mode: ProxyMode) -> Self {
        self.proxy = Some(mode);
        self
    }

    pub fn without_backchannel_logout(mut self) -> Self {
        self.without_backchannel_logout = true;
        self
    }

    /// A proxy in front of the provider that holds the provider's signing key, so that
    /// [`ProxyMode::ReissueIdToken`] can change ID tokens and sign them as the provider would.
    pub fn proxy_signing_id_tokens(mut self) -> Self {
        self.proxy.get_or_insert(ProxyMode::Forward);
        self.proxy_signs_id_tokens = true;
        self
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(Setup::default()).await
    }

    pub async fn start_with(setup: Setup) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (callback, silent_callback) = (format!("{url}/auth/callback"), format!("{url}/auth/silent-callback"));
        let url_for_provider = url.clone();
        // The provider must know the app's callback, and the app the provider's issuer: bind
        // both listeners first, then configure each with the other's address.
        let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let provider_addr = provider_listener.local_addr().unwrap();
        let known_key =
            setup.proxy_signs_id_tokens.then(|| Arc::new(KnownSigningKey::write_to(&temp_dir("signing-key"))));
        let proxy = match setup.proxy {
            Some(mode) => Some(Proxy::start(provider_addr, mode, known_key.clone()).await),
            None => None,
        };
        let issuer = proxy.as_ref().map(|p| p.url.clone());
        let adjust = setup.provider;
        let backchannel_logout = !setup.without_backchannel_logout;
        let provider = TestProvider::start_on(provider_listener, |config| {
            config.register_redirect_uri("demo-app", &callback);
            config.register_redirect_uri("demo-app", &silent_callback);
            config.register_post_logout_redirect_uri("demo-app", &format!("{url_for_provider}/"));
            if backchannel_logout {
                config.register_backchannel_logout_uri(
                    "demo-app",
                    &format!("{url_for_provider}/auth/backchannel-logout"),
                );
            } else if let Some(client) = config.clients.iter_mut().find(|c| c.client_id == "demo-app") {
                client.backchannel_logout_uri = None;
            }
            if let Some(issuer) = &issuer {
                config.issuer = issuer.parse().unwrap();
            }
            if let Some(key) = &known_key {
                config.signing_key_file = Some(key.path.clone());
            }
            if let Some(adjust) = adjust {
                adjust(config);
            }
        })
        .await;

        let mut vars: HashMap<&'static str, String> = HashMap::from([
            ("APP_URL", url.clone()),
            ("OIDC_ISSUER", provider.issuer.clone()),
            ("OIDC_CLIENT_ID", "demo-app".to_owned()),
            ("OIDC_CLIENT_SECRET", "demo-app-secret".to_owned()),
            ("SESSION_STORE", "memory".to_owned()),
        ]);
        vars.extend(setup.vars);
        let task = serve(listener, &vars).await;
        Self { url, vars, provider, proxy, browser: new_browser(), task }
    }

    /// Another server instance with the same settings (the same `APP_URL`, as behind a load
    /// balancer), and `changes`, on a port of its own; dropped with the returned handle.
    pub async fn another_instance(&self, changes: &[(&'static str, &str)]) -> Instance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut vars = self.vars.clone();
        vars.extend(changes.iter().map(|(k, v)| (*k, v.to_string())));
        Instance { url, task: serve(listener, &vars).await }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.browser.get(url).send().await.unwrap()
    }

    /// `/auth/login` with `return_to`, as an absolute URL.
    pub fn login_url(&self, return_to: &str) -> String {
        let mut url = reqwest::Url::parse(&self.url("/auth/login")).unwrap();
        url.query_pairs_mut().append_pair("return_to", return_to);
        url.into()
    }

    /// `GET /auth/login?return_to=…`; returns the provider's authorization URL it redirects to.
    pub async fn begin_login(&self, return_to: &str) -> String {
        let response = self.get(&self.login_url(return_to)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        location(&response)
    }

    /// Opens the provider's sign-in form at `authorize_url` and submits it with `fields`;
    /// returns where the provider sends the browser back to.
    pub async fn submit_provider_form(&self, authorize_url: &str, fields: &[(&str, &str)]) -> String {
        submit_provider_form(&self.browser, authorize_url, fields).await
    }

    /// Signs in as alice at the provider; returns the callback URL the provider redirects to.
    pub async fn sign_in_at_provider(&self, authorize_url: &str) -> String {
        self.submit_provider_form(authorize_url, &[("username", "alice"), ("password", "wonderland")]).await
    }

    /// The whole flow; returns the app's answer to the callback.
    pub async fn sign_in(&self, return_to: &str) -> reqwest::Response {
        let authorize = self.begin_login(return_to).await;
        let callback = self.sign_in_at_provider(&authorize).await;
        self.get(&callback).await
    }

    /// A second browser, signed in as `username`.
    pub async fn other_browser(&self, username: &str, password: &str) -> reqwest::Client {
        let browser = new_browser();
        let login = browser.get(self.login_url("/")).send().await.unwrap();
        let authorize = location(&login);
        let callback =
            submit_provider_form(&browser, &authorize, &[("username", username), ("password", password)]).await;
        let response = browser.get(&callback).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{username} is signed in");
        browser
    }

    pub async fn session(&self) -> Value {
        self.session_of(&self.browser).await
    }

    pub async fn session_of(&self, browser: &reqwest::Client) -> Value {
        let response = browser.get(self.url("/auth/session")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// `POST /auth/refresh` as this browser's page would send it; the JSON outcome.
    pub async fn refresh(&self) -> Value {
        self.refresh_as(&self.browser).await
    }

    pub async fn refresh_as(&self, browser: &reqwest::Client) -> Value {
        self.refresh_at(&self.url, browser).await
    }

    /// `POST /auth/refresh` to the instance at `base` (with this app's `Origin`, as behind a load
    /// balancer).
    pub async fn refresh_at(&self, base: &str, browser: &reqwest::Client) -> Value {
        let response = browser.post(format!("{base}/auth/refresh")).header("Origin", &self.url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "the outcome is in the body, whatever it is");
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    }

    /// Saves the long form through its server function, from a page of the user signed in now;
    /// the JSON outcome.
    pub async fn submit_form(&self, fields: &[(&str, &str)]) -> Value {
        let session = self.session().await;
        self.submit_form_as(session["subject"].as_str().unwrap_or_default(), fields).await
    }

    /// The same from a page that was showing `subject`.
    pub async fn submit_form_as(&self, subject: &str, fields: &[(&str, &str)]) -> Value {
        let fields: HashMap<&str, &str> = fields.iter().copied().collect();
        let response = self
            .browser
            .post(self.url("/api/submit_form"))
            .header("Origin", &self.url)
            .json(&json!({ "report": { "fields": fields }, "subject": subject }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The provider's admin API, asked directly (never through the proxy).
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}/admin{path}", self.provider.addr)
    }

    /// Has the provider build a logout token from `body` (`sub`, `sid`, `defects`, `replay_jti`;
    /// `client_id` is demo-app's) and send it to this app; answers the admin API's report:
    /// `{"status", "body", "jti"}`.
    pub async fn send_logout_token(&self, mut body: Value) -> Value {
        body["client_id"] = json!("demo-app");
        let admin = reqwest::Client::new().post(self.admin_url("/logout-token")).json(&body);
        admin.send().await.unwrap().json().await.unwrap()
    }

    pub async fn metrics(&self) -> Value {
        reqwest::get(self.admin_url("/metrics")).await.unwrap().json().await.unwrap()
    }

    /// Refresh-token requests the provider has answered so far.
    pub async fn refresh_grants(&self) -> u64 {
        self.metrics().await["token_requests"]["refresh_token"].as_u64().expect("the provider counts refresh grants")
    }

    pub async fn admin_post(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new().post(self.admin_url(path)).send().await.unwrap()
    }
}

async fn serve(listener: tokio::net::TcpListener, vars: &HashMap<&'static str, String>) -> tokio::task::JoinHandle<()> {
    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let leptos_options = LeptosOptions::builder().output_name("oidc-session").site_root(site_root()).build();
    let app = server::app(config, leptos_options).await.expect("the app starts");
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

/// A second server instance (see [`TestApp::another_instance`]).
pub struct Instance {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// A browser: cookies kept, redirects not followed. Its requests time out after a minute, so
/// that a request that never gets an answer fails its test with the URL in the error rather
/// than stalling the whole run (as a page did when tests ran in parallel: see scripts/test.sh).
pub fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn submit_provider_form(browser: &reqwest::Client, authorize_url: &str, fields: &[(&str, &str)]) -> String {
    let page = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the provider shows its sign-in form");
    let interaction = interaction_id(&page.text().await.unwrap()).unwrap();
    let mut form = vec![("interaction", interaction.as_str())];
    form.extend_from_slice(fields);
    let login_url = reqwest::Url::parse(authorize_url).unwrap().join("/login").unwrap();
    let response = browser.post(login_url).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    location(&response)
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers().get(LOCATION).expect("a redirect").to_str().unwrap().to_owned()
}

pub fn query(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// `url` with query parameter `name` set to `value`.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().filter(|(k, _)| k != name).collect();
    pairs.push((name.to_owned(), value.to_owned()));
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.into()
}

/// What the proxy in front of the provider does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Passes everything through.
    Forward,
    /// Changes a claim of every ID token at `/token`, keeping the signature (a man in the middle).
    TamperIdToken,
    /// Puts an unknown `kid` in the header of every ID token at `/token`.
    ForgeKid,
    /// Answers 503 to everything (the provider is down).
    Unavailable,
    /// Answers 503 to `/jwks` only (a CDN before the key set fails), and passes the rest on.
    JwksUnavailable,
    /// Replaces `expires_in` in token responses by an hour, so that the app believes access
    /// tokens live longer than they do.
    OverstateExpiry,
    /// Holds every token request for 300 ms before passing it on.
    SlowTokens,
    /// Never answers token requests (and never passes them on): a provider that hangs.
    SwallowTokens,
    /// Removes `id_token_hint` from authorization requests: a provider that ignores the hint.
    StripHint,
    /// Passes requests on at once, but holds the provider's answers to `/token` and `/jwks` for
    /// this many milliseconds (the provider has acted; its answer is slow to arrive).
    SlowAnswers { token_ms: u64, jwks_ms: u64 },
    /// Makes this change to every ID token at `/token` and signs it again with the provider's
    /// own key ([`Setup::proxy_signing_id_tokens`]): a provider that issues what it should not.
    ReissueIdToken(IdTokenChange),
    /// Removes `refresh_token` from token responses: a provider that grants no new one.
    DropRefreshToken,
}

/// What [`ProxyMode::ReissueIdToken`] changes in an ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenChange {
    /// Nothing: only signed again, as the provider signed it.
    Nothing,
    /// Another user's `sub`.
    Subject,
    /// No `azp`.
    DropAzp,
    /// The `auth_time` of a re-authentication just before the token was issued (`iat`).
    ReauthenticatedAuthTime,
    /// An `auth_time` a minute before the sign-in's.
    EarlierAuthTime,
    /// An `auth_time` an hour after the token was issued.
    FutureAuthTime,
}

/// A transparent HTTP proxy to the provider whose behaviour a test can switch at any time.
pub struct Proxy {
    pub url: String,
    mode: Arc<Mutex<ProxyMode>>,
    /// Every successful token response the provider gave through this proxy, as it gave it.
    token_responses: Arc<Mutex<Vec<Value>>>,
    /// How many token requests have reached the proxy (answered or not yet).
    token_requests: Arc<std::sync::atomic::AtomicUsize>,
    /// How many requests it answered 503 itself (`Unavailable`, `JwksUnavailable`).
    refused: Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: SocketAddr, mode: ProxyMode, known_key: Option<Arc<KnownSigningKey>>) -> Self {
        use axum::{body::Body, extract::Request, response::Response};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(mode));
        let token_responses = Arc::new(Mutex::new(Vec::new()));
        let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        let token_requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (current, seen) = (mode.clone(), token_responses.clone());
        let arrived = token_requests.clone();
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let refusing = refused.clone();
        let forward = move |request: Request| {
            let client = client.clone();
            let mode = *current.lock().unwrap();
            let seen = seen.clone();
            let known_key = known_key.clone();
            if request.uri().path() == "/token" {
                arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            async move {
                if mode == ProxyMode::Unavailable
                    || (mode == ProxyMode::JwksUnavailable && request.uri().path() == "/jwks")
                {
                    refusing.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut response = Response::new(Body::from("<h1>503 Service Unavailable</h1>"));
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    return response;
                }
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let mut path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
                if mode == ProxyMode::StripHint && path.starts_with("/authorize?") {
                    let url = reqwest::Url::parse(&format!("http://proxy{path}")).unwrap();
                    let kept = url.query_pairs().filter(|(name, _)| name != "id_token_hint");
                    let query = serde_urlencoded::to_string(kept.collect::<Vec<_>>()).unwrap();
                    path = format!("/authorize?{query}");
                }
                match (mode, path.as_str()) {
                    (ProxyMode::SwallowTokens, "/token") => std::future::pending::<()>().await,
                    (ProxyMode::SlowTokens, "/token") => {
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await
                    }
                    _ => {}
                }
                let mut headers = parts.headers.clone();
                headers.remove(reqwest::header::HOST);
                let upstream_response = client
                    .request(parts.method, format!("http://{upstream}{path}"))
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = upstream_response.status();
                let mut headers = upstream_response.headers().clone();
                let mut body = upstream_response.bytes().await.unwrap().to_vec();
                if path == "/token" && status.is_success() {
                    seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                }
                let held = match (mode, path.as_str()) {
                    (ProxyMode::SlowAnswers { token_ms, .. }, "/token") => token_ms,
                    (ProxyMode::SlowAnswers { jwks_ms, .. }, "/jwks") => jwks_ms,
                    _ => 0,
                };
                tokio::time::sleep(std::time::Duration::from_millis(held)).await;
                if path == "/token" && status.is_success() && mode != ProxyMode::Forward {
                    let mut json: Value = serde_json::from_slice(&body).unwrap();
                    match mode {
                        ProxyMode::TamperIdToken => {
                            json["id_token"] = tamper_payload(json["id_token"].as_str().unwrap()).into()
                        }
                        ProxyMode::ForgeKid => json["id_token"] = forge_kid(json["id_token"].as_str().unwrap()).into(),
                        ProxyMode::ReissueIdToken(change) => {
                            let key = known_key.as_ref().expect("ReissueIdToken needs Setup::proxy_signing_id_tokens");
                            json["id_token"] = reissue(json["id_token"].as_str().unwrap(), change, key).into()
                        }
                        ProxyMode::OverstateExpiry => json["expires_in"] = 3600.into(),
                        ProxyMode::DropRefreshToken => {
                            json.as_object_mut().unwrap().remove("refresh_token");
                        }
                        ProxyMode::Forward
                        | ProxyMode::Unavailable
                        | ProxyMode::JwksUnavailable
                        | ProxyMode::SlowTokens
                        | ProxyMode::SwallowTokens
                        | ProxyMode::StripHint
                        | ProxyMode::SlowAnswers { .. } => {}
                    }
                    body = serde_json::to_vec(&json).unwrap();
                    headers.remove(reqwest::header::CONTENT_LENGTH);
                }
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                response
            }
        };
        let router = axum::Router::new().fallback(forward);
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { url, mode, token_responses, token_requests, refused }
    }

    pub fn set(&self, mode: ProxyMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The `name` tokens (`refresh_token`, `access_token`, `id_token`) of the token responses,
    /// in order.
    fn tokens_seen(&self, name: &str) -> Vec<String> {
        let responses = self.token_responses.lock().unwrap();
        responses.iter().filter_map(|response| response[name].as_str().map(str::to_owned)).collect()
    }

    /// Requests the proxy answered 503 itself so far.
    pub fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn refresh_tokens_seen(&self) -> Vec<String> {
        self.tokens_seen("refresh_token")
    }

    pub fn access_tokens_seen(&self) -> Vec<String> {
        self.tokens_seen("access_token")
    }

    pub fn id_tokens_seen(&self) -> Vec<String> {
        self.tokens_seen("id_token")
    }

    /// Waits until more than `count` token requests have reached the proxy (10 s at most: a
    /// regression fails the test rather than hang the run).
    pub async fn token_requests_beyond(&self, count: usize) {
        let arrived = async {
            while self.token_requests.load(std::sync::atomic::Ordering::SeqCst) <= count {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), arrived)
            .await
            .expect("the token request reaches the provider within 10 s");
    }

    pub fn token_requests(&self) -> usize {
        self.token_requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn jwt_part(part: &str) -> Value {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode_part(value: &Value) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Rewrites the JWT's `name` claim, leaving header and signature as they were.
fn tamper_payload(jwt: &str) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims = jwt_part(parts[1]);
    claims["name"] = "Mallory".into();
    format!("{}.{}.{}", parts[0], encode_part(&claims), parts[2])
}

/// The ID token with `change` made, signed by `key`.
fn reissue(jwt: &str, change: IdTokenChange, key: &KnownSigningKey) -> String {
    let mut claims = claims_of(jwt);
    match change {
        IdTokenChange::Nothing => {}
        IdTokenChange::Subject => claims["sub"] = "248289761002".into(),
        IdTokenChange::DropAzp => {
            claims.as_object_mut().unwrap().remove("azp").expect("the embedded provider always sends azp");
        }
        IdTokenChange::ReauthenticatedAuthTime => claims["auth_time"] = claims["iat"].clone(),
        IdTokenChange::EarlierAuthTime => claims["auth_time"] = (claims["auth_time"].as_i64().unwrap() - 60).into(),
        IdTokenChange::FutureAuthTime => claims["auth_time"] = (claims["iat"].as_i64().unwrap() + 3600).into(),
    }
    key.sign_id_token(&claims)
}

/// Rewrites the JWT header's `kid` to one the provider never had.
fn forge_kid(jwt: &str) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut header = jwt_part(parts[0]);
    header["kid"] = "forged-kid".into();
    format!("{}.{}.{}", encode_part(&header), parts[1], parts[2])
}

/// The `kid` in a JWT's header.
pub fn kid_of(jwt: &str) -> String {
    header_of(jwt)["kid"].as_str().unwrap().to_owned()
}

/// A JWT's protected header.
pub fn header_of(jwt: &str) -> Value {
    jwt_part(jwt.split('.').next().unwrap())
}

/// A JWT's claims, unverified.
pub fn claims_of(jwt: &str) -> Value {
    jwt_part(jwt.split('.').nth(1).unwrap())
}

/// A `redis-server` of Debian's on a free port of 127.0.0.1, with its data in a directory of its
/// own (append-only file on, so that a restart keeps what was written); stopped by PID.
pub struct RedisServer {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("oidc-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self { port, dir, child: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it (SIGTERM: it writes its data out first) and waits for the process to end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data.
    pub async fn restart(&mut self) {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--dir"])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/setup.sh installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            // Not fooled by another process that took the port meanwhile.
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().unwrap()) {
                panic!("redis-server exited on restart: {status} (port {} taken?)", self.port);
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("redis-server did not come up on port {}", self.port);
    }

    /// A connection of the test's own, for commands the app would never send.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
    }

    /// Every key of the app with the time it has left (`PTTL`, in milliseconds).
    pub async fn ttls(&self) -> Vec<(String, i64)> {
        let mut connection = self.connection().await;
        let mut ttls = Vec::new();
        for (key, _) in self.dump().await {
            let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut connection).await.unwrap();
            ttls.push((key, ttl));
        }
        ttls
    }

    /// Every key and value of the app, as raw bytes.
    pub async fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut connection).await.unwrap();
        let mut entries = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut connection).await.unwrap();
            let value: Vec<u8> = match kind.as_str() {
                "string" => redis::cmd("GET").arg(&key).query_async(&mut connection).await.unwrap_or_default(),
                // Sets and sorted sets (the logout indexes): their members, one per line.
                "set" | "zset" => {
                    let mut read = if kind == "set" { redis::cmd("SMEMBERS") } else { redis::cmd("ZRANGE") };
                    read.arg(&key);
                    if kind == "zset" {
                        read.arg(0).arg(-1);
                    }
                    let members: Vec<Vec<u8>> = read.query_async(&mut connection).await.unwrap();
                    members.join(&b'\n')
                }
                // Gone since KEYS (expired): nothing to read.
                "none" => continue,
                other => panic!("a Redis key of an unexpected type: {key} ({other})"),
            };
            entries.push((key, value));
        }
        entries
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nobody listens on now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The JS loader a test's site serves at `/pkg/oidc-session.js`.
pub const SITE_JS: &str = "export default async function init() {}\n";

/// A built site's stand-in, one per test process: the files a page loads from `/pkg/`.
fn site_root() -> String {
    static ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = temp_dir("site");
        std::fs::create_dir_all(root.join("pkg")).unwrap();
        std::fs::write(root.join("pkg/oidc-session.js"), SITE_JS).unwrap();
        root.to_string_lossy().into_owned()
    })
    .clone()
}

/// A fresh directory under the system's temporary one.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("oidc-{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The real server binary, as `cargo leptos` or an operator runs it, on free ports of
/// 127.0.0.1, in `dir`; killed (SIGKILL, as `cargo leptos watch` does) when dropped.
pub struct ServerProcess {
    pub url: String,
    child: std::process::Child,
}

impl ServerProcess {
    /// Starts it with `vars` (on top of its site settings) and waits until it answers.
    pub async fn start(dir: &std::path::Path, port: u16, vars: &[(&str, String)]) -> Self {
        Self::start_logging(dir, port, vars, None).await
    }

    /// The same, with what it writes to stdout and stderr (its log) in the file `log`.
    pub async fn start_logging(
        dir: &std::path::Path,
        port: u16,
        vars: &[(&str, String)],
        log: Option<&std::path::Path>,
    ) -> Self {
        let url = format!("http://127.0.0.1:{port}");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
        command
            .current_dir(dir)
            .env_clear()
            .env("LEPTOS_OUTPUT_NAME", "oidc-session")
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(log) = log {
            let file = std::fs::File::create(log).unwrap();
            command.stdout(file.try_clone().unwrap()).stderr(file);
        }
        let child = command.spawn().expect("the server binary runs");
        let mut process = Self { url, child };
        process.wait_until_ready().await;
        process
    }

    async fn wait_until_ready(&mut self) {
        let session = format!("{}/auth/session", self.url);
        for _ in 0..400 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the server exited at start: {status}");
            }
            if reqwest::get(&session).await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the server did not come up at {}", self.url);
    }

    /// SIGKILL: no chance to save anything on the way out.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Signs `browser` in as alice through the app at `app_url` (whose provider shows its form).
pub async fn sign_in_through(browser: &reqwest::Client, app_url: &str) {
    let login = browser.get(format!("{app_url}/auth/login?return_to=%2F")).send().await.unwrap();
    let authorize = location(&login);
    let callback =
        submit_provider_form(browser, &authorize, &[("username", "alice"), ("password", "wonderland")]).await;
    let done = browser.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "signed in");
}

/// What a tab's push channel heard after `ready`.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// `session-ended`, with its data (`ended_elsewhere`, `signed_out`).
    Ended(String),
    /// The stream closed without a word: the browser reconnects.
    Closed,
    /// Nothing within 5 s: the stream is still open.
    Nothing,
}

/// Opens `/auth/events` for `browser` at `base`, as a tab does, and returns once the server is
/// listening (its `ready` event), so that nothing the test does next can come before it. The
/// task then yields what it hears next, within 5 s.
pub async fn push_channel(browser: &reqwest::Client, base: &str) -> tokio::task::JoinHandle<Pushed> {
    use futures::StreamExt;
    let response = browser.get(format!("{base}/auth/events")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: ready") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("the push channel says ready")
            .expect("the push channel stays open until it is ready")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let ended = |seen: &str| {
        let after = seen.split("event: session-ended\n").nth(1)?;
        after.lines().find_map(|line| line.strip_prefix("data:")).map(|data| data.trim().to_owned())
    };
    tokio::spawn(async move {
        let next = async {
            loop {
                if let Some(data) = ended(&seen) {
                    return Pushed::Ended(data);
                }
                match stream.next().await {
                    Some(Ok(chunk)) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => return Pushed::Closed,
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), next).await.unwrap_or(Pushed::Nothing)
    })
}

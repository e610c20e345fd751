//! A live app and provider on ephemeral ports, and a cookie-keeping client that plays the
//! browser without following redirects, so each hop can be checked.

use std::collections::HashMap;

use idp::testing::{interaction_id, TestProvider};
use leptos::config::LeptosOptions;
use reqwest::{header::LOCATION, redirect::Policy, StatusCode};
use server::config::Config;

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub provider: TestProvider,
    pub browser: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with_issuer(|_| None).await
    }

    /// `issuer` may put something in front of the provider (given the provider's own address)
    /// and return the issuer URL the app should use instead.
    pub async fn start_with_issuer(issuer: impl FnOnce(std::net::SocketAddr) -> Option<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let callback = format!("{url}/auth/callback");
        // The provider must know the app's callback, and the app the provider's issuer: bind
        // both listeners first, then configure each with the other's address.
        let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let override_issuer = issuer(provider_listener.local_addr().unwrap());
        let provider = TestProvider::start_on(provider_listener, |config| {
            config.register_redirect_uri("demo-app", &callback);
            if let Some(issuer) = &override_issuer {
                config.issuer = issuer.parse().unwrap();
            }
        })
        .await;

        let vars: HashMap<&str, String> = HashMap::from([
            ("APP_URL", url.clone()),
            ("OIDC_ISSUER", provider.issuer.clone()),
            ("OIDC_CLIENT_ID", "demo-app".to_owned()),
            ("OIDC_CLIENT_SECRET", "demo-app-secret".to_owned()),
        ]);
        let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
        let leptos_options = LeptosOptions::builder().output_name("oidc-session").build();
        let app = server::app(config, leptos_options).await.expect("the app starts");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let browser = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        Self { url, provider, browser, task }
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
        let page = self.get(authorize_url).await;
        assert_eq!(page.status(), StatusCode::OK, "the provider shows its sign-in form");
        let interaction = interaction_id(&page.text().await.unwrap()).unwrap();
        let mut form = vec![("interaction", interaction.as_str())];
        form.extend_from_slice(fields);
        let response = self.browser.post(format!("{}/login", self.provider.issuer)).form(&form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        location(&response)
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

    pub async fn session(&self) -> serde_json::Value {
        let response = self.get(&self.url("/auth/session")).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
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

/// Serves on `listener` a transparent proxy to the provider at `upstream` that alters the ID
/// token in every token response (a claim changed, the signature kept), as a man in the middle
/// would. Returns the proxy's URL, to be used as the issuer.
pub fn spawn_tampering_proxy(listener: tokio::net::TcpListener, upstream: std::net::SocketAddr) -> String {
    use axum::{body::Body, extract::Request, response::Response};

    let url = format!("http://{}", listener.local_addr().unwrap());
    let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let forward = move |request: Request| {
        let client = client.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
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
                let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                json["id_token"] = tamper_payload(json["id_token"].as_str().unwrap()).into();
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
    url
}

/// Rewrites the JWT's `name` claim, leaving header and signature as they were.
fn tamper_payload(jwt: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["name"] = "Mallory".into();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

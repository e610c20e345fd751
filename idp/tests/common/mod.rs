//! What the session management and logout tests share: a browser whose cookies can be read as a
//! page's script would read them, a relying party's back-channel logout endpoint that records
//! what it receives, and the two algorithms a relying party runs (the OP iframe's
//! `session_state` check, and logout token validation per Back-Channel Logout 1.0 §2.6),
//! written here independently of the provider's code.

#![allow(dead_code, reason = "each test file uses its own part")]

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    routing::post,
    Router,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use idp::{testing::interaction_id, ProviderConfig};
use reqwest::{
    cookie::{CookieStore, Jar},
    header::{LOCATION, SET_COOKIE},
    redirect::Policy,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const ALICE: &str = "248289761001";
pub const BOB: &str = "248289761002";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const OFFLINE: &str = "openid profile email offline_access";
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

pub struct Client {
    pub id: &'static str,
    pub secret: Option<&'static str>,
    pub redirect_uri: &'static str,
    /// The origin of `redirect_uri`: the `event.origin` of its pages.
    pub origin: &'static str,
}

pub const DEMO_APP: Client = Client {
    id: "demo-app",
    secret: Some("demo-app-secret"),
    redirect_uri: "http://localhost:3000/auth/callback",
    origin: "http://localhost:3000",
};
pub const DEMO_SPA: Client = Client {
    id: "demo-spa",
    secret: None,
    redirect_uri: "http://localhost:3000/spa/callback",
    origin: "http://localhost:3000",
};
/// The registered post-logout redirect URI of the demo app (`provider.toml`).
pub const APP_HOME: &str = "http://localhost:3000/";

/// A browser against one provider: its cookie jar is readable, redirects are not followed.
pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
    pub issuer: String,
}

impl Browser {
    pub fn new(issuer: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder().cookie_provider(jar.clone()).redirect(Policy::none()).build().unwrap();
        Self { http, jar, issuer: issuer.to_owned() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The value of the cookie `name` the browser holds for the provider, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.issuer.parse().unwrap())?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
            .filter(|value| !value.is_empty())
    }

    /// What the OP iframe's script reads: the browser state cookie, or "" without one.
    pub fn browser_state(&self) -> String {
        self.cookie("idp_browser_state").unwrap_or_default()
    }

    pub async fn authorize(&self, client: &Client, scope: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.id),
            ("redirect_uri", client.redirect_uri),
            ("scope", scope),
            ("state", "state-1"),
            ("nonce", "nonce-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let url = format!("{}?{}", self.url("/authorize"), serde_urlencoded::to_string(params).unwrap());
        self.http.get(url).send().await.unwrap()
    }

    pub async fn silent(&self, client: &Client) -> reqwest::Response {
        self.authorize(client, "openid", &[("prompt", "none")]).await
    }

    /// Posts the sign-in form of `page` as `username`.
    pub async fn sign_in_on(&self, page: reqwest::Response, username: &str) -> reqwest::Response {
        assert_eq!(page.status(), StatusCode::OK, "the sign-in form");
        let interaction = interaction_id(&page.text().await.unwrap()).expect("the sign-in form");
        let password = match username {
            "alice" => "wonderland",
            "bob" => "builder",
            other => panic!("no password for {other}"),
        };
        let form = [("interaction", interaction.as_str()), ("username", username), ("password", password)];
        self.http.post(self.url("/login")).form(&form).send().await.unwrap()
    }

    /// An interactive request of `client` answered with the sign-in form, as `username`.
    pub async fn sign_in(&self, client: &Client, username: &str) -> reqwest::Response {
        let page = self.authorize(client, "openid profile", &[]).await;
        self.sign_in_on(page, username).await
    }

    /// The code exchange of `client`: the tokens.
    pub async fn tokens(&self, client: &Client, code: &str) -> Value {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri),
            ("code_verifier", VERIFIER),
            ("client_id", client.id),
        ];
        let mut request = self.http.post(self.url("/token")).form(&form);
        if let Some(secret) = client.secret {
            request = request.basic_auth(client.id, Some(secret));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// A code for `client` (signing in as `username` if the browser has no session), exchanged:
    /// the client has now received tokens in this provider session.
    pub async fn tokens_for(&self, client: &Client, username: &str, scope: &str) -> Value {
        let mut response = self.authorize(client, scope, &[]).await;
        if response.status() == StatusCode::OK {
            response = self.sign_in_on(response, username).await;
        }
        let code = query_of(&response)["code"].clone();
        self.tokens(client, &code).await
    }

    pub async fn refresh(&self, client: &Client, refresh_token: &str) -> reqwest::Response {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client.id)];
        let mut request = self.http.post(self.url("/token")).form(&form);
        if let Some(secret) = client.secret {
            request = request.basic_auth(client.id, Some(secret));
        }
        request.send().await.unwrap()
    }

    /// `GET /end-session` with `params`.
    pub async fn end_session(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http.get(self.url("/end-session")).query(params).send().await.unwrap()
    }

    pub async fn admin(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn metrics(&self) -> Value {
        self.http.get(self.url("/admin/metrics")).send().await.unwrap().json().await.unwrap()
    }

    /// True if `prompt=none` gets `client` a code: the browser has a provider session.
    pub async fn has_session(&self, client: &Client) -> bool {
        let query = query_of(&self.silent(client).await);
        match (query.get("code"), query.get("error").map(String::as_str)) {
            (Some(_), _) => true,
            (None, Some("login_required")) => false,
            other => panic!("neither a code nor login_required: {other:?}"),
        }
    }
}

/// The query of a redirect.
/// A port of 127.0.0.1 held but not listened on, for as long as the socket lives: a connection
/// to it is refused, and nothing else can take the port meanwhile (a port bound and released can
/// be taken by another test's server, which then answers).
pub fn refusing_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}

pub fn query_of(response: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a redirect");
    let location = response.headers()[LOCATION].to_str().unwrap();
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

/// The `Set-Cookie` header of the response for cookie `name`, if it sets one.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with(&format!("{name}=")))
}

/// The claims of a JWT, unverified.
pub fn claims(jwt: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// The protected header of a JWT, as JSON.
pub fn header(jwt: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap()
}

/// `session_state` as Session Management 1.0 §3.2's example computes it: the hex SHA-256 of
/// `client_id origin browser_state salt`, a dot, the salt.
pub fn session_state(client_id: &str, origin: &str, browser_state: &str, salt: &str) -> String {
    let digest = Sha256::digest(format!("{client_id} {origin} {browser_state} {salt}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.{salt}")
}

/// What the OP iframe answers to `client_id session_state` from `origin` in a browser whose
/// browser state is `browser_state`.
pub fn check_session(client_id: &str, origin: &str, value: &str, browser_state: &str) -> &'static str {
    let Some((_, salt)) = value.split_once('.') else { return "error" };
    if session_state(client_id, origin, browser_state, salt) == value {
        "unchanged"
    } else {
        "changed"
    }
}

/// What a relying party's back-channel logout endpoint received.
#[derive(Debug, Clone)]
pub struct Received {
    pub content_type: String,
    /// The form fields of the body.
    pub form: HashMap<String, String>,
}

impl Received {
    pub fn logout_token(&self) -> &str {
        &self.form["logout_token"]
    }
}

/// A relying party's back-channel logout endpoint on an ephemeral port: records every request
/// on arrival and answers with the statuses it is given, in order, then 200, each after `delay`.
#[derive(Clone)]
pub struct BackChannel {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<StatusCode>>>,
    delay: Duration,
}

impl BackChannel {
    pub async fn start() -> Self {
        Self::answering(&[]).await
    }

    /// Answers `answers` first, one per request, then 200.
    pub async fn answering(answers: &[StatusCode]) -> Self {
        Self::serve(answers, Duration::ZERO).await
    }

    /// Records each request at once but answers it (200) only `delay` later.
    pub async fn slow(delay: Duration) -> Self {
        Self::serve(&[], delay).await
    }

    async fn serve(answers: &[StatusCode], delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let channel = Self {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            delay,
        };
        let app = Router::new().route("/backchannel-logout", post(receive)).with_state(channel.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        channel
    }

    pub fn uri(&self) -> String {
        format!("http://{}/backchannel-logout", self.addr)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (10 s at most) until `count` requests have arrived, and returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{count} back-channel requests expected, {} arrived", self.received().len());
    }
}

async fn receive(State(channel): State<BackChannel>, headers: HeaderMap, body: String) -> impl IntoResponse {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let form = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    channel.received.lock().unwrap().push(Received { content_type, form });
    let status = channel.answers.lock().unwrap().pop_front().unwrap_or(StatusCode::OK);
    tokio::time::sleep(channel.delay).await;
    (status, [(header::CACHE_CONTROL, "no-store")], if status.is_success() { "" } else { "refused" })
}

/// Registers `channel` as the back-channel logout endpoint of `client_id`.
pub fn back_channel_of(config: &mut ProviderConfig, client_id: &str, channel: &BackChannel) {
    config.register_backchannel_logout_uri(client_id, &channel.uri());
}

/// Why a spec-true relying party refuses a logout token (Back-Channel Logout 1.0 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Alg,
    Typ,
    Kid,
    Signature,
    Iss,
    Aud,
    Exp,
    Iat,
    SubOrSid,
    Events,
    Nonce,
}

/// Validates `token` as §2.6 asks of a relying party `client_id` of `issuer`, against `jwks`,
/// at time `now`, with the explicit typing of §2.4 required; returns its claims.
pub fn validate_logout_token(
    token: &str,
    jwks: &Value,
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<Value, Refusal> {
    let header = header(token);
    // The provider's id_token_signing_alg_values_supported is ["ES256", "RS256"]; never none.
    let alg = match header["alg"].as_str() {
        Some("ES256") => jsonwebtoken::Algorithm::ES256,
        Some("RS256") => jsonwebtoken::Algorithm::RS256,
        _ => return Err(Refusal::Alg),
    };
    if header["typ"] != "logout+jwt" {
        return Err(Refusal::Typ);
    }
    let kid = header["kid"].as_str().ok_or(Refusal::Kid)?;
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).ok_or(Refusal::Kid)?;
    if jwk["alg"] != header["alg"] {
        return Err(Refusal::Alg);
    }
    let key = decoding_key(jwk);
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|_| Refusal::Signature)?.claims;
    if claims["iss"] != issuer {
        return Err(Refusal::Iss);
    }
    let aud_matches = match &claims["aud"] {
        Value::String(aud) => aud == client_id,
        Value::Array(auds) => auds.iter().any(|aud| aud == client_id),
        _ => false,
    };
    if !aud_matches {
        return Err(Refusal::Aud);
    }
    if claims["exp"].as_u64().is_none_or(|exp| exp <= now) {
        return Err(Refusal::Exp);
    }
    // A minute of clock skew, as for ID tokens, and no older than five minutes.
    if claims["iat"].as_u64().is_none_or(|iat| iat > now + 60 || iat + 300 < now) {
        return Err(Refusal::Iat);
    }
    if !claims["sub"].is_string() && !claims["sid"].is_string() {
        return Err(Refusal::SubOrSid);
    }
    if !claims["events"].get(LOGOUT_EVENT).is_some_and(Value::is_object) {
        return Err(Refusal::Events);
    }
    if claims.get("nonce").is_some() {
        return Err(Refusal::Nonce);
    }
    Ok(claims)
}

/// The verifying key of a JWK of the provider's JWK Set (EC P-256 or RSA), as a client makes it.
pub fn decoding_key(jwk: &Value) -> jsonwebtoken::DecodingKey {
    let text = |member: &str| jwk[member].as_str().unwrap();
    match text("kty") {
        "EC" => jsonwebtoken::DecodingKey::from_ec_components(text("x"), text("y")).unwrap(),
        "RSA" => jsonwebtoken::DecodingKey::from_rsa_components(text("n"), text("e")).unwrap(),
        other => panic!("a JWK of type {other}"),
    }
}

pub async fn jwks(issuer: &str) -> Value {
    reqwest::get(format!("{issuer}/jwks")).await.unwrap().json().await.unwrap()
}

/// The provider's clock now.
pub fn now(provider: &idp::testing::TestProvider) -> u64 {
    use idp::Clock;
    provider.clock.now()
}

//! Silent renew support, over HTTP against a live provider with a manual clock: `prompt=none`
//! and the errors that stand for a page it may not show (OIDC Core §3.1.2.1, §3.1.2.6), the
//! pages behind them (updated terms, consent), `id_token_hint`, the framing of the
//! authorization endpoint's answers (CSP `frame-ancestors`), and the admin API that tests of
//! silent renew drive (ending a user's provider sessions, a slow `/authorize`, counts by prompt).

use std::collections::{BTreeSet, HashMap};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use idp::{
    testing::{interaction_id, TempDir, TestProvider},
    ProviderConfig,
};
use reqwest::{header::LOCATION, redirect::Policy, StatusCode};
use serde_json::{json, Value};

const ALICE: &str = "248289761001";
const BOB: &str = "248289761002";

/// RFC 7636 Appendix B: a verifier and its S256 challenge. Every request here uses them.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Client {
    id: &'static str,
    secret: Option<&'static str>,
    redirect_uri: &'static str,
}

const DEMO_APP: Client =
    Client { id: "demo-app", secret: Some("demo-app-secret"), redirect_uri: "http://localhost:3000/auth/callback" };
const DEMO_SPA: Client = Client { id: "demo-spa", secret: None, redirect_uri: "http://localhost:3000/spa/callback" };

fn client_mut<'a>(config: &'a mut ProviderConfig, id: &str) -> &'a mut idp::config::ClientConfig {
    config.clients.iter_mut().find(|c| c.client_id == id).expect("a registered client")
}

fn user_mut<'a>(config: &'a mut ProviderConfig, sub: &str) -> &'a mut idp::config::UserConfig {
    config.users.iter_mut().find(|u| u.sub == sub).expect("a configured user")
}

/// The demo SPA asks for consent; the demo app does not.
fn spa_requires_consent(config: &mut ProviderConfig) {
    client_mut(config, DEMO_SPA.id).require_consent = true;
}

/// Alice has updated terms to accept.
fn alice_has_new_terms(config: &mut ProviderConfig) {
    user_mut(config, ALICE).interaction_required = true;
}

/// A browser: its own cookie jar, redirects not followed, so that each answer can be checked.
/// It speaks to the provider at `base`, which stays the same across a restart.
struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    fn new(provider: &TestProvider) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        Self { http, base: provider.issuer.clone() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /authorize` with the standard request of `client` and `extra` parameters.
    async fn authorize(&self, client: &Client, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.id),
            ("redirect_uri", client.redirect_uri),
            ("scope", "openid profile email"),
            ("state", "state-1"),
            ("nonce", "nonce-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let url = format!("{}?{}", self.url("/authorize"), serde_urlencoded::to_string(params).unwrap());
        self.http.get(url).send().await.unwrap()
    }

    async fn silent(&self, client: &Client, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut params = vec![("prompt", "none")];
        params.extend_from_slice(extra);
        self.authorize(client, &params).await
    }

    /// Posts the sign-in form of `page` as `username`.
    async fn sign_in_on(&self, page: reqwest::Response, username: &str) -> reqwest::Response {
        assert_eq!(page.status(), StatusCode::OK, "the sign-in form");
        let page = page.text().await.unwrap();
        assert!(page.contains(r#"action="/login""#), "the sign-in form: {page}");
        let interaction = interaction_id(&page).expect("an interaction id");
        let password = match username {
            "alice" => "wonderland",
            "bob" => "builder",
            other => panic!("no password for {other}"),
        };
        let form = [("interaction", interaction.as_str()), ("username", username), ("password", password)];
        self.http.post(self.url("/login")).form(&form).send().await.unwrap()
    }

    /// Opens an interactive request of `client` and signs in as `username`.
    async fn sign_in(&self, client: &Client, username: &str) -> reqwest::Response {
        let page = self.authorize(client, &[]).await;
        self.sign_in_on(page, username).await
    }

    /// Answers the terms or consent page `page` (a response) at `path` with `action`.
    async fn answer(&self, page: reqwest::Response, path: &str, action: Option<&str>) -> reqwest::Response {
        assert_eq!(page.status(), StatusCode::OK, "a page to answer at {path}");
        let page = page.text().await.unwrap();
        assert!(page.contains(&format!(r#"action="{path}""#)), "the page of {path}: {page}");
        let interaction = interaction_id(&page).expect("an interaction id");
        let mut form = vec![("interaction", interaction.as_str())];
        if let Some(action) = action {
            form.push(("action", action));
        }
        self.http.post(self.url(path)).form(&form).send().await.unwrap()
    }

    /// The code exchange of `client`, through the back channel.
    async fn tokens(&self, client: &Client, code: &str) -> Value {
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

    /// Signs in as `username` for `client` (a fresh browser shows the form) and returns the ID
    /// token of the code exchange.
    async fn id_token(&self, client: &Client, username: &str) -> String {
        let code = code_of(&self.sign_in(client, username).await, client);
        self.tokens(client, &code).await["id_token"].as_str().expect("an ID token").to_owned()
    }

    async fn admin(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn end_sessions_of(&self, sub: &str) -> Value {
        let (status, body) = self.admin(&format!("/admin/users/{sub}/end-session"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// The query of a redirect back to `client`, which it must be.
fn redirect_to(response: &reqwest::Response, client: &Client) -> HashMap<String, String> {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a redirect back to the client");
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert!(location.starts_with(client.redirect_uri), "{location}");
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

fn code_of(response: &reqwest::Response, client: &Client) -> String {
    let query = redirect_to(response, client);
    query.get("code").unwrap_or_else(|| panic!("a code: {query:?}")).clone()
}

/// The `error` of a redirect back to `client`, after checking that it carries `state` and `iss`
/// and no code.
fn error_of(response: &reqwest::Response, client: &Client, issuer: &str) -> String {
    let query = redirect_to(response, client);
    assert_eq!(query.get("state").map(String::as_str), Some("state-1"), "{query:?}");
    assert_eq!(query.get("iss").map(String::as_str), Some(issuer), "{query:?}");
    assert!(!query.contains_key("code"), "{query:?}");
    query["error"].clone()
}

/// The sources of the `frame-ancestors` directive of the response's CSP.
fn frame_ancestors(response: &reqwest::Response) -> BTreeSet<String> {
    let csp = response.headers().get("content-security-policy").expect("a CSP").to_str().unwrap();
    let directive = csp
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("frame-ancestors "))
        .unwrap_or_else(|| panic!("frame-ancestors in {csp}"));
    directive.split_whitespace().map(str::to_owned).collect()
}

fn sources(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn claims(jwt: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn prompt_none_without_a_provider_session_answers_login_required_with_state_and_iss() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    let response = browser.silent(&DEMO_APP, &[]).await;
    assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "login_required");
}

#[tokio::test]
async fn prompt_none_with_a_provider_session_answers_a_code_of_the_same_session() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    let first = browser.id_token(&DEMO_APP, "alice").await;
    let silent = browser.silent(&DEMO_APP, &[]).await;
    let query = redirect_to(&silent, &DEMO_APP);
    assert_eq!((query["state"].as_str(), query["iss"].as_str()), ("state-1", provider.issuer.as_str()));
    let tokens = browser.tokens(&DEMO_APP, &query["code"]).await;
    let renewed = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(renewed["sub"], ALICE);
    assert_eq!(renewed["sid"], claims(&first)["sid"], "the same provider session");
}

#[tokio::test]
async fn prompt_none_with_a_session_older_than_max_age_answers_login_required() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    browser.id_token(&DEMO_APP, "alice").await;
    provider.clock.advance(120);
    code_of(&browser.silent(&DEMO_APP, &[("max_age", "300")]).await, &DEMO_APP);
    let too_old = browser.silent(&DEMO_APP, &[("max_age", "60")]).await;
    assert_eq!(error_of(&too_old, &DEMO_APP, &provider.issuer), "login_required");
}

#[tokio::test]
async fn prompt_none_before_the_user_allowed_the_client_answers_consent_required() {
    let provider = TestProvider::start(spa_requires_consent).await;
    let browser = Browser::new(&provider);
    // Signed in through the app, which needs no consent: the SPA has not been allowed yet.
    browser.id_token(&DEMO_APP, "alice").await;
    let response = browser.silent(&DEMO_SPA, &[]).await;
    assert_eq!(error_of(&response, &DEMO_SPA, &provider.issuer), "consent_required");
    // The app itself still renews silently.
    code_of(&browser.silent(&DEMO_APP, &[]).await, &DEMO_APP);
}

#[tokio::test]
async fn the_consent_page_follows_the_password_and_allow_is_remembered_for_the_session() {
    let provider = TestProvider::start(spa_requires_consent).await;
    let browser = Browser::new(&provider);
    let consent = browser.sign_in(&DEMO_SPA, "alice").await;
    assert_eq!(consent.status(), StatusCode::OK, "the consent page, not a code");
    let allowed = browser.answer(consent, "/consent", Some("allow")).await;
    code_of(&allowed, &DEMO_SPA);

    // Remembered: silent requests get codes, interactive ones skip the page.
    code_of(&browser.silent(&DEMO_SPA, &[]).await, &DEMO_SPA);
    code_of(&browser.authorize(&DEMO_SPA, &[]).await, &DEMO_SPA);
    // For this provider session only: another browser's session is asked again.
    let other = Browser::new(&provider);
    assert_eq!(other.sign_in(&DEMO_SPA, "alice").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_consent_page_lists_what_the_client_asks_for_and_offers_allow_and_deny() {
    let provider = TestProvider::start(spa_requires_consent).await;
    let browser = Browser::new(&provider);
    let page = browser.sign_in(&DEMO_SPA, "alice").await.text().await.unwrap();
    for text in ["demo-spa", "Alice Liddell", "your email address", r#"value="allow""#, r#"value="deny""#] {
        assert!(page.contains(text), "{text} in {page}");
    }
}

#[tokio::test]
async fn denying_consent_answers_access_denied_and_is_not_remembered() {
    let provider = TestProvider::start(spa_requires_consent).await;
    let browser = Browser::new(&provider);
    let consent = browser.sign_in(&DEMO_SPA, "alice").await;
    let denied = browser.answer(consent, "/consent", Some("deny")).await;
    assert_eq!(error_of(&denied, &DEMO_SPA, &provider.issuer), "access_denied");
    let silent = browser.silent(&DEMO_SPA, &[]).await;
    assert_eq!(error_of(&silent, &DEMO_SPA, &provider.issuer), "consent_required");
    // Interactive, the signed-in user is asked again, without the password.
    let again = browser.authorize(&DEMO_SPA, &[]).await;
    assert!(again.text().await.unwrap().contains(r#"action="/consent""#));
}

#[tokio::test]
async fn prompt_consent_shows_the_consent_page_even_after_consent_and_to_any_client() {
    let provider = TestProvider::start(spa_requires_consent).await;
    let browser = Browser::new(&provider);
    let consent = browser.sign_in(&DEMO_SPA, "alice").await;
    code_of(&browser.answer(consent, "/consent", Some("allow")).await, &DEMO_SPA);

    let asked = browser.authorize(&DEMO_SPA, &[("prompt", "consent")]).await;
    code_of(&browser.answer(asked, "/consent", Some("allow")).await, &DEMO_SPA);
    // The app requires no consent, but prompt=consent asks all the same.
    let asked = browser.authorize(&DEMO_APP, &[("prompt", "consent")]).await;
    code_of(&browser.answer(asked, "/consent", Some("allow")).await, &DEMO_APP);
    // With login too: the password first, then the consent page.
    let login = browser.authorize(&DEMO_APP, &[("prompt", "login consent")]).await;
    let consent = browser.sign_in_on(login, "alice").await;
    code_of(&browser.answer(consent, "/consent", Some("allow")).await, &DEMO_APP);
}

#[tokio::test]
async fn prompt_none_while_updated_terms_are_pending_answers_interaction_required() {
    let provider = TestProvider::start(alice_has_new_terms).await;
    let browser = Browser::new(&provider);
    let terms = browser.sign_in(&DEMO_APP, "alice").await;
    assert_eq!(terms.status(), StatusCode::OK, "the terms page, not a code");
    // The user left the page: signed in, but not past the terms.
    let silent = browser.silent(&DEMO_APP, &[]).await;
    assert_eq!(error_of(&silent, &DEMO_APP, &provider.issuer), "interaction_required");
}

#[tokio::test]
async fn the_terms_page_follows_the_password_and_acceptance_is_remembered_for_the_session() {
    let provider = TestProvider::start(alice_has_new_terms).await;
    let browser = Browser::new(&provider);
    let terms = browser.sign_in(&DEMO_APP, "alice").await;
    let page = terms.text().await.unwrap();
    assert!(page.contains("Alice Liddell") && page.contains("Accept"), "{page}");
    let interaction = interaction_id(&page).unwrap();
    let accepted = browser.http.post(browser.url("/terms")).form(&[("interaction", &interaction)]).send().await;
    code_of(&accepted.unwrap(), &DEMO_APP);

    code_of(&browser.silent(&DEMO_APP, &[]).await, &DEMO_APP);
    code_of(&browser.silent(&DEMO_SPA, &[]).await, &DEMO_SPA);
    // Bob has no new terms: his sign-in goes straight to the code.
    code_of(&Browser::new(&provider).sign_in(&DEMO_APP, "bob").await, &DEMO_APP);
    // Alice signing in again (prompt=login) is a re-authentication of the same provider session,
    // not a new one: it keeps what was decided in it, the accepted terms included, so the
    // password is asked for but the terms are not shown again.
    let login = browser.authorize(&DEMO_APP, &[("prompt", "login")]).await;
    code_of(&browser.sign_in_on(login, "alice").await, &DEMO_APP);
    // A new provider session (another browser) shows them again.
    let other = Browser::new(&provider).sign_in(&DEMO_APP, "alice").await;
    assert!(other.text().await.unwrap().contains(r#"action="/terms""#));
}

#[tokio::test]
async fn the_terms_come_before_consent_and_a_signed_in_user_sees_them_without_the_password() {
    let provider = TestProvider::start(|config| {
        spa_requires_consent(config);
        alice_has_new_terms(config);
    })
    .await;
    let browser = Browser::new(&provider);
    let terms = browser.sign_in(&DEMO_SPA, "alice").await;
    let consent = browser.answer(terms, "/terms", None).await;
    code_of(&browser.answer(consent, "/consent", Some("allow")).await, &DEMO_SPA);

    // A later session's terms, for a user signed in already, come straight from /authorize.
    let other = Browser::new(&provider);
    let login = other.authorize(&DEMO_APP, &[]).await;
    let terms = other.sign_in_on(login, "alice").await;
    assert_eq!(terms.status(), StatusCode::OK);
    let again = other.authorize(&DEMO_APP, &[]).await;
    code_of(&other.answer(again, "/terms", None).await, &DEMO_APP);
}

#[tokio::test]
async fn a_page_answered_after_its_session_ended_records_nothing_and_issues_no_code() {
    let provider = TestProvider::start(spa_requires_consent).await;
    let browser = Browser::new(&provider);
    let consent = browser.sign_in(&DEMO_SPA, "alice").await;
    browser.end_sessions_of(ALICE).await;
    let late = browser.answer(consent, "/consent", Some("allow")).await;
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
    assert!(late.headers().get(LOCATION).is_none());
    assert!(late.text().await.unwrap().contains("has ended"));
}

#[tokio::test]
async fn prompt_none_combined_with_another_value_is_invalid_request() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    browser.id_token(&DEMO_APP, "alice").await;
    for prompt in ["none login", "consent none", "none select_account"] {
        let response = browser.authorize(&DEMO_APP, &[("prompt", prompt)]).await;
        assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "invalid_request", "{prompt}");
    }
}

#[tokio::test]
async fn unknown_prompt_values_are_invalid_request() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    browser.id_token(&DEMO_APP, "alice").await;
    for prompt in ["create", "NONE", "login bogus"] {
        let response = browser.authorize(&DEMO_APP, &[("prompt", prompt)]).await;
        assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "invalid_request", "{prompt}");
    }
}

#[tokio::test]
async fn discovery_lists_the_supported_prompt_values() {
    let provider = TestProvider::start(|_| {}).await;
    let metadata: Value =
        reqwest::get(provider.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["prompt_values_supported"], json!(["none", "login", "consent", "select_account"]));
}

#[tokio::test]
async fn id_token_hint_of_the_session_user_answers_prompt_none_with_a_code() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    let hint = browser.id_token(&DEMO_APP, "alice").await;
    let code = code_of(&browser.silent(&DEMO_APP, &[("id_token_hint", &hint)]).await, &DEMO_APP);
    assert_eq!(claims(browser.tokens(&DEMO_APP, &code).await["id_token"].as_str().unwrap())["sub"], ALICE);
}

#[tokio::test]
async fn id_token_hint_of_another_user_answers_prompt_none_with_login_required() {
    let provider = TestProvider::start(|_| {}).await;
    let alice = Browser::new(&provider);
    alice.id_token(&DEMO_APP, "alice").await;
    let bobs_hint = Browser::new(&provider).id_token(&DEMO_APP, "bob").await;
    let response = alice.silent(&DEMO_APP, &[("id_token_hint", &bobs_hint)]).await;
    assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "login_required", "never a code for alice");
}

/// A hint for bob in alice's browser: the sign-in form, with bob filled in, not alice's code. And
/// OIDC Core §3.1.2.1: signed in by the request as another user than the hint names, the answer
/// is an error, not a code; as that user, a code.
#[tokio::test]
async fn id_token_hint_of_another_user_asks_for_that_user_and_no_one_else() {
    let provider = TestProvider::start(|_| {}).await;
    let alice = Browser::new(&provider);
    alice.id_token(&DEMO_APP, "alice").await;
    let bobs_hint = Browser::new(&provider).id_token(&DEMO_APP, "bob").await;
    let form = alice.authorize(&DEMO_APP, &[("id_token_hint", &bobs_hint)]).await;
    assert_eq!(form.status(), StatusCode::OK, "the sign-in form, not alice's code");
    let page = form.text().await.unwrap();
    assert!(page.contains(r#"name="username" autocomplete="username" value="bob""#), "bob is filled in: {page}");

    let form = alice.authorize(&DEMO_APP, &[("id_token_hint", &bobs_hint)]).await;
    let as_alice = alice.sign_in_on(form, "alice").await;
    assert_eq!(error_of(&as_alice, &DEMO_APP, &provider.issuer), "login_required");
    let form = alice.authorize(&DEMO_APP, &[("id_token_hint", &bobs_hint)]).await;
    code_of(&alice.sign_in_on(form, "bob").await, &DEMO_APP);
}

#[tokio::test]
async fn a_valid_id_token_hint_without_a_session_still_answers_prompt_none_with_login_required() {
    let provider = TestProvider::start(|_| {}).await;
    let hint = Browser::new(&provider).id_token(&DEMO_APP, "alice").await;
    let fresh = Browser::new(&provider);
    let response = fresh.silent(&DEMO_APP, &[("id_token_hint", &hint)]).await;
    assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "login_required");
}

#[tokio::test]
async fn malformed_foreign_forged_or_other_client_hints_are_invalid_request() {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    let alices = browser.id_token(&DEMO_APP, "alice").await;
    let tokens_of_the_spa = {
        let code = code_of(&browser.silent(&DEMO_SPA, &[]).await, &DEMO_SPA);
        browser.tokens(&DEMO_SPA, &code).await
    };
    let access_token = {
        let code = code_of(&browser.silent(&DEMO_APP, &[]).await, &DEMO_APP);
        browser.tokens(&DEMO_APP, &code).await["access_token"].as_str().unwrap().to_owned()
    };
    // Another provider's ID token for a client of the same name.
    let elsewhere = TestProvider::start(|_| {}).await;
    let foreign = Browser::new(&elsewhere).id_token(&DEMO_APP, "alice").await;
    // Alice's ID token with bob's sub: the signature no longer matches.
    let tampered = {
        let parts: Vec<&str> = alices.split('.').collect();
        let mut payload = claims(&alices);
        payload["sub"] = BOB.into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    // Signed by another key under this provider's current kid and issuer.
    let forged = {
        let kid = jsonwebtoken::decode_header(&alices).unwrap().kid.unwrap();
        let pem = p256::SecretKey::random(&mut rand::rngs::OsRng).to_pkcs8_pem(LineEnding::LF).unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid);
        let mut payload = claims(&alices);
        payload["sub"] = BOB.into();
        jsonwebtoken::encode(&header, &payload, &key).unwrap()
    };

    let hints = [
        ("malformed", "not-a-jwt".to_owned()),
        ("three dots", "a.b.c".to_owned()),
        ("foreign", foreign),
        ("tampered", tampered),
        ("forged", forged),
        ("issued to another client", tokens_of_the_spa["id_token"].as_str().unwrap().to_owned()),
        ("an access token", access_token),
    ];
    for (case, hint) in &hints {
        for prompt in ["none", "login"] {
            let response = browser.authorize(&DEMO_APP, &[("prompt", prompt), ("id_token_hint", hint)]).await;
            assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "invalid_request", "{case}, prompt={prompt}");
        }
    }
}

#[tokio::test]
async fn an_expired_id_token_hint_still_works() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    let hint = browser.id_token(&DEMO_APP, "alice").await;
    // ID tokens live 300 s; the provider session 8 hours.
    provider.clock.advance(3600);
    assert!(claims(&hint)["exp"].as_u64().unwrap() < provider_now(&provider));
    code_of(&browser.silent(&DEMO_APP, &[("id_token_hint", &hint)]).await, &DEMO_APP);
}

fn provider_now(provider: &TestProvider) -> u64 {
    use idp::Clock;
    provider.clock.now()
}

#[tokio::test]
async fn a_hint_signed_with_a_rotated_out_key_works_until_the_keys_hint_window_ends() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    let hint = browser.id_token(&DEMO_APP, "alice").await;
    let (status, _) = browser.admin("/admin/keys/rotate", None).await;
    assert_eq!(status, StatusCode::OK);
    code_of(&browser.silent(&DEMO_APP, &[("id_token_hint", &hint)]).await, &DEMO_APP);
    // The old key leaves the JWK Set once its last token has expired (300 s), but the session's
    // own ID token is still a hint: the session lives 8 hours.
    provider.clock.advance(300);
    code_of(&browser.silent(&DEMO_APP, &[("id_token_hint", &hint)]).await, &DEMO_APP);
    // The key verifies hints for the longest of the provider session (8 h) and a refresh token
    // family (24 h); after that the hint can no longer be checked, so it is refused rather than
    // trusted.
    provider.clock.advance(86_400 - 300);
    let response = browser.silent(&DEMO_APP, &[("id_token_hint", &hint)]).await;
    assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "invalid_request");
}

/// Two more redirect URIs for the app: one on its own origin, one on another.
fn more_redirect_uris(config: &mut ProviderConfig) {
    config.register_redirect_uri(DEMO_APP.id, "http://localhost:3000/silent-callback");
    config.register_redirect_uri(DEMO_APP.id, "http://127.0.0.1:3001/auth/callback");
    spa_requires_consent(config);
}

#[tokio::test]
async fn authorize_answers_may_be_framed_by_exactly_the_clients_redirect_origins() {
    let provider = TestProvider::start(more_redirect_uris).await;
    let browser = Browser::new(&provider);
    let app_origins = sources(&["http://localhost:3000", "http://127.0.0.1:3001"]);
    let spa_origins = sources(&["http://localhost:3000"]);

    let login_required = browser.silent(&DEMO_APP, &[]).await;
    let form = browser.authorize(&DEMO_APP, &[]).await;
    assert_eq!(frame_ancestors(&login_required), app_origins, "the error redirect");
    assert_eq!(frame_ancestors(&form), app_origins, "the sign-in form");
    code_of(&browser.sign_in_on(form, "alice").await, &DEMO_APP);
    let code = browser.silent(&DEMO_APP, &[]).await;
    assert_eq!(frame_ancestors(&code), app_origins, "the code redirect");
    let invalid = browser.authorize(&DEMO_APP, &[("prompt", "none login")]).await;
    assert_eq!(frame_ancestors(&invalid), app_origins, "an invalid_request redirect");
    let consent = browser.authorize(&DEMO_SPA, &[]).await;
    assert_eq!(consent.status(), StatusCode::OK);
    assert_eq!(frame_ancestors(&consent), spa_origins, "the consent page, with the SPA's origins");
    let consent_required = browser.silent(&DEMO_SPA, &[]).await;
    assert_eq!(frame_ancestors(&consent_required), spa_origins);

    for response in [&login_required, &code, &invalid, &consent, &consent_required] {
        assert!(response.headers().get("x-frame-options").is_none());
    }
    // The rest of the page policy stays strict.
    let csp = consent.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe"), "{csp}");
    let redirect_csp = code.headers()["content-security-policy"].to_str().unwrap();
    assert!(redirect_csp.starts_with("default-src 'none'"), "{redirect_csp}");
}

#[tokio::test]
async fn every_other_provider_page_refuses_to_be_framed() {
    let provider = TestProvider::start(|config| {
        more_redirect_uris(config);
        alice_has_new_terms(config);
    })
    .await;
    let browser = Browser::new(&provider);
    let none = sources(&["'none'"]);

    // Error pages of /authorize: no trusted client, so nobody to allow.
    let mut unknown = vec![browser.http.get(browser.url("/authorize?client_id=intruder")).send().await.unwrap()];
    let bad_redirect = [("client_id", "demo-app"), ("redirect_uri", "https://evil.example/cb")];
    unknown.push(browser.http.get(browser.url("/authorize")).query(&bad_redirect).send().await.unwrap());
    for page in &unknown {
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert_eq!(frame_ancestors(page), none);
    }
    // Pages answering a form post.
    let form = browser.authorize(&DEMO_SPA, &[]).await.text().await.unwrap();
    let interaction = interaction_id(&form).unwrap();
    let wrong = [("interaction", interaction.as_str()), ("username", "alice"), ("password", "guess")];
    let wrong = browser.http.post(browser.url("/login")).form(&wrong).send().await.unwrap();
    assert_eq!((wrong.status(), frame_ancestors(&wrong)), (StatusCode::OK, none.clone()), "the form again");
    let right = [("interaction", interaction.as_str()), ("username", "alice"), ("password", "wonderland")];
    let terms = browser.http.post(browser.url("/login")).form(&right).send().await.unwrap();
    assert_eq!(frame_ancestors(&terms), none, "the terms page after the password");
    let consent = browser.answer(terms, "/terms", None).await;
    assert_eq!((consent.status(), frame_ancestors(&consent)), (StatusCode::OK, none.clone()), "consent after terms");
    let stale = browser.http.post(browser.url("/consent")).form(&[("interaction", "no-such")]).send().await.unwrap();
    assert_eq!((stale.status(), frame_ancestors(&stale)), (StatusCode::BAD_REQUEST, none));
}

#[tokio::test]
async fn admin_end_session_ends_every_provider_session_of_the_user_and_no_other() {
    let provider = TestProvider::start(|_| {}).await;
    let (laptop, phone, bobs) = (Browser::new(&provider), Browser::new(&provider), Browser::new(&provider));
    laptop.id_token(&DEMO_APP, "alice").await;
    phone.id_token(&DEMO_APP, "alice").await;
    bobs.id_token(&DEMO_APP, "bob").await;

    assert_eq!(laptop.end_sessions_of(ALICE).await, json!({ "ended": 2 }));
    for browser in [&laptop, &phone] {
        let response = browser.silent(&DEMO_APP, &[]).await;
        assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "login_required");
        assert_eq!(browser.authorize(&DEMO_APP, &[]).await.status(), StatusCode::OK, "the sign-in form");
    }
    code_of(&bobs.silent(&DEMO_APP, &[]).await, &DEMO_APP);
    assert_eq!(laptop.end_sessions_of(ALICE).await, json!({ "ended": 0 }), "nothing left to end");
    assert_eq!(laptop.end_sessions_of("nobody").await, json!({ "ended": 0 }));
}

#[tokio::test]
async fn consent_and_accepted_terms_survive_a_restart_and_ended_sessions_stay_ended() {
    let dir = TempDir::default();
    let file = dir.join("state.db");
    let provider = TestProvider::start(|config| {
        config.state_file = Some(file);
        spa_requires_consent(config);
        alice_has_new_terms(config);
    })
    .await;
    let browser = Browser::new(&provider);
    let terms = browser.sign_in(&DEMO_SPA, "alice").await;
    let consent = browser.answer(terms, "/terms", None).await;
    code_of(&browser.answer(consent, "/consent", Some("allow")).await, &DEMO_SPA);

    let provider = provider.restart().await;
    code_of(&browser.silent(&DEMO_SPA, &[]).await, &DEMO_SPA);
    code_of(&browser.silent(&DEMO_APP, &[]).await, &DEMO_APP);

    assert_eq!(browser.end_sessions_of(ALICE).await, json!({ "ended": 1 }));
    let provider = provider.restart().await;
    let response = browser.silent(&DEMO_SPA, &[]).await;
    assert_eq!(error_of(&response, &DEMO_SPA, &provider.issuer), "login_required", "the file forgot the session");
}

#[tokio::test]
async fn admin_delay_is_echoed_slows_authorize_and_turns_off_with_zero() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    let (status, body) = browser.admin("/admin/delay", Some(json!({ "authorize_ms": 1200 }))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "authorize_ms": 1200, "token_ms": 0 })));
    // Slow, but it answers, and as before.
    let started = std::time::Instant::now();
    let response = browser.silent(&DEMO_APP, &[]).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(1000), "the answer waited");
    assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "login_required");
    let (status, body) = browser.admin("/admin/delay", Some(json!({ "authorize_ms": 0 }))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "authorize_ms": 0, "token_ms": 0 })));
    let started = std::time::Instant::now();
    let response = browser.silent(&DEMO_APP, &[]).await;
    assert!(started.elapsed() < std::time::Duration::from_millis(600), "no longer waits the 1.2 s");
    assert_eq!(error_of(&response, &DEMO_APP, &provider.issuer), "login_required");

    for bad in [
        json!({ "authorize_ms": -1 }),
        json!({ "authorize_ms": 60_001 }),
        json!({ "token_ms": 60_001 }),
        json!({}),
        json!([]),
    ] {
        let (status, body) = browser.admin("/admin/delay", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["error"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn admin_token_delay_and_outage_slow_or_stop_the_token_endpoint_until_turned_off() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    let (status, body) = browser.admin("/admin/delay", Some(json!({ "token_ms": 120 }))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "authorize_ms": 0, "token_ms": 120 })));
    let token = || reqwest::Client::new().post(provider.url("/token")).form(&[("grant_type", "refresh_token")]).send();
    let started = std::time::Instant::now();
    let answer = token().await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(120), "the answer waited");
    assert_ne!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    browser.admin("/admin/delay", Some(json!({ "token_ms": 0 }))).await;

    let (status, body) = browser.admin("/admin/outage", Some(json!({ "token": true }))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "token": true })));
    assert_eq!(token().await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    browser.admin("/admin/outage", Some(json!({ "token": false }))).await;
    assert_eq!(token().await.unwrap().status(), StatusCode::UNAUTHORIZED, "answered again: no client authentication");
}

#[tokio::test]
async fn admin_metrics_count_authorize_requests_by_prompt() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider);
    browser.sign_in(&DEMO_APP, "alice").await; // default
    browser.silent(&DEMO_APP, &[]).await; // none
    browser.silent(&DEMO_SPA, &[]).await; // none
    browser.authorize(&DEMO_APP, &[("prompt", "login")]).await; // login
    browser.authorize(&DEMO_APP, &[("prompt", "consent")]).await; // consent
    browser.authorize(&DEMO_APP, &[("prompt", "consent login")]).await; // login consent
    browser.authorize(&DEMO_APP, &[("prompt", "none login")]).await; // invalid
    browser.authorize(&DEMO_APP, &[("prompt", "create")]).await; // invalid
                                                                 // Counted on arrival, whatever the answer: a silent request of an unknown client too.
    browser.http.get(browser.url("/authorize?client_id=intruder&prompt=none")).send().await.unwrap();

    let metrics: Value = browser.http.get(browser.url("/admin/metrics")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        metrics["authorize_requests"],
        json!({ "default": 1, "none": 3, "login": 1, "consent": 1, "login consent": 1, "invalid": 2 })
    );
}

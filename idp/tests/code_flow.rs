//! The authorization code flow against a live provider over HTTP: the happy path, then one test
//! per refusal the specs require.

use std::collections::HashMap;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use idp::testing::{interaction_id, TestProvider};
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::{header::LOCATION, redirect::Policy, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

const CLIENT_ID: &str = "demo-app";
const CLIENT_SECRET: &str = "demo-app-secret";
const REDIRECT_URI: &str = "http://localhost:3000/auth/callback";
const PUBLIC_CLIENT_ID: &str = "demo-spa";
const PUBLIC_REDIRECT_URI: &str = "http://localhost:3000/spa/callback";

/// A browser (cookie jar, no automatic redirects) talking to a fresh provider.
struct Browser {
    http: reqwest::Client,
    provider: TestProvider,
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce { verifier, challenge }
}

fn query(location: &str) -> HashMap<String, String> {
    url::Url::parse(location).expect("absolute redirect").query_pairs().into_owned().collect()
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get(LOCATION).expect("a redirect").to_str().unwrap().to_owned()
}

impl Browser {
    async fn new() -> Self {
        let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        Self { http, provider: TestProvider::start(|_| {}).await }
    }

    /// The standard request of the confidential client, with `changes` applied: `Some` sets a
    /// parameter, `None` removes it.
    fn authorize_url(&self, challenge: &str, changes: &[(&str, Option<&str>)]) -> String {
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid profile email"),
            ("state", "state-123"),
            ("nonce", "nonce-456"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        for (name, value) in changes {
            params.retain(|(n, _)| n != name);
            if let Some(value) = value {
                params.push((name, value));
            }
        }
        format!("{}?{}", self.provider.url("/authorize"), serde_urlencoded::to_string(params).unwrap())
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    /// Opens `authorize_url`, signs in as alice, and returns the redirect back to the client.
    async fn sign_in(&self, authorize_url: &str) -> reqwest::Response {
        let page = self.get(authorize_url).await;
        assert_eq!(page.status(), StatusCode::OK, "the sign-in form is shown");
        let interaction = interaction_id(&page.text().await.unwrap()).expect("an interaction id");
        self.http
            .post(self.provider.url("/login"))
            .form(&[("interaction", interaction.as_str()), ("username", "alice"), ("password", "wonderland")])
            .send()
            .await
            .unwrap()
    }

    /// Runs the front channel and returns the code and the PKCE verifier that goes with it.
    async fn code(&self) -> (String, Pkce) {
        let pkce = pkce();
        let back = self.sign_in(&self.authorize_url(&pkce.challenge, &[])).await;
        assert_eq!(back.status(), StatusCode::SEE_OTHER);
        let params = query(&location(&back));
        assert_eq!(params["state"], "state-123");
        assert_eq!(params["iss"], self.provider.issuer);
        (params["code"].clone(), pkce)
    }

    /// The confidential client's code exchange, authenticated with `client_secret_basic`.
    async fn exchange(&self, code: &str, verifier: &str) -> reqwest::Response {
        self.token(Some((CLIENT_ID, CLIENT_SECRET)), code, verifier, &[]).await
    }

    /// A token request for `code`: the standard `authorization_code` form with `changes`
    /// applied (`Some` sets a parameter, `None` removes it), and Basic credentials if given.
    async fn token(
        &self,
        basic: Option<(&str, &str)>,
        code: &str,
        verifier: &str,
        changes: &[(&str, Option<&str>)],
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ];
        for (name, value) in changes {
            form.retain(|(n, _)| n != name);
            if let Some(value) = value {
                form.push((name, value));
            }
        }
        let mut request = self.http.post(self.provider.url("/token")).form(&form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.unwrap()
    }

    async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.http.get(self.provider.url("/userinfo")).bearer_auth(access_token).send().await.unwrap()
    }

    async fn decoding_key(&self) -> (String, DecodingKey) {
        let jwks: Value = self.get(&self.provider.url("/jwks")).await.json().await.unwrap();
        let key = &jwks["keys"][0];
        let decoding = DecodingKey::from_ec_components(key["x"].as_str().unwrap(), key["y"].as_str().unwrap()).unwrap();
        (key["kid"].as_str().unwrap().to_owned(), decoding)
    }
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn discovery_lists_only_what_is_implemented() {
    let browser = Browser::new().await;
    let metadata: Value =
        browser.get(&browser.provider.url("/.well-known/openid-configuration")).await.json().await.unwrap();
    assert_eq!(metadata["issuer"], browser.provider.issuer);
    assert_eq!(metadata["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(metadata["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(metadata["grant_types_supported"], serde_json::json!(["authorization_code", "refresh_token"]));
    // RS256 must be listed (Discovery 1.0 §3), and can be used (OIDC Core §15.1).
    assert_eq!(metadata["id_token_signing_alg_values_supported"], serde_json::json!(["ES256", "RS256"]));
    // Omitted, request_uri_parameter_supported would mean true (Discovery 1.0 §3).
    assert_eq!(metadata["request_parameter_supported"], false);
    assert_eq!(metadata["request_uri_parameter_supported"], false);
}

#[tokio::test]
async fn code_flow_issues_valid_id_and_access_tokens() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let response = browser.exchange(&code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email");

    let (kid, key) = browser.decoding_key().await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[&browser.provider.issuer]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation).unwrap().claims;
    assert_eq!(claims["sub"], "248289761001");
    assert_eq!(claims["nonce"], "nonce-456");
    assert_eq!(claims["azp"], CLIENT_ID);
    assert_eq!(claims["name"], "Alice Liddell");
    for claim in ["iat", "exp", "auth_time", "sid"] {
        assert!(claims.get(claim).is_some(), "ID token has {claim}");
    }

    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(access_token).unwrap().typ.as_deref(), Some("at+jwt"));
    validation.set_audience(&["demo-api"]);
    let access = jsonwebtoken::decode::<Value>(access_token, &key, &validation).unwrap().claims;
    assert_eq!(access["client_id"], CLIENT_ID);
    assert_eq!(access["scope"], "openid profile email");
    assert!(access["jti"].is_string());

    let userinfo = browser.userinfo(access_token).await;
    assert_eq!(userinfo.status(), StatusCode::OK);
    let userinfo: Value = userinfo.json().await.unwrap();
    assert_eq!(userinfo["sub"], "248289761001");
    assert_eq!(userinfo["email"], "alice@example.org");
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused() {
    let browser = Browser::new().await;
    let (code, _) = browser.code().await;
    let other = pkce();
    let (status, error) = error_of(browser.exchange(&code, &other.verifier).await).await;
    assert_eq!((status, error.as_str()), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn missing_code_verifier_is_refused() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let basic = Some((CLIENT_ID, CLIENT_SECRET));
    let response = browser.token(basic, &code, &pkce.verifier, &[("code_verifier", None)]).await;
    assert_eq!(error_of(response).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
}

async fn assert_redirected_error(browser: &Browser, url: &str, error: &str) {
    let response = browser.get(url).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "errors go back to the redirect URI");
    let target = location(&response);
    assert!(target.starts_with(REDIRECT_URI), "{target}");
    let params = query(&target);
    assert_eq!(params["error"], error);
    assert_eq!(params["state"], "state-123");
    assert_eq!(params["iss"], browser.provider.issuer);
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn missing_code_challenge_is_refused() {
    let browser = Browser::new().await;
    let url = browser.authorize_url("", &[("code_challenge", None)]);
    assert_redirected_error(&browser, &url, "invalid_request").await;
}

#[tokio::test]
async fn plain_code_challenge_method_is_refused() {
    let browser = Browser::new().await;
    let verifier = pkce().verifier;
    let url = browser.authorize_url(&verifier, &[("code_challenge_method", Some("plain"))]);
    assert_redirected_error(&browser, &url, "invalid_request").await;
}

#[tokio::test]
async fn response_type_other_than_code_is_refused() {
    let browser = Browser::new().await;
    let url = browser.authorize_url(&pkce().challenge, &[("response_type", Some("token id_token"))]);
    assert_redirected_error(&browser, &url, "unsupported_response_type").await;
}

#[tokio::test]
async fn missing_response_type_is_an_invalid_request() {
    // RFC 6749 §4.1.2.1: a required parameter is missing; nothing unsupported was asked for.
    let browser = Browser::new().await;
    let url = browser.authorize_url(&pkce().challenge, &[("response_type", None)]);
    assert_redirected_error(&browser, &url, "invalid_request").await;
    let url = browser.authorize_url(&pkce().challenge, &[("response_type", Some(""))]);
    assert_redirected_error(&browser, &url, "invalid_request").await;
}

#[tokio::test]
async fn request_objects_are_refused_not_ignored() {
    let browser = Browser::new().await;
    // Unsigned (alg none) for brevity: the provider refuses request objects of any kind.
    let object = "eyJhbGciOiJub25lIn0.eyJwcm9tcHQiOiJsb2dpbiJ9.";
    let url = browser.authorize_url(&pkce().challenge, &[("request", Some(object))]);
    assert_redirected_error(&browser, &url, "request_not_supported").await;
    let url = browser.authorize_url(&pkce().challenge, &[("request_uri", Some("https://rp.example/request.jwt"))]);
    assert_redirected_error(&browser, &url, "request_uri_not_supported").await;
}

#[tokio::test]
async fn a_repeated_parameter_is_refused_and_a_repeated_client_or_redirect_uri_is_not_trusted() {
    // RFC 6749 §3.1: no parameter may be sent twice; which value was meant cannot be known.
    let browser = Browser::new().await;
    let url = browser.authorize_url(&pkce().challenge, &[]);
    for repeated in ["scope=openid", "nonce=another", "code_challenge_method=S256"] {
        assert_redirected_error(&browser, &format!("{url}&{repeated}"), "invalid_request").await;
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(url.split_once('?').unwrap().1).unwrap();
    let posted = browser
        .http
        .post(browser.provider.url("/authorize"))
        .form(&[form.as_slice(), &[("state".into(), "another".into())]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    assert_eq!(query(&location(&posted))["error"], "invalid_request", "POST /authorize too");

    for repeated in [format!("client_id={CLIENT_ID}"), "redirect_uri=https%3A%2F%2Fevil.example%2Fcallback".into()] {
        let response = browser.get(&format!("{url}&{repeated}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{repeated}");
        assert!(response.headers().get(LOCATION).is_none(), "{repeated}: nothing is redirected to");
        assert!(response.text().await.unwrap().contains("repeats"), "{repeated}");
    }
}

#[tokio::test]
async fn replayed_code_is_refused_and_its_tokens_revoked() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let first: Value = browser.exchange(&code, &pkce.verifier).await.json().await.unwrap();
    let access_token = first["access_token"].as_str().unwrap();
    assert_eq!(browser.userinfo(access_token).await.status(), StatusCode::OK);

    let replay = browser.exchange(&code, &pkce.verifier).await;
    assert_eq!(error_of(replay).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    let after = browser.userinfo(access_token).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "the first exchange's token is revoked");
    assert!(after.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let browser = Browser::new().await;
    for uri in
        ["https://evil.example/callback", "http://localhost:3000/auth/callback/extra", "http://localhost:3000/auth/"]
    {
        let url = browser.authorize_url(&pkce().challenge, &[("redirect_uri", Some(uri))]);
        let response = browser.get(&url).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert!(response.headers().get(LOCATION).is_none());
        assert!(response.text().await.unwrap().contains("redirect_uri"));
    }
}

#[tokio::test]
async fn redirect_uri_differing_at_the_token_endpoint_is_refused() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let response = browser
        .token(
            Some((CLIENT_ID, CLIENT_SECRET)),
            &code,
            &pkce.verifier,
            &[("redirect_uri", Some("http://localhost:3000/other"))],
        )
        .await;
    assert_eq!(error_of(response).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
}

#[tokio::test]
async fn unknown_client_gets_an_error_page_not_a_redirect() {
    let browser = Browser::new().await;
    let url = browser.authorize_url(&pkce().challenge, &[("client_id", Some("intruder"))]);
    let response = browser.get(&url).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());
    assert!(response.text().await.unwrap().contains("unknown client"));
}

#[tokio::test]
async fn bad_client_secret_is_refused() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let response = browser.token(Some((CLIENT_ID, "not-the-secret")), &code, &pkce.verifier, &[]).await;
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(error_of(response).await, (StatusCode::UNAUTHORIZED, "invalid_client".into()));
}

#[tokio::test]
async fn confidential_client_without_a_secret_is_refused() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let response = browser.token(None, &code, &pkce.verifier, &[("client_id", Some(CLIENT_ID))]).await;
    assert_eq!(error_of(response).await, (StatusCode::UNAUTHORIZED, "invalid_client".into()));
}

#[tokio::test]
async fn client_secret_post_is_accepted() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let response = browser
        .token(None, &code, &pkce.verifier, &[("client_id", Some(CLIENT_ID)), ("client_secret", Some(CLIENT_SECRET))])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn public_client_authenticates_with_pkce_alone() {
    let browser = Browser::new().await;
    let pkce = pkce();
    let url = browser.authorize_url(
        &pkce.challenge,
        &[("client_id", Some(PUBLIC_CLIENT_ID)), ("redirect_uri", Some(PUBLIC_REDIRECT_URI))],
    );
    let code = query(&location(&browser.sign_in(&url).await))["code"].clone();
    let changes = [("client_id", Some(PUBLIC_CLIENT_ID)), ("redirect_uri", Some(PUBLIC_REDIRECT_URI))];
    let response = browser.token(None, &code, &pkce.verifier, &changes).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// RFC 6749 §4.1.3: the code must have been issued to the client presenting it. Another client's
/// attempt changes nothing: it neither uses the code up nor, once used, revokes its tokens.
#[tokio::test]
async fn code_presented_by_another_client_is_refused_and_changes_nothing() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let by_another = || browser.token(None, &code, &pkce.verifier, &[("client_id", Some(PUBLIC_CLIENT_ID))]);
    assert_eq!(error_of(by_another().await).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));

    let tokens = browser.exchange(&code, &pkce.verifier).await;
    assert_eq!(tokens.status(), StatusCode::OK, "not used up by the other client");
    let tokens: Value = tokens.json().await.unwrap();
    assert_eq!(error_of(by_another().await).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(browser.userinfo(access_token).await.status(), StatusCode::OK, "not revoked as a replay");
}

/// A code whose provider session ended before it was exchanged: the session's clients were told
/// (back-channel logout), and a client given tokens of it now would never be.
#[tokio::test]
async fn code_of_a_provider_session_that_has_ended_is_refused() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let ended = browser
        .http
        .post(browser.provider.url("/admin/users/248289761001/end-session?backchannel=false"))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    assert_eq!(
        error_of(browser.exchange(&code, &pkce.verifier).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

#[tokio::test]
async fn expired_code_is_refused() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    browser.provider.clock.advance(61);
    let (status, error) = error_of(browser.exchange(&code, &pkce.verifier).await).await;
    assert_eq!((status, error.as_str()), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn code_just_inside_its_lifetime_is_accepted() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    browser.provider.clock.advance(59);
    assert_eq!(browser.exchange(&code, &pkce.verifier).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn expired_access_token_is_refused_at_userinfo() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let tokens: Value = browser.exchange(&code, &pkce.verifier).await.json().await.unwrap();
    browser.provider.clock.advance(61);
    let response = browser.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn userinfo_without_a_token_gets_a_challenge_without_an_error_code() {
    // RFC 6750 §3.1: a request without any authentication SHOULD NOT carry an error code; a
    // bad token does.
    let browser = Browser::new().await;
    let challenge = |response: &reqwest::Response| response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let url = browser.provider.url("/userinfo");
    let bare = browser.http.get(&url).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&bare), "Bearer");
    let other_scheme = browser.http.get(&url).basic_auth("alice", Some("wonderland")).send().await.unwrap();
    assert_eq!(other_scheme.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&other_scheme), "Bearer");
    let bad = browser.userinfo("not-a-jwt").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&bad).starts_with(r#"Bearer error="invalid_token""#), "{}", challenge(&bad));
}

#[tokio::test]
async fn id_token_is_not_accepted_as_an_access_token() {
    let browser = Browser::new().await;
    let (code, pkce) = browser.code().await;
    let tokens: Value = browser.exchange(&code, &pkce.verifier).await.json().await.unwrap();
    let response = browser.userinfo(tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn provider_session_is_reused_unless_prompt_is_login_or_select_account() {
    let browser = Browser::new().await;
    browser.code().await;
    // Signed in at the provider: a second request gets a code straight away.
    let again = browser.get(&browser.authorize_url(&pkce().challenge, &[])).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert!(query(&location(&again)).contains_key("code"));
    // prompt=login asks for the password again; prompt=select_account shows the same form, where
    // the user chooses the account by signing in as it (OIDC Core §3.1.2.1).
    for prompt in ["login", "select_account"] {
        let forced = browser.get(&browser.authorize_url(&pkce().challenge, &[("prompt", Some(prompt))])).await;
        assert_eq!(forced.status(), StatusCode::OK, "{prompt}");
        assert!(interaction_id(&forced.text().await.unwrap()).is_some(), "{prompt}");
    }
}

#[tokio::test]
async fn cancelled_sign_in_answers_access_denied() {
    let browser = Browser::new().await;
    let page = browser.get(&browser.authorize_url(&pkce().challenge, &[])).await.text().await.unwrap();
    let response = browser
        .http
        .post(browser.provider.url("/login"))
        .form(&[("interaction", interaction_id(&page).unwrap().as_str()), ("action", "cancel")])
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&response))["error"], "access_denied");
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_without_a_code() {
    let browser = Browser::new().await;
    let page = browser.get(&browser.authorize_url(&pkce().challenge, &[])).await.text().await.unwrap();
    let response = browser
        .http
        .post(browser.provider.url("/login"))
        .form(&[("interaction", interaction_id(&page).unwrap().as_str()), ("username", "alice"), ("password", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("Wrong username or password"));
}

#[tokio::test]
async fn sign_in_posted_from_another_browser_is_refused() {
    let browser = Browser::new().await;
    let page = browser.get(&browser.authorize_url(&pkce().challenge, &[])).await.text().await.unwrap();
    // A cross-site form post carries no SameSite=Lax cookie: the interaction is not this browser's.
    let stranger = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let response = stranger
        .post(browser.provider.url("/login"))
        .form(&[
            ("interaction", interaction_id(&page).unwrap().as_str()),
            ("username", "alice"),
            ("password", "wonderland"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());
}

#[tokio::test]
async fn authorization_request_may_be_posted() {
    let browser = Browser::new().await;
    let pkce = pkce();
    let url = browser.authorize_url(&pkce.challenge, &[]);
    let (endpoint, query) = url.split_once('?').unwrap();
    let response = browser
        .http
        .post(endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(interaction_id(&response.text().await.unwrap()).is_some(), "the sign-in form is shown");
}

#[tokio::test]
async fn malformed_max_age_is_an_invalid_request_at_the_redirect_uri() {
    let browser = Browser::new().await;
    for value in ["abc", "-1", "1.5"] {
        let url = browser.authorize_url(&pkce().challenge, &[("max_age", Some(value))]);
        assert_redirected_error(&browser, &url, "invalid_request").await;
    }
}

#[tokio::test]
async fn max_age_zero_always_asks_for_the_password_again() {
    // OIDC Core 1.0 errata: max_age=0 is equivalent to prompt=login. The clock has not moved
    // since the sign-in, so a check of the elapsed time alone would take 0 <= 0 as fresh.
    let browser = Browser::new().await;
    browser.code().await;
    let again = browser.get(&browser.authorize_url(&pkce().challenge, &[("max_age", Some("0"))])).await;
    assert_eq!(again.status(), StatusCode::OK, "the sign-in form again");
    assert!(interaction_id(&again.text().await.unwrap()).is_some());
    let silent = browser.authorize_url(&pkce().challenge, &[("max_age", Some("0")), ("prompt", Some("none"))]);
    assert_redirected_error(&browser, &silent, "login_required").await;
}

#[tokio::test]
async fn max_age_older_than_the_provider_session_asks_for_the_password_again() {
    let browser = Browser::new().await;
    browser.code().await;
    browser.provider.clock.advance(120);
    let fresh_enough = browser.get(&browser.authorize_url(&pkce().challenge, &[("max_age", Some("300"))])).await;
    assert_eq!(fresh_enough.status(), StatusCode::SEE_OTHER, "a 2-minute-old sign-in satisfies max_age=300");
    let too_old = browser.get(&browser.authorize_url(&pkce().challenge, &[("max_age", Some("60"))])).await;
    assert_eq!(too_old.status(), StatusCode::OK, "the sign-in form again");
    let silent = browser.authorize_url(&pkce().challenge, &[("max_age", Some("60")), ("prompt", Some("none"))]);
    assert_redirected_error(&browser, &silent, "login_required").await;
}

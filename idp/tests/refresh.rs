//! Refresh tokens, revocation, rotating signing keys and the admin API, against a live provider
//! over HTTP: rotation (RFC 9700 §4.14.2), reuse detection, the grace window, idle and absolute
//! lifetimes, `offline_access` (OIDC Core §11), refreshed ID tokens (OIDC Core §12.2), RFC 7009
//! revocation, and key rotation (OIDC Core §10.1.1). Time moves with the provider's clock.

use std::collections::HashMap;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use idp::{
    testing::{es256_kids, interaction_id, TestProvider},
    ProviderConfig,
};
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::{header::LOCATION, redirect::Policy, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ALICE: &str = "248289761001";

struct Client {
    id: &'static str,
    secret: Option<&'static str>,
    redirect_uri: &'static str,
}

const DEMO_APP: Client =
    Client { id: "demo-app", secret: Some("demo-app-secret"), redirect_uri: "http://localhost:3000/auth/callback" };
const DEMO_SPA: Client = Client { id: "demo-spa", secret: None, redirect_uri: "http://localhost:3000/spa/callback" };

const OFFLINE: &str = "openid profile email offline_access";

/// One browser, signed in as alice after the first sign-in, and the relying parties' back
/// channel, against a fresh provider.
struct Rp {
    http: reqwest::Client,
    provider: TestProvider,
}

fn client_mut<'a>(config: &'a mut ProviderConfig, id: &str) -> &'a mut idp::config::ClientConfig {
    config.clients.iter_mut().find(|c| c.client_id == id).expect("a registered client")
}

impl Rp {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(adjust: impl FnOnce(&mut ProviderConfig)) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        Self { http, provider: TestProvider::start(adjust).await }
    }

    fn advance(&self, secs: u64) {
        self.provider.clock.advance(secs);
    }

    /// Runs the code flow for `client` with `scope` and returns the token response.
    async fn sign_in(&self, client: &Client, scope: &str) -> Value {
        let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let params = [
            ("response_type", "code"),
            ("client_id", client.id),
            ("redirect_uri", client.redirect_uri),
            ("scope", scope),
            ("state", "state-1"),
            ("nonce", "nonce-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        let url = format!("{}?{}", self.provider.url("/authorize"), serde_urlencoded::to_string(params).unwrap());
        let mut response = self.http.get(&url).send().await.unwrap();
        if response.status() == StatusCode::OK {
            let interaction = interaction_id(&response.text().await.unwrap()).expect("the sign-in form");
            let form = [("interaction", interaction.as_str()), ("username", "alice"), ("password", "wonderland")];
            response = self.http.post(self.provider.url("/login")).form(&form).send().await.unwrap();
        }
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()[LOCATION].to_str().unwrap();
        let query: HashMap<String, String> = url::Url::parse(location).unwrap().query_pairs().into_owned().collect();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", client.redirect_uri),
            ("code_verifier", &verifier),
        ];
        let response = self.post_as(client, "/token", &form).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Signs in as demo-app with `offline_access` and returns its first refresh token.
    async fn family(&self) -> String {
        refresh_token_of(&self.sign_in(&DEMO_APP, OFFLINE).await)
    }

    /// Posts `form` to `path`, authenticated as `client` would at the token endpoint.
    async fn post_as(&self, client: &Client, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut form = form.to_vec();
        let mut request = self.http.post(self.provider.url(path));
        match client.secret {
            Some(secret) => request = request.basic_auth(client.id, Some(secret)),
            None => form.push(("client_id", client.id)),
        }
        request.form(&form).send().await.unwrap()
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.refresh_as(&DEMO_APP, refresh_token).await
    }

    async fn refresh_as(&self, client: &Client, refresh_token: &str) -> reqwest::Response {
        self.post_as(client, "/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    /// A refresh that must succeed; returns the token response.
    async fn refreshed(&self, refresh_token: &str) -> Value {
        let response = self.refresh(refresh_token).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    }

    /// A refresh that must be refused with `invalid_grant`; returns its description.
    async fn refused(&self, refresh_token: &str) -> String {
        invalid_grant(self.refresh(refresh_token).await).await
    }

    async fn userinfo(&self, access_token: &str) -> StatusCode {
        self.http.get(self.provider.url("/userinfo")).bearer_auth(access_token).send().await.unwrap().status()
    }

    async fn revoke(&self, client: &Client, token: &str, hint: Option<&str>) -> reqwest::Response {
        let mut form = vec![("token", token)];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        self.post_as(client, "/revoke", &form).await
    }

    async fn admin_get(&self, path: &str) -> Value {
        let response = self.http.get(self.provider.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn admin_post(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.post(self.provider.url(path)).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn metrics(&self) -> Value {
        self.admin_get("/admin/metrics").await
    }

    async fn families(&self, sub: &str) -> Vec<Value> {
        self.admin_get(&format!("/admin/users/{sub}/families")).await["families"].as_array().unwrap().clone()
    }

    async fn jwks(&self) -> Value {
        self.http.get(self.provider.url("/jwks")).send().await.unwrap().json().await.unwrap()
    }

    /// Verifies an ID token for demo-app with the published key its `kid` names, and returns
    /// its claims and that `kid`.
    async fn verified_id_token(&self, id_token: &str) -> (Value, String) {
        let kid = jsonwebtoken::decode_header(id_token).unwrap().kid.expect("a kid");
        let jwks = self.jwks().await;
        let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).expect("kid published");
        let key = DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap()).unwrap();
        let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[DEMO_APP.id]);
        validation.set_issuer(&[&self.provider.issuer]);
        (jsonwebtoken::decode::<Value>(id_token, &key, &validation).unwrap().claims, kid)
    }
}

fn refresh_token_of(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().expect("a refresh token").to_owned()
}

fn access_token_of(tokens: &Value) -> String {
    tokens["access_token"].as_str().expect("an access token").to_owned()
}

async fn invalid_grant(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

/// Asserts that `description` names exactly the `expected` case among the four.
fn assert_case(description: &str, expected: &str) {
    let named: Vec<&str> =
        ["unknown", "expired", "revoked", "reused"].into_iter().filter(|word| description.contains(word)).collect();
    assert_eq!(named, [expected], "{description}");
}

/// Rotates `first` `times` times; returns every token of the chain, the current one last, and
/// the access token of each response.
async fn rotate(rp: &Rp, first: String, times: usize) -> (Vec<String>, Vec<String>) {
    let mut chain = vec![first];
    let mut access_tokens = Vec::new();
    for _ in 0..times {
        let tokens = rp.refreshed(chain.last().unwrap()).await;
        let next = refresh_token_of(&tokens);
        assert!(!chain.contains(&next), "every rotation issues a new token");
        chain.push(next);
        access_tokens.push(access_token_of(&tokens));
    }
    (chain, access_tokens)
}

#[tokio::test]
async fn discovery_advertises_the_refresh_grant_offline_access_and_revocation() {
    let rp = Rp::new().await;
    let metadata = rp.admin_get("/.well-known/openid-configuration").await;
    assert_eq!(metadata["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
    assert!(metadata["scopes_supported"].as_array().unwrap().contains(&json!("offline_access")));
    assert_eq!(metadata["revocation_endpoint"], format!("{}/revoke", rp.provider.issuer));
    assert_eq!(
        metadata["revocation_endpoint_auth_methods_supported"],
        metadata["token_endpoint_auth_methods_supported"]
    );
}

#[tokio::test]
async fn offline_access_yields_a_refresh_token_and_is_listed_in_the_scope() {
    let rp = Rp::new().await;
    let tokens = rp.sign_in(&DEMO_APP, OFFLINE).await;
    assert_eq!(tokens["scope"], OFFLINE);
    assert!(tokens["refresh_token"].is_string());

    let without = rp.sign_in(&DEMO_APP, "openid profile").await;
    assert!(without.get("refresh_token").is_none(), "not requested, not granted");
}

#[tokio::test]
async fn offline_access_is_dropped_for_a_client_not_registered_for_it() {
    let rp = Rp::with(|config| client_mut(config, "demo-app").offline_access = false).await;
    let tokens = rp.sign_in(&DEMO_APP, OFFLINE).await;
    assert_eq!(tokens["scope"], "openid profile email");
    assert!(tokens.get("refresh_token").is_none());

    let response = rp.refresh("any-token").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "unauthorized_client");
}

#[tokio::test]
async fn refresh_returns_new_tokens_and_an_id_token_of_the_same_authentication_without_nonce() {
    let rp = Rp::new().await;
    let first = rp.sign_in(&DEMO_APP, OFFLINE).await;
    rp.advance(10);
    assert_eq!(first["refresh_expires_in"], 28800, "the idle lifetime, sooner than the absolute one");
    let refreshed = rp.refreshed(&refresh_token_of(&first)).await;
    assert_eq!(refreshed["token_type"], "Bearer");
    assert_eq!(refreshed["expires_in"], 60);
    assert_eq!(refreshed["scope"], OFFLINE);
    assert_ne!(refreshed["access_token"], first["access_token"]);
    assert_eq!(rp.userinfo(&access_token_of(&refreshed)).await, StatusCode::OK);

    let (original, _) = rp.verified_id_token(first["id_token"].as_str().unwrap()).await;
    let (renewed, _) = rp.verified_id_token(refreshed["id_token"].as_str().expect("an ID token")).await;
    for claim in ["iss", "sub", "aud", "azp", "auth_time", "sid"] {
        assert_eq!(renewed[claim], original[claim], "{claim} is that of the original ID token");
    }
    assert_eq!(original["nonce"], "nonce-1");
    assert!(renewed.get("nonce").is_none(), "a refreshed ID token has no nonce");
    assert_eq!(renewed["iat"].as_u64().unwrap(), original["iat"].as_u64().unwrap() + 10);
    assert_eq!(renewed["exp"].as_u64().unwrap(), renewed["iat"].as_u64().unwrap() + 300);
}

#[tokio::test]
async fn twenty_rotations_each_retire_the_previous_token() {
    let rp = Rp::new().await;
    let (chain, _) = rotate(&rp, rp.family().await, 20).await;
    assert_eq!(chain.len(), 21);
    // The first retired token to come back is reuse; from then on the family is revoked.
    assert_case(&rp.refused(&chain[0]).await, "reused");
    for retired in &chain[1..20] {
        assert_case(&rp.refused(retired).await, "revoked");
    }
    assert_case(&rp.refused(&chain[20]).await, "revoked");
}

/// Rotates a family five times, presents the retired token at `index`, and checks that the
/// whole family is gone: its current refresh token and every access token issued from it.
async fn assert_reuse_revokes_the_family(index: usize) {
    let rp = Rp::new().await;
    let first = rp.sign_in(&DEMO_APP, OFFLINE).await;
    let (chain, mut access_tokens) = rotate(&rp, refresh_token_of(&first), 5).await;
    access_tokens.push(access_token_of(&first));
    for access_token in &access_tokens {
        assert_eq!(rp.userinfo(access_token).await, StatusCode::OK);
    }

    assert_case(&rp.refused(&chain[index]).await, "reused");
    assert_case(&rp.refused(chain.last().unwrap()).await, "revoked");
    for access_token in &access_tokens {
        assert_eq!(rp.userinfo(access_token).await, StatusCode::UNAUTHORIZED, "the family's access tokens are revoked");
    }
    let metrics = rp.metrics().await;
    assert_eq!((metrics["refresh_tokens_reused"].as_u64(), metrics["families_revoked"].as_u64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn reusing_the_first_retired_token_revokes_the_whole_family() {
    assert_reuse_revokes_the_family(0).await;
}

#[tokio::test]
async fn reusing_a_middle_retired_token_revokes_the_whole_family() {
    assert_reuse_revokes_the_family(2).await;
}

#[tokio::test]
async fn reusing_the_newest_retired_token_revokes_the_whole_family() {
    assert_reuse_revokes_the_family(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_refreshes_with_one_token_have_exactly_one_winner() {
    let rp = Rp::new().await;
    let token = rp.family().await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let http = rp.http.clone();
        let url = rp.provider.url("/token");
        let token = token.clone();
        requests.spawn(async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
            let response = http.post(url).basic_auth(DEMO_APP.id, DEMO_APP.secret).form(&form).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        });
    }
    let mut granted = 0;
    let mut refused = 0;
    while let Some(result) = requests.join_next().await {
        let (status, body) = result.unwrap();
        match status {
            StatusCode::OK => granted += 1,
            StatusCode::BAD_REQUEST if body["error"] == "invalid_grant" => refused += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((granted, refused), (1, 49));
}

async fn with_grace(secs: u64) -> Rp {
    Rp::with(|config| client_mut(config, "demo-app").refresh_reuse_grace_secs = secs).await
}

#[tokio::test]
async fn inside_the_grace_window_the_newest_retired_token_gets_the_same_successor() {
    let rp = with_grace(30).await;
    let first = rp.family().await;
    let rotated = rp.refreshed(&first).await;
    let successor = refresh_token_of(&rotated);
    rp.advance(29);

    let retry = rp.refreshed(&first).await;
    assert_eq!(refresh_token_of(&retry), successor, "the same successor again");
    assert_ne!(retry["access_token"], rotated["access_token"], "and a fresh access token");
    assert_eq!(rp.userinfo(&access_token_of(&retry)).await, StatusCode::OK);
    assert_eq!(rp.metrics().await["refresh_grace_reissues"], 1);
    assert_eq!(rp.metrics().await["refresh_tokens_reused"], 0);

    // The family lives on: the successor rotates as usual.
    let next = rp.refreshed(&successor).await;
    assert_ne!(refresh_token_of(&next), successor);
}

#[tokio::test]
async fn after_the_grace_window_a_retired_token_is_reuse() {
    let rp = with_grace(30).await;
    let first = rp.family().await;
    let successor = refresh_token_of(&rp.refreshed(&first).await);
    rp.advance(30);
    assert_case(&rp.refused(&first).await, "reused");
    assert_case(&rp.refused(&successor).await, "revoked");
}

#[tokio::test]
async fn an_older_retired_token_is_reuse_even_inside_the_grace_window() {
    let rp = with_grace(30).await;
    let (chain, _) = rotate(&rp, rp.family().await, 2).await;
    assert_case(&rp.refused(&chain[0]).await, "reused");
    assert_case(&rp.refused(&chain[2]).await, "revoked");
}

#[tokio::test]
async fn a_refresh_token_unused_for_its_idle_lifetime_has_expired() {
    let rp = Rp::new().await;
    let first = rp.family().await;
    rp.advance(28799);
    let second = refresh_token_of(&rp.refreshed(&first).await);
    rp.advance(28800);
    assert_case(&rp.refused(&second).await, "expired");
    assert_eq!(rp.metrics().await["families_revoked"], 0, "expiry revokes nothing");
}

#[tokio::test]
async fn rotation_does_not_extend_the_absolute_lifetime_and_expiry_is_not_reuse() {
    let rp = Rp::new().await;
    let first = rp.family().await;
    let mut current = first.clone();
    // Well inside the idle lifetime each time, three times over: 84,000 s after sign-in. Each
    // answer says how long the new token stays usable: the idle lifetime (28,800 s), until the
    // family's absolute end (86,400 s after sign-in) comes sooner.
    for left in [28800, 28800, 2400] {
        rp.advance(28000);
        let refreshed = rp.refreshed(&current).await;
        assert_eq!(refreshed["refresh_expires_in"], left);
        current = refresh_token_of(&refreshed);
    }
    rp.advance(2400);
    assert_case(&rp.refused(&current).await, "expired");
    assert_case(&rp.refused(&first).await, "expired");
    let metrics = rp.metrics().await;
    assert_eq!((metrics["refresh_tokens_reused"].as_u64(), metrics["families_revoked"].as_u64()), (Some(0), Some(0)));
    let family = &rp.families(ALICE).await[0];
    assert_eq!(family["expires_at"].as_u64().unwrap(), family["created_at"].as_u64().unwrap() + 86400);
    assert_eq!(family["active"], false);
}

#[tokio::test]
async fn without_rotation_the_refresh_token_is_not_returned_and_stays_valid() {
    let rp = Rp::with(|config| client_mut(config, "demo-app").rotate_refresh_tokens = false).await;
    let token = rp.family().await;
    for _ in 0..3 {
        rp.advance(60);
        let tokens = rp.refreshed(&token).await;
        assert!(tokens.get("refresh_token").is_none(), "no refresh_token member: {tokens}");
        assert!(tokens["id_token"].is_string());
    }
    // The idle lifetime still applies, counted from the last use.
    rp.advance(28800);
    assert_case(&rp.refused(&token).await, "expired");
}

#[tokio::test]
async fn scope_may_narrow_on_refresh_but_never_widen() {
    let rp = Rp::new().await;
    let token = rp.family().await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str()), ("scope", "openid phone")];
    let widened = rp.post_as(&DEMO_APP, "/token", &form).await;
    assert_eq!(widened.status(), StatusCode::BAD_REQUEST);
    assert_eq!(widened.json::<Value>().await.unwrap()["error"], "invalid_scope");

    // The refused request did not consume the token.
    let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str()), ("scope", "openid")];
    let narrowed = rp.post_as(&DEMO_APP, "/token", &form).await;
    assert_eq!(narrowed.status(), StatusCode::OK);
    let narrowed: Value = narrowed.json().await.unwrap();
    assert_eq!(narrowed["scope"], "openid");
    let userinfo: Value = rp
        .http
        .get(rp.provider.url("/userinfo"))
        .bearer_auth(access_token_of(&narrowed))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(userinfo.get("email").is_none(), "the narrowed access token releases no email: {userinfo}");
    // The family keeps its scope: the next refresh without `scope` has all of it.
    let whole = rp.refreshed(&refresh_token_of(&narrowed)).await;
    assert_eq!(whole["scope"], OFFLINE);

    // Narrowed to leave `openid` out: a valid token, but not for userinfo (OIDC Core §5.3).
    let token = refresh_token_of(&whole);
    let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str()), ("scope", "offline_access")];
    let without_openid: Value = rp.post_as(&DEMO_APP, "/token", &form).await.json().await.unwrap();
    assert_eq!(without_openid["scope"], "offline_access", "{without_openid}");
    let refused =
        rp.http.get(rp.provider.url("/userinfo")).bearer_auth(access_token_of(&without_openid)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="insufficient_scope""#));
}

#[tokio::test]
async fn a_public_client_refreshes_with_its_client_id_alone() {
    let rp = Rp::new().await;
    let first = refresh_token_of(&rp.sign_in(&DEMO_SPA, OFFLINE).await);
    let response = rp.refresh_as(&DEMO_SPA, &first).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second = refresh_token_of(&response.json().await.unwrap());
    assert_case(&invalid_grant(rp.refresh_as(&DEMO_SPA, &first).await).await, "reused");
    assert_case(&invalid_grant(rp.refresh_as(&DEMO_SPA, &second).await).await, "revoked");
}

#[tokio::test]
async fn every_invalid_grant_description_names_its_case() {
    let rp = Rp::new().await;
    assert_case(&rp.refused("a-token-this-provider-never-issued").await, "unknown");

    let app_token = rp.family().await;
    let other_client = invalid_grant(rp.refresh_as(&DEMO_SPA, &app_token).await).await;
    assert!(other_client.contains("issued to another client"), "{other_client}");

    let retired = rp.family().await;
    let current = refresh_token_of(&rp.refreshed(&retired).await);
    assert_case(&rp.refused(&retired).await, "reused");
    assert_case(&rp.refused(&current).await, "revoked");

    let revoked = rp.family().await;
    assert_eq!(rp.revoke(&DEMO_APP, &revoked, Some("refresh_token")).await.status(), StatusCode::OK);
    assert_case(&rp.refused(&revoked).await, "revoked");

    rp.advance(28800);
    assert_case(&rp.refused(&app_token).await, "expired");
}

#[tokio::test]
async fn a_replayed_code_revokes_the_refresh_token_family_it_started() {
    let rp = Rp::new().await;
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let params = [
        ("response_type", "code"),
        ("client_id", DEMO_APP.id),
        ("redirect_uri", DEMO_APP.redirect_uri),
        ("scope", OFFLINE),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    // Signed in once already, the browser gets its code straight away the second time.
    rp.family().await;
    let url = format!("{}?{}", rp.provider.url("/authorize"), serde_urlencoded::to_string(params).unwrap());
    let response = rp.http.get(&url).send().await.unwrap();
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", DEMO_APP.redirect_uri),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens: Value = rp.post_as(&DEMO_APP, "/token", &form).await.json().await.unwrap();
    let replay = rp.post_as(&DEMO_APP, "/token", &form).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_case(&rp.refused(&refresh_token_of(&tokens)).await, "revoked");
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family_and_its_access_tokens() {
    let rp = Rp::new().await;
    let first = rp.sign_in(&DEMO_APP, OFFLINE).await;
    let (chain, access_tokens) = rotate(&rp, refresh_token_of(&first), 2).await;
    // A retired token identifies the family as well as the current one.
    let response = rp.revoke(&DEMO_APP, &chain[0], None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.text().await.unwrap().is_empty());
    assert_case(&rp.refused(&chain[2]).await, "revoked");
    for access_token in access_tokens.iter().chain([&access_token_of(&first)]) {
        assert_eq!(rp.userinfo(access_token).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(rp.families(ALICE).await[0]["revoked_reason"], "revocation");
    assert_eq!(rp.metrics().await["refresh_tokens_reused"], 0, "a revocation is not a reuse");
}

#[tokio::test]
async fn revoking_an_access_token_refuses_it_at_userinfo_and_leaves_the_family() {
    let rp = Rp::new().await;
    let tokens = rp.sign_in(&DEMO_APP, OFFLINE).await;
    let access_token = access_token_of(&tokens);
    // The hint is only a hint: a wrong one still finds the token.
    assert_eq!(rp.revoke(&DEMO_APP, &access_token, Some("refresh_token")).await.status(), StatusCode::OK);
    assert_eq!(rp.userinfo(&access_token).await, StatusCode::UNAUTHORIZED);
    let refreshed = rp.refreshed(&refresh_token_of(&tokens)).await;
    assert_eq!(rp.userinfo(&access_token_of(&refreshed)).await, StatusCode::OK);
}

#[tokio::test]
async fn revoking_an_unknown_token_answers_200() {
    let rp = Rp::new().await;
    for hint in [None, Some("refresh_token"), Some("access_token"), Some("something_else")] {
        let response = rp.revoke(&DEMO_APP, "never-issued", hint).await;
        assert_eq!(response.status(), StatusCode::OK, "{hint:?}");
        assert!(response.text().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn revoking_another_clients_tokens_answers_200_and_changes_nothing() {
    let rp = Rp::new().await;
    let tokens = rp.sign_in(&DEMO_APP, OFFLINE).await;
    for token in [refresh_token_of(&tokens), access_token_of(&tokens)] {
        assert_eq!(rp.revoke(&DEMO_SPA, &token, None).await.status(), StatusCode::OK);
    }
    assert_eq!(rp.userinfo(&access_token_of(&tokens)).await, StatusCode::OK);
    rp.refreshed(&refresh_token_of(&tokens)).await;
}

#[tokio::test]
async fn revocation_requires_client_authentication_and_a_token() {
    let rp = Rp::new().await;
    let token = rp.family().await;
    let wrong_secret = rp
        .http
        .post(rp.provider.url("/revoke"))
        .basic_auth(DEMO_APP.id, Some("not-the-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_secret.json::<Value>().await.unwrap()["error"], "invalid_client");
    rp.refreshed(&token).await;

    let missing = rp.post_as(&DEMO_APP, "/revoke", &[("token_type_hint", "refresh_token")]).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn admin_metrics_count_token_requests_reuse_revocations_and_jwks_requests() {
    let rp = Rp::new().await;
    let zero = rp.metrics().await;
    assert_eq!(
        zero,
        json!({
            "token_requests": { "authorization_code": 0, "refresh_token": 0 },
            "authorize_requests": {
                "default": 0, "none": 0, "login": 0, "consent": 0, "login consent": 0, "invalid": 0,
            },
            "refresh_tokens_reused": 0, "families_revoked": 0, "refresh_grace_reissues": 0, "jwks_requests": 0,
            "backchannel_logouts": { "sent": 0, "delivered": 0, "failed": 0, "retries": 0 },
        })
    );

    let first = rp.family().await; // authorization_code 1
    let second = refresh_token_of(&rp.refreshed(&first).await); // refresh_token 1
    rp.refused(&first).await; // refresh_token 2: reused, family revoked
    rp.refused(&second).await; // refresh_token 3: revoked
    let other = rp.family().await; // authorization_code 2
    rp.revoke(&DEMO_APP, &other, None).await; // family revoked
    let password = rp.post_as(&DEMO_APP, "/token", &[("grant_type", "password")]).await;
    assert_eq!(password.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    rp.jwks().await;
    rp.jwks().await;

    let metrics = rp.metrics().await;
    assert_eq!(metrics["token_requests"], json!({ "authorization_code": 2, "refresh_token": 3, "password": 1 }));
    assert_eq!(metrics["refresh_tokens_reused"], 1);
    assert_eq!(metrics["families_revoked"], 2);
    assert_eq!(metrics["refresh_grace_reissues"], 0);
    assert_eq!(metrics["jwks_requests"], 2);
}

#[tokio::test]
async fn admin_lists_a_users_families_newest_first_with_their_state() {
    let rp = Rp::new().await;
    assert!(rp.families(ALICE).await.is_empty());
    let older = rp.family().await;
    rotate(&rp, older, 2).await;
    rp.advance(5);
    rp.family().await;

    let families = rp.families(ALICE).await;
    assert_eq!(families.len(), 2);
    let (newest, oldest) = (&families[0], &families[1]);
    assert_eq!(newest["rotations"], 0);
    assert_eq!(oldest["rotations"], 2);
    assert_eq!(newest["created_at"].as_u64().unwrap(), oldest["created_at"].as_u64().unwrap() + 5);
    for family in &families {
        assert_eq!(family["client_id"], "demo-app");
        assert_eq!(family["sub"], ALICE);
        assert_eq!(family["active"], true);
        assert_eq!(family["revoked_reason"], Value::Null);
        assert_eq!(family["expires_at"].as_u64().unwrap(), family["created_at"].as_u64().unwrap() + 86400);
        assert!(family["last_used_at"].as_u64().unwrap() >= family["created_at"].as_u64().unwrap());
        assert!(family["id"].is_string());
    }
    assert!(rp.families("248289761002").await.is_empty(), "bob has none");
}

#[tokio::test]
async fn admin_revokes_a_family_by_id() {
    let rp = Rp::new().await;
    let token = rp.family().await;
    let id = rp.families(ALICE).await[0]["id"].as_str().unwrap().to_owned();

    let (status, body) = rp.admin_post(&format!("/admin/families/{id}/revoke")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "revoked": true })));
    assert_case(&rp.refused(&token).await, "revoked");
    let family = &rp.families(ALICE).await[0];
    assert_eq!((family["active"].as_bool(), family["revoked_reason"].as_str()), (Some(false), Some("admin")));
    assert_eq!(rp.metrics().await["families_revoked"], 1);

    for unknown in ["0123456789abcdef", "not-an-id"] {
        let (status, body) = rp.admin_post(&format!("/admin/families/{unknown}/revoke")).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({ "error": "unknown family" })));
    }
}

#[tokio::test]
async fn admin_simulated_reuse_goes_through_the_refresh_grant_and_revokes_the_family() {
    let rp = Rp::new().await;
    let path = format!("/admin/users/{ALICE}/simulate-reuse");
    assert_eq!(rp.admin_post(&path).await.0, StatusCode::NOT_FOUND, "no family yet");

    let first = rp.family().await;
    let (status, body) = rp.admin_post(&path).await;
    assert_eq!((status, body), (StatusCode::CONFLICT, json!({ "error": "the family has not rotated yet" })));

    let current = refresh_token_of(&rp.refreshed(&first).await);
    let id = rp.families(ALICE).await[0]["id"].clone();
    let (status, body) = rp.admin_post(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["family"], id);
    assert_eq!(body["error"], "invalid_grant");
    assert_case(body["error_description"].as_str().unwrap(), "reused");

    assert_case(&rp.refused(&current).await, "revoked");
    assert_eq!(rp.families(ALICE).await[0]["revoked_reason"], "reuse");
    let metrics = rp.metrics().await;
    assert_eq!((metrics["refresh_tokens_reused"].as_u64(), metrics["families_revoked"].as_u64()), (Some(1), Some(1)));
    assert_eq!(rp.admin_post(&path).await.0, StatusCode::NOT_FOUND, "no active family any more");
}

#[tokio::test]
async fn admin_key_rotation_keeps_the_old_key_published_until_its_tokens_expire() {
    let rp = Rp::new().await;
    let before = rp.sign_in(&DEMO_APP, OFFLINE).await;
    let (_, old_kid) = rp.verified_id_token(before["id_token"].as_str().unwrap()).await;

    let (status, rotation) = rp.admin_post("/admin/keys/rotate").await;
    assert_eq!(status, StatusCode::OK);
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotation["kids"], json!([new_kid, old_kid]));
    let published = es256_kids(&rp.jwks().await);
    assert_eq!(published, [new_kid.clone(), old_kid.clone()]);

    // Tokens signed before and after the rotation both validate.
    assert_eq!(rp.userinfo(&access_token_of(&before)).await, StatusCode::OK);
    rp.verified_id_token(before["id_token"].as_str().unwrap()).await;
    let after = rp.refreshed(&refresh_token_of(&before)).await;
    let (_, kid) = rp.verified_id_token(after["id_token"].as_str().unwrap()).await;
    assert_eq!(kid, new_kid, "new tokens carry the new kid");
    assert_eq!(jsonwebtoken::decode_header(access_token_of(&after)).unwrap().kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(rp.userinfo(&access_token_of(&after)).await, StatusCode::OK);

    // Once every token the old key signed has expired (ID tokens live 300 s), it drops out.
    rp.advance(299);
    assert_eq!(es256_kids(&rp.jwks().await).len(), 2);
    rp.advance(1);
    let published = es256_kids(&rp.jwks().await);
    assert_eq!(published, [new_kid]);
}

#[tokio::test]
async fn admin_routes_do_not_exist_when_the_admin_api_is_off() {
    let rp = Rp::with(|config| config.admin_api = false).await;
    let metrics = rp.http.get(rp.provider.url("/admin/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::NOT_FOUND);
    let rotate = rp.http.post(rp.provider.url("/admin/keys/rotate")).send().await.unwrap();
    assert_eq!(rotate.status(), StatusCode::NOT_FOUND);
    let families = rp.http.get(rp.provider.url(&format!("/admin/users/{ALICE}/families"))).send().await.unwrap();
    assert_eq!(families.status(), StatusCode::NOT_FOUND);
    // Refresh tokens work without it.
    let token = rp.family().await;
    rp.refreshed(&token).await;
}

/// Every admin route refuses, before it does anything, a browser request from another site
/// (`Sec-Fetch-Site: cross-site`) and one for another host than the provider's: a page whose
/// name was rebound to the provider's address (DNS rebinding) is same-origin to the browser,
/// and only its `Host` gives it away. Same-site requests are served, and so are the provider's
/// own name and loopback ones, whatever the port.
#[tokio::test]
async fn every_admin_route_refuses_cross_site_requests_and_foreign_hosts() {
    let rp = Rp::new().await;
    let signed_in = rp.sign_in(&DEMO_APP, OFFLINE).await;
    let refresh_token = refresh_token_of(&signed_in);
    let (claims, _) = rp.verified_id_token(signed_in["id_token"].as_str().unwrap()).await;
    let sid = claims["sid"].as_str().unwrap().to_owned();
    let family = rp.families(ALICE).await[0]["id"].as_str().unwrap().to_owned();
    let routes = [
        ("GET", "/admin/metrics".to_owned(), None),
        ("GET", format!("/admin/users/{ALICE}/families"), None),
        ("POST", format!("/admin/users/{ALICE}/simulate-reuse"), None),
        ("POST", format!("/admin/families/{family}/revoke"), None),
        ("POST", "/admin/keys/rotate".to_owned(), None),
        ("POST", format!("/admin/users/{ALICE}/end-session"), None),
        ("POST", format!("/admin/sessions/{sid}/end"), None),
        ("POST", "/admin/logout-token".to_owned(), Some(json!({ "client_id": "demo-app", "sid": sid }))),
        ("POST", "/admin/delay".to_owned(), Some(json!({ "authorize_ms": 1000, "token_ms": 1000 }))),
        ("POST", "/admin/outage".to_owned(), Some(json!({ "token": true }))),
    ];
    let refusals =
        [("sec-fetch-site", "cross-site", "cross-site"), ("host", "rebind.attacker.example:4000", "another host")];
    for (method, path, body) in &routes {
        for (header, value, refused) in refusals {
            let mut request = rp.http.request(method.parse().unwrap(), rp.provider.url(path)).header(header, value);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}, {refused}");
        }
    }
    for foreign in ["rebind.attacker.example", "127.0.0.1.nip.io:4000", "[::2]:4000"] {
        let response = rp.http.get(rp.provider.url("/admin/metrics")).header("host", foreign).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{foreign}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "requests for another host are refused");
    }

    // Nothing happened: the family refreshes (not revoked, no reuse simulated, no outage), one
    // key, no delay, and the provider session is still there to end.
    rp.refreshed(&refresh_token).await;
    assert_eq!(es256_kids(&rp.jwks().await).len(), 1, "no key was rotated");
    let delay = rp.http.post(rp.provider.url("/admin/delay")).json(&json!({ "token_ms": 0 })).send().await.unwrap();
    assert_eq!(delay.json::<Value>().await.unwrap(), json!({ "authorize_ms": 0, "token_ms": 0 }), "no slow /authorize");
    let (status, _) = rp.admin_post(&format!("/admin/sessions/{sid}/end")).await;
    assert_eq!(status, StatusCode::OK, "the session was still running");

    let metrics = rp.provider.url("/admin/metrics");
    let same_site = rp.http.get(&metrics).header("sec-fetch-site", "same-site").send().await.unwrap();
    assert_eq!(same_site.status(), StatusCode::OK);
    for own in ["localhost:4000", "LOCALHOST", "127.0.0.1:1", "[::1]:4000"] {
        assert_eq!(rp.http.get(&metrics).header("host", own).send().await.unwrap().status(), StatusCode::OK, "{own}");
    }
    // A provider known by another name (a container's, say) answers to that name too.
    let named = TestProvider::start(|config| config.issuer = "http://idp.internal:4000".parse().unwrap()).await;
    let metrics = format!("http://{}/admin/metrics", named.addr);
    for (host, status) in
        [("idp.internal:4000", StatusCode::OK), ("idp.internal.attacker.example", StatusCode::FORBIDDEN)]
    {
        let response = reqwest::Client::new().get(&metrics).header("host", host).send().await.unwrap();
        assert_eq!(response.status(), status, "{host}");
    }
}

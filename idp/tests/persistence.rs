//! The state file, over HTTP: each test signs in, restarts the provider on the same file (same
//! address, same clock), and checks that the restart changed nothing a client holds: signing
//! keys and the JWK Set (OIDC Core §10.1.1), the provider session behind `prompt=none` (OIDC
//! Core §3.1.2.1), refresh token rotation and reuse detection (RFC 9700 §4.14.2), revocations
//! (RFC 7009), and access tokens at `/userinfo` (RFC 9068). The last tests kill a real provider
//! process with SIGKILL right after it answered, and give it files it must refuse.

use std::{collections::HashMap, path::Path, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use idp::testing::{es256_kids, interaction_id, TempDir, TestProvider};
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::{header::LOCATION, redirect::Policy, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ALICE: &str = "248289761001";
const CLIENT_ID: &str = "demo-app";
const CLIENT_SECRET: &str = "demo-app-secret";
const REDIRECT_URI: &str = "http://localhost:3000/auth/callback";
const OFFLINE: &str = "openid profile email offline_access";

/// One browser (cookies kept across restarts, as a real one keeps them) and the relying party's
/// back channel, against a provider with a state file.
struct Rp {
    http: reqwest::Client,
    provider: TestProvider,
    state: TempDir,
}

impl Rp {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(adjust: impl FnOnce(&mut idp::ProviderConfig)) -> Self {
        let state = TempDir::default();
        let file = state.join("idp").join("state.db");
        let provider = TestProvider::start(|config| {
            config.state_file = Some(file);
            adjust(config);
        })
        .await;
        let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        Self { http, provider, state }
    }

    /// Stops the provider and starts another on the same state file, address and clock.
    async fn restart(self) -> Self {
        let Self { http, provider, state } = self;
        Self { http, provider: provider.restart().await, state }
    }

    fn advance(&self, secs: u64) {
        self.provider.clock.advance(secs);
    }

    fn authorize_url(&self, challenge: &str, prompt: Option<&str>) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", OFFLINE),
            ("state", "state-1"),
            ("nonce", "nonce-1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(prompt) = prompt {
            params.push(("prompt", prompt));
        }
        format!("{}?{}", self.provider.url("/authorize"), serde_urlencoded::to_string(params).unwrap())
    }

    /// Runs the code flow (with the sign-in form if the browser has no provider session yet,
    /// or with `prompt`) and returns the token response.
    async fn sign_in_with(&self, prompt: Option<&str>) -> Value {
        let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut response = self.http.get(self.authorize_url(&challenge, prompt)).send().await.unwrap();
        if response.status() == StatusCode::OK {
            let interaction = interaction_id(&response.text().await.unwrap()).expect("the sign-in form");
            let form = [("interaction", interaction.as_str()), ("username", "alice"), ("password", "wonderland")];
            response = self.http.post(self.provider.url("/login")).form(&form).send().await.unwrap();
        }
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let query = query_of(&response);
        let code = query.get("code").unwrap_or_else(|| panic!("a code: {query:?}"));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ];
        let response = self.post("/token", &form).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn sign_in(&self) -> Value {
        self.sign_in_with(None).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let request = self.http.post(self.provider.url(path)).basic_auth(CLIENT_ID, Some(CLIENT_SECRET));
        request.form(form).send().await.unwrap()
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post("/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    async fn refreshed(&self, refresh_token: &str) -> Value {
        let response = self.refresh(refresh_token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// A refresh that must be refused with `invalid_grant`; returns its description.
    async fn refused(&self, refresh_token: &str) -> String {
        let response = self.refresh(refresh_token).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "{body}");
        body["error_description"].as_str().unwrap().to_owned()
    }

    async fn revoke(&self, token: &str) {
        assert_eq!(self.post("/revoke", &[("token", token)]).await.status(), StatusCode::OK);
    }

    async fn userinfo(&self, access_token: &str) -> StatusCode {
        self.http.get(self.provider.url("/userinfo")).bearer_auth(access_token).send().await.unwrap().status()
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.http.get(self.provider.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn admin_post(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.post(self.provider.url(path)).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn families(&self) -> Vec<Value> {
        self.get_json(&format!("/admin/users/{ALICE}/families")).await["families"].as_array().unwrap().clone()
    }

    /// The kid of the RS256 key in the JWK Set.
    async fn rsa_kid(&self) -> String {
        let jwks = self.get_json("/jwks").await;
        let rsa = jwks["keys"].as_array().unwrap().iter().find(|k| k["alg"] == "RS256").expect("an RS256 key");
        rsa["kid"].as_str().unwrap().to_owned()
    }

    /// The kids of the ES256 keys in the JWK Set, the current one first.
    async fn kids(&self) -> Vec<String> {
        es256_kids(&self.get_json("/jwks").await)
    }

    /// Verifies an ID token against the JWK Set published now; returns the `kid` it names.
    async fn verify_id_token(&self, id_token: &str) -> String {
        let kid = jsonwebtoken::decode_header(id_token).unwrap().kid.expect("a kid");
        let jwks = self.get_json("/jwks").await;
        let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).expect("kid published");
        let key = DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap()).unwrap();
        let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[CLIENT_ID]);
        validation.set_issuer(&[&self.provider.issuer]);
        // Time is the provider's (manual) clock, not this machine's.
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(id_token, &key, &validation).expect("the ID token verifies");
        kid
    }
}

fn query_of(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response.headers()[LOCATION].to_str().unwrap();
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

fn token<'a>(tokens: &'a Value, name: &str) -> &'a str {
    tokens[name].as_str().unwrap_or_else(|| panic!("{name} in {tokens}"))
}

#[tokio::test]
async fn the_jwks_is_the_same_after_a_restart_and_tokens_signed_before_it_still_validate() {
    let rp = Rp::new().await;
    let kids = rp.kids().await;
    assert_eq!(kids.len(), 1);
    let jwks = rp.get_json("/jwks").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "an ES256 and an RS256 key: {jwks}");
    let tokens = rp.sign_in().await;

    // The keys generated at the first start sign ever after, the RS256 one too.
    let rp = rp.restart().await.restart().await;
    assert_eq!(rp.kids().await, kids);
    assert_eq!(rp.get_json("/jwks").await, jwks);
    assert_eq!(rp.verify_id_token(token(&tokens, "id_token")).await, kids[0]);
    assert_eq!(rp.userinfo(token(&tokens, "access_token")).await, StatusCode::OK);
    let refreshed = rp.refreshed(token(&tokens, "refresh_token")).await;
    assert_eq!(rp.verify_id_token(token(&refreshed, "id_token")).await, kids[0]);
}

#[tokio::test]
async fn an_rs256_rotation_survives_a_restart_and_leaves_the_es256_key_signing() {
    let rp = Rp::new().await;
    let (es256, old_rsa) = (rp.kids().await, rp.rsa_kid().await);
    let (status, rotation) = rp.admin_post("/admin/keys/rotate?alg=RS256").await;
    assert_eq!(status, StatusCode::OK);
    let new_rsa = rotation["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_rsa, old_rsa);
    assert_eq!(rotation["kids"], json!([new_rsa, old_rsa]), "the old RS256 key stays published");

    let rp = rp.restart().await;
    assert_eq!(rp.kids().await, es256, "the ES256 key did not rotate");
    let jwks = rp.get_json("/jwks").await;
    let rs256: Vec<&Value> = jwks["keys"].as_array().unwrap().iter().filter(|k| k["alg"] == "RS256").collect();
    assert_eq!(rs256.iter().map(|k| k["kid"].clone()).collect::<Vec<_>>(), [json!(new_rsa), json!(old_rsa)]);
}

#[tokio::test]
async fn a_rotated_key_stays_published_across_a_restart_until_its_tokens_expire() {
    let rp = Rp::new().await;
    let before = rp.sign_in().await;
    let old_kid = rp.kids().await.remove(0);
    let (status, rotation) = rp.admin_post("/admin/keys/rotate").await;
    assert_eq!(status, StatusCode::OK);
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();

    let rp = rp.restart().await;
    assert_eq!(rp.kids().await, [new_kid.clone(), old_kid.clone()]);
    assert_eq!(rp.verify_id_token(token(&before, "id_token")).await, old_kid);
    assert_eq!(rp.userinfo(token(&before, "access_token")).await, StatusCode::OK);
    let after = rp.refreshed(token(&before, "refresh_token")).await;
    assert_eq!(rp.verify_id_token(token(&after, "id_token")).await, new_kid, "the new key signs");

    // ID tokens live 300 s: the old key goes then, and a restart does not bring it back.
    rp.advance(299);
    let rp = rp.restart().await;
    assert_eq!(rp.kids().await, [new_kid.clone(), old_kid]);
    rp.advance(1);
    assert_eq!(rp.kids().await, std::slice::from_ref(&new_kid));
    let rp = rp.restart().await;
    assert_eq!(rp.kids().await, [new_kid]);
}

#[tokio::test]
async fn a_rotated_key_out_of_the_jwks_still_verifies_the_sessions_hints_across_a_restart() {
    let rp = Rp::new().await;
    let before = rp.sign_in().await;
    let (status, rotation) = rp.admin_post("/admin/keys/rotate").await;
    assert_eq!(status, StatusCode::OK);
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    rp.advance(3600);
    let rp = rp.restart().await;
    assert_eq!(rp.kids().await, [new_kid], "published no longer");
    // The provider session (8 h) still runs, and its ID token from before the rotation is a hint.
    let hint = [("id_token_hint", token(&before, "id_token"))];
    let url =
        format!("{}&{}", rp.authorize_url(&"x".repeat(43), Some("none")), serde_urlencoded::to_string(hint).unwrap());
    let query = query_of(&rp.http.get(url).send().await.unwrap());
    assert!(query.contains_key("code"), "{query:?}");
}

#[tokio::test]
async fn a_version_3_state_file_is_migrated_and_a_key_retired_before_keeps_its_old_window() {
    let rp = Rp::new().await;
    rp.sign_in().await;
    let (status, rotation) = rp.admin_post("/admin/keys/rotate").await;
    assert_eq!(status, StatusCode::OK);
    let old_rsa_kid = rp.rsa_kid().await;
    let Rp { http, provider, state } = rp;
    let (addr, file) = (provider.addr, provider.config().state_file.clone().unwrap());
    provider.stop().await;
    // As a provider from before hint windows (and before RS256) left it.
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(&format!(
            "DELETE FROM signing_keys WHERE kid = '{old_rsa_kid}';
             ALTER TABLE signing_keys DROP COLUMN hints_until; PRAGMA user_version = 3;"
        ))
        .unwrap();

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let provider = TestProvider::start_on(listener, |config| config.state_file = Some(file.clone())).await;
    let rp = Rp { http, provider, state };
    assert_eq!(rp.kids().await.len(), 2, "the retired key is still published");
    let rsa_kid = rp.rsa_kid().await;
    assert_ne!(rsa_kid, old_rsa_kid, "a file without an RS256 key gets one");
    rp.provider.stop().await;
    let connection = rusqlite::Connection::open(&file).unwrap();
    let version: i32 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    assert_eq!(version, 5);
    let windows: Vec<(Option<u64>, Option<u64>)> = connection
        .prepare("SELECT published_until, hints_until FROM signing_keys ORDER BY seq")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(windows.len(), 3, "{windows:?}");
    assert!(windows[0].0.is_some() && windows[0].0 == windows[0].1, "the old window: {windows:?}");
    assert_eq!(windows[1], (None, None), "the current key, {}", rotation["kid"]);
    assert_eq!(windows[2], (None, None), "the new RS256 key, {rsa_kid}");
}

#[tokio::test]
async fn a_signing_key_file_naming_another_key_signs_from_then_on_and_the_old_key_retires() {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    let rp = Rp::new().await;
    let before = rp.sign_in().await;
    let generated = rp.kids().await.remove(0);
    let pem = rp.state.join("signing-key.pem");
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    std::fs::write(&pem, secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();

    let Rp { http, provider, state } = rp;
    let provider = provider.restart_with(|config| config.signing_key_file = Some(pem)).await;
    let rp = Rp { http, provider, state };
    let kids = rp.kids().await;
    assert_eq!((kids.len(), &kids[1]), (2, &generated), "the generated key retires: {kids:?}");
    assert_eq!(rp.verify_id_token(token(&before, "id_token")).await, generated);
    let after = rp.refreshed(token(&before, "refresh_token")).await;
    assert_eq!(rp.verify_id_token(token(&after, "id_token")).await, kids[0], "the file's key signs");

    // The same file at the next start changes nothing.
    let rp = rp.restart().await;
    assert_eq!(rp.kids().await, kids);
}

#[tokio::test]
async fn a_provider_session_from_before_a_restart_still_answers_prompt_none_with_a_code() {
    let rp = Rp::new().await;
    let first = rp.sign_in().await;
    let rp = rp.restart().await;
    // No form: the session cookie from before the restart is enough, and the code exchanges.
    let silent = rp.sign_in_with(Some("none")).await;
    let sid = |tokens: &Value| {
        let id_token = token(tokens, "id_token");
        let payload = id_token.split('.').nth(1).unwrap();
        serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()["sid"].clone()
    };
    assert_eq!(sid(&silent), sid(&first), "the same provider session");

    // A browser without the cookie still gets login_required.
    let other = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let response = other.get(rp.authorize_url(&"x".repeat(43), Some("none"))).send().await.unwrap();
    assert_eq!(query_of(&response)["error"], "login_required");
}

#[tokio::test]
async fn a_version_1_state_file_is_migrated_and_its_provider_sessions_kept() {
    let rp = Rp::new().await;
    rp.sign_in().await;
    let Rp { http, provider, state } = rp;
    let (addr, file) = (provider.addr, provider.config().state_file.clone().unwrap());
    provider.stop().await;
    // As a provider from before consent and accepted terms were remembered left it.
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(
            "ALTER TABLE signing_keys DROP COLUMN hints_until;
             ALTER TABLE provider_sessions DROP COLUMN clients;
             ALTER TABLE provider_sessions DROP COLUMN browser_state;
             ALTER TABLE provider_sessions DROP COLUMN consents;
             ALTER TABLE provider_sessions DROP COLUMN terms_accepted;
             PRAGMA user_version = 1;",
        )
        .unwrap();

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let provider = TestProvider::start_on(listener, |config| config.state_file = Some(file.clone())).await;
    let rp = Rp { http, provider, state };
    rp.sign_in_with(Some("none")).await;
    rp.provider.stop().await;
    let version: i32 =
        rusqlite::Connection::open(&file).unwrap().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    assert_eq!(version, 5);
}

#[tokio::test]
async fn a_version_2_state_file_is_migrated_and_its_provider_sessions_get_a_browser_state() {
    let rp = Rp::new().await;
    rp.sign_in().await;
    let Rp { http, provider, state } = rp;
    let (addr, file) = (provider.addr, provider.config().state_file.clone().unwrap());
    provider.stop().await;
    // As a provider from before Session Management and Back-Channel Logout left it.
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(
            "ALTER TABLE signing_keys DROP COLUMN hints_until;
             ALTER TABLE provider_sessions DROP COLUMN clients;
             ALTER TABLE provider_sessions DROP COLUMN browser_state;
             PRAGMA user_version = 2;",
        )
        .unwrap();

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let provider = TestProvider::start_on(listener, |config| config.state_file = Some(file.clone())).await;
    let rp = Rp { http, provider, state };
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let silent = rp.http.get(rp.authorize_url(&challenge, Some("none"))).send().await.unwrap();
    let query = query_of(&silent);
    assert!(query.contains_key("code"), "the session was kept: {query:?}");
    let (hash, salt) = query["session_state"].split_once('.').expect("a session_state");
    assert_eq!((hash.len(), salt.is_empty()), (64, false));
    rp.provider.stop().await;
    let connection = rusqlite::Connection::open(&file).unwrap();
    let version: i32 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    assert_eq!(version, 5);
    let (browser_state, clients): (String, String) = connection
        .query_row("SELECT browser_state, clients FROM provider_sessions", [], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    assert_eq!(browser_state.len(), 64, "a random browser state, not the empty one of 'no session'");
    assert_eq!(clients, "[]", "nobody to tell about a session from before");
}

#[tokio::test]
async fn a_refresh_token_from_before_a_restart_rotates_after_it_and_its_predecessor_is_still_reuse() {
    let rp = Rp::new().await;
    let first = token(&rp.sign_in().await, "refresh_token").to_owned();
    let second = token(&rp.refreshed(&first).await, "refresh_token").to_owned();

    let rp = rp.restart().await;
    let third = token(&rp.refreshed(&second).await, "refresh_token").to_owned();
    let family = &rp.families().await[0];
    assert_eq!((family["rotations"].as_u64(), family["active"].as_bool()), (Some(2), Some(true)));

    let rp = rp.restart().await;
    assert!(rp.refused(&first).await.contains("reused"));
    assert!(rp.refused(&third).await.contains("revoked"), "the whole family is revoked");
    assert_eq!(rp.families().await[0]["revoked_reason"], "reuse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_refreshes_with_a_state_file_have_exactly_one_winner_and_a_restart_agrees() {
    let rp = Rp::new().await;
    let first = token(&rp.sign_in().await, "refresh_token").to_owned();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (http, url, first) = (rp.http.clone(), rp.provider.url("/token"), first.clone());
        requests.spawn(async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", first.as_str())];
            let response = http.post(url).basic_auth(CLIENT_ID, Some(CLIENT_SECRET)).form(&form).send().await;
            response.unwrap().status()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = requests.join_next().await {
        statuses.push(status.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::BAD_REQUEST).count(), 49);

    // The losers presented a retired token: the family is revoked, on disk as in memory.
    let rp = rp.restart().await;
    let family = &rp.families().await[0];
    assert_eq!((family["rotations"].as_u64(), &family["revoked_reason"]), (Some(1), &json!("reuse")));
}

#[tokio::test]
async fn a_family_revoked_before_a_restart_stays_revoked() {
    let rp = Rp::new().await;
    let by_client = rp.sign_in().await;
    rp.revoke(token(&by_client, "refresh_token")).await;
    let by_admin = rp.sign_in().await;
    let id = rp.families().await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(rp.admin_post(&format!("/admin/families/{id}/revoke")).await.0, StatusCode::OK);

    let rp = rp.restart().await;
    for tokens in [&by_client, &by_admin] {
        assert!(rp.refused(token(tokens, "refresh_token")).await.contains("revoked"));
        assert_eq!(rp.userinfo(token(tokens, "access_token")).await, StatusCode::UNAUTHORIZED);
    }
    let reasons: Vec<Value> = rp.families().await.iter().map(|f| f["revoked_reason"].clone()).collect();
    assert_eq!(reasons, [json!("admin"), json!("revocation")], "newest first, each with its reason");
}

#[tokio::test]
async fn an_access_token_from_before_a_restart_passes_userinfo_and_a_revoked_one_does_not() {
    let rp = Rp::new().await;
    let kept = rp.sign_in().await;
    let revoked = rp.sign_in().await;
    rp.revoke(token(&revoked, "access_token")).await;
    let refreshed = rp.refreshed(token(&kept, "refresh_token")).await;

    let rp = rp.restart().await;
    for tokens in [&kept, &refreshed] {
        assert_eq!(rp.userinfo(token(tokens, "access_token")).await, StatusCode::OK);
    }
    assert_eq!(rp.userinfo(token(&revoked, "access_token")).await, StatusCode::UNAUTHORIZED);
    // Its family was left alone (RFC 7009 §2.1 revokes an access token by itself).
    rp.refreshed(token(&revoked, "refresh_token")).await;

    // Access tokens live 60 s, across restarts too.
    rp.advance(60);
    let rp = rp.restart().await;
    assert_eq!(rp.userinfo(token(&refreshed, "access_token")).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_grace_window_and_simulated_reuse_work_across_a_restart() {
    let rp = Rp::with(|config| {
        let client = config.clients.iter_mut().find(|c| c.client_id == CLIENT_ID).unwrap();
        client.refresh_reuse_grace_secs = 30;
    })
    .await;
    let first = token(&rp.sign_in().await, "refresh_token").to_owned();
    let second = token(&rp.refreshed(&first).await, "refresh_token").to_owned();

    // A retry of a response the restart lost gets the same successor.
    let rp = rp.restart().await;
    rp.advance(29);
    assert_eq!(token(&rp.refreshed(&first).await, "refresh_token"), second);

    // Past the window, the admin API replays the retired token after another restart.
    rp.advance(1);
    let rp = rp.restart().await;
    let (status, body) = rp.admin_post(&format!("/admin/users/{ALICE}/simulate-reuse")).await;
    assert_eq!((status, &body["error"]), (StatusCode::OK, &json!("invalid_grant")), "{body}");
    assert!(rp.refused(&second).await.contains("revoked"));
}

#[tokio::test]
async fn a_corrupt_or_foreign_state_file_stops_start_up_with_an_error_naming_it() {
    let dir = TempDir::default();
    let corrupt = dir.join("corrupt.db");
    std::fs::write(&corrupt, "this is not an SQLite database, whatever its name says\n".repeat(100)).unwrap();
    let foreign = dir.join("foreign.db");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE notes (text TEXT);").unwrap();
    let directory = dir.join("a-directory");
    std::fs::create_dir(&directory).unwrap();

    for (file, cause) in [(&corrupt, "not a database"), (&foreign, "not a state file"), (&directory, "")] {
        let error = TestProvider::try_start(|config| config.state_file = Some(file.clone()))
            .await
            .err()
            .unwrap_or_else(|| panic!("{} was accepted", file.display()))
            .to_string();
        assert!(error.contains(&format!("provider state file {}", file.display())), "{error}");
        assert!(error.contains(cause), "{error}");
    }
    // Refused, each file is left as it was.
    assert!(std::fs::read_to_string(&corrupt).unwrap().starts_with("this is not"));
    let mode: String =
        rusqlite::Connection::open(&foreign).unwrap().query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
    assert_eq!(mode, "delete", "the foreign database was not switched to write-ahead logging");
}

#[tokio::test]
async fn a_second_provider_on_the_same_state_file_is_refused() {
    let rp = Rp::new().await;
    let file = rp.provider.config().state_file.clone().unwrap();
    let error = TestProvider::try_start(|config| config.state_file = Some(file.clone())).await.err().unwrap();
    assert!(error.to_string().contains("locked"), "{error}");
    // The first one is unharmed.
    rp.sign_in().await;
}

/// The provider binary, on `port` with `state`, and a way to kill it.
struct Process(std::process::Child);

impl Process {
    async fn start(port: u16, state: &Path) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_idp"))
            .args(["--addr", &format!("127.0.0.1:{port}"), "--state"])
            .arg(state)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the provider binary starts");
        // Killed and waited for on drop, whatever happens next.
        let process = Self(child);
        let jwks = format!("http://127.0.0.1:{port}/jwks");
        for _ in 0..200 {
            if reqwest::get(&jwks).await.is_ok_and(|r| r.status().is_success()) {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the provider binary did not listen on port {port}");
    }

    /// SIGKILL: no shutdown, no close; whatever was not written is lost.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_provider_killed_right_after_answering_has_lost_nothing_it_answered() {
    let dir = TempDir::default();
    let state = dir.join("state.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
    let post = |path: &str, form: &[(&str, &str)]| {
        http.post(format!("{base}{path}")).basic_auth(CLIENT_ID, Some(CLIENT_SECRET)).form(form).send()
    };

    let process = Process::start(port, &state).await;
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("scope", OFFLINE),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = http.get(format!("{base}/authorize?{}", serde_urlencoded::to_string(query).unwrap())).send().await;
    let interaction = interaction_id(&page.unwrap().text().await.unwrap()).unwrap();
    let form = [("interaction", interaction.as_str()), ("username", "alice"), ("password", "wonderland")];
    let redirect = http.post(format!("{base}/login")).form(&form).send().await.unwrap();
    let code = query_of(&redirect)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens: Value = post("/token", &form).await.unwrap().json().await.unwrap();
    let first = token(&tokens, "refresh_token").to_owned();
    let rotated: Value = post("/admin/keys/rotate", &[]).await.unwrap().json().await.unwrap();
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", first.as_str())];
    let refreshed: Value = post("/token", &refresh).await.unwrap().json().await.unwrap();
    let second = token(&refreshed, "refresh_token").to_owned();
    // Killed the moment the last answer arrived.
    process.kill();

    let _process = Process::start(port, &state).await;
    let jwks: Value = http.get(format!("{base}/jwks")).send().await.unwrap().json().await.unwrap();
    assert_eq!(json!(es256_kids(&jwks)), rotated["kids"], "the rotation survived");
    let access_token = token(&refreshed, "access_token");
    let userinfo = http.get(format!("{base}/userinfo")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK, "the access token issued last is known");
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", second.as_str())];
    assert_eq!(post("/token", &refresh).await.unwrap().status(), StatusCode::OK, "the successor is current");
    let reuse = [("grant_type", "refresh_token"), ("refresh_token", first.as_str())];
    let refused: Value = post("/token", &reuse).await.unwrap().json().await.unwrap();
    assert!(refused["error_description"].as_str().unwrap().contains("reused"), "{refused}");
}

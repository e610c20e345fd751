//! The end of provider sessions, against a live provider over HTTP, with relying parties'
//! back-channel logout endpoints as small servers in the test: RP-Initiated Logout 1.0 at
//! `/end-session` (each parameter case), Back-Channel Logout 1.0 (a logout token to every
//! client of an ended session: after `/end-session`, the admin API and reuse detection; checked
//! claim by claim; retries, bounded and counted), and the admin API's logout tokens with defects,
//! each checked against a relying party's validation (§2.6) written in the test.

mod common;

use std::collections::HashSet;

use common::*;
use idp::testing::{es256_kids, TempDir, TestProvider};
use reqwest::{header::LOCATION, StatusCode};
use serde_json::{json, Value};

/// A provider whose demo app (and, if given, SPA) post logout tokens to the channels.
async fn provider_with(app: &BackChannel, spa: Option<&BackChannel>) -> TestProvider {
    TestProvider::start(|config| {
        back_channel_of(config, "demo-app", app);
        if let Some(spa) = spa {
            back_channel_of(config, "demo-spa", spa);
        }
    })
    .await
}

/// As [`provider_with`] the app alone, keeping its state in a file in `dir`, so that a restart
/// finds it.
async fn provider_with_state_file(app: &BackChannel, dir: &TempDir) -> TestProvider {
    let file = dir.join("state.db");
    TestProvider::start(|config| {
        config.state_file = Some(file);
        back_channel_of(config, "demo-app", app);
    })
    .await
}

/// Alice signed in through the demo app, which received tokens: its ID token.
async fn alice_signed_in(browser: &Browser) -> String {
    let tokens = browser.tokens_for(&DEMO_APP, "alice", "openid profile").await;
    tokens["id_token"].as_str().unwrap().to_owned()
}

/// Checks `received` is a back-channel logout request whose token is valid for `client_id` and
/// names `sub` and `sid`, claim by claim; returns the claims.
async fn assert_logout_request(
    provider: &TestProvider,
    received: &Received,
    client_id: &str,
    sub: &str,
    sid: &str,
) -> Value {
    assert_eq!(received.content_type, "application/x-www-form-urlencoded");
    let token = received.logout_token();
    let header = header(token);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["alg"], "ES256");
    let claims =
        validate_logout_token(token, &jwks(&provider.issuer).await, &provider.issuer, client_id, now(provider))
            .expect("a valid logout token");
    assert_eq!(claims["iss"], provider.issuer);
    assert_eq!(claims["aud"], client_id, "the client id, as a string");
    assert_eq!(claims["sub"], sub);
    assert_eq!(claims["sid"], sid);
    assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(iat, now(provider));
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 120, "short-lived");
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 22), "a random jti");
    assert!(claims.get("nonce").is_none());
    let names: HashSet<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(names, HashSet::from(["iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"]));
    claims
}

fn location(response: &reqwest::Response) -> Option<&str> {
    response.headers().get(LOCATION).map(|value| value.to_str().unwrap())
}

// OIDC Core §15.1: RS256 for the clients that ask for it.

#[tokio::test]
async fn a_client_registered_for_rs256_gets_rs256_id_and_logout_tokens_and_its_id_token_is_a_hint() {
    let app = BackChannel::start().await;
    let provider = TestProvider::start(|config| {
        back_channel_of(config, "demo-app", &app);
        let client = config.clients.iter_mut().find(|client| client.client_id == "demo-app").unwrap();
        client.id_token_signed_response_alg = idp::SigningAlg::Rs256;
    })
    .await;
    let browser = Browser::new(&provider.issuer);
    let jwks = jwks(&provider.issuer).await;
    let rsa = jwks["keys"].as_array().unwrap().iter().find(|key| key["kty"] == "RSA").expect("an RSA key");
    assert_eq!(rsa["alg"], "RS256");
    let verify = |token: &str| {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["demo-app"]);
        validation.set_issuer(&[&provider.issuer]);
        jsonwebtoken::decode::<Value>(token, &decoding_key(rsa), &validation).map(|data| data.claims)
    };

    let tokens = browser.tokens_for(&DEMO_APP, "alice", OFFLINE).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        (header(id_token)["alg"].as_str(), header(id_token)["kid"].clone()),
        (Some("RS256"), rsa["kid"].clone())
    );
    assert_eq!(verify(id_token).expect("the code exchange's ID token")["sub"], ALICE);
    // Access tokens are the resource server's business: ES256 as for every client.
    assert_eq!(header(tokens["access_token"].as_str().unwrap())["alg"], "ES256");

    let refreshed: Value =
        browser.refresh(&DEMO_APP, tokens["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    let refreshed_id_token = refreshed["id_token"].as_str().unwrap();
    assert_eq!(header(refreshed_id_token)["alg"], "RS256");
    assert_eq!(verify(refreshed_id_token).expect("the refreshed ID token")["sub"], ALICE);

    // Its ID token is a hint /end-session takes, and the logout token is signed as it was.
    let params = [("id_token_hint", id_token), ("post_logout_redirect_uri", APP_HOME)];
    let response = browser.end_session(&params).await;
    assert_eq!(location(&response), Some(APP_HOME), "the hint was accepted: the redirect is allowed");
    let received = app.wait_for(1).await;
    let token = received[0].logout_token();
    assert_eq!(header(token)["alg"], "RS256");
    let claims = validate_logout_token(token, &jwks, &provider.issuer, "demo-app", now(&provider)).expect("valid");
    assert_eq!(claims["sub"], ALICE);
}

// RP-Initiated Logout: each parameter case.

#[tokio::test]
async fn end_session_with_the_sessions_id_token_ends_it_and_redirects_to_the_registered_uri_with_state() {
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;

    let params = [("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", APP_HOME), ("state", "bye-1")];
    let response = browser.end_session(&params).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), Some("http://localhost:3000/?state=bye-1"));
    let session_cookie = set_cookie(&response, "idp_session").expect("the session cookie is deleted");
    assert!(session_cookie.contains("Max-Age=0"), "{session_cookie}");
    assert!(set_cookie(&response, "idp_browser_state").unwrap().contains("Max-Age=0"));
    assert!(!browser.has_session(&DEMO_APP).await, "prompt=none: login_required");
    // §3: the redirect comes after the client was told.
    assert_eq!(app.received().len(), 1, "the logout token arrived before the redirect");
}

#[tokio::test]
async fn end_session_by_form_post_works_as_by_get_and_client_id_may_accompany_the_hint() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let form = [
        ("id_token_hint", id_token.as_str()),
        ("client_id", "demo-app"),
        ("post_logout_redirect_uri", APP_HOME),
        ("state", "bye-2"),
        ("ui_locales", "fr-CA fr en"),
        ("logout_hint", "alice"),
    ];
    let response = browser.http.post(browser.url("/end-session")).form(&form).send().await.unwrap();
    assert_eq!(location(&response), Some("http://localhost:3000/?state=bye-2"));
    assert!(!browser.has_session(&DEMO_APP).await);
}

/// A form post from another site comes without the provider's `SameSite=Lax` session cookie:
/// it is asked again by GET, a top-level navigation the cookie goes with, and so ends the
/// session rather than answering "signed out" with the session still alive.
#[tokio::test]
async fn a_form_post_without_the_session_cookie_is_asked_again_by_get_and_ends_the_session() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let form = [("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", APP_HOME), ("state", "cross-site")];
    let cookieless = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let posted = cookieless.post(browser.url("/end-session")).form(&form).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let again = location(&posted).unwrap().to_owned();
    assert!(again.starts_with(&browser.url("/end-session?")), "{again}");
    assert!(browser.has_session(&DEMO_APP).await, "nothing ended yet");

    // The browser follows with its cookie.
    let response = browser.http.get(&again).send().await.unwrap();
    assert_eq!(location(&response), Some("http://localhost:3000/?state=cross-site"));
    assert!(!browser.has_session(&DEMO_APP).await);
}

#[tokio::test]
async fn without_a_post_logout_redirect_uri_or_state_the_user_sees_the_signed_out_page() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let response = browser.end_session(&[("id_token_hint", &id_token)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(location(&response).is_none());
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(response.text().await.unwrap().contains("You are signed out"));
    assert!(!browser.has_session(&DEMO_APP).await);
}

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_signs_out_but_shows_the_page_instead_of_redirecting() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    for unregistered in ["https://evil.example/", "http://localhost:3000", "http://localhost:3000/?x=1"] {
        // Each sign-out ends the session: sign in again, and hint with the new session's token.
        let id_token = alice_signed_in(&browser).await;
        let params = [("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", unregistered), ("state", "s")];
        let response = browser.end_session(&params).await;
        assert_eq!(response.status(), StatusCode::OK, "{unregistered}");
        assert!(location(&response).is_none(), "never redirected to {unregistered}");
        let page = response.text().await.unwrap();
        assert!(page.contains("You are signed out") && page.contains("not registered"), "{page}");
    }
    // The demo SPA's request cannot use the app's URI either: it is registered for the app only.
    browser.sign_in(&DEMO_APP, "alice").await;
    let params = [("client_id", "demo-spa"), ("post_logout_redirect_uri", APP_HOME)];
    let page = browser.end_session(&params).await.text().await.unwrap();
    assert!(page.contains("Sign out?"), "no hint: the user is asked: {page}");
}

#[tokio::test]
async fn a_hint_and_a_client_id_that_disagree_are_refused_and_the_session_kept() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let params =
        [("id_token_hint", id_token.as_str()), ("client_id", "demo-spa"), ("post_logout_redirect_uri", APP_HOME)];
    let response = browser.end_session(&params).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(location(&response).is_none(), "never redirected after a failed validation");
    assert!(set_cookie(&response, "idp_session").is_none());
    assert!(response.text().await.unwrap().contains("does not match"));
    assert!(browser.has_session(&DEMO_APP).await);
}

#[tokio::test]
async fn an_invalid_foreign_or_unknown_client_request_is_refused_and_the_session_kept() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let elsewhere = TestProvider::start(|_| {}).await;
    let foreign = alice_signed_in(&Browser::new(&elsewhere.issuer)).await;
    let tampered = {
        let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    for (case, params) in [
        ("malformed", vec![("id_token_hint", "not-a-jwt")]),
        ("tampered", vec![("id_token_hint", tampered.as_str())]),
        ("foreign", vec![("id_token_hint", foreign.as_str())]),
        ("unknown client", vec![("client_id", "intruder"), ("post_logout_redirect_uri", APP_HOME)]),
    ] {
        let response = browser.end_session(&params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(location(&response).is_none(), "{case}");
    }
    assert!(browser.has_session(&DEMO_APP).await);
}

#[tokio::test]
async fn a_hint_for_another_user_keeps_the_session_and_asks_the_user() {
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let alice = Browser::new(&provider.issuer);
    alice_signed_in(&alice).await;
    let bobs = bobs_id_token(&provider).await;

    let params = [("id_token_hint", bobs.as_str()), ("post_logout_redirect_uri", APP_HOME), ("state", "s")];
    let response = alice.end_session(&params).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(location(&response).is_none());
    assert!(set_cookie(&response, "idp_session").is_none(), "the session cookie is left alone");
    let page = response.text().await.unwrap();
    assert!(page.contains("another account") && page.contains("Alice Liddell"), "{page}");
    assert!(alice.has_session(&DEMO_APP).await, "alice is still signed in");
    assert!(app.received().is_empty(), "nobody is told anything");

    // She may sign out all the same.
    let confirmed = post_confirmation(&alice, &page).await;
    assert_eq!(location(&confirmed), Some("http://localhost:3000/?state=s"));
    assert!(!alice.has_session(&DEMO_APP).await);
}

/// Bob signs in through the demo app in a browser of his own: his ID token.
async fn bobs_id_token(provider: &TestProvider) -> String {
    let bob = Browser::new(&provider.issuer);
    bob.tokens_for(&DEMO_APP, "bob", "openid").await["id_token"].as_str().unwrap().to_owned()
}

/// Posts the confirmation form of the "Sign out?" page `page`.
async fn post_confirmation(browser: &Browser, page: &str) -> reqwest::Response {
    assert!(page.contains(r#"action="/end-session""#), "{page}");
    let fields: Vec<(String, String)> = page
        .match_indices(r#"<input type="hidden" name=""#)
        .map(|(start, _)| {
            let rest = &page[start + r#"<input type="hidden" name=""#.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            let value_start = rest.find(r#"value=""#).unwrap() + r#"value=""#.len();
            let value = &rest[value_start..value_start + rest[value_start..].find('"').unwrap()];
            (name.to_owned(), value.replace("&amp;", "&").replace("&quot;", "\"").replace("&#39;", "'"))
        })
        .collect();
    browser.http.post(browser.url("/end-session")).form(&fields).send().await.unwrap()
}

#[tokio::test]
async fn without_a_hint_the_user_is_asked_first_and_the_confirmation_ends_the_session() {
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    alice_signed_in(&browser).await;
    let params = [("client_id", "demo-app"), ("post_logout_redirect_uri", APP_HOME), ("state", "s-3")];
    let asked = browser.end_session(&params).await;
    assert_eq!(asked.status(), StatusCode::OK);
    let csp = asked.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("form-action 'self' http://localhost:3000"), "the redirect after the post: {csp}");
    let page = asked.text().await.unwrap();
    assert!(page.contains("Sign out?") && page.contains("demo-app"), "{page}");
    assert!(browser.has_session(&DEMO_APP).await, "nothing ends before the user says so");

    let confirmed = post_confirmation(&browser, &page).await;
    assert_eq!(location(&confirmed), Some("http://localhost:3000/?state=s-3"));
    assert!(!browser.has_session(&DEMO_APP).await);
    assert_eq!(app.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn a_forged_or_stale_confirmation_or_one_in_a_query_ends_nothing() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    alice_signed_in(&browser).await;
    let forged = [("client_id", "demo-app"), ("confirm", "AAAA")];
    let response = browser.http.post(browser.url("/end-session")).form(&forged).send().await.unwrap();
    assert!(response.text().await.unwrap().contains("Sign out?"), "asked again");
    // A confirmation is worth something only in a form post of the page.
    let page = browser.end_session(&[("client_id", "demo-app")]).await.text().await.unwrap();
    let confirm = page.split(r#"name="confirm" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let in_a_query = browser.end_session(&[("client_id", "demo-app"), ("confirm", &confirm)]).await;
    assert!(in_a_query.text().await.unwrap().contains("Sign out?"));
    assert!(browser.has_session(&DEMO_APP).await);
    // Nor for another session: the same browser signed in again.
    let login = browser.authorize(&DEMO_APP, "openid", &[("prompt", "login")]).await;
    browser.sign_in_on(login, "alice").await;
    let stale = [("client_id", "demo-app"), ("confirm", confirm.as_str())];
    let response = browser.http.post(browser.url("/end-session")).form(&stale).send().await.unwrap();
    assert!(response.text().await.unwrap().contains("Sign out?"));
    assert!(browser.has_session(&DEMO_APP).await);
}

#[tokio::test]
async fn a_hint_from_an_earlier_session_of_the_same_user_asks_first() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let earlier = alice_signed_in(&browser).await;
    // Signed out, then in again: another provider session of the same user.
    browser.end_session(&[("id_token_hint", &earlier)]).await;
    let later = alice_signed_in(&browser).await;
    assert_ne!(claims(&later)["sid"], claims(&earlier)["sid"]);
    let page = browser.end_session(&[("id_token_hint", &earlier)]).await.text().await.unwrap();
    assert!(page.contains("Sign out?") && !page.contains("another account"), "{page}");
    assert!(browser.has_session(&DEMO_APP).await);
}

#[tokio::test]
async fn an_expired_hint_still_signs_out() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    provider.clock.advance(3600);
    assert!(claims(&id_token)["exp"].as_u64().unwrap() < now(&provider));
    let params = [("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", APP_HOME)];
    assert_eq!(location(&browser.end_session(&params).await), Some(APP_HOME));
    assert!(!browser.has_session(&DEMO_APP).await);
}

#[tokio::test]
async fn after_a_key_rotation_the_sessions_own_older_hint_still_signs_out() {
    // RP-Initiated Logout 1.0 §2: the provider accepts ID tokens it issued as hints, expired
    // ones too. The session (8 h) outlives the old key's place in the JWK Set (300 s).
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let (status, rotated) = browser.admin("/admin/keys/rotate", None).await;
    assert_eq!(status, StatusCode::OK);
    provider.clock.advance(3600);
    let kids = es256_kids(&jwks(&provider.issuer).await);
    assert_eq!(kids, [rotated["kid"].as_str().unwrap()], "the hint's key is no longer published");

    let params = [("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", APP_HOME), ("state", "bye")];
    let response = browser.end_session(&params).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), Some(format!("{APP_HOME}?state=bye").as_str()));
    assert!(!browser.has_session(&DEMO_APP).await);
    let received = app.wait_for(1).await;
    assert_eq!(claims(received[0].logout_token())["sid"], claims(&id_token)["sid"]);
}

#[tokio::test]
async fn end_session_without_a_provider_session_is_no_error_and_still_redirects() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let params = [("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", APP_HOME), ("state", "again")];
    browser.end_session(&params).await;
    // Signed out already (another tab, say): the same request is answered the same way.
    let again = browser.end_session(&params).await;
    assert_eq!(location(&again), Some("http://localhost:3000/?state=again"));
    let fresh = Browser::new(&provider.issuer);
    let response = fresh.end_session(&[("client_id", "demo-app"), ("post_logout_redirect_uri", APP_HOME)]).await;
    assert_eq!(location(&response), Some(APP_HOME));
}

// Back-Channel Logout.

#[tokio::test]
async fn signing_out_sends_each_client_of_the_session_one_well_formed_logout_token() {
    let (app, spa) = (BackChannel::start().await, BackChannel::start().await);
    let provider = provider_with(&app, Some(&spa)).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let sid = claims(&id_token)["sid"].as_str().unwrap().to_owned();
    browser.tokens_for(&DEMO_SPA, "alice", "openid").await;
    // Another session of alice's, where only the app got tokens: not this sign-out's business.
    let phone = Browser::new(&provider.issuer);
    alice_signed_in(&phone).await;

    browser.end_session(&[("id_token_hint", &id_token)]).await;
    let to_app = app.wait_for(1).await;
    let to_spa = spa.wait_for(1).await;
    let app_claims = assert_logout_request(&provider, &to_app[0], "demo-app", ALICE, &sid).await;
    let spa_claims = assert_logout_request(&provider, &to_spa[0], "demo-spa", ALICE, &sid).await;
    assert_ne!(app_claims["jti"], spa_claims["jti"]);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!((app.received().len(), spa.received().len()), (1, 1), "one each, and none for the phone");
    assert!(phone.has_session(&DEMO_APP).await);
    let metrics = browser.metrics().await;
    assert_eq!(metrics["backchannel_logouts"], json!({ "sent": 2, "delivered": 2, "failed": 0, "retries": 0 }));
}

#[tokio::test]
async fn another_user_signing_in_at_the_browser_ends_the_session_and_its_clients_are_told() {
    let (app, spa) = (BackChannel::start().await, BackChannel::start().await);
    let provider = provider_with(&app, Some(&spa)).await;
    let browser = Browser::new(&provider.issuer);
    let alices = alice_signed_in(&browser).await;
    let sid = claims(&alices)["sid"].as_str().unwrap().to_owned();

    let login = browser.authorize(&DEMO_SPA, "openid", &[("prompt", "login")]).await;
    let signed_in = browser.sign_in_on(login, "bob").await;
    // Told before the answer, as at /end-session: the sign-in waited for the first attempt.
    assert_eq!(app.received().len(), 1, "the app received tokens in alice's session");
    assert_logout_request(&provider, &app.received()[0], "demo-app", ALICE, &sid).await;
    let bobs = browser.tokens(&DEMO_SPA, &query_of(&signed_in)["code"]).await;
    let bobs = claims(bobs["id_token"].as_str().unwrap());
    assert_eq!(bobs["sub"], BOB);
    assert_ne!(bobs["sid"], sid.as_str(), "a new provider session for bob");
    // Alice's session has ended: nothing of hers is left to end.
    let (status, _) = browser.admin(&format!("/admin/sessions/{sid}/end"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, ended) = browser.admin(&format!("/admin/users/{ALICE}/end-session"), None).await;
    assert_eq!(ended, json!({ "ended": 0 }));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!((app.received().len(), spa.received().len()), (1, 0), "one token, and none for bob's session");
    assert!(browser.has_session(&DEMO_APP).await, "bob's session runs");
}

#[tokio::test]
async fn the_same_user_signing_in_again_keeps_the_session_its_clients_and_a_restart_finds_it() {
    let (app, dir) = (BackChannel::start().await, TempDir::default());
    let provider = provider_with_state_file(&app, &dir).await;
    let browser = Browser::new(&provider.issuer);
    let earlier = alice_signed_in(&browser).await;
    let sid = claims(&earlier)["sid"].as_str().unwrap().to_owned();
    let cookie = browser.cookie("idp_session").unwrap();
    let login = browser.authorize(&DEMO_SPA, "openid", &[("prompt", "login")]).await;
    browser.sign_in_on(login, "alice").await;
    assert!(app.received().is_empty(), "nothing ended");
    assert_ne!(browser.cookie("idp_session").unwrap(), cookie, "a fresh cookie");

    let provider = provider.restart().await;
    let silent = browser.tokens(&DEMO_APP, &query_of(&browser.silent(&DEMO_APP).await)["code"]).await;
    assert_eq!(claims(silent["id_token"].as_str().unwrap())["sid"], sid.as_str(), "saved under the new cookie");
    // The ID token from before the re-authentication still names this session, and the app,
    // which received tokens before it, is told when the session ends.
    let params = [("id_token_hint", earlier.as_str()), ("post_logout_redirect_uri", APP_HOME)];
    assert_eq!(location(&browser.end_session(&params).await), Some(APP_HOME), "no question asked");
    let received = app.wait_for(1).await;
    assert_logout_request(&provider, &received[0], "demo-app", ALICE, &sid).await;
}

#[tokio::test]
async fn a_client_that_got_no_tokens_in_the_session_or_has_no_back_channel_uri_is_not_told() {
    let spa = BackChannel::start().await;
    let provider = TestProvider::start(|config| back_channel_of(config, "demo-spa", &spa)).await;
    let browser = Browser::new(&provider.issuer);
    // The app (no back-channel URI) received tokens; the SPA only a code it never exchanged.
    let id_token = alice_signed_in(&browser).await;
    assert!(query_of(&browser.silent(&DEMO_SPA).await).contains_key("code"));
    assert!(browser.end_session(&[("id_token_hint", &id_token)]).await.status().is_success());
    assert!(!browser.has_session(&DEMO_APP).await, "the session ended");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(spa.received().is_empty());
    assert_eq!(browser.metrics().await["backchannel_logouts"]["sent"], 0);

    // The control: in a session where the SPA exchanged its code, it is told.
    let id_token = alice_signed_in(&browser).await;
    browser.tokens_for(&DEMO_SPA, "alice", "openid").await;
    assert!(browser.end_session(&[("id_token_hint", &id_token)]).await.status().is_success());
    assert_eq!(spa.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn admin_end_of_one_session_answers_at_once_and_sends_its_logout_tokens_in_the_background() {
    // The app takes 3 s to answer: waiting for it, even for its first attempt only (as
    // /end-session does, up to 2 s), would hold the admin call for seconds.
    let app = BackChannel::slow(std::time::Duration::from_secs(3)).await;
    let provider = provider_with(&app, None).await;
    let (laptop, phone) = (Browser::new(&provider.issuer), Browser::new(&provider.issuer));
    let laptop_sid = claims(&alice_signed_in(&laptop).await)["sid"].as_str().unwrap().to_owned();
    alice_signed_in(&phone).await;

    let started = std::time::Instant::now();
    let (status, body) = laptop.admin(&format!("/admin/sessions/{laptop_sid}/end"), None).await;
    assert!(started.elapsed() < std::time::Duration::from_millis(1000), "not held for the delivery");
    assert_eq!((status, body), (StatusCode::OK, json!({ "ended": true })));
    let received = app.wait_for(1).await;
    assert_logout_request(&provider, &received[0], "demo-app", ALICE, &laptop_sid).await;
    assert!(!laptop.has_session(&DEMO_APP).await);
    assert!(phone.has_session(&DEMO_APP).await, "only that session");

    let (status, body) = laptop.admin(&format!("/admin/sessions/{laptop_sid}/end"), None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown session")));
    let (status, _) = laptop.admin("/admin/sessions/no-such-sid/end", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_end_of_a_users_sessions_sends_a_logout_token_per_session() {
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let (laptop, phone) = (Browser::new(&provider.issuer), Browser::new(&provider.issuer));
    let sids: HashSet<String> = [alice_signed_in(&laptop).await, alice_signed_in(&phone).await]
        .iter()
        .map(|id_token| claims(id_token)["sid"].as_str().unwrap().to_owned())
        .collect();
    let (status, body) = laptop.admin(&format!("/admin/users/{ALICE}/end-session"), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "ended": 2 })));
    let received = app.wait_for(2).await;
    let mut told = HashSet::new();
    for request in &received {
        let sid = claims(request.logout_token())["sid"].as_str().unwrap().to_owned();
        assert_logout_request(&provider, request, "demo-app", ALICE, &sid).await;
        told.insert(sid);
    }
    assert_eq!(told, sids);
}

#[tokio::test]
async fn a_logout_token_signed_before_a_key_rotation_verifies_until_it_expires() {
    // Access and ID tokens live a minute here, shorter than a logout token's two: the retired
    // key must stay published for the longest of the three.
    let app = BackChannel::start().await;
    let provider = TestProvider::start(|config| {
        back_channel_of(config, "demo-app", &app);
        config.lifetimes.access_token_secs = 60;
        config.lifetimes.id_token_secs = 60;
    })
    .await;
    let browser = Browser::new(&provider.issuer);
    let sid = claims(&alice_signed_in(&browser).await)["sid"].as_str().unwrap().to_owned();
    browser.admin(&format!("/admin/sessions/{sid}/end"), None).await;
    let token = app.wait_for(1).await[0].logout_token().to_owned();
    let (status, rotated) = browser.admin("/admin/keys/rotate", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(rotated["kid"], header(&token)["kid"]);

    provider.clock.advance(119);
    let valid =
        validate_logout_token(&token, &jwks(&provider.issuer).await, &provider.issuer, "demo-app", now(&provider));
    assert!(valid.is_ok(), "{valid:?}: its key is still published while it has not expired");
    provider.clock.advance(1);
    let kids = es256_kids(&jwks(&provider.issuer).await);
    assert_eq!(kids, [rotated["kid"].as_str().unwrap()], "then the retired key goes");
}

#[tokio::test]
async fn a_reused_refresh_token_ends_its_provider_session_and_its_clients_are_told() {
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let tokens = browser.tokens_for(&DEMO_APP, "alice", OFFLINE).await;
    let sid = claims(tokens["id_token"].as_str().unwrap())["sid"].as_str().unwrap().to_owned();
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = browser.refresh(&DEMO_APP, &first).await;
    assert_eq!(refreshed.status(), StatusCode::OK);

    let reused = browser.refresh(&DEMO_APP, &first).await;
    assert_eq!(reused.status(), StatusCode::BAD_REQUEST);
    assert!(reused.json::<Value>().await.unwrap()["error_description"].as_str().unwrap().contains("reused"));
    let received = app.wait_for(1).await;
    assert_logout_request(&provider, &received[0], "demo-app", ALICE, &sid).await;
    assert!(!browser.has_session(&DEMO_APP).await, "the session the family came from has ended");
}

#[tokio::test]
async fn a_replayed_code_that_revokes_a_family_ends_its_session_too() {
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let form = browser.authorize(&DEMO_APP, OFFLINE, &[]).await;
    let code = query_of(&browser.sign_in_on(form, "alice").await)["code"].clone();
    let exchange = || {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", DEMO_APP.redirect_uri),
            ("code_verifier", VERIFIER),
        ];
        browser.http.post(browser.url("/token")).basic_auth("demo-app", Some("demo-app-secret")).form(&form).send()
    };
    assert_eq!(exchange().await.unwrap().status(), StatusCode::OK);
    assert_eq!(exchange().await.unwrap().status(), StatusCode::BAD_REQUEST, "replayed: its family is revoked");
    app.wait_for(1).await;
    assert!(!browser.has_session(&DEMO_APP).await);
}

#[tokio::test]
async fn a_client_answering_5xx_gets_the_same_token_three_times_then_it_counts_as_failed() {
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    let app = BackChannel::answering(&[unavailable, unavailable, unavailable, unavailable]).await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let started = std::time::Instant::now();
    let response = browser.end_session(&[("id_token_hint", &id_token)]).await;
    assert!(started.elapsed() < std::time::Duration::from_millis(1400), "not held for the retries");
    assert_eq!(response.status(), StatusCode::OK, "the sign-out does not wait for the retries");
    let received = app.wait_for(3).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500), "backing off: 0.5 s, then 1 s");
    let tokens: HashSet<&str> = received.iter().map(Received::logout_token).collect();
    assert_eq!(tokens.len(), 1, "a retransmission of the same token");
    let metrics = wait_for_metrics(&browser, |m| m["failed"] == 1).await;
    assert_eq!(metrics, json!({ "sent": 3, "delivered": 0, "failed": 1, "retries": 2 }));
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(app.received().len(), 3, "bounded: three attempts in all");
}

#[tokio::test]
async fn a_client_answering_5xx_once_gets_the_token_again_and_it_is_delivered() {
    let app = BackChannel::answering(&[StatusCode::BAD_GATEWAY]).await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    browser.end_session(&[("id_token_hint", &id_token)]).await;
    let received = app.wait_for(2).await;
    assert_eq!(received[0].logout_token(), received[1].logout_token());
    let metrics = wait_for_metrics(&browser, |m| m["delivered"] == 1).await;
    assert_eq!(metrics, json!({ "sent": 2, "delivered": 1, "failed": 0, "retries": 1 }));
}

#[tokio::test]
async fn a_client_that_refuses_the_token_with_400_is_not_asked_again() {
    let app = BackChannel::answering(&[StatusCode::BAD_REQUEST]).await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    browser.end_session(&[("id_token_hint", &id_token)]).await;
    let metrics = wait_for_metrics(&browser, |m| m["failed"] == 1).await;
    assert_eq!(metrics, json!({ "sent": 1, "delivered": 0, "failed": 1, "retries": 0 }));
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(app.received().len(), 1);
}

#[tokio::test]
async fn a_client_that_is_down_is_tried_three_times_and_the_sign_out_does_not_wait() {
    let (_held, closed) = refusing_port();
    let provider = TestProvider::start(|config| {
        config.register_backchannel_logout_uri("demo-app", &format!("http://{closed}/backchannel-logout"));
    })
    .await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let started = std::time::Instant::now();
    let params = [("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", APP_HOME)];
    assert_eq!(location(&browser.end_session(&params).await), Some(APP_HOME));
    assert!(started.elapsed() < std::time::Duration::from_millis(1400), "not held for the retries");
    let metrics = wait_for_metrics(&browser, |m| m["failed"] == 1).await;
    assert_eq!(metrics, json!({ "sent": 3, "delivered": 0, "failed": 1, "retries": 2 }));
}

/// The `backchannel_logouts` metrics once `done` holds of them (10 s at most).
async fn wait_for_metrics(browser: &Browser, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let metrics = browser.metrics().await["backchannel_logouts"].clone();
        if done(&metrics) {
            return metrics;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("metrics never reached the expected state: {}", browser.metrics().await);
}

#[tokio::test]
async fn the_clients_of_a_session_survive_a_restart_and_are_told_when_it_ends() {
    let (app, dir) = (BackChannel::start().await, TempDir::default());
    let provider = provider_with_state_file(&app, &dir).await;
    let browser = Browser::new(&provider.issuer);
    let id_token = alice_signed_in(&browser).await;
    let sid = claims(&id_token)["sid"].as_str().unwrap().to_owned();
    let browser_state = browser.browser_state();

    let provider = provider.restart().await;
    let value = query_of(&browser.silent(&DEMO_APP).await)["session_state"].clone();
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &value, &browser_state), "unchanged", "same browser state");
    browser.end_session(&[("id_token_hint", &id_token)]).await;
    let received = app.wait_for(1).await;
    assert_logout_request(&provider, &received[0], "demo-app", ALICE, &sid).await;
}

// The admin API's logout tokens.

#[tokio::test]
async fn admin_logout_token_without_defects_is_valid_and_reports_the_clients_answer() {
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let request = json!({ "client_id": "demo-app", "sub": ALICE, "sid": "a-sid" });
    let (status, body) = browser.admin("/admin/logout-token", Some(request)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["status"].as_u64(), body["body"].as_str()), (Some(200), Some("")));
    let received = app.wait_for(1).await;
    let claims = assert_logout_request(&provider, &received[0], "demo-app", ALICE, "a-sid").await;
    assert_eq!(body["jti"], claims["jti"]);
    // Either of sub and sid alone makes a valid token too.
    for request in [json!({ "client_id": "demo-app", "sub": ALICE }), json!({ "client_id": "demo-app", "sid": "s" })] {
        let (status, _) = browser.admin("/admin/logout-token", Some(request)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let received = app.wait_for(3).await;
    let jwks = jwks(&provider.issuer).await;
    for request in &received[1..] {
        validate_logout_token(request.logout_token(), &jwks, &provider.issuer, "demo-app", now(&provider)).unwrap();
    }
    assert_eq!(browser.metrics().await["backchannel_logouts"]["sent"], 0, "the admin API's tokens are not counted");
}

#[tokio::test]
async fn admin_logout_token_may_be_typed_only_as_a_jwt_or_not_typed() {
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    for (index, (typing, typ)) in [("typ_generic", json!("JWT")), ("typ_absent", Value::Null)].into_iter().enumerate() {
        let request = json!({ "client_id": "demo-app", "sub": ALICE, "defects": [typing] });
        let (status, body) = browser.admin("/admin/logout-token", Some(request)).await;
        assert_eq!(status, StatusCode::OK, "{typing}: {body}");
        let token = app.wait_for(index + 1).await[index].logout_token().to_owned();
        assert_eq!(header(&token)["typ"], typ, "{typing}");
        assert_eq!(header(&token)["alg"], "ES256", "{typing}: signed as ever");
        assert_eq!(claims(&token)["events"], json!({ "http://schemas.openid.net/event/backchannel-logout": {} }));
    }
}

#[tokio::test]
async fn admin_logout_token_has_exactly_the_defect_asked_for_and_a_spec_true_client_refuses_each() {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use p256::{
        pkcs8::{EncodePublicKey, LineEnding},
        EncodedPoint,
    };

    // The client answers 400 to everything: what matters here is what it was sent.
    let app = BackChannel::answering(&[StatusCode::BAD_REQUEST; 14]).await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let jwks = jwks(&provider.issuer).await;
    let current = &jwks["keys"][0];
    let x = URL_SAFE_NO_PAD.decode(current["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(current["y"].as_str().unwrap()).unwrap();
    let point = EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
    let public_pem =
        p256::PublicKey::from_sec1_bytes(point.as_bytes()).unwrap().to_public_key_pem(LineEnding::LF).unwrap();
    let now = now(&provider);

    let cases = [
        ("bad_signature", Refusal::Signature),
        ("alg_none", Refusal::Alg),
        ("hs256_with_public_key", Refusal::Alg),
        ("unknown_kid", Refusal::Kid),
        ("wrong_iss", Refusal::Iss),
        ("wrong_aud", Refusal::Aud),
        ("expired", Refusal::Exp),
        ("iat_future", Refusal::Iat),
        ("iat_old", Refusal::Iat),
        ("nonce_present", Refusal::Nonce),
        ("events_missing", Refusal::Events),
        ("events_wrong", Refusal::Events),
        ("no_sub_no_sid", Refusal::SubOrSid),
        ("typ_wrong", Refusal::Typ),
    ];
    for (index, (defect, refusal)) in cases.iter().enumerate() {
        let request = json!({ "client_id": "demo-app", "sub": ALICE, "sid": "sid-1", "defects": [defect] });
        let (status, body) = browser.admin("/admin/logout-token", Some(request)).await;
        assert_eq!(status, StatusCode::OK, "{defect}: {body}");
        assert_eq!((body["status"].as_u64(), body["body"].as_str()), (Some(400), Some("refused")), "{defect}");
        let token = app.wait_for(index + 1).await[index].logout_token().to_owned();
        assert_eq!(claims(&token)["jti"], body["jti"], "{defect}");
        assert_eq!(validate_logout_token(&token, &jwks, &provider.issuer, "demo-app", now), Err(*refusal), "{defect}");

        // The defect itself, and nothing else wrong.
        let (header, claims) = (header(&token), claims(&token));
        let signature = token.rsplit('.').next().unwrap();
        let typ = if *defect == "typ_wrong" { "at+jwt" } else { "logout+jwt" };
        assert_eq!(header["typ"], typ, "{defect}");
        match *defect {
            "alg_none" => {
                assert_eq!(header["alg"], "none");
                assert!(signature.is_empty(), "an empty signature");
            }
            "hs256_with_public_key" => {
                assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("HS256"), current["kid"].as_str()));
                let input = &token[..token.rfind('.').unwrap()];
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public_pem.as_bytes());
                let expected = URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, input.as_bytes()));
                assert_eq!(signature, expected, "HMAC-SHA256 keyed with the JWK's public key as PEM");
            }
            "unknown_kid" => {
                assert_eq!(header["alg"], "ES256");
                assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k["kid"] != header["kid"]));
                assert_eq!(URL_SAFE_NO_PAD.decode(signature).unwrap().len(), 64, "an ES256 signature all the same");
            }
            _ => assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("ES256"), current["kid"].as_str())),
        }
        let iss = if *defect == "wrong_iss" { format!("{}/evil", provider.issuer) } else { provider.issuer.clone() };
        assert_eq!(claims["iss"], iss, "{defect}");
        let aud = if *defect == "wrong_aud" { "not-demo-app" } else { "demo-app" };
        assert_eq!(claims["aud"], aud, "{defect}");
        let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
        match *defect {
            "expired" => assert!(exp < now && iat < exp, "{claims}"),
            "iat_future" => assert!(iat >= now + 3600 && exp > iat, "{claims}"),
            "iat_old" => assert!(iat + 3600 <= now && exp == now + 120, "{claims}"),
            _ => assert_eq!((iat, exp), (now, now + 120), "{defect}"),
        }
        assert_eq!(claims.get("nonce").is_some(), *defect == "nonce_present", "{defect}");
        match *defect {
            "events_missing" => assert!(claims.get("events").is_none()),
            "events_wrong" => {
                let events = claims["events"].as_object().expect("an events object");
                assert!(!events.is_empty() && !events.contains_key(LOGOUT_EVENT), "{claims}");
            }
            _ => assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }), "{defect}"),
        }
        if *defect == "no_sub_no_sid" {
            assert!(claims.get("sub").is_none() && claims.get("sid").is_none());
        } else {
            assert_eq!((claims["sub"].as_str(), claims["sid"].as_str()), (Some(ALICE), Some("sid-1")), "{defect}");
        }
        if *defect == "bad_signature" {
            let mut repaired = URL_SAFE_NO_PAD.decode(signature).unwrap();
            repaired[0] ^= 0x01;
            let repaired = format!("{}.{}", &token[..token.rfind('.').unwrap()], URL_SAFE_NO_PAD.encode(repaired));
            validate_logout_token(&repaired, &jwks, &provider.issuer, "demo-app", now)
                .expect("one altered byte, nothing else wrong");
        }
    }
}

#[tokio::test]
async fn admin_logout_token_reuses_a_jti_on_request_so_that_replay_can_be_tested() {
    let app = BackChannel::start().await;
    let provider = provider_with(&app, None).await;
    let browser = Browser::new(&provider.issuer);
    let (_, first) = browser.admin("/admin/logout-token", Some(json!({ "client_id": "demo-app", "sid": "s" }))).await;
    let jti = first["jti"].as_str().unwrap().to_owned();
    let replay = json!({ "client_id": "demo-app", "sid": "s", "replay_jti": jti });
    let (status, second) = browser.admin("/admin/logout-token", Some(replay)).await;
    assert_eq!((status, second["jti"].as_str()), (StatusCode::OK, Some(jti.as_str())));
    let received = app.wait_for(2).await;
    assert_eq!(claims(received[1].logout_token())["jti"], jti);
    let jwks = jwks(&provider.issuer).await;
    validate_logout_token(received[1].logout_token(), &jwks, &provider.issuer, "demo-app", now(&provider)).unwrap();
}

#[tokio::test]
async fn admin_logout_token_refuses_what_it_cannot_build_or_deliver() {
    let app = BackChannel::start().await;
    let (_held, closed) = refusing_port();
    let provider = TestProvider::start(|config| {
        back_channel_of(config, "demo-app", &app);
        config.register_backchannel_logout_uri("demo-spa", &format!("http://{closed}/backchannel-logout"));
    })
    .await;
    let provider_without = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    for (request, expected) in [
        (json!({ "client_id": "intruder", "sid": "s" }), StatusCode::NOT_FOUND),
        (json!({ "client_id": "demo-app" }), StatusCode::BAD_REQUEST),
        (json!({ "client_id": "demo-app", "sid": "s", "defects": ["made_up"] }), StatusCode::BAD_REQUEST),
        (
            json!({ "client_id": "demo-app", "sid": "s", "defects": ["alg_none", "unknown_kid"] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "client_id": "demo-app", "sid": "s", "defects": ["alg_none", "bad_signature"] }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "client_id": "demo-app", "sid": "s", "unknown": 1 }), StatusCode::BAD_REQUEST),
        (json!({ "client_id": "demo-spa", "sid": "s" }), StatusCode::BAD_GATEWAY),
    ] {
        let (status, body) = browser.admin("/admin/logout-token", Some(request.clone())).await;
        assert_eq!(status, expected, "{request}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    assert!(app.received().is_empty());
    let without = Browser::new(&provider_without.issuer);
    let (status, _) = without.admin("/admin/logout-token", Some(json!({ "client_id": "demo-app", "sid": "s" }))).await;
    assert_eq!(status, StatusCode::CONFLICT, "no backchannel_logout_uri");
}

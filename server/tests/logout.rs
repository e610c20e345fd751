//! Logout over real HTTP: back-channel logout tokens (each kind of forgery refused, a valid one
//! ending exactly the right sessions), the push channel that tells every tab, RP-initiated logout
//! with revocation, and the session_state that check_session compares.

mod support;

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::store::seal::SealKey;
use support::{location, push_channel, query, ProxyMode, Pushed, RedisServer, Setup, TestApp};

const ALICE_SUB: &str = "248289761001";
const BOB_SUB: &str = "248289761002";

async fn signed_in(setup: Setup) -> TestApp {
    let app = TestApp::start_with(setup).await;
    assert_eq!(app.sign_in("/").await.status(), StatusCode::SEE_OTHER);
    app
}

/// Has the provider send a logout token (with `defects`) to the app; returns the app's answer.
async fn logout_token(app: &TestApp, body: Value) -> (u16, Value) {
    let answer = app.send_logout_token(body).await;
    let status = answer["status"].as_u64().unwrap() as u16;
    let reply = serde_json::from_str(answer["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
    (status, reply)
}

#[tokio::test]
async fn every_forged_logout_token_is_refused_with_400_and_ends_no_session() {
    let app = signed_in(Setup::default()).await;
    let session = app.session().await;
    let sid = session["sid"].as_str().unwrap().to_owned();
    let jwks_before = app.metrics().await["jwks_requests"].as_u64().unwrap();
    let defects = [
        "bad_signature",
        "alg_none",
        "hs256_with_public_key",
        "unknown_kid",
        "wrong_iss",
        "wrong_aud",
        "expired",
        "iat_future",
        "iat_old",
        "nonce_present",
        "events_missing",
        "events_wrong",
        "no_sub_no_sid",
        "typ_wrong",
    ];
    for defect in defects {
        let (status, reply) = logout_token(&app, json!({ "sub": ALICE_SUB, "sid": sid, "defects": [defect] })).await;
        assert_eq!(status, 400, "{defect}: {reply}");
        assert_eq!(reply["error"], "invalid_request", "{defect}");
        assert_eq!(app.session().await["authenticated"], true, "{defect} ended nothing");
    }
    // The unknown kid made the app fetch the JWKS once more before refusing.
    assert_eq!(app.metrics().await["jwks_requests"].as_u64().unwrap(), jwks_before + 1);
}

/// Explicit typing is only RECOMMENDED (§2.4): Keycloak before 25 typed logout tokens `JWT`.
#[tokio::test]
async fn a_logout_token_typed_only_as_a_jwt_or_not_typed_is_accepted() {
    for typing in ["typ_generic", "typ_absent"] {
        let app = signed_in(Setup::default()).await;
        let sid = app.session().await["sid"].as_str().unwrap().to_owned();
        let (status, reply) = logout_token(&app, json!({ "sub": ALICE_SUB, "sid": sid, "defects": [typing] })).await;
        assert_eq!(status, 200, "{typing}: {reply}");
        assert_eq!(app.session().await["authenticated"], false, "{typing} ended the session");
    }
}

#[tokio::test]
async fn a_replayed_logout_token_is_refused() {
    let app = signed_in(Setup::default()).await;
    let first = app.send_logout_token(json!({ "sub": ALICE_SUB })).await;
    assert_eq!(first["status"], 200, "{first}");
    assert_eq!(app.session().await["authenticated"], false);

    // The same jti again, now naming bob: refused, and bob stays signed in.
    let bob = app.other_browser("bob", "builder").await;
    let jti = first["jti"].as_str().unwrap();
    let (status, reply) = logout_token(&app, json!({ "sub": BOB_SUB, "replay_jti": jti })).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(app.session_of(&bob).await["authenticated"], true);
}

#[tokio::test]
async fn a_valid_logout_token_ends_exactly_the_sessions_it_names() {
    let app = signed_in(Setup::default()).await;
    // Alice in a second browser (another provider session, another sid), and bob.
    let alice_elsewhere = app.other_browser("alice", "wonderland").await;
    let bob = app.other_browser("bob", "builder").await;
    let sid = app.session().await["sid"].as_str().unwrap().to_owned();

    let (status, _) = logout_token(&app, json!({ "sub": ALICE_SUB, "sid": sid })).await;
    assert_eq!(status, 200);
    assert_eq!(app.session().await["authenticated"], false, "the session of that sid ended");
    assert_eq!(app.session_of(&alice_elsewhere).await["authenticated"], true, "alice's other sid did not");
    assert_eq!(app.session_of(&bob).await["authenticated"], true, "nor bob's");

    // With only `sub`, every session of that user ends.
    let (status, _) = logout_token(&app, json!({ "sub": ALICE_SUB })).await;
    assert_eq!(status, 200);
    assert_eq!(app.session_of(&alice_elsewhere).await["authenticated"], false);
    assert_eq!(app.session_of(&bob).await["authenticated"], true);
}

#[tokio::test]
async fn the_backchannel_route_answers_no_store_and_needs_no_origin_but_a_token() {
    let app = TestApp::start().await;
    let response = reqwest::Client::new()
        .post(app.url("/auth/backchannel-logout"))
        .form(&[("logout_token", "not.a.jwt")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "validated, not refused as cross-origin");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let empty =
        reqwest::Client::new().post(app.url("/auth/backchannel-logout")).form(&[("x", "y")]).send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    // Not a form at all: the same 400 with no-store (§2.8), not axum's 415 without it.
    let not_a_form = reqwest::Client::new()
        .post(app.url("/auth/backchannel-logout"))
        .header("Content-Type", "text/plain")
        .body("logout_token=not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_form.status(), StatusCode::BAD_REQUEST);
    assert_eq!(not_a_form.headers()["cache-control"], "no-store");
    assert_eq!(not_a_form.json::<Value>().await.unwrap()["error"], "invalid_request");
}

/// Opens `/auth/events` for `browser` at `base` and waits for the named event.
async fn next_event(browser: &reqwest::Client, base: &str, wanted: &str) -> bool {
    let response = browser.get(format!("{base}/auth/events")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(&format!("event: {wanted}")) {
                return true;
            }
        }
        false
    })
    .await;
    found.unwrap_or(false)
}

#[tokio::test]
async fn every_tab_hears_of_a_backchannel_logout_through_the_push_channel() {
    let app = signed_in(Setup::default()).await;
    let listening = push_channel(&app.browser, &app.url).await;
    let (status, _) = logout_token(&app, json!({ "sub": ALICE_SUB })).await;
    assert_eq!(status, 200);
    assert_eq!(listening.await.unwrap(), Pushed::Ended("ended_elsewhere".into()), "the open stream was told");
    // A tab that connects later is told at once.
    assert!(next_event(&app.browser, &app.url, "session-ended").await);
}

/// Another user signing in on this browser replaces the first user's session: the first user's
/// open tabs are told at once, not at their next renewal. The same user signing in again is not
/// an ending: their tabs go on with the new session, their push channels closed so that they
/// reconnect to it (left on the old session, they would hear of no later logout).
#[tokio::test]
async fn another_user_signing_in_on_this_browser_tells_the_first_users_tabs() {
    let app = signed_in(Setup::default()).await;
    let app = &app;
    let sign_in_again_as = |username: &'static str, password: &'static str| async move {
        // The provider forgets the user (and tells the app nothing), so that it asks who signs in.
        let subject = app.session().await["subject"].as_str().unwrap().to_owned();
        app.admin_post(&format!("/users/{subject}/end-session?backchannel=false")).await;
        let authorize = app.begin_login("/").await;
        let callback = app.submit_provider_form(&authorize, &[("username", username), ("password", password)]).await;
        assert_eq!(app.get(&callback).await.status(), StatusCode::SEE_OTHER);
    };

    let listening = push_channel(&app.browser, &app.url).await;
    sign_in_again_as("alice", "wonderland").await;
    assert_eq!(listening.await.unwrap(), Pushed::Closed, "alice again: not an ending, the tab reconnects");

    // Reconnected, it watches the new session: its end reaches the tab.
    let listening = push_channel(&app.browser, &app.url).await;
    sign_in_again_as("bob", "builder").await;
    assert_eq!(listening.await.unwrap(), Pushed::Ended("ended_elsewhere".into()), "bob: alice's tabs are told");
    assert_eq!(app.session().await["subject"], BOB_SUB);
}

#[tokio::test]
async fn with_redis_a_logout_handled_by_one_instance_reaches_tabs_on_another() {
    let redis = RedisServer::start().await;
    let setup =
        Setup::default().var("SESSION_STORE", redis.url()).var("SESSION_SEAL_KEYS", SealKey::generate().to_base64());
    let app = signed_in(setup).await;
    let other = app.another_instance(&[]).await;
    let listening = push_channel(&app.browser, &other.url).await;
    // The provider delivers to the first instance (APP_URL); the tab listens on the other.
    let (status, _) = logout_token(&app, json!({ "sub": ALICE_SUB })).await;
    assert_eq!(status, 200);
    assert_eq!(
        listening.await.unwrap(),
        Pushed::Ended("ended_elsewhere".into()),
        "the other instance heard it through Redis"
    );
}

/// A logout that fails half way because the store does (answered 503, so the provider retries)
/// must not have used up its `jti`: the retry of the same token is accepted and ends the session.
/// Redis is made to fail one command at a time by giving a key the wrong type.
#[tokio::test]
async fn a_logout_the_store_failed_is_accepted_when_the_provider_retries_the_same_token() {
    let redis = RedisServer::start().await;
    let setup =
        Setup::default().var("SESSION_STORE", redis.url()).var("SESSION_SEAL_KEYS", SealKey::generate().to_base64());
    let app = signed_in(setup).await;
    let sid = app.session().await["sid"].as_str().unwrap().to_owned();
    let connection = redis.connection().await;
    let keys: Vec<String> = redis.dump().await.into_iter().map(|(key, _)| key).collect();
    let key_named = |part: &str| keys.iter().find(|key| key.contains(part)).unwrap().clone();
    let (index, tokens) = (key_named("sessions-of-sid:"), key_named("tokens:"));
    // Puts `key` aside and a value of the other type in its place (`SET` a string over a set,
    // `SADD` a set over a string), so that the app's command on it fails with WRONGTYPE; or puts
    // it back.
    let swap = |key: &str, wrong_type: Option<&str>| {
        let mut pipe = ::redis::pipe();
        match wrong_type {
            Some(command) => pipe.cmd("RENAME").arg(key).arg("aside").cmd(command).arg(key).arg("wrong type"),
            None => pipe.cmd("DEL").arg(key).cmd("RENAME").arg("aside").arg(key),
        };
        let mut connection = connection.clone();
        async move { pipe.query_async::<()>(&mut connection).await.unwrap() }
    };
    // The first delivery: the sessions of the sid cannot be listed.
    swap(&index, Some("SET")).await;
    let first = app.send_logout_token(json!({ "sub": ALICE_SUB, "sid": sid })).await;
    assert_eq!(first["status"], 503, "{first}");
    swap(&index, None).await;
    let jti = first["jti"].as_str().unwrap().to_owned();

    // The retry: now the session's token set cannot be read.
    swap(&tokens, Some("SADD")).await;
    let (status, reply) = logout_token(&app, json!({ "sub": ALICE_SUB, "sid": sid, "replay_jti": jti })).await;
    assert_eq!(status, 503, "a session that cannot be read is not skipped: {reply}");
    swap(&tokens, None).await;
    assert_eq!(app.session().await["authenticated"], true, "nothing ended yet");

    // The store is back: the same token again is no replay, and ends the session.
    let (status, reply) = logout_token(&app, json!({ "sub": ALICE_SUB, "sid": sid, "replay_jti": jti })).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(app.session().await["authenticated"], false);
    // And only now is the jti used up.
    let (status, _) = logout_token(&app, json!({ "sub": ALICE_SUB, "sid": sid, "replay_jti": jti })).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sign_out_revokes_the_refresh_token_and_ends_the_provider_session_too() {
    let app = signed_in(Setup::default()).await;
    let response = app.browser.post(app.url("/auth/logout")).header("Origin", &app.url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let end_session = location(&response);
    assert!(end_session.starts_with(&app.provider.url("/end-session?")), "{end_session}");
    let params = query(&end_session);
    assert!(params["id_token_hint"].starts_with("eyJ"));
    assert_eq!(params["post_logout_redirect_uri"], app.url("/"));
    assert_eq!(params["client_id"], "demo-app");
    assert!(params.contains_key("state"));
    assert_eq!(app.session().await["authenticated"], false);

    // Revoked at the provider: the family cannot be used any more.
    let families: Value =
        reqwest::get(app.admin_url(&format!("/users/{ALICE_SUB}/families"))).await.unwrap().json().await.unwrap();
    assert_eq!(families["families"][0]["active"], false);
    assert_eq!(families["families"][0]["revoked_reason"], "revocation");

    // The provider ends its session and comes back to the app.
    let back = app.get(&end_session).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert!(location(&back).starts_with(&app.url("/")));
    let again = app.get(&app.begin_login("/").await).await;
    assert_eq!(again.status(), StatusCode::OK, "the provider asks for the password again");
}

#[tokio::test]
async fn a_failed_revocation_still_signs_out() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward)).await;
    let proxy = app.proxy.as_ref().unwrap();
    proxy.set(ProxyMode::Unavailable);
    let response = app.browser.post(app.url("/auth/logout")).header("Origin", &app.url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(proxy.refused() >= 1, "the revocation was tried");
    assert!(location(&response).contains("/end-session?"), "and the provider's logout still follows");
    assert_eq!(app.session().await["authenticated"], false);
    let families: Value =
        reqwest::get(app.admin_url(&format!("/users/{ALICE_SUB}/families"))).await.unwrap().json().await.unwrap();
    assert_eq!(families["families"][0]["active"], true, "the provider never heard of it");
}

#[tokio::test]
async fn the_session_carries_the_providers_session_state_for_check_session() {
    let app = signed_in(Setup::default()).await;
    let session = app.session().await;
    assert!(session["session_state"].as_str().is_some_and(|s| s.contains('.')), "{session}");
    assert_eq!(session["check_session"]["iframe"], app.provider.url("/check-session"));
    assert_eq!(session["check_session"]["client_id"], "demo-app");
    assert_eq!(session["check_session"]["interval_secs"], 5);

    let off = signed_in(Setup::default().var("CHECK_SESSION_INTERVAL_SECS", "0")).await;
    assert_eq!(off.session().await["check_session"], Value::Null);
}

#[tokio::test]
async fn after_a_backchannel_logout_the_api_refuses_that_sessions_access_token() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward)).await;
    let access_token = app.proxy.as_ref().unwrap().access_tokens_seen().pop().unwrap();
    let call = || {
        app.browser
            .post(app.url("/api/reports"))
            .bearer_auth(&access_token)
            .json(&json!({ "fields": { "title": "x" } }))
            .send()
    };
    assert_eq!(call().await.unwrap().status(), StatusCode::CREATED, "good before");
    let sid = app.session().await["sid"].as_str().unwrap().to_owned();
    let (status, _) = logout_token(&app, json!({ "sub": ALICE_SUB, "sid": sid })).await;
    assert_eq!(status, 200);
    assert_eq!(call().await.unwrap().status(), StatusCode::UNAUTHORIZED, "refused though not expired");
}

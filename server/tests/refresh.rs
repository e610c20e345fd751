//! Renewal over real HTTP: `POST /auth/refresh` against a live provider that rotates refresh
//! tokens and detects their reuse, counted at the provider's admin API. Then the protected API,
//! which the long form saves through.

mod support;

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{header_of, IdTokenChange, ProxyMode, Setup, TestApp};

const ALICE_SUB: &str = "248289761001";

async fn signed_in(setup: Setup) -> TestApp {
    let app = TestApp::start_with(setup).await;
    assert_eq!(app.sign_in("/").await.status(), StatusCode::SEE_OTHER);
    app
}

fn outcome(value: &Value) -> &str {
    value["outcome"].as_str().unwrap_or_default()
}

/// The embedded provider signs this app's ID tokens RS256 when its client is registered so (OIDC
/// Core §15.1), as most providers do: sign-in and renewal verify them from the RSA key of its
/// JWK Set as they do ES256 ones.
#[tokio::test]
async fn id_tokens_signed_rs256_sign_in_and_renew() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward).provider(|config| {
        let client = config.clients.iter_mut().find(|client| client.client_id == "demo-app").unwrap();
        client.id_token_signed_response_alg = idp::SigningAlg::Rs256;
    }))
    .await;
    assert_eq!(app.session().await["authenticated"], true);
    for _ in 0..2 {
        let renewed = app.refresh().await;
        assert_eq!(outcome(&renewed), "renewed", "{renewed}");
    }
    let id_tokens = app.proxy.as_ref().unwrap().id_tokens_seen();
    assert_eq!(id_tokens.len(), 3, "the sign-in's and two renewals'");
    for id_token in id_tokens {
        assert_eq!(header_of(&id_token)["alg"], "RS256");
    }
}

#[tokio::test]
async fn each_renewal_rotates_the_refresh_token_and_the_next_one_uses_the_new_token() {
    let app = signed_in(Setup::default()).await;
    let before = app.session().await["access_token_expires_at"].as_u64().unwrap();
    for _ in 0..3 {
        let renewed = app.refresh().await;
        assert_eq!(outcome(&renewed), "renewed", "{renewed}");
        assert!(renewed["expires_at"].as_u64().unwrap() >= before);
        assert!(renewed["expires_in"].as_u64().unwrap() > 0);
    }
    let metrics = app.metrics().await;
    assert_eq!(metrics["token_requests"]["refresh_token"], 3);
    assert_eq!(metrics["refresh_tokens_reused"], 0, "each renewal presented the token it was last given");
    let families: Value =
        reqwest::get(app.admin_url(&format!("/users/{ALICE_SUB}/families"))).await.unwrap().json().await.unwrap();
    assert_eq!(families["families"][0]["rotations"], 3);
    assert_eq!(families["families"][0]["active"], true);
}

#[tokio::test]
async fn fifty_concurrent_renewals_of_one_session_make_one_token_request() {
    let app = signed_in(Setup::default()).await;
    let renewals = (0..50).map(|_| app.refresh());
    let outcomes = join_all(renewals).await;
    let first = &outcomes[0];
    assert_eq!(outcome(first), "renewed", "{first}");
    assert!(outcomes.iter().all(|o| o == first), "every caller gets the one renewal's result");

    let metrics = app.metrics().await;
    assert_eq!(metrics["token_requests"]["refresh_token"], 1);
    assert_eq!(metrics["refresh_tokens_reused"], 0);
    assert_eq!(metrics["families_revoked"], 0);

    // The rotated token was stored: the next renewal works and is a second request.
    assert_eq!(outcome(&app.refresh().await), "renewed");
    assert_eq!(app.refresh_grants().await, 2);
}

#[tokio::test]
async fn server_functions_that_need_a_fresh_access_token_share_one_renewal() {
    // Eight-second access tokens: after four seconds, less than the five seconds the server wants
    // left before it hands a token to an API; a renewed one has three seconds of slack.
    let app = signed_in(Setup::default().provider(|c| c.lifetimes.access_token_secs = 8)).await;
    tokio::time::sleep(Duration::from_millis(4100)).await;
    // The provider's clock stands still unless moved: moved with the wall clock, the renewed
    // token expires eight seconds from now, not from the provider's start.
    app.provider.clock.advance(4);
    let submits = (0..30).map(|_| app.submit_form(&[("title", "Flood"), ("details", "Water everywhere")]));
    for saved in join_all(submits).await {
        assert_eq!(saved, json!({ "outcome": "saved", "characters": 21 }));
    }
    assert_eq!(app.refresh_grants().await, 1, "thirty callers, one renewal");
    assert_eq!(app.metrics().await["refresh_tokens_reused"], 0);
}

#[tokio::test]
async fn a_provider_that_is_down_is_transient_and_the_session_survives_until_it_is_back() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward)).await;
    let proxy = app.proxy.as_ref().unwrap();
    proxy.set(ProxyMode::Unavailable);
    let transient = app.refresh().await;
    assert_eq!(outcome(&transient), "transient", "{transient}");
    assert!(transient["retry_after"].as_u64().unwrap() > 0);
    assert_eq!(app.session().await["authenticated"], true, "a provider outage does not sign anyone out");

    proxy.set(ProxyMode::Forward);
    let renewed = app.refresh().await;
    assert_eq!(outcome(&renewed), "renewed", "{renewed}");
    assert_eq!(app.metrics().await["refresh_tokens_reused"], 0, "the token kept through the outage was good");
}

#[tokio::test]
async fn a_revoked_refresh_token_is_refused_then_dropped_and_no_other_session_is_touched() {
    let app = signed_in(Setup::default()).await;
    let bob = app.other_browser("bob", "builder").await;
    let families: Value =
        reqwest::get(app.admin_url(&format!("/users/{ALICE_SUB}/families"))).await.unwrap().json().await.unwrap();
    let family = families["families"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.admin_post(&format!("/families/{family}/revoke")).await.status(), StatusCode::OK);

    let refused = app.refresh().await;
    assert_eq!(refused, json!({ "outcome": "reauth_required", "reason": "invalid_grant" }));
    let grants = app.refresh_grants().await;
    // The refused token is never presented again; the session is left for the iframe, which
    // renews through the provider's session, or for the user.
    assert_eq!(app.session().await["authenticated"], true);
    assert_eq!(app.session().await["has_refresh_token"], json!(null));
    assert_eq!(app.refresh().await, json!({ "outcome": "reauth_required", "reason": "no_refresh_token" }));
    assert_eq!(app.refresh_grants().await, grants, "no second token request with a refused token");

    assert_eq!(outcome(&app.refresh_as(&bob).await), "renewed", "bob's session is untouched");
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_provider_session_and_so_this_session_and_no_other() {
    let app = signed_in(Setup::default()).await;
    let bob = app.other_browser("bob", "builder").await;
    assert_eq!(outcome(&app.refresh().await), "renewed", "alice's family now has a retired token");

    let simulated = app.admin_post(&format!("/users/{ALICE_SUB}/simulate-reuse")).await;
    assert_eq!(simulated.status(), StatusCode::OK);
    // The provider ends alice's provider session and tells the app over the back channel.
    let mut ended = false;
    for _ in 0..50 {
        if app.session().await["authenticated"] == false {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ended, "the back-channel logout ended the session");
    assert_eq!(app.refresh().await, json!({ "outcome": "reauth_required", "reason": "signed_out" }));
    assert_eq!(outcome(&app.refresh_as(&bob).await), "renewed", "bob's session is untouched");
    assert_eq!(app.session_of(&bob).await["authenticated"], true);
}

#[tokio::test]
async fn a_refresh_token_that_is_not_rotated_is_refused_by_default() {
    let app = signed_in(Setup::default().provider(no_rotation)).await;
    assert_eq!(outcome(&app.refresh().await), "renewed", "the access token is renewed once");
    assert_eq!(
        app.refresh().await,
        json!({ "outcome": "reauth_required", "reason": "no_refresh_token" }),
        "the unrotated refresh token was not kept"
    );
    assert_eq!(app.refresh_grants().await, 1);
}

#[tokio::test]
async fn a_refresh_token_that_is_not_rotated_is_reused_when_allowed() {
    let setup = Setup::default().provider(no_rotation).var("ALLOW_UNSAFE_REUSE_REFRESH_TOKEN", "true");
    let app = signed_in(setup).await;
    for _ in 0..3 {
        assert_eq!(outcome(&app.refresh().await), "renewed");
    }
    assert_eq!(app.refresh_grants().await, 3);
}

fn no_rotation(config: &mut idp::ProviderConfig) {
    config.clients.iter_mut().filter(|c| c.client_id == "demo-app").for_each(|c| c.rotate_refresh_tokens = false);
}

#[tokio::test]
async fn without_refresh_tokens_offline_access_is_not_asked_and_renewal_needs_the_user() {
    let app = TestApp::start_with(Setup::default().var("USE_REFRESH_TOKEN", "false")).await;
    let authorize = app.begin_login("/").await;
    assert!(!support::query(&authorize)["scope"].contains("offline_access"));
    app.get(&app.sign_in_at_provider(&authorize).await).await;
    assert_eq!(app.refresh().await, json!({ "outcome": "reauth_required", "reason": "no_refresh_token" }));
    assert_eq!(app.refresh_grants().await, 0);
    assert_eq!(app.session().await["authenticated"], true, "the access token is still good");
}

#[tokio::test]
async fn renewal_without_a_session_asks_for_sign_in() {
    let app = TestApp::start().await;
    assert_eq!(app.refresh().await, json!({ "outcome": "reauth_required", "reason": "signed_out" }));
}

#[tokio::test]
async fn renewal_needs_a_same_origin_request() {
    let app = signed_in(Setup::default()).await;
    let cross_site =
        app.browser.post(app.url("/auth/refresh")).header("Origin", "https://evil.example").send().await.unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.refresh_grants().await, 0);
}

#[tokio::test]
async fn a_refreshed_id_token_that_fails_validation_ends_the_session() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward)).await;
    app.proxy.as_ref().unwrap().set(ProxyMode::TamperIdToken);
    assert_eq!(app.refresh().await, json!({ "outcome": "reauth_required", "reason": "id_token_rejected" }));
    assert_eq!(app.session().await["authenticated"], false);
}

/// OIDC Core §12.2: a refreshed ID token tells of the sign-in its refresh token came from. Each
/// one here is signed with the provider's own key, so only what it says can have it refused;
/// the one that says what the provider said is accepted, and so is one that tells of a later
/// re-authentication of the same user at the provider (as Keycloak's do).
#[tokio::test]
async fn a_refreshed_id_token_of_another_sign_in_ends_the_session() {
    for (change, accepted) in [
        (IdTokenChange::Nothing, true),
        (IdTokenChange::ReauthenticatedAuthTime, true),
        (IdTokenChange::Subject, false),
        (IdTokenChange::DropAzp, false),
        (IdTokenChange::EarlierAuthTime, false),
        (IdTokenChange::FutureAuthTime, false),
    ] {
        let app = signed_in(Setup::default().proxy_signing_id_tokens()).await;
        // Two minutes on: a re-authentication just before the refresh is later than the sign-in.
        app.provider.clock.advance(120);
        app.proxy.as_ref().unwrap().set(ProxyMode::ReissueIdToken(change));
        let renewed = app.refresh().await;
        if accepted {
            assert_eq!(outcome(&renewed), "renewed", "{change:?}: {renewed}");
        } else {
            assert_eq!(renewed, json!({ "outcome": "reauth_required", "reason": "id_token_rejected" }), "{change:?}");
        }
        assert_eq!(app.session().await["authenticated"], accepted, "{change:?}");
    }
}

#[tokio::test]
async fn a_provider_key_rotation_mid_session_breaks_neither_renewal_nor_sign_in_nor_the_api() {
    let app = signed_in(Setup::default()).await;
    let jwks_before = app.metrics().await["jwks_requests"].as_u64().unwrap();
    let rotated: Value = app.admin_post("/keys/rotate").await.json().await.unwrap();
    assert_eq!(rotated["kids"].as_array().unwrap().len(), 2, "the old key stays published: {rotated}");

    // The refreshed ID token is signed with a key the app has not seen: it fetches the JWKS once.
    assert_eq!(outcome(&app.refresh().await), "renewed");
    assert_eq!(app.metrics().await["jwks_requests"].as_u64().unwrap(), jwks_before + 1);
    // The new access token, signed with the new key, passes the protected API.
    assert_eq!(app.submit_form(&[("title", "After rotation")]).await["outcome"], "saved");
    // And a fresh sign-in validates with the keys already fetched.
    app.other_browser("bob", "builder").await;
    assert_eq!(app.metrics().await["jwks_requests"].as_u64().unwrap(), jwks_before + 1);
}

/// A key rotation while the provider's JWKS cannot be fetched for a moment (a CDN's 503): the
/// renewal tries the fetch again, rather than end a session whose refresh token the provider has
/// already rotated.
#[tokio::test]
async fn a_renewal_after_a_key_rotation_outlasts_a_jwks_briefly_unavailable() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward)).await;
    assert!(app.admin_post("/keys/rotate").await.status().is_success());
    let proxy = app.proxy.as_ref().unwrap();
    proxy.set(ProxyMode::JwksUnavailable);
    // Back once the renewal's fetch of the new key has been refused.
    let back = async {
        let refused = async {
            while proxy.refused() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), refused).await.expect("the key set fetch is refused");
        proxy.set(ProxyMode::Forward);
    };
    let (renewed, ()) = tokio::join!(app.refresh(), back);
    assert_eq!(outcome(&renewed), "renewed", "{renewed}");
    assert_eq!(app.session().await["authenticated"], true);
    assert_eq!(outcome(&app.refresh().await), "renewed", "with the refresh token the provider rotated");
}

/// Anyone can POST a logout token with a forged `kid`, which makes the app fetch the JWKS again and
/// then wait an interval before the next re-fetch. That must not make it refuse the provider's own
/// ID token signed with a key rotated just after: the session would end for nothing.
#[tokio::test]
async fn a_forged_kid_in_a_logout_token_does_not_make_a_renewal_after_a_key_rotation_fail() {
    let app = signed_in(Setup::default()).await;
    let forged = app.send_logout_token(json!({ "sub": "248289761001", "defects": ["unknown_kid"] })).await;
    assert_eq!(forged["status"], 400, "{forged}");
    let jwks_before = app.metrics().await["jwks_requests"].as_u64().unwrap();
    app.admin_post("/keys/rotate").await;

    assert_eq!(outcome(&app.refresh().await), "renewed");
    assert_eq!(app.metrics().await["jwks_requests"].as_u64().unwrap(), jwks_before + 1);
    assert_eq!(app.session().await["authenticated"], true);
}

#[tokio::test]
async fn forged_kids_cost_the_provider_one_jwks_request_per_interval() {
    let app = TestApp::start_with(Setup::default().proxy(ProxyMode::ForgeKid)).await;
    let jwks_before = app.metrics().await["jwks_requests"].as_u64().unwrap();
    for _ in 0..3 {
        let browser = support::new_browser();
        let login = browser.get(app.login_url("/")).send().await.unwrap();
        let authorize = support::location(&login);
        let page = browser.get(&authorize).send().await.unwrap().text().await.unwrap();
        let interaction = idp::testing::interaction_id(&page).unwrap();
        let form = [("interaction", interaction.as_str()), ("username", "alice"), ("password", "wonderland")];
        let login_url = reqwest::Url::parse(&authorize).unwrap().join("/login").unwrap();
        let callback = support::location(&browser.post(login_url).form(&form).send().await.unwrap());
        let response = browser.get(&callback).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "an unknown kid is refused");
    }
    assert_eq!(app.metrics().await["jwks_requests"].as_u64().unwrap(), jwks_before + 1);
}

#[tokio::test]
async fn saving_the_form_goes_through_the_protected_api_without_a_renewal_while_the_token_is_fresh() {
    let app = signed_in(Setup::default()).await;
    let saved = app.submit_form(&[("title", "Coffee machine"), ("summary", "It broke.")]).await;
    assert_eq!(saved, json!({ "outcome": "saved", "characters": 23 }));
    assert_eq!(app.refresh_grants().await, 0);

    let unknown = app.submit_form(&[("admin", "true")]).await;
    assert_eq!(unknown["outcome"], "rejected", "{unknown}");
}

#[tokio::test]
async fn an_api_401_triggers_one_renewal_and_one_retry() {
    // The app is told its access tokens live an hour; they live two seconds.
    let setup = Setup::default().proxy(ProxyMode::OverstateExpiry).provider(|c| c.lifetimes.access_token_secs = 2);
    let app = signed_in(setup).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    // The provider's clock stands still unless moved: well ahead, so that the renewed token
    // cannot expire on the way however slow the machine (its `iat` is within the app's tolerance).
    app.provider.clock.advance(30);
    let saved = app.submit_form(&[("title", "Late")]).await;
    assert_eq!(saved, json!({ "outcome": "saved", "characters": 4 }));
    assert_eq!(app.refresh_grants().await, 1);
}

#[tokio::test]
async fn an_api_that_keeps_refusing_gets_one_retry_and_never_a_loop() {
    let app = signed_in(Setup::default().var("API_AUDIENCE", "some-other-api")).await;
    let refused = app.submit_form(&[("title", "Nope")]).await;
    assert_eq!(refused["outcome"], "rejected", "{refused}");
    assert_eq!(app.refresh_grants().await, 1, "one renewal, then it gave up");
    assert_eq!(app.session().await["authenticated"], true);
}

#[tokio::test]
async fn submitting_after_the_session_ended_says_so() {
    let app = signed_in(Setup::default()).await;
    app.browser.post(app.url("/auth/logout")).header("Origin", &app.url).send().await.unwrap();
    assert_eq!(app.submit_form(&[("title", "x")]).await, json!({ "outcome": "session_ended", "reason": "signed_out" }));
}

/// A tab of a user whose session ended, left open on a shared browser where another user has
/// signed in since: its report is not saved as the other user's.
#[tokio::test]
async fn a_report_from_a_page_of_another_user_is_not_saved_as_the_signed_in_one() {
    let app = signed_in(Setup::default()).await;
    let refused = app.submit_form_as("someone-who-signed-out", &[("title", "Not mine")]).await;
    assert_eq!(refused, json!({ "outcome": "session_ended", "reason": "signed_out" }));
    assert_eq!(app.submit_form(&[("title", "Mine")]).await["outcome"], "saved");
}

#[tokio::test]
async fn the_protected_api_refuses_requests_without_a_valid_bearer_token() {
    let app = TestApp::start().await;
    let report = json!({ "fields": { "title": "x" } });
    // Without a Bearer token the challenge names no error (RFC 6750 §3.1); with a bad one it does.
    let cases = [
        (None, "Bearer"),
        (Some("Bearer not-a-jwt"), r#"Bearer error="invalid_token""#),
        (Some("Basic YWxpY2U6d29uZGVybGFuZA=="), "Bearer"),
    ];
    for (authorization, challenge) in cases {
        let mut request = app.browser.post(app.url("/api/reports")).json(&report);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(response.headers()["www-authenticate"], challenge, "{authorization:?}");
    }
}

#[tokio::test]
async fn auto_userinfo_adds_the_userinfo_claims_at_sign_in() {
    for (setting, shown) in [("true", true), ("false", false)] {
        let app = signed_in(Setup::default().var("AUTO_USERINFO", setting)).await;
        let page = app.browser.get(app.url("/profile")).header("Accept", "text/html").send().await.unwrap();
        let html = page.text().await.unwrap();
        assert_eq!(html.contains(r#"data-testid="userinfo-claims""#), shown, "AUTO_USERINFO={setting}");
        if shown {
            assert!(html.contains("alice@example.org"));
        }
    }
}

#[tokio::test]
async fn the_renewal_policy_in_the_session_comes_from_the_settings() {
    let setup = Setup::default().var("RENEW_BEFORE_EXPIRY_SECS", "7").var("RENEW_JITTER_SECS", "2");
    let app = signed_in(setup).await;
    let session = app.session().await;
    assert_eq!(
        session["renewal"],
        json!({ "before_expiry_secs": 7, "jitter_secs": 2, "strategy": "auto", "silent_renew_timeout_secs": 10 })
    );
    assert_eq!(session["has_refresh_token"], true);
    assert!(session["access_token_expires_in"].as_u64().unwrap() > 50);
}

//! Silent renew over real HTTP, as the hidden iframe's requests go: `/auth/silent-renew` to the
//! provider with `prompt=none`, back to `/auth/silent-callback`, and the tiny page that posts the
//! outcome. A cookie-keeping client plays the iframe (it shares the browser's cookies).

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::{claims_of, location, push_channel, query, with_param, ProxyMode, Pushed, Setup, TestApp};

const ALICE_SUB: &str = "248289761001";

async fn signed_in(setup: Setup) -> TestApp {
    let app = TestApp::start_with(setup).await;
    assert_eq!(app.sign_in("/").await.status(), StatusCode::SEE_OTHER);
    app
}

/// The outcome the page would post to its parent.
fn outcome_of(page: &str) -> String {
    let marker = r#"<meta name="silent-renew-outcome" content=""#;
    let start = page.find(marker).expect("an outcome page") + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// `/auth/silent-renew`, then the provider; returns the silent callback URL it sends back to.
async fn silent_authorize(app: &TestApp) -> String {
    let start = app.get(&app.url("/auth/silent-renew")).await;
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    assert_eq!(start.headers()["x-frame-options"], "SAMEORIGIN");
    let authorize = location(&start);
    let params = query(&authorize);
    assert_eq!(params["prompt"], "none");
    assert_eq!(params["redirect_uri"], app.url("/auth/silent-callback"));
    assert!(params["id_token_hint"].starts_with("eyJ"), "the hint goes from the server to the provider");
    assert!(params.contains_key("state") && params.contains_key("nonce") && params.contains_key("code_challenge"));
    let answer = app.get(&authorize).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "prompt=none never shows a page");
    location(&answer)
}

/// The page at `url` (a silent callback), which must be an outcome page, never a 5xx.
async fn silent_callback(app: &TestApp, url: &str) -> String {
    let response = app.get(url).await;
    assert_eq!(response.status(), StatusCode::OK, "an outcome page, never a 5xx");
    response.text().await.unwrap()
}

#[tokio::test]
async fn silent_renew_through_the_provider_session_stores_new_tokens_and_posts_only_the_outcome() {
    let app = signed_in(Setup::default()).await;
    let before = app.session().await;
    let codes_before = app.metrics().await["token_requests"]["authorization_code"].as_u64().unwrap();
    let callback = silent_authorize(&app).await;
    assert!(callback.starts_with(&app.url("/auth/silent-callback?")), "{callback}");

    let response = app.get(&callback).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let page = response.text().await.unwrap();
    assert_eq!(outcome_of(&page), "renewed");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'sha256-") && csp.contains("frame-ancestors 'self'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(page.contains("window.location.origin"), "posted to this app's own origin only");
    let code = query(&callback)["code"].clone();
    assert!(!page.contains(&code) && !page.contains("eyJ"), "never a code or a token in the page");

    assert_eq!(app.metrics().await["token_requests"]["authorization_code"], codes_before + 1);
    let session = app.session().await;
    assert_eq!(session["authenticated"], true);
    assert_eq!(session["subject"], ALICE_SUB);
    // The new tokens are stored: the provider salts each session_state afresh.
    assert_ne!(session["session_state"], before["session_state"], "the new session_state is kept");
    assert!(session["session_state"].is_string());
}

#[tokio::test]
async fn a_silent_callback_with_an_unknown_state_is_a_failure_outcome_and_changes_nothing() {
    let app = signed_in(Setup::default()).await;
    let callback = silent_authorize(&app).await;
    let page = silent_callback(&app, &with_param(&callback, "state", "forged")).await;
    assert_eq!(outcome_of(&page), "unknown_state");
    let page = silent_callback(&app, &app.url("/auth/silent-callback")).await;
    assert_eq!(outcome_of(&page), "unknown_state", "no state at all");
    assert_eq!(app.session().await["authenticated"], true);

    // The real one still works once, and a replay of it is unknown again.
    let page = silent_callback(&app, &callback).await;
    assert_eq!(outcome_of(&page), "renewed");
    let page = silent_callback(&app, &callback).await;
    assert_eq!(outcome_of(&page), "unknown_state");
    assert_eq!(app.session().await["authenticated"], true);
}

/// A query axum cannot parse (here `state` twice) still gets the outcome page, so that the parent
/// hears of it at once instead of waiting for its timeout.
#[tokio::test]
async fn a_silent_callback_with_a_malformed_query_is_a_failure_outcome() {
    let app = signed_in(Setup::default()).await;
    let page = silent_callback(&app, &app.url("/auth/silent-callback?state=a&state=b")).await;
    assert_eq!(outcome_of(&page), "malformed_callback");
    assert_eq!(app.session().await["authenticated"], true);
}

/// `login_required` to `prompt=none` with this session's ID token: the provider has no session
/// for the user any more (here ended without a back-channel logout). Session Management 1.0 §5:
/// that is a logout. The session ends here too, with its refresh token, so that a reload does not
/// sign the user back in with it; and the push channel says so.
#[tokio::test]
async fn login_required_is_the_outcome_and_ends_the_session_and_its_refresh_token() {
    let app = signed_in(Setup::default().without_backchannel_logout()).await;
    // Another tab of this browser, listening on the push channel.
    let listening = push_channel(&app.browser, &app.url).await;
    let ended = app.admin_post(&format!("/users/{ALICE_SUB}/end-session?backchannel=false")).await;
    assert_eq!(ended.status(), StatusCode::OK);
    let callback = silent_authorize(&app).await;
    assert_eq!(query(&callback)["error"], "login_required");
    let page = silent_callback(&app, &callback).await;
    assert_eq!(outcome_of(&page), "login_required");
    assert_eq!(app.session().await["authenticated"], false);
    assert_eq!(app.refresh().await["outcome"], "reauth_required", "no refresh token renews it");
    assert_eq!(listening.await.unwrap(), Pushed::Ended("ended_elsewhere".into()), "the open stream was told");
}

/// A silent renewal started for a session that a sign-in has since replaced: its answer is not
/// about the new session, and must not end it.
#[tokio::test]
async fn an_answer_to_a_silent_renewal_of_a_replaced_session_changes_nothing() {
    let app = signed_in(Setup::default()).await;
    let refused = with_param(&silent_authorize(&app).await, "error", "login_required");
    let authorize = with_param(&app.begin_login("/").await, "prompt", "login");
    let callback = app.sign_in_at_provider(&authorize).await;
    assert_eq!(app.get(&callback).await.status(), StatusCode::SEE_OTHER, "signed in again");
    assert_eq!(outcome_of(&silent_callback(&app, &refused).await), "unknown_state");
    assert_eq!(app.session().await["authenticated"], true, "the new session goes on");
}

/// The provider session is there but wants the user (`consent_required`,
/// `interaction_required`): the session is kept for their interactive sign-in.
#[tokio::test]
async fn a_provider_that_wants_the_user_is_the_outcome_and_the_session_is_kept() {
    let app = signed_in(Setup::default()).await;
    let refused = with_param(&silent_authorize(&app).await, "error", "consent_required");
    assert_eq!(outcome_of(&silent_callback(&app, &refused).await), "consent_required");
    assert_eq!(app.session().await["authenticated"], true, "kept until the user signs in again");
    assert_eq!(app.refresh().await["outcome"], "renewed", "and its refresh token still renews");
}

/// A user signs in at the provider with `prompt=login`, in the browser where alice is signed in
/// to the app, and the answer is not taken to the app.
async fn signs_in_at_the_provider(app: &TestApp, username: &str, password: &str) {
    let login = format!("{}/authorize?{}", app.provider.issuer, {
        let start = app.get(&app.login_url("/")).await;
        let mut params: Vec<(String, String)> = query(&location(&start)).into_iter().collect();
        params.push(("prompt".into(), "login".into()));
        serde_urlencoded::to_string(params).unwrap()
    });
    app.submit_provider_form(&login, &[("username", username), ("password", password)]).await;
}

/// A silent renew that brings no refresh token keeps the one the session has, and with it what
/// that token's ID tokens repeat of its sign-in (OIDC Core §12.2): here the user signed in again
/// at the provider meanwhile, so the silent renew's ID token tells of a later `auth_time` than
/// the refreshed ones will.
#[tokio::test]
async fn a_refresh_token_kept_through_a_silent_renew_renews_after_the_user_signed_in_again_at_the_provider() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward)).await;
    let proxy = app.proxy.as_ref().unwrap();
    app.provider.clock.advance(60);
    signs_in_at_the_provider(&app, "alice", "wonderland").await;

    proxy.set(ProxyMode::DropRefreshToken);
    let callback = silent_authorize(&app).await;
    assert_eq!(outcome_of(&silent_callback(&app, &callback).await), "renewed");
    let auth_times: Vec<i64> =
        proxy.id_tokens_seen().iter().map(|jwt| claims_of(jwt)["auth_time"].as_i64().unwrap()).collect();
    assert_eq!(auth_times.len(), 2);
    assert_eq!(auth_times[1], auth_times[0] + 60, "the silent renew's ID token tells of the second sign-in");

    proxy.set(ProxyMode::Forward);
    let renewed: Value = app.refresh().await;
    assert_eq!(renewed["outcome"], "renewed", "{renewed}");
    let refreshed = proxy.id_tokens_seen().last().map(|jwt| claims_of(jwt)["auth_time"].clone());
    assert_eq!(refreshed, Some(auth_times[0].into()), "the refreshed ID token tells of the first");
}

#[tokio::test]
async fn an_answer_for_another_subject_ends_the_session() {
    // A provider that ignores id_token_hint and has no back-channel logout (so nothing tells the
    // app that bob's sign-in ended alice's provider session), and a browser where bob has since
    // signed in there: the app's own check of the subject is its only defence.
    let app = signed_in(Setup::default().proxy(ProxyMode::StripHint).without_backchannel_logout()).await;
    signs_in_at_the_provider(&app, "bob", "builder").await;
    assert_eq!(app.session().await["authenticated"], true, "nothing has told the app yet");

    let callback = silent_authorize(&app).await;
    let page = silent_callback(&app, &callback).await;
    assert_eq!(outcome_of(&page), "subject_changed");
    let session: Value = app.session().await;
    assert_eq!(session["authenticated"], false, "neither alice's session nor bob's");
}

#[tokio::test]
async fn another_user_signing_in_at_the_provider_ends_the_session_by_back_channel_logout() {
    // With back-channel logout, bob's sign-in ends alice's provider session, and the provider's
    // logout token for it ends the app's session before the sign-in is answered.
    let app = signed_in(Setup::default()).await;
    signs_in_at_the_provider(&app, "bob", "builder").await;
    let session: Value = app.session().await;
    assert_eq!(session["authenticated"], false, "the logout token for alice's sid ended it");
    let response = app.get(&app.url("/auth/silent-renew")).await;
    assert_eq!(outcome_of(&response.text().await.unwrap()), "signed_out", "nothing left to renew");
}

#[tokio::test]
async fn a_state_of_one_kind_of_request_is_refused_by_the_other_callback() {
    let app = signed_in(Setup::default()).await;
    let silent = silent_authorize(&app).await;
    let at_interactive = app.get(&silent.replace("/auth/silent-callback", "/auth/callback")).await;
    assert_eq!(at_interactive.status(), StatusCode::BAD_REQUEST);

    // The provider session answers the interactive request at once, with a code.
    let interactive = location(&app.get(&app.begin_login("/").await).await);
    let page = silent_callback(&app, &interactive.replace("/auth/callback", "/auth/silent-callback")).await;
    assert_eq!(outcome_of(&page), "unknown_state");
}

#[tokio::test]
async fn silent_renew_without_a_session_posts_signed_out() {
    let app = TestApp::start().await;
    let response = app.get(&app.url("/auth/silent-renew")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(outcome_of(&response.text().await.unwrap()), "signed_out");
}

#[tokio::test]
async fn app_pages_may_frame_only_this_origin_and_the_provider_and_are_never_framed() {
    let app = signed_in(Setup::default()).await;
    let page = app.browser.get(app.url("/form")).header("Accept", "text/html").send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains(&format!("frame-src 'self' {}", app.provider.issuer)), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
}

/// A new provider session for `username` in this browser, begun through the public client
/// `demo-spa` (so nothing of the app's is consented to or accepted in it); returns the page that
/// follows the password (a consent or terms page), which is left unanswered.
async fn provider_session_through_another_client(app: &TestApp, username: &str, password: &str) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", "demo-spa"),
        ("redirect_uri", "http://localhost:3000/spa/callback"),
        ("scope", "openid"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
        ("state", "other-client"),
    ];
    let url = format!("{}/authorize?{}", app.provider.issuer, serde_urlencoded::to_string(params).unwrap());
    let page = app.get(&url).await.text().await.unwrap();
    let interaction = idp::testing::interaction_id(&page).unwrap();
    let form = [("interaction", interaction.as_str()), ("username", username), ("password", password)];
    let response = app.browser.post(format!("{}/login", app.provider.issuer)).form(&form).send().await.unwrap();
    response.text().await.unwrap()
}

/// Answers the consent or terms page the provider shows after the password, with `action`.
async fn answer_provider_page(app: &TestApp, page: &str, path: &str, action: &str) -> reqwest::Response {
    let interaction = idp::testing::interaction_id(page).expect("a page with an interaction");
    let form = [("interaction", interaction.as_str()), ("action", action)];
    app.browser.post(format!("{}{path}", app.provider.issuer)).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn consent_required_is_the_outcome_when_the_provider_session_lacks_the_apps_consent() {
    let app = TestApp::start_with(Setup::default().provider(|config| {
        config.clients.iter_mut().filter(|c| c.client_id == "demo-app").for_each(|c| c.require_consent = true);
    }))
    .await;
    let authorize = app.begin_login("/").await;
    let page = app.get(&authorize).await.text().await.unwrap();
    let interaction = idp::testing::interaction_id(&page).unwrap();
    let form = [("interaction", interaction.as_str()), ("username", "alice"), ("password", "wonderland")];
    let consent = app.browser.post(format!("{}/login", app.provider.issuer)).form(&form).send().await.unwrap();
    let allowed = answer_provider_page(&app, &consent.text().await.unwrap(), "/consent", "allow").await;
    app.get(&location(&allowed)).await;
    assert_eq!(app.session().await["authenticated"], true);

    // Signed out at the provider, then in again through another client: no consent for the app.
    app.admin_post(&format!("/users/{ALICE_SUB}/end-session?backchannel=false")).await;
    provider_session_through_another_client(&app, "alice", "wonderland").await;
    let callback = silent_authorize(&app).await;
    assert_eq!(outcome_of(&silent_callback(&app, &callback).await), "consent_required");
    assert_eq!(app.session().await["authenticated"], true, "kept until the user acts");
}

#[tokio::test]
async fn interaction_required_is_the_outcome_while_the_user_has_terms_to_accept() {
    let app = TestApp::start_with(Setup::default().provider(|config| {
        config.users.iter_mut().filter(|u| u.username == "alice").for_each(|u| u.interaction_required = true);
    }))
    .await;
    let authorize = app.begin_login("/").await;
    let page = app.get(&authorize).await.text().await.unwrap();
    let interaction = idp::testing::interaction_id(&page).unwrap();
    let form = [("interaction", interaction.as_str()), ("username", "alice"), ("password", "wonderland")];
    let terms = app.browser.post(format!("{}/login", app.provider.issuer)).form(&form).send().await.unwrap();
    let accepted = answer_provider_page(&app, &terms.text().await.unwrap(), "/terms", "accept").await;
    app.get(&location(&accepted)).await;
    assert_eq!(app.session().await["authenticated"], true);

    // A new provider session whose terms page is still unanswered.
    app.admin_post(&format!("/users/{ALICE_SUB}/end-session?backchannel=false")).await;
    let pending = provider_session_through_another_client(&app, "alice", "wonderland").await;
    assert!(pending.contains("Updated terms"), "{pending}");
    let callback = silent_authorize(&app).await;
    assert_eq!(outcome_of(&silent_callback(&app, &callback).await), "interaction_required");
}

/// A journal line written while a refresh is at the provider (here a silent renew the provider
/// refused) must not cost the refresh its result: the provider has retired the old refresh token,
/// so dropping the rotated one would make the next renewal a reuse, and the family revoked.
#[tokio::test]
async fn a_journal_line_written_during_a_refresh_keeps_the_rotated_refresh_token() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward)).await;
    let refused = with_param(&silent_authorize(&app).await, "error", "consent_required");
    let proxy = app.proxy.as_ref().unwrap();
    proxy.set(ProxyMode::SlowTokens);
    let (before, answered) = (proxy.token_requests(), proxy.access_tokens_seen().len());
    let (refreshed, page) = tokio::join!(app.refresh(), async {
        // The refresh has read the session and its token request is held at the proxy.
        proxy.token_requests_beyond(before).await;
        let page = silent_callback(&app, &refused).await;
        assert_eq!(proxy.access_tokens_seen().len(), answered, "written while the refresh was at the provider");
        page
    });
    assert_eq!(outcome_of(&page), "consent_required");
    assert_eq!(refreshed["outcome"], "renewed", "{refreshed}");
    proxy.set(ProxyMode::Forward);
    let next = app.refresh().await;
    assert_eq!(next["outcome"], "renewed", "the rotated refresh token was kept: {next}");
    let session = app.session().await;
    assert_eq!(session["authenticated"], true, "{session}");
}

/// A silent renew that lands while a refresh of the same session is at the provider: the refresh's
/// result no longer applies (the session has a new token family) and is dropped, but the session
/// is alive and renewed, and the browser is told so, not that it was signed out.
#[tokio::test]
async fn a_refresh_overtaken_by_a_silent_renew_reports_the_session_renewed() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward)).await;
    let renewing = silent_authorize(&app).await;
    let proxy = app.proxy.as_ref().unwrap();
    proxy.set(ProxyMode::SlowAnswers { token_ms: 1_000, jwks_ms: 0 });
    let before = proxy.token_requests();
    let (refreshed, page) = tokio::join!(app.refresh(), async {
        // The refresh's answer is held; the silent renew's exchange goes straight through.
        proxy.token_requests_beyond(before).await;
        proxy.set(ProxyMode::Forward);
        silent_callback(&app, &renewing).await
    });
    assert_eq!(outcome_of(&page), "renewed");
    assert_eq!(refreshed["outcome"], "renewed", "{refreshed}");
    let session = app.session().await;
    assert_eq!(session["authenticated"], true, "{session}");
    assert_eq!(refreshed["expires_at"], session["access_token_expires_at"], "the silent renew's token");
    assert_eq!(app.refresh().await["outcome"], "renewed", "with the silent renew's refresh token");
}

/// The same for a silent renew: a journal line written while its code is exchanged does not turn
/// the renewal into a failure.
#[tokio::test]
async fn a_journal_line_written_during_a_silent_renew_does_not_fail_it() {
    let app = signed_in(Setup::default().proxy(ProxyMode::Forward)).await;
    let renewing = silent_authorize(&app).await;
    let refused = with_param(&silent_authorize(&app).await, "error", "consent_required");
    let proxy = app.proxy.as_ref().unwrap();
    proxy.set(ProxyMode::SlowTokens);
    let (before, answered) = (proxy.token_requests(), proxy.access_tokens_seen().len());
    let (renewed, refused) = tokio::join!(silent_callback(&app, &renewing), async {
        // The code exchange is held at the proxy.
        proxy.token_requests_beyond(before).await;
        let page = silent_callback(&app, &refused).await;
        assert_eq!(proxy.access_tokens_seen().len(), answered, "written while the code was at the provider");
        page
    });
    assert_eq!(outcome_of(&refused), "consent_required");
    assert_eq!(outcome_of(&renewed), "renewed");
    proxy.set(ProxyMode::Forward);
    assert_eq!(app.refresh().await["outcome"], "renewed", "and the refresh token still renews");
}

/// A silent renew can move a session to a new provider session (the old one ended, the user
/// signed in at the provider again). A logout token that names the old `sid` (and the user) is
/// about the old provider session: it must not end the session, which now belongs to the new one.
#[tokio::test]
async fn a_logout_token_for_the_provider_session_left_behind_does_not_end_the_session() {
    let app = signed_in(Setup::default()).await;
    let old_sid = app.session().await["sid"].as_str().unwrap().to_owned();
    let ended = app.admin_post(&format!("/sessions/{old_sid}/end?backchannel=false")).await;
    assert_eq!(ended.status(), StatusCode::OK);
    provider_session_through_another_client(&app, "alice", "wonderland").await;
    let callback = silent_authorize(&app).await;
    assert_eq!(outcome_of(&silent_callback(&app, &callback).await), "renewed");
    let new_sid = app.session().await["sid"].as_str().unwrap().to_owned();
    assert_ne!(new_sid, old_sid, "the session moved to the new provider session");

    let old = app.send_logout_token(serde_json::json!({ "sub": ALICE_SUB, "sid": old_sid })).await;
    assert_eq!(old["status"], 200, "{old}");
    assert_eq!(app.session().await["authenticated"], true, "the old provider session's logout is not this one's");

    let new = app.send_logout_token(serde_json::json!({ "sub": ALICE_SUB, "sid": new_sid })).await;
    assert_eq!(new["status"], 200, "{new}");
    assert_eq!(app.session().await["authenticated"], false);
}

/// `/auth/silent-renew` acts (a sign-in in flight; with the provider session gone, the end of the
/// app's session), so a page of another site must not be able to send the browser there: not
/// as a navigation, not in a frame of its own.
#[tokio::test]
async fn silent_renew_is_refused_to_anything_but_this_apps_own_iframe() {
    let app = signed_in(Setup::default().without_backchannel_logout()).await;
    let ended = app.admin_post(&format!("/users/{ALICE_SUB}/end-session?backchannel=false")).await;
    assert_eq!(ended.status(), StatusCode::OK);
    for (site, dest) in [("cross-site", "document"), ("same-site", "iframe"), ("same-origin", "document")] {
        let start = app
            .browser
            .get(app.url("/auth/silent-renew"))
            .header("sec-fetch-site", site)
            .header("sec-fetch-dest", dest)
            .send()
            .await
            .unwrap();
        if start.status() == StatusCode::SEE_OTHER {
            // Followed as the browser would: the provider answers login_required, which ends
            // the session at the silent callback.
            let callback = location(&app.get(&location(&start)).await);
            silent_callback(&app, &callback).await;
        }
        assert_eq!(start.status(), StatusCode::FORBIDDEN, "{site} {dest}");
        assert_eq!(app.session().await["authenticated"], true, "{site} {dest}: the session stays");
    }
    // Its own iframe goes through.
    let own = app
        .browser
        .get(app.url("/auth/silent-renew"))
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
}

//! The fault panel's routes: present with the embedded provider (development) and nowhere else,
//! and each fault injected for real and written into the session's journal, which the dashboard
//! draws.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::{free_port, new_browser, sign_in_through, temp_dir, ServerProcess, TestApp};

#[tokio::test]
async fn outside_development_the_fault_routes_do_not_exist() {
    let app = TestApp::start().await;
    app.sign_in("/").await;
    assert_eq!(app.get(&app.url("/dev/faults")).await.status(), StatusCode::NOT_FOUND);
    let post = app.browser.post(app.url("/dev/faults/expire-access-token")).header("Origin", &app.url);
    assert_eq!(post.send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let details = session_details(&app.browser, &app.url).await;
    assert_eq!(details["dev_faults"], false);
}

/// The real binary with its embedded provider, as `cargo leptos watch` runs it; and that
/// provider's address.
async fn development_server() -> (ServerProcess, std::path::PathBuf, String) {
    let dir = temp_dir("dev-faults");
    let port = free_port();
    let provider = format!("127.0.0.1:{}", free_port());
    let vars = [
        ("APP_URL", format!("http://127.0.0.1:{port}")),
        ("EMBEDDED_IDP_ADDR", provider.clone()),
        ("SESSION_STORE", "memory".to_owned()),
    ];
    (ServerProcess::start(&dir, port, &vars).await, dir, provider)
}

async fn inject(browser: &reqwest::Client, url: &str, fault: &str) -> (StatusCode, Value) {
    let response = browser.post(format!("{url}/dev/faults/{fault}")).header("Origin", url).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

async fn refresh(browser: &reqwest::Client, url: &str) -> Value {
    let response = browser.post(format!("{url}/auth/refresh")).header("Origin", url).send().await.unwrap();
    response.json().await.unwrap()
}

async fn session_details(browser: &reqwest::Client, url: &str) -> Value {
    let response = browser
        .post(format!("{url}/api/session_details"))
        .header("Origin", url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn steps(details: &Value) -> Vec<String> {
    details["journal"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let detail = entry["detail"].as_str().unwrap_or_default();
            let step = format!("{} {}", entry["step"].as_str().unwrap(), entry["outcome"].as_str().unwrap());
            if detail.is_empty() {
                step
            } else {
                format!("{step}: {detail}")
            }
        })
        .collect()
}

#[tokio::test]
async fn in_development_each_fault_is_injected_for_real_and_journaled() {
    let (server, _dir, _) = development_server().await;
    let url = server.url.clone();
    let browser = new_browser();
    let (status, _) = inject(&browser, &url, "expire-access-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "faults need a signed-in session");
    sign_in_through(&browser, &url).await;

    // The access token counts as expired; the renewal that follows rotates the refresh token.
    assert_eq!(inject(&browser, &url, "expire-access-token").await.0, StatusCode::OK);
    let session: Value = browser.get(format!("{url}/auth/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(session["access_token_expires_in"], 0);
    assert_eq!(refresh(&browser, &url).await["outcome"], "renewed");

    // The provider down, then back.
    let (status, answer) = inject(&browser, &url, "provider-down?on=true").await;
    assert_eq!((status, answer["on"].as_bool()), (StatusCode::OK, Some(true)));
    let down: Value = browser.get(format!("{url}/dev/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(down["provider_down"], true);
    assert_eq!(refresh(&browser, &url).await["outcome"], "transient");
    inject(&browser, &url, "provider-down?on=false").await;
    assert_eq!(refresh(&browser, &url).await["outcome"], "renewed");

    // A lost response: the provider rotated, the server never heard.
    assert_eq!(inject(&browser, &url, "lose-next-response").await.0, StatusCode::OK);
    let lost = refresh(&browser, &url).await;
    assert_eq!(
        (lost["outcome"].as_str(), lost["detail"].as_str()),
        (Some("transient"), Some("the token response was lost (injected fault)"))
    );

    let details = session_details(&browser, &url).await;
    assert_eq!(details["dev_faults"], true);
    assert_eq!(details["journal"]["rotations"], 2, "two renewals went through; the lost one never arrived");
    let signed_in_at = details["journal"]["signed_in_at"].as_u64().unwrap();
    // The provider's refresh_expires_in (its idle lifetime) counts from the last renewal, which
    // came a moment after the sign-in.
    let family_ends_in = details["journal"]["refresh_expires_at"].as_u64().unwrap() - signed_in_at;
    assert!((28800..28810).contains(&family_ends_in), "{family_ends_in} s after the sign-in");
    assert_eq!(
        steps(&details),
        [
            "interactive ok",
            "fault ok: expire-access-token",
            "refresh_token ok",
            "fault ok: provider-down on",
            "refresh_token transient: the provider failed",
            "fault ok: provider-down off",
            "refresh_token ok",
            "fault ok: lose-next-response",
            "refresh_token transient: the token response was lost (injected fault)",
        ]
    );
    let took = &details["journal"]["entries"][2]["took_ms"];
    assert!(took.is_u64(), "a refresh says how long the token request took: {took}");

    // The retry presents the retired token: with the strict default (no grace window) that is
    // reuse, the family is revoked and the session cannot go on.
    assert_eq!(refresh(&browser, &url).await["outcome"], "reauth_required");
}

/// The same user signed in from three browsers: a fault injected from one hits that session (its
/// provider session, its refresh token family), not the same user's others.
#[tokio::test]
async fn a_fault_hits_the_session_it_was_injected_from_not_the_same_users_other_browsers() {
    let (server, _dir, provider) = development_server().await;
    let url = server.url.clone();
    let browsers = [new_browser(), new_browser(), new_browser()];
    for browser in &browsers {
        sign_in_through(browser, &url).await;
        // A renewal, so that the family has a retired token to replay.
        assert_eq!(refresh(browser, &url).await["outcome"], "renewed");
    }
    let [first, second, third] = &browsers;

    let (status, answer) = inject(first, &url, "refresh-token-reuse").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(refresh(first, &url).await["outcome"], "reauth_required", "this session's family is revoked");
    assert_eq!(refresh(second, &url).await["outcome"], "renewed", "the other browsers' families are not");

    let (status, answer) = inject(second, &url, "end-provider-session").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The user's provider sessions still running, ended now: only the third browser's.
    let still_running: Value = reqwest::Client::new()
        .post(format!("http://{provider}/admin/users/248289761001/end-session?backchannel=false"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still_running["ended"], 1, "{still_running}");
    assert_eq!(refresh(third, &url).await["outcome"], "renewed");
}

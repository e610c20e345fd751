//! The backend-for-frontend sign-in over real HTTP: the app and the provider on ephemeral ports,
//! a cookie-keeping client as the browser.

mod support;

use reqwest::StatusCode;
use support::{
    free_port, location, new_browser, query, sign_in_through, temp_dir, with_param, ProxyMode, ServerProcess, Setup,
    TestApp,
};

fn cookie_named<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
}

#[tokio::test]
async fn sign_in_returns_to_the_requested_page_and_keeps_the_tokens_on_the_server() {
    let app = TestApp::start().await;
    let login = app.get(&app.login_url("/profile?tab=claims")).await;
    let cookie_before = cookie_named(&login, "session").expect("the sign-in in flight lives in a session").to_owned();
    let authorize = location(&login);
    let params = query(&authorize);
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["redirect_uri"], app.url("/auth/callback"));
    assert!(params.contains_key("state") && params.contains_key("nonce"));

    let callback = app.sign_in_at_provider(&authorize).await;
    let response = app.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/profile?tab=claims");
    let cookie_after = cookie_named(&response, "session").expect("a new session cookie at sign-in");
    assert!(cookie_after.contains("HttpOnly") && cookie_after.contains("SameSite=Lax"), "{cookie_after}");
    assert_ne!(session_id(&cookie_before), session_id(cookie_after), "the session id is cycled at sign-in");

    let session = app.session().await;
    assert_eq!(session["authenticated"], true);
    assert_eq!(session["subject"], "248289761001");
    assert_eq!(session["display_name"], "Alice Liddell");
    assert!(session["sid"].is_string());
    assert!(session["access_token_expires_at"].as_u64().unwrap() > server::unix_now());
    let text = session.to_string();
    assert!(!text.contains("eyJ"), "no JWT in the session JSON: {text}");
}

fn session_id(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

/// A query axum cannot parse (a parameter twice) gets the app's error page and `no-store`, like
/// any other refusal, not axum's plain-text 400.
#[tokio::test]
async fn a_malformed_query_at_login_or_callback_gets_the_error_page() {
    let app = TestApp::start().await;
    let login = app.get(&app.url("/auth/login?return_to=%2F&return_to=%2Fprofile")).await;
    let callback = app.get(&app.url("/auth/callback?state=a&state=b")).await;
    for response in [login, callback] {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert!(response.text().await.unwrap().contains("data-testid=\"auth-error\""));
    }
}

#[tokio::test]
async fn session_is_signed_out_before_sign_in() {
    let app = TestApp::start().await;
    assert_eq!(app.session().await, serde_json::json!({ "authenticated": false }));
}

#[tokio::test]
async fn callback_with_a_forged_state_is_refused_and_the_real_one_still_works() {
    let app = TestApp::start().await;
    let callback = app.sign_in_at_provider(&app.begin_login("/").await).await;
    let refused = app.get(&with_param(&callback, "state", "forged-state")).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("does not belong to a sign-in started in this browser"));
    assert_eq!(app.session().await["authenticated"], false);

    let accepted = app.get(&callback).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.session().await["authenticated"], true);
}

#[tokio::test]
async fn callback_without_a_sign_in_in_progress_is_refused() {
    let app = TestApp::start().await;
    let response = app.get(&app.url("/auth/callback?code=abc&state=xyz")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // A forged callback costs the server no session record, and the browser no cookie.
    assert_eq!(cookie_named(&response, "session"), None);
}

#[tokio::test]
async fn callback_from_another_browser_is_refused() {
    let app = TestApp::start().await;
    let callback = app.sign_in_at_provider(&app.begin_login("/").await).await;
    // The attacker's browser has no session holding this state (login CSRF, code injection).
    let other = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = other.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let metrics = app.metrics().await;
    assert_eq!(metrics["token_requests"]["authorization_code"], 0, "refused before the code is exchanged: {metrics}");
    assert_eq!(app.get(&callback).await.status(), StatusCode::SEE_OTHER, "the browser it was for still signs in");
}

#[tokio::test]
async fn replayed_callback_is_refused_and_the_session_survives() {
    let app = TestApp::start().await;
    let callback = app.sign_in_at_provider(&app.begin_login("/").await).await;
    assert_eq!(app.get(&callback).await.status(), StatusCode::SEE_OTHER);
    let replay = app.get(&callback).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.session().await["authenticated"], true, "a bad callback never ends a good session");
}

/// Two callbacks at once with one `state` (a redirect delivered twice, a quick reload): the code
/// goes to the provider once, which would otherwise see it replayed and revoke what the first
/// exchange got (RFC 6749 §4.1.2).
#[tokio::test]
async fn the_same_callback_twice_at_once_exchanges_the_code_once() {
    let app = TestApp::start_with(Setup::default().proxy(ProxyMode::SlowTokens)).await;
    let proxy = app.proxy.as_ref().unwrap();
    let callback = app.sign_in_at_provider(&app.begin_login("/").await).await;
    let before = proxy.token_requests();
    let (first, second) = tokio::join!(app.get(&callback), app.get(&callback));
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::BAD_REQUEST]);
    assert_eq!(proxy.token_requests() - before, 1, "the code went to the provider once");
    assert_eq!(app.session().await["authenticated"], true);
    assert_eq!(app.refresh().await["outcome"], "renewed", "and what it got was not revoked");
}

#[tokio::test]
async fn tampered_id_token_is_refused() {
    let app = TestApp::start_with(Setup::default().proxy(ProxyMode::TamperIdToken)).await;
    let response = app.sign_in("/profile").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(response.text().await.unwrap().contains("could not be verified"));
    assert_eq!(app.session().await["authenticated"], false);
}

#[tokio::test]
async fn return_to_pointing_off_site_is_refused() {
    let app = TestApp::start().await;
    let targets =
        ["https://evil.example/", "//evil.example/", "/\\evil.example", "/\t/evil.example", "/.//evil.example"];
    for target in targets {
        let response = app.get(&app.login_url(target)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{target:?}");
        assert!(response.headers().get(reqwest::header::LOCATION).is_none(), "{target:?}");
    }
}

#[tokio::test]
async fn provider_error_is_shown_and_does_not_sign_in() {
    let app = TestApp::start().await;
    let cancelled = app.submit_provider_form(&app.begin_login("/").await, &[("action", "cancel")]).await;
    let response = app.get(&cancelled).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("Sign-in was cancelled"));
    assert_eq!(app.session().await["authenticated"], false);
}

#[tokio::test]
async fn callback_naming_another_issuer_is_refused() {
    let app = TestApp::start().await;
    let callback = app.sign_in_at_provider(&app.begin_login("/").await).await;
    let response = app.get(&with_param(&callback, "iss", "https://evil.example")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.session().await["authenticated"], false);
}

/// RFC 9207 §2.4: the provider says in discovery that it always sends `iss`, so a response
/// without it is not its own (a mix-up: another provider's response, stripped of its name).
#[tokio::test]
async fn callback_without_iss_is_refused_when_the_provider_always_sends_it() {
    let app = TestApp::start().await;
    let callback = app.sign_in_at_provider(&app.begin_login("/").await).await;
    assert_eq!(query(&callback)["iss"], app.provider.issuer, "the provider names itself");
    let mut url = reqwest::Url::parse(&callback).unwrap();
    let kept: Vec<(String, String)> = url.query_pairs().into_owned().filter(|(name, _)| name != "iss").collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let response = app.get(url.as_str()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.session().await["authenticated"], false);
}

#[tokio::test]
async fn sign_out_needs_a_same_origin_request() {
    let app = TestApp::start().await;
    app.sign_in("/").await;
    let cross_site =
        app.browser.post(app.url("/auth/logout")).header("Origin", "https://evil.example").send().await.unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.session().await["authenticated"], true);

    let same_origin = app.browser.post(app.url("/auth/logout")).header("Origin", &app.url).send().await.unwrap();
    assert_eq!(same_origin.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.session().await["authenticated"], false);
}

#[tokio::test]
async fn protected_page_sends_a_signed_out_browser_to_sign_in_and_back() {
    let app = TestApp::start().await;
    let response = app.browser.get(app.url("/profile?tab=claims")).header("Accept", "text/html").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/auth/login?return_to=%2Fprofile%3Ftab%3Dclaims");

    app.sign_in("/profile").await;
    let page = app.browser.get(app.url("/profile")).header("Accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store", "a page that shows who is signed in");
    let nonce = csp_nonce(&page);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the page's scripts carry the CSP's nonce");
    assert!(html.contains("Alice Liddell"));
    assert!(!html.contains("eyJ"), "no JWT in the page");

    // The not-found page is a rendered page too: its scripts may run (and hydrate).
    let missing = app.browser.get(app.url("/no-such-page")).header("Accept", "text/html").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let nonce = csp_nonce(&missing);
    let html = missing.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")));
    assert!(html.contains("Alice Liddell"), "and it shows who is signed in, as every page does");
}

/// The wasm's loader, fetched beside pages that redirect to sign-in, is always the file: never
/// another request's redirect (leptos_axum's file handler once answered about one in three of
/// them with the page's 302, and that page never hydrated).
#[tokio::test]
async fn static_files_never_carry_another_requests_answer() {
    let app = TestApp::start().await;
    let requests = (0..300).map(|i| {
        let (browser, url) = (app.browser.clone(), app.url.clone());
        async move {
            let path = if i % 2 == 0 { "/form" } else { "/pkg/oidc-session.js" };
            let response = browser.get(format!("{url}{path}")).header("Accept", "text/html").send().await.unwrap();
            (path, response.status(), response.headers().get("location").cloned(), response.text().await.unwrap())
        }
    });
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    for handle in handles {
        let (path, status, location, body) = handle.await.unwrap();
        if path == "/form" {
            assert_eq!(status, StatusCode::FOUND, "signed out, the form page sends the browser to sign in");
        } else {
            assert_eq!((status, location), (StatusCode::OK, None), "the file itself");
            assert_eq!(body, support::SITE_JS);
        }
    }
}

/// The nonce of a rendered page's CSP (`script-src 'self' 'nonce-…'`).
fn csp_nonce(page: &reqwest::Response) -> String {
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next());
    nonce.unwrap_or_else(|| panic!("a page CSP with a nonce: {csp}")).to_owned()
}

/// Served over https, every answer tells the browser to use https only from then on (RFC 6797);
/// over plain http (development) it would mean nothing and is not sent.
#[tokio::test]
async fn over_https_every_answer_asks_for_https_from_then_on() {
    let app = TestApp::start_with(Setup::default().var("APP_URL", "https://app.example")).await;
    for path in ["/", "/auth/session", "/pkg/no-such-file.js"] {
        let response = app.get(&app.url(path)).await;
        assert_eq!(response.headers()["strict-transport-security"], "max-age=31536000", "{path}");
    }
    let plain = TestApp::start().await;
    assert!(plain.get(&plain.url("/")).await.headers().get("strict-transport-security").is_none());
}

/// Text anyone can put in a callback URL (`error`) reaches the log. Written as it came, a line
/// break in it would start a line of the attacker's making, a forged log entry: the real server
/// binary's log must keep each entry on its line, whatever the entry holds.
#[tokio::test]
async fn a_line_break_in_a_callback_error_cannot_forge_a_log_line() {
    let dir = temp_dir("log-lines");
    let (port, idp) = (free_port(), format!("127.0.0.1:{}", free_port()));
    let vars = [
        ("APP_URL", format!("http://127.0.0.1:{port}")),
        ("EMBEDDED_IDP_ADDR", idp.clone()),
        ("SESSION_STORE", "memory".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let log = dir.join("server.log");
    let server = ServerProcess::start_logging(&dir, port, &vars, Some(&log)).await;
    let browser = new_browser();
    sign_in_through(&browser, &server.url).await;
    let forged = "\n2026-01-01T00:00:00Z  INFO server: forged\r\n2026-01-01T00:00:00Z  INFO server: forged too";

    // The interactive callback, with this browser's own state and an error the provider never sent.
    let login = browser.get(format!("{}/auth/login?return_to=%2F", server.url)).send().await.unwrap();
    let state = query(&location(&login))["state"].clone();
    let callback = with_param(
        &format!("{}/auth/callback?state={state}&iss=http%3A%2F%2F{idp}", server.url),
        "error",
        &format!("access_denied{forged}"),
    );
    assert_eq!(browser.get(&callback).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // The silent callback, the same way.
    let start = browser.get(format!("{}/auth/silent-renew", server.url)).send().await.unwrap();
    let answer = browser.get(location(&start)).send().await.unwrap();
    let silent = with_param(&location(&answer), "error", &format!("login_required{forged}"));
    assert_eq!(browser.get(&silent).send().await.unwrap().status(), StatusCode::OK);

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(server);
    let written = std::fs::read_to_string(&log).unwrap();
    for error in ["access_denied", "login_required"] {
        assert!(written.contains(&format!("{error}\\n2026")), "{error} logged, its line break escaped: {written}");
    }
    for line in written.lines().filter(|line| line.contains("forged")) {
        assert!(
            line.contains("access_denied") || line.contains("login_required"),
            "a line the request wrote: {line:?}\n{written}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

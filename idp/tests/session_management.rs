//! OpenID Connect Session Management 1.0 against a live provider over HTTP: `session_state` in
//! authorization responses (§2) and its recomputation as the OP iframe does it (§3.2), the browser
//! state cookie (changed by every sign-in and sign-out, readable by script), the OP iframe's page
//! and headers, its script run as it is served (under Node.js, when installed), and discovery.

mod common;

use std::collections::BTreeSet;

use base64::{engine::general_purpose::STANDARD, Engine};
use common::*;
use idp::{testing::TestProvider, ProviderConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The `session_state` of a code response to `client`.
fn session_state_of(response: &reqwest::Response) -> String {
    let query = query_of(response);
    assert!(query.contains_key("code"), "a code: {query:?}");
    query.get("session_state").unwrap_or_else(|| panic!("session_state in {query:?}")).clone()
}

#[tokio::test]
async fn every_code_response_carries_a_session_state_the_op_iframe_recomputes_as_unchanged() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let interactive = session_state_of(&browser.sign_in(&DEMO_APP, "alice").await);
    let silent = session_state_of(&browser.silent(&DEMO_APP).await);
    let spa = session_state_of(&browser.silent(&DEMO_SPA).await);

    let browser_state = browser.browser_state();
    assert!(!browser_state.is_empty(), "the sign-in set the browser state cookie");
    for (client, value) in [(&DEMO_APP, &interactive), (&DEMO_APP, &silent), (&DEMO_SPA, &spa)] {
        let (hash, salt) = value.split_once('.').expect("hash.salt");
        assert_eq!(hash.len(), 64, "hex SHA-256: {value}");
        assert!(hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "lowercase hex: {value}");
        assert!(!salt.is_empty() && !salt.contains(['.', ' ']), "{value}");
        assert_eq!(*value, session_state(client.id, client.origin, &browser_state, salt));
        assert_eq!(check_session(client.id, client.origin, value, &browser_state), "unchanged");
        // The same value checked from another origin, or as another client, is not this session.
        assert_eq!(check_session(client.id, "http://localhost:3001", value, &browser_state), "changed");
    }
    assert_eq!(check_session(DEMO_SPA.id, DEMO_SPA.origin, &interactive, &browser_state), "changed");
    // A fresh salt in every response: nobody can link two responses by their value.
    assert_ne!(interactive.split_once('.').unwrap().1, silent.split_once('.').unwrap().1);
}

#[tokio::test]
async fn the_code_after_the_consent_and_terms_pages_carries_a_session_state_too() {
    let provider = TestProvider::start(|config| {
        config.clients.iter_mut().find(|c| c.client_id == "demo-spa").unwrap().require_consent = true;
        config.users.iter_mut().find(|u| u.sub == ALICE).unwrap().interaction_required = true;
    })
    .await;
    let browser = Browser::new(&provider.issuer);
    let answer = |page: String, path: &'static str, action: Option<&'static str>| {
        let interaction = idp::testing::interaction_id(&page).unwrap();
        let mut form = vec![("interaction", interaction)];
        if let Some(action) = action {
            form.push(("action", action.to_owned()));
        }
        browser.http.post(browser.url(path)).form(&form).send()
    };
    let terms = browser.sign_in(&DEMO_SPA, "alice").await.text().await.unwrap();
    let consent = answer(terms, "/terms", None).await.unwrap().text().await.unwrap();
    let code = answer(consent, "/consent", Some("allow")).await.unwrap();
    let value = session_state_of(&code);
    assert_eq!(check_session(DEMO_SPA.id, DEMO_SPA.origin, &value, &browser.browser_state()), "unchanged");
}

#[tokio::test]
async fn the_browser_state_cookie_is_readable_by_script_lax_and_lives_as_long_as_the_session() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let signed_in = browser.sign_in(&DEMO_APP, "alice").await;
    let cookie = set_cookie(&signed_in, "idp_browser_state").expect("the sign-in sets the browser state cookie");
    let attributes: BTreeSet<String> = cookie.split("; ").skip(1).map(str::to_ascii_lowercase).collect();
    assert!(!attributes.contains("httponly"), "script must read it: {cookie}");
    assert!(attributes.contains("samesite=lax") && attributes.contains("path=/"), "{cookie}");
    assert!(attributes.contains("max-age=28800"), "as long as the provider session: {cookie}");
    assert!(!attributes.contains("secure"), "an http issuer: {cookie}");
    // The session cookie itself stays out of script's reach.
    let session = set_cookie(&signed_in, "idp_session").unwrap();
    assert!(session.to_ascii_lowercase().contains("httponly"), "{session}");
    // The browser state says nothing about the session cookie or the user.
    let browser_state = browser.browser_state();
    assert_ne!(Some(browser_state.clone()), browser.cookie("idp_session"));
    assert!(!browser_state.contains(ALICE));
}

#[tokio::test]
async fn over_https_the_browser_state_cookie_is_host_prefixed_and_secure() {
    let provider = TestProvider::start(|config| config.issuer = "https://idp.example".parse().unwrap()).await;
    // The provider listens on plain http; its cookies are made for its https issuer.
    let browser = Browser::new(&format!("http://{}", provider.addr));
    let page = browser.http.get(browser.url("/check-session")).send().await.unwrap();
    let cookie = set_cookie(&page, "__Host-idp_browser_state").expect("the prefixed cookie");
    let attributes: BTreeSet<String> = cookie.split("; ").skip(1).map(str::to_ascii_lowercase).collect();
    assert!(attributes.contains("secure") && attributes.contains("path=/"), "{cookie}");
    assert!(!attributes.contains("httponly") && !attributes.iter().any(|a| a.starts_with("domain")), "{cookie}");
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"data-cookie="__Host-idp_browser_state""#), "{page}");
}

#[tokio::test]
async fn a_new_sign_in_changes_the_browser_state_and_the_earlier_session_state_becomes_changed() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let first = session_state_of(&browser.sign_in(&DEMO_APP, "alice").await);
    let first_state = browser.browser_state();

    let login = browser.authorize(&DEMO_APP, "openid", &[("prompt", "login")]).await;
    let second = session_state_of(&browser.sign_in_on(login, "bob").await);
    let second_state = browser.browser_state();
    assert_ne!(first_state, second_state);
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &first, &second_state), "changed");
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &second, &second_state), "unchanged");
    // Another browser's sign-in is another session, with its own browser state.
    let other = Browser::new(&provider.issuer);
    other.sign_in(&DEMO_APP, "alice").await;
    assert_ne!(other.browser_state(), first_state);
}

#[tokio::test]
async fn the_same_user_signing_in_again_keeps_the_sid_and_the_earlier_session_state_becomes_changed() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let first = browser.sign_in(&DEMO_APP, "alice").await;
    let first_value = session_state_of(&first);
    let first_state = browser.browser_state();
    let first_cookie = browser.cookie("idp_session").unwrap();
    let first_token = claims(browser.tokens(&DEMO_APP, &query_of(&first)["code"]).await["id_token"].as_str().unwrap());

    provider.clock.advance(120);
    let login = browser.authorize(&DEMO_APP, "openid", &[("prompt", "login")]).await;
    let again = browser.sign_in_on(login, "alice").await;
    let second_value = session_state_of(&again);
    let second_state = browser.browser_state();
    let second_token = claims(browser.tokens(&DEMO_APP, &query_of(&again)["code"]).await["id_token"].as_str().unwrap());
    // The same provider session, re-authenticated.
    assert_eq!((&second_token["sub"], &second_token["sid"]), (&first_token["sub"], &first_token["sid"]));
    assert_eq!(second_token["auth_time"].as_u64().unwrap(), first_token["auth_time"].as_u64().unwrap() + 120);
    // A login event all the same (§3.2): a new browser state, so the relying party re-checks.
    assert_ne!(first_state, second_state);
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &first_value, &second_state), "changed");
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &second_value, &second_state), "unchanged");
    // Its re-check with prompt=none finds the same user and session.
    let rechecked = browser.silent(&DEMO_APP).await;
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &session_state_of(&rechecked), &second_state), "unchanged");
    let rechecked =
        claims(browser.tokens(&DEMO_APP, &query_of(&rechecked)["code"]).await["id_token"].as_str().unwrap());
    assert_eq!((&rechecked["sub"], &rechecked["sid"]), (&first_token["sub"], &first_token["sid"]));
    // A fresh session cookie, living as long as the session still does: its expiry is kept.
    assert_ne!(browser.cookie("idp_session").unwrap(), first_cookie);
    let cookie = set_cookie(&again, "idp_session").unwrap();
    assert!(cookie.contains("Max-Age=28680"), "{cookie}");
}

/// §2: session state SHOULD be returned upon an authentication failure too. Computed over the
/// browser state as it is, it checks `unchanged` until a sign-in changes the cookie, and so a
/// relying party told `login_required` can watch for the user signing in.
#[tokio::test]
async fn a_prompt_none_failure_carries_the_session_state_of_the_browser_state_as_it_is() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let refused = query_of(&browser.silent(&DEMO_APP).await);
    assert_eq!(refused.get("error").map(String::as_str), Some("login_required"));
    let value = refused.get("session_state").unwrap_or_else(|| panic!("session_state in {refused:?}")).clone();
    assert_eq!(browser.browser_state(), "", "no session: the cookie is empty");
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &value, ""), "unchanged");

    browser.sign_in(&DEMO_APP, "alice").await;
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &value, &browser.browser_state()), "changed");
}

#[tokio::test]
async fn signing_out_deletes_the_browser_state_cookie_and_the_session_state_becomes_changed() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let code = browser.sign_in(&DEMO_APP, "alice").await;
    let value = session_state_of(&code);
    let id_token = browser.tokens(&DEMO_APP, &query_of(&code)["code"]).await["id_token"].as_str().unwrap().to_owned();

    let signed_out = browser.end_session(&[("id_token_hint", &id_token)]).await;
    let deletion = set_cookie(&signed_out, "idp_browser_state").expect("the cookie is deleted");
    assert!(deletion.starts_with("idp_browser_state=;") && deletion.contains("Max-Age=0"), "{deletion}");
    assert_eq!(browser.browser_state(), "", "what the script reads now");
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &value, &browser.browser_state()), "changed");
}

#[tokio::test]
async fn a_session_ended_elsewhere_reaches_the_cookie_at_the_op_iframes_next_refresh() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let code = browser.sign_in(&DEMO_APP, "alice").await;
    let value = session_state_of(&code);
    let browser_state = browser.browser_state();

    // While the session runs, a refresh confirms the cookie.
    let refreshed = browser.http.get(browser.url("/check-session/state")).send().await.unwrap();
    assert_eq!(refreshed.status(), StatusCode::NO_CONTENT);
    assert_eq!(refreshed.headers()["cache-control"], "no-store");
    assert!(set_cookie(&refreshed, "idp_browser_state")
        .unwrap()
        .starts_with(&format!("idp_browser_state={browser_state};")));
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &value, &browser.browser_state()), "unchanged");

    let (status, _) = browser.admin(&format!("/admin/users/{ALICE}/end-session"), None).await;
    assert_eq!(status, StatusCode::OK);
    // The admin API cannot reach the browser: the cookie still says what it said...
    assert_eq!(browser.browser_state(), browser_state);
    // ...until the OP iframe's refresh, or its page loading, asks the provider.
    let refreshed = browser.http.get(browser.url("/check-session/state")).send().await.unwrap();
    assert!(set_cookie(&refreshed, "idp_browser_state").unwrap().contains("Max-Age=0"));
    assert_eq!(check_session(DEMO_APP.id, DEMO_APP.origin, &value, &browser.browser_state()), "changed");
}

#[tokio::test]
async fn the_op_iframe_page_loading_sets_the_cookie_to_what_the_provider_knows() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let page = browser.http.get(browser.url("/check-session")).send().await.unwrap();
    assert!(set_cookie(&page, "idp_browser_state").unwrap().contains("Max-Age=0"), "no session: deleted");
    browser.sign_in(&DEMO_APP, "alice").await;
    let state = browser.browser_state();
    let page = browser.http.get(browser.url("/check-session")).send().await.unwrap();
    assert!(set_cookie(&page, "idp_browser_state").unwrap().starts_with(&format!("idp_browser_state={state};")));
}

/// The page's one script, between its tags.
fn script_of(page: &str) -> (String, String) {
    let start = page.find("<script").expect("a script");
    let open_end = start + page[start..].find('>').unwrap() + 1;
    let close = page.find("</script>").unwrap();
    assert_eq!(page.matches("<script").count(), 1, "one script only: {page}");
    (page[start..open_end].to_owned(), page[open_end..close].to_owned())
}

/// The value of attribute `name` of the HTML element start tag `tag`, unescaped.
fn attribute(tag: &str, name: &str) -> String {
    let start = tag.find(&format!(r#"{name}=""#)).unwrap() + name.len() + 2;
    let len = tag[start..].find('"').unwrap();
    tag[start..start + len]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_op_iframe_runs_only_its_hashed_script_and_may_be_framed_by_every_clients_origins_only() {
    let provider = TestProvider::start(|config| {
        config.register_redirect_uri("demo-app", "http://127.0.0.1:3001/auth/callback");
        config.register_redirect_uri("demo-spa", "https://spa.example/callback");
    })
    .await;
    let browser = Browser::new(&provider.issuer);
    let response = browser.http.get(browser.url("/check-session")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let page = response.text().await.unwrap();
    let (tag, script) = script_of(&page);

    let csp = headers["content-security-policy"].to_str().unwrap();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    let hash = format!("'sha256-{}'", STANDARD.encode(Sha256::digest(script.as_bytes())));
    assert!(directives.contains(&"default-src 'none'"), "{csp}");
    assert!(directives.contains(&format!("script-src {hash}").as_str()), "only the script's hash: {csp}");
    assert!(directives.contains(&"connect-src 'self'"), "its refresh: {csp}");
    assert!(!csp.contains("unsafe") && !csp.contains("nonce-"), "{csp}");
    let ancestors: BTreeSet<&str> =
        directives.iter().find_map(|d| d.strip_prefix("frame-ancestors ")).unwrap().split_whitespace().collect();
    let expected: BTreeSet<&str> = ["http://localhost:3000", "http://127.0.0.1:3001", "https://spa.example"].into();
    assert_eq!(ancestors, expected);
    assert!(headers.get("x-frame-options").is_none(), "it cannot name origins");
    assert_eq!(headers["cache-control"], "no-store");

    assert_eq!(attribute(&tag, "data-cookie"), "idp_browser_state");
    let clients: Value = serde_json::from_str(&attribute(&tag, "data-clients")).unwrap();
    assert_eq!(
        clients,
        json!({
            "demo-app": ["http://localhost:3000", "http://127.0.0.1:3001"],
            "demo-spa": ["http://localhost:3000", "https://spa.example"],
        })
    );
}

/// Runs the OP iframe's script as served, under Node.js, in a stand-in for a browser frame
/// holding `cookie`: each message is posted from `origin`; after `wait_ms`, and when the script
/// refreshes, the provider's cookie becomes `server_cookie`. Returns what the script posted back,
/// with the target origin, and the URLs it fetched. Node.js is required: the test command installs
/// it (npm) before any test runs, and a test that skipped itself would prove nothing.
fn run_op_iframe(page: &str, steps: &Value) -> Value {
    let (tag, script) = script_of(page);
    let harness = format!(
        r#"
let cookie = "";
let serverCookie = null;
const listeners = [];
const fetched = [];
globalThis.window = globalThis;
window.addEventListener = (type, listener) => {{ if (type === "message") listeners.push(listener); }};
globalThis.document = {{
  currentScript: {{ dataset: {{ cookie: {cookie_name}, clients: {clients} }} }},
  get cookie() {{ return cookie; }},
}};
globalThis.fetch = (url, init) => {{
  fetched.push([url, init.credentials, init.cache]);
  if (serverCookie !== null) cookie = serverCookie;
  return Promise.resolve({{ status: 204 }});
}};
{script}
const steps = {steps};
function post(step) {{
  return new Promise((resolve) => {{
    const source = {{ postMessage: (message, targetOrigin) => resolve([message, targetOrigin]) }};
    for (const listener of listeners) listener({{ data: step.data, origin: step.origin, source }});
    setTimeout(() => resolve(null), 1000);
  }});
}}
(async () => {{
  const answers = [];
  for (const step of steps) {{
    if (step.cookie !== undefined) cookie = step.cookie;
    serverCookie = step.server_cookie === undefined ? null : step.server_cookie;
    if (step.wait_ms) await new Promise((resolve) => setTimeout(resolve, step.wait_ms));
    answers.push(await post(step));
  }}
  console.log(JSON.stringify({{ answers, fetched }}));
}})();
"#,
        cookie_name = serde_json::to_string(&attribute(&tag, "data-cookie")).unwrap(),
        clients = serde_json::to_string(&attribute(&tag, "data-clients")).unwrap(),
    );
    let output = std::process::Command::new("node")
        .arg("-e")
        .arg(&harness)
        .output()
        .expect("Node.js runs the OP iframe's script (scripts/setup.sh installs it)");
    assert!(output.status.success(), "node: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn the_op_iframe_script_answers_unchanged_changed_and_error_as_documented() {
    let provider = TestProvider::start(|_| {}).await;
    let browser = Browser::new(&provider.issuer);
    let value = session_state_of(&browser.sign_in(&DEMO_APP, "alice").await);
    let spa_value = session_state_of(&browser.silent(&DEMO_SPA).await);
    let state = browser.browser_state();
    let page = browser.http.get(browser.url("/check-session")).send().await.unwrap().text().await.unwrap();
    let cookie = format!("other=1; idp_browser_state={state}; last=2");
    let app = DEMO_APP.origin;
    let message = format!("demo-app {value}");
    let steps = json!([
        { "cookie": cookie, "data": message, "origin": app },
        { "data": format!("demo-spa {spa_value}"), "origin": app },
        // Another browser state: another session.
        { "cookie": "idp_browser_state=somethingelse", "data": message, "origin": app },
        // No cookie: signed out.
        { "cookie": "other=1", "data": message, "origin": app },
        { "cookie": cookie, "data": format!("demo-spa {value}"), "origin": app },
        // Malformed messages and unexpected origins.
        { "data": "demo-app", "origin": app },
        { "data": format!(" {value}"), "origin": app },
        { "data": "demo-app notahash.salt", "origin": app },
        { "data": format!("demo-app {}", value.replace('.', "")), "origin": app },
        { "data": { "client_id": "demo-app" }, "origin": app },
        { "data": message, "origin": "https://evil.example" },
        { "data": format!("intruder {value}"), "origin": app },
        // Opaque origins cannot be answered.
        { "data": message, "origin": "null" },
        // A second later, the refresh learns that the session ended elsewhere.
        { "wait_ms": 1100, "server_cookie": "", "data": message, "origin": app },
    ]);
    let result = run_op_iframe(&page, &steps);
    let answers: Vec<Value> = result["answers"].as_array().unwrap().clone();
    let expected = [
        json!(["unchanged", app]),
        json!(["unchanged", app]),
        json!(["changed", app]),
        json!(["changed", app]),
        json!(["changed", app]),
        json!(["error", app]),
        json!(["error", app]),
        json!(["error", app]),
        json!(["error", app]),
        json!(["error", app]),
        json!(["error", "https://evil.example"]),
        json!(["error", app]),
        Value::Null,
        json!(["changed", app]),
    ];
    for (index, (answer, expected)) in answers.iter().zip(&expected).enumerate() {
        assert_eq!(answer, expected, "step {index}: {}", steps[index]);
    }
    assert_eq!(answers.len(), expected.len());
    assert_eq!(result["fetched"], json!([["/check-session/state", "same-origin", "no-store"]]), "once, when due");
}

#[tokio::test]
async fn discovery_lists_the_session_management_and_logout_endpoints() {
    let provider = TestProvider::start(|_| {}).await;
    let metadata: Value =
        reqwest::get(provider.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["check_session_iframe"], provider.url("/check-session"));
    assert_eq!(metadata["end_session_endpoint"], provider.url("/end-session"));
    assert_eq!(metadata["backchannel_logout_supported"], true);
    assert_eq!(metadata["backchannel_logout_session_supported"], true);
    assert!(
        metadata.get("backchannel_logout_session_required").is_none(),
        "a client registration field (§2.2), not provider metadata (§2.1)"
    );
    assert!(metadata.get("frontchannel_logout_supported").is_none(), "only what is implemented");
}

#[tokio::test]
async fn session_state_uses_the_redirect_uris_origin_with_its_port_as_a_browser_serializes_it() {
    let provider = TestProvider::start(|config: &mut ProviderConfig| {
        config.register_redirect_uri("demo-spa", "https://spa.example:443/callback");
        config.register_redirect_uri("demo-spa", "http://127.0.0.1:8080/callback");
    })
    .await;
    let browser = Browser::new(&provider.issuer);
    browser.sign_in(&DEMO_APP, "alice").await;
    let state = browser.browser_state();
    for (redirect_uri, origin) in [
        ("https://spa.example:443/callback", "https://spa.example"),
        ("http://127.0.0.1:8080/callback", "http://127.0.0.1:8080"),
    ] {
        let client = Client { id: "demo-spa", secret: None, redirect_uri, origin };
        let value = session_state_of(&browser.authorize(&client, "openid", &[("prompt", "none")]).await);
        assert_eq!(check_session(client.id, origin, &value, &state), "unchanged", "{redirect_uri}");
    }
}

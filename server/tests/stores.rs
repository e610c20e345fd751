//! Sessions that survive restarts and scale out: the SQLite store (the default), Redis shared by
//! several instances, single-flight renewal across them, token sets sealed at rest, and what the
//! browser gets while the store is down. Real `redis-server` processes and, where a restart or a
//! crash is the point, the real server binary.

mod support;

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use server::store::seal::{SealKey, Sealer};
use support::{
    free_port, new_browser, sign_in_through, temp_dir, ProxyMode, RedisServer, ServerProcess, Setup, TestApp,
};

/// The JWS shape of every token this provider issues (access and ID tokens).
const JWT_SHAPE: &[u8] = b"eyJ";

fn outcome(value: &Value) -> &str {
    value["outcome"].as_str().unwrap_or_default()
}

async fn refresh_process(server: &ServerProcess, browser: &reqwest::Client) -> Value {
    let response =
        browser.post(format!("{}/auth/refresh", server.url)).header("Origin", &server.url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn authenticated_at(url: &str, browser: &reqwest::Client) -> bool {
    let session: Value = browser.get(format!("{url}/auth/session")).send().await.unwrap().json().await.unwrap();
    session["authenticated"] == true
}

/// Signs in, kills the binary (as `cargo leptos watch` does on every edit), starts it again:
/// the browser is still signed in, and the refresh token from before still renews.
async fn restart_keeps_the_session(store: Option<String>) {
    let dir = temp_dir("restart");
    let port = free_port();
    let mut vars = vec![
        ("APP_URL", format!("http://127.0.0.1:{port}")),
        ("EMBEDDED_IDP_ADDR", format!("127.0.0.1:{}", free_port())),
    ];
    vars.extend(store.map(|store| ("SESSION_STORE", store)));
    let mut server = ServerProcess::start(&dir, port, &vars).await;
    let browser = new_browser();
    sign_in_through(&browser, &server.url).await;
    assert_eq!(outcome(&refresh_process(&server, &browser).await), "renewed");

    server.kill();
    let server = ServerProcess::start(&dir, port, &vars).await;
    assert!(authenticated_at(&server.url, &browser).await, "still signed in after the restart");
    let renewed = refresh_process(&server, &browser).await;
    assert_eq!(outcome(&renewed), "renewed", "the provider still knows the rotated token: {renewed}");
    let files = dir.join("target/oidc-session");
    assert!(files.join("seal.key").is_file() && files.join("provider.sqlite3").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_restart_keeps_the_session_and_its_refresh_token_with_the_default_store() {
    restart_keeps_the_session(None).await;
}

#[tokio::test]
async fn a_restart_keeps_the_session_and_its_refresh_token_with_redis() {
    let redis = RedisServer::start().await;
    restart_keeps_the_session(Some(redis.url())).await;
}

fn redis_setup(redis: &RedisServer, key: &SealKey) -> Setup {
    Setup::default()
        .proxy(ProxyMode::Forward)
        .var("SESSION_STORE", redis.url())
        .var("SESSION_SEAL_KEYS", key.to_base64())
}

#[tokio::test]
async fn two_instances_on_one_redis_share_sessions_and_make_one_token_request_for_fifty_renewals() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    let other = app.another_instance(&[]).await;
    app.sign_in("/").await;
    assert!(authenticated_at(&other.url, &app.browser).await, "signed in through one, known to the other");

    // Slow token requests, so that all fifty are certainly in flight together.
    app.proxy.as_ref().unwrap().set(ProxyMode::SlowTokens);
    let (app, other) = (&app, &other);
    let renewals = (0..50).map(|i| async move {
        let instance = if i % 2 == 0 { &app.url } else { &other.url };
        app.refresh_at(instance, &app.browser).await
    });
    let outcomes = join_all(renewals).await;
    assert!(outcomes.iter().all(|o| outcome(o) == "renewed"), "{outcomes:?}");
    let metrics = app.metrics().await;
    assert_eq!(metrics["token_requests"]["refresh_token"], 1, "one token request for both instances");
    assert_eq!(metrics["refresh_tokens_reused"], 0);
    assert_eq!(metrics["families_revoked"], 0);

    // The rotated token was stored for both: the other instance renews with it next.
    app.proxy.as_ref().unwrap().set(ProxyMode::Forward);
    assert_eq!(outcome(&app.refresh_at(&other.url, &app.browser).await), "renewed");
    assert_eq!(app.refresh_grants().await, 2);
}

#[tokio::test]
async fn when_the_lock_holder_dies_mid_renewal_another_instance_renews_after_the_lock_expires() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    let vars: Vec<(&str, String)> = app.vars.iter().map(|(k, v)| (*k, v.clone())).collect();
    let dir = temp_dir("lock-holder");
    let mut holder = ServerProcess::start(&dir, free_port(), &vars).await;
    let survivor = ServerProcess::start(&dir, free_port(), &vars).await;

    // The provider hangs: the holder takes the lock and waits for an answer that never comes.
    let proxy = app.proxy.as_ref().unwrap();
    proxy.set(ProxyMode::SwallowTokens);
    let (browser, url, origin) = (app.browser.clone(), holder.url.clone(), app.url.clone());
    let stuck = tokio::spawn(async move {
        let _ = browser.post(format!("{url}/auth/refresh")).header("Origin", origin).send().await;
    });
    let mut locked = false;
    for _ in 0..200 {
        if redis.dump().await.iter().any(|(key, _)| key.contains("lock:renew:")) {
            locked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(locked, "the holder took the renewal lock");
    holder.kill();
    stuck.abort();

    proxy.set(ProxyMode::Forward);
    let renewed = app.refresh_at(&survivor.url, &app.browser).await;
    assert_eq!(outcome(&renewed), "renewed", "{renewed}");
    assert_eq!(app.refresh_grants().await, 1, "the swallowed request never reached the provider");
    assert_eq!(app.metrics().await["refresh_tokens_reused"], 0);
    assert!(authenticated_at(&survivor.url, &app.browser).await);
    std::fs::remove_dir_all(dir).unwrap();
}

fn sqlite(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn token_keys(path: &std::path::Path) -> Vec<String> {
    let db = sqlite(path);
    let mut statement = db.prepare("SELECT key FROM kv WHERE key LIKE 'tokens:%' ORDER BY key").unwrap();
    statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
}

/// Signs `browser` in as `username` and returns the store key of its token set.
async fn sign_in_and_find_key(
    app: &TestApp,
    db: &std::path::Path,
    username: &str,
    password: &str,
) -> (reqwest::Client, String) {
    let before = token_keys(db);
    let browser = app.other_browser(username, password).await;
    let key = token_keys(db).into_iter().find(|k| !before.contains(k)).expect("a new token set");
    (browser, key)
}

#[tokio::test]
async fn a_tampered_record_or_one_sealed_with_an_unknown_key_ends_that_session_only() {
    let dir = temp_dir("tamper");
    let db = dir.join("sessions.sqlite3");
    let app = TestApp::start_with(Setup::default().var("SESSION_STORE", db.display().to_string())).await;
    let (alice, alice_key) = sign_in_and_find_key(&app, &db, "alice", "wonderland").await;
    let (bob, _) = sign_in_and_find_key(&app, &db, "bob", "builder").await;

    let value: Vec<u8> =
        sqlite(&db).query_row("SELECT value FROM kv WHERE key = ?1", [&alice_key], |r| r.get(0)).unwrap();
    let mut tampered = value.clone();
    *tampered.last_mut().unwrap() ^= 0x01;
    sqlite(&db).execute("UPDATE kv SET value = ?2 WHERE key = ?1", rusqlite::params![alice_key, tampered]).unwrap();
    assert!(!authenticated_at(&app.url, &alice).await, "a tampered record signs its session out, no 500");
    assert!(authenticated_at(&app.url, &bob).await, "and no other");

    let (carol, carol_key) = sign_in_and_find_key(&app, &db, "alice", "wonderland").await;
    let session_key = carol_key.strip_prefix("tokens:").unwrap();
    let foreign = Sealer::new(&[SealKey::generate()]).seal(b"{}", session_key.as_bytes());
    sqlite(&db).execute("UPDATE kv SET value = ?2 WHERE key = ?1", rusqlite::params![carol_key, foreign]).unwrap();
    assert!(!authenticated_at(&app.url, &carol).await, "a record sealed under an unknown key signs out");
    assert!(authenticated_at(&app.url, &bob).await);
    assert_eq!(outcome(&app.refresh_as(&bob).await), "renewed");
    drop(app);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A browser session record that does not decode (damaged, or of another version) is no session:
/// that browser is signed out and signs in again at once, where it was answered 503 until the
/// record expired, sign-in included. Other browsers keep theirs.
#[tokio::test]
async fn a_browser_session_record_that_does_not_decode_starts_a_new_session() {
    let dir = temp_dir("undecodable");
    let db = dir.join("sessions.sqlite3");
    let app = TestApp::start_with(Setup::default().var("SESSION_STORE", db.display().to_string())).await;
    let (bob, _) = sign_in_and_find_key(&app, &db, "bob", "builder").await;
    let bobs =
        sqlite(&db).query_row("SELECT key FROM kv WHERE key LIKE 'session:%'", [], |row| row.get::<_, String>(0));
    let bobs = bobs.unwrap();
    app.sign_in("/").await;
    let damaged =
        sqlite(&db).execute("UPDATE kv SET value = x'7b' WHERE key LIKE 'session:%' AND key != ?1", [&bobs]).unwrap();
    assert_eq!(damaged, 1, "the record of this test's browser");

    let session = app.get(&app.url("/auth/session")).await;
    assert_eq!(session.status(), StatusCode::OK, "no 503");
    assert_eq!(session.json::<Value>().await.unwrap()["authenticated"], false);
    // The provider still knows the browser: it sends it straight back.
    let authorize = app.begin_login("/").await;
    let callback = app.get(&authorize).await;
    assert_eq!(callback.status(), StatusCode::SEE_OTHER);
    app.get(callback.headers()["location"].to_str().unwrap()).await;
    assert!(authenticated_at(&app.url, &app.browser).await, "signed in again");
    assert!(authenticated_at(&app.url, &bob).await, "and the other browser still is");
    drop(app);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The tokens the provider issued, as a browser never sees them: captured at the proxy.
fn assert_no_token_in(bytes: &[u8], refresh_tokens: &[String], what: &str) {
    assert!(!bytes.windows(JWT_SHAPE.len()).any(|w| w == JWT_SHAPE), "a JWT in clear text in {what}");
    for token in refresh_tokens {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "a refresh token in clear text in {what}");
    }
}

#[tokio::test]
async fn the_sqlite_file_holds_no_token_in_clear_text() {
    let dir = temp_dir("clear-text");
    let db = dir.join("sessions.sqlite3");
    let app =
        TestApp::start_with(Setup::default().proxy(ProxyMode::Forward).var("SESSION_STORE", db.display().to_string()))
            .await;
    app.sign_in("/").await;
    assert_eq!(outcome(&app.refresh().await), "renewed");
    let refresh_tokens = app.proxy.as_ref().unwrap().refresh_tokens_seen();
    assert_eq!(refresh_tokens.len(), 2, "one at sign-in, one at the renewal");
    for file in ["sessions.sqlite3", "sessions.sqlite3-wal"] {
        let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
        assert_no_token_in(&bytes, &refresh_tokens, file);
    }
    assert_eq!(token_keys(&db).len(), 1, "the token set is there, sealed");
    drop(app);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn redis_holds_no_token_in_clear_text_and_no_session_cookie() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    assert_eq!(outcome(&app.refresh().await), "renewed");
    let refresh_tokens = app.proxy.as_ref().unwrap().refresh_tokens_seen();
    let entries = redis.dump().await;
    assert!(entries.iter().any(|(key, _)| key.starts_with("oidc-session:tokens:")), "{entries:?}");
    for (key, value) in &entries {
        assert_no_token_in(value, &refresh_tokens, key);
    }

    // A second browser, whose cookie this test can read: its value is nowhere in the store.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    sign_in_through(&browser, &app.url).await;
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &app.url.parse().unwrap()).unwrap();
    let cookie = cookies.to_str().unwrap().split("; ").find_map(|c| c.strip_prefix("session=")).unwrap().to_owned();
    let entries = redis.dump().await;
    assert!(entries.iter().filter(|(key, _)| key.starts_with("oidc-session:session:")).count() >= 2);
    for (key, value) in &entries {
        assert!(!key.contains(&cookie), "the session cookie in a key: {key}");
        assert!(!value.windows(cookie.len()).any(|w| w == cookie.as_bytes()), "the session cookie in {key}");
    }
}

/// A sign-in in flight keeps its PKCE verifier and nonce in the browser's session record, sealed:
/// neither its `state` nor its `nonce` (both in the provider's URL, so this test can know them)
/// is readable in the store, and the sign-in still completes.
#[tokio::test]
async fn sign_ins_in_flight_are_sealed_in_the_store() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    let login = app.get(&app.url("/auth/login")).await;
    let authorize = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let param = |name: &str| authorize.query_pairs().find(|(key, _)| key == name).unwrap().1.into_owned();
    let (state, nonce) = (param("state"), param("nonce"));
    let entries = redis.dump().await;
    assert!(entries.iter().any(|(key, _)| key.starts_with("oidc-session:session:")), "{entries:?}");
    for (key, value) in &entries {
        for secret in [&state, &nonce] {
            assert!(!value.windows(secret.len()).any(|w| w == secret.as_bytes()), "a sign-in in clear text in {key}");
        }
    }
    app.sign_in("/").await;
    assert!(authenticated_at(&app.url, &app.browser).await);
}

#[tokio::test]
async fn while_redis_is_down_requests_get_503_and_everything_recovers_when_it_is_back() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;

    redis.stop();
    let session = app.get(&app.url("/auth/session")).await;
    assert_eq!(session.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(session.headers()["retry-after"], "5");
    let page = app.browser.get(app.url("/form")).header("Accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE, "not a redirect to sign-in");
    assert!(page.text().await.unwrap().contains("Nothing is lost"));
    let refresh = app.browser.post(app.url("/auth/refresh")).header("Origin", &app.url).send().await.unwrap();
    assert_eq!(refresh.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A back-channel logout that cannot be done now is a 503, which the provider may retry, not
    // the 400 that would tell it the token was bad and lose the logout for good.
    let logout = app.send_logout_token(serde_json::json!({ "sub": "248289761001" })).await;
    assert_eq!(logout["status"], 503);

    // Back at the first request: the command that finds the connection gone is tried again.
    redis.restart().await;
    let session = app.get(&app.url("/auth/session")).await;
    assert_eq!(session.status(), StatusCode::OK);
    assert_eq!(session.json::<Value>().await.unwrap()["authenticated"], true, "signed in again without doing anything");
    assert_eq!(outcome(&app.refresh().await), "renewed");
}

#[tokio::test]
async fn a_session_in_use_has_its_idle_expiry_moved_without_a_write_per_request() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    let page = || app.browser.get(app.url("/")).header("Accept", "text/html").send();
    let first = page().await.unwrap();
    let cookie = first.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    assert!(cookie.is_some_and(|c| c.contains("Max-Age=28800")), "the first use moves the expiry to 8 h from now");
    let before = session_record_ttls(&redis).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = page().await.unwrap();
    assert!(second.headers().get("set-cookie").is_none(), "and the next ones, minutes apart, write nothing");
    let after = session_record_ttls(&redis).await;
    assert_eq!((before.len(), after.len()), (1, 1), "one session record: {before:?} {after:?}");
    assert!(after[0] <= before[0] - 250, "not even the record in the store: {before:?} then {after:?}");
}

#[tokio::test]
async fn seal_keys_rotate_without_signing_anyone_out_and_a_dropped_key_ends_its_sessions() {
    let dir = temp_dir("seal-rotation");
    let db = dir.join("sessions.sqlite3");
    let (old, new) = (SealKey::generate(), SealKey::generate());
    let store = db.display().to_string();
    let app =
        TestApp::start_with(Setup::default().var("SESSION_STORE", store).var("SESSION_SEAL_KEYS", old.to_base64()))
            .await;
    app.sign_in("/").await;

    // The new key first, the old one kept: still signed in, and the session's keep-alive (due at
    // the first page after sign-in) reseals it with the new key, with no renewal (a provider
    // whose access tokens outlive the idle timeout leaves nothing to renew).
    let rotated = format!("{},{}", new.to_base64(), old.to_base64());
    let both = app.another_instance(&[("SESSION_SEAL_KEYS", &rotated)]).await;
    let page = app.browser.get(format!("{}/", both.url)).header("Accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(authenticated_at(&both.url, &app.browser).await, "the old key still opens the record");

    // Only the new key now: the kept-alive record opens. An instance that never had the new key
    // cannot open it, and leaves it for those that can.
    let only_new = app.another_instance(&[("SESSION_SEAL_KEYS", &new.to_base64())]).await;
    assert!(authenticated_at(&only_new.url, &app.browser).await, "resealed with the new key when kept alive");
    assert!(!authenticated_at(&app.url, &app.browser).await, "an instance without the new key signs the session out");
    assert!(authenticated_at(&only_new.url, &app.browser).await, "without destroying it");
    assert_eq!(outcome(&app.refresh_at(&only_new.url, &app.browser).await), "renewed", "and it renews");
    drop((app, both, only_new));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn redis_keys_expire_with_their_sessions() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    let ttls = redis.ttls().await;
    assert!(ttls.len() >= 2, "a session record and a token set: {ttls:?}");
    for (key, ttl) in ttls {
        assert!(ttl > 0 && ttl <= 8 * 3600 * 1000, "{key} expires with its session (PTTL {ttl})");
    }
}

/// The logout index in Redis keeps what has not expired: a session of the user's that expired
/// leaves the user's set at its next write, though the user's live session keeps the set alive
/// (a set that expired only whole would list every session the user ever had). A plain set that
/// an older version left is still read, and replaced at the next write.
#[tokio::test]
async fn the_redis_logout_index_drops_expired_sessions_and_keeps_an_older_plain_sets_members() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    let mut connection = redis.connection().await;
    let index = "oidc-session:sessions-of-sub:248289761001";
    let members = |connection: &mut ::redis::aio::MultiplexedConnection| {
        let mut connection = connection.clone();
        async move {
            let members: Vec<String> =
                ::redis::cmd("ZRANGE").arg(index).arg(0).arg(-1).query_async(&mut connection).await.unwrap();
            members
        }
    };
    let live = members(&mut connection).await;
    assert_eq!(live.len(), 1, "{live:?}");

    // As a session of the user's that expired an hour ago leaves it.
    let hour_ago =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 - 3_600_000;
    let _: i64 = ::redis::cmd("ZADD")
        .arg(index)
        .arg(hour_ago)
        .arg("an-expired-session")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(app.refresh().await["outcome"], "renewed", "a write of the live session");
    assert_eq!(members(&mut connection).await, live, "the expired session left the index");

    // An older version's plain set, with this session and another of the user's: a write of
    // one makes it a sorted set that keeps the other (until the plain set's own expiry).
    let _other = app.other_browser("alice", "wonderland").await;
    let mut both = members(&mut connection).await;
    assert_eq!(both.len(), 2, "{both:?}");
    let _: i64 = ::redis::cmd("DEL").arg(index).query_async(&mut connection).await.unwrap();
    let _: i64 = ::redis::cmd("SADD").arg(index).arg(&both).query_async(&mut connection).await.unwrap();
    let _: i64 = ::redis::cmd("PEXPIRE").arg(index).arg(3_600_000).query_async(&mut connection).await.unwrap();
    assert_eq!(app.refresh().await["outcome"], "renewed", "a write of one of them");
    let mut kept = members(&mut connection).await;
    both.sort();
    kept.sort();
    assert_eq!(kept, both, "the other session is still in the index");

    // An older version's plain set: a back-channel logout still finds the session through it.
    let _: i64 = ::redis::cmd("DEL").arg(index).query_async(&mut connection).await.unwrap();
    let _: i64 = ::redis::cmd("SADD").arg(index).arg(&live[0]).query_async(&mut connection).await.unwrap();
    let logout = app.send_logout_token(serde_json::json!({ "sub": "248289761001" })).await;
    assert_eq!(logout["status"], 200, "{logout}");
    assert_eq!(app.session().await["authenticated"], false, "found through the plain set");
}

/// The PTTLs of the browser session records in Redis, in milliseconds.
/// The API refuses an access token whose provider session a back-channel logout ended for as
/// long as such a token could live: two hours here, from the lifetime of the tokens it has seen
/// (an hour when it has seen none).
#[tokio::test]
async fn a_logout_is_remembered_as_long_as_the_access_tokens_the_api_has_seen_live() {
    let redis = RedisServer::start().await;
    let two_hours: u64 = 2 * 3600;
    let setup = redis_setup(&redis, &SealKey::generate())
        .provider(move |config| config.lifetimes.access_token_secs = two_hours);
    let app = TestApp::start_with(setup).await;
    app.sign_in("/").await;
    let access_token = app.proxy.as_ref().unwrap().access_tokens_seen().pop().unwrap();
    let report = app
        .browser
        .post(app.url("/api/reports"))
        .bearer_auth(&access_token)
        .json(&serde_json::json!({ "fields": { "title": "x" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::CREATED);

    let sid = app.session().await["sid"].as_str().unwrap().to_owned();
    let logout = app.send_logout_token(serde_json::json!({ "sub": "248289761001", "sid": sid })).await;
    assert_eq!(logout["status"], 200, "{logout}");
    let remembered: Vec<(String, i64)> =
        redis.ttls().await.into_iter().filter(|(key, _)| key.contains("logged-out")).collect();
    assert!(!remembered.is_empty(), "the logout is recorded");
    for (key, ttl) in remembered {
        assert!(ttl > (two_hours as i64 - 60) * 1000, "{key} is remembered as long as the token lives (PTTL {ttl})");
    }
}

async fn session_record_ttls(redis: &RedisServer) -> Vec<i64> {
    redis.ttls().await.into_iter().filter(|(key, _)| key.contains(":session:")).map(|(_, ttl)| ttl).collect()
}

/// Anyone can have a session record created: a request to `/auth/login` without a cookie. Such a
/// record, holding only a sign-in in flight, expires with it (10 minutes), not after the 8 hours
/// of a signed-in session, so that these requests cannot fill the store. Signed in, the record
/// lives as long as a session does, and a sign-in started from a signed-in browser keeps that.
#[tokio::test]
async fn a_record_holding_only_a_sign_in_in_flight_expires_with_it() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    let (pending, signed_in) = (1..=600_000, 600_001..=8 * 3600 * 1000);

    let authorize = app.begin_login("/").await;
    let ttls = session_record_ttls(&redis).await;
    assert!(ttls.len() == 1 && pending.contains(&ttls[0]), "a record of a sign-in in flight: PTTL {ttls:?}");
    reqwest::Client::new().get(app.login_url("/")).send().await.unwrap();
    let ttls = session_record_ttls(&redis).await;
    assert!(ttls.len() == 2 && ttls.iter().all(|ttl| pending.contains(ttl)), "another, cookie-less: {ttls:?}");

    let callback = app.sign_in_at_provider(&authorize).await;
    assert_eq!(app.get(&callback).await.status(), StatusCode::SEE_OTHER);
    let ttls = session_record_ttls(&redis).await;
    assert!(ttls.iter().filter(|ttl| signed_in.contains(*ttl)).count() == 1, "signed in: the normal expiry: {ttls:?}");

    // A new sign-in from the signed-in browser does not shorten its record.
    app.begin_login("/").await;
    let ttls = session_record_ttls(&redis).await;
    assert!(ttls.iter().filter(|ttl| signed_in.contains(*ttl)).count() == 1, "still the normal expiry: {ttls:?}");
    assert!(authenticated_at(&app.url, &app.browser).await);
}

/// A back-channel logout finds a session through the index of its `sid` and `sub`. A session
/// renewed all day outlives the idle timeout of its sign-in, so every renewal must keep that
/// index alive as long as the session itself, or the logout would find nothing.
#[tokio::test]
async fn every_renewal_keeps_the_logout_index_alive_as_long_as_the_session() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(outcome(&app.refresh().await), "renewed");

    let ttls = redis.ttls().await;
    let ttl_of =
        |kind: &str| ttls.iter().filter(|(key, _)| key.contains(kind)).map(|(_, ttl)| *ttl).collect::<Vec<_>>();
    let tokens = ttl_of("tokens:");
    assert_eq!(tokens.len(), 1, "one token set: {ttls:?}");
    // Renewed 1.5 s after sign-in: a whole idle timeout from the renewal, not from the sign-in.
    assert!(tokens[0] > 8 * 3600 * 1000 - 1000, "the renewal moved the deadline: {ttls:?}");
    let indexes = [ttl_of("sessions-of-sid:"), ttl_of("sessions-of-sub:")].concat();
    assert_eq!(indexes.len(), 2, "indexed by sid and by sub: {ttls:?}");
    for index in indexes {
        assert!(index + 500 >= tokens[0], "the index lives as long as the renewed session: {ttls:?}");
    }
}

/// A provider whose access tokens outlive the session's idle timeout leaves nothing to renew: the
/// token set must be kept alive by use, as the browser's session record is, or a user busy all
/// day would be signed out 8 hours after sign-in.
#[tokio::test]
async fn a_session_in_use_keeps_its_token_set_and_logout_index_as_long_as_its_record() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let page = app.browser.get(app.url("/")).header("Accept", "text/html").send().await.unwrap();
    assert!(page.headers().get("set-cookie").is_some(), "the use moved the session record's expiry");

    let ttls = redis.ttls().await;
    let record = ttls.iter().find(|(key, _)| key.contains(":session:")).map(|(_, ttl)| *ttl).unwrap();
    for kind in ["tokens:", "sessions-of-sid:", "sessions-of-sub:"] {
        let (_, ttl) = ttls.iter().find(|(key, _)| key.contains(kind)).unwrap();
        assert!(ttl + 500 >= record, "{kind} lives as long as the session record: {ttls:?}");
    }
}

/// Once the provider has answered a refresh, the refresh token it was given is retired: the new
/// one must reach the store, or the next renewal would present the old one and the provider would
/// revoke the family. A store that fails at that moment is tried again; one that stays down has
/// the answer kept in memory, and written by the next renewal instead of a token request.
#[tokio::test]
async fn a_store_that_fails_as_the_provider_answers_loses_no_rotated_refresh_token() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    let proxy = app.proxy.as_ref().unwrap();
    let answered = || refresh_answered(proxy);

    // Redis stops as the provider's answer is on its way, and is back two seconds later.
    proxy.set(ProxyMode::SlowAnswers { token_ms: 1_000, jwks_ms: 0 });
    let outage = async {
        answered().await;
        redis.stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        redis.restart().await;
    };
    let (renewal, ()) = tokio::join!(app.refresh(), outage);
    assert_eq!(outcome(&renewal), "renewed", "the write was tried again: {renewal}");

    // Redis stays down for longer than the renewal tries: the browser hears "not now", and the
    // next renewal writes the answer kept in memory, without asking the provider again.
    let outage = async {
        answered().await;
        redis.stop();
    };
    let (renewal, ()) = tokio::join!(app.refresh(), outage);
    assert_eq!(outcome(&renewal), "transient", "{renewal}");
    redis.restart().await;
    proxy.set(ProxyMode::Forward);
    let requests = proxy.token_requests();
    assert_eq!(outcome(&app.refresh().await), "renewed");
    // The kept answer was written first (by this renewal, or by the task offering it to the store
    // in the meantime, after which this renewal is one more token request).
    assert!(proxy.token_requests() <= requests + 1);
    // The family goes on from the kept refresh token, and no token was ever presented twice.
    assert_eq!(outcome(&app.refresh().await), "renewed");
    let metrics = app.metrics().await;
    assert_eq!(metrics["refresh_tokens_reused"], 0, "{metrics}");
    assert_eq!(metrics["families_revoked"], 0, "{metrics}");
}

/// After Redis restarts, an instance that served nothing during the outage serves its first
/// request: its connection learns it was dropped from that request's first command, which is
/// tried once more on the new connection.
#[tokio::test]
async fn an_instance_idle_through_a_redis_restart_serves_its_next_request() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    redis.stop();
    redis.restart().await;
    let session = app.browser.get(app.url("/auth/session")).send().await.unwrap();
    assert_eq!(session.status(), StatusCode::OK);
    assert_eq!(session.json::<Value>().await.unwrap()["authenticated"], true);
}

/// Waits until the provider has answered one more refresh (its answer may still be held).
async fn refresh_answered(proxy: &support::Proxy) {
    let before = proxy.refresh_tokens_seen().len();
    let answered = async {
        while proxy.refresh_tokens_seen().len() == before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), answered).await.expect("the provider answers a refresh");
}

/// An answer kept in memory because the store was down is written as soon as the store is back,
/// without waiting for the session's next renewal on that instance: another instance renewing
/// first would present the refresh token the answer retired, and the family would be revoked.
#[tokio::test]
async fn an_answer_kept_in_memory_is_written_once_the_store_is_back_before_another_instance_renews() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    let other = app.another_instance(&[]).await;
    app.sign_in("/").await;
    // A first renewal, so that the browser's session record has nothing left to write when the
    // store goes (its answer would be a 500 then, not the renewal's own "transient").
    assert_eq!(outcome(&app.refresh().await), "renewed");
    let proxy = app.proxy.as_ref().unwrap();
    proxy.set(ProxyMode::SlowAnswers { token_ms: 1_000, jwks_ms: 0 });
    let outage = async {
        refresh_answered(proxy).await;
        redis.stop();
    };
    let (renewal, ()) = tokio::join!(app.refresh(), outage);
    assert_eq!(outcome(&renewal), "transient", "{renewal}");
    redis.restart().await;
    proxy.set(ProxyMode::Forward);
    let before = value_of(&redis, ":tokens:").await;

    // Nothing renews on the first instance: it writes what it kept by itself.
    kept_answer_written(&redis, before, Duration::from_secs(10)).await;
    another_instance_renews_from_it(&app, &other).await;
}

/// Waits, at most `limit`, until the token set in Redis is no longer `before`.
async fn kept_answer_written(redis: &RedisServer, before: Option<Vec<u8>>, limit: Duration) {
    let written = async {
        while value_of(redis, ":tokens:").await == before {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(limit, written).await.expect("the kept answer is written");
}

/// Another instance renews from the written answer: no refresh token was presented twice.
async fn another_instance_renews_from_it(app: &TestApp, other: &support::Instance) {
    assert_eq!(outcome(&app.refresh_at(&other.url, &app.browser).await), "renewed");
    let metrics = app.metrics().await;
    assert_eq!(metrics["refresh_tokens_reused"], 0, "{metrics}");
    assert_eq!(metrics["families_revoked"], 0, "{metrics}");
}

/// The value of the first key whose name contains `part`.
async fn value_of(redis: &RedisServer, part: &str) -> Option<Vec<u8>> {
    redis.dump().await.into_iter().find(|(key, _)| key.contains(part)).map(|(_, value)| value)
}

/// Changes what Redis lets the app's user run (an ACL rule such as `-@scripting`).
async fn scripts(redis: &RedisServer, rule: &str) {
    let mut connection = redis.connection().await;
    let _: String =
        ::redis::cmd("ACL").arg("SETUSER").arg("default").arg(rule).query_async(&mut connection).await.unwrap();
}

/// A store that fails again after it was back (a flapping store): the renewal lock of the task
/// writing a kept answer lapses, and the next renewal on that instance takes it. That renewal
/// writes the kept answer rather than present the refresh token it retired, and when the store
/// fails it again, it hands its own lock to a task that writes the answer once the store takes
/// it, before another instance renews. Here Lua scripts are refused: reads and set-if-absent
/// (taking a free lock) work, every compare-and-set (writing a token set, extending a lock)
/// fails.
#[tokio::test]
async fn a_kept_answer_is_written_through_a_store_that_fails_again_after_its_lock_lapsed() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    let other = app.another_instance(&[]).await;
    app.sign_in("/").await;
    assert_eq!(outcome(&app.refresh().await), "renewed");
    let grants = app.refresh_grants().await;

    scripts(&redis, "-@scripting").await;
    assert_eq!(outcome(&app.refresh().await), "transient", "the answer cannot be written");
    assert_eq!(app.refresh_grants().await, grants + 1, "the provider has rotated the refresh token");
    let lapsed = async {
        while value_of(&redis, ":lock:renew:").await.is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), lapsed).await.expect("the lock lapses");
    assert_eq!(outcome(&app.refresh().await), "transient", "the kept answer cannot be written either");
    assert_eq!(app.refresh_grants().await, grants + 1, "no token request with the retired refresh token");

    let before = value_of(&redis, ":tokens:").await;
    scripts(&redis, "+@all").await;
    // Within one round of the task that holds the renewal's lock: the earlier task, had it kept
    // the answer, could only take the lock once the renewal's lapsed, some 10 s from now.
    kept_answer_written(&redis, before, Duration::from_secs(5)).await;
    another_instance_renews_from_it(&app, &other).await;
}

/// A renewal can outlast its lock's 15 s: a provider slow to answer, then an ID token signed with
/// a key the app must fetch first, from a slow key set. The holder keeps its lock extended until
/// the new tokens are written, so another instance waits for them instead of presenting the
/// refresh token the provider has already retired.
#[tokio::test]
async fn a_renewal_that_outlasts_its_lock_keeps_it_and_another_instance_waits() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    let other = app.another_instance(&[]).await;
    app.sign_in("/").await;
    assert!(app.admin_post("/keys/rotate").await.status().is_success());
    let proxy = app.proxy.as_ref().unwrap();
    proxy.set(ProxyMode::SlowAnswers { token_ms: 9_000, jwks_ms: 8_000 });

    let slow = app.refresh_at(&app.url, &app.browser);
    let later = async {
        tokio::time::sleep(Duration::from_secs(16)).await;
        proxy.set(ProxyMode::Forward);
        app.refresh_at(&other.url, &app.browser).await
    };
    let (slow, later) = tokio::join!(slow, later);
    assert_eq!(outcome(&slow), "renewed", "{slow}");
    assert_eq!(outcome(&later), "renewed", "{later}");
    let metrics = app.metrics().await;
    assert_eq!(metrics["refresh_tokens_reused"], 0, "{metrics}");
    assert_eq!(app.refresh_grants().await, 1, "one token request for both");
}

/// A write of the token set that succeeds while its logout index fails is a written renewal, not
/// a failed one: trying it again over the record it already changed would find the retired
/// refresh token gone, and end the session.
#[tokio::test]
async fn a_renewal_whose_logout_index_cannot_be_written_is_still_a_renewal() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    app.sign_in("/").await;
    let mut connection = redis.connection().await;
    // A key of the wrong type where the user's index is: every write to it fails.
    let index = "oidc-session:sessions-of-sub:248289761001";
    let _: i64 = ::redis::cmd("DEL").arg(index).query_async(&mut connection).await.unwrap();
    let _: String = ::redis::cmd("SET").arg(index).arg("not a set").query_async(&mut connection).await.unwrap();

    assert_eq!(outcome(&app.refresh().await), "renewed");
    assert_eq!(outcome(&app.refresh().await), "renewed", "and the next renewal uses the new refresh token");
    assert_eq!(app.metrics().await["refresh_tokens_reused"], 0);
}

/// An instance whose Redis subscription drops (a network blip, a restart) misses what is
/// published until it is back. When it is, its open streams are closed, so that their browsers
/// reconnect and check the store afresh: a logout published in the gap still reaches the tab.
#[tokio::test]
async fn a_logout_published_while_an_instance_had_lost_its_subscription_still_reaches_its_tabs() {
    let redis = RedisServer::start().await;
    let app = TestApp::start_with(redis_setup(&redis, &SealKey::generate())).await;
    let other = app.another_instance(&[]).await;
    app.sign_in("/").await;
    let listen = || async {
        let response = app.browser.get(other.url("/auth/events")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response
    };
    let open = tokio::spawn(read_events(listen().await));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Every subscription drops, and the user is logged out through the first instance at once.
    let mut connection = redis.connection().await;
    let _: i64 =
        ::redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut connection).await.unwrap();
    let logout = app.send_logout_token(serde_json::json!({ "sub": "248289761001" })).await;
    assert_eq!(logout["status"], 200, "{logout}");

    // The stream that missed it is closed once the subscription is back, and the browser's
    // reconnection hears that the session ended.
    let missed = tokio::time::timeout(Duration::from_secs(5), open).await.expect("the open stream was closed").unwrap();
    assert!(missed.contains("event: ready") && !missed.contains("event: session-ended"), "closed, not told: {missed}");
    let again = read_events(listen().await).await;
    assert!(again.contains("event: session-ended"), "{again}");
}

/// What an `/auth/events` stream says until `session-ended`, or until it is closed.
async fn read_events(response: reqwest::Response) -> String {
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    while let Some(Ok(chunk)) = futures::StreamExt::next(&mut stream).await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains("event: session-ended") {
            break;
        }
    }
    seen
}

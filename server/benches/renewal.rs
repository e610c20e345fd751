//! Renewal through the server: `POST /auth/refresh` from the browser's side, through the
//! single-flight renewal (and the store's renewal lock), to the provider's token endpoint and
//! back, with the refreshed ID token validated and the token set sealed and stored. For each
//! session store (memory, SQLite, Redis), prints p50 and p99 over `SEQUENTIAL` renewals one after
//! another, then renewals per second with `SESSIONS` sessions renewing in a loop for `SECONDS`.
//!
//! `cargo bench -p server --bench renewal` (`BENCH_SEQUENTIAL`, `BENCH_SESSIONS`,
//! `BENCH_SECONDS` change the defaults of 1,000 renewals, 32 sessions and 10 s; `BENCH_STORES`
//! the stores, `memory,sqlite,redis`). Redis is Debian's `redis-server`, started here.
//!
//! App, provider and load generator share this process and the machine's cores.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{temp_dir, RedisServer, Setup, TestApp};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}: a number")))
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

async fn renew(app: &TestApp, browser: &reqwest::Client) -> Duration {
    let sent = Instant::now();
    let outcome = app.refresh_as(browser).await;
    let elapsed = sent.elapsed();
    assert_eq!(outcome["outcome"], "renewed", "{outcome}");
    elapsed
}

#[tokio::main]
async fn main() {
    let stores = std::env::var("BENCH_STORES").unwrap_or_else(|_| "memory,sqlite,redis".into());
    for store in stores.split(',') {
        match store {
            "memory" => measure(store, "memory".into()).await,
            "sqlite" => {
                let dir = temp_dir("bench-sqlite");
                measure(store, dir.join("sessions.sqlite3").display().to_string()).await;
                std::fs::remove_dir_all(dir).unwrap();
            }
            "redis" => {
                let redis = RedisServer::start().await;
                measure(store, redis.url()).await;
            }
            other => panic!("BENCH_STORES: unknown store {other}"),
        }
    }
}

async fn measure(name: &str, session_store: String) {
    let sequential = setting("BENCH_SEQUENTIAL", 1000) as usize;
    let sessions = setting("BENCH_SESSIONS", 32) as usize;
    let seconds = setting("BENCH_SECONDS", 10);
    let app = TestApp::start_with(Setup::default().var("SESSION_STORE", session_store)).await;
    app.sign_in("/").await;
    for _ in 0..50 {
        renew(&app, &app.browser).await;
    }

    let mut latencies = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        latencies.push(renew(&app, &app.browser).await);
    }
    latencies.sort();
    println!(
        "{name}: {sequential} sequential renewals: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );

    let mut browsers = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        browsers.push(app.other_browser("bob", "builder").await);
    }
    let app = std::sync::Arc::new(app);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = browsers
        .into_iter()
        .map(|browser| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    latencies.push(renew(&app, &browser).await);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{name}: {sessions} sessions renewing for {seconds} s: {:.0} renewals/s, p50 {:.2} ms, p99 {:.2} ms",
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
}

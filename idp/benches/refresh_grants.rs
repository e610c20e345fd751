//! The embedded provider's refresh-grant throughput with rotation: `FAMILIES` refresh token
//! families, each rotated in a loop by its own task over HTTP/1.1 keep-alive for `SECONDS`,
//! `RUNS` times; prints each run and the median run's grants per second with its p50 and p99
//! latency. It measures the provider twice: in memory, then with a state file in a temporary
//! directory (every grant on disk before its answer, see `store::journal`). Then, under the same
//! load, panva's oidc-provider (`end2end/interop/provider.mjs`, started with Node.js on a free
//! port and stopped by PID; its admin API mints the families' first refresh tokens), and prints
//! the ratio of each embedded figure to it.
//!
//! `cargo bench -p idp --bench refresh_grants` (`BENCH_SECONDS`, `BENCH_FAMILIES`, `BENCH_RUNS`
//! change the defaults of 20 s, 32 families and 3 runs; `BENCH_STORE` lists what to measure,
//! by default `memory,file,oidc-provider`; oidc-provider needs `npm ci` in end2end/ first).
//!
//! The load generator shares the machine's cores with the provider, so the figure is a floor.
//! (Node.js runs the oidc-provider's JavaScript on one thread; the embedded provider may use both
//! cores, which the load generator shares with it.)

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use idp::testing::{interaction_id, TempDir, TestProvider};
use reqwest::{header::LOCATION, redirect::Policy};
use serde_json::Value;
use sha2::{Digest, Sha256};

const CLIENT_ID: &str = "demo-app";
const CLIENT_SECRET: &str = "demo-app-secret";
const REDIRECT_URI: &str = "http://localhost:3000/auth/callback";

struct Run {
    grants_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}: a number")))
}

#[tokio::main]
async fn main() {
    let seconds = setting("BENCH_SECONDS", 20);
    let families = setting("BENCH_FAMILIES", 32) as usize;
    let runs = setting("BENCH_RUNS", 3);
    let stores = std::env::var("BENCH_STORE").unwrap_or_else(|_| "memory,file,oidc-provider".into());
    let mut medians = Vec::new();
    for store in stores.split(',') {
        let median = match store {
            "memory" | "file" => {
                // Kept until the provider is gone, then removed with its state file.
                let dir = TempDir::default();
                let provider = match store {
                    "memory" => TestProvider::start(|_| {}).await,
                    _ => TestProvider::start(|config| config.state_file = Some(dir.join("state.db"))).await,
                };
                let median = bench(&Target::Embedded(&provider), store, families, seconds, runs).await;
                provider.stop().await;
                median
            }
            "oidc-provider" => {
                let Some(node) = NodeProvider::start() else { continue };
                bench(&Target::OidcProvider(&node), store, families, seconds, runs).await
            }
            other => panic!("BENCH_STORE: memory, file or oidc-provider, not {other}"),
        };
        medians.push((store, median));
    }
    for (store, median) in &medians {
        println!(
            "{store:>13}: median of {runs}: {:.0} refresh grants/s, p50 {:.2} ms, p99 {:.2} ms",
            median.grants_per_sec,
            median.p50.as_secs_f64() * 1e3,
            median.p99.as_secs_f64() * 1e3
        );
    }
    if let Some((_, node)) = medians.iter().find(|(store, _)| *store == "oidc-provider") {
        for (store, median) in medians.iter().filter(|(store, _)| *store != "oidc-provider") {
            println!(
                "{:>13}: embedded ({store}) / oidc-provider = {:.1}x the grants per second",
                "ratio",
                median.grants_per_sec / node.grants_per_sec
            );
        }
    }
}

/// What is measured: the embedded provider in this process, or oidc-provider in Node.js.
enum Target<'a> {
    Embedded(&'a TestProvider),
    OidcProvider(&'a NodeProvider),
}

impl Target<'_> {
    fn token_url(&self) -> String {
        match self {
            Self::Embedded(provider) => provider.url("/token"),
            Self::OidcProvider(node) => format!("{}/token", node.url),
        }
    }

    /// A fresh refresh token for each family: through a sign-in and a code exchange at the
    /// embedded provider; from oidc-provider's own models (its admin API), each of a grant of its
    /// own, since its sign-in pages are this suite's and not what is measured.
    async fn first_refresh_tokens(&self, http: &reqwest::Client, families: usize) -> Vec<String> {
        match self {
            Self::Embedded(provider) => {
                let mut tokens = Vec::new();
                for _ in 0..families {
                    tokens.push(first_refresh_token(http, provider).await);
                }
                tokens
            }
            Self::OidcProvider(node) => {
                let url = format!("{}/admin/users/{}/refresh-tokens", node.url, "248289761001");
                let body: Value = http
                    .post(url)
                    .json(&serde_json::json!({ "count": families }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                body["refresh_tokens"]
                    .as_array()
                    .expect("minted refresh tokens")
                    .iter()
                    .map(|token| token.as_str().unwrap().to_owned())
                    .collect()
            }
        }
    }
}

/// `node end2end/interop/provider.mjs` on a free port, killed (by its PID) when dropped.
struct NodeProvider {
    child: Child,
    url: String,
    /// Its standard output, kept open so that a later write cannot fail with EPIPE.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl NodeProvider {
    /// `None`, with a message, when Node.js or the npm packages are missing.
    fn start() -> Option<Self> {
        let end2end = Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end");
        if !end2end.join("node_modules/oidc-provider").is_dir() {
            eprintln!("oidc-provider: skipped (run `npm ci` in end2end/ first)");
            return None;
        }
        let mut child = match Command::new("node")
            .arg(end2end.join("interop/provider.mjs"))
            .env("INTEROP_ADDR", "127.0.0.1:0")
            .env("INTEROP_QUIET", "1")
            // The embedded provider signs ES256: the same work for both.
            .env("INTEROP_SIGNING_ALG", "ES256")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(error) => {
                eprintln!("oidc-provider: skipped (cannot run node: {error})");
                return None;
            }
        };
        // Its first line: `listening on http://127.0.0.1:PORT (issuer …)`.
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let url = line.split_whitespace().nth(2).filter(|url| url.starts_with("http://"));
        let Some(url) = url.map(str::to_owned) else {
            let _ = child.kill();
            panic!("oidc-provider did not start: {line:?}");
        };
        Some(Self { child, url, _stdout: stdout })
    }
}

impl Drop for NodeProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `runs` runs against `target`; returns the median one.
async fn bench(target: &Target<'_>, store: &str, families: usize, seconds: u64, runs: u64) -> Run {
    let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
    let mut results = Vec::new();
    for run in 1..=runs {
        let tokens = target.first_refresh_tokens(&http, families).await;
        let result = measure(&http, target.token_url(), tokens, Duration::from_secs(seconds)).await;
        println!(
            "{store:>13} run {run}: {:.0} refresh grants/s with {families} families for {seconds} s, p50 {:.2} ms, p99 {:.2} ms",
            result.grants_per_sec,
            result.p50.as_secs_f64() * 1e3,
            result.p99.as_secs_f64() * 1e3
        );
        results.push(result);
    }
    results.sort_by(|a, b| a.grants_per_sec.total_cmp(&b.grants_per_sec));
    results.swap_remove(results.len() / 2)
}

async fn measure(http: &reqwest::Client, url: String, tokens: Vec<String>, duration: Duration) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for mut token in tokens {
        let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
                let sent = Instant::now();
                let response =
                    http.post(&url).basic_auth(CLIENT_ID, Some(CLIENT_SECRET)).form(&form).send().await.unwrap();
                assert!(response.status().is_success(), "refresh refused: {}", response.text().await.unwrap());
                let body: Value = response.json().await.unwrap();
                latencies.push(sent.elapsed());
                token = body["refresh_token"].as_str().expect("a rotated refresh token").to_owned();
            }
            latencies
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Run { grants_per_sec: latencies.len() as f64 / elapsed, p50: at(0.50), p99: at(0.99) }
}

/// Signs in as alice (once; then the provider session answers) and exchanges the code.
async fn first_refresh_token(http: &reqwest::Client, provider: &TestProvider) -> String {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile email offline_access"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    let url = format!("{}?{}", provider.url("/authorize"), serde_urlencoded::to_string(query).unwrap());
    let mut response = http.get(&url).send().await.unwrap();
    if response.status().is_success() {
        let interaction = interaction_id(&response.text().await.unwrap()).unwrap();
        let form = [("interaction", interaction.as_str()), ("username", "alice"), ("password", "wonderland")];
        response = http.post(provider.url("/login")).form(&form).send().await.unwrap();
    }
    let location = response.headers()[LOCATION].to_str().unwrap();
    let params: HashMap<String, String> = url::Url::parse(location).unwrap().query_pairs().into_owned().collect();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", params["code"].as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens: Value = http
        .post(provider.url("/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["refresh_token"].as_str().expect("offline_access granted").to_owned()
}

//! Measures `refresh_token` grants per second: `FAMILIES` refresh token families, each rotated
//! in a loop by its own task over HTTP/1.1 keep-alive, against a provider in the same process.
//!
//! `cargo run --release -p idp --example refresh_throughput [-- SECONDS FAMILIES]`
//!
//! The load generator shares the machine's cores with the provider, so the figure is a floor.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use idp::testing::{interaction_id, TestProvider};
use reqwest::{header::LOCATION, redirect::Policy};
use serde_json::Value;
use sha2::{Digest, Sha256};

const CLIENT_ID: &str = "demo-app";
const CLIENT_SECRET: &str = "demo-app-secret";
const REDIRECT_URI: &str = "http://localhost:3000/auth/callback";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(5, |s| s.parse().expect("SECONDS"));
    let families: usize = args.next().map_or(32, |s| s.parse().expect("FAMILIES"));
    let provider = TestProvider::start(|_| {}).await;
    let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();

    let mut tokens = Vec::new();
    for _ in 0..families {
        tokens.push(first_refresh_token(&http, &provider).await);
    }

    let grants = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let url = provider.url("/token");
    let mut tasks = Vec::new();
    for mut token in tokens {
        let (http, url, grants, stop) = (http.clone(), url.clone(), grants.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
                let response =
                    http.post(&url).basic_auth(CLIENT_ID, Some(CLIENT_SECRET)).form(&form).send().await.unwrap();
                assert!(response.status().is_success(), "refresh refused: {}", response.text().await.unwrap());
                let body: Value = response.json().await.unwrap();
                token = body["refresh_token"].as_str().expect("a rotated refresh token").to_owned();
                grants.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let count = grants.load(Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "{count} refresh grants in {elapsed:.1} s with {families} families: {:.0} grants/s",
        count as f64 / elapsed
    );
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

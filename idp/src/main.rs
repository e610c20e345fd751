//! Runs the development OpenID Provider on its own:
//! `cargo run -p idp -- [--config provider.toml] [--addr 127.0.0.1:4000] [--state FILE]`.
//!
//! `--state FILE` keeps the provider's state (signing keys, provider sessions, refresh token
//! families, access tokens) in that SQLite file across restarts, as `state_file` in the TOML
//! does; the flag wins over the file's setting.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use idp::{Provider, ProviderConfig};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut config_path: Option<PathBuf> = None;
    let mut state_file: Option<PathBuf> = None;
    let mut addr: SocketAddr = "127.0.0.1:4000".parse().expect("valid default");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--config", Some(path)) => config_path = Some(path.into()),
            ("--addr", Some(value)) => addr = value.parse().map_err(|e| format!("--addr {value}: {e}"))?,
            ("--state", Some(path)) => state_file = Some(path.into()),
            _ => return Err("usage: idp [--config FILE] [--addr HOST:PORT] [--state FILE]".into()),
        }
    }
    let mut config = match config_path {
        Some(path) => ProviderConfig::from_file(&path),
        None => Ok(ProviderConfig::default()),
    }
    .map_err(|e| e.to_string())?;
    if state_file.is_some() {
        config.state_file = state_file;
    }
    let provider = Provider::new(config).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("--addr {addr}: {e}"))?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), issuer = %provider.config().issuer_str(), "listening");
    // Ctrl-C closes the state file cleanly; a killed process loses nothing either (see
    // `store::journal`), it only leaves the write-ahead log for the next start to replay.
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    provider.serve_with_shutdown(listener, interrupted).await.map_err(|e| e.to_string())
}

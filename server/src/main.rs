//! Wiring only: configuration, the embedded provider if no issuer is set, the app, the listener.

use std::process::ExitCode;

use server::{
    config::{Config, ProviderSource},
    embedded_provider, logging, StartError,
};

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("cannot start: {error}");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), StartError> {
    let config = Config::from_env()?;
    let leptos_options =
        leptos::config::get_configuration(None).map_err(|e| StartError::Site(e.to_string()))?.leptos_options;
    let addr = leptos_options.site_addr;

    let _provider = match config.provider {
        ProviderSource::Embedded { addr, ref config_file } => {
            Some(embedded_provider::start(&config, addr, config_file.as_deref()).await?)
        }
        ProviderSource::External => None,
    };
    let app_url = config.app_url.clone();
    let app = server::app(config, leptos_options).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| StartError::Listen(format!("{addr}: {e}")))?;
    tracing::info!(%addr, %app_url, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| StartError::Listen(e.to_string()))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

//! Browser-facing defences that apply across routes: a strict Content Security Policy with a
//! fresh nonce per rendered page, baseline headers, and a same-origin check on every
//! state-changing request (CSRF).

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;

use crate::AppState;

/// The CSP of pages the Leptos app renders: scripts from this origin or carrying this response's
/// nonce, wasm allowed to compile, nothing inline otherwise, no framing of the page itself;
/// frames of this origin and the provider's only (silent renew's hidden iframe starts here and
/// passes through the provider; check_session's frame is the provider's); forms to this origin,
/// whose answer may redirect to the provider
/// (sign-out continues at its end-session endpoint, and Chromium applies `form-action` to the
/// redirect too).
#[derive(Clone)]
pub struct PageCsp {
    /// `connect-src` beyond `'self'`: the live-reload socket of `cargo leptos watch`.
    extra_connect: String,
    /// The provider's origins (see `OidcClient::browser_origins`), space-separated, for
    /// `frame-src` and `form-action`.
    provider_origins: String,
}

impl PageCsp {
    pub fn new(app_host: &str, provider_origins: &[String], leptos: &leptos::config::LeptosOptions) -> Self {
        let extra_connect = if std::env::var_os("LEPTOS_WATCH").is_some() {
            let port = leptos.reload_external_port.unwrap_or(leptos.reload_port);
            format!(" ws://{app_host}:{port}")
        } else {
            String::new()
        };
        Self { extra_connect, provider_origins: provider_origins.join(" ") }
    }

    /// Called in the render context of each page: sets the CSP for the nonce Leptos put on its
    /// inline scripts, and keeps the page (which shows who is signed in) out of caches.
    pub fn apply(&self) {
        let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<ResponseOptions>()) else {
            return;
        };
        let policy = format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
             img-src 'self' data:; connect-src 'self'{}; frame-src 'self' {}; frame-ancestors 'none'; \
             form-action 'self' {}; base-uri 'none'; object-src 'none'",
            self.extra_connect, self.provider_origins, self.provider_origins
        );
        if let Ok(value) = HeaderValue::from_str(&policy) {
            response.insert_header(header::CONTENT_SECURITY_POLICY, value);
        }
        response.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// For every response: no sniffing, no framing (unless a route allows its own origin, as silent
/// renew's do), referrers only within the site, and a CSP that allows nothing active where the
/// page did not set its own.
pub async fn baseline_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    headers.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(
        "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ));
    response
}

/// CSRF defence for cookie-authenticated writes: a request that can change state (sign out,
/// server functions) must come from this origin, by its `Origin` header or, where a browser
/// leaves that out, by `Sec-Fetch-Site`. `SameSite=Lax` alone would still let a sibling
/// subdomain (same site, other origin) post.
pub async fn require_same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let same_origin = match headers.get(header::ORIGIN) {
        Some(origin) => origin.as_bytes() == state.config.origin().as_bytes(),
        None => headers.get("sec-fetch-site").is_some_and(|v| v == "same-origin"),
    };
    if same_origin {
        return next.run(request).await;
    }
    tracing::warn!(
        method = %request.method(),
        path = request.uri().path(),
        origin = ?headers.get(header::ORIGIN),
        "cross-origin write refused"
    );
    (StatusCode::FORBIDDEN, "cross-origin request refused").into_response()
}

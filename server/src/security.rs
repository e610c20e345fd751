//! Browser-facing defences that apply across routes: a strict Content Security Policy with a
//! fresh nonce per rendered page, baseline headers, and a same-origin check on every
//! state-changing request (CSRF).

use std::sync::{Arc, Mutex, PoisonError};

use axum::http::request::Parts;
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use leptos::prelude::use_context;

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

    /// In the render context of each page: tells [`page_headers`] the nonce Leptos put on the
    /// page's inline scripts.
    pub fn note_nonce() {
        let slot = use_context::<Parts>().and_then(|parts| parts.extensions.get::<RenderedNonce>().cloned());
        if let (Some(nonce), Some(slot)) = (leptos::nonce::use_nonce(), slot) {
            *slot.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(nonce.to_string());
        }
    }

    fn policy(&self, nonce: &str) -> String {
        format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
             img-src 'self' data:; connect-src 'self'{}; frame-src 'self' {}; frame-ancestors 'none'; \
             form-action 'self' {}; base-uri 'none'; object-src 'none'",
            self.extra_connect, self.provider_origins, self.provider_origins
        )
    }
}

/// The nonce of the page being rendered: the render draws it, the middleware writes the headers.
#[derive(Clone, Default)]
struct RenderedNonce(Arc<Mutex<Option<String>>>);

/// Around the browser-facing routes: a response that is a page Leptos rendered gets the CSP for
/// its nonce, and is kept out of caches (it shows who is signed in). Set on the response itself
/// rather than through Leptos's `ResponseOptions`, whose headers were, rarely and under parallel
/// load, missing from a rendered page (the Playwright suite saw every script blocked by the
/// fallback policy, and no hydration).
pub async fn page_headers(State(csp): State<Arc<PageCsp>>, mut request: Request, next: Next) -> Response {
    let rendered = RenderedNonce::default();
    request.extensions_mut().insert(rendered.clone());
    let mut response = next.run(request).await;
    let nonce = rendered.0.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(nonce) = nonce {
        if let Ok(value) = HeaderValue::from_str(&csp.policy(&nonce)) {
            response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
        }
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
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

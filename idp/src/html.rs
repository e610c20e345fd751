//! The provider's few HTML pages: the sign-in form and error pages, under a strict CSP.

use std::sync::LazyLock;

use axum::{
    http::{header, HeaderValue},
    response::{Html, IntoResponse, Response},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}\
label{display:block;margin:.75rem 0 .25rem}input{width:100%;padding:.4rem;box-sizing:border-box}\
button{margin:1rem .5rem 0 0;padding:.4rem 1rem}.error{color:#a00}.hint{color:#555;font-size:.9rem}";

/// The inline stylesheet is allowed by its hash, so the CSP needs neither `'unsafe-inline'`
/// nor a second request.
static STYLE_HASH: LazyLock<String> =
    LazyLock::new(|| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(STYLE.as_bytes()))));

/// Escapes text for an HTML element or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page under a CSP that allows no script at all. `form_target` is the origin a form on the
/// page may end up at: Chromium applies `form-action` to the redirect after a POST too.
pub fn page(title: &str, body: &str, form_target: Option<&str>) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Development OpenID Provider</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let csp = format!(
        "default-src 'none'; style-src {}; form-action 'self' {}; frame-ancestors 'none'; base-uri 'none'",
        *STYLE_HASH,
        form_target.unwrap_or_default()
    );
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(csp.trim()).expect("ASCII"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

//! The provider's few HTML pages: the sign-in form, the terms and consent pages and error
//! pages, under a strict CSP; and who may frame the provider's answers.
//!
//! Framing (CSP Level 3 `frame-ancestors`): every page refuses to be framed (clickjacking), except
//! the answers of the authorization endpoint, which the client's own origins may frame, so that
//! a relying party can send `prompt=none` through a hidden iframe (silent renew, OIDC Core
//! §3.1.2.1), and the OP iframe of Session Management, which every client's origins may frame
//! (see [`crate::check_session`]). `X-Frame-Options` is never sent: it cannot name an origin, and where both are
//! present `frame-ancestors` wins anyway.

use std::sync::LazyLock;

use axum::{
    http::{header, HeaderValue},
    response::{Html, IntoResponse, Response},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::ClientConfig;

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

/// The origins that may frame a response (`frame-ancestors`); none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameAncestors(Vec<String>);

impl FrameAncestors {
    /// Nobody: every page but the authorization endpoint's answers.
    pub const NONE: Self = Self(Vec::new());

    /// The origins of `client`'s registered redirect URIs, each once, in registration order:
    /// exactly the pages that receive its authorization responses, and so the ones that may
    /// hold the iframe of a silent request. A redirect URI without a tuple origin (a custom
    /// scheme of a native app) adds nothing: no web page has that origin.
    pub fn of_client(client: &ClientConfig) -> Self {
        Self::of_clients(std::slice::from_ref(client))
    }

    /// The origins of every redirect URI of `clients`, each once, in registration order.
    pub fn of_clients(clients: &[ClientConfig]) -> Self {
        let mut origins: Vec<String> = Vec::new();
        for uri in clients.iter().flat_map(|client| &client.redirect_uris) {
            let origin = match Url::parse(uri).map(|u| u.origin()) {
                Ok(origin) if origin.is_tuple() => origin.ascii_serialization(),
                _ => continue,
            };
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Self(origins)
    }

    /// The origins, as RFC 6454 serializes them (`http://localhost:3000`).
    pub fn origins(&self) -> &[String] {
        &self.0
    }

    /// The `frame-ancestors` directive's value.
    pub fn sources(&self) -> String {
        if self.0.is_empty() {
            "'none'".to_owned()
        } else {
            self.0.join(" ")
        }
    }

    /// The CSP of a response without a document (a redirect): nothing may load from it, and
    /// only these origins may frame the navigation it belongs to.
    pub fn redirect_policy(&self) -> HeaderValue {
        let csp = format!("default-src 'none'; frame-ancestors {}", self.sources());
        HeaderValue::from_str(&csp).expect("origins are ASCII")
    }
}

/// A page under a CSP that allows no script at all. `form_target` is the origin a form on the
/// page may end up at: Chromium applies `form-action` to the redirect after a POST too. Only
/// `frame_ancestors` may frame it.
pub fn page(title: &str, body: &str, form_target: Option<&str>, frame_ancestors: &FrameAncestors) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Development OpenID Provider</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let csp = format!(
        "default-src 'none'; style-src {}; form-action 'self' {}; frame-ancestors {}; base-uri 'none'",
        *STYLE_HASH,
        form_target.unwrap_or_default(),
        frame_ancestors.sources(),
    );
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).expect("ASCII"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

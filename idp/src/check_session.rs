//! OpenID Connect Session Management 1.0: `session_state` in authorization responses (§2), the OP
//! iframe at `GET /check-session` (`check_session_iframe`, §3.2, §3.3), and the browser state
//! cookie it reads.
//!
//! **The browser state** (the spec's "OP User Agent state") is a random value per provider
//! session ([`ProviderSession::browser_state`]), so it changes with every meaningful event of
//! §3.2: a sign-in makes a new session or, the same user signing in again, gives the session a
//! new value ([`crate::login`]), and a session that ends takes its value with it. It
//! is kept in the cookie `idp_browser_state` (`__Host-idp_browser_state` over https), beside the
//! HttpOnly session cookie: readable by script (§3.2: "the HttpOnly flag likely cannot be set"),
//! `SameSite=Lax`, `Path=/`, `Secure` over https, living as long as the session. Without a
//! session the cookie is deleted, and the page reads the empty string. The value names nothing
//! about the user; knowing it gives nothing but the ability to compute `session_state`.
//!
//! **`session_state`** = `hex(SHA-256(client_id + " " + origin + " " + browser_state + " " +
//! salt)) + "." + salt`: lowercase hexadecimal of the SHA-256 of the UTF-8 string, as in the
//! spec's example; `origin` is the RFC 6454 serialization of the redirect URI's origin (scheme,
//! host, and the port unless it is the scheme's default: `http://localhost:3000`), which is what
//! the browser gives the OP iframe as `event.origin`; `salt` is 16 random bytes, base64url
//! without padding (22 characters, never a space or a dot), new in every response. It comes
//! with every successful authorization response, interactive or `prompt=none`.
//!
//! **The OP iframe** is a page whose only script (allowed by its hash in the CSP, nothing else
//! may run) answers `postMessage(client_id + " " + session_state)`: it recomputes the value
//! from `event.origin` and the cookie, and posts `unchanged` or `changed` back to `event.source`
//! with `targetOrigin` `event.origin`; `error` for a malformed message, for an origin that is
//! not one of the client's redirect URI origins (§3.2: the OP iframe MUST reject unexpected
//! origins), or a browser without Web Crypto. Web Crypto needs a secure context: https, or
//! `http://localhost` as in development. It may be framed by the origins of every registered
//! client's redirect URIs and no one else.
//!
//! A provider session can also end without this browser (the admin API, a reused refresh token,
//! expiry): only a request can tell the cookie. So the page, before answering, asks
//! `GET /check-session/state` (at most once a second), which sets the cookie to what the
//! provider knows; a message within a second of the last refresh is answered from the cookie
//! alone. Both answers of this module set the cookie that way, as every authorization response
//! with a code does.
//!
//! Third-party cookies (§5.1): the demo app and the provider are the same site, so the framed
//! page sees its cookies. A provider on another site than its clients would find its cookie
//! blocked in many browsers, and every answer would be `changed`.

use std::sync::{Arc, LazyLock};

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use rand::RngCore;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{
    html::{self, FrameAncestors},
    login,
    store::ProviderSession,
    ProviderState,
};

pub const BROWSER_STATE_COOKIE: &str = "idp_browser_state";

/// The OP iframe's one script. Static, so that its hash is too; what differs between providers
/// (the cookie's name, each client's origins) comes in `data-` attributes of its element.
pub const SCRIPT: &str = r#""use strict";
(function () {
  var element = document.currentScript;
  var cookieName = element.dataset.cookie;
  var clients = JSON.parse(element.dataset.clients);
  var SESSION_STATE = /^[0-9a-f]{64}\.[A-Za-z0-9_-]+$/;
  var refreshedAt = Date.now();

  function browserState() {
    var prefix = cookieName + "=";
    var cookies = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < cookies.length; i++) {
      if (cookies[i].indexOf(prefix) === 0) return cookies[i].slice(prefix.length);
    }
    return "";
  }

  // A session ended elsewhere (admin API, reuse, expiry) reaches the cookie only by a request.
  function refresh() {
    if (Date.now() - refreshedAt < 1000) return Promise.resolve();
    refreshedAt = Date.now();
    var done = function () {};
    return fetch("/check-session/state", { credentials: "same-origin", cache: "no-store" }).then(done, done);
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }

  window.addEventListener("message", function (event) {
    var origin = event.origin, source = event.source, data = event.data;
    if (!source || origin === "null") return;
    var answer = function (status) { source.postMessage(status, origin); };
    if (typeof data !== "string") return answer("error");
    var space = data.lastIndexOf(" ");
    var clientId = data.slice(0, Math.max(space, 0)), sessionState = data.slice(space + 1);
    if (space < 1 || !SESSION_STATE.test(sessionState)) return answer("error");
    var origins = Object.prototype.hasOwnProperty.call(clients, clientId) ? clients[clientId] : [];
    if (origins.indexOf(origin) < 0) return answer("error");
    if (!window.crypto || !window.crypto.subtle) return answer("error");
    var salt = sessionState.slice(sessionState.indexOf(".") + 1);
    refresh().then(function () {
      var input = clientId + " " + origin + " " + browserState() + " " + salt;
      return window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(input));
    }).then(function (digest) {
      answer(hex(digest) + "." + salt === sessionState ? "unchanged" : "changed");
    }, function () {
      answer("error");
    });
  });
})();
"#;

/// `'sha256-…'`, the CSP source that lets [`SCRIPT`] run and nothing else.
static SCRIPT_HASH: LazyLock<String> =
    LazyLock::new(|| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()))));

/// The `session_state` of an authorization response to `client_id` at `redirect_uri`, in the
/// provider session whose browser state is `browser_state`, with a fresh salt.
pub(crate) fn session_state(client_id: &str, redirect_uri: &str, browser_state: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    session_state_with_salt(client_id, &login::origin_of(redirect_uri), browser_state, &URL_SAFE_NO_PAD.encode(salt))
}

fn session_state_with_salt(client_id: &str, origin: &str, browser_state: &str, salt: &str) -> String {
    let digest = Sha256::digest(format!("{client_id} {origin} {browser_state} {salt}").as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{hex}.{salt}")
}

/// The browser state cookie for `session`, or, without one, the cookie's deletion.
pub(crate) fn browser_state_cookie(state: &ProviderState, session: Option<&ProviderSession>) -> Cookie<'static> {
    let (value, max_age) = match session {
        Some(session) => (session.browser_state.clone(), session.expires_at.saturating_sub(state.now())),
        None => (String::new(), 0),
    };
    Cookie::build((state.cookie_name(BROWSER_STATE_COOKIE), value))
        .path("/")
        .http_only(false)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies())
        .max_age(time::Duration::seconds(i64::try_from(max_age).unwrap_or(i64::MAX)))
        .build()
}

/// `jar` with the browser state cookie set to what the provider knows of this browser now.
fn synced(state: &ProviderState, jar: CookieJar) -> CookieJar {
    let session = login::current_session(state, &jar, state.now());
    jar.add(browser_state_cookie(state, session.as_ref()))
}

/// `GET /check-session`: the OP iframe.
pub async fn page(State(state): State<Arc<ProviderState>>, jar: CookieJar) -> Response {
    let framing = FrameAncestors::of_clients(&state.config.clients);
    let clients: Map<String, Value> = state
        .config
        .clients
        .iter()
        .map(|client| (client.client_id.clone(), FrameAncestors::of_client(client).origins().into()))
        .collect();
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>check_session_iframe</title></head>\
         <body><script data-cookie=\"{cookie}\" data-clients=\"{clients}\">{SCRIPT}</script></body></html>",
        cookie = html::escape(&state.cookie_name(BROWSER_STATE_COOKIE)),
        clients = html::escape(&Value::Object(clients).to_string()),
    );
    let csp = format!(
        "default-src 'none'; script-src {}; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors {}",
        *SCRIPT_HASH,
        framing.sources(),
    );
    let mut response = (synced(&state, jar), Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).expect("origins are ASCII"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `GET /check-session/state`: 204, with the browser state cookie set to what the provider
/// knows, for the OP iframe's refresh.
pub async fn refresh(State(state): State<Arc<ProviderState>>, jar: CookieJar) -> Response {
    let headers = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    (StatusCode::NO_CONTENT, headers, synced(&state, jar)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_state_is_the_hex_sha256_of_the_four_values_then_the_salt() {
        // printf 'demo-app http://localhost:3000 opbs salt' | sha256sum
        assert_eq!(
            session_state_with_salt("demo-app", "http://localhost:3000", "opbs", "salt"),
            "e55375aa89d3493aaba77d3521184d67e0651eabb961f0c90f237b747c15df86.salt"
        );
    }

    #[test]
    fn each_session_state_has_its_own_salt_and_no_space() {
        let first = session_state("demo-app", "http://localhost:3000/auth/callback", "opbs");
        let second = session_state("demo-app", "http://localhost:3000/auth/callback", "opbs");
        assert_ne!(first, second);
        for value in [&first, &second] {
            let (hash, salt) = value.split_once('.').unwrap();
            assert_eq!((hash.len(), salt.len()), (64, 22));
            assert!(!value.contains(' '));
            assert_eq!(
                **value,
                session_state_with_salt("demo-app", "http://localhost:3000", "opbs", salt),
                "the origin is the redirect URI's"
            );
        }
    }
}

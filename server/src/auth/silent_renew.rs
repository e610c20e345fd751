//! Silent renew through the provider's session, for a hidden iframe (OIDC Core §3.1.2.1
//! `prompt=none`, §3.1.2.6 its errors):
//!
//! - `GET /auth/silent-renew`: the iframe's first stop. For the signed-in session it starts an
//!   authorization request like sign-in's (fresh `state`, `nonce`, PKCE verifier, all kept
//!   server-side) with `prompt=none` and the session's ID token as `id_token_hint`, and sends the
//!   iframe to the provider. The hint and the verifier never reach the page.
//! - `GET /auth/silent-callback`, the redirect URI: checks `state` (a silent request of this
//!   browser), exchanges the code, validates the ID token (nonce, and a `sub` equal to the
//!   session's: another subject ends the session), and stores the tokens.
//!
//! `GET /auth/silent-renew` changes state (a sign-in in flight, and through the provider's answer
//! possibly the end of the session), so it serves this app's own iframe only: a request whose
//! `Sec-Fetch-Site` is not `same-origin` or whose `Sec-Fetch-Dest` is not `iframe` (a page of
//! another site navigating or framing it) is refused. Browsers that send neither header are let
//! through, as `require_same_origin` lets GETs through.
//!
//! Both answer a tiny page, with no app bundle, that posts only the outcome (`renewed`,
//! `login_required`, `consent_required`, `interaction_required`, or a failure: never a code or a
//! token) to its parent, `targetOrigin` this app's own origin. It may be framed by this origin
//! only. Whatever goes wrong is an outcome on that page, never a 5xx.

use std::sync::LazyLock;

use app::auth::{JournalEntry, JournalOutcome, JournalStep};
use axum::{
    extract::{rejection::QueryRejection, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};
use tower_sessions::Session;

use super::{
    callback::CallbackQuery,
    oidc_client::RedirectTarget,
    record::{self, AuthenticatedSession, PendingLogin, TokenSet},
    return_to::ReturnTo,
};
use crate::{store::now_ms, unix_now, AppState};

/// Posts the outcome, read from the page's `<meta>`, to the parent if there is one. Static, so
/// that the page's CSP can allow exactly it by its hash.
const SCRIPT: &str = "(function(){var m=document.querySelector('meta[name=\"silent-renew-outcome\"]');\
if(m&&window.parent!==window){window.parent.postMessage({type:'oidc-silent-renew',outcome:m.content},\
window.location.origin);}})();";

static SCRIPT_HASH: LazyLock<String> =
    LazyLock::new(|| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()))));

/// `GET /auth/silent-renew`: from the iframe to the provider, with `prompt=none`.
pub async fn start(State(state): State<AppState>, headers: HeaderMap, session: Session) -> Response {
    let fetch = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (site, dest) = (fetch("sec-fetch-site"), fetch("sec-fetch-dest"));
    if site.is_some_and(|site| site != "same-origin") || dest.is_some_and(|dest| dest != "iframe") {
        tracing::warn!(?site, ?dest, "silent renew refused: not a request of this app's own iframe");
        return (StatusCode::FORBIDDEN, "silent renew is for this app's own iframe only").into_response();
    }
    match begin(&state, &session).await {
        Ok(redirect) => framable(redirect.into_response()),
        Err(outcome) => outcome_page(outcome),
    }
}

async fn begin(state: &AppState, session: &Session) -> Result<Redirect, &'static str> {
    let signed_in = record::authenticated(session, &state.tokens).await.map_err(|error| {
        tracing::warn!(%error, "silent renew could not read the session");
        "transient"
    })?;
    let Some((_, stored)) = signed_in else {
        return Err("signed_out");
    };
    let start = state.oidc.start_silent(stored.session.tokens.id_token.as_str());
    let pending = PendingLogin {
        state: start.state,
        nonce: start.nonce,
        pkce_verifier: start.pkce_verifier,
        return_to: ReturnTo::home(),
        created_at: unix_now(),
        silent: true,
    };
    record::push_pending(session, &state.tokens, pending).await.map_err(|_| "transient")?;
    Ok(Redirect::to(start.url.as_str()))
}

/// `GET /auth/silent-callback`: the provider's answer, finished here. A query that does not parse
/// (a parameter twice, say) is an outcome too: axum's own 400 would post nothing to the parent,
/// which would wait for its timeout.
pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            tracing::warn!(error = %rejection.body_text(), "silent callback with a malformed query");
            return outcome_page("malformed_callback");
        }
    };
    let outcome = match finish(&state, &session, query).await {
        Ok(sub) => {
            tracing::info!(%sub, "session renewed through the iframe");
            "renewed"
        }
        Err("login_required") => {
            signed_out_at_the_provider(&state, &session).await;
            "login_required"
        }
        Err(outcome) => {
            note_failure(&state, &session, outcome).await;
            outcome
        }
    };
    outcome_page(outcome)
}

/// `login_required` to a `prompt=none` request that named this session's ID token: the provider
/// has no session for this user any more (they signed out there, or it expired). Session
/// Management 1.0 §5 asks the relying party to handle that as a logout, and so it is, as for a
/// back-channel logout: the session ends with its tokens (a reload must not sign the user back in
/// with its refresh token), and every tab is told. Nothing is revoked at the provider: at some
/// providers revoking one refresh token revokes the user's others for this client, on every
/// device (Keycloak), and a `login_required` can be a browser that keeps the provider's cookie
/// from the frame. The other refusals (`consent_required`, `interaction_required`) mean the
/// provider session is there but wants the user: the session is kept for their sign-in.
async fn signed_out_at_the_provider(state: &AppState, session: &Session) {
    let found = match record::authenticated(session, &state.tokens).await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "silent renew: login_required, but the session could not be read to end it");
            return;
        }
    };
    let Some((key, stored)) = found else { return };
    if let Err(error) = record::sign_out(session, &state.tokens).await {
        tracing::warn!(%error, "silent renew: login_required, but the session could not be ended");
        return;
    }
    state.events.ended(&key).await;
    tracing::info!(sub = %stored.session.subject, "the provider has no session for this user (login_required): signed out here too");
}

/// A silent renew the provider refused (but for `login_required`, which ends the session), or
/// that failed on the way, goes into the session's journal (the other outcomes are no renewal of
/// this session: a forged state, signed out).
async fn note_failure(state: &AppState, session: &Session, outcome: &'static str) {
    let journal_outcome = match outcome {
        "login_required" | "consent_required" | "interaction_required" | "account_selection_required" => {
            JournalOutcome::Refused
        }
        "provider_error" | "transient" => JournalOutcome::Transient,
        _ => return,
    };
    if let Ok(Some(key)) = record::session_key(session).await {
        state.tokens.note(&key, iframe_entry(journal_outcome, outcome)).await;
    }
}

fn iframe_entry(outcome: JournalOutcome, detail: &str) -> JournalEntry {
    JournalEntry { at_ms: now_ms(), step: JournalStep::Iframe, outcome, took_ms: None, detail: detail.to_owned() }
}

async fn finish(state: &AppState, session: &Session, query: CallbackQuery) -> Result<String, &'static str> {
    let now = unix_now();
    let client_state = query.state.ok_or("unknown_state")?;
    let pending = record::take_pending(session, &state.tokens, &client_state, now)
        .await
        .map_err(|_| "transient")?
        .filter(|pending| pending.silent)
        .ok_or_else(|| {
            tracing::warn!("silent callback with a state this browser did not start");
            "unknown_state"
        })?;
    if !state.oidc.response_issuer_is_ours(query.iss.as_deref()) {
        tracing::warn!("silent callback names another issuer, or none though the provider always names itself");
        return Err("issuer_mismatch");
    }
    if let Some(error) = query.error {
        tracing::info!(%error, "the provider refused silent renew");
        return Err(match error.as_str() {
            "login_required" => "login_required",
            "consent_required" => "consent_required",
            "interaction_required" => "interaction_required",
            "account_selection_required" => "account_selection_required",
            _ => "provider_error",
        });
    }
    let code = query.code.clone().ok_or("missing_code")?;
    let (key, current) = match record::authenticated(session, &state.tokens).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err("signed_out"),
        Err(_) => return Err("transient"),
    };
    let renewed = state
        .oidc
        .exchange_code(code, pending.pkce_verifier, pending.nonce, RedirectTarget::Silent, now)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "silent renew: the code exchange failed");
            "provider_error"
        })?;
    if renewed.subject != current.session.subject {
        // The provider now has another user in this browser: this session must not continue as
        // either of them.
        // Every tab is told, as at any other end of a session.
        tracing::warn!(sub = %current.session.subject, other = %renewed.subject, "silent renew answered for another subject; the session ends");
        if record::sign_out(session, &state.tokens).await.is_ok() {
            state.events.ended(&key).await;
        }
        return Err("subject_changed");
    }
    // Written over the record as it is when the exchange is done, which a refresh or a journal
    // line may have changed meanwhile: its refresh token (perhaps rotated meanwhile) and journal
    // are kept unless the provider started a new family.
    let new_family = renewed.tokens.refresh_token.is_some();
    let silently_renewed = |stored: &AuthenticatedSession| {
        let mut journal = stored.journal.clone();
        if new_family {
            journal.rotations = 0;
            journal.refresh_expires_at = renewed.journal.refresh_expires_at;
        }
        journal.record(iframe_entry(JournalOutcome::Ok, ""));
        Some(AuthenticatedSession {
            // A refresh token comes only if the provider granted offline access again; a session
            // that had none keeps having none.
            tokens: TokenSet {
                refresh_token: renewed.tokens.refresh_token.clone().or_else(|| stored.tokens.refresh_token.clone()),
                ..renewed.tokens.clone()
            },
            userinfo_claims: stored.userinfo_claims.clone(),
            session_state: query.session_state.clone().or_else(|| stored.session_state.clone()),
            journal,
            // A refresh token kept from before brings ID tokens with its own sign-in's nonce
            // (oidc-provider and Keycloak put it there, OIDC Core §12.2).
            nonce: if new_family { renewed.nonce.clone() } else { stored.nonce.clone() },
            auth_time: if new_family { renewed.auth_time } else { stored.auth_time },
            ..renewed.clone()
        })
    };
    let subject = renewed.subject.clone();
    match state.tokens.update(&key, current, silently_renewed).await {
        Ok(true) => Ok(subject),
        Ok(false) => Err("signed_out"),
        Err(_) => Err("transient"),
    }
}

/// The tiny page: the outcome in a `<meta>`, the static script that posts it.
fn outcome_page(outcome: &'static str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"silent-renew-outcome\" content=\"{outcome}\"><title>Session renewal</title>\
         <script>{SCRIPT}</script></head><body></body></html>"
    );
    let csp = format!("default-src 'none'; script-src {}; frame-ancestors 'self'; base-uri 'none'", *SCRIPT_HASH);
    let mut response = framable(Html(html).into_response());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).expect("ASCII"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The callback URL holds the code: it must not leave in a Referer.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// These two routes are loaded in the app's own hidden iframe: framing by this origin is allowed
/// (every other response of the app denies all framing).
fn framable(mut response: Response) -> Response {
    response.headers_mut().insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    response
}

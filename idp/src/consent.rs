//! The consent page (OIDC Core §3.1.2.4): `POST /consent`.
//!
//! A client registered with `require_consent` gets its users asked, after sign-in, whether it
//! may have what it requested: Allow or Deny. Allow is remembered in the provider session (and
//! its state file row), per client, so the next request of that client in that session gets its
//! code straight away, `prompt=none` included; until then `prompt=none` answers
//! `consent_required` (§3.1.2.6). Deny answers `access_denied` (RFC 6749 §4.1.2.1) and records
//! nothing. `prompt=consent` shows the page to any client's user, every time.

use std::sync::Arc;

use axum::{
    extract::State,
    response::{IntoResponse, Response},
    Form,
};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::{
    authorize::{issue_code, redirect_error},
    error::AuthorizePageError,
    html::{self, escape, FrameAncestors},
    login,
    store::{AuthorizationRequest, ProviderSession, Step},
    ProviderState,
};

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    interaction: String,
    /// `allow`; anything else denies.
    #[serde(default)]
    action: String,
}

/// What the user is told each scope gives the client.
fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "know who you are when you sign in",
        "profile" => "see your name and username",
        "email" => "see your email address",
        "offline_access" => "keep access while you are away (offline access)",
        _ => "",
    }
}

/// Parks `request` until the user of `session` answers, and asks them.
pub(crate) fn show(
    state: &ProviderState,
    jar: CookieJar,
    request: AuthorizationRequest,
    session: &ProviderSession,
    now: u64,
    framing: &FrameAncestors,
) -> Response {
    let (jar, browser) = login::browser(state, jar);
    let form_target = login::origin_of(&request.redirect_uri);
    let client = escape(&request.client_id);
    let user = state.config.user_by_sub(&session.sub);
    let name = user.map(|user| escape(&user.name)).unwrap_or_default();
    let scopes: String = request
        .scopes
        .iter()
        .map(|scope| describe(scope))
        .filter(|description| !description.is_empty())
        .map(|description| format!("<li>{}</li>", escape(description)))
        .collect();
    let interaction = state.store.start_interaction(request, browser, Step::Consent(session.sid.clone()), now);
    let body = format!(
        r#"<h1>Allow access?</h1>
<p><strong>{client}</strong> asks to use your account, {name}. It will be able to:</p>
<ul>{scopes}</ul>
<form method="post" action="/consent">
<input type="hidden" name="interaction" value="{interaction}">
<button type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>"#,
        interaction = escape(&interaction),
    );
    (jar, html::page("Allow access", &body, Some(&form_target), framing)).into_response()
}

/// `POST /consent`: Allow records the consent (on disk before the answer) and issues the code;
/// Deny sends `access_denied` back to the client.
pub async fn submit(
    State(state): State<Arc<ProviderState>>,
    jar: CookieJar,
    Form(form): Form<ConsentForm>,
) -> Response {
    let now = state.now();
    let resumed = match login::resume(&state, &jar, &form.interaction, Step::Consent, now) {
        Ok(resumed) => resumed,
        Err(error) => return error.into_response(),
    };
    state.store.finish_interaction(&form.interaction);
    let request = resumed.request;
    if form.action != "allow" {
        tracing::info!(client_id = %request.client_id, "user denied consent");
        return redirect_error(&state, &request, "access_denied", "the user denied access").into_response();
    }
    let Some(saving) = state.store.grant_consent(&resumed.session_key, &request.client_id, now) else {
        return AuthorizePageError::SessionEnded.into_response();
    };
    if let Err(error) = saving.saved().await {
        return AuthorizePageError::from(error).into_response();
    }
    tracing::info!(client_id = %request.client_id, sub = %resumed.session.sub, "user allowed the client");
    issue_code(&state, jar, request, &resumed.session, now)
}

//! Updated terms a user must accept before any client gets a code: `POST /terms`.
//!
//! This is the provider's stand-in for every interaction OIDC Core §3.1.2.6 means by
//! `interaction_required`: the user is signed in, but the provider needs them at the screen
//! before it can answer. A user configured with `interaction_required` sees the page after the
//! password (or at the next request, if the session is older); one button accepts, and the
//! acceptance is remembered in the provider session (and its state file row). Until then a
//! `prompt=none` request answers `interaction_required`.

use std::sync::Arc;

use axum::{
    extract::State,
    response::{IntoResponse, Response},
    Form,
};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::{
    authorize::proceed,
    error::AuthorizePageError,
    html::{self, escape, FrameAncestors},
    login,
    store::{AuthorizationRequest, ProviderSession, Step},
    ProviderState,
};

#[derive(Debug, Deserialize)]
pub struct TermsForm {
    interaction: String,
}

/// Parks `request` until the user of `session` accepts the terms, and shows them.
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
    let name = state.config.user_by_sub(&session.sub).map(|user| escape(&user.name)).unwrap_or_default();
    let interaction = state.store.start_interaction(request, browser, Step::Terms(session.sid.clone()), now);
    let body = format!(
        r#"<h1>Updated terms</h1>
<p>{name}, the terms of use of this provider have changed since you last accepted them. Accept them to continue to <strong>{client}</strong>.</p>
<form method="post" action="/terms">
<input type="hidden" name="interaction" value="{interaction}">
<button type="submit">Accept and continue</button>
</form>"#,
        interaction = escape(&interaction),
    );
    (jar, html::page("Updated terms", &body, Some(&form_target), framing)).into_response()
}

/// `POST /terms`: records the acceptance in the provider session (on disk before the answer),
/// then continues the request: the consent page if it needs one, else its code.
pub async fn submit(State(state): State<Arc<ProviderState>>, jar: CookieJar, Form(form): Form<TermsForm>) -> Response {
    let now = state.now();
    let resumed = match login::resume(&state, &jar, &form.interaction, Step::Terms, now) {
        Ok(resumed) => resumed,
        Err(error) => return error.into_response(),
    };
    state.store.finish_interaction(&form.interaction);
    let Some(saving) = state.store.accept_terms(&resumed.session_key, now) else {
        return AuthorizePageError::SessionEnded.into_response();
    };
    if let Err(error) = saving.saved().await {
        return AuthorizePageError::from(error).into_response();
    }
    tracing::info!(sub = %resumed.session.sub, "user accepted the updated terms");
    let session = ProviderSession { terms_accepted: true, ..resumed.session };
    proceed(&state, jar, resumed.request, &session, now, &FrameAncestors::NONE)
}

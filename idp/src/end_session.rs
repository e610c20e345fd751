//! RP-Initiated Logout 1.0: the end-session endpoint, `GET` and `POST /end-session` (§2, query or
//! form serialization), with `id_token_hint`, `client_id`, `post_logout_redirect_uri` and
//! `state`; `logout_hint` and `ui_locales` are accepted and ignored.
//!
//! Validation first (§2, §4); a failure is a 400 page, and nothing is ended or redirected:
//! - `id_token_hint` must be an ID token this provider signed (expired is fine, §2), checked as
//!   `/authorize` checks a hint;
//! - the client is the one `client_id` names or, without it, the hint's `aud`; with both, they
//!   must agree (§2);
//! - `post_logout_redirect_uri` must equal one of that client's `post_logout_redirect_uris`
//!   exactly (§3). One that does not, or that comes without a client, is not an error: the user
//!   is signed out all the same and sees the "You are signed out" page instead of a redirect.
//!
//! Then the provider session of this browser:
//! - none (signed out already, or never signed in): nothing to end; that is no error, since
//!   logout requests are idempotent (§4). The cookies are cleared, and the answer is as below.
//! - a hint for this very session (its `sub` and `sid`): the session ends at once.
//! - no hint, or a hint from another session of the same user, or of another user: the user is
//!   asked first (§2: the provider MUST ask in these cases), on a page whose form posts the
//!   request back with a confirmation bound to the session (`confirm`, a hash of the
//!   session cookie, which no other page can read); a hint for another user is logged, and the
//!   page says that the request was for another account. Nothing ends unless the user says so.
//!
//! Ending: the session leaves the store and the state file, its cookie and the browser state
//! cookie are deleted (the OP iframe answers `changed` from then on), and every client that
//! received tokens in it is sent a logout token ([`crate::backchannel`]). The answer waits for
//! the first attempt of each, at most [`NOTIFY_WAIT`] (§3: redirection comes after the
//! notifications), then redirects (303) to the validated `post_logout_redirect_uri` with
//! `state`, or shows "You are signed out". Another user's sign-in at the same browser ends the
//! session the same way ([`end`], from [`crate::login`]).
//!
//! A cross-site POST carries no `SameSite=Lax` cookie. A POST without the session cookie is
//! therefore sent on as the same request by GET (303): a top-level navigation, which the browser
//! sends the cookie with, so a relying party on another site that posts its logout request ends
//! the session instead of being told "signed out" by a provider that found none. The hint then
//! travels in the URL, as with any GET logout request.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
    Form,
};
use axum_extra::extract::CookieJar;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    authorize::{verify_id_token_hint, IdTokenHint},
    backchannel::{self, Ending},
    config::ClientConfig,
    error::{redirect_with, EndSessionError, NotSaved},
    html::{self, escape, FrameAncestors},
    login,
    store::ProviderSession,
    ProviderState,
};

/// The longest an `/end-session` answer waits for the first attempts of its logout tokens.
pub const NOTIFY_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Deserialize)]
pub struct EndSessionParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    /// From the confirmation page's form only: the user said "Sign out".
    confirm: Option<String>,
}

/// A logout request that passed validation.
struct LogoutRequest<'a> {
    hint: Option<IdTokenHint>,
    client: Option<&'a ClientConfig>,
    redirect: PostLogoutRedirect,
    state: Option<String>,
    confirm: Option<String>,
}

/// Where the browser goes once signed out.
enum PostLogoutRedirect {
    /// None was asked for.
    None,
    /// A registered `post_logout_redirect_uri` of the client.
    To(String),
    /// One was asked for, but it may not be used (§3), for this reason (shown to the user).
    Refused(String, &'static str),
}

/// `GET /end-session`.
pub async fn end_session(
    State(state): State<Arc<ProviderState>>,
    jar: CookieJar,
    Query(mut params): Query<EndSessionParams>,
) -> Response {
    // A confirmation only counts from the page's form (a POST).
    params.confirm = None;
    answer(&state, jar, params).await
}

/// `POST /end-session`, form-encoded: RP-Initiated Logout 1.0 §2 requires both methods.
pub async fn end_session_form(
    State(state): State<Arc<ProviderState>>,
    jar: CookieJar,
    Form(params): Form<EndSessionParams>,
) -> Response {
    if login::session_key(&state, &jar).is_none() {
        // Perhaps cross-site, the cookie withheld (see the module's docs): asked again by GET.
        let pairs = [
            ("id_token_hint", &params.id_token_hint),
            ("client_id", &params.client_id),
            ("post_logout_redirect_uri", &params.post_logout_redirect_uri),
            ("state", &params.state),
        ];
        let pairs: Vec<(&str, &str)> =
            pairs.iter().filter_map(|(name, value)| Some((*name, value.as_deref()?))).collect();
        return redirect_with(&state.config.endpoint("/end-session"), &pairs);
    }
    answer(&state, jar, params).await
}

async fn answer(state: &ProviderState, jar: CookieJar, params: EndSessionParams) -> Response {
    let request = match validate(state, params) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let now = state.now();
    let client_id = request.client.map(|c| c.client_id.as_str()).unwrap_or_default();
    let (Some(key), Some(session)) =
        (login::session_key(state, &jar).map(str::to_owned), login::current_session(state, &jar, now))
    else {
        tracing::info!(client_id, "sign-out requested without a provider session: nothing to end");
        return finish(login::signed_out(state, jar), &request);
    };

    let confirmed = request
        .confirm
        .as_deref()
        .is_some_and(|confirm| bool::from(confirm.as_bytes().ct_eq(confirmation(&key).as_bytes())));
    let question = match &request.hint {
        _ if confirmed => None,
        Some(hint) if hint.sub == session.sub && hint.sid.as_deref() == Some(session.sid.as_str()) => None,
        Some(hint) if hint.sub != session.sub => {
            tracing::warn!(client_id, sid = %session.sid, "sign-out requested for another user than the session's: the session is kept unless the user confirms");
            Some(Question::OtherUser)
        }
        Some(_) => Some(Question::OtherSession),
        None => Some(Question::NoHint),
    };
    if let Some(question) = question {
        return ask(state, jar, &request, &session, &key, question);
    }

    match end(state, &key, now, Ending::SignOut).await {
        Ok(Some(ended)) => {
            tracing::info!(client_id, sid = %ended.sid, sub = %ended.sub, "user signed out at the provider")
        }
        // Ended by someone else a moment ago: as signed out as can be.
        Ok(None) => {}
        Err(error) => return EndSessionError::from(error).into_response(),
    }
    finish(login::signed_out(state, jar), &request)
}

/// Ends the provider session whose cookie value is `key`: it leaves the store, the answer waits
/// until that is saved, then its clients are sent their logout tokens and the answer waits for
/// their first attempts, at most [`NOTIFY_WAIT`]. The ended session, or `None` if it had ended
/// already. What a sign-out does, and another user's sign-in at the same browser
/// ([`crate::login`]); the caller deletes or replaces the cookies.
pub(crate) async fn end(
    state: &ProviderState,
    key: &str,
    now: u64,
    ending: Ending,
) -> Result<Option<ProviderSession>, NotSaved> {
    let Some((ended, saving)) = state.store.end_session(key, now) else {
        return Ok(None);
    };
    saving.saved().await?;
    backchannel::notify(state, &ended, ending).wait(NOTIFY_WAIT).await;
    Ok(Some(ended))
}

fn validate(state: &ProviderState, params: EndSessionParams) -> Result<LogoutRequest<'_>, EndSessionError> {
    let given = |value: Option<String>| value.filter(|v| !v.is_empty());
    let hint = match given(params.id_token_hint) {
        None => None,
        Some(hint) => Some(verify_id_token_hint(state, &hint).ok_or(EndSessionError::InvalidHint)?),
    };
    let client = match (given(params.client_id), &hint) {
        (Some(id), hint) => {
            let client = state.config.client(&id).ok_or(EndSessionError::UnknownClient)?;
            if hint.as_ref().is_some_and(|hint| !hint.aud.contains(&id)) {
                return Err(EndSessionError::ClientMismatch);
            }
            Some(client)
        }
        (None, Some(hint)) => {
            // This provider's ID tokens have one audience; one with several names no client.
            let [aud] = hint.aud.as_slice() else {
                return Err(EndSessionError::InvalidHint);
            };
            Some(state.config.client(aud).ok_or(EndSessionError::UnknownClient)?)
        }
        (None, None) => None,
    };
    let redirect = match (given(params.post_logout_redirect_uri), client) {
        (None, _) => PostLogoutRedirect::None,
        // Exact string comparison, as for redirect URIs (§3).
        (Some(uri), Some(client)) if client.post_logout_redirect_uris.contains(&uri) => PostLogoutRedirect::To(uri),
        (Some(uri), Some(_)) => PostLogoutRedirect::Refused(uri, "it is not registered for the application"),
        (Some(uri), None) => PostLogoutRedirect::Refused(uri, "the request did not say which application sent it"),
    };
    if let PostLogoutRedirect::Refused(uri, why) = &redirect {
        tracing::warn!(client_id = client.map(|c| c.client_id.as_str()), %uri, why, "post_logout_redirect_uri refused: no redirect after sign-out");
    }
    Ok(LogoutRequest { hint, client, redirect, state: given(params.state), confirm: given(params.confirm) })
}

/// The confirmation of the session whose cookie value is `key`: only the provider knows it (the
/// cookie is HttpOnly), and it is worth nothing for another session.
fn confirmation(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("end-session {key}").as_bytes()))
}

/// Why the user is asked before the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Question {
    NoHint,
    OtherSession,
    OtherUser,
}

/// The page asking the user of `session` whether to sign out; its form posts the request back
/// with the confirmation.
fn ask(
    state: &ProviderState,
    jar: CookieJar,
    request: &LogoutRequest<'_>,
    session: &ProviderSession,
    key: &str,
    question: Question,
) -> Response {
    let client = request.client.map(|c| escape(&c.client_id));
    let asker = client.as_deref().map_or("An application".to_owned(), |c| format!("<strong>{c}</strong>"));
    let name = state.config.user_by_sub(&session.sub).map(|user| escape(&user.name)).unwrap_or_default();
    let situation = match question {
        Question::OtherUser => format!(
            "<p>{asker} asked to sign out another account than the one signed in here. You are still signed in as {name}.</p>"
        ),
        Question::OtherSession | Question::NoHint => {
            format!("<p>{asker} asks to sign you out of the provider. You are signed in as {name}.</p>")
        }
    };
    let button = if question == Question::OtherUser { "Sign out anyway" } else { "Sign out" };
    let mut fields = vec![("confirm", confirmation(key))];
    if let Some(client) = request.client {
        fields.push(("client_id", client.client_id.clone()));
    }
    match &request.redirect {
        PostLogoutRedirect::To(uri) | PostLogoutRedirect::Refused(uri, _) => {
            fields.push(("post_logout_redirect_uri", uri.clone()))
        }
        PostLogoutRedirect::None => {}
    }
    if let Some(client_state) = &request.state {
        fields.push(("state", client_state.clone()));
    }
    let hidden: String = fields
        .iter()
        .map(|(name, value)| format!(r#"<input type="hidden" name="{name}" value="{}">"#, escape(value)))
        .collect();
    let body = format!(
        r#"<h1>Sign out?</h1>
{situation}
<form method="post" action="/end-session">
{hidden}
<button type="submit">{button}</button>
</form>"#
    );
    let form_target = match &request.redirect {
        PostLogoutRedirect::To(uri) => login::origin_of(uri),
        _ => String::new(),
    };
    (jar, html::page("Sign out", &body, Some(&form_target), &FrameAncestors::NONE)).into_response()
}

/// The answer once the browser is signed out: the redirect back to the client, with `state`, or
/// the "You are signed out" page.
fn finish(jar: CookieJar, request: &LogoutRequest<'_>) -> Response {
    let note = match &request.redirect {
        PostLogoutRedirect::To(uri) => {
            let pairs: Vec<(&str, &str)> = request.state.iter().map(|s| ("state", s.as_str())).collect();
            return (jar, redirect_with(uri, &pairs)).into_response();
        }
        PostLogoutRedirect::Refused(_, why) => {
            format!("<p class=\"hint\">You were not sent back to the application: {why}.</p>")
        }
        PostLogoutRedirect::None => String::new(),
    };
    let body = format!("<h1>You are signed out</h1><p>You are no longer signed in at the provider.</p>{note}");
    (jar, html::page("Signed out", &body, None, &FrameAncestors::NONE)).into_response()
}

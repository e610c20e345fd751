//! The sign-in form and the provider session.
//!
//! Two cookies, both HttpOnly and `SameSite=Lax`: `idp_browser` names the browser, and binds each
//! pending sign-in to the browser that opened it, so that a cross-site form post cannot sign a
//! victim in as someone else (login CSRF); `idp_session` is the provider session, set only after
//! a password was checked and always to a fresh value (no session fixation). A third, readable
//! by script, carries the session's browser state for Session Management
//! ([`crate::check_session`]).
//!
//! A password entered while the browser has a provider session already (`prompt=login`, a
//! `max_age` the session is too old for, an `id_token_hint` of another user):
//! - the same user: a re-authentication. The session goes on, with its `sid`, the clients that
//!   received tokens in it, its consents, accepted terms and expiry; its `auth_time` becomes now,
//!   and it gets a new browser state, since a sign-in is a login event (Session Management 1.0
//!   §3.2): relying parties' OP iframes answer `changed`, and a `prompt=none` re-check finds the
//!   same `sub` and `sid`. The cookie gets a fresh value all the same, and the old one no longer
//!   names the session.
//! - another user: the session ends exactly as at `/end-session` ([`crate::end_session::end`]:
//!   saved, then a logout token to each of its clients, Back-Channel Logout 1.0 §2.3), then the
//!   new user's session starts. A session is never left running without its cookie, where
//!   nothing could end it and its clients would never be told.
//!
//! `SameSite=Lax` is enough for silent renew in an iframe here: a browser sends Lax cookies with
//! a framed request when the top-level page and every frame above it are of the same site (a
//! site is the scheme and the registrable domain; ports do not count), and the demo app and this
//! provider are the same site, `http://localhost` on ports 3000 and 4000. A provider on another
//! site than its relying parties would need `SameSite=None; Secure` for its iframe to see the
//! session, and would then meet browsers that block third-party cookies, where `prompt=none` in
//! an iframe answers `login_required` every time.
//!
//! After the password come the pages a signed-in request may still need ([`crate::terms`],
//! [`crate::consent`]); they park the request the same way, bound to the browser and to the
//! provider session it was signed in with.

use std::sync::Arc;

use axum::{
    extract::State,
    response::{IntoResponse, Response},
    Form,
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use url::Url;

use crate::{
    authorize::{proceed, redirect_error},
    backchannel::Ending,
    check_session,
    config::UserConfig,
    end_session,
    error::AuthorizePageError,
    html::{self, escape, FrameAncestors},
    store::{random_token, AuthorizationRequest, ProviderSession, Step},
    ProviderState,
};

const BROWSER_COOKIE: &str = "idp_browser";
const SESSION_COOKIE: &str = "idp_session";

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    interaction: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// `cancel` when the user declines; anything else signs in.
    #[serde(default)]
    action: String,
}

pub(crate) fn current_session(state: &ProviderState, jar: &CookieJar, now: u64) -> Option<ProviderSession> {
    state.store.session(session_key(state, jar)?, now)
}

/// The provider session cookie's value: the key of the session in the store.
pub(crate) fn session_key<'a>(state: &ProviderState, jar: &'a CookieJar) -> Option<&'a str> {
    jar.get(&state.cookie_name(SESSION_COOKIE)).map(|cookie| cookie.value())
}

/// This browser's id, from its cookie, or a new one with the cookie that sets it.
pub(crate) fn browser(state: &ProviderState, jar: CookieJar) -> (CookieJar, String) {
    match jar.get(&state.cookie_name(BROWSER_COOKIE)) {
        Some(cookie) => {
            let value = cookie.value().to_owned();
            (jar, value)
        }
        None => {
            let value = random_token();
            (jar.add(cookie(state, BROWSER_COOKIE, value.clone(), None)), value)
        }
    }
}

/// Parks `request` as an interaction bound to this browser and shows the form, with `username`
/// filled in (the user an `id_token_hint` named, if any).
pub(crate) fn show_form(
    state: &ProviderState,
    jar: CookieJar,
    request: AuthorizationRequest,
    username: &str,
    now: u64,
    framing: &FrameAncestors,
) -> Response {
    let (jar, browser) = browser(state, jar);
    let form_target = origin_of(&request.redirect_uri);
    let client_id = request.client_id.clone();
    let interaction = state.store.start_interaction(request, browser, Step::SignIn, now);
    let form = SignInForm { interaction: &interaction, client_id: &client_id, username, error: None };
    (jar, render_form(state, &form, &form_target, framing)).into_response()
}

/// A request parked at a page after sign-in, answered from the browser and the provider
/// session it was parked for.
pub(crate) struct Resumed {
    pub request: AuthorizationRequest,
    pub session: ProviderSession,
    /// The session cookie's value, to record the answer in the session.
    pub session_key: String,
}

/// Takes up the interaction `id` of this browser, parked at the page `step` makes for the
/// provider session the browser is signed in with now. A page of another kind, or of another
/// browser, is an unknown interaction; a session that ended, or was replaced by another user's
/// sign-in meanwhile, is refused too (its own user signing in again keeps it, and its `sid`), so
/// that an answer is never recorded for another session than the one it was asked in.
pub(crate) fn resume(
    state: &ProviderState,
    jar: &CookieJar,
    id: &str,
    step: fn(String) -> Step,
    now: u64,
) -> Result<Resumed, AuthorizePageError> {
    let browser = jar.get(&state.cookie_name(BROWSER_COOKIE)).map(|c| c.value()).unwrap_or_default();
    let interaction = state.store.interaction(id, browser, now).ok_or(AuthorizePageError::UnknownInteraction)?;
    if std::mem::discriminant(&interaction.step) != std::mem::discriminant(&step(String::new())) {
        return Err(AuthorizePageError::UnknownInteraction);
    }
    let session_key = session_key(state, jar).ok_or(AuthorizePageError::SessionEnded)?.to_owned();
    let session = state.store.session(&session_key, now).ok_or(AuthorizePageError::SessionEnded)?;
    if interaction.step != step(session.sid.clone()) {
        return Err(AuthorizePageError::SessionEnded);
    }
    Ok(Resumed { request: interaction.request, session, session_key })
}

pub async fn submit(State(state): State<Arc<ProviderState>>, jar: CookieJar, Form(form): Form<LoginForm>) -> Response {
    let now = state.now();
    let browser = jar.get(&state.cookie_name(BROWSER_COOKIE)).map(|c| c.value().to_owned()).unwrap_or_default();
    let Some(interaction) =
        state.store.interaction(&form.interaction, &browser, now).filter(|i| i.step == Step::SignIn)
    else {
        return AuthorizePageError::UnknownInteraction.into_response();
    };
    let request = interaction.request;

    if form.action == "cancel" {
        state.store.finish_interaction(&form.interaction);
        return redirect_error(&state, &request, "access_denied", "the user cancelled the sign-in").into_response();
    }
    let Some(user) = check_password(&state.config.users, &form.username, &form.password) else {
        tracing::warn!(client_id = %request.client_id, "sign-in refused: wrong username or password");
        let form_target = origin_of(&request.redirect_uri);
        let again = SignInForm {
            interaction: &form.interaction,
            client_id: &request.client_id,
            username: &form.username,
            error: Some("Wrong username or password."),
        };
        return render_form(&state, &again, &form_target, &FrameAncestors::NONE);
    };

    state.store.finish_interaction(&form.interaction);
    let key = session_key(&state, &jar).map(str::to_owned);
    let current = key.as_deref().and_then(|key| state.store.session(key, now));
    let renewed = match (key, current) {
        // The same user again (`prompt=login`, `max_age`): a re-authentication of the session.
        (Some(key), Some(current)) if current.sub == user.sub => {
            let renewed = state.store.reauthenticate(&key, now);
            if let Some((_, session, _)) = &renewed {
                let (sub, sid, client_id) = (&user.sub, &session.sid, &request.client_id);
                tracing::info!(%sub, %sid, %client_id, "user signed in again at the provider: the same session");
            }
            renewed
        }
        // Another user: the session ends as at `/end-session`, its clients are told.
        (Some(key), Some(current)) => {
            let (sub, sid, client_id) = (&current.sub, &current.sid, &request.client_id);
            tracing::info!(%sub, %sid, %client_id, "another user signs in at this browser: the provider session ends");
            if let Err(error) = end_session::end(&state, &key, now, Ending::AnotherUser).await {
                return AuthorizePageError::from(error).into_response();
            }
            None
        }
        _ => None,
    };
    // Otherwise (or if the session ended meanwhile) a new session.
    let (key, session, saving) = renewed.unwrap_or_else(|| {
        let session = ProviderSession {
            sid: random_token(),
            sub: user.sub.clone(),
            auth_time: now,
            expires_at: now + state.config.lifetimes.provider_session_secs,
            consents: Vec::new(),
            terms_accepted: false,
            browser_state: random_token(),
            clients: Vec::new(),
        };
        tracing::info!(sub = %user.sub, client_id = %request.client_id, "user signed in at the provider");
        let (key, saving) = state.store.start_session(session.clone());
        (key, session, saving)
    });
    // The cookie names the session only once a restart would find it.
    if let Err(error) = saving.saved().await {
        return AuthorizePageError::from(error).into_response();
    }
    let max_age = time_duration(session.expires_at.saturating_sub(now));
    let jar = jar
        .add(cookie(&state, SESSION_COOKIE, key, Some(max_age)))
        .add(check_session::browser_state_cookie(&state, Some(&session)));
    // Signed in, but not as the user the client's `id_token_hint` names: no code for them
    // (OIDC Core §3.1.2.1).
    if request.hinted_sub.as_ref().is_some_and(|hinted| *hinted != user.sub) {
        tracing::warn!(client_id = %request.client_id, "the user who signed in is not the one id_token_hint names");
        let refused =
            redirect_error(&state, &request, "login_required", "another user than id_token_hint names signed in");
        return (jar, refused).into_response();
    }
    // The terms or consent page, if the request needs one, as a page of a form post: not framed.
    proceed(&state, jar, request, &session, now, &FrameAncestors::NONE)
}

/// Compares every user's password in constant time, so that timing says nothing about which
/// part was wrong.
fn check_password<'a>(users: &'a [UserConfig], username: &str, password: &str) -> Option<&'a UserConfig> {
    let user = users.iter().find(|u| u.username == username)?;
    bool::from(user.password.as_bytes().ct_eq(password.as_bytes())).then_some(user)
}

/// `jar` without the provider session: its cookie and the browser state cookie deleted.
pub(crate) fn signed_out(state: &ProviderState, jar: CookieJar) -> CookieJar {
    jar.add(cookie(state, SESSION_COOKIE, String::new(), Some(time::Duration::ZERO)))
        .add(check_session::browser_state_cookie(state, None))
}

fn cookie(state: &ProviderState, name: &str, value: String, max_age: Option<time::Duration>) -> Cookie<'static> {
    let mut builder = Cookie::build((state.cookie_name(name), value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies());
    if let Some(max_age) = max_age {
        builder = builder.max_age(max_age);
    }
    builder.build()
}

fn time_duration(secs: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// The origin a page's form ends up at, through the redirect after its post.
pub(crate) fn origin_of(uri: &str) -> String {
    Url::parse(uri).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

struct SignInForm<'a> {
    interaction: &'a str,
    client_id: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

fn render_form(state: &ProviderState, form: &SignInForm<'_>, form_target: &str, framing: &FrameAncestors) -> Response {
    let error = form.error.map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e))).unwrap_or_default();
    let demo_users: Vec<String> = state
        .config
        .users
        .iter()
        .map(|u| format!("<code>{}</code> / <code>{}</code>", escape(&u.username), escape(&u.password)))
        .collect();
    let body = format!(
        r#"<h1>Sign in</h1>
<p><strong>{client}</strong> asks you to sign in.</p>
{error}
<form method="post" action="/login">
<input type="hidden" name="interaction" value="{interaction}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="{username}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<button type="submit" name="action" value="sign_in">Sign in</button>
<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
</form>
<p class="hint">Development provider. Demo users: {users}</p>"#,
        client = escape(form.client_id),
        interaction = escape(form.interaction),
        username = escape(form.username),
        users = demo_users.join(", "),
    );
    html::page("Sign in", &body, Some(form_target), framing)
}

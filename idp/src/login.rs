//! The sign-in form and the provider session.
//!
//! Two cookies, both HttpOnly and `SameSite=Lax`: `idp_browser` names the browser, and binds each
//! pending sign-in to the browser that opened it, so that a cross-site form post cannot sign a
//! victim in as someone else (login CSRF); `idp_session` is the provider session, set only after
//! a password was checked and always to a fresh value (no session fixation).

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
    authorize::{issue_code, redirect_error},
    config::UserConfig,
    error::AuthorizePageError,
    html::{self, escape},
    store::{random_token, AuthorizationRequest, ProviderSession},
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
    let cookie = jar.get(&state.cookie_name(SESSION_COOKIE))?;
    state.store.session(cookie.value(), now)
}

/// Parks `request` as an interaction bound to this browser and shows the form.
pub(crate) fn show_form(state: &ProviderState, jar: CookieJar, request: AuthorizationRequest, now: u64) -> Response {
    let (jar, browser) = match jar.get(&state.cookie_name(BROWSER_COOKIE)) {
        Some(cookie) => {
            let value = cookie.value().to_owned();
            (jar, value)
        }
        None => {
            let value = random_token();
            (jar.add(cookie(state, BROWSER_COOKIE, value.clone(), None)), value)
        }
    };
    let form_target = origin_of(&request.redirect_uri);
    let client_id = request.client_id.clone();
    let interaction = state.store.start_interaction(request, browser, now);
    (jar, render_form(state, &interaction, &client_id, "", None, &form_target)).into_response()
}

pub async fn submit(State(state): State<Arc<ProviderState>>, jar: CookieJar, Form(form): Form<LoginForm>) -> Response {
    let now = state.now();
    let browser = jar.get(&state.cookie_name(BROWSER_COOKIE)).map(|c| c.value().to_owned()).unwrap_or_default();
    let Some(interaction) = state.store.interaction(&form.interaction, &browser, now) else {
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
        let error = Some("Wrong username or password.");
        return render_form(&state, &form.interaction, &request.client_id, &form.username, error, &form_target);
    };

    state.store.finish_interaction(&form.interaction);
    let session = ProviderSession {
        sid: random_token(),
        sub: user.sub.clone(),
        auth_time: now,
        expires_at: now + state.config.lifetimes.provider_session_secs,
    };
    tracing::info!(sub = %user.sub, client_id = %request.client_id, "user signed in at the provider");
    let (key, saving) = state.store.start_session(session.clone());
    // The cookie names the session only once a restart would find it.
    if let Err(error) = saving.saved().await {
        return AuthorizePageError::from(error).into_response();
    }
    let max_age = time_duration(state.config.lifetimes.provider_session_secs);
    let jar = jar.add(cookie(&state, SESSION_COOKIE, key, Some(max_age)));
    (jar, issue_code(&state, request, &session, now)).into_response()
}

/// Compares every user's password in constant time, so that timing says nothing about which
/// part was wrong.
fn check_password<'a>(users: &'a [UserConfig], username: &str, password: &str) -> Option<&'a UserConfig> {
    let user = users.iter().find(|u| u.username == username)?;
    bool::from(user.password.as_bytes().ct_eq(password.as_bytes())).then_some(user)
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

fn origin_of(uri: &str) -> String {
    Url::parse(uri).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

fn render_form(
    state: &ProviderState,
    interaction: &str,
    client_id: &str,
    username: &str,
    error: Option<&str>,
    form_target: &str,
) -> Response {
    let error = error.map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e))).unwrap_or_default();
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
        client = escape(client_id),
        interaction = escape(interaction),
        username = escape(username),
        users = demo_users.join(", "),
    );
    html::page("Sign in", &body, Some(form_target))
}

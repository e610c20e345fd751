//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2), code flow only.
//!
//! Checks come in the order RFC 6749 §4.1.2.1 requires: first the client and its redirect URI,
//! whose failure is shown as a page (a redirect would make this an open redirector); then
//! everything else, whose failure goes back to the now-trusted redirect URI.
//!
//! Then the user (OIDC Core §3.1.2.3, §3.1.2.4). The provider session is reused unless `prompt`
//! has `login`, `max_age` finds it too old, or an `id_token_hint` names another user (a session
//! never silently stands in for someone else). A signed-in user who must accept updated terms
//! sees them first ([`crate::terms`]); a client that requires consent, or a `prompt=consent`,
//! gets the consent page ([`crate::consent`]); then the code is issued. With `prompt=none`
//! nothing is ever shown: each page the request would need becomes its error at the redirect
//! URI (OIDC Core §3.1.2.6), `login_required`, `interaction_required` or `consent_required`.
//!
//! A code comes with `session_state` (Session Management 1.0 §2, see [`crate::check_session`]),
//! and the browser state cookie it was computed from; so do the errors that stand for a page
//! under `prompt=none`, computed from the cookie as it is (empty without a session).
//!
//! Every answer for a trusted client, its redirects and the pages it shows, may be framed by the
//! origins of that client's redirect URIs (`Content-Security-Policy: frame-ancestors`, see
//! [`FrameAncestors`]): that is how a relying party runs `prompt=none` in a hidden iframe
//! (silent renew). The redirect is what the browser checks for such a framed navigation. Every
//! other page of the provider refuses to be framed.

use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use axum::{
    extract::{Query, State},
    http::header,
    response::{IntoResponse, Response},
    Form,
};
use axum_extra::extract::CookieJar;
use jsonwebtoken::Validation;
use serde::Deserialize;

use crate::{
    check_session,
    claims::{OFFLINE_ACCESS, SUPPORTED_SCOPES},
    config::ClientConfig,
    consent,
    error::{redirect_with, AuthorizePageError, AuthorizeRedirectError},
    html::FrameAncestors,
    login,
    store::{AuthorizationCode, AuthorizationRequest, ProviderSession},
    terms, ProviderState,
};

#[derive(Debug, Default)]
pub struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    /// Seconds since the user last entered a password beyond which they must do so again.
    /// Taken as text and parsed in [`validate`], so that a malformed value is refused at the
    /// redirect URI like any other (not with the extractor's bare 400).
    max_age: Option<String>,
    /// An ID token this provider issued to the client: who the client believes is signed in.
    id_token_hint: Option<String>,
    /// A request object by value or by reference (OIDC Core §6.1, §6.2): not supported, and
    /// refused rather than ignored, since the parameters inside it would be.
    request: Option<String>,
    request_uri: Option<String>,
    /// The first of these parameters that came more than once: RFC 6749 §3.1 forbids it, and
    /// which of the values was meant cannot be known.
    repeated: Option<&'static str>,
}

impl AuthorizeParams {
    /// Each parameter's first value; unknown parameters are ignored (RFC 6749 §3.1).
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut params = Self::default();
        for (name, value) in pairs {
            let (name, slot) = match name.as_str() {
                "client_id" => ("client_id", &mut params.client_id),
                "redirect_uri" => ("redirect_uri", &mut params.redirect_uri),
                "response_type" => ("response_type", &mut params.response_type),
                "scope" => ("scope", &mut params.scope),
                "state" => ("state", &mut params.state),
                "nonce" => ("nonce", &mut params.nonce),
                "code_challenge" => ("code_challenge", &mut params.code_challenge),
                "code_challenge_method" => ("code_challenge_method", &mut params.code_challenge_method),
                "prompt" => ("prompt", &mut params.prompt),
                "max_age" => ("max_age", &mut params.max_age),
                "id_token_hint" => ("id_token_hint", &mut params.id_token_hint),
                "request" => ("request", &mut params.request),
                "request_uri" => ("request_uri", &mut params.request_uri),
                _ => continue,
            };
            if slot.is_some() {
                params.repeated.get_or_insert(name);
            } else {
                *slot = Some(value);
            }
        }
        params
    }
}

/// How the request wants the user treated (OIDC Core §3.1.2.1 `prompt`): a space-delimited set
/// of values; none of them is the default (reuse the session, else show the sign-in form).
///
/// `select_account` shows the sign-in form as `login` does (and is counted as `login`): a
/// browser holds one provider session here, so choosing an account is signing in as it, and
/// a user who picks another account ends the session of the first (see [`crate::login`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Prompt {
    /// Show nothing: answer from the session, or with an error.
    none: bool,
    /// Ask for the password, even with a session.
    login: bool,
    /// Show the consent page, even to a user who allowed this client before.
    consent: bool,
}

impl Prompt {
    fn parse(value: Option<&str>) -> Result<Self, &'static str> {
        let mut prompt = Self::default();
        for value in value.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt.none = true,
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                _ => {
                    return Err(
                        "unsupported prompt value; this provider supports none, login, consent and select_account",
                    )
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err("prompt=none cannot be combined with another value");
        }
        Ok(prompt)
    }

    /// Its name in the metrics (see [`crate::metrics::AUTHORIZE_PROMPTS`]).
    fn metric(self) -> &'static str {
        match (self.none, self.login, self.consent) {
            (true, _, _) => "none",
            (false, true, true) => "login consent",
            (false, true, false) => "login",
            (false, false, true) => "consent",
            (false, false, false) => "default",
        }
    }
}

/// An authorization request that passed every check, and what it asks of the user.
struct Validated {
    request: AuthorizationRequest,
    prompt: Prompt,
    max_age: Option<u64>,
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<Arc<ProviderState>>,
    jar: CookieJar,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    answer(&state, jar, AuthorizeParams::from_pairs(params)).await
}

/// `POST /authorize`, form-encoded: OIDC Core §3.1.2.1 requires both methods.
pub async fn authorize_form(
    State(state): State<Arc<ProviderState>>,
    jar: CookieJar,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    answer(&state, jar, AuthorizeParams::from_pairs(params)).await
}

async fn answer(state: &ProviderState, jar: CookieJar, params: AuthorizeParams) -> Response {
    state.metrics.count_authorize_request(Prompt::parse(params.prompt.as_deref()).map_or("invalid", Prompt::metric));
    let delay = state.authorize_delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    // An untrusted client's error page may not be framed: nothing vouches for its framer.
    let client = match trusted_client(state, &params) {
        Ok(client) => client,
        Err(error) => return error.into_response(),
    };
    let framing = FrameAncestors::of_client(client);
    let mut response = match validate(state, client, params) {
        Ok(validated) => decide(state, jar, validated, &framing),
        Err(error) => error.into_response(),
    };
    // The pages were built with this policy; the redirects (a code or an error) get it here.
    if response.status().is_redirection() {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, framing.redirect_policy());
    }
    response
}

/// The client, if its `redirect_uri` is registered for it: only then may anything be sent there.
fn trusted_client<'a>(
    state: &'a ProviderState,
    params: &AuthorizeParams,
) -> Result<&'a ClientConfig, AuthorizePageError> {
    // Which client, or which redirect URI, was meant cannot be known: nothing is trusted.
    if let Some(name @ ("client_id" | "redirect_uri")) = params.repeated {
        return Err(AuthorizePageError::RepeatedParameter(name));
    }
    let client =
        params.client_id.as_deref().and_then(|id| state.config.client(id)).ok_or(AuthorizePageError::UnknownClient)?;
    // Exact string comparison, no prefix or pattern matching (RFC 9700 §4.1.3).
    let registered = params.redirect_uri.as_ref().is_some_and(|uri| client.redirect_uris.iter().any(|r| r == uri));
    if registered {
        Ok(client)
    } else {
        Err(AuthorizePageError::UnregisteredRedirectUri)
    }
}

fn validate(
    state: &ProviderState,
    client: &ClientConfig,
    params: AuthorizeParams,
) -> Result<Validated, AuthorizeRedirectError> {
    let mut request = AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: params.redirect_uri.unwrap_or_default(),
        scopes: Vec::new(),
        state: params.state,
        nonce: params.nonce,
        code_challenge: String::new(),
        prompt_consent: false,
        hinted_sub: None,
    };
    let refuse =
        |request: &AuthorizationRequest, error, description| redirect_error(state, request, error, description);

    if let Some(name) = params.repeated {
        tracing::warn!(parameter = name, "authorization request repeats a parameter");
        return Err(refuse(&request, "invalid_request", "a request parameter is repeated (RFC 6749 §3.1)"));
    }
    // Then: the other parameters may be inside the request object (OIDC Core §6.1), so they
    // cannot be judged without it. A parameter without a value counts as absent (RFC 6749 §3.1).
    let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
    if given(&params.request) {
        return Err(refuse(&request, "request_not_supported", "request objects are not supported"));
    }
    if given(&params.request_uri) {
        return Err(refuse(&request, "request_uri_not_supported", "request_uri is not supported"));
    }
    // A missing required parameter is `invalid_request`; only a value this provider does not
    // support is `unsupported_response_type` (RFC 6749 §4.1.2.1).
    match params.response_type.as_deref() {
        Some("code") => {}
        None | Some("") => return Err(refuse(&request, "invalid_request", "response_type is required")),
        Some(_) => {
            return Err(refuse(&request, "unsupported_response_type", "only response_type=code is supported"));
        }
    }
    let requested: Vec<&str> = params.scope.as_deref().unwrap_or_default().split(' ').collect();
    if !requested.contains(&"openid") {
        return Err(refuse(&request, "invalid_scope", "the openid scope is required"));
    }
    // Unknown scopes are dropped, not refused (RFC 6749 §3.3); the token response says what was
    // granted. So is `offline_access` for a client not registered for it. For one that is, the
    // registration stands in for the `prompt=consent` of OIDC Core §11: its clients are the
    // operator's own, and one that wants its users asked sets `require_consent`.
    request.scopes = SUPPORTED_SCOPES
        .iter()
        .filter(|s| requested.contains(s))
        .filter(|s| **s != OFFLINE_ACCESS || client.offline_access)
        .map(|s| s.to_string())
        .collect();

    // PKCE is required of every client (RFC 9700 §2.1.1), and only with S256.
    let Some(challenge) = params.code_challenge else {
        return Err(refuse(&request, "invalid_request", "code_challenge is required (PKCE)"));
    };
    match params.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some("plain") | None => {
            return Err(refuse(&request, "invalid_request", "code_challenge_method must be S256"));
        }
        Some(_) => return Err(refuse(&request, "invalid_request", "unsupported code_challenge_method")),
    }
    if !is_s256_challenge(&challenge) {
        return Err(refuse(&request, "invalid_request", "code_challenge is not a base64url SHA-256 digest"));
    }
    request.code_challenge = challenge;

    let prompt = Prompt::parse(params.prompt.as_deref()).map_err(|why| refuse(&request, "invalid_request", why))?;
    request.prompt_consent = prompt.consent;
    let max_age = parse_max_age(params.max_age.as_deref()).map_err(|why| refuse(&request, "invalid_request", why))?;

    request.hinted_sub = match params.id_token_hint.as_deref().filter(|hint| !hint.is_empty()) {
        None => None,
        Some(hint) => Some(hinted_subject(state, hint, &client.client_id).ok_or_else(|| {
            refuse(&request, "invalid_request", "id_token_hint is not an ID token this provider issued to this client")
        })?),
    };
    Ok(Validated { request, prompt, max_age })
}

/// `max_age` (OIDC Core §3.1.2.1): a non-negative integer of seconds; empty is absent (RFC 6749
/// §3.1). Too large for a `u64` is as good as unlimited.
fn parse_max_age(value: Option<&str>) -> Result<Option<u64>, &'static str> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(v.parse().unwrap_or(u64::MAX))),
        Some(_) => Err("max_age must be a non-negative integer number of seconds"),
    }
}

/// The `sub` of `hint` if it is an ID token this provider issued to `client_id` (see
/// [`verify_id_token_hint`]).
fn hinted_subject(state: &ProviderState, hint: &str, client_id: &str) -> Option<String> {
    verify_id_token_hint(state, hint).filter(|hint| hint.aud.iter().any(|aud| aud == client_id)).map(|hint| hint.sub)
}

/// What an `id_token_hint` says, once verified.
#[derive(Debug, Deserialize)]
pub(crate) struct IdTokenHint {
    pub sub: String,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// `hint`'s claims if it is an ID token this provider signed (with its current key or a previous
/// one, published or not, still within its hint window: see [`crate::keys`]), with its `iss`.
/// Expiry is not checked: an expired ID token is exactly what a client holds when it renews
/// (OIDC Core §3.1.2.1) or signs out (RP-Initiated Logout 1.0 §2). The caller checks `aud`
/// against the client it expects.
pub(crate) fn verify_id_token_hint(state: &ProviderState, hint: &str) -> Option<IdTokenHint> {
    let header = jsonwebtoken::decode_header(hint).ok()?;
    // This provider's ID tokens say `JWT`; an access token (`at+jwt`) is no hint.
    if header.typ.as_deref().is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT")) {
        return None;
    }
    let key = state.keys.find_for_hint(&header.kid?, state.now())?;
    // The key's own algorithm: an ID token of a client registered for RS256 is signed RS256.
    let mut validation = Validation::new(key.alg().jwt());
    validation.set_issuer(&[&state.issuer]);
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    validation.validate_aud = false;
    validation.validate_exp = false;
    jsonwebtoken::decode::<IdTokenHint>(hint, key.decoding_key(), &validation).ok().map(|data| data.claims)
}

/// `BASE64URL(SHA256(verifier))` without padding is always 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Answers a valid request from the provider session, with a page, or (under `prompt=none`)
/// with the error that stands for the page.
fn decide(state: &ProviderState, jar: CookieJar, validated: Validated, framing: &FrameAncestors) -> Response {
    let Validated { request, prompt, max_age } = validated;
    let hinted_sub = request.hinted_sub.clone();
    let now = state.now();
    let session = login::current_session(state, &jar, now);
    // What the browser state cookie holds: this session's, or nothing.
    let browser_state = session.as_ref().map(|session| session.browser_state.clone()).unwrap_or_default();
    // A session older than `max_age` counts as none (OIDC Core §3.1.2.1); so does a session of
    // another user than the hint names. `max_age=0` is `prompt=login` (OIDC Core 1.0 errata):
    // no session is fresh enough, not even one signed in within the same second.
    let usable = session.filter(|session| {
        max_age.is_none_or(|max_age| max_age > 0 && now.saturating_sub(session.auth_time) <= max_age)
            && hinted_sub.as_ref().is_none_or(|sub| *sub == session.sub)
    });

    if prompt.none {
        let Some(session) = usable else {
            return silent_failure(
                state,
                &request,
                &browser_state,
                "login_required",
                "no usable session at the provider",
            );
        };
        return match outstanding(state, &request, &session) {
            Outstanding::Nothing => issue_code(state, jar, request, &session, now),
            Outstanding::Terms => silent_failure(
                state,
                &request,
                &browser_state,
                "interaction_required",
                "the user must accept updated terms",
            ),
            Outstanding::Consent => silent_failure(
                state,
                &request,
                &browser_state,
                "consent_required",
                "the user has not allowed this client",
            ),
        };
    }
    match usable {
        Some(session) if !prompt.login => proceed(state, jar, request, &session, now, framing),
        _ => {
            // The form names the user the client expects, when it names one.
            let username = hinted_sub.and_then(|sub| state.config.user_by_sub(&sub)).map(|u| u.username.as_str());
            login::show_form(state, jar, request, username.unwrap_or_default(), now, framing)
        }
    }
}

/// What a signed-in request still needs from the user before its code, in the order asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outstanding {
    /// The user has updated terms to accept (`interaction_required`).
    Terms,
    /// The client requires consent not yet given in this session, or the request has
    /// `prompt=consent`.
    Consent,
    Nothing,
}

fn outstanding(state: &ProviderState, request: &AuthorizationRequest, session: &ProviderSession) -> Outstanding {
    let terms_pending =
        !session.terms_accepted && state.config.user_by_sub(&session.sub).is_some_and(|user| user.interaction_required);
    let consent_pending = request.prompt_consent
        || (state.config.client(&request.client_id).is_some_and(|client| client.require_consent)
            && !session.consents.contains(&request.client_id));
    if terms_pending {
        Outstanding::Terms
    } else if consent_pending {
        Outstanding::Consent
    } else {
        Outstanding::Nothing
    }
}

/// Shows the page `request` needs next in `session`, or issues its code; the answer carries
/// `jar`'s changes. Called once the user is signed in: from here with a session, after the
/// sign-in form, after the terms. `framing` is who may frame the page: the client's origins
/// here, nobody after a form post.
pub(crate) fn proceed(
    state: &ProviderState,
    jar: CookieJar,
    request: AuthorizationRequest,
    session: &ProviderSession,
    now: u64,
    framing: &FrameAncestors,
) -> Response {
    match outstanding(state, &request, session) {
        Outstanding::Terms => terms::show(state, jar, request, session, now, framing),
        Outstanding::Consent => consent::show(state, jar, request, session, now, framing),
        Outstanding::Nothing => issue_code(state, jar, request, session, now),
    }
}

/// Issues a code for `request` from `session` and sends the browser back to the client with it
/// and the `session_state` of the client in `session`; the answer carries `jar`'s changes and
/// sets the browser state cookie that `session_state` was computed from (a browser that lost it
/// would otherwise see `changed` for ever).
pub(crate) fn issue_code(
    state: &ProviderState,
    jar: CookieJar,
    request: AuthorizationRequest,
    session: &ProviderSession,
    now: u64,
) -> Response {
    let redirect_uri = request.redirect_uri.clone();
    let client_state = request.state.clone();
    let session_state = check_session::session_state(&request.client_id, &redirect_uri, &session.browser_state);
    let code = state.store.issue_code(AuthorizationCode {
        request,
        sub: session.sub.clone(),
        sid: session.sid.clone(),
        auth_time: session.auth_time,
        issued_at: now,
    });
    let issuer = state.config.issuer_str();
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &client_state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &issuer));
    pairs.push(("session_state", &session_state));
    let jar = jar.add(check_session::browser_state_cookie(state, Some(session)));
    (jar, redirect_with(&redirect_uri, &pairs)).into_response()
}

pub(crate) fn redirect_error(
    state: &ProviderState,
    request: &AuthorizationRequest,
    error: &'static str,
    description: &'static str,
) -> AuthorizeRedirectError {
    AuthorizeRedirectError {
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
        issuer: state.config.issuer_str(),
        error,
        description,
    }
}

/// A `prompt=none` request that cannot be answered with a code: `redirect_error`, with the
/// `session_state` of `browser_state` (Session Management 1.0 §2: it SHOULD come with an
/// authentication failure too), which the relying party's check_session then compares with
/// what the browser state cookie holds.
fn silent_failure(
    state: &ProviderState,
    request: &AuthorizationRequest,
    browser_state: &str,
    error: &'static str,
    description: &'static str,
) -> Response {
    let session_state = check_session::session_state(&request.client_id, &request.redirect_uri, browser_state);
    redirect_error(state, request, error, description).with_session_state(Some(&session_state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_is_a_space_delimited_set_and_none_stands_alone() {
        let parse = |value| Prompt::parse(Some(value));
        assert_eq!(parse(""), Ok(Prompt::default()));
        assert_eq!(parse("consent  login"), Ok(Prompt { login: true, consent: true, none: false }));
        assert_eq!(parse("login login").map(Prompt::metric), Ok("login"));
        assert_eq!(parse("none").map(Prompt::metric), Ok("none"));
        assert_eq!(parse("select_account"), parse("login"));
        for refused in ["none login", "consent none", "none select_account", "None", "create"] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn max_age_is_a_non_negative_integer() {
        assert_eq!(parse_max_age(None), Ok(None));
        assert_eq!(parse_max_age(Some("")), Ok(None));
        assert_eq!(parse_max_age(Some("0")), Ok(Some(0)));
        assert_eq!(parse_max_age(Some("300")), Ok(Some(300)));
        assert_eq!(parse_max_age(Some("99999999999999999999999")), Ok(Some(u64::MAX)));
        for refused in ["abc", "-1", "+5", "1.5", " 5", "5s"] {
            assert!(parse_max_age(Some(refused)).is_err(), "{refused}");
        }
    }
}

//! Back-Channel Logout 1.0: when a provider session ends, every client that received tokens in
//! it (§2.3: the provider remembers them in the session, see [`ProviderSession::clients`]) and
//! registered a `backchannel_logout_uri` (§2.2) is sent a logout token.
//!
//! The logout token (§2.4) is a JWS signed like an ID token (ES256, the current key), with the
//! header `typ: logout+jwt` and the claims `iss`, `aud` (the client id), `iat`, `exp` (two
//! minutes later), `jti` (random), `sub`, `sid` and `events` holding the one member
//! `http://schemas.openid.net/event/backchannel-logout` with the value `{}`; never `nonce`, so
//! that it can never pass for an ID token. It is POSTed as `application/x-www-form-urlencoded`
//! `logout_token=<JWT>` (§2.5), in the background: the request that ended the session does not
//! wait for it (except `/end-session`, which holds its redirect for the first attempts, see
//! [`FirstAttempts`], and another user's sign-in, which ends the session the same way). Sessions
//! are ended by `/end-session`, another user signing in at the session's browser, the admin API,
//! and reuse detection (a reused refresh token or authorization code revokes its family and ends
//! the family's session); a session that merely expires is not announced, and one its own user
//! signs into again goes on (same `sid`, nothing to announce).
//!
//! Delivery (§2.5, §2.8): a 2xx answer (200, or 204 from frameworks that send it for an empty
//! body) is success; another 4xx is the client refusing the token, final; a 5xx, 408 or 429, a
//! timeout (5 s each) or a connection failure may be temporary, and the same token is sent
//! again, at most [`ATTEMPTS`] times in all, after 0.5 s and then 1 s. Redirects are not
//! followed. Each outcome is logged with the client, the `sid` and the attempt, never the token,
//! and counted in `/admin/metrics` under `backchannel_logouts`: `sent` (POSTs made, retries
//! included), `retries`, `delivered` and `failed` (tokens given up on).
//!
//! The client is plain HTTP (reqwest without TLS): the embedded provider's clients are on the
//! development machine. An `https` back-channel URI fails its every attempt, logged.
//!
//! The admin API also builds deliberately defective logout tokens ([`Defect`], [`forge`]), one
//! defect each, for testing a client's validation (§2.6).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::{
    error::AdminError,
    keys::SigningKey,
    store::{random_token, ProviderSession},
    ProviderState,
};

/// The `events` member that makes a JWT a logout token (§2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The `typ` header of a logout token (§2.4, RFC 8725 §3.11 explicit typing).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// A logout token's lifetime: long enough for every retry, short enough to be useless later.
pub const LOGOUT_TOKEN_SECS: u64 = 120;
/// Attempts per logout token, the first included.
pub const ATTEMPTS: usize = 3;
/// How long one attempt may take, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The waits before the second and the third attempt.
const BACKOFF: [Duration; ATTEMPTS - 1] = [Duration::from_millis(500), Duration::from_millis(1000)];

/// A signed logout token: its `Debug` does not print it.
#[derive(Clone)]
struct LogoutToken(String);

impl std::fmt::Debug for LogoutToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogoutToken([redacted])")
    }
}

/// The claims of a logout token (§2.4).
#[derive(Debug, Serialize)]
pub struct LogoutTokenClaims<'a> {
    pub iss: &'a str,
    pub aud: &'a str,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    pub events: Value,
}

impl<'a> LogoutTokenClaims<'a> {
    pub fn new(issuer: &'a str, client_id: &'a str, sub: Option<&'a str>, sid: Option<&'a str>, now: u64) -> Self {
        Self {
            iss: issuer,
            aud: client_id,
            iat: now,
            exp: now + LOGOUT_TOKEN_SECS,
            jti: random_token(),
            sub,
            sid,
            events: json!({ LOGOUT_EVENT: {} }),
        }
    }
}

/// The counters of `backchannel_logouts` in `/admin/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// POSTs of a logout token made, retries included.
    sent: AtomicU64,
    /// Of those, the ones after a first attempt.
    retries: AtomicU64,
    /// Logout tokens a client acknowledged (2xx).
    delivered: AtomicU64,
    /// Logout tokens given up on: refused (4xx), or still failing after the last attempt.
    failed: AtomicU64,
}

impl Counters {
    fn increment(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Value {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        json!({
            "sent": load(&self.sent),
            "delivered": load(&self.delivered),
            "failed": load(&self.failed),
            "retries": load(&self.retries),
        })
    }
}

/// Why a provider session ended, as the log says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `/end-session`, RP-Initiated Logout.
    SignOut,
    /// The admin API.
    Admin,
    /// A retired refresh token came back, or an authorization code, and revoked a family of
    /// this session.
    Reuse,
    /// Another user signed in at the session's browser ([`crate::login`]).
    AnotherUser,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Self::SignOut => "sign-out",
            Self::Admin => "admin API",
            Self::Reuse => "reuse detected",
            Self::AnotherUser => "another user signed in",
        }
    }
}

/// The first attempt of each logout token sent for one session: `/end-session` waits for them
/// before it redirects, as RP-Initiated Logout 1.0 §3 asks ("the post-logout redirection is
/// performed after the OP has finished notifying the RPs"), within a bound.
#[must_use = "wait for it, or drop it to not wait"]
pub struct FirstAttempts(Vec<oneshot::Receiver<()>>);

impl FirstAttempts {
    /// Waits until every first attempt has an answer (or failed), at most `limit`.
    pub async fn wait(self, limit: Duration) {
        let all = async {
            for attempt in self.0 {
                // A dropped sender (the task ended) counts as answered.
                let _ = attempt.await;
            }
        };
        let _ = tokio::time::timeout(limit, all).await;
    }
}

/// Sends a logout token for the ended `session` to each of its clients with a back-channel
/// logout URI, each in a task of its own, and logs the session's end.
pub(crate) fn notify(state: &ProviderState, session: &ProviderSession, ending: Ending) -> FirstAttempts {
    let clients: Vec<(&str, &str)> = session
        .clients
        .iter()
        .filter_map(|id| state.config.client(id))
        .filter_map(|client| client.backchannel_logout_uri.as_deref().map(|uri| (client.client_id.as_str(), uri)))
        .collect();
    tracing::info!(
        sid = %session.sid,
        sub = %session.sub,
        reason = ending.as_str(),
        clients = session.clients.len(),
        notified = clients.len(),
        "provider session ended"
    );
    let now = state.now();
    let mut first_attempts = Vec::with_capacity(clients.len());
    for (client_id, uri) in clients {
        // Signed as the client's ID tokens are (Back-Channel Logout 1.0 §2.4).
        let key = state.id_token_key(client_id);
        let claims = LogoutTokenClaims::new(&state.issuer, client_id, Some(&session.sub), Some(&session.sid), now);
        let delivery = Delivery {
            http: state.http.clone(),
            counters: state.metrics.backchannel_logouts.clone(),
            client_id: client_id.to_owned(),
            uri: uri.to_owned(),
            sid: session.sid.clone(),
            token: LogoutToken(key.sign(LOGOUT_TOKEN_TYP, &claims)),
        };
        let (first_attempt, answered) = oneshot::channel();
        tokio::spawn(delivery.run(first_attempt));
        first_attempts.push(answered);
    }
    FirstAttempts(first_attempts)
}

/// One logout token on its way to one client.
#[derive(Debug)]
struct Delivery {
    http: reqwest::Client,
    counters: Arc<Counters>,
    client_id: String,
    uri: String,
    sid: String,
    token: LogoutToken,
}

impl Delivery {
    async fn run(self, first_attempt: oneshot::Sender<()>) {
        let Self { http, counters, client_id, uri, sid, token } = self;
        let mut first_attempt = Some(first_attempt);
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(BACKOFF[attempt - 2]).await;
                Counters::increment(&counters.retries);
            }
            Counters::increment(&counters.sent);
            let outcome = post(&http, &uri, &token.0).await.map(|response| response.status());
            if let Some(answered) = first_attempt.take() {
                let _ = answered.send(());
            }
            let last = attempt == ATTEMPTS;
            match outcome {
                Ok(status) if status.is_success() => {
                    Counters::increment(&counters.delivered);
                    tracing::info!(%client_id, %sid, attempt, status = status.as_u16(), "logout token delivered");
                    return;
                }
                Ok(status) if !may_be_temporary(status) => {
                    Counters::increment(&counters.failed);
                    tracing::warn!(%client_id, %sid, attempt, status = status.as_u16(), "the client refused the logout token");
                    return;
                }
                Ok(status) => {
                    tracing::warn!(%client_id, %sid, attempt, status = status.as_u16(), retry = !last, "back-channel logout failed")
                }
                Err(error) => {
                    tracing::warn!(%client_id, %sid, attempt, %error, retry = !last, "back-channel logout failed")
                }
            }
        }
        Counters::increment(&counters.failed);
        tracing::warn!(%client_id, %sid, attempts = ATTEMPTS, "back-channel logout given up");
    }
}

/// §2.5: retransmit only after errors that may be recoverable.
fn may_be_temporary(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS
}

/// One back-channel logout request (§2.5).
async fn post(http: &reqwest::Client, uri: &str, token: &str) -> Result<reqwest::Response, reqwest::Error> {
    http.post(uri).form(&[("logout_token", token)]).send().await
}

/// The HTTP client of the back channel: no redirects, [`ATTEMPT_TIMEOUT`] per request.
pub(crate) fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).redirect(reqwest::redirect::Policy::none()).build()
}

/// One thing wrong with a logout token, each enough for a client that validates as §2.6 says to
/// refuse it (400); and two ways of typing it that are only less than recommended (§2.4), which
/// such a client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Defect {
    /// The signature's first byte altered.
    BadSignature,
    /// Header `alg: none`, and an empty signature (§2.6: `none` MUST NOT be accepted).
    AlgNone,
    /// Header `alg: HS256`, with the current `kid`, HMAC-SHA256 keyed with the current signing
    /// key's public key as SPKI PEM ([`SigningKey::public_key_pem`]): the key confusion attack
    /// on a library that verifies with "the key" whatever `alg` says.
    Hs256WithPublicKey,
    /// Signed with a throwaway key; its `kid` (its thumbprint) is in no JWK Set.
    UnknownKid,
    /// `iss` is the issuer with `/evil` appended: passes a prefix check, not an exact one.
    WrongIss,
    /// `aud` is `not-` and the client id.
    WrongAud,
    /// `iat` 300 s ago, `exp` 180 s ago.
    Expired,
    /// `iat` an hour from now (and `exp` two minutes after it).
    IatFuture,
    /// `iat` an hour ago, `exp` still two minutes away: a token kept for later (§2.6 checks
    /// `iat` as for ID tokens, whose age a client bounds).
    IatOld,
    /// A `nonce` claim (§2.4: prohibited).
    NoncePresent,
    /// No `events` claim.
    EventsMissing,
    /// `events` without the back-channel logout member: it holds another event type instead.
    EventsWrong,
    /// Neither `sub` nor `sid`, whatever was asked for.
    NoSubNoSid,
    /// Header `typ: at+jwt`: a token of another kind.
    TypWrong,
    /// Header `typ: JWT`, as Keycloak sent before version 25: not explicitly typed, but not
    /// wrong (explicit typing is RECOMMENDED, §2.4; `events` and no `nonce` tell it apart, §4.1).
    TypGeneric,
    /// No `typ` header at all: likewise.
    TypAbsent,
}

/// Another event type, from the RISC profile: an `events` object, but not a logout token's.
const OTHER_EVENT: &str = "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked";

/// What the admin API asks for: a logout token for `client_id` about `sub` and `sid`, with
/// `defects`, and the `jti` to reuse if any.
pub struct Forging<'a> {
    pub client_id: &'a str,
    pub sub: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub defects: &'a [Defect],
    pub jti: Option<&'a str>,
}

/// A logout token with `defects` (none: a valid one), and its `jti`.
pub(crate) fn forge(state: &ProviderState, forging: &Forging<'_>) -> Result<(String, String), AdminError> {
    let Forging { client_id, sub, sid, defects, jti } = *forging;
    let has = |defect| defects.contains(&defect);
    let signing = [Defect::AlgNone, Defect::Hs256WithPublicKey, Defect::UnknownKid];
    if signing.iter().filter(|defect| has(**defect)).count() > 1 {
        return Err(AdminError::BadRequest("alg_none, hs256_with_public_key and unknown_kid exclude each other"));
    }
    if has(Defect::AlgNone) && has(Defect::BadSignature) {
        return Err(AdminError::BadRequest("alg_none has no signature to alter"));
    }
    if sub.is_none() && sid.is_none() && !has(Defect::NoSubNoSid) {
        return Err(AdminError::BadRequest("give sub, sid or both (or ask for the no_sub_no_sid defect)"));
    }

    let now = state.now();
    let mut claims = LogoutTokenClaims::new(&state.issuer, client_id, sub, sid, now);
    if let Some(jti) = jti {
        claims.jti = jti.to_owned();
    }
    let jti = claims.jti.clone();
    let mut claims = serde_json::to_value(&claims).expect("claims serialize");
    for defect in defects {
        match defect {
            Defect::WrongIss => claims["iss"] = format!("{}/evil", state.issuer).into(),
            Defect::WrongAud => claims["aud"] = format!("not-{client_id}").into(),
            Defect::Expired => {
                claims["iat"] = now.saturating_sub(300).into();
                claims["exp"] = now.saturating_sub(180).into();
            }
            Defect::IatFuture => {
                claims["iat"] = (now + 3600).into();
                claims["exp"] = (now + 3600 + LOGOUT_TOKEN_SECS).into();
            }
            Defect::IatOld => claims["iat"] = now.saturating_sub(3600).into(),
            Defect::NoncePresent => claims["nonce"] = random_token().into(),
            Defect::EventsMissing => drop(claims.as_object_mut().expect("an object").remove("events")),
            Defect::EventsWrong => claims["events"] = json!({ OTHER_EVENT: {} }),
            Defect::NoSubNoSid => {
                let object = claims.as_object_mut().expect("an object");
                object.remove("sub");
                object.remove("sid");
            }
            _ => {}
        }
    }

    let typ = if has(Defect::TypWrong) {
        "at+jwt"
    } else if has(Defect::TypGeneric) {
        "JWT"
    } else {
        LOGOUT_TOKEN_TYP
    };
    let key = state.keys.current();
    let throwaway;
    let (mut header, signer): (Value, Signer<'_>) = if has(Defect::AlgNone) {
        (json!({ "alg": "none", "typ": typ }), Signer::None)
    } else if has(Defect::Hs256WithPublicKey) {
        (json!({ "alg": "HS256", "typ": typ, "kid": key.kid() }), Signer::Hmac(key.public_key_pem()))
    } else if has(Defect::UnknownKid) {
        throwaway = SigningKey::generate();
        (json!({ "alg": "ES256", "typ": typ, "kid": throwaway.kid() }), Signer::Key(&throwaway))
    } else {
        (json!({ "alg": "ES256", "typ": typ, "kid": key.kid() }), Signer::Key(&key))
    };
    if has(Defect::TypAbsent) {
        header.as_object_mut().expect("an object").remove("typ");
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("a header serializes")),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize")),
    );
    let mut signature = match signer {
        Signer::None => Vec::new(),
        Signer::Key(key) => key.sign_input(input.as_bytes()),
        Signer::Hmac(secret) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
            ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
        }
    };
    if has(Defect::BadSignature) {
        signature[0] ^= 0x01;
    }
    Ok((jti, format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))))
}

enum Signer<'a> {
    None,
    Key(&'a SigningKey),
    Hmac(String),
}

/// POSTs `token` to `uri` once, as a back-channel logout request, and returns the client's
/// status and body: the admin API's synchronous delivery.
pub(crate) async fn deliver_once(
    state: &ProviderState,
    uri: &str,
    token: &str,
) -> Result<(u16, String), reqwest::Error> {
    let response = post(&state.http, uri, token).await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

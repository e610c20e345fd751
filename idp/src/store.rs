//! The provider's state, in memory: sign-in interactions waiting for a password, provider
//! (browser) sessions, authorization codes, and the access tokens issued from each code.
//!
//! One mutex guards it all; it is never held across an `.await`, and every operation that must
//! be atomic (redeeming a code exactly once) happens under a single lock.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;

/// How long a code is remembered after it is issued, so that a late replay is still recognised
/// as one (and its tokens revoked) rather than as an unknown code.
const CODE_MEMORY_SECS: u64 = 600;
/// How long the sign-in form may stay open.
const INTERACTION_SECS: u64 = 600;

/// 256 bits from the OS generator, base64url: codes, session keys, `sid`, `jti`.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An authorization request that passed every check of `/authorize`.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
}

/// A request waiting at the sign-in form, bound to the browser that opened it.
#[derive(Debug, Clone)]
pub struct Interaction {
    pub request: AuthorizationRequest,
    pub browser: String,
    pub created_at: u64,
}

/// The user's session at the provider (OIDC Core `sid`), keyed by its cookie.
#[derive(Debug, Clone)]
pub struct ProviderSession {
    pub sid: String,
    pub sub: String,
    pub auth_time: u64,
    pub expires_at: u64,
}

#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    pub request: AuthorizationRequest,
    pub sub: String,
    pub sid: String,
    pub auth_time: u64,
    pub issued_at: u64,
}

#[derive(Debug)]
struct CodeRecord {
    grant: AuthorizationCode,
    redeemed: bool,
    /// `jti`s of the access tokens issued for this code: revoked if the code comes back.
    issued_tokens: Vec<String>,
}

#[derive(Debug)]
struct AccessTokenRecord {
    expires_at: u64,
    revoked: bool,
}

/// The outcome of presenting a code at the token endpoint.
#[derive(Debug)]
pub enum Redemption {
    Redeemed(AuthorizationCode),
    Unknown,
    Expired,
    /// Presented before: the tokens first issued for it have now been revoked (RFC 6749 §4.1.2).
    Replayed {
        revoked_tokens: usize,
    },
}

#[derive(Debug, Default)]
pub struct Store(Mutex<Inner>);

#[derive(Debug, Default)]
struct Inner {
    interactions: HashMap<String, Interaction>,
    sessions: HashMap<String, ProviderSession>,
    codes: HashMap<String, CodeRecord>,
    access_tokens: HashMap<String, AccessTokenRecord>,
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave these maps half-updated in a way that
        // matters more than refusing every request from then on would.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn start_interaction(&self, request: AuthorizationRequest, browser: String, now: u64) -> String {
        let id = random_token();
        let mut inner = self.lock();
        inner.purge(now);
        inner.interactions.insert(id.clone(), Interaction { request, browser, created_at: now });
        id
    }

    /// Returns the interaction if it exists, is fresh and belongs to `browser`; it stays in
    /// place so that a mistyped password can be tried again.
    pub fn interaction(&self, id: &str, browser: &str, now: u64) -> Option<Interaction> {
        let inner = self.lock();
        inner.interactions.get(id).filter(|i| i.browser == browser && now < i.created_at + INTERACTION_SECS).cloned()
    }

    pub fn finish_interaction(&self, id: &str) {
        self.lock().interactions.remove(id);
    }

    /// Starts a provider session and returns its cookie value.
    pub fn start_session(&self, session: ProviderSession) -> String {
        let key = random_token();
        self.lock().sessions.insert(key.clone(), session);
        key
    }

    pub fn session(&self, key: &str, now: u64) -> Option<ProviderSession> {
        self.lock().sessions.get(key).filter(|s| now < s.expires_at).cloned()
    }

    pub fn issue_code(&self, grant: AuthorizationCode) -> String {
        let code = random_token();
        let mut inner = self.lock();
        inner.purge(grant.issued_at);
        inner.codes.insert(code.clone(), CodeRecord { grant, redeemed: false, issued_tokens: Vec::new() });
        code
    }

    /// Redeems `code` once: the first presentation consumes it whatever happens next, so that a
    /// stolen code cannot be used to guess a PKCE verifier either. On success the access token
    /// about to be issued (`jti`) is recorded under the same lock, so that a replay racing this
    /// request still finds it to revoke.
    pub fn redeem_code(&self, code: &str, now: u64, lifetime: u64, jti: &str, token_expires_at: u64) -> Redemption {
        let mut inner = self.lock();
        let Inner { codes, access_tokens, .. } = &mut *inner;
        let Some(record) = codes.get_mut(code) else {
            return Redemption::Unknown;
        };
        if record.redeemed {
            let mut revoked_tokens = 0;
            for jti in &record.issued_tokens {
                if let Some(token) = access_tokens.get_mut(jti) {
                    revoked_tokens += usize::from(!token.revoked);
                    token.revoked = true;
                }
            }
            return Redemption::Replayed { revoked_tokens };
        }
        record.redeemed = true;
        if now >= record.grant.issued_at + lifetime {
            return Redemption::Expired;
        }
        record.issued_tokens.push(jti.to_owned());
        access_tokens.insert(jti.to_owned(), AccessTokenRecord { expires_at: token_expires_at, revoked: false });
        Redemption::Redeemed(record.grant.clone())
    }

    /// True if this provider issued the token and has not revoked it.
    pub fn access_token_is_active(&self, jti: &str, now: u64) -> bool {
        self.lock().access_tokens.get(jti).is_some_and(|t| !t.revoked && now < t.expires_at)
    }
}

impl Inner {
    fn purge(&mut self, now: u64) {
        self.interactions.retain(|_, i| now < i.created_at + INTERACTION_SECS);
        self.sessions.retain(|_, s| now < s.expires_at);
        self.codes.retain(|_, c| now < c.grant.issued_at + CODE_MEMORY_SECS);
        self.access_tokens.retain(|_, t| now < t.expires_at);
    }
}

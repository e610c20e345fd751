//! The client auth context, provided once at the root: the session as the page loaded it, and
//! signals that follow its renewal (status, expiry, renewal count, last outcome and error, and an
//! event log named like oidc-client-ts's events). In the browser, [`super::renewal`] drives them;
//! on the server they stay at their initial values, so hydration matches.
//!
//! Renewal only ever writes these signals. It never refetches [`AuthContext::session`], which
//! protected pages wait on: a renewal must not re-render, reset or re-mount what a user is typing.

use leptos::prelude::*;

use super::{
    api::get_session,
    refresh::{ReauthReason, RefreshOutcome},
    session::SessionInfo,
};

/// The most events the log keeps; older ones drop off the top.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const MAX_EVENTS: usize = 200;

/// Where the session stands, as the browser knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStatus {
    /// Not known yet (before hydration, or while the session loads).
    Unknown,
    SignedOut,
    SignedIn,
    /// A renewal is in flight.
    Renewing,
    /// The session cannot be renewed: the user must sign in again.
    ReauthRequired(ReauthReason),
}

impl AuthStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::SignedOut => "signed out",
            Self::SignedIn => "signed in",
            Self::Renewing => "renewing",
            Self::ReauthRequired(_) => "sign-in required",
        }
    }
}

/// How a watch on the session stands: check_session (the provider's iframe) and the server's
/// push channel (`/auth/events`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// Not used for this session (no check_session at the provider, or not signed in).
    Off,
    /// Opening the push channel; for check_session, waiting for its first `unchanged` (before
    /// it, a `changed` is not believed: see `check_session`).
    Connecting,
    /// Live: a change would be noticed.
    Watching,
    /// check_session said `changed`; the provider is being asked with `prompt=none`.
    Rechecking,
    /// check_session's re-check failed for now: the iframe is not asked until a pause is over.
    Paused,
    /// Gave up (check_session's breaker, an `error`), or the session ended.
    Stopped,
}

impl Watch {
    pub fn label(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Connecting => "connecting",
            Self::Watching => "watching",
            Self::Rechecking => "re-checking",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        }
    }
}

/// The window event that makes the renewal driver read the session again at once (after the
/// dashboard expired the access token, say).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub(crate) const RESYNC_EVENT: &str = "oidc-session:resync";

/// The window event that makes the renewal driver renew at once (see [`AuthContext::renew_now`]).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub(crate) const RENEW_EVENT: &str = "oidc-session:renew";

/// The events, named as oidc-client-ts names its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthEventKind {
    /// Tokens were (re)loaded: a renewal here, or one adopted from another tab.
    UserLoaded,
    /// The access token is about to expire: renewal starts.
    AccessTokenExpiring,
    /// The access token expired before a renewal succeeded.
    AccessTokenExpired,
    /// A renewal failed (transiently, or for good).
    SilentRenewError,
    /// The session ended: sign-in is required.
    UserSignedOut,
    /// The provider session changed, or the session was ended elsewhere (check_session, the
    /// server's push channel).
    UserSessionChanged,
    /// check_session stopped (an `error` answer, or its circuit breaker).
    CheckSessionStopped,
}

impl AuthEventKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::UserLoaded => "userLoaded",
            Self::AccessTokenExpiring => "accessTokenExpiring",
            Self::AccessTokenExpired => "accessTokenExpired",
            Self::SilentRenewError => "silentRenewError",
            Self::UserSignedOut => "userSignedOut",
            Self::UserSessionChanged => "userSessionChanged",
            Self::CheckSessionStopped => "checkSessionStopped",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuthEvent {
    /// Counts up from 1 in this page: a stable key for lists.
    pub id: u64,
    /// Milliseconds since the Unix epoch, by the browser's clock.
    pub at_ms: f64,
    pub kind: AuthEventKind,
    pub detail: String,
}

/// What pages and components read. Every field is `Copy`, so is the context.
#[derive(Clone, Copy)]
pub struct AuthContext {
    /// The session as the server described it when the page loaded. Never refetched.
    pub session: Resource<Result<SessionInfo, ServerFnError>>,
    pub status: ReadSignal<AuthStatus>,
    /// When the access token the server holds expires (Unix seconds, the server's clock).
    pub expires_at: ReadSignal<Option<u64>>,
    /// The same moment by this browser's clock (ms since the epoch), for countdowns: the server
    /// said how many seconds were left, so a browser clock that is off does not matter.
    pub expires_at_ms: ReadSignal<Option<f64>>,
    pub check_session: ReadSignal<Watch>,
    pub push_channel: ReadSignal<Watch>,
    /// Renewals of this session seen by this tab, its own and other tabs'.
    pub renewals: ReadSignal<u32>,
    pub last_outcome: ReadSignal<Option<RefreshOutcome>>,
    pub last_error: ReadSignal<Option<String>>,
    pub events: ReadSignal<Vec<AuthEvent>>,
    /// Names this tab among the others of the browser (a random number; 0 on the server).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(crate) tab_id: u64,
    writers: AuthWriters,
}

/// The write halves, for the renewal driver and for pages that learn of an ended session.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub(crate) struct AuthWriters {
    pub status: WriteSignal<AuthStatus>,
    pub expires_at: WriteSignal<Option<u64>>,
    pub expires_at_ms: WriteSignal<Option<f64>>,
    pub check_session: WriteSignal<Watch>,
    pub push_channel: WriteSignal<Watch>,
    pub renewals: WriteSignal<u32>,
    pub last_outcome: WriteSignal<Option<RefreshOutcome>>,
    pub last_error: WriteSignal<Option<String>>,
    pub events: WriteSignal<Vec<AuthEvent>>,
}

impl AuthContext {
    /// The signed-in subject, once the session has loaded.
    pub fn subject(&self) -> Option<String> {
        self.session.get_untracked().and_then(Result::ok).filter(|info| info.authenticated).and_then(|i| i.subject)
    }

    /// Whether the user must sign in again before anything can be sent.
    pub fn reauth_required(&self) -> bool {
        matches!(self.status.get(), AuthStatus::ReauthRequired(_))
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(crate) fn writers(&self) -> AuthWriters {
        self.writers
    }

    /// Records an event, with the browser's time, at the end of the log.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(crate) fn log(&self, kind: AuthEventKind, detail: impl Into<String>) {
        let detail = detail.into();
        self.writers.events.update(|events| {
            let id = events.last().map_or(1, |last| last.id + 1);
            events.push(AuthEvent { id, at_ms: now_ms(), kind, detail });
            if events.len() > MAX_EVENTS {
                events.remove(0);
            }
        });
    }

    /// The user chose to sign out: from now on nothing of theirs is saved on this page.
    pub(crate) fn signing_out(&self) {
        self.writers.status.set(AuthStatus::SignedOut);
    }

    /// Tells the other tabs, before this one leaves, that the user signed out (and whether the
    /// draft stays on this device), so that they leave too and show nothing of the user.
    pub(crate) fn announce_sign_out(&self, subject: &str, keep_draft: bool) {
        #[cfg(feature = "hydrate")]
        super::tabs::TabChannel::announce(
            super::renewal::TAB_CHANNEL,
            &super::tabs::TabMessage::SignedOut { subject: subject.to_owned(), keep_draft, from: self.tab_id },
        );
        #[cfg(not(feature = "hydrate"))]
        let _ = (subject, keep_draft);
    }

    /// Makes the renewal driver read the session again now, and act on what it finds (a token
    /// that expired renews at once).
    pub fn resync(&self) {
        #[cfg(feature = "hydrate")]
        if let Ok(event) = web_sys::Event::new(RESYNC_EVENT) {
            let _ = window().dispatch_event(&event);
        }
    }

    /// A server function could not act for the user: the session ended, or only the server's own
    /// renewal failed (it has no refresh token, or the provider refused it), which the iframe may
    /// still make. The renewal driver finds out which by renewing now, with every fallback, and
    /// tells every tab if the session has ended.
    pub fn renew_now(&self) {
        #[cfg(feature = "hydrate")]
        if let Ok(event) = web_sys::Event::new(RENEW_EVENT) {
            let _ = window().dispatch_event(&event);
        }
    }

    /// Whether the page still acts for a signed-in user (who may need to sign in again).
    pub fn acting_for_user(&self) -> bool {
        self.status.get_untracked() != AuthStatus::SignedOut
    }

    /// The session has ended for good (a refused renewal here or in another tab): every page
    /// learns it from `status`.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(crate) fn end_session(&self, reason: ReauthReason) {
        // Already ended; or the user is signing out here, and nothing must save their draft again.
        if self.reauth_required() || !self.acting_for_user() {
            return;
        }
        self.writers.status.set(AuthStatus::ReauthRequired(reason));
        self.log(AuthEventKind::UserSignedOut, format!("sign-in required ({})", reason.as_str()));
    }
}

pub fn provide_auth_context() {
    let session = Resource::new(|| (), |_| get_session());
    let (status, set_status) = signal(AuthStatus::Unknown);
    let (expires_at, set_expires_at) = signal(None);
    let (expires_at_ms, set_expires_at_ms) = signal(None);
    let (check_session, set_check_session) = signal(Watch::Off);
    let (push_channel, set_push_channel) = signal(Watch::Off);
    let (renewals, set_renewals) = signal(0);
    let (last_outcome, set_last_outcome) = signal(None);
    let (last_error, set_last_error) = signal(None);
    let (events, set_events) = signal(Vec::new());
    let context = AuthContext {
        session,
        status,
        expires_at,
        expires_at_ms,
        check_session,
        push_channel,
        renewals,
        last_outcome,
        last_error,
        events,
        tab_id: (now_ms() as u64) ^ random_bits(),
        writers: AuthWriters {
            status: set_status,
            expires_at: set_expires_at,
            expires_at_ms: set_expires_at_ms,
            check_session: set_check_session,
            push_channel: set_push_channel,
            renewals: set_renewals,
            last_outcome: set_last_outcome,
            last_error: set_last_error,
            events: set_events,
        },
    };
    provide_context(context);
    #[cfg(feature = "hydrate")]
    super::renewal::start(context);
}

fn random_bits() -> u64 {
    #[cfg(feature = "hydrate")]
    {
        (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0
    }
}

/// The browser's clock in milliseconds (zero on the server, where nothing is scheduled).
pub(crate) fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}

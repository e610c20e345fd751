//! The session as both sides see it. Tokens never appear here: the server holds them and
//! attaches a [`SessionView`] to each request it renders.
//!
//! - `session`: [`SessionInfo`] (the JSON of `GET /auth/session`) and [`SessionView`].
//! - `refresh`: `POST /auth/refresh` and its typed [`RefreshOutcome`].
//! - `api`: the other server functions (session, claims, saving the form).
//! - `backend` (ssr): the [`AuthBackend`] the server provides to the server functions.
//! - `journal`: the session's journal of renewals, which the dashboard draws.
//! - `context`: the client auth context and its signals and events.
//! - `renewal`, `silent_renew`, `check_session`, `tabs` (hydrate): the renewal driver, the
//!   hidden iframe of silent renew, session monitoring, and how tabs share one renewal.
//! - `schedule`: when to renew and how to back off, testable apart from the browser.

mod api;
#[cfg(feature = "ssr")]
mod backend;
#[cfg(feature = "hydrate")]
mod check_session;
mod context;
mod journal;
mod refresh;
#[cfg(feature = "hydrate")]
mod renewal;
pub mod schedule;
mod session;
#[cfg(feature = "hydrate")]
mod silent_renew;
#[cfg(feature = "hydrate")]
mod tabs;

pub use api::{
    get_id_token_claims, get_session, get_session_details, get_userinfo_claims, submit_form, GetSession,
    SessionDetails, SubmitForm, SubmitOutcome,
};
#[cfg(feature = "ssr")]
pub use backend::{AuthBackend, BoxFuture, SharedBackend};
pub(crate) use context::now_ms;
pub use context::{provide_auth_context, AuthContext, AuthEvent, AuthEventKind, AuthStatus, Watch};
pub use journal::{JournalEntry, JournalOutcome, JournalStep, SessionJournal, MAX_JOURNAL_ENTRIES};
pub use refresh::{refresh, ReauthReason, Refresh, RefreshOutcome};
pub use session::{
    login_url, CheckSession, Claims, IdTokenClaims, RenewStrategy, RenewalPolicy, SessionInfo, SessionView,
};

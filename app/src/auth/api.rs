//! Server functions over the session. They read the [`SessionView`] that the server attached
//! to the request; on the client they are plain HTTP calls.

use leptos::{prelude::*, server_fn::codec::Json};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::session::SessionView;
use super::{
    journal::SessionJournal,
    refresh::ReauthReason,
    session::{Claims, IdTokenClaims, SessionInfo},
};
pub use crate::report::Report;

#[cfg(feature = "ssr")]
fn session_view() -> Option<SessionView> {
    use_context::<http::request::Parts>().and_then(|parts| parts.extensions.get::<SessionView>().cloned())
}

#[server]
pub async fn get_session() -> Result<SessionInfo, ServerFnError> {
    Ok(session_view().map(|view| view.info).unwrap_or_default())
}

/// `None` when signed out.
#[server]
pub async fn get_id_token_claims() -> Result<Option<IdTokenClaims>, ServerFnError> {
    Ok(session_view().map(|view| view.id_token_claims))
}

/// The userinfo endpoint's answer at sign-in; `None` when signed out or `auto_userinfo` is off.
#[server]
pub async fn get_userinfo_claims() -> Result<Option<Claims>, ServerFnError> {
    Ok(session_view().and_then(|view| view.userinfo_claims))
}

/// What the session dashboard shows beyond [`SessionInfo`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetails {
    pub journal: SessionJournal,
    /// The server's clock when it answered (ms since the Unix epoch): the journal's times are by
    /// this clock, and the browser's may be off.
    pub server_now_ms: u64,
    /// Whether the server holds a refresh token for the session now.
    pub has_refresh_token: bool,
    /// Whether the fault panel's routes (`/dev/faults/*`) exist: development only.
    pub dev_faults: bool,
}

/// `None` when signed out.
#[server(endpoint = "session_details")]
pub async fn get_session_details() -> Result<Option<SessionDetails>, ServerFnError> {
    let server_now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default();
    Ok(session_view().map(|view| SessionDetails {
        journal: view.journal,
        server_now_ms,
        has_refresh_token: view.info.has_refresh_token,
        dev_faults: view.dev_faults,
    }))
}

/// How saving a report went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SubmitOutcome {
    /// The protected API stored it.
    Saved { characters: usize },
    /// The session has ended (or cannot be renewed): sign in again, the draft is kept.
    SessionEnded { reason: ReauthReason },
    /// The provider or the API could not be reached; nothing was lost, try again.
    Unavailable { detail: String },
    /// The API refused the report itself.
    Rejected { detail: String },
}

/// Saves the long form through the protected API, as the signed-in user. The server renews the
/// access token first if it is about to expire, and once more if the API answers 401.
///
/// `subject` is the user the page was showing. On a shared browser, a tab left open after its
/// user's session ended could otherwise save that user's text as whoever signed in since: a
/// report from a page of another user is refused as from a session that has ended.
#[server(endpoint = "submit_form", input = Json)]
pub async fn submit_form(report: Report, subject: String) -> Result<SubmitOutcome, ServerFnError> {
    let signed_in_as = session_view().and_then(|view| view.info.subject);
    if signed_in_as.as_deref() != Some(subject.as_str()) {
        if signed_in_as.is_some() {
            tracing::warn!("a report from a page of another user was refused");
        }
        return Ok(SubmitOutcome::SessionEnded { reason: ReauthReason::SignedOut });
    }
    let backend = super::backend::use_backend()?;
    let parts = use_context::<http::request::Parts>().ok_or_else(|| ServerFnError::new("no request"))?;
    Ok(backend.submit_report(&parts, report).await)
}

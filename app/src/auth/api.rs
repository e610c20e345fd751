//! Server functions over the session. They read the [`SessionView`] that the server attached
//! to the request; on the client they are plain HTTP calls.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::session::SessionView;
use super::session::{IdTokenClaims, SessionInfo};

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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormReceipt {
    pub characters: usize,
}

/// Accepts the long form from a signed-in user. The text is only counted: keeping drafts safe
/// across renewals and sign-ins is the client's job, and storing reports is not this demo's.
#[server]
pub async fn submit_form(
    title: String,
    summary: String,
    details: String,
    notes: String,
) -> Result<FormReceipt, ServerFnError> {
    let Some(view) = session_view() else {
        return Err(ServerFnError::new("your session has ended; sign in again to submit"));
    };
    let characters = [&title, &summary, &details, &notes].iter().map(|s| s.chars().count()).sum();
    tracing::info!(sub = view.info.subject.as_deref().unwrap_or_default(), characters, "form submitted");
    Ok(FormReceipt { characters })
}

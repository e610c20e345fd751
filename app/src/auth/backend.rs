//! The seam between the server functions, which live in this shared crate, and the server that
//! holds the tokens. The server provides an [`AuthBackend`] as context; the functions here only
//! pass the request along and never see a token.

use std::{future::Future, pin::Pin, sync::Arc};

use leptos::prelude::*;

use super::{
    api::{Report, SubmitOutcome},
    refresh::RefreshOutcome,
};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the server does for the server functions. Each method gets the request, whose
/// extensions carry the session.
pub trait AuthBackend: Send + Sync + 'static {
    /// Renews the request's session, or joins the renewal of it already in flight.
    fn renew(&self, request: &http::request::Parts) -> BoxFuture<RefreshOutcome>;

    /// Saves `report` through the protected API with the session's access token, renewed first
    /// if it is about to expire.
    fn submit_report(&self, request: &http::request::Parts, report: Report) -> BoxFuture<SubmitOutcome>;
}

/// How the server provides the backend to server functions (`provide_context`).
pub type SharedBackend = Arc<dyn AuthBackend>;

pub(crate) fn use_backend() -> Result<SharedBackend, ServerFnError> {
    use_context::<SharedBackend>().ok_or_else(|| ServerFnError::new("the auth backend is not configured"))
}

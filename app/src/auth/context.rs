//! The client auth context: one session resource shared by every page. Renewal scheduling
//! will hang off it.

use leptos::prelude::*;

use super::{api::get_session, session::SessionInfo};

#[derive(Clone, Copy)]
pub struct AuthContext {
    /// The session as the server last described it.
    pub session: Resource<Result<SessionInfo, ServerFnError>>,
}

pub fn provide_auth_context() {
    let session = Resource::new(|| (), |_| get_session());
    provide_context(AuthContext { session });
}

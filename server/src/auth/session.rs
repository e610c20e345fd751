//! The session as the browser may know it: `GET /auth/session`, and the [`SessionView`] attached
//! to every request that the Leptos app renders or answers.

use app::auth::{SessionInfo, SessionView};
use axum::{
    extract::Request,
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use tower_sessions::Session;

use super::record;
use crate::error::AuthError;

pub async fn session(session: Session) -> Result<impl IntoResponse, AuthError> {
    let info = record::authenticated(&session).await?.map(|s| s.info()).unwrap_or_default();
    Ok(([(header::CACHE_CONTROL, "no-store")], Json::<SessionInfo>(info)))
}

/// Middleware: puts the signed-in user's [`SessionView`] into the request's extensions, where
/// the app's server functions find it. The app never sees the tokens.
pub async fn attach_session_view(session: Session, mut request: Request, next: Next) -> Response {
    match record::authenticated(&session).await {
        Ok(Some(authenticated)) => {
            request.extensions_mut().insert::<SessionView>(authenticated.view());
        }
        Ok(None) => {}
        Err(error) => tracing::error!(%error, "could not read the session"),
    }
    next.run(request).await
}

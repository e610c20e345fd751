//! The session as the browser may know it: `GET /auth/session`, and the [`SessionView`] attached
//! to every request that the Leptos app renders or answers.

use app::auth::{SessionInfo, SessionView};
use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use tower_sessions::Session;

use super::record;
use crate::{error::AuthError, unix_now, AppState};

pub async fn session(State(state): State<AppState>, session: Session) -> Result<impl IntoResponse, AuthError> {
    let info = record::authenticated(&session, &state.tokens)
        .await?
        .map(|(_, authenticated)| authenticated.info(unix_now(), state.config.renewal_policy()))
        .unwrap_or_default();
    Ok(([(header::CACHE_CONTROL, "no-store")], Json::<SessionInfo>(info)))
}

/// Middleware: puts the signed-in user's [`SessionView`], and the key of the session for the
/// server functions that renew it or use its tokens, into the request's extensions. The app
/// never sees the tokens.
pub async fn attach_session_view(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    match record::authenticated(&session, &state.tokens).await {
        Ok(Some((key, authenticated))) => {
            let view = authenticated.view(unix_now(), state.config.renewal_policy());
            request.extensions_mut().insert::<SessionView>(view);
            request.extensions_mut().insert(key);
        }
        Ok(None) => {}
        Err(error) => tracing::error!(%error, "could not read the session"),
    }
    next.run(request).await
}

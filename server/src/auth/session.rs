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
        .map(|(_, stored)| stored.session.info(unix_now(), &state.browser))
        .unwrap_or_default();
    Ok(([(header::CACHE_CONTROL, "no-store")], Json::<SessionInfo>(info)))
}

/// Middleware: puts the signed-in user's [`SessionView`], and the key of the session for the
/// server functions that renew it or use its tokens, into the request's extensions. The app
/// never sees the tokens. If the session store cannot be read, the answer is a 503 with
/// `Retry-After`, never a page that wrongly says "signed out" and sends the user to sign in.
pub async fn attach_session_view(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let now = unix_now();
    let found = match record::authenticated(&session, &state.tokens).await {
        Ok(Some(found)) => {
            record::keep_alive(&session, &state.tokens, (&found.0, &found.1), now).await.map(|()| Some(found))
        }
        other => other,
    };
    match found {
        Ok(Some((key, stored))) => {
            let view = stored.session.view(now, &state.browser);
            request.extensions_mut().insert::<SessionView>(view);
            request.extensions_mut().insert(key);
        }
        Ok(None) => {}
        Err(error) => return error.into_response(),
    }
    next.run(request).await
}

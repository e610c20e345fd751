//! `GET /auth/events`: a push channel (Server-Sent Events) through which every open tab of a
//! signed-in session learns at once that the session has ended: a back-channel logout, a
//! sign-out in another browser tab, a session the server had to end. With Redis as the store,
//! the news crosses instances through Redis pub/sub, so a tab connected to one instance hears of
//! a logout handled by another. An instance whose subscription was lost for a while may have
//! missed news: when it is back, every stream it serves is closed, and each browser reconnects
//! and is told afresh from the store.
//!
//! The stream sends `ready` when it is open, then `session-ended` (once, then it closes) when the
//! session this browser holds ends; a comment every 15 s keeps proxies from closing it. A
//! browser whose session has already ended is told so at once. When the same user signs in again
//! in this browser, the session goes on under a new key: the streams watching the old one close
//! without a word, and each browser reconnects to watch the new one.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast;
use tower_sessions::Session;

use super::{record, token_store::SessionKey};
use crate::{store::Kv, AppState};

const CHANNEL: &str = "session-ended";
/// On the local bus, in place of a session's id: "news may have been missed" (never a
/// [`SessionKey::public_id`], which is never empty).
const MISSED: &str = "";
/// On the bus, before a session's id: that session goes on under another key (see the module).
const MOVED: &str = "moved:";

/// The bus of ended sessions, named by [`SessionKey::public_id`].
pub struct SessionEvents {
    local: broadcast::Sender<String>,
    kv: Arc<Kv>,
}

impl SessionEvents {
    pub fn new(kv: Arc<Kv>) -> Arc<Self> {
        let (local, _) = broadcast::channel(1024);
        if let Some(redis) = kv.redis() {
            let local = local.clone();
            let resumed = local.clone();
            redis.subscribe(
                CHANNEL,
                move |id| {
                    let _ = local.send(id);
                },
                // Every stream closes, so that its browser reconnects and checks the store.
                move || {
                    let _ = resumed.send(MISSED.to_owned());
                },
            );
        }
        Arc::new(Self { local, kv })
    }

    /// Tells every tab of `key`'s session, on every instance, that it has ended.
    pub async fn ended(&self, key: &SessionKey) {
        self.publish(key.public_id()).await;
    }

    /// Tells every tab of `key`'s session, on every instance, to watch the session its browser
    /// holds now: the same user signed in again, under a new key.
    pub async fn moved(&self, key: &SessionKey) {
        self.publish(format!("{MOVED}{}", key.public_id())).await;
    }

    async fn publish(&self, message: String) {
        let _ = self.local.send(message.clone());
        if let Some(redis) = self.kv.redis() {
            if let Err(error) = redis.publish(CHANNEL, &message).await {
                tracing::warn!(%error, "could not tell the other instances of a session's end or move");
            }
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.local.subscribe()
    }
}

pub async fn events(State(state): State<AppState>, session: Session) -> Response {
    let key = match record::session_key(&session).await {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    // Listening first: a logout between the read below and a later subscription would be missed,
    // and the stream would stay open for a session that has ended.
    let ended = state.events.subscribe();
    let still_signed_in = match &key {
        Some(key) => match state.tokens.get(key).await {
            Ok(found) => found.is_some(),
            Err(error) => return crate::error::AuthError::from(error).into_response(),
        },
        None => false,
    };
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = match (key, still_signed_in) {
        (Some(key), true) => Box::pin(watch(ended, key.public_id())),
        _ => Box::pin(stream::iter([Ok(Event::default().event("session-ended").data("signed_out"))])),
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// `ready`, then `session-ended` when `id` goes by on the bus, and the end of the stream.
fn watch(receiver: broadcast::Receiver<String>, id: String) -> impl Stream<Item = Result<Event, Infallible>> {
    let ready = stream::once(async { Ok(Event::default().event("ready").data("")) });
    let ended = stream::unfold(Some((receiver, id)), |state| async move {
        let (mut receiver, id) = state?;
        loop {
            match receiver.recv().await {
                Ok(ended) if ended == id => {
                    return Some((Ok(Event::default().event("session-ended").data("ended_elsewhere")), None));
                }
                // Fell behind the bus, or the bus missed news (a Redis subscription lost for a
                // while): close, and the browser's EventSource reconnects, which checks the store
                // afresh.
                Ok(missed) if missed == MISSED => return None,
                Ok(moved) if moved.strip_prefix(MOVED) == Some(id.as_str()) => return None,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    ready.chain(ended)
}

//! The backend-for-frontend: the server runs the code flow, keeps the tokens and renews them;
//! the browser holds only an HttpOnly session cookie.
//!
//! The routes are the public contract (register `/auth/callback` at the provider):
//! - `GET /auth/login?return_to=/path` ([`login`]): starts the code flow.
//! - `GET /auth/callback` ([`callback`]): the redirect URI; exchanges the code.
//! - `GET /auth/session` ([`session`]): the session as JSON, never a token.
//! - `POST /auth/refresh` ([`refresh`], a server function of the app): renews, single-flight.
//! - `POST /auth/logout` ([`logout`]): revokes the tokens, ends the session here and sends the
//!   browser to the provider's end-session endpoint (RP-initiated logout).
//! - `GET /auth/events` ([`events`]): Server-Sent Events: every tab hears at once that its
//!   session ended.
//! - `POST /auth/backchannel-logout` ([`backchannel_logout`], [`logout_token`]): the provider
//!   ends sessions server to server (register it at the provider).
//! - `GET /auth/silent-renew`, `GET /auth/silent-callback` ([`silent_renew`]): renewal through
//!   the provider's session in a hidden iframe (register the silent callback too).
//!
//! Behind them: [`oidc_client`] (the provider, through `openidconnect`), [`jwks`] (its keys,
//! fetched again when they rotate), [`record`] and [`token_store`] (what is kept, and where),
//! [`backend`] (what the app's server functions ask of the server).

pub mod backchannel_logout;
pub mod backend;
pub mod callback;
pub mod events;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod logout_token;
pub mod oidc_client;
pub mod record;
pub mod refresh;
pub mod return_to;
pub mod session;
pub mod silent_renew;
pub mod token_store;

use axum::{
    routing::{get, post},
    Router,
};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login::login))
        .route("/auth/callback", get(callback::callback))
        .route("/auth/session", get(session::session))
        .route("/auth/logout", post(logout::logout))
        .route("/auth/silent-renew", get(silent_renew::start))
        .route("/auth/silent-callback", get(silent_renew::callback))
        .route("/auth/events", get(events::events))
}

/// The routes the provider calls, server to server.
pub fn provider_routes() -> Router<AppState> {
    Router::new().route("/auth/backchannel-logout", post(backchannel_logout::backchannel_logout))
}

//! The protected API: a resource server beside the app, which accepts a request only with a
//! valid access token (RFC 6750 bearer, RFC 9068 JWT), as any API of the user's would. Saving
//! the long form goes through it.
//!
//! - `POST /api/reports` ([`reports`]): stores an incident report for the token's subject.
//! - [`access_token`]: the validation, against whichever provider is configured.
//!
//! It is not behind the browser session or its same-origin check: a bearer token is not sent by
//! a browser on its own, so it cannot be forged cross-site.

pub mod access_token;
pub mod reports;

use std::sync::Arc;

use axum::{routing::post, Router};

pub use access_token::{AccessTokenValidator, LoggedOut};

pub fn router(validator: Arc<AccessTokenValidator>) -> Router {
    Router::new().route("/api/reports", post(reports::create)).with_state(validator)
}

//! The session as both sides see it. Tokens never appear here: the server holds them and
//! attaches a [`SessionView`] to each request it renders.

mod api;
mod context;
mod session;

pub use api::{get_id_token_claims, get_session, submit_form, FormReceipt, SubmitForm};
pub use context::{provide_auth_context, AuthContext};
pub use session::{login_url, IdTokenClaims, SessionInfo, SessionView};

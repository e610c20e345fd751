//! Reusable view pieces.

mod require_sign_in;
mod session_badge;

pub use require_sign_in::RequireSignIn;
pub use session_badge::SessionBadge;

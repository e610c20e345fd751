//! Reusable view pieces.

mod event_log;
mod require_sign_in;
mod session_badge;
mod session_notice;
mod session_panel;
mod sign_out;

pub use event_log::EventLog;
pub use require_sign_in::RequireSignIn;
pub use session_badge::SessionBadge;
pub use session_notice::SessionNotice;
pub use session_panel::SessionPanel;
pub use sign_out::SignOutButton;

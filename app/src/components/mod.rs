//! Reusable view pieces.

mod countdown;
mod event_log;
mod fault_panel;
mod renewal_timeline;
mod require_sign_in;
mod session_badge;
mod session_notice;
mod session_panel;
mod sign_out;

pub use countdown::{seconds_left, use_now, TokenCountdown};
pub use event_log::EventLog;
pub use fault_panel::FaultPanel;
pub use renewal_timeline::{marks, Mark, RenewalTimeline, WINDOW_MINUTES as TIMELINE_MINUTES};
pub use require_sign_in::RequireSignIn;
pub use session_badge::SessionBadge;
pub use session_notice::SessionNotice;
pub use session_panel::SessionPanel;
pub use sign_out::SignOutButton;

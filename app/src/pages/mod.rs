//! One file per page.

mod form;
mod home;
mod not_found;
mod profile;
mod session;

pub use form::FormPage;
pub use home::HomePage;
pub use not_found::NotFound;
pub use profile::ProfilePage;
pub use session::SessionPage;

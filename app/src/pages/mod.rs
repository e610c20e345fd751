//! One file per page.

mod form;
mod home;
mod not_found;
mod profile;

pub use form::FormPage;
pub use home::HomePage;
pub use not_found::NotFound;
pub use profile::ProfilePage;

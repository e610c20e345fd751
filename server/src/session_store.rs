//! The session store and its cookie. In memory for now: a persistent store replaces
//! [`Store`] here and nowhere else, because everything else speaks `tower_sessions::Session`.

use tower_sessions::{
    cookie::{time::Duration, SameSite},
    Expiry, MemoryStore, SessionManagerLayer,
};

use crate::config::Config;

pub type Store = MemoryStore;

/// Sessions end after this long without a request.
const IDLE_TIMEOUT: Duration = Duration::hours(8);

/// The session cookie: HttpOnly always; `SameSite=Lax` so that it comes along on the top-level
/// navigation back from the provider; `Secure` and the `__Host-` prefix (which pins it to this
/// host and path `/`) when the app is served over https.
pub fn layer(config: &Config) -> SessionManagerLayer<Store> {
    let name = if config.secure_cookies() { "__Host-session" } else { "session" };
    SessionManagerLayer::new(Store::default())
        .with_name(name)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(IDLE_TIMEOUT))
}

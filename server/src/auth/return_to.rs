//! Where to go after sign-in: only ever a path on this site, so `/auth/login?return_to=` cannot
//! be turned into an open redirector (RFC 9700 §4.11).

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::AuthError;

const MAX_LEN: usize = 2048;

/// A same-origin path (with optional query), checked once, here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnTo(String);

impl ReturnTo {
    pub fn home() -> Self {
        Self("/".into())
    }

    /// Accepts `/path?query`; refuses absolute and scheme-relative URLs (`https://x`, `//x`),
    /// backslashes (`/\x`, which browsers read as `//x`), control characters (which browsers
    /// strip, so `/\t/x` becomes `//x`), fragments and anything that resolves elsewhere.
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let refuse = || AuthError::InvalidReturnTo;
        if raw.len() > MAX_LEN || !is_local_path(raw) {
            return Err(refuse());
        }
        // Resolved against a placeholder origin it must stay on that origin. What is kept is the
        // resolved form, so it is checked again: dot segments can turn an allowed path into a
        // scheme-relative one (`/.//evil.example` resolves to `//evil.example`).
        let base = Url::parse("http://app.invalid/").expect("valid base");
        let resolved = base.join(raw).map_err(|_| refuse())?;
        let path_and_query = match resolved.query() {
            Some(query) => format!("{}?{query}", resolved.path()),
            None => resolved.path().to_owned(),
        };
        if resolved.origin() != base.origin() || !is_local_path(&path_and_query) {
            return Err(refuse());
        }
        Ok(Self(path_and_query))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A path on this site as a browser reads it: not scheme-relative (`//x`), no backslash (`/\x`
/// reads as `//x`), no control character (browsers strip them, so `/\t/x` reads as `//x`), no
/// fragment.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.contains('#')
        && !path.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::ReturnTo;

    #[test]
    fn same_origin_paths_are_kept() {
        for path in ["/", "/profile", "/form?tab=2", "/a/b/../c"] {
            assert!(ReturnTo::parse(path).is_ok(), "{path}");
        }
        assert_eq!(ReturnTo::parse("/a/b/../c").unwrap().as_str(), "/a/c");
    }

    #[test]
    fn anything_that_could_leave_the_site_is_refused() {
        for path in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/#frag",
            "/.//evil.example",
            "/a/..//evil.example",
            "/%2e//evil.example",
            "/%2E%2E//evil.example",
        ] {
            assert!(ReturnTo::parse(path).is_err(), "{path:?}");
        }
    }
}

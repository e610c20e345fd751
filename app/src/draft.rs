//! The long form's draft, kept in this browser's storage so that nothing typed is lost to a
//! renewal, a failed renewal, a reload or a full sign-in redirect.
//!
//! A draft is the user's own text, never a credential. It is stored per subject (the ID token's
//! `sub`), so another user signing in on the same browser never sees it, and it is removed once
//! the report is saved or the user chooses to drop it at sign-out.

use crate::report::Report;

#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn storage_key(subject: &str) -> String {
    format!("oidc-demo.draft.{subject}")
}

/// Whether a `storage` event's key (another tab wrote or removed a draft) is `subject`'s draft.
pub fn is_draft_of(subject: &str, key: Option<&str>) -> bool {
    key == Some(storage_key(subject).as_str())
}

#[cfg(feature = "hydrate")]
mod imp {
    use gloo_storage::{LocalStorage, Storage};

    use super::{storage_key, Report};

    pub fn load(subject: &str) -> Option<Report> {
        LocalStorage::get(storage_key(subject)).ok()
    }

    pub fn save(subject: &str, draft: &Report) {
        if draft.is_empty() {
            LocalStorage::delete(storage_key(subject));
        } else if let Err(error) = LocalStorage::set(storage_key(subject), draft) {
            leptos::logging::warn!("the draft could not be saved: {error}");
        }
    }

    pub fn clear(subject: &str) {
        LocalStorage::delete(storage_key(subject));
    }
}

/// On the server there is no browser storage: nothing to load, nowhere to save.
#[cfg(not(feature = "hydrate"))]
mod imp {
    use super::Report;

    pub fn load(_subject: &str) -> Option<Report> {
        None
    }

    pub fn save(_subject: &str, _draft: &Report) {}

    pub fn clear(_subject: &str) {}
}

pub use imp::{clear, load, save};

/// Whether `subject` has a draft with any text in it.
pub fn exists(subject: &str) -> bool {
    load(subject).is_some_and(|draft| !draft.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn drafts_are_kept_apart_by_subject() {
        assert_ne!(super::storage_key("alice-sub"), super::storage_key("bob-sub"));
        assert!(super::is_draft_of("alice-sub", Some(&super::storage_key("alice-sub"))));
        assert!(!super::is_draft_of("alice-sub", Some(&super::storage_key("bob-sub"))));
        assert!(!super::is_draft_of("alice-sub", None));
    }
}

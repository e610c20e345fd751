//! The long form's draft, kept in this browser's storage so that nothing typed is lost to a
//! renewal, a failed renewal, a reload or a full sign-in redirect.
//!
//! A draft is the user's own text, never a credential. It is stored per subject (the ID token's
//! `sub`), so another user signing in on the same browser never sees it, and it is removed once
//! the report is saved or the user chooses to drop it at sign-out.

use crate::report::{FieldKind, Report, FIELDS};

#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn storage_key(subject: &str) -> String {
    format!("oidc-demo.draft.{subject}")
}

/// Whether a `storage` event's key (another tab wrote or removed a draft) is `subject`'s draft.
pub fn is_draft_of(subject: &str, key: Option<&str>) -> bool {
    key == Some(storage_key(subject).as_str())
}

/// The browser may have no storage for this page (turned off, or refused to this origin), or none
/// left (its quota): every access can fail, and none of it may stop the page.
#[cfg(feature = "hydrate")]
mod imp {
    use super::{storage_key, Report};

    fn storage() -> Option<web_sys::Storage> {
        leptos::prelude::window().local_storage().ok().flatten()
    }

    pub fn load(subject: &str) -> Option<Report> {
        let stored = storage()?.get_item(&storage_key(subject)).ok()??;
        serde_json::from_str(&stored).ok()
    }

    /// Whether the draft is now in storage: the user is told when it is not.
    pub fn save(subject: &str, draft: &Report) -> bool {
        let Some(storage) = storage() else {
            leptos::logging::warn!("the draft could not be saved: this page has no storage");
            return false;
        };
        if draft.is_empty() {
            return storage.remove_item(&storage_key(subject)).is_ok();
        }
        let saved = serde_json::to_string(draft).map(|json| storage.set_item(&storage_key(subject), &json));
        if let Ok(Err(error)) = &saved {
            leptos::logging::warn!("the draft could not be saved: {error:?}");
        }
        matches!(saved, Ok(Ok(())))
    }

    pub fn clear(subject: &str) {
        if let Some(storage) = storage() {
            let _ = storage.remove_item(&storage_key(subject));
        }
    }
}

/// On the server there is no browser storage: nothing to load, nowhere to save.
#[cfg(not(feature = "hydrate"))]
mod imp {
    use super::Report;

    pub fn load(_subject: &str) -> Option<Report> {
        None
    }

    pub fn save(_subject: &str, _draft: &Report) -> bool {
        false
    }

    pub fn clear(_subject: &str) {}
}

pub use imp::{clear, load, save};

/// The draft to show in a form that was typed into before the page came alive (the server's form
/// takes keystrokes before the wasm has loaded): nothing of either is lost. A field typed into
/// keeps that text after the draft's own, on a new line (a space in a one-line field).
pub fn with_typed(mut draft: Report, typed: Report) -> Report {
    for (name, text) in typed.fields.into_iter().filter(|(_, text)| !text.is_empty()) {
        let one_line = FIELDS.iter().any(|f| f.name == name && f.kind == FieldKind::Line);
        let merged = match draft.fields.remove(&name).filter(|saved| !saved.is_empty() && *saved != text) {
            Some(saved) => format!("{saved}{}{text}", if one_line { " " } else { "\n" }),
            None => text,
        };
        draft.fields.insert(name, merged);
    }
    draft
}

/// Whether `subject` has a draft with any text in it.
pub fn exists(subject: &str) -> bool {
    load(subject).is_some_and(|draft| !draft.is_empty())
}

#[cfg(test)]
mod tests {
    use crate::report::Report;

    fn report(fields: &[(&str, &str)]) -> Report {
        Report { fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn text_typed_before_the_page_came_alive_is_kept_beside_the_draft() {
        let draft = report(&[("title", "Lift"), ("summary", "Stuck"), ("details", "")]);
        let typed = report(&[("title", "again"), ("summary", ""), ("details", "Two inside")]);
        assert_eq!(
            super::with_typed(draft.clone(), typed),
            report(&[("title", "Lift again"), ("summary", "Stuck"), ("details", "Two inside")])
        );
        let multi = report(&[("summary", "More")]);
        assert_eq!(super::with_typed(draft.clone(), multi).fields["summary"], "Stuck\nMore");
        assert_eq!(super::with_typed(draft.clone(), report(&[("title", "")])), draft, "nothing typed");
        assert_eq!(super::with_typed(draft.clone(), report(&[("title", "Lift")])), draft, "the same text once");
    }

    #[test]
    fn drafts_are_kept_apart_by_subject() {
        assert_ne!(super::storage_key("alice-sub"), super::storage_key("bob-sub"));
        assert!(super::is_draft_of("alice-sub", Some(&super::storage_key("alice-sub"))));
        assert!(!super::is_draft_of("alice-sub", Some(&super::storage_key("bob-sub"))));
        assert!(!super::is_draft_of("alice-sub", None));
    }
}

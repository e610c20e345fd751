//! The incident report that the long form fills in, and what the protected API accepts of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a field is drawn: a one-line input, or a text area of so many rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Line,
    Text { rows: u32 },
}

#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
}

/// The report's fields, in the order the form shows them.
pub const FIELDS: &[Field] = &[
    Field { name: "title", label: "Title", kind: FieldKind::Line },
    Field { name: "location", label: "Where it happened", kind: FieldKind::Line },
    Field { name: "reported_by", label: "Reported by", kind: FieldKind::Line },
    Field { name: "summary", label: "Summary", kind: FieldKind::Text { rows: 6 } },
    Field { name: "details", label: "What happened, in detail", kind: FieldKind::Text { rows: 16 } },
    Field { name: "impact", label: "Impact", kind: FieldKind::Text { rows: 6 } },
    Field { name: "actions", label: "Actions taken", kind: FieldKind::Text { rows: 8 } },
    Field { name: "follow_up", label: "Follow-up", kind: FieldKind::Text { rows: 6 } },
    Field { name: "notes", label: "Notes", kind: FieldKind::Text { rows: 8 } },
];

/// The most a single field may hold: three hours of fast typing fits many times over.
pub const MAX_FIELD_CHARS: usize = 200_000;

/// A filled-in report: field name to text. Also the shape of a draft.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub fields: BTreeMap<String, String>,
}

impl Report {
    pub fn characters(&self) -> usize {
        self.fields.values().map(|v| v.chars().count()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.values().all(|v| v.is_empty())
    }

    /// Why the protected API refuses this report, if it does: unknown fields or too much text.
    pub fn problem(&self) -> Option<String> {
        if let Some(name) = self.fields.keys().find(|name| !FIELDS.iter().any(|f| f.name == name.as_str())) {
            return Some(format!("unknown field {name:?}"));
        }
        self.fields
            .iter()
            .find(|(_, text)| text.chars().count() > MAX_FIELD_CHARS)
            .map(|(name, _)| format!("{name} is longer than {MAX_FIELD_CHARS} characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_counts_characters_and_refuses_unknown_or_huge_fields() {
        let mut report = Report::default();
        report.fields.insert("title".into(), "Café".into());
        report.fields.insert("notes".into(), "ok".into());
        assert_eq!(report.characters(), 6);
        assert_eq!(report.problem(), None);

        report.fields.insert("admin".into(), "x".into());
        assert!(report.problem().unwrap().contains("admin"));
        report.fields.remove("admin");
        report.fields.insert("details".into(), "x".repeat(MAX_FIELD_CHARS + 1));
        assert!(report.problem().unwrap().contains("details"));
    }
}

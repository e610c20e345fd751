//! A session's journal, which the dashboard draws: when the user signed in, how often the refresh
//! token rotated, until when the provider lets it be used, and the latest renewals, each with its
//! path and outcome. The server writes it with the session, because only the server sees every
//! renewal, whichever tab or request caused it. It holds no token.

use serde::{Deserialize, Serialize};

/// The most entries a journal keeps; older ones drop off the front.
pub const MAX_JOURNAL_ENTRIES: usize = 120;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionJournal {
    /// When the user signed in, in seconds since the Unix epoch (the server's clock).
    pub signed_in_at: u64,
    /// Rotations of the refresh token since it was issued (at sign-in, or by a silent renew
    /// that brought a new one).
    pub rotations: u32,
    /// When the provider stops accepting the refresh token, if it says (`refresh_expires_in` in
    /// the token response, as Keycloak and the embedded provider send it; most providers do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_at: Option<u64>,
    /// Oldest first, at most [`MAX_JOURNAL_ENTRIES`].
    pub entries: Vec<JournalEntry>,
}

impl SessionJournal {
    /// A journal that starts at a sign-in (or at a silent renew that replaced the tokens).
    pub fn starting(signed_in_at: u64, refresh_expires_at: Option<u64>) -> Self {
        Self { signed_in_at, rotations: 0, refresh_expires_at, entries: Vec::new() }
    }

    pub fn record(&mut self, entry: JournalEntry) {
        self.entries.push(entry);
        if self.entries.len() > MAX_JOURNAL_ENTRIES {
            let extra = self.entries.len() - MAX_JOURNAL_ENTRIES;
            self.entries.drain(..extra);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Milliseconds since the Unix epoch (the server's clock).
    pub at_ms: u64,
    pub step: JournalStep,
    pub outcome: JournalOutcome,
    /// How long the token request took, when the server made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
    /// What happened, in words: an error code, a fault's name. Never a token.
    #[serde(default)]
    pub detail: String,
}

/// What the entry is about: the three ways a session gets tokens, and the faults injected from
/// the dashboard's fault panel (development only), so that cause and effect line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalStep {
    Interactive,
    RefreshToken,
    Iframe,
    Fault,
}

impl JournalStep {
    pub fn label(self) -> &'static str {
        match self {
            Self::Interactive => "interactive sign-in",
            Self::RefreshToken => "refresh token",
            Self::Iframe => "iframe",
            Self::Fault => "fault",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalOutcome {
    /// New tokens (or, for a fault, it was injected).
    Ok,
    /// Failed for now; the session was kept.
    Transient,
    /// Refused: the path cannot renew this session any more.
    Refused,
}

impl JournalOutcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Transient => "transient",
            Self::Refused => "refused",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: u64) -> JournalEntry {
        JournalEntry {
            at_ms,
            step: JournalStep::RefreshToken,
            outcome: JournalOutcome::Ok,
            took_ms: None,
            detail: "".into(),
        }
    }

    #[test]
    fn a_journal_keeps_the_latest_entries() {
        let mut journal = SessionJournal::starting(1, None);
        for at in 0..(MAX_JOURNAL_ENTRIES as u64 + 5) {
            journal.record(entry(at));
        }
        assert_eq!(journal.entries.len(), MAX_JOURNAL_ENTRIES);
        assert_eq!(journal.entries[0].at_ms, 5);
    }
}

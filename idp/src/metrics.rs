//! Counters since start, read through the admin API: atomics, so that counting costs the hot
//! path next to nothing.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

use serde_json::{json, Map, Value};

use crate::backchannel;

/// Distinct unsupported `grant_type` values counted by name; any further ones are counted
/// together, so that a client cannot grow this map without bound.
const MAX_OTHER_GRANT_TYPES: usize = 32;
const OTHER_GRANT_TYPES: &str = "(other)";

/// How `/authorize` requests are counted by their `prompt` (OIDC Core §3.1.2.1): `default`
/// without one, the values as the provider orders them (`login consent`), and `invalid` for a
/// value it refuses. A fixed set, so that no client can grow it; `none` counts silent requests,
/// an iframe's renewals among them.
pub const AUTHORIZE_PROMPTS: [&str; 6] = ["default", "none", "login", "consent", "login consent", "invalid"];

#[derive(Debug, Default)]
pub struct Metrics {
    authorization_code: AtomicU64,
    refresh_token: AtomicU64,
    other_grant_types: Mutex<BTreeMap<String, u64>>,
    pub refresh_tokens_reused: AtomicU64,
    pub families_revoked: AtomicU64,
    pub refresh_grace_reissues: AtomicU64,
    pub jwks_requests: AtomicU64,
    authorize_requests: [AtomicU64; AUTHORIZE_PROMPTS.len()],
    /// Shared with the tasks that deliver logout tokens, which outlive the request.
    pub backchannel_logouts: std::sync::Arc<backchannel::Counters>,
}

impl Metrics {
    pub fn increment(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a token request by its `grant_type`, whether or not it is then granted.
    pub fn count_token_request(&self, grant_type: &str) {
        match grant_type {
            "authorization_code" => Self::increment(&self.authorization_code),
            "refresh_token" => Self::increment(&self.refresh_token),
            other => {
                let mut others = self.other_grant_types.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let name = if others.contains_key(other) || others.len() < MAX_OTHER_GRANT_TYPES {
                    other
                } else {
                    OTHER_GRANT_TYPES
                };
                *others.entry(name.to_owned()).or_default() += 1;
            }
        }
    }

    /// Counts an authorization request under `prompt`, one of [`AUTHORIZE_PROMPTS`].
    pub fn count_authorize_request(&self, prompt: &str) {
        let index = AUTHORIZE_PROMPTS.iter().position(|p| *p == prompt).unwrap_or(AUTHORIZE_PROMPTS.len() - 1);
        Self::increment(&self.authorize_requests[index]);
    }

    /// The JSON of `GET /admin/metrics`.
    pub fn snapshot(&self) -> Value {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut token_requests = Map::new();
        let others = self.other_grant_types.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (grant_type, count) in others.iter() {
            token_requests.insert(grant_type.clone(), (*count).into());
        }
        token_requests.insert("authorization_code".into(), load(&self.authorization_code).into());
        token_requests.insert("refresh_token".into(), load(&self.refresh_token).into());
        let authorize_requests: Map<String, Value> = AUTHORIZE_PROMPTS
            .iter()
            .zip(&self.authorize_requests)
            .map(|(prompt, counter)| ((*prompt).to_owned(), load(counter).into()))
            .collect();
        json!({
            "token_requests": token_requests,
            "authorize_requests": authorize_requests,
            "refresh_tokens_reused": load(&self.refresh_tokens_reused),
            "families_revoked": load(&self.families_revoked),
            "refresh_grace_reissues": load(&self.refresh_grace_reissues),
            "jwks_requests": load(&self.jwks_requests),
            "backchannel_logouts": self.backchannel_logouts.snapshot(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_grant_types_are_counted_by_name_up_to_a_bound() {
        let metrics = Metrics::default();
        metrics.count_token_request("refresh_token");
        metrics.count_token_request("password");
        metrics.count_token_request("password");
        for i in 0..100 {
            metrics.count_token_request(&format!("made-up-{i}"));
        }
        let snapshot = metrics.snapshot();
        let requests = snapshot["token_requests"].as_object().unwrap();
        assert_eq!(requests["refresh_token"], 1);
        assert_eq!(requests["authorization_code"], 0);
        assert_eq!(requests["password"], 2);
        assert_eq!(requests.len(), 2 + MAX_OTHER_GRANT_TYPES + 1);
        assert_eq!(requests[OTHER_GRANT_TYPES], 100 - (MAX_OTHER_GRANT_TYPES as u64 - 1));
    }
}

//! The decisions of renewal, apart from timers and the DOM so that they can be tested natively:
//! when a renewal is due, which path it takes, how long to back off after a transient failure,
//! and when a timer has fired so late that the machine must have slept.

use super::{
    refresh::ReauthReason,
    session::{RenewStrategy, RenewalPolicy, SessionInfo},
};

/// Transient failures of the iframe in a row after which it is not tried again before the access
/// token expires: a bound, never a loop.
pub const MAX_IFRAME_FAILURES: u32 = 3;

/// The two ways to renew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenewalPath {
    /// `POST /auth/refresh`: the server uses the refresh token.
    RefreshToken,
    /// A hidden iframe to the provider with `prompt=none`, finished at `/auth/silent-callback`.
    Iframe,
}

impl RenewalPath {
    pub fn label(self) -> &'static str {
        match self {
            Self::RefreshToken => "refresh token",
            Self::Iframe => "iframe",
        }
    }
}

/// The path a renewal tries first.
pub fn first_path(strategy: RenewStrategy, has_refresh_token: bool) -> RenewalPath {
    match strategy {
        RenewStrategy::Iframe => RenewalPath::Iframe,
        RenewStrategy::RefreshToken => RenewalPath::RefreshToken,
        RenewStrategy::Auto if has_refresh_token => RenewalPath::RefreshToken,
        RenewStrategy::Auto => RenewalPath::Iframe,
    }
}

/// Whether a refresh the server could not make may still be made through the iframe: the refresh
/// token is gone or refused, but the provider's session may be alive. A session that ended, or
/// whose ID token changed subject, cannot be rescued that way.
pub fn iframe_after_refresh(strategy: RenewStrategy, reason: ReauthReason) -> bool {
    strategy != RenewStrategy::Iframe && matches!(reason, ReauthReason::InvalidGrant | ReauthReason::NoRefreshToken)
}

/// A renewal never starts more than half the access token's lifetime early, so that a lead
/// time longer than a short-lived token cannot turn into a renewal loop.
const MAX_LEAD_FRACTION: f64 = 0.5;
/// Backoff after a transient failure: 1 s, 2 s, 4 s, … capped at 30 s.
const BACKOFF_BASE_MS: f64 = 1_000.0;
const BACKOFF_CAP_MS: f64 = 30_000.0;
/// Pause after a check_session re-check that failed for now: 10 s, 20 s, 40 s, … capped at 5 min.
const RECHECK_PAUSE_BASE_MS: f64 = 10_000.0;
const RECHECK_PAUSE_CAP_MS: f64 = 300_000.0;
/// A timer that fires this much later than asked means the tab was frozen or the machine slept.
pub const LATE_TIMER_MS: f64 = 10_000.0;

/// When to renew an access token that expires `expires_in_secs` after `now_ms`: the policy's
/// lead time ahead of expiry plus up to `jitter_secs` more (`random` in `[0, 1)`), so that many
/// clients signed in together spread out instead of renewing in lockstep.
pub fn renewal_due_ms(now_ms: f64, expires_in_secs: u64, policy: RenewalPolicy, random: f64) -> f64 {
    let lifetime_ms = expires_in_secs as f64 * 1000.0;
    let lead_ms = (policy.before_expiry_secs as f64 + random.clamp(0.0, 1.0) * policy.jitter_secs as f64) * 1000.0;
    now_ms + lifetime_ms - lead_ms.min(lifetime_ms * MAX_LEAD_FRACTION)
}

/// Whether a token with `expires_in_secs` left is fresh enough that nobody needs to renew it
/// yet: it is further from expiry than any client's lead time and jitter.
pub fn is_fresh(expires_in_secs: u64, policy: RenewalPolicy) -> bool {
    expires_in_secs > policy.before_expiry_secs + policy.jitter_secs
}

/// Whether the session read after waiting for the renewal lock needs no renewal from this tab:
/// its access token is newer than the one this tab knew (`known_expires_at`; another tab renewed
/// while this one waited), or fresh. The first matters when the lead time is as long as the
/// token's life (it is then cut to half, see [`renewal_due_ms`]): a token renewed a moment ago
/// is not "fresh" then, and each waiting tab would rotate the refresh token once more.
pub fn renewed_meanwhile(known_expires_at: Option<u64>, session: &SessionInfo, policy: RenewalPolicy) -> bool {
    let newer = matches!(
        (known_expires_at, session.access_token_expires_at),
        (Some(known), Some(now)) if now > known
    );
    newer || session.access_token_expires_in.is_some_and(|left| is_fresh(left, policy))
}

/// How long to wait before retry `attempt` (1, 2, …) after a transient failure: capped
/// exponential backoff with jitter (half fixed, half random), never sooner than the server's
/// `retry_after`.
pub fn retry_delay_ms(attempt: u32, retry_after_secs: u64, random: f64) -> f64 {
    let exponent = attempt.saturating_sub(1).min(16) as i32;
    let backoff = (BACKOFF_BASE_MS * 2f64.powi(exponent)).min(BACKOFF_CAP_MS);
    let jittered = backoff / 2.0 + random.clamp(0.0, 1.0) * backoff / 2.0;
    jittered.max(retry_after_secs as f64 * 1000.0)
}

/// How long check_session keeps quiet after `failures` (1, 2, …) re-checks in a row failed for
/// now (the iframe timed out, the provider or the server erred): each `changed` would otherwise
/// start another re-check every few seconds, in every tab, at a provider already in trouble.
pub fn recheck_pause_ms(failures: u32) -> f64 {
    let exponent = failures.saturating_sub(1).min(16) as i32;
    (RECHECK_PAUSE_BASE_MS * 2f64.powi(exponent)).min(RECHECK_PAUSE_CAP_MS)
}

/// Whether a timer that should have fired after `expected_ms` but fired after `actual_ms` was
/// held up by a frozen tab or a sleeping machine.
pub fn fired_late(expected_ms: f64, actual_ms: f64) -> bool {
    actual_ms > expected_ms + LATE_TIMER_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RenewalPolicy = RenewalPolicy {
        before_expiry_secs: 15,
        jitter_secs: 5,
        strategy: RenewStrategy::Auto,
        silent_renew_timeout_secs: 10,
    };

    #[test]
    fn failed_rechecks_pause_longer_each_time_up_to_five_minutes() {
        let pauses: Vec<f64> = (1..=7).map(recheck_pause_ms).collect();
        assert_eq!(pauses, [10_000.0, 20_000.0, 40_000.0, 80_000.0, 160_000.0, 300_000.0, 300_000.0]);
        assert_eq!(recheck_pause_ms(u32::MAX), 300_000.0);
    }

    #[test]
    fn renewal_is_due_the_lead_time_before_expiry_with_jitter_on_top() {
        assert_eq!(renewal_due_ms(0.0, 60, POLICY, 0.0), 45_000.0);
        assert_eq!(renewal_due_ms(0.0, 60, POLICY, 0.5), 42_500.0);
        assert_eq!(renewal_due_ms(1_000.0, 60, POLICY, 1.0), 41_000.0);
    }

    #[test]
    fn a_lead_time_longer_than_the_token_never_makes_a_renewal_loop() {
        let long = RenewalPolicy { before_expiry_secs: 300, jitter_secs: 60, ..POLICY };
        assert_eq!(renewal_due_ms(0.0, 10, long, 1.0), 5_000.0);
        assert!(renewal_due_ms(0.0, 1, long, 1.0) > 0.0);
    }

    #[test]
    fn only_a_token_beyond_every_clients_lead_is_fresh() {
        assert!(is_fresh(21, POLICY));
        assert!(!is_fresh(20, POLICY));
        assert!(!is_fresh(0, POLICY));
    }

    #[test]
    fn a_token_renewed_while_waiting_is_adopted_even_when_the_lead_is_as_long_as_its_life() {
        let long_lead = RenewalPolicy { before_expiry_secs: 60, jitter_secs: 5, ..POLICY };
        let session = |expires_at, expires_in| SessionInfo {
            authenticated: true,
            access_token_expires_at: Some(expires_at),
            access_token_expires_in: Some(expires_in),
            ..SessionInfo::default()
        };
        // Another tab's renewal: a 60-second token, newer than the one this tab knew.
        assert!(renewed_meanwhile(Some(1_000), &session(1_060, 60), long_lead));
        // The token this tab knew, or an older one (expired by force): renew.
        assert!(!renewed_meanwhile(Some(1_000), &session(1_000, 30), long_lead));
        assert!(!renewed_meanwhile(Some(1_000), &session(990, 0), long_lead));
        // Nothing known yet: only freshness counts.
        assert!(!renewed_meanwhile(None, &session(1_060, 60), long_lead));
        assert!(renewed_meanwhile(None, &session(1_060, 60), POLICY));
    }

    #[test]
    fn backoff_doubles_is_capped_and_respects_retry_after() {
        assert_eq!(retry_delay_ms(1, 0, 0.0), 500.0);
        assert_eq!(retry_delay_ms(1, 0, 1.0), 1_000.0);
        assert_eq!(retry_delay_ms(3, 0, 1.0), 4_000.0);
        assert_eq!(retry_delay_ms(50, 0, 1.0), 30_000.0);
        assert_eq!(retry_delay_ms(50, 0, 0.0), 15_000.0);
        assert_eq!(retry_delay_ms(1, 5, 1.0), 5_000.0);
    }

    #[test]
    fn a_timer_is_late_only_well_past_its_time() {
        assert!(!fired_late(5_000.0, 5_200.0));
        // Ten seconds late: more than a throttled background tab ever is, less than a sleep.
        assert!(!fired_late(5_000.0, 14_999.0));
        assert!(fired_late(5_000.0, 15_001.0));
    }

    #[test]
    fn the_strategy_chooses_the_first_path_and_the_fallback() {
        use RenewStrategy::*;
        assert_eq!(first_path(Auto, true), RenewalPath::RefreshToken);
        assert_eq!(first_path(Auto, false), RenewalPath::Iframe);
        assert_eq!(first_path(RefreshToken, false), RenewalPath::RefreshToken);
        assert_eq!(first_path(Iframe, true), RenewalPath::Iframe);
        assert!(iframe_after_refresh(RefreshToken, ReauthReason::InvalidGrant));
        assert!(iframe_after_refresh(Auto, ReauthReason::NoRefreshToken));
        assert!(!iframe_after_refresh(Auto, ReauthReason::SignedOut));
        assert!(!iframe_after_refresh(RefreshToken, ReauthReason::IdTokenRejected));
    }
}

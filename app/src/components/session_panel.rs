//! A compact view of the session's renewal state: status, a countdown to expiry, renewals, the
//! last outcome and the last error; the dashboard at `/session` has the rest.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::{
    auth::{AuthContext, RefreshOutcome},
    components::TokenCountdown,
    format::utc_time,
};

#[component]
pub fn SessionPanel() -> impl IntoView {
    let auth = expect_context::<AuthContext>();
    let outcome = move || {
        auth.last_outcome.get().map(|outcome| match outcome {
            RefreshOutcome::Renewed { .. } => "renewed".to_owned(),
            RefreshOutcome::Transient { detail, .. } => format!("transient ({detail})"),
            RefreshOutcome::ReauthRequired { reason } => format!("reauth required ({})", reason.as_str()),
        })
    };
    view! {
        // The watches' states ride along as attributes: tests wait on them, nothing moves.
        <dl
            class="session-panel"
            data-testid="session-panel"
            data-check-session=move || auth.check_session.get().label()
            data-push-channel=move || auth.push_channel.get().label()
        >
            <dt>"Status"</dt>
            <dd data-testid="auth-status">{move || auth.status.get().label()}</dd>
            <dt>"Access token expires"</dt>
            <dd data-testid="token-expiry">{move || auth.expires_at.get().map(utc_time).unwrap_or_default()}</dd>
            <dt>"Expires in"</dt>
            <dd><TokenCountdown/></dd>
            <dt>"Renewals"</dt>
            <dd data-testid="renewal-count">{move || auth.renewals.get()}</dd>
            <dt>"Last renewal"</dt>
            <dd data-testid="last-outcome">{outcome}</dd>
            <dt>"Last error"</dt>
            <dd data-testid="last-error">{move || auth.last_error.get().unwrap_or_default()}</dd>
            <dt></dt>
            <dd><A href="/session">"Session dashboard"</A></dd>
        </dl>
    }
}

//! Said in place, without leaving the page, when the session is in trouble: renewal failing for
//! now (the provider or the session store unreachable; it retries by itself), or the session
//! ended (with the way back, which returns to this very page). Either way, what the page keeps
//! safe meanwhile.

use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::auth::{login_url, AuthContext, AuthStatus, ReauthReason, RefreshOutcome};

#[component]
pub fn SessionNotice(
    /// What the page keeps safe meanwhile, in a few words ("Your draft is saved on this device.").
    #[prop(into)]
    kept: String,
) -> impl IntoView {
    let auth = expect_context::<AuthContext>();
    let location = use_location();
    let here = move || {
        let (path, query) = (location.pathname.get(), location.search.get());
        if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        }
    };
    let trouble = move || match auth.last_outcome.get() {
        Some(RefreshOutcome::Transient { detail, .. }) if !auth.reauth_required() => Some(detail),
        _ => None,
    };
    let kept = StoredValue::new(kept);
    let ended = move || {
        auth.reauth_required().then(|| {
            let what = match auth.status.get() {
                AuthStatus::ReauthRequired(ReauthReason::EndedElsewhere) => "You were signed out elsewhere.",
                AuthStatus::ReauthRequired(ReauthReason::ConsentRequired | ReauthReason::InteractionRequired) => {
                    "The provider needs you to sign in again."
                }
                _ => "Your session has ended.",
            };
            view! {
                <div class="notice" role="alert" data-testid="session-ended">
                    <strong>{what}</strong>
                    " " {kept.get_value()} " "
                    <a href=move || login_url(&here()) rel="external">"Sign in again"</a>
                    " to carry on where you left off."
                </div>
            }
        })
    };
    let trouble = move || {
        trouble().map(|detail| {
            view! {
                <div class="notice" data-testid="renewal-trouble">
                    <strong>"Your session cannot be renewed right now"</strong>
                    " (" {detail} "). It will retry by itself. " {kept.get_value()}
                </div>
            }
        })
    };
    view! {
        {ended}
        // There from the start, empty: a live region that appears already filled is often not read.
        <div role="status">{trouble}</div>
    }
}

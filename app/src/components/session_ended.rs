//! Said in place, without leaving the page, when the session can no longer be renewed: what
//! happened, that the draft is safe, and the way back, which returns to this very page.

use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::auth::{login_url, AuthContext};

#[component]
pub fn SessionEndedNotice(
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
    view! {
        <Show when=move || auth.reauth_required()>
            <div class="notice" role="alert" data-testid="session-ended">
                <strong>"Your session has ended."</strong>
                " " {kept.clone()} " "
                <a href=move || login_url(&here()) rel="external">"Sign in again"</a>
                " to carry on where you left off."
            </div>
        </Show>
    }
}

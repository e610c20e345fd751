//! The gate in front of protected pages: signed out, the browser goes to `/auth/login` and comes
//! back to this page afterwards.

use leptos::{either::Either, prelude::*};
use leptos_router::hooks::use_location;

use crate::auth::{login_url, AuthContext};

#[component]
pub fn RequireSignIn(children: ChildrenFn) -> impl IntoView {
    let session = expect_context::<AuthContext>().session;
    let location = use_location();
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Checking your session…"</p> }>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(info) if info.authenticated => Either::Left(children.read_value()()),
                    _ => {
                        let (path, query) = (location.pathname.get_untracked(), location.search.get_untracked());
                        let here = if query.is_empty() { path } else { format!("{path}?{query}") };
                        send_to_sign_in(&login_url(&here));
                        Either::Right(view! { <p class="muted">"Signing you in…"</p> })
                    }
                }
            })}
        </Suspense>
    }
}

/// On the server a 302 before the page is sent; in the browser a full navigation (the login
/// route belongs to the server, not to the client router), replacing this history entry.
fn send_to_sign_in(url: &str) {
    #[cfg(feature = "ssr")]
    leptos_axum::redirect(url);
    #[cfg(feature = "hydrate")]
    if let Err(error) = window().location().replace(url) {
        leptos::logging::error!("could not go to sign-in: {error:?}");
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    let _ = url;
}

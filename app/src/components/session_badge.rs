//! Who is signed in, in the header of every page.

use leptos::prelude::*;

use crate::auth::AuthContext;

#[component]
pub fn SessionBadge() -> impl IntoView {
    let session = expect_context::<AuthContext>().session;
    view! {
        <Transition fallback=|| ()>
            <span class="badge" data-testid="session-badge">
                {move || Suspend::new(async move {
                    match session.await {
                        Ok(info) if info.authenticated => {
                            format!("Signed in as {}", info.display_name.unwrap_or_default())
                        }
                        Ok(_) => "Signed out".to_owned(),
                        Err(_) => "Session unknown".to_owned(),
                    }
                })}
            </span>
        </Transition>
    }
}

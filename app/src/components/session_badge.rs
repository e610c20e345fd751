//! Who is signed in, and the way out, in the header of every page.

use leptos::{either::Either, prelude::*};

use super::SignOutButton;
use crate::auth::AuthContext;

#[component]
pub fn SessionBadge() -> impl IntoView {
    let auth = expect_context::<AuthContext>();
    let session = auth.session;
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(info) if info.authenticated => {
                        let name = info.display_name.unwrap_or_default();
                        let subject = info.subject.unwrap_or_default();
                        // The session ended while the page stayed (elsewhere, or a refused
                        // renewal): the page loaded signed in, but no one is any more.
                        Either::Left(view! {
                            <Show
                                when=move || !auth.reauth_required()
                                fallback=|| view! { <span class="badge" data-testid="session-badge">"Signed out"</span> }
                            >
                                <div class="session-menu">
                                    <span class="badge" data-testid="session-badge">"Signed in as " {name.clone()}</span>
                                    <SignOutButton subject=subject.clone()/>
                                </div>
                            </Show>
                        })
                    }
                    Ok(_) => Either::Right(view! { <span class="badge" data-testid="session-badge">"Signed out"</span> }),
                    Err(_) => Either::Right(view! { <span class="badge" data-testid="session-badge">"Session unknown"</span> }),
                }
            })}
        </Transition>
    }
}

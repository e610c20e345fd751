//! Who is signed in, and the way out, in the header of every page.

use leptos::{either::Either, prelude::*};

use super::SignOutButton;
use crate::auth::AuthContext;

#[component]
pub fn SessionBadge() -> impl IntoView {
    let session = expect_context::<AuthContext>().session;
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(info) if info.authenticated => {
                        let name = info.display_name.unwrap_or_default();
                        let subject = info.subject.unwrap_or_default();
                        Either::Left(view! {
                            <div class="session-menu">
                                <span class="badge" data-testid="session-badge">"Signed in as " {name}</span>
                                <SignOutButton subject/>
                            </div>
                        })
                    }
                    Ok(_) => Either::Right(view! { <span class="badge" data-testid="session-badge">"Signed out"</span> }),
                    Err(_) => Either::Right(view! { <span class="badge" data-testid="session-badge">"Session unknown"</span> }),
                }
            })}
        </Transition>
    }
}

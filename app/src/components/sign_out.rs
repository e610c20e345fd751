//! Signing out (`POST /auth/logout`). When the user has an unsent draft on this device, the
//! button first asks whether to keep it: a shared computer is a reason to drop it, a second
//! sign-in later a reason to keep it.

use leptos::{html, prelude::*};

use crate::{auth::AuthContext, draft};

#[component]
pub fn SignOutButton(subject: String) -> impl IntoView {
    let (asking, set_asking) = signal(false);
    let form = NodeRef::<html::Form>::new();
    let (button, keep) = (NodeRef::<html::Button>::new(), NodeRef::<html::Button>::new());
    // The question takes the keyboard's focus when it opens, and gives it back when it closes
    // unanswered: a button that disappears with focus leaves it nowhere.
    Effect::new(move |_| {
        if let Some(keep) = keep.get() {
            let _ = keep.focus();
        }
    });
    let cancel = move || {
        set_asking.set(false);
        if let Some(button) = button.get_untracked() {
            let _ = button.focus();
        }
    };
    let subject = StoredValue::new(subject);
    let auth = expect_context::<AuthContext>();
    let sign_out = move |keep_draft: bool| {
        subject.with_value(|subject| auth.announce_sign_out(subject, keep_draft));
        if !keep_draft {
            // First make the page stop saving (it would save again as it is left), then drop it.
            auth.signing_out();
            subject.with_value(|subject| draft::clear(subject));
        }
        // `submit()` skips the submit handler below, so this does not ask again.
        if let Some(form) = form.get_untracked() {
            let _ = form.submit();
        }
    };
    view! {
        <form
            method="post"
            action="/auth/logout"
            class="sign-out"
            node_ref=form
            on:submit=move |ev| {
                if subject.with_value(|subject| draft::exists(subject)) {
                    ev.prevent_default();
                    set_asking.set(true);
                } else {
                    subject.with_value(|subject| auth.announce_sign_out(subject, true));
                }
            }
        >
            <button type="submit" node_ref=button>
                "Sign out"
            </button>
            <Show when=move || asking.get()>
                <div
                    class="sign-out-question"
                    role="dialog"
                    aria-label="Keep your draft?"
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Escape" {
                            cancel();
                        }
                    }
                >
                    <p>"You have an unsent draft on this device. Keep it for when you sign in again?"</p>
                    <button type="button" node_ref=keep on:click=move |_| sign_out(true)>
                        "Keep draft and sign out"
                    </button>
                    <button type="button" class="secondary" on:click=move |_| sign_out(false)>
                        "Delete draft and sign out"
                    </button>
                    <button type="button" class="secondary" on:click=move |_| cancel()>
                        "Cancel"
                    </button>
                </div>
            </Show>
        </form>
    }
}

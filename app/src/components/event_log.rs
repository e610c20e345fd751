//! The auth context's events, newest first (in sight at the top of its scroll box), each with
//! the browser's time: renewals, expiries, errors and sign-outs as they happen.

use leptos::prelude::*;

use crate::{auth::AuthContext, format::utc_time_ms};

#[component]
pub fn EventLog() -> impl IntoView {
    let events = expect_context::<AuthContext>().events;
    view! {
        <section class="event-log" aria-labelledby="event-log-title">
            <h2 id="event-log-title">"Session events"</h2>
            // Not a live region: every renewal adds lines, and the notices say what matters.
            // Focusable, so that the keyboard can scroll it.
            <ol data-testid="event-log" aria-label="Session events, newest first" tabindex="0">
                <For
                    each=move || events.get().into_iter().rev()
                    key=|event| event.id
                    children=|event| {
                        view! {
                            <li data-event=event.kind.name()>
                                <time>{utc_time_ms(event.at_ms)}</time>
                                " "
                                <code>{event.kind.name()}</code>
                                " "
                                <span>{event.detail}</span>
                            </li>
                        }
                    }
                />
            </ol>
        </section>
    }
}

//! The live countdown to the access token's expiry, and the ticking clock behind it.
//!
//! The countdown runs on this browser's clock, from the seconds the server said were left, so a
//! browser clock that is off does not matter. Its digits are tabular and its box fixed: nothing
//! on the page moves while it ticks.

use std::time::Duration;

use leptos::prelude::*;

use crate::{auth::AuthContext, format::clock_face};

/// The browser's clock in ms since the epoch, updated every `period`; 0 on the server and until
/// the first tick, so that hydration sees what the server rendered.
pub fn use_now(period: Duration) -> ReadSignal<f64> {
    let (now, set_now) = signal(0.0);
    #[cfg(feature = "hydrate")]
    {
        let tick = move || set_now.set(crate::auth::now_ms());
        let first = set_timeout_with_handle(tick, Duration::ZERO);
        let every = set_interval_with_handle(tick, period);
        on_cleanup(move || {
            if let Ok(handle) = first {
                handle.clear();
            }
            if let Ok(handle) = every {
                handle.clear();
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (period, set_now);
    now
}

/// Seconds left, rounded up, once both the expiry and the clock are known.
pub fn seconds_left(expires_at_ms: Option<f64>, now_ms: f64) -> Option<u64> {
    let expires_at_ms = expires_at_ms.filter(|_| now_ms > 0.0)?;
    Some(((expires_at_ms - now_ms) / 1000.0).ceil().max(0.0) as u64)
}

#[component]
pub fn TokenCountdown() -> impl IntoView {
    let auth = expect_context::<AuthContext>();
    let now = use_now(Duration::from_millis(250));
    // Once the session has ended, its last token's time means nothing.
    let left = Memo::new(move |_| {
        let expires_at_ms = auth.expires_at_ms.get().filter(|_| !auth.reauth_required());
        seconds_left(expires_at_ms, now.get())
    });
    view! {
        <span
            class="countdown"
            role="timer"
            data-testid="token-countdown"
            data-seconds=move || left.get().map(|secs| secs.to_string())
        >
            {move || left.get().map_or_else(|| "–:––".to_owned(), clock_face)}
        </span>
    }
}

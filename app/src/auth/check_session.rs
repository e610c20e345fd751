//! OIDC Session Management 1.0 §3.1, the RP iframe: the provider's `check_session_iframe` in a
//! hidden iframe, asked every few seconds whether the provider session still matches this app's
//! `session_state` (`client_id + " " + session_state`, posted to the provider's origin only).
//! Answers are accepted only from the provider's origin and from that iframe's window.
//!
//! - `unchanged`: fine; and from then on a `changed` for this `session_state` is believed.
//! - `changed`: the caller re-checks with `prompt=none` (same user: a new `session_state`,
//!   quietly; no session or another user: signed out elsewhere; consent or terms to accept:
//!   sign in again).
//! - `error`: monitoring stops, and is not retried (§3.1: no `prompt=none` after `error`, to
//!   avoid loops).
//!
//! The circuit breaker (§5.1): when the iframe cannot read the provider's cookie (third-party
//! cookies blocked, or a provider on another site), every answer is `changed`, though nothing
//! changed. A `changed` before any `unchanged` for the same `session_state` is therefore not
//! believed, only counted; so is a `changed` that the re-check contradicts. After
//! [`BREAKER_LIMIT`] of them monitoring stops, and the app relies on the server's signals
//! (back-channel logout, pushed to every tab) instead. It never signs anyone out on a `changed`
//! alone. A re-check that fails for now (the provider or the server in trouble) is followed by
//! a pause, during which the iframe is not asked, that doubles with each failure in a row
//! ([`recheck_pause_ms`]), not by another re-check at the next `changed`.

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::prelude::*;
use wasm_bindgen::{prelude::*, JsCast};
use web_sys::{HtmlIFrameElement, MessageEvent};

use super::{schedule::recheck_pause_ms, session::CheckSession};

/// `changed` answers not believed (never after an `unchanged`, or contradicted by the re-check)
/// after which monitoring stops.
pub const BREAKER_LIMIT: u32 = 3;

/// What the monitor asks of its owner.
pub enum Verdict {
    /// The first `unchanged` for this `session_state`: from now on a `changed` is believed (the
    /// dashboard shows the watch as live only from here).
    Trusted,
    /// A `changed` to verify with a `prompt=none` re-check; the owner answers through
    /// [`CheckSessionMonitor::rechecked`].
    Recheck,
    /// Monitoring stopped; the reason is for the event log.
    Stopped(String),
    /// Worth a line in the event log, nothing more.
    Note(String),
}

struct State {
    session_state: String,
    /// An `unchanged` was seen for `session_state`: its `changed` is believed.
    trusted: bool,
    doubted: u32,
    rechecking: bool,
    /// Re-checks in a row that failed for now, and until when the iframe is not asked after them
    /// (0 once it has answered again: the first answer after a pause makes the watch live again).
    failed_rechecks: u32,
    quiet_until_ms: f64,
    stopped: bool,
}

pub struct CheckSessionMonitor {
    config: CheckSession,
    provider_origin: String,
    iframe: HtmlIFrameElement,
    state: Rc<RefCell<State>>,
    listener: Closure<dyn FnMut(MessageEvent)>,
    interval: RefCell<Option<IntervalHandle>>,
}

impl CheckSessionMonitor {
    /// Loads the provider's iframe and starts asking every `interval_secs`. `verdict` hears what
    /// needs doing.
    pub fn start(config: CheckSession, session_state: String, verdict: impl Fn(Verdict) + 'static) -> Option<Rc<Self>> {
        let provider_origin = web_sys::Url::new(&config.iframe).ok()?.origin();
        let iframe = document().create_element("iframe").ok()?.dyn_into::<HtmlIFrameElement>().ok()?;
        let _ = iframe.set_attribute("hidden", "");
        let _ = iframe.set_attribute("aria-hidden", "true");
        let _ = iframe.set_attribute("title", "session check");
        iframe.set_src(&config.iframe);
        let state = Rc::new(RefCell::new(State {
            session_state,
            trusted: false,
            doubted: 0,
            rechecking: false,
            failed_rechecks: 0,
            quiet_until_ms: 0.0,
            stopped: false,
        }));
        let listener = {
            let (state, iframe, origin) = (state.clone(), iframe.clone(), provider_origin.clone());
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if event.origin() != origin {
                    return;
                }
                let from_iframe = matches!(
                    (event.source(), iframe.content_window()),
                    (Some(source), Some(frame)) if js_sys::Object::is(&source, &frame)
                );
                let Some(answer) = event.data().as_string().filter(|_| from_iframe) else { return };
                if let Some(next) = answered(&state, &answer) {
                    verdict(next);
                }
            })
        };
        let _ = window().add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
        document().body()?.append_child(&iframe).ok()?;
        let monitor = Rc::new(Self { config, provider_origin, iframe, state, listener, interval: RefCell::new(None) });
        let weak = Rc::downgrade(&monitor);
        let interval = set_interval_with_handle(
            move || {
                if let Some(monitor) = weak.upgrade() {
                    monitor.ask();
                }
            },
            Duration::from_secs(monitor.config.interval_secs.max(1)),
        );
        *monitor.interval.borrow_mut() = interval.ok();
        Some(monitor)
    }

    fn ask(&self) {
        let (stopped, waiting, session_state) = {
            let state = self.state.borrow();
            let waiting = state.rechecking || js_sys::Date::now() < state.quiet_until_ms;
            (state.stopped, waiting, state.session_state.clone())
        };
        if stopped || waiting {
            return;
        }
        if let Some(frame) = self.iframe.content_window() {
            let message = format!("{} {session_state}", self.config.client_id);
            let _ = frame.post_message(&JsValue::from_str(&message), &self.provider_origin);
        }
    }

    /// The re-check after a believed `changed`: `Some(session_state)` if the provider still has
    /// the same user (a contradiction when nothing else changed); `None` if the owner signed the
    /// user out or the re-check failed for now.
    pub fn rechecked(&self, same_user: Option<String>) -> Option<Verdict> {
        let mut state = self.state.borrow_mut();
        state.rechecking = false;
        let Some(new_state) = same_user else {
            if state.stopped {
                return None;
            }
            state.failed_rechecks += 1;
            let pause = recheck_pause_ms(state.failed_rechecks);
            state.quiet_until_ms = js_sys::Date::now() + pause;
            return Some(Verdict::Note(format!(
                "the re-check failed for now; check_session asks again in {} s",
                (pause / 1000.0).round()
            )));
        };
        state.failed_rechecks = 0;
        if new_state == state.session_state {
            state.doubted += 1;
        }
        state.session_state = new_state;
        state.trusted = false;
        if state.doubted >= BREAKER_LIMIT {
            state.stopped = true;
            return Some(Verdict::Stopped(breaker_tripped()));
        }
        Some(Verdict::Note("the provider session changed, but it is the same user: carrying on".into()))
    }

    pub fn stop(&self) {
        self.state.borrow_mut().stopped = true;
        if let Some(interval) = self.interval.borrow_mut().take() {
            interval.clear();
        }
        self.iframe.remove();
    }
}

/// The listener goes with the monitor: left on the window, every later `message` (a silent
/// renew's outcome among them) would call a dropped closure and throw.
impl Drop for CheckSessionMonitor {
    fn drop(&mut self) {
        let _ = window().remove_event_listener_with_callback("message", self.listener.as_ref().unchecked_ref());
    }
}

fn breaker_tripped() -> String {
    format!(
        "check_session stopped after {BREAKER_LIMIT} 'changed' answers it could not trust (third-party cookies \
         blocked?); relying on the server's signals"
    )
}

/// What an answer of the provider's iframe means for the monitor.
fn answered(state: &Rc<RefCell<State>>, answer: &str) -> Option<Verdict> {
    let mut state = state.borrow_mut();
    if state.stopped {
        return None;
    }
    let resumed = std::mem::take(&mut state.quiet_until_ms) > 0.0;
    match answer {
        "unchanged" if state.trusted && !resumed => None,
        "unchanged" => {
            state.trusted = true;
            Some(Verdict::Trusted)
        }
        "error" => {
            state.stopped = true;
            Some(Verdict::Stopped("check_session answered 'error'; monitoring stops (not retried)".into()))
        }
        "changed" if state.rechecking => None,
        "changed" if state.trusted => {
            state.rechecking = true;
            Some(Verdict::Recheck)
        }
        "changed" => {
            state.doubted += 1;
            if state.doubted >= BREAKER_LIMIT {
                state.stopped = true;
                return Some(Verdict::Stopped(breaker_tripped()));
            }
            Some(Verdict::Note("check_session says 'changed' before it ever said 'unchanged': not believed".into()))
        }
        _ => None,
    }
}

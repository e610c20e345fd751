//! Tabs of one browser share one session (one cookie), so they must not each renew it. Two
//! browser features keep them in step:
//! - the Web Locks API: one tab at a time holds the renewal lock; a tab that waited for it
//!   first re-reads the session and adopts the renewal another tab just made;
//! - a BroadcastChannel: a tab that renewed, or learned that the session ended, tells the others,
//!   which reschedule (or stop) without asking the server.
//!
//! Where Web Locks are missing, a random pause before the re-read spreads tabs apart; and the
//! server's single-flight renewal means that even two tabs renewing at once make one token
//! request. Within one tab, tasks under one name still run one at a time (a renewal and a
//! check_session re-check would each open an iframe, and spoil each other's answer).

use std::{cell::RefCell, future::Future, pin::Pin, rc::Rc};

use serde::{Deserialize, Serialize};
use wasm_bindgen::{prelude::*, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{BroadcastChannel, MessageEvent};

use super::refresh::ReauthReason;

/// The longest pause of the fallback for browsers without Web Locks.
const FALLBACK_SPREAD_MS: f64 = 1_000.0;

thread_local! {
    /// The locks this tab holds, for the fallback without Web Locks.
    static HELD_HERE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// This tab's hold on a lock of the fallback, given back when the task ends or is dropped.
struct HeldHere(String);

impl HeldHere {
    async fn take(name: &str) -> Self {
        while HELD_HERE.with(|held| held.borrow().iter().any(|n| n == name)) {
            sleep_ms(50.0).await;
        }
        HELD_HERE.with(|held| held.borrow_mut().push(name.to_owned()));
        Self(name.to_owned())
    }
}

impl Drop for HeldHere {
    fn drop(&mut self) {
        HELD_HERE.with(|held| held.borrow_mut().retain(|n| *n != self.0));
    }
}

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (Web Locks API), bound by hand: web-sys has it only behind an unstable
    /// flag.
    type LockManager;

    #[wasm_bindgen(method, catch, js_name = request)]
    fn request(this: &LockManager, name: &str, callback: &js_sys::Function) -> Result<js_sys::Promise, JsValue>;
}

type Task<T> = Pin<Box<dyn Future<Output = T>>>;

/// Runs `task` while holding the browser-wide lock `name`: no other tab of this origin runs a
/// task under the same name until it finishes. `None` only if the browser lost the task.
pub async fn with_lock<T: 'static>(name: &str, task: impl Future<Output = T> + 'static) -> Option<T> {
    let task: Rc<RefCell<Option<Task<T>>>> = Rc::new(RefCell::new(Some(Box::pin(task))));
    let Some(locks) = lock_manager() else {
        sleep_ms(js_sys::Math::random() * FALLBACK_SPREAD_MS).await;
        let _held = HeldHere::take(name).await;
        return run(&task).await;
    };
    let result: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
    let callback = {
        let (task, result) = (task.clone(), result.clone());
        Closure::once(move |_lock: JsValue| -> js_sys::Promise {
            wasm_bindgen_futures::future_to_promise(async move {
                if let Some(value) = run(&task).await {
                    *result.borrow_mut() = Some(value);
                }
                Ok(JsValue::UNDEFINED)
            })
        })
    };
    // The lock is held until the promise the callback returns settles. If the request itself
    // fails (an opaque origin, say), the task runs unlocked rather than never.
    if let Ok(promise) = locks.request(name, callback.as_ref().unchecked_ref()) {
        let _ = JsFuture::from(promise).await;
    }
    let value = result.borrow_mut().take();
    match value {
        Some(value) => Some(value),
        None => run(&task).await,
    }
}

async fn run<T>(task: &Rc<RefCell<Option<Task<T>>>>) -> Option<T> {
    let future = task.borrow_mut().take()?;
    Some(future.await)
}

fn lock_manager() -> Option<LockManager> {
    let navigator = leptos::prelude::window().navigator();
    let locks = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks")).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then(|| locks.unchecked_into())
}

async fn sleep_ms(ms: f64) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = leptos::prelude::window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
    });
    let _ = JsFuture::from(promise).await;
}

/// What one tab tells the others about the session they share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TabMessage {
    Renewed {
        subject: String,
        expires_at: u64,
        expires_in: u64,
    },
    SessionEnded {
        subject: String,
        reason: ReauthReason,
    },
    /// The user signed out in tab `from`; the others follow at once, keeping the draft or not as
    /// the user chose.
    SignedOut {
        subject: String,
        keep_draft: bool,
        from: u64,
    },
}

/// A BroadcastChannel carrying [`TabMessage`]s as JSON. Never a token: tabs share the session
/// through the server, and only news of it here.
pub struct TabChannel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl TabChannel {
    pub fn open(name: &str, on_message: impl Fn(TabMessage) + 'static) -> Option<Self> {
        let channel = BroadcastChannel::new(name).ok()?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(message) = event.data().as_string().and_then(|text| serde_json::from_str(&text).ok()) {
                on_message(message);
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(Self { channel, _on_message: on_message })
    }

    /// Posts one message without keeping a channel open (a tab that is about to leave).
    pub fn announce(name: &str, message: &TabMessage) {
        if let (Ok(channel), Ok(text)) = (BroadcastChannel::new(name), serde_json::to_string(message)) {
            let _ = channel.post_message(&JsValue::from_str(&text));
            channel.close();
        }
    }

    pub fn post(&self, message: &TabMessage) {
        if let Ok(text) = serde_json::to_string(message) {
            let _ = self.channel.post_message(&JsValue::from_str(&text));
        }
    }
}

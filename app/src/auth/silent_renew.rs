//! Silent renew in the browser (OIDC Core §3.1.2.1 `prompt=none`): a hidden iframe to
//! `/auth/silent-renew`, which the server sends on to the provider's authorize endpoint (the ID
//! token hint and PKCE verifier never reach this page), and which ends at
//! `/auth/silent-callback`: a tiny page that posts only the outcome to its parent.
//!
//! A message is accepted only if it comes from this page's own origin and from the iframe this
//! page created for the renewal in progress. Anything else that claims to be an outcome (another
//! origin, another window, or no renewal in progress) is ignored and reported. Even an accepted
//! "renewed" is not trusted: the caller reads the session from the server.

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::prelude::*;
use wasm_bindgen::{prelude::*, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{HtmlIFrameElement, MessageEvent};

use super::refresh::ReauthReason;

/// The `type` of the silent callback page's message.
pub const MESSAGE_TYPE: &str = "oidc-silent-renew";
const START_PATH: &str = "/auth/silent-renew";

/// How one iframe renewal ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IframeOutcome {
    /// The server stored new tokens (to be confirmed by reading the session).
    Renewed,
    /// The provider needs the user: sign in interactively.
    Interactive(ReauthReason),
    /// Anything else: a timeout, an error answer, a callback the server did not expect.
    Transient(String),
}

impl IframeOutcome {
    fn from_message(outcome: &str) -> Self {
        match outcome {
            "renewed" => Self::Renewed,
            "login_required" => Self::Interactive(ReauthReason::LoginRequired),
            "consent_required" => Self::Interactive(ReauthReason::ConsentRequired),
            "interaction_required" | "account_selection_required" => {
                Self::Interactive(ReauthReason::InteractionRequired)
            }
            "signed_out" => Self::Interactive(ReauthReason::SignedOut),
            "subject_changed" => Self::Interactive(ReauthReason::IdTokenRejected),
            other => Self::Transient(format!("silent renew failed ({other})")),
        }
    }
}

/// The renewal in progress: its iframe, and how to finish it.
struct Pending {
    iframe: HtmlIFrameElement,
    finish: js_sys::Function,
}

/// Owns the page's one `message` listener and at most one renewal iframe.
pub struct SilentRenew {
    pending: Rc<RefCell<Option<Pending>>>,
    _listener: Closure<dyn FnMut(MessageEvent)>,
}

impl SilentRenew {
    /// Listens for outcomes; `report` hears of every message that claims to be one and is ignored.
    pub fn new(report: impl Fn(String) + 'static) -> Self {
        let pending: Rc<RefCell<Option<Pending>>> = Rc::default();
        let own_origin = window().location().origin().unwrap_or_default();
        let listener = {
            let pending = pending.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let data = event.data();
                let field = |name: &str| js_sys::Reflect::get(&data, &JsValue::from_str(name)).ok()?.as_string();
                if field("type").as_deref() != Some(MESSAGE_TYPE) {
                    return; // Not ours: other code on the page may use messages too.
                }
                if event.origin() != own_origin {
                    return report(format!("ignored a renewal message from another origin ({})", event.origin()));
                }
                let pending = pending.borrow();
                let from_our_iframe = pending.as_ref().is_some_and(|p| {
                    let (source, frame) = (event.source(), p.iframe.content_window());
                    matches!((source, frame), (Some(source), Some(frame)) if js_sys::Object::is(&source, &frame))
                });
                if !from_our_iframe {
                    return report("ignored a renewal message from a window this page did not open for it".into());
                }
                if let (Some(p), Some(outcome)) = (pending.as_ref(), field("outcome")) {
                    let _ = p.finish.call1(&JsValue::NULL, &JsValue::from_str(&outcome));
                }
            })
        };
        let _ = window().add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
        Self { pending, _listener: listener }
    }

    /// One renewal through a hidden iframe, given up after `timeout`. The iframe is removed
    /// whatever the outcome.
    pub async fn run(&self, timeout: Duration) -> IframeOutcome {
        let Some(iframe) =
            document().create_element("iframe").ok().and_then(|e| e.dyn_into::<HtmlIFrameElement>().ok())
        else {
            return IframeOutcome::Transient("no iframe could be created".into());
        };
        // `hidden` rather than a style: the page's CSP allows no inline style.
        let _ = iframe.set_attribute("hidden", "");
        let _ = iframe.set_attribute("aria-hidden", "true");
        let _ = iframe.set_attribute("title", "session renewal");
        iframe.set_src(START_PATH);

        let mut finish = None;
        let finished = js_sys::Promise::new(&mut |resolve, _| finish = Some(resolve));
        let finish = finish.expect("the Promise executor runs at once");
        *self.pending.borrow_mut() = Some(Pending { iframe: iframe.clone(), finish: finish.clone() });
        let timer = {
            let finish = finish.clone();
            set_timeout_with_handle(move || drop(finish.call1(&JsValue::NULL, &JsValue::from_str("timeout"))), timeout)
        };
        let attached = document().body().map(|body| body.append_child(&iframe).is_ok()).unwrap_or(false);
        let outcome = match attached {
            true => JsFuture::from(finished).await.ok().and_then(|v| v.as_string()).unwrap_or_default(),
            false => "no document body".into(),
        };

        if let Ok(timer) = timer {
            timer.clear();
        }
        self.pending.borrow_mut().take();
        iframe.remove();
        match outcome.as_str() {
            "timeout" => IframeOutcome::Transient("the provider did not answer in time".into()),
            other => IframeOutcome::from_message(other),
        }
    }
}

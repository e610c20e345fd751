//! The renewal driver, in the browser only: it schedules renewal ahead of the access token's
//! expiry and keeps the [`AuthContext`] signals in step.
//!
//! - A timer fires the lead time (plus jitter) before expiry: `accessTokenExpiring`, then renewal.
//! - Renewal runs under a Web Lock shared by all tabs; inside it the tab first re-reads the
//!   session and adopts a renewal another tab just made, so one renewal serves every tab.
//! - The path follows `RENEW_STRATEGY`: `POST /auth/refresh`, and when the server has no usable
//!   refresh token, a hidden iframe with `prompt=none` ([`super::silent_renew`]); when the
//!   provider needs the user, interactive sign-in. The event log names the path.
//! - `renewed`: reschedule and tell the other tabs. `transient`: retry with capped backoff and
//!   jitter; the session stays (the iframe only a bounded number of times, then until the access
//!   token really expires). `reauth_required`: stop, and say so (the pages keep the draft).
//! - Timers are throttled in hidden tabs and stop while a machine sleeps, so the driver also
//!   re-checks when the tab becomes visible, when the network comes back, and when its
//!   heartbeat fires late; a stale token is then renewed at once.

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::{ev, prelude::*, task::spawn_local};
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::VisibilityState;

use super::{
    api::get_session,
    check_session::{CheckSessionMonitor, Verdict},
    context::{now_ms, AuthContext, AuthEventKind, AuthStatus, Watch, RENEW_EVENT, RESYNC_EVENT},
    refresh::{refresh, ReauthReason, RefreshOutcome},
    schedule::{self, RenewalPath},
    session::{RenewStrategy, RenewalPolicy, SessionInfo},
    silent_renew::{IframeOutcome, SilentRenew},
    tabs::{self, TabChannel, TabMessage},
};
use crate::format::utc_time;

const RENEWAL_LOCK: &str = "oidc-session-renewal";
pub(super) const TAB_CHANNEL: &str = "oidc-session";
const EVENTS_PATH: &str = "/auth/events";
const HEARTBEAT_MS: f64 = 5_000.0;
/// How long a renewal waits for the server's answer to one request while it holds the tabs'
/// lock: a request that will never be answered (a connection that died without a word, after a
/// sleep) would keep every tab waiting behind it for ever. Longer than a renewal takes at the
/// server but in the worst case; one given up early is harmless, since the retry joins the
/// renewal still in flight there (single flight). The iframe has a timeout of its own.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// What a request given up after [`ANSWER_TIMEOUT`] fails with.
const NO_ANSWER: &str = "the server did not answer in time";
/// Used if the server sent no policy (it always does for a signed-in session).
const DEFAULT_POLICY: RenewalPolicy = RenewalPolicy {
    before_expiry_secs: 15,
    jitter_secs: 5,
    strategy: RenewStrategy::Auto,
    silent_renew_timeout_secs: 10,
};

/// Starts the driver once the session has loaded, if it is a signed-in one.
pub(super) fn start(context: AuthContext) {
    spawn_local(async move {
        let Ok(info) = context.session.await else {
            return;
        };
        let writers = context.writers();
        let (true, Some(subject)) = (info.authenticated, info.subject.clone()) else {
            writers.status.set(AuthStatus::SignedOut);
            return;
        };
        let silent = SilentRenew::new(move |ignored| {
            leptos::logging::warn!("{ignored}");
            context.log(AuthEventKind::SilentRenewError, ignored);
        });
        let renewer = Rc::new(Renewer {
            context,
            policy: info.renewal.unwrap_or(DEFAULT_POLICY),
            subject,
            silent,
            state: RefCell::new(State { has_refresh_token: info.has_refresh_token, ..State::default() }),
            channel: RefCell::new(None),
            monitor: RefCell::new(None),
            events: RefCell::new(None),
        });
        renewer.listen();
        if let (Some(check), Some(session_state)) = (info.check_session.clone(), info.session_state.clone()) {
            let weak = Rc::downgrade(&renewer);
            let monitor = CheckSessionMonitor::start(check, session_state, move |verdict| {
                if let Some(renewer) = weak.upgrade() {
                    renewer.on_verdict(verdict);
                }
            });
            if monitor.is_some() {
                writers.check_session.set(Watch::Connecting);
            }
            *renewer.monitor.borrow_mut() = monitor;
        }
        writers.status.set(AuthStatus::SignedIn);
        renewer.adopt(&info, "session loaded");
    });
}

/// The server's push channel and its listeners, which live as long as it does.
type PushChannel = (web_sys::EventSource, Vec<Closure<dyn FnMut(web_sys::Event)>>);

struct Renewer {
    context: AuthContext,
    policy: RenewalPolicy,
    subject: String,
    silent: SilentRenew,
    state: RefCell<State>,
    channel: RefCell<Option<TabChannel>>,
    /// check_session, when the provider offers it.
    monitor: RefCell<Option<Rc<CheckSessionMonitor>>>,
    /// The server's push channel (`/auth/events`) and its listener.
    events: RefCell<Option<PushChannel>>,
}

#[derive(Default)]
struct State {
    /// When the access token expires, by this browser's clock.
    expires_ms: f64,
    /// When to renew it, by this browser's clock.
    due_ms: f64,
    renew_timer: Option<TimeoutHandle>,
    expiry_timer: Option<TimeoutHandle>,
    in_flight: bool,
    /// Transient failures in a row.
    failures: u32,
    /// Transient failures of the iframe in a row; at the bound, no more tries before expiry.
    iframe_failures: u32,
    /// Whether the server holds a refresh token for the session, as last heard.
    has_refresh_token: bool,
    stopped: bool,
    last_tick_ms: f64,
}

/// How one renewal attempt ended.
enum Attempt {
    /// Another tab renewed while this one waited for the lock.
    Adopted(SessionInfo),
    /// The outcome, and the path that gave it.
    Outcome(RefreshOutcome, RenewalPath),
}

impl Renewer {
    /// Wires the re-check triggers and the channel to the other tabs. They live as long as the
    /// page, like the context.
    fn listen(self: &Rc<Self>) {
        let this = self.clone();
        let _ = window_event_listener(ev::visibilitychange, move |_| {
            if document().visibility_state() == VisibilityState::Visible {
                this.recheck("the tab became visible");
            }
        });
        let this = self.clone();
        let _ = window_event_listener(ev::online, move |_| this.recheck("the network came back"));

        self.state.borrow_mut().last_tick_ms = now_ms();
        let this = self.clone();
        let _ = set_interval_with_handle(
            move || {
                let now = now_ms();
                let late = schedule::fired_late(HEARTBEAT_MS, now - this.state.borrow().last_tick_ms);
                this.state.borrow_mut().last_tick_ms = now;
                if late {
                    this.recheck("the machine woke up");
                }
            },
            Duration::from_millis(HEARTBEAT_MS as u64),
        );

        let this = self.clone();
        *self.channel.borrow_mut() = TabChannel::open(TAB_CHANNEL, move |message| this.on_tab_message(message));

        self.open_push_channel(0);

        // Someone changed the session under this tab (the dashboard's fault panel): read it again.
        let this = self.clone();
        let _ = window_event_listener_untyped(RESYNC_EVENT, move |_| {
            let this = this.clone();
            spawn_local(async move {
                if let Ok(info) = get_session().await {
                    if info.authenticated && !this.state.borrow().stopped {
                        this.adopt(&info, "session re-read");
                    }
                }
            });
        });
        let this = self.clone();
        let _ = window_event_listener_untyped(RENEW_EVENT, move |_| {
            this.context.log(AuthEventKind::AccessTokenExpiring, "the server could not use the session: renewing now");
            this.renew();
        });
    }

    /// The server's push channel: it says so when the session ends elsewhere (a back-channel
    /// logout, a sign-out in another browser tab), and every tab learns it at once.
    ///
    /// The browser reconnects by itself after a network error, but not after an answer other
    /// than 200 (a 503 while the store is down, a proxy's 502 during a deploy): the stream is
    /// then closed for good, so it is opened again here, after a capped backoff.
    fn open_push_channel(self: &Rc<Self>, refused_before: u32) {
        if self.state.borrow().stopped {
            return;
        }
        let Ok(source) = web_sys::EventSource::new(EVENTS_PATH) else { return };
        let push_channel = self.context.writers().push_channel;
        push_channel.set(Watch::Connecting);
        let weak = Rc::downgrade(self);
        let on_ended = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(this) = weak.upgrade() {
                this.ended_elsewhere("the server ended the session (signed out elsewhere)");
            }
        });
        let opened = Rc::new(std::cell::Cell::new(false));
        let on_open = {
            let opened = opened.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                opened.set(true);
                push_channel.set(Watch::Watching);
            })
        };
        let (reader, weak) = (source.clone(), Rc::downgrade(self));
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if reader.ready_state() != web_sys::EventSource::CLOSED {
                push_channel.set(Watch::Connecting);
                return;
            }
            push_channel.set(Watch::Stopped);
            // Refused: open anew later (from a timer, not from inside this listener, whose
            // closure the new channel replaces).
            let refused = if opened.get() { 0 } else { refused_before + 1 };
            let delay = schedule::retry_delay_ms(refused, 0, js_sys::Math::random());
            let weak = weak.clone();
            let _ = set_timeout_with_handle(
                move || {
                    if let Some(this) = weak.upgrade() {
                        this.open_push_channel(refused);
                    }
                },
                millis(delay),
            );
        });
        let _ = source.add_event_listener_with_callback("session-ended", on_ended.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("open", on_open.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref());
        *self.events.borrow_mut() = Some((source, vec![on_ended, on_open, on_error]));
    }

    /// The session ended outside this tab: say so, keep the draft, stop everything.
    fn ended_elsewhere(&self, why: &str) {
        if self.state.borrow().stopped {
            return;
        }
        self.context.log(AuthEventKind::UserSessionChanged, why);
        self.stop(ReauthReason::EndedElsewhere);
    }

    /// check_session's re-check found no session of this user at the provider. The server, which
    /// saw the same answer, has ended the session too and said so on the push channel, which may
    /// have stopped this tab first: the line says what happened either way.
    fn signed_out_at_the_provider(&self) {
        self.context.log(AuthEventKind::UserSessionChanged, "signed out at the provider (check_session)");
        if !self.state.borrow().stopped {
            self.stop(ReauthReason::EndedElsewhere);
        }
    }

    /// check_session's re-check found this user at the provider, but the provider will not go on
    /// without them (consent or terms to accept: OIDC Core §3.1.2.6). Not a sign-out: the server
    /// keeps the session. But the provider session this tab was watching is gone, so every tab
    /// stops and offers to sign in again, as a renewal answered the same would.
    fn provider_needs_the_user(&self, reason: ReauthReason) {
        if self.state.borrow().stopped {
            return;
        }
        self.context.log(
            AuthEventKind::UserSessionChanged,
            format!("check_session: the provider needs the user first ({}): sign in again", reason.as_str()),
        );
        self.stop(reason);
        self.post(&TabMessage::SessionEnded { subject: self.subject.clone(), reason });
    }

    fn on_verdict(self: &Rc<Self>, verdict: Verdict) {
        let check_session = self.context.writers().check_session;
        match verdict {
            Verdict::Trusted => check_session.set(Watch::Watching),
            Verdict::Recheck => {
                check_session.set(Watch::Rechecking);
                self.recheck_provider_session();
            }
            Verdict::Note(text) => self.context.log(AuthEventKind::UserSessionChanged, text),
            Verdict::Stopped(reason) => {
                check_session.set(Watch::Stopped);
                self.context.log(AuthEventKind::CheckSessionStopped, reason);
                if let Some(monitor) = self.monitor.borrow_mut().take() {
                    monitor.stop();
                }
            }
        }
    }

    /// check_session said `changed`: ask the provider with `prompt=none` (the silent renew
    /// iframe) whether this user still has a session there.
    fn recheck_provider_session(self: &Rc<Self>) {
        self.context.log(AuthEventKind::UserSessionChanged, "check_session: changed; re-checking with prompt=none");
        let this = self.clone();
        spawn_local(async move {
            let timeout = Duration::from_secs(this.policy.silent_renew_timeout_secs);
            let runner = this.clone();
            let outcome = tabs::with_lock(RENEWAL_LOCK, async move { runner.silent.run(timeout).await }).await;
            let same_user = match outcome {
                Some(IframeOutcome::Renewed) => match get_session().await {
                    Ok(info) if info.authenticated && info.subject.as_deref() == Some(this.subject.as_str()) => {
                        this.adopt(&info, "renewed (iframe)");
                        info.session_state
                    }
                    Ok(_) => {
                        this.signed_out_at_the_provider();
                        None
                    }
                    Err(_) => None,
                },
                Some(IframeOutcome::Interactive(
                    reason @ (ReauthReason::ConsentRequired | ReauthReason::InteractionRequired),
                )) => {
                    this.provider_needs_the_user(reason);
                    None
                }
                Some(IframeOutcome::Interactive(_)) => {
                    this.signed_out_at_the_provider();
                    None
                }
                Some(IframeOutcome::Transient(_)) | None => None,
            };
            let monitor = this.monitor.borrow().clone();
            if monitor.is_some() && !this.state.borrow().stopped {
                // With a new session_state trust starts over: live again at its first `unchanged`.
                let watch = if same_user.is_some() { Watch::Connecting } else { Watch::Paused };
                this.context.writers().check_session.set(watch);
            }
            if let Some(verdict) = monitor.and_then(|monitor| monitor.rechecked(same_user)) {
                this.on_verdict(verdict);
            }
        });
    }

    /// Takes the expiry in `info` as current and schedules the next renewal from it.
    fn adopt(self: &Rc<Self>, info: &SessionInfo, why: &str) {
        let (Some(expires_at), Some(expires_in)) = (info.access_token_expires_at, info.access_token_expires_in) else {
            return;
        };
        self.adopt_expiry(expires_at, expires_in, why);
    }

    fn adopt_expiry(self: &Rc<Self>, expires_at: u64, expires_in: u64, why: &str) {
        let writers = self.context.writers();
        let new_token = self.context.expires_at.get_untracked() != Some(expires_at);
        if new_token {
            self.context
                .log(AuthEventKind::UserLoaded, format!("{why}; access token expires {}", utc_time(expires_at)));
            // Renewed, here or in another tab: a failure this tab last saw is over, and its
            // notice with it.
            if matches!(self.context.last_outcome.get_untracked(), Some(RefreshOutcome::Transient { .. })) {
                writers.last_outcome.set(Some(RefreshOutcome::Renewed { expires_at, expires_in }));
                writers.last_error.set(None);
            }
        }
        writers.expires_at.set(Some(expires_at));
        let now = now_ms();
        writers.expires_at_ms.set(Some(now + expires_in as f64 * 1000.0));
        {
            let mut state = self.state.borrow_mut();
            state.expires_ms = now + expires_in as f64 * 1000.0;
            state.due_ms = schedule::renewal_due_ms(now, expires_in, self.policy, js_sys::Math::random());
            state.failures = 0;
            // A new access token, from this tab or another: the iframe's bound was for the old one.
            if new_token {
                state.iframe_failures = 0;
            }
        }
        self.arm();
    }

    /// Sets the renewal timer for `due_ms` and the expiry timer for `expires_ms`.
    fn arm(self: &Rc<Self>) {
        self.disarm();
        let now = now_ms();
        let (due, expires) = {
            let state = self.state.borrow();
            (state.due_ms, state.expires_ms)
        };
        let this = self.clone();
        let renew_timer = set_timeout_with_handle(
            move || {
                this.context.log(AuthEventKind::AccessTokenExpiring, "renewal is due");
                this.renew();
            },
            millis(due - now),
        );
        let this = self.clone();
        let expiry_timer = set_timeout_with_handle(move || this.on_expiry(), millis(expires - now));
        let mut state = self.state.borrow_mut();
        state.renew_timer = renew_timer.ok();
        state.expiry_timer = expiry_timer.ok();
    }

    fn disarm(&self) {
        self.cancel_renewal_timer();
        if let Some(timer) = self.state.borrow_mut().expiry_timer.take() {
            timer.clear();
        }
    }

    /// Cancels a pending renewal or retry, but not the expiry timer: a renewal that keeps failing
    /// must still say when the access token ran out.
    fn cancel_renewal_timer(&self) {
        if let Some(timer) = self.state.borrow_mut().renew_timer.take() {
            timer.clear();
        }
    }

    fn on_expiry(&self) {
        let (expired, stopped, gave_up) = {
            let state = self.state.borrow();
            (now_ms() >= state.expires_ms, state.stopped, state.iframe_failures >= schedule::MAX_IFRAME_FAILURES)
        };
        if expired && !stopped {
            self.context.log(AuthEventKind::AccessTokenExpired, "the access token expired before a renewal");
            if gave_up {
                self.stop(ReauthReason::RenewalFailed);
            }
        }
    }

    /// After a wake-up, a visible tab or a network back: renew now if the token is due or a
    /// retry is waiting, else re-arm the timers (which may have been throttled).
    fn recheck(self: &Rc<Self>, why: &str) {
        let (stopped, in_flight, due, failures) = {
            let state = self.state.borrow();
            (state.stopped, state.in_flight, state.due_ms, state.failures)
        };
        if stopped || in_flight {
            return;
        }
        if now_ms() >= due || failures > 0 {
            self.context.log(AuthEventKind::AccessTokenExpiring, format!("{why}: renewal is due"));
            self.renew();
        } else {
            self.arm();
        }
    }

    /// One renewal attempt, under the tabs' lock.
    fn renew(self: &Rc<Self>) {
        {
            let mut state = self.state.borrow_mut();
            if state.in_flight || state.stopped || !self.context.acting_for_user() {
                return;
            }
            state.in_flight = true;
        }
        self.cancel_renewal_timer();
        self.context.writers().status.set(AuthStatus::Renewing);
        let this = self.clone();
        spawn_local(async move {
            let attempt = tabs::with_lock(RENEWAL_LOCK, this.clone().attempt()).await;
            this.state.borrow_mut().in_flight = false;
            let outcome = attempt.unwrap_or_else(|| {
                let lost = RefreshOutcome::Transient { retry_after: 0, detail: "the browser lost the task".into() };
                Attempt::Outcome(lost, RenewalPath::RefreshToken)
            });
            this.settle(outcome);
        });
    }

    async fn attempt(self: Rc<Self>) -> Attempt {
        // Another tab may have renewed while this one waited for the lock: adopting its renewal
        // costs a read of the session and no token request.
        if let Ok(info) = in_time(get_session()).await {
            if !info.authenticated || info.subject.as_deref() != Some(self.subject.as_str()) {
                let signed_out = RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut };
                return Attempt::Outcome(signed_out, RenewalPath::RefreshToken);
            }
            let known = self.context.expires_at.get_untracked();
            if schedule::renewed_meanwhile(known, &info, self.policy) {
                return Attempt::Adopted(info);
            }
            self.state.borrow_mut().has_refresh_token = info.has_refresh_token;
        }
        let strategy = self.policy.strategy;
        if schedule::first_path(strategy, self.state.borrow().has_refresh_token) == RenewalPath::RefreshToken {
            match in_time(refresh()).await {
                Ok(RefreshOutcome::ReauthRequired { reason }) if schedule::iframe_after_refresh(strategy, reason) => {
                    self.context.log(
                        AuthEventKind::SilentRenewError,
                        format!("refresh token refused ({}); trying the iframe", reason.as_str()),
                    );
                }
                Ok(outcome) => return Attempt::Outcome(outcome, RenewalPath::RefreshToken),
                Err(error) => {
                    let transient = RefreshOutcome::Transient { retry_after: 0, detail: unreachable(&error) };
                    return Attempt::Outcome(transient, RenewalPath::RefreshToken);
                }
            }
        }
        Attempt::Outcome(self.renew_in_iframe().await, RenewalPath::Iframe)
    }

    /// The iframe path; a "renewed" is confirmed by the session the server now has.
    async fn renew_in_iframe(&self) -> RefreshOutcome {
        if self.state.borrow().iframe_failures >= schedule::MAX_IFRAME_FAILURES {
            let detail = "silent renew gave up until the access token expires".into();
            return RefreshOutcome::Transient { retry_after: 0, detail };
        }
        let timeout = Duration::from_secs(self.policy.silent_renew_timeout_secs);
        match self.silent.run(timeout).await {
            IframeOutcome::Renewed => match in_time(get_session()).await {
                Ok(SessionInfo {
                    authenticated: true,
                    access_token_expires_at: Some(expires_at),
                    access_token_expires_in: Some(expires_in),
                    has_refresh_token,
                    ..
                }) => {
                    self.state.borrow_mut().has_refresh_token = has_refresh_token;
                    RefreshOutcome::Renewed { expires_at, expires_in }
                }
                Ok(_) => RefreshOutcome::ReauthRequired { reason: ReauthReason::SignedOut },
                Err(error) => RefreshOutcome::Transient { retry_after: 0, detail: unreachable(&error) },
            },
            IframeOutcome::Interactive(reason) => RefreshOutcome::ReauthRequired { reason },
            IframeOutcome::Transient(detail) => RefreshOutcome::Transient { retry_after: 0, detail },
        }
    }

    fn settle(self: &Rc<Self>, attempt: Attempt) {
        // The session ended while this attempt was on its way (a sign-out in another tab, the
        // server's push): whatever it brings back, the tab stays signed out, and nothing may make
        // it act for the user again (a draft the user chose to delete would be saved again). So
        // with the user signing out in this tab.
        if self.state.borrow().stopped || !self.context.acting_for_user() {
            // Still worth its line: why the renewal could not have gone on anyway.
            if let Attempt::Outcome(RefreshOutcome::ReauthRequired { reason }, path) = attempt {
                self.context.log(
                    AuthEventKind::SilentRenewError,
                    format!("renewal refused ({}): {}", path.label(), reason.as_str()),
                );
            }
            return;
        }
        let writers = self.context.writers();
        let (outcome, path) = match attempt {
            Attempt::Adopted(info) => {
                writers.status.set(AuthStatus::SignedIn);
                self.adopt(&info, "renewed in another tab");
                return;
            }
            Attempt::Outcome(outcome, path) => (outcome, path),
        };
        writers.last_outcome.set(Some(outcome.clone()));
        match outcome {
            RefreshOutcome::Renewed { expires_at, expires_in } => {
                writers.status.set(AuthStatus::SignedIn);
                writers.last_error.set(None);
                writers.renewals.update(|n| *n += 1);
                self.state.borrow_mut().iframe_failures = 0;
                self.adopt_expiry(expires_at, expires_in, &format!("renewed ({})", path.label()));
                self.post(&TabMessage::Renewed { subject: self.subject.clone(), expires_at, expires_in });
            }
            RefreshOutcome::Transient { retry_after, detail } => {
                writers.status.set(AuthStatus::SignedIn);
                let (failures, iframe_failures) = {
                    let mut state = self.state.borrow_mut();
                    state.failures += 1;
                    if path == RenewalPath::Iframe {
                        state.iframe_failures += 1;
                    }
                    (state.failures, state.iframe_failures)
                };
                writers.last_error.set(Some(detail.clone()));
                if iframe_failures >= schedule::MAX_IFRAME_FAILURES {
                    self.context.log(
                        AuthEventKind::SilentRenewError,
                        format!(
                            "transient ({}): {detail}; no more tries before the access token expires",
                            path.label()
                        ),
                    );
                    // Kept until the access token really expires (see `on_expiry`); if it already
                    // has, that is now.
                    if now_ms() >= self.state.borrow().expires_ms {
                        self.stop(ReauthReason::RenewalFailed);
                    }
                    return;
                }
                let delay = schedule::retry_delay_ms(failures, retry_after, js_sys::Math::random());
                self.context.log(
                    AuthEventKind::SilentRenewError,
                    format!("transient ({}): {detail}; retry in {:.1} s", path.label(), delay / 1000.0),
                );
                // A timer armed meanwhile (a re-read session, another tab's renewal) is replaced,
                // not left to fire a second renewal.
                self.cancel_renewal_timer();
                let this = self.clone();
                let timer = set_timeout_with_handle(move || this.renew(), millis(delay));
                self.state.borrow_mut().renew_timer = timer.ok();
            }
            RefreshOutcome::ReauthRequired { reason } => {
                self.context.log(
                    AuthEventKind::SilentRenewError,
                    format!("renewal refused ({}): {}", path.label(), reason.as_str()),
                );
                writers.last_error.set(Some(format!("sign-in required ({})", reason.as_str())));
                self.stop(reason);
                self.post(&TabMessage::SessionEnded { subject: self.subject.clone(), reason });
            }
        }
    }

    fn stop(&self, reason: ReauthReason) {
        self.state.borrow_mut().stopped = true;
        self.disarm();
        let writers = self.context.writers();
        if let Some(monitor) = self.monitor.borrow_mut().take() {
            monitor.stop();
            writers.check_session.set(Watch::Stopped);
        }
        if let Some((source, _)) = self.events.borrow_mut().take() {
            source.close();
            writers.push_channel.set(Watch::Stopped);
        }
        self.context.end_session(reason);
    }

    fn on_tab_message(self: &Rc<Self>, message: TabMessage) {
        // A stopped tab takes no renewal and no second ending; but a sign-out reaches it too, so
        // that it shows nothing of the user, and drops the draft if the user chose that.
        let stopped = self.state.borrow().stopped;
        match message {
            // A tab waiting for the lock adopts the renewal when it gets it, by reading the session.
            // One delivered late (this tab was frozen) may be older than the token it knows. A tab
            // whose user is signing out stays signed out, as `settle` keeps it.
            TabMessage::Renewed { subject, expires_at, expires_in }
                if subject == self.subject
                    && !stopped
                    && self.context.acting_for_user()
                    && !self.state.borrow().in_flight
                    && self.context.expires_at.get_untracked().is_none_or(|known| expires_at > known) =>
            {
                self.context.writers().status.set(AuthStatus::SignedIn);
                self.adopt_expiry(expires_at, expires_in, "renewed in another tab");
            }
            TabMessage::SessionEnded { subject, reason } if subject == self.subject && !stopped => self.stop(reason),
            // Signed out in another tab: this one shows nothing of the user any more. The draft is
            // kept (saved as the page goes) or dropped, as the user chose there.
            TabMessage::SignedOut { subject, keep_draft, from }
                if subject == self.subject && from != self.context.tab_id =>
            {
                if !keep_draft {
                    self.context.signing_out();
                    crate::draft::clear(&subject);
                }
                self.stop(ReauthReason::SignedOut);
                // Leave once the server has ended the session (the other tab's request is on its
                // way): a page loaded before that would still show the user.
                spawn_local(async move {
                    for _ in 0..25 {
                        if get_session().await.map(|info| !info.authenticated).unwrap_or(false) {
                            break;
                        }
                        sleep(Duration::from_millis(100)).await;
                    }
                    let _ = window().location().replace("/");
                });
            }
            _ => {}
        }
    }

    fn post(&self, message: &TabMessage) {
        if let Some(channel) = self.channel.borrow().as_ref() {
            channel.post(message);
        }
    }
}

/// What the user reads when the request itself failed: the network is gone (the browser could
/// not send it), or the server answered with an error (a 503 while its session store is down).
fn unreachable(error: &ServerFnError) -> String {
    let text = error.to_string();
    if text.contains(NO_ANSWER) {
        NO_ANSWER.into()
    } else if text.contains("Failed to fetch") || text.contains("NetworkError") {
        "the server cannot be reached (offline?)".into()
    } else {
        "the server is unavailable".into()
    }
}

/// A server function's answer, or [`NO_ANSWER`] after [`ANSWER_TIMEOUT`] (the request is dropped).
async fn in_time<T>(call: impl std::future::Future<Output = Result<T, ServerFnError>>) -> Result<T, ServerFnError> {
    let (call, timer) = (std::pin::pin!(call), std::pin::pin!(sleep(ANSWER_TIMEOUT)));
    match futures::future::select(call, timer).await {
        futures::future::Either::Left((answer, _)) => answer,
        futures::future::Either::Right(_) => Err(ServerFnError::new(NO_ANSWER)),
    }
}

async fn sleep(duration: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, duration.as_millis() as i32);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// A timer's delay. Browsers take an `i32` of milliseconds (about 24.8 days), and a longer one
/// would throw: it is cut to that, so such a token is renewed early rather than never.
fn millis(ms: f64) -> Duration {
    Duration::from_millis(ms.clamp(0.0, f64::from(i32::MAX)) as u64)
}

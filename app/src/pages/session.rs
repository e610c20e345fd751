//! The session dashboard: the access token's countdown, the refresh token family, check_session
//! and the push channel, the renewals of the last minutes on a timeline, the event log, and in
//! development the fault panel that makes each failure happen on purpose.
//!
//! Everything here is read, never written: the renewal driver keeps the context's signals, the
//! server keeps the journal. The journal is read again after every event the driver logs and
//! every fault injected; once the session has ended, the last one read stays on screen.

use std::time::Duration;

use leptos::prelude::*;

use crate::{
    auth::{get_session_details, now_ms, AuthContext, RenewStrategy, SessionDetails},
    components::{
        use_now, EventLog, FaultPanel, RenewalTimeline, RequireSignIn, SessionNotice, TokenCountdown, TIMELINE_MINUTES,
    },
    format::{span, utc_time},
};

#[component]
pub fn SessionPage() -> impl IntoView {
    view! {
        <h1>"Session"</h1>
        <RequireSignIn>
            <Dashboard/>
        </RequireSignIn>
    }
}

#[component]
fn Dashboard() -> impl IntoView {
    let first = Resource::new(|| (), |_| get_session_details());
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Reading the session…"</p> }>
            {move || Suspend::new(async move {
                first.await.ok().flatten().map(|details| view! { <Panels first=details/> })
            })}
        </Suspense>
    }
}

/// The journal as last read, and how far the server's clock is ahead of this browser's.
#[derive(Clone)]
struct Latest {
    details: SessionDetails,
    offset_ms: f64,
}

impl Latest {
    fn new(details: SessionDetails) -> Self {
        let offset_ms = details.server_now_ms as f64 - now_ms();
        Self { details, offset_ms }
    }
}

#[component]
fn Panels(first: SessionDetails) -> impl IntoView {
    let auth = expect_context::<AuthContext>();
    let dev_faults = first.dev_faults;
    let latest = RwSignal::new(Latest::new(first));
    let reload = RwSignal::new(0_u32);
    Effect::new(move |previous: Option<()>| {
        auth.events.with(Vec::len);
        reload.track();
        if previous.is_some() {
            leptos::task::spawn_local(async move {
                if let Ok(Some(details)) = get_session_details().await {
                    latest.set(Latest::new(details));
                }
            });
        }
    });

    let now = use_now(Duration::from_secs(1));
    // Now by the server's clock, which the journal's times are in; 0 until the clock ticks.
    let server_now = Signal::derive(move || match now.get() {
        0.0 => 0.0,
        now => now + latest.with(|l| l.offset_ms),
    });
    let (ended_at, set_ended_at) = signal(None::<f64>);
    Effect::new(move |_| {
        if auth.reauth_required() && ended_at.get_untracked().is_none() {
            set_ended_at.set(Some(now_ms() + latest.with_untracked(|l| l.offset_ms)));
        }
    });

    let journal = move || latest.with(|l| l.details.journal.clone());
    let entries = Signal::derive(move || latest.with(|l| l.details.journal.entries.clone()));
    let ago = move |at: u64| {
        let now = server_now.get() / 1000.0;
        (now > 0.0).then(|| format!(", {} ago", span((now as u64).saturating_sub(at))))
    };
    let family_end = move || match (latest.with(|l| l.details.has_refresh_token), journal().refresh_expires_at) {
        (false, _) => "no refresh token".to_owned(),
        (true, None) => "not said by the provider".to_owned(),
        (true, Some(at)) => {
            let now = server_now.get() / 1000.0;
            let left = (now > 0.0).then(|| format!(" (in {})", span(at.saturating_sub(now as u64))));
            format!("{}{}", utc_time(at), left.unwrap_or_default())
        }
    };
    let strategy = move || {
        let info = auth.session.get().and_then(Result::ok).and_then(|info| info.renewal);
        match info.map(|policy| policy.strategy) {
            Some(RenewStrategy::RefreshToken) => "refresh token, then the iframe",
            Some(RenewStrategy::Iframe) => "iframe (prompt=none)",
            Some(RenewStrategy::Auto) | None => "refresh token if held, else the iframe",
        }
    };

    view! {
        <SessionNotice kept="Nothing you typed elsewhere is lost."/>
        <div class="dashboard">
            <section class="card stat" aria-labelledby="access-token-title">
                <h2 id="access-token-title">"Access token"</h2>
                <p class="big">"Expires in " <TokenCountdown/></p>
                <dl>
                    <dt>"Status"</dt>
                    <dd data-testid="dash-status">{move || auth.status.get().label()}</dd>
                    <dt>"Expires at"</dt>
                    <dd data-testid="dash-expiry">{move || auth.expires_at.get().map(utc_time).unwrap_or_default()}</dd>
                    <dt>"Renewals seen here"</dt>
                    <dd data-testid="dash-renewals">{move || auth.renewals.get()}</dd>
                </dl>
            </section>
            <section class="card stat" aria-labelledby="family-title">
                <h2 id="family-title">"Refresh token family"</h2>
                <dl>
                    <dt>"Rotations"</dt>
                    <dd data-testid="rotations">{move || journal().rotations}</dd>
                    <dt>"Signed in"</dt>
                    <dd data-testid="signed-in-at">
                        {move || utc_time(journal().signed_in_at)}
                        {move || ago(journal().signed_in_at)}
                    </dd>
                    <dt>"Usable until"</dt>
                    <dd data-testid="family-ends">{family_end}</dd>
                </dl>
            </section>
            <section class="card stat" aria-labelledby="watch-title">
                <h2 id="watch-title">"Monitoring"</h2>
                <dl>
                    <dt>"Renewal"</dt>
                    <dd>{strategy}</dd>
                    <dt>"check_session"</dt>
                    <dd data-testid="check-session-state">{move || auth.check_session.get().label()}</dd>
                    <dt>"Push channel"</dt>
                    <dd data-testid="push-channel-state">{move || auth.push_channel.get().label()}</dd>
                </dl>
            </section>
        </div>
        <section class="card" aria-labelledby="timeline-title">
            <h2 id="timeline-title">{format!("Renewals, last {TIMELINE_MINUTES} minutes")}</h2>
            <p class="legend muted">
                <span class="key ok">"●"</span> " renewed " <span class="key transient">"○"</span> " failed for now "
                <span class="key refused">"✕"</span> " refused " <span class="key fault">"┆"</span> " fault injected "
                <span class="key ended">"│"</span> " session ended"
            </p>
            <RenewalTimeline entries now=server_now ended_at/>
        </section>
        <div class="dashboard-lower">
            {dev_faults.then(|| view! { <FaultPanel on_injected=Callback::new(move |()| reload.update(|n| *n += 1))/> })}
            <section class="card">
                <EventLog/>
            </section>
        </div>
    }
}

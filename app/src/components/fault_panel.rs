//! The fault panel, in development only (the server mounts `/dev/faults/*` when the embedded
//! provider runs): one button per failure a session meets in the wild, injected for real, and a
//! line on what the app should do about it. What it does shows on the timeline and in the event
//! log beside it.

use leptos::prelude::*;

use crate::auth::AuthContext;

struct Fault {
    /// As `/dev/faults/{name}` names it.
    name: &'static str,
    label: &'static str,
    /// What the app should do, for the reader to check against the timeline.
    expect: &'static str,
    /// A switch that stays on until turned off, rather than a one-off.
    switch: bool,
    /// Once injected, the renewal driver reads the session again at once.
    resync: bool,
}

static FAULTS: [Fault; 7] = [
    Fault {
        name: "expire-access-token",
        label: "Expire the access token now",
        expect: "A renewal at once, by the configured path.",
        switch: false,
        resync: true,
    },
    Fault {
        name: "slow-provider",
        label: "Slow provider",
        expect: "Renewals take 3 s; the status says renewing meanwhile, and nothing else waits.",
        switch: true,
        resync: false,
    },
    Fault {
        name: "provider-down",
        label: "Provider down (503)",
        expect: "Transient failures, retried with backoff; the session and the draft stay.",
        switch: true,
        resync: false,
    },
    Fault {
        name: "lose-next-response",
        label: "Lose the next token response",
        expect: "The provider rotated, the app never heard: the retry presents the retired token.",
        switch: false,
        resync: false,
    },
    Fault {
        name: "refresh-token-reuse",
        label: "Replay a retired refresh token",
        expect: "Reuse detection: the provider revokes the family and ends its session; sign-in required.",
        switch: false,
        resync: false,
    },
    Fault {
        name: "end-provider-session",
        label: "End the provider session",
        expect: "check_session sees changed, prompt=none says login_required: signed out elsewhere.",
        switch: false,
        resync: false,
    },
    Fault {
        name: "backchannel-logout",
        label: "Send a back-channel logout",
        expect: "The server ends the session and every tab hears it at once.",
        switch: false,
        resync: false,
    },
];

#[component]
pub fn FaultPanel(
    /// Called after each injected fault, to read the session's journal again.
    on_injected: Callback<()>,
) -> impl IntoView {
    let auth = expect_context::<AuthContext>();
    let (result, set_result) = signal(String::new());
    let (busy, set_busy) = signal(false);
    let switches = RwSignal::new(std::collections::HashMap::<&'static str, bool>::new());
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        if let Ok(state) = client::send("GET", "/dev/faults").await {
            switches.set(
                [("slow-provider", "slow_provider"), ("provider-down", "provider_down")]
                    .into_iter()
                    .map(|(name, field)| (name, state[field].as_bool().unwrap_or(false)))
                    .collect(),
            );
        }
    });

    let inject = move |fault: &'static Fault| {
        let on = !fault.switch || !switches.with(|s| s.get(fault.name).copied().unwrap_or(false));
        set_busy.set(true);
        set_result.set(format!("Injecting {}…", fault.name));
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let path = format!("/dev/faults/{}?on={on}", fault.name);
            match client::send("POST", &path).await {
                Ok(answer) => {
                    if fault.switch {
                        switches.update(|s| {
                            s.insert(fault.name, on);
                        });
                    }
                    set_result.set(answer["detail"].as_str().unwrap_or("done").to_owned());
                    if fault.resync {
                        auth.resync();
                    }
                }
                Err(error) => set_result.set(format!("Not injected: {error}")),
            }
            set_busy.set(false);
            // The page may have gone meanwhile, and its callback with it.
            let _ = on_injected.try_run(());
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (on, on_injected, fault.resync);
    };

    view! {
        <section class="card fault-panel" aria-labelledby="fault-panel-title" data-testid="fault-panel">
            <h2 id="fault-panel-title">"Fault panel"</h2>
            <p class="muted">"Development only. Each fault is injected for real, at the provider or in this server."</p>
            <ul>
                {FAULTS
                    .iter()
                    .map(|fault| {
                        let pressed = move || {
                            fault.switch.then(|| switches.with(|s| s.get(fault.name).copied().unwrap_or(false)).to_string())
                        };
                        view! {
                            <li>
                                <button
                                    type="button"
                                    class="secondary"
                                    data-fault=fault.name
                                    aria-pressed=pressed
                                    // Busy: `aria-disabled`, so that the pressed button keeps the focus.
                                    aria-disabled=move || busy.get().then_some("true")
                                    disabled=move || auth.reauth_required()
                                    on:click=move |_| {
                                        if !busy.get_untracked() {
                                            inject(fault)
                                        }
                                    }
                                >
                                    {fault.label}
                                </button>
                                <span class="muted">{fault.expect}</span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            <p role="status" data-testid="fault-result">{result}</p>
        </section>
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    /// A same-origin request to the fault routes; the answer's JSON, or its `error`.
    pub async fn send(method: &str, path: &str) -> Result<serde_json::Value, String> {
        let unreachable = |_| "the server cannot be reached".to_owned();
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        let response: web_sys::Response =
            JsFuture::from(leptos::prelude::window().fetch_with_str_and_init(path, &init))
                .await
                .map_err(unreachable)?
                .dyn_into()
                .map_err(unreachable)?;
        let text = JsFuture::from(response.text().map_err(unreachable)?).await.map_err(unreachable)?;
        let body: serde_json::Value = serde_json::from_str(&text.as_string().unwrap_or_default()).unwrap_or_default();
        match response.ok() {
            true => Ok(body),
            false => Err(body["error"].as_str().map_or_else(|| format!("HTTP {}", response.status()), str::to_owned)),
        }
    }
}

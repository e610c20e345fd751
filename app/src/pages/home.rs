//! The home page: the session as the server sees it, how it is being kept alive, and the way in.

use leptos::{either::Either, prelude::*};

use crate::{
    auth::{login_url, AuthContext, SessionInfo},
    components::{EventLog, SessionNotice, SessionPanel},
    format::utc_time,
};

#[component]
pub fn HomePage() -> impl IntoView {
    let session = expect_context::<AuthContext>().session;
    view! {
        <h1>"OpenID Connect session demo"</h1>
        <p>
            "Sign in with the authorization code flow and PKCE. The server keeps the tokens; \
             this page only ever learns what is below."
        </p>
        <Suspense fallback=|| view! { <p class="muted">"Loading session…"</p> }>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(info) if info.authenticated => Either::Left(view! { <SignedIn info/> }),
                    _ => Either::Right(view! { <SignedOut/> }),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SignedIn(info: SessionInfo) -> impl IntoView {
    let expires = info.access_token_expires_at.map(utc_time).unwrap_or_else(|| "unknown".into());
    view! {
        <SessionNotice kept="Nothing on this page is lost."/>
        <section class="card" data-testid="session-status" data-authenticated="true">
            <h2>"Signed in as " {info.display_name.clone()}</h2>
            <dl>
                <dt>"Subject"</dt>
                <dd data-testid="subject">{info.subject.clone()}</dd>
                <dt>"Access token expires"</dt>
                <dd data-testid="access-token-expiry">{expires}</dd>
                <dt>"Provider session (sid)"</dt>
                <dd>{info.sid.clone()}</dd>
            </dl>
        </section>
        <section class="card">
            <h2>"Keeping the session alive"</h2>
            <SessionPanel/>
        </section>
        <EventLog/>
    }
}

#[component]
fn SignedOut() -> impl IntoView {
    view! {
        <section class="card" data-testid="session-status" data-authenticated="false">
            <h2>"You are signed out"</h2>
            <a class="button" href=login_url("/") rel="external">"Sign in"</a>
        </section>
    }
}

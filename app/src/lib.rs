//! The shared Leptos crate: rendered on the server (`ssr`) and hydrated in the browser
//! (`hydrate`). It never sees a token: the server keeps them, and hands this crate only what the
//! page may show.
//!
//! Module map:
//! - [`auth`]: what both sides share about the session: [`auth::SessionInfo`] (the JSON of
//!   `GET /auth/session`), the server functions that read it, the client auth context, and the
//!   links into the server's `/auth/*` routes.
//! - [`pages`]: one file per page: home, profile, the long form, the session dashboard.
//! - [`components`]: reusable view pieces (the sign-in gate, the session panel, the event log,
//!   the countdown, the renewal timeline, the fault panel).
//! - [`report`]: the incident report the long form fills in; [`draft`]: its draft in the browser.
//! - [`format`]: times as the pages show them.

pub mod auth;
pub mod components;
pub mod draft;
pub mod format;
pub mod pages;
pub mod report;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path, SsrMode,
};

use crate::pages::{FormPage, HomePage, NotFound, ProfilePage, SessionPage};

/// The HTML document the server renders around [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    auth::provide_auth_context();

    view! {
        <Stylesheet id="leptos" href="/pkg/oidc-session.css"/>
        <Title text="OIDC session demo"/>
        <Router>
            <header class="top">
                <nav>
                    <A href="/">"Home"</A>
                    <A href="/profile">"Profile"</A>
                    <A href="/form">"Long form"</A>
                    <A href="/session">"Session"</A>
                </nav>
                <components::SessionBadge/>
            </header>
            <main>
                <Routes fallback=NotFound>
                    <Route path=path!("") view=HomePage/>
                    // Protected pages render only when the session is known, so that a signed-out
                    // visit can still become a redirect before any byte is sent.
                    <Route path=path!("/profile") view=ProfilePage ssr=SsrMode::Async/>
                    <Route path=path!("/form") view=FormPage ssr=SsrMode::Async/>
                    <Route path=path!("/session") view=SessionPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

//! The least a hydrated Leptos 0.8 app of this kind carries: the router with two pages and a
//! link, a `<title>`, one server function read through a `Resource` under `Suspense`, one
//! `ServerAction` behind a form, a signal. No sign-in, no renewal, no dashboard: what the
//! framework costs before the app adds anything.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub name: Option<String>,
    pub expires_at: u64,
}

#[server]
pub async fn get_session() -> Result<Session, ServerFnError> {
    Ok(Session { name: None, expires_at: 0 })
}

#[server]
pub async fn save(text: String) -> Result<usize, ServerFnError> {
    Ok(text.len())
}

#[component]
fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="floor"/>
        <Router>
            <nav><A href="/">"Home"</A> <A href="/form">"Form"</A></nav>
            <main>
                <Routes fallback=|| "Not found.">
                    <Route path=path!("") view=Home/>
                    <Route path=path!("form") view=Form/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn Home() -> impl IntoView {
    let session = Resource::new(|| (), |_| get_session());
    view! {
        <Suspense fallback=|| "…">
            {move || Suspend::new(async move {
                session.await.ok().map(|session| view! { <p>{session.name} " " {session.expires_at}</p> })
            })}
        </Suspense>
    }
}

#[component]
fn Form() -> impl IntoView {
    let save = ServerAction::<Save>::new();
    let (text, set_text) = signal(String::new());
    view! {
        <ActionForm action=save>
            <textarea name="text" on:input=move |ev| set_text.set(event_target_value(&ev))></textarea>
            <button>"Save"</button>
        </ActionForm>
        <p>{move || text.with(String::len)} " characters"</p>
        <p>{move || save.value().get().map(|saved| format!("{saved:?}"))}</p>
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}

//! The profile page: the ID token's verified claims, as the server holds them, and the userinfo
//! endpoint's answer when the server fetched it at sign-in (`auto_userinfo`).

use leptos::prelude::*;

use crate::{
    auth::{get_id_token_claims, get_userinfo_claims, Claims},
    components::RequireSignIn,
};

#[component]
pub fn ProfilePage() -> impl IntoView {
    view! {
        <h1>"Profile"</h1>
        <RequireSignIn>
            <Profile/>
        </RequireSignIn>
    }
}

#[component]
fn Profile() -> impl IntoView {
    let id_token = Resource::new(|| (), |_| get_id_token_claims());
    let userinfo = Resource::new(|| (), |_| get_userinfo_claims());
    view! {
        <p>"The claims of your ID token, verified by the server (signature, issuer, audience, expiry, nonce)."</p>
        <Suspense fallback=|| view! { <p class="muted">"Loading claims…"</p> }>
            {move || Suspend::new(async move {
                let claims = id_token.await.ok().flatten().unwrap_or_default();
                view! { <ClaimsTable claims testid="claims"/> }
            })}
            {move || Suspend::new(async move {
                userinfo.await.ok().flatten().map(|claims| view! {
                    <h2>"From the userinfo endpoint"</h2>
                    <ClaimsTable claims testid="userinfo-claims"/>
                })
            })}
        </Suspense>
    }
}

#[component]
fn ClaimsTable(claims: Claims, testid: &'static str) -> impl IntoView {
    view! {
        <table class="claims" data-testid=testid>
            <thead><tr><th>"Claim"</th><th>"Value"</th></tr></thead>
            <tbody>
                {claims
                    .into_iter()
                    .map(|(name, value)| {
                        let shown = match value {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        view! { <tr><th scope="row">{name}</th><td>{shown}</td></tr> }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

//! The profile page: the ID token's verified claims, as the server holds them.

use leptos::prelude::*;

use crate::{auth::get_id_token_claims, components::RequireSignIn};

#[component]
pub fn ProfilePage() -> impl IntoView {
    view! {
        <h1>"Profile"</h1>
        <RequireSignIn>
            <ClaimsTable/>
        </RequireSignIn>
    }
}

#[component]
fn ClaimsTable() -> impl IntoView {
    let claims = Resource::new(|| (), |_| get_id_token_claims());
    view! {
        <p>"The claims of your ID token, verified by the server (signature, issuer, audience, expiry, nonce)."</p>
        <Suspense fallback=|| view! { <p class="muted">"Loading claims…"</p> }>
            <table class="claims" data-testid="claims">
                <thead><tr><th>"Claim"</th><th>"Value"</th></tr></thead>
                <tbody>
                    {move || Suspend::new(async move {
                        let claims = claims.await.ok().flatten().unwrap_or_default();
                        claims
                            .into_iter()
                            .map(|(name, value)| {
                                let shown = match value {
                                    serde_json::Value::String(s) => s,
                                    other => other.to_string(),
                                };
                                view! { <tr><th scope="row">{name}</th><td>{shown}</td></tr> }
                            })
                            .collect_view()
                    })}
                </tbody>
            </table>
        </Suspense>
    }
}

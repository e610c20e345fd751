//! The long form: several large text fields, the kind of page where losing a session must not
//! lose the work.

use leptos::prelude::*;

use crate::{auth::SubmitForm, components::RequireSignIn};

#[component]
pub fn FormPage() -> impl IntoView {
    view! {
        <h1>"Incident report"</h1>
        <RequireSignIn>
            <ReportForm/>
        </RequireSignIn>
    }
}

#[component]
fn ReportForm() -> impl IntoView {
    let submit = ServerAction::<SubmitForm>::new();
    let result = move || {
        submit.value().get().map(|outcome| match outcome {
            Ok(receipt) => format!("Received {} characters.", receipt.characters),
            Err(error) => format!("Not sent: {error}"),
        })
    };
    view! {
        <ActionForm action=submit attr:class="long-form">
            <label for="title">"Title"</label>
            <input id="title" name="title" type="text"/>
            <label for="summary">"Summary"</label>
            <textarea id="summary" name="summary" rows="6"></textarea>
            <label for="details">"What happened, in detail"</label>
            <textarea id="details" name="details" rows="16"></textarea>
            <label for="notes">"Notes"</label>
            <textarea id="notes" name="notes" rows="8"></textarea>
            <button type="submit">"Submit"</button>
        </ActionForm>
        <p role="status" data-testid="form-result">{result}</p>
    }
}

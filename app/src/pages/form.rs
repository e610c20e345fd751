//! The long form: an incident report of many fields, the kind of page where losing a session
//! must not lose the work.
//!
//! The fields are plain, uncontrolled inputs: nothing reactive writes to them, so a renewal
//! (which only touches the auth context's signals) cannot re-render, reset or re-mount them, and
//! value, focus, caret and scroll stay where the user left them. The draft is saved to this
//! browser's storage shortly after each keystroke, when the tab is hidden or left, and when the
//! session ends; it comes back on load, after a reload or a sign-in, for the same user only.
//!
//! The draft is one per user, and several tabs may show the form: a tab writes it only when the
//! user typed there since its last write, so a tab left open with an older or empty copy never
//! overwrites (or deletes) what was typed in another; and such a tab takes up the other tab's
//! draft as it is written, so that typing there later goes on from the newest text.

use leptos::{ev, html, prelude::*};

use crate::{
    auth::{now_ms, AuthContext, ReauthReason, SubmitForm, SubmitOutcome},
    components::{EventLog, RequireSignIn, SessionNotice, SessionPanel},
    draft,
    format::utc_time_ms,
    report::{FieldKind, Report, FIELDS},
};

/// How long typing must pause before the draft is written…
const AUTOSAVE_DEBOUNCE_MS: u64 = 400;
/// …and how often it is written anyway while the typing goes on without a pause.
const AUTOSAVE_MAX_WAIT_MS: f64 = 2_000.0;
/// Said when the browser would not keep the draft (its storage is off or full): the user must
/// not trust a sign-in redirect with their text.
const UNSAVED_NOTE: &str =
    "Your draft could not be saved on this device (its storage is off or full): keep this page open.";

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
    let auth = expect_context::<AuthContext>();
    let subject = StoredValue::new(auth.subject().unwrap_or_default());
    let form = NodeRef::<html::Form>::new();
    let submit = ServerAction::<SubmitForm>::new();
    let (draft_note, set_draft_note) = signal(String::new());
    let pending_save = StoredValue::new(None::<TimeoutHandle>);
    let last_saved_ms = StoredValue::new(0.0_f64);
    // Typed in this tab since the draft was last written from it (or taken from storage).
    let edited = StoredValue::new(false);
    // What the submit in flight sent: once it is saved, only that much is cleared.
    let submitted = StoredValue::new(None::<Report>);

    let save_draft = move || {
        if let Some(handle) = pending_save.get_value() {
            handle.clear();
            pending_save.set_value(None);
        }
        if !edited.get_value() {
            return;
        }
        if let Some(form) = form.get_untracked().filter(|_| auth.acting_for_user()) {
            last_saved_ms.set_value(now_ms());
            if subject.with_value(|subject| draft::save(subject, &fields::read(&form))) {
                edited.set_value(false);
                set_draft_note.set(format!("Draft saved on this device at {}.", utc_time_ms(now_ms())));
            } else {
                // Still unwritten: the next keystroke, or leaving the page, tries again.
                set_draft_note.set(UNSAVED_NOTE.into());
            }
        }
    };
    let save_draft_soon = move || {
        if now_ms() - last_saved_ms.get_value() >= AUTOSAVE_MAX_WAIT_MS {
            return save_draft();
        }
        if let Some(handle) = pending_save.get_value() {
            handle.clear();
        }
        let handle = set_timeout_with_handle(save_draft, std::time::Duration::from_millis(AUTOSAVE_DEBOUNCE_MS));
        pending_save.set_value(handle.ok());
    };

    // Restore the draft once the form is in the page (in the browser: the server has none), with
    // whatever was typed into the server's form before the page came alive; that is saved too.
    Effect::new(move |_| {
        let Some(form) = form.get() else { return };
        let typed = fields::read(&form);
        let typed_before = !typed.is_empty();
        if let Some(saved) = subject.with_value(|subject| draft::load(subject)) {
            fields::write(&form, &draft::with_typed(saved, typed));
            set_draft_note.set("Your draft was restored.".into());
        }
        if typed_before {
            edited.set_value(true);
            save_draft_soon();
        }
    });
    // Hidden or left: save now, whatever the debounce was waiting for.
    let on_hidden = window_event_listener(ev::visibilitychange, move |_| {
        if document().hidden() {
            save_draft();
        }
    });
    let on_pagehide = window_event_listener(ev::pagehide, move |_| save_draft());
    // Another tab wrote this user's draft (or cleared it, once its report was saved): a tab with
    // nothing of its own unwritten shows that, so the user goes on from the newest text here.
    let on_storage = window_event_listener(ev::storage, move |event| {
        let key = event.key();
        if edited.get_value() || !subject.with_value(|subject| draft::is_draft_of(subject, key.as_deref())) {
            return;
        }
        if let Some(form) = form.get_untracked() {
            match subject.with_value(|subject| draft::load(subject)) {
                Some(newer) => fields::write(&form, &newer),
                None => form.reset(),
            }
        }
    });
    on_cleanup(move || {
        on_hidden.remove();
        on_pagehide.remove();
        on_storage.remove();
        // Left for another page of the app within the debounce: write what was waiting now (the
        // form is still readable here; its nodes go after the cleanups).
        if pending_save.get_value().is_some() {
            save_draft();
        }
    });
    // The session ended: make sure the very last keystrokes are in the draft too.
    Effect::new(move |_| {
        if auth.reauth_required() {
            save_draft();
        }
    });
    // After a save: drop the draft, unless the user typed on while it was on its way, here or in
    // another tab (that text is not in the report, so it stays, in the form and in the draft);
    // after a refusal for want of a session: renew, and if that fails, say so everywhere.
    Effect::new(move |_| match submit.value().get() {
        Some(Ok(SubmitOutcome::Saved { .. })) => {
            let Some(form) = form.get_untracked() else { return };
            let sent = submitted.get_value();
            let stored = subject.with_value(|subject| draft::load(subject));
            if sent.as_ref() != Some(&fields::read(&form)) {
                edited.set_value(true);
                save_draft();
                set_draft_note.set("What you typed after sending is kept as a draft.".into());
            } else if let Some(newer) = stored.filter(|stored| Some(stored) != sent.as_ref()) {
                // Another tab typed on from this text meanwhile: its draft stays, and shows here.
                fields::write(&form, &newer);
                set_draft_note.set("What was typed after sending, in another tab, is kept as a draft.".into());
            } else {
                subject.with_value(|subject| draft::clear(subject));
                form.reset();
                edited.set_value(false);
                set_draft_note.set(String::new());
            }
        }
        // The server could not renew (no refresh token, or a refused one): the browser can still
        // try the iframe. If the session has ended, the driver says so everywhere.
        Some(Ok(SubmitOutcome::SessionEnded { .. })) => auth.renew_now(),
        _ => {}
    });

    let result = move || {
        submit.value().get().map(|outcome| match outcome {
            Ok(SubmitOutcome::Saved { characters }) => format!("Received {characters} characters."),
            Ok(SubmitOutcome::SessionEnded { reason: ReauthReason::NoRefreshToken | ReauthReason::InvalidGrant }) => {
                "Not sent: the session had to be renewed first. Your draft is kept; send it again.".into()
            }
            Ok(SubmitOutcome::SessionEnded { .. }) => {
                "Not sent: your session has ended. Your draft is kept on this device.".into()
            }
            Ok(SubmitOutcome::Unavailable { detail }) => format!("Not sent: {detail}. Your draft is kept; try again."),
            Ok(SubmitOutcome::Rejected { detail }) => format!("Not sent: {detail}."),
            Err(error) => format!("Not sent: {error}. Your draft is kept; try again."),
        })
    };

    view! {
        <div class="form-layout">
            <form
                class="long-form"
                node_ref=form
                on:input=move |_| {
                    edited.set_value(true);
                    save_draft_soon();
                }
                // Enter in a one-line field would send the report as it stands (implicit
                // submission) and empty the form: only the button sends.
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && event_target::<leptos::web_sys::Element>(&ev).tag_name() == "INPUT" {
                        ev.prevent_default();
                    }
                }
                on:submit=move |ev| {
                    ev.prevent_default();
                    if submit.pending().get_untracked() {
                        return;
                    }
                    save_draft();
                    if let Some(form) = form.get_untracked() {
                        let report = fields::read(&form);
                        submitted.set_value(Some(report.clone()));
                        submit.dispatch(SubmitForm { report, subject: subject.get_value() });
                    }
                }
            >
                {FIELDS
                    .iter()
                    .map(|field| {
                        let input = match field.kind {
                            FieldKind::Line => {
                                view! { <input id=field.name name=field.name type="text" autocomplete="off"/> }
                                    .into_any()
                            }
                            FieldKind::Text { rows } => {
                                view! { <textarea id=field.name name=field.name rows=rows></textarea> }.into_any()
                            }
                        };
                        view! {
                            <label for=field.name>{field.label}</label>
                            {input}
                        }
                    })
                    .collect_view()}
                // Not `disabled`: a disabled button loses the keyboard's focus while it sends.
                <button type="submit" aria-disabled=move || submit.pending().get().then_some("true")>
                    "Submit"
                </button>
            </form>
            <aside class="form-aside">
                // Beside the form, not above it: a notice that comes and goes must not move the
                // text being typed.
                <SessionNotice kept="Your draft is saved on this device."/>
                // In sight while typing; a draft that could not be saved stands out.
                <p
                    class=move || draft_note.with(|note| if note == UNSAVED_NOTE { "notice unsaved" } else { "muted" })
                    data-testid="draft-status"
                >
                    {draft_note}
                </p>
                <SessionPanel/>
                <EventLog/>
            </aside>
        </div>
        <p role="status" data-testid="form-result">{result}</p>
    }
}

/// Reading and writing the form's fields in the page. On the server there is no page.
mod fields {
    use leptos::web_sys::HtmlFormElement;

    use crate::report::Report;

    #[cfg(feature = "hydrate")]
    pub fn read(form: &HtmlFormElement) -> Report {
        use wasm_bindgen::JsCast;
        use web_sys::{HtmlInputElement, HtmlTextAreaElement};

        let mut report = Report::default();
        for field in crate::report::FIELDS {
            let Some(element) = form.elements().named_item(field.name) else { continue };
            let value = match (element.dyn_ref::<HtmlInputElement>(), element.dyn_ref::<HtmlTextAreaElement>()) {
                (Some(input), _) => input.value(),
                (_, Some(area)) => area.value(),
                _ => continue,
            };
            report.fields.insert(field.name.to_owned(), value);
        }
        report
    }

    #[cfg(feature = "hydrate")]
    pub fn write(form: &HtmlFormElement, report: &Report) {
        use wasm_bindgen::JsCast;
        use web_sys::{HtmlInputElement, HtmlTextAreaElement};

        for (name, value) in &report.fields {
            let Some(element) = form.elements().named_item(name) else { continue };
            if let Some(input) = element.dyn_ref::<HtmlInputElement>() {
                input.set_value(value);
            } else if let Some(area) = element.dyn_ref::<HtmlTextAreaElement>() {
                area.set_value(value);
            }
        }
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn read(_form: &HtmlFormElement) -> Report {
        Report::default()
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn write(_form: &HtmlFormElement, _report: &Report) {}
}

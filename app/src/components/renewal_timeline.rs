//! The session's renewals over the last minutes, drawn as an SVG by the app: one lane per path
//! (interactive sign-in, refresh token, iframe), one mark per attempt, its shape and colour the
//! outcome (a filled dot renewed, a ring failed for now, a cross refused), injected faults as
//! dashed lines across the lanes, and the end of the session as a solid one. The same entries
//! follow as a list, newest first, for screen readers and for reading the details.

use leptos::prelude::*;

use crate::{
    auth::{JournalEntry, JournalOutcome, JournalStep},
    format::utc_time_ms,
};

/// How far back the timeline looks.
pub const WINDOW_MINUTES: u64 = 10;
const WINDOW_MS: f64 = WINDOW_MINUTES as f64 * 60_000.0;
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 126.0;
/// Where the plot starts (the lane labels are left of it) and ends.
const PLOT_LEFT: f64 = 120.0;
const PLOT_RIGHT: f64 = WIDTH - 14.0;
const AXIS_Y: f64 = 102.0;
const LANES: [(JournalStep, f64); 3] =
    [(JournalStep::Interactive, 24.0), (JournalStep::RefreshToken, 52.0), (JournalStep::Iframe, 80.0)];
/// How many entries the list below the drawing shows.
const LISTED: usize = 12;

/// One mark on the drawing.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub x: f64,
    /// The lane; `None` for a fault, drawn across all of them.
    pub y: Option<f64>,
    pub outcome: JournalOutcome,
}

/// Where `at_ms` falls on the time axis when it is `now_ms` (both by the server's clock), if
/// within the window.
fn x_of(at_ms: f64, now_ms: f64) -> Option<f64> {
    let age = (now_ms - at_ms).max(0.0);
    (age <= WINDOW_MS).then(|| PLOT_RIGHT - age / WINDOW_MS * (PLOT_RIGHT - PLOT_LEFT))
}

/// The marks of the entries within the window.
pub fn marks(entries: &[JournalEntry], now_ms: f64) -> Vec<Mark> {
    entries
        .iter()
        .filter_map(|entry| {
            let x = x_of(entry.at_ms as f64, now_ms)?;
            let y = LANES.iter().find(|(step, _)| *step == entry.step).map(|(_, y)| *y);
            Some(Mark { x, y, outcome: entry.outcome })
        })
        .collect()
}

#[component]
pub fn RenewalTimeline(
    /// The journal's entries, oldest first.
    #[prop(into)]
    entries: Signal<Vec<JournalEntry>>,
    /// Now by the server's clock (ms), ticking; 0 while unknown.
    #[prop(into)]
    now: Signal<f64>,
    /// When the session ended (server's clock), if it has.
    #[prop(into)]
    ended_at: Signal<Option<f64>>,
) -> impl IntoView {
    let drawn = move || {
        let now = now.get();
        if now <= 0.0 {
            return Vec::new();
        }
        entries.with(|entries| marks(entries, now))
    };
    let ticks = (0..=WINDOW_MINUTES)
        .step_by(2)
        .map(|minutes| {
            let x = PLOT_RIGHT - minutes as f64 / WINDOW_MINUTES as f64 * (PLOT_RIGHT - PLOT_LEFT);
            let label = if minutes == 0 { "now".to_owned() } else { format!("−{minutes} min") };
            view! {
                <line class="tick" x1=x x2=x y1=AXIS_Y y2=AXIS_Y + 4.0/>
                <text class="tick-label" x=x y=HEIGHT - 6.0 text-anchor="middle">{label}</text>
            }
        })
        .collect_view();
    let lanes = LANES
        .iter()
        .map(|(step, y)| {
            view! {
                <text class="lane-label" x=PLOT_LEFT - 10.0 y=y + 4.0 text-anchor="end">{step.label()}</text>
                <line class="lane" x1=PLOT_LEFT x2=PLOT_RIGHT y1=*y y2=*y/>
            }
        })
        .collect_view();
    let description = format!(
        "Renewals over the last {WINDOW_MINUTES} minutes, by path: a filled dot renewed, a ring failed for now, a \
         cross refused; dashed lines are injected faults. The list below has the same entries."
    );

    view! {
        <svg
            class="timeline"
            viewBox=format!("0 0 {WIDTH} {HEIGHT}")
            role="img"
            aria-label=description
            data-testid="renewal-timeline"
        >
            {lanes}
            <line class="axis" x1=PLOT_LEFT x2=PLOT_RIGHT y1=AXIS_Y y2=AXIS_Y/>
            {ticks}
            {move || {
                drawn()
                    .into_iter()
                    .map(|mark| match (mark.y, mark.outcome) {
                        (None, _) => {
                            view! { <line class="mark fault" x1=mark.x x2=mark.x y1=10.0 y2=AXIS_Y/> }.into_any()
                        }
                        (Some(y), JournalOutcome::Ok) => {
                            view! { <circle class="mark ok" cx=mark.x cy=y r=5.0/> }.into_any()
                        }
                        (Some(y), JournalOutcome::Transient) => {
                            view! { <circle class="mark transient" cx=mark.x cy=y r=5.0/> }.into_any()
                        }
                        (Some(y), JournalOutcome::Refused) => {
                            let d = format!("M{} {}l10 10m0 -10l-10 10", mark.x - 5.0, y - 5.0);
                            view! { <path class="mark refused" d=d/> }.into_any()
                        }
                    })
                    .collect_view()
            }}
            {move || {
                let x = ended_at.get().and_then(|at| x_of(at, now.get()))?;
                Some(view! { <line class="mark ended" x1=x x2=x y1=6.0 y2=AXIS_Y data-testid="timeline-ended"/> })
            }}
        </svg>
        <ol class="journal" data-testid="journal" aria-label="Renewals, newest first" tabindex="0">
            {move || {
                ended_at.get().map(|at| {
                    view! {
                        <li data-step="ended" data-outcome="refused">
                            <time>{utc_time_ms(at)}</time>
                            " "
                            <strong>"session ended"</strong>
                        </li>
                    }
                })
            }}
            <For
                each=move || entries.with(|entries| entries.iter().rev().take(LISTED).cloned().collect::<Vec<_>>())
                key=|entry| (entry.at_ms, step_name(entry.step), entry.outcome.label(), entry.detail.clone())
                children=|entry| {
                    let took = entry.took_ms.map(|ms| format!(" in {:.1} s", ms as f64 / 1000.0));
                    view! {
                        <li
                            data-testid="journal-entry"
                            data-step=step_name(entry.step)
                            data-outcome=entry.outcome.label()
                            data-took-ms=entry.took_ms.map(|ms| ms.to_string())
                        >
                            <time>{utc_time_ms(entry.at_ms as f64)}</time>
                            " "
                            <span class=format!("outcome {}", entry.outcome.label())>{entry.step.label()}</span>
                            " "
                            {entry.outcome.label()}
                            {took}
                            {(!entry.detail.is_empty()).then(|| format!(": {}", entry.detail))}
                        </li>
                    }
                }
            />
        </ol>
    }
}

/// The entry's step as the page's data attributes name it.
fn step_name(step: JournalStep) -> &'static str {
    match step {
        JournalStep::Interactive => "interactive",
        JournalStep::RefreshToken => "refresh_token",
        JournalStep::Iframe => "iframe",
        JournalStep::Fault => "fault",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: u64, step: JournalStep, outcome: JournalOutcome) -> JournalEntry {
        JournalEntry { at_ms, step, outcome, took_ms: None, detail: String::new() }
    }

    #[test]
    fn marks_fall_in_their_lane_newest_at_the_right_and_older_ones_drop_off() {
        let now = 1_000_000_000.0;
        let entries = [
            entry(1_000_000_000 - 11 * 60_000, JournalStep::RefreshToken, JournalOutcome::Ok),
            entry(1_000_000_000 - 5 * 60_000, JournalStep::Iframe, JournalOutcome::Transient),
            entry(1_000_000_000, JournalStep::RefreshToken, JournalOutcome::Refused),
            entry(1_000_000_000, JournalStep::Fault, JournalOutcome::Ok),
        ];
        let marks = marks(&entries, now);
        assert_eq!(marks.len(), 3, "eleven minutes ago is out of the window");
        assert_eq!(marks[0].x, (PLOT_LEFT + PLOT_RIGHT) / 2.0);
        assert_eq!(marks[0].y, Some(80.0));
        assert_eq!((marks[1].x, marks[1].y), (PLOT_RIGHT, Some(52.0)));
        assert_eq!(marks[2].y, None, "a fault crosses every lane");
    }
}

//! The dashboard's quarterly-reports section: per city in the node's subtree (at a city,
//! itself), where its report stands for each of the latest ended quarters — submitted on
//! time or late, missing while due, not yet due — with the counts per quarter for the
//! whole subtree; and the provinces' pilot evaluations of those quarters with the
//! ministry's confirmations. Colour always comes with words.

use maud::{Markup, display, html};

use super::AppState;
use super::error::ApiError;
use super::extract::off_thread;
use crate::node::clock::rfc3339;
use crate::reporting::analysis::Scope;
use crate::reporting::analysis::evaluations::{EvaluationView, Verdict};
use crate::reporting::analysis::schedule::today_of;
use crate::reporting::analysis::{Period, SubmissionState, SubmissionStatus};
use crate::reporting::scan::{self, SubmissionRow};

/// How many ended quarters the section shows.
pub(super) const QUARTERS_SHOWN: usize = 4;

/// The latest [`QUARTERS_SHOWN`] quarters that have ended before `current`, oldest first.
pub(super) fn latest_ended(current: Period) -> Vec<Period> {
    let mut out: Vec<Period> = std::iter::successors(current.previous(), |p| p.previous())
        .take(QUARTERS_SHOWN)
        .collect();
    out.reverse();
    out
}

/// `css class` of a state: good, bad, waiting, or nothing to say.
fn class_of(state: SubmissionState) -> &'static str {
    match state {
        SubmissionState::OnTime | SubmissionState::Submitted => "ok",
        SubmissionState::Late | SubmissionState::Missing => "bad",
        SubmissionState::NotYetDue => "warn",
        SubmissionState::Unscheduled => "",
    }
}

/// What a cell says on hover: the schedule, the due day, when it was submitted.
fn detail(s: &SubmissionStatus) -> String {
    let mut parts = Vec::new();
    match (&s.schedule, s.due_on) {
        (Some(name), Some(due)) => parts.push(format!("due {due} (reporting_schedule {name})")),
        _ => parts.push("no reporting_schedule applies".to_string()),
    }
    if let Some(sub) = &s.submission {
        parts.push(format!(
            "first submitted {}, version {} ({})",
            rfc3339(sub.first_submitted_at_ms),
            sub.version,
            sub.count_basis.as_str()
        ));
    }
    if let Some(days) = s.days_after_quarter {
        parts.push(format!("{days} days after the quarter"));
    }
    parts.join("; ")
}

/// One city's report for one quarter: the state in words and colour, details on hover.
pub(super) fn state_cell(s: &SubmissionStatus) -> Markup {
    let words = match (s.state, s.days_after_quarter) {
        (SubmissionState::OnTime | SubmissionState::Late | SubmissionState::Submitted, Some(d)) => {
            format!("{}, day {d}", s.state.words())
        }
        (SubmissionState::NotYetDue, _) => match s.due_on {
            Some(due) => format!("not yet due (due {due})"),
            None => s.state.words().to_string(),
        },
        _ => s.state.words().to_string(),
    };
    html! {
        td class={ "dot " (class_of(s.state)) } data-state=(s.state.as_str()) title=(detail(s)) {
            (words)
        }
    }
}

/// The counts of one quarter's states over every row.
fn totals(rows: &[SubmissionRow], index: usize) -> String {
    let count = |state: SubmissionState| {
        rows.iter()
            .filter(|r| r.periods.get(index).is_some_and(|s| s.state == state))
            .count()
    };
    format!(
        "on time {} · late {} · missing {} · not yet due {}",
        count(SubmissionState::OnTime) + count(SubmissionState::Submitted),
        count(SubmissionState::Late),
        count(SubmissionState::Missing),
        count(SubmissionState::NotYetDue)
    )
}

fn verdict_words(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Meets => ("ok", "meets the targets"),
        Verdict::PartlyMeets => ("warn", "partly meets the targets"),
        Verdict::DoesNotMeet => ("bad", "does not meet the targets"),
    }
}

fn evaluations_table(evaluations: &[EvaluationView]) -> Markup {
    html! {
        h3 { "Pilot evaluations" }
        @if evaluations.is_empty() {
            p id="evaluations-none" { "No pilot_evaluation of these quarters is held here." }
        } @else {
            table id="evaluations" {
                thead {
                    tr {
                        th { "city" } th { "quarter" } th { "verdict" }
                        th { "evaluated by" } th class="num" { "version" } th { "ministry" }
                    }
                }
                tbody {
                    @for e in evaluations {
                        @let (class, words) = verdict_words(e.body.verdict);
                        tr data-city=(display(e.body.city)) data-period=(display(e.body.period)) {
                            td { (display(e.body.city)) " " (e.body.city.builtin_name().unwrap_or("")) }
                            td { (display(e.body.period)) }
                            td class={ "dot " (class) } title=(e.body.notes.clone().unwrap_or_default()) { (words) }
                            td { (display(e.issuer)) " on " (display(e.body.evaluated_on)) }
                            td class="num" { (e.version) }
                            @match &e.confirmation {
                                Some(c) if c.current => td class="dot ok" data-confirmed="true" {
                                    "confirmed on " (display(c.confirmed_on))
                                },
                                Some(c) => td class="dot warn" data-confirmed="false" {
                                    "confirmed version " (c.confirms_version) " only; this one awaits confirmation"
                                },
                                None => td class="dot warn" data-confirmed="false" { "awaits confirmation" },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The section for this node's subtree at `now_ms`, read from the store off the async
/// threads.
pub(super) async fn section(app: &AppState, now_ms: i64) -> Result<Markup, ApiError> {
    let current = Period::of_date(today_of(now_ms)).map_err(ApiError::internal)?;
    let periods = latest_ended(current);
    let (store, scope) = (app.store.clone(), Scope::of(app.node));
    let shown = periods.clone();
    let (rows, evaluations) = off_thread(move || {
        let rows = scan::submissions(store.as_ref(), scope, &shown, now_ms)?;
        let mut evaluations = scan::evaluations_of(&store.documents()?, scope, None);
        evaluations.retain(|e| shown.contains(&e.body.period));
        Ok::<_, crate::core::store::StoreError>((rows, evaluations))
    })
    .await?;
    Ok(reports_section(&rows, &periods, &evaluations))
}

/// The section: a table of cities by quarter, the totals per quarter, the evaluations.
pub(super) fn reports_section(
    rows: &[SubmissionRow],
    periods: &[Period],
    evaluations: &[EvaluationView],
) -> Markup {
    html! {
        h2 { "Quarterly reports" }
        p {
            "Submitted (on time or late against the reporting_schedule in force), missing "
            "once due, or not yet due; the latest " (periods.len()) " ended quarters."
        }
        table id="reports" {
            thead {
                tr {
                    th { "city" }
                    th { "pilot" }
                    @for p in periods { th { (display(p)) } }
                }
            }
            tbody {
                @for r in rows {
                    tr data-city=(display(r.city)) {
                        td { (display(r.city)) " " (r.name.unwrap_or("")) }
                        td { @if r.pilot { "pilot" } @else { "—" } }
                        @for s in &r.periods { (state_cell(s)) }
                    }
                }
            }
            tfoot {
                tr id="reports-totals" {
                    td { @if rows.len() == 1 { "1 city" } @else { "all " (rows.len()) " cities" } }
                    td {}
                    @for (i, _) in periods.iter().enumerate() {
                        td { (totals(rows, i)) }
                    }
                }
            }
        }
        (evaluations_table(evaluations))
    }
}

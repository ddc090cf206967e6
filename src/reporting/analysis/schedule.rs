//! Reporting schedules and the standing of a city's submitted quarterly report: when a
//! report is due (`reporting_schedule` documents), what a city submitted (its
//! `supply_demand_report` record, [`Submission`]), and the two together
//! ([`SubmissionStatus`]: on time, late, missing while due, not yet due), which M10 and
//! F03 count.
//!
//! # Document body
//!
//! ```json
//! {
//!   "report_kind": "supply_demand_report",
//!   "scope": "national",           // optional: "national", a province or a city code;
//!                                  //   defaults to the issuer's own area
//!   "periods": ["2024Q1", "2024Q2"],  // these quarters, or every quarter
//!   "from": "2024Q1",              //   from this one on
//!   "until": "2025Q4",             //   (optional) through this one
//!   "due_offset_days": 45,         // due this many days after the quarter's last day
//!   "recipients": ["440000", "100000"]  // optional, informational (default: the issuer)
//! }
//! ```
//!
//! Give `periods` or `from`, not both. Unknown fields are rejected. The ministry may
//! schedule any scope; a province itself or its cities.
//!
//! # Resolution
//!
//! For a city and quarter, the schedules of its report kind that cover the quarter and
//! whose scope holds the city apply; the most specific scope wins (city, then province,
//! then national), and of several at that scope the earliest due date. A report is due on
//! the quarter's last day plus `due_offset_days` (UTC dates); it is on time when first
//! submitted on or before that day. Without a schedule nothing is due.

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

use super::period::Period;
use super::scope::Scope;
use crate::core::model::kinds::{CountBasis, RecordData};
use crate::core::model::{Kind, MINISTRY, NodeCode, Record, Status, Tier};

/// The report kind schedules name: the city's quarterly supply/demand report.
pub const SUPPLY_DEMAND_REPORT: &str = "supply_demand_report";
/// Latest due offset a schedule may set, in days.
pub const MAX_DUE_OFFSET_DAYS: u32 = 366;
/// Most quarters a schedule may list.
const MAX_PERIODS: usize = 64;
/// Most recipients a schedule may name.
const MAX_RECIPIENTS: usize = 8;

/// Which quarters a schedule covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum Quarters {
    /// These quarters.
    Listed {
        /// The quarters.
        periods: Vec<Period>,
    },
    /// Every quarter from `from`, through `until` when given.
    Every {
        /// The first quarter.
        from: Period,
        /// The last quarter, if any.
        until: Option<Period>,
    },
}

impl Quarters {
    /// True when `period` is one of them.
    pub fn covers(&self, period: Period) -> bool {
        match self {
            Quarters::Listed { periods } => periods.contains(&period),
            Quarters::Every { from, until } => *from <= period && until.is_none_or(|u| period <= u),
        }
    }
}

/// A parsed `reporting_schedule` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportingSchedule {
    /// The issuer.
    pub issuer: NodeCode,
    /// The document id.
    pub id: String,
    /// The report it schedules (`supply_demand_report`).
    pub report_kind: String,
    /// The cities it applies to.
    pub scope: Scope,
    /// The quarters it covers.
    pub quarters: Quarters,
    /// Days after the quarter's last day the report is due.
    pub due_offset_days: u32,
    /// Who receives the reports (informational).
    pub recipients: Vec<NodeCode>,
}

impl ReportingSchedule {
    /// The day a report for `period` is due.
    pub fn due_on(&self, period: Period) -> NaiveDate {
        period
            .last_day()
            .checked_add_days(chrono::Days::new(u64::from(self.due_offset_days)))
            .unwrap_or(NaiveDate::MAX)
    }

    /// `issuer/id`, how the schedule is named in answers.
    pub fn name(&self) -> String {
        format!("{}/{}", self.issuer, self.id)
    }
}

/// Why a schedule document is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not JSON of the documented shape (path and reason given).
    #[error("reporting schedule body: {0}")]
    Body(String),
    /// A rule of the body is broken; the sentence says which.
    #[error("reporting schedule: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    report_kind: String,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    periods: Option<Vec<Period>>,
    #[serde(default)]
    from: Option<Period>,
    #[serde(default)]
    until: Option<Period>,
    due_offset_days: u32,
    #[serde(default)]
    recipients: Option<Vec<NodeCode>>,
}

/// Parses and checks the body of `reporting_schedule` document `id` issued by `issuer`.
pub fn parse_schedule(
    issuer: NodeCode,
    id: &str,
    body: &str,
) -> Result<ReportingSchedule, ScheduleError> {
    let de = &mut serde_json::Deserializer::from_str(body);
    let b: ScheduleBody =
        serde_path_to_error::deserialize(de).map_err(|e| ScheduleError::Body(e.to_string()))?;
    let invalid = |s: String| Err(ScheduleError::Invalid(s));
    if b.report_kind != SUPPLY_DEMAND_REPORT {
        return invalid(format!(
            "report_kind {:?}: the only scheduled report is {SUPPLY_DEMAND_REPORT}",
            b.report_kind
        ));
    }
    let scope = b.scope.unwrap_or(Scope::of(issuer));
    let may =
        issuer == MINISTRY || (issuer.tier() == Tier::Province && Scope::of(issuer).covers(scope));
    if !may {
        return invalid(format!(
            "{issuer} may not schedule reports for {scope}: the ministry schedules any area, a province itself and its cities"
        ));
    }
    let quarters = match (b.periods, b.from, b.until) {
        (Some(periods), None, None) if !periods.is_empty() && periods.len() <= MAX_PERIODS => {
            Quarters::Listed { periods }
        }
        (Some(_), None, None) => {
            return invalid(format!("periods must list 1 to {MAX_PERIODS} quarters"));
        }
        (None, Some(from), until) if until.is_none_or(|u| from <= u) => {
            Quarters::Every { from, until }
        }
        (None, Some(_), Some(_)) => return invalid("until is before from".into()),
        _ => return invalid("give either periods, or from (and until)".into()),
    };
    if b.due_offset_days > MAX_DUE_OFFSET_DAYS {
        return invalid(format!(
            "due_offset_days must be 0 to {MAX_DUE_OFFSET_DAYS}, got {}",
            b.due_offset_days
        ));
    }
    let recipients = b.recipients.unwrap_or_else(|| vec![issuer]);
    if recipients.len() > MAX_RECIPIENTS || recipients.iter().any(|r| r.tier() == Tier::City) {
        return invalid(format!(
            "recipients must be at most {MAX_RECIPIENTS} provinces or the ministry"
        ));
    }
    Ok(ReportingSchedule {
        issuer,
        id: id.to_string(),
        report_kind: b.report_kind,
        scope,
        quarters,
        due_offset_days: b.due_offset_days,
        recipients,
    })
}

/// The schedule that applies to `city`'s report for `period`, if any (see the module doc).
pub fn schedule_for(
    schedules: &[ReportingSchedule],
    city: NodeCode,
    period: Period,
) -> Option<&ReportingSchedule> {
    Scope::City(city).chain().find_map(|scope| {
        schedules
            .iter()
            .filter(|s| {
                s.scope == scope
                    && s.report_kind == SUPPLY_DEMAND_REPORT
                    && s.quarters.covers(period)
            })
            .min_by(|a, b| {
                (a.due_offset_days, a.issuer, &a.id).cmp(&(b.due_offset_days, b.issuer, &b.id))
            })
    })
}

/// What a city submitted for a quarter: its `supply_demand_report` record, as far as M10
/// and F03 need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The record's version (1 for the first submission).
    pub version: u64,
    /// The basis the tables declare.
    pub count_basis: CountBasis,
    /// When this version was submitted, ms since the epoch.
    pub submitted_at_ms: i64,
    /// When the first version was submitted, ms since the epoch.
    pub first_submitted_at_ms: i64,
}

impl Submission {
    /// The submission `record` holds for `period`, if it is `city`'s report of that quarter
    /// in force (status `active`; a voided or withdrawn report is no submission).
    pub fn of(record: &Record, city: NodeCode, period: Period) -> Option<Submission> {
        let e = &record.envelope;
        let RecordData::SupplyDemandReport(r) = &record.data else {
            return None;
        };
        (e.owner == city
            && e.kind == Kind::SupplyDemandReport
            && e.status == Status::Active
            && r.period == period.to_string())
        .then_some(Submission {
            version: e.version,
            count_basis: r.count_basis,
            submitted_at_ms: r.submitted_at_ms,
            first_submitted_at_ms: r.first_submitted_at_ms,
        })
    }
}

/// Where a city's report for a quarter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionState {
    /// Submitted on or before the due day.
    OnTime,
    /// Submitted after the due day.
    Late,
    /// Submitted; no schedule applies, so there is no due day to compare.
    Submitted,
    /// Not submitted, and the due day has passed.
    Missing,
    /// Not submitted; due later (or the quarter has not ended).
    NotYetDue,
    /// Not submitted, and no schedule applies: nothing is due.
    Unscheduled,
}

impl SubmissionState {
    /// The snake_case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionState::OnTime => "on_time",
            SubmissionState::Late => "late",
            SubmissionState::Submitted => "submitted",
            SubmissionState::Missing => "missing",
            SubmissionState::NotYetDue => "not_yet_due",
            SubmissionState::Unscheduled => "unscheduled",
        }
    }

    /// The state in words, as the dashboard shows it.
    pub fn words(self) -> &'static str {
        match self {
            SubmissionState::OnTime => "submitted on time",
            SubmissionState::Late => "submitted late",
            SubmissionState::Submitted => "submitted",
            SubmissionState::Missing => "missing (due)",
            SubmissionState::NotYetDue => "not yet due",
            SubmissionState::Unscheduled => "not scheduled",
        }
    }

    /// True when a report was submitted.
    pub fn submitted(self) -> bool {
        matches!(
            self,
            SubmissionState::OnTime | SubmissionState::Late | SubmissionState::Submitted
        )
    }
}

/// A city's report for a quarter, against the schedule that applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubmissionStatus {
    /// The city.
    pub city: NodeCode,
    /// The quarter.
    pub period: Period,
    /// Where it stands.
    pub state: SubmissionState,
    /// The schedule that applies (`issuer/id`).
    pub schedule: Option<String>,
    /// The due day (UTC), when a schedule applies.
    pub due_on: Option<NaiveDate>,
    /// Days from the quarter's last day to the first submission (UTC dates).
    pub days_after_quarter: Option<i64>,
    /// The submission, if any.
    pub submission: Option<Submission>,
}

/// The UTC date of `ms`.
fn date_of(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms).map_or(NaiveDate::MIN, |t| t.date_naive())
}

/// Where `city`'s report for `period` stands on `today`, given what it submitted and the
/// schedules in force.
pub fn classify(
    city: NodeCode,
    period: Period,
    submission: Option<&Submission>,
    schedules: &[ReportingSchedule],
    today: NaiveDate,
) -> SubmissionStatus {
    let schedule = schedule_for(schedules, city, period);
    let due_on = schedule.map(|s| s.due_on(period));
    let submitted_on = submission.map(|s| date_of(s.first_submitted_at_ms));
    let state = match (submitted_on, due_on) {
        (Some(on), Some(due)) if on <= due => SubmissionState::OnTime,
        (Some(_), Some(_)) => SubmissionState::Late,
        (Some(_), None) => SubmissionState::Submitted,
        (None, Some(due)) if today > due => SubmissionState::Missing,
        (None, Some(_)) => SubmissionState::NotYetDue,
        (None, None) => SubmissionState::Unscheduled,
    };
    SubmissionStatus {
        city,
        period,
        state,
        schedule: schedule.map(ReportingSchedule::name),
        due_on,
        days_after_quarter: submitted_on.map(|on| (on - period.last_day()).num_days().max(0)),
        submission: submission.cloned(),
    }
}

/// The UTC date of `now_ms` (for [`classify`]).
pub fn today_of(now_ms: i64) -> NaiveDate {
    date_of(now_ms)
}

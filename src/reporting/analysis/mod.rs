//! Coverage metrics (`docs/reference/metrics.md`) and the quarterly supply/demand report (same page),
//! computed from replicated records. Pure: no IO, no clock, no storage; the caller scans
//! records and passes the time in.
//!
//! # Streaming
//!
//! A store may hold 10^7 records, so nothing here collects records. Each computation is
//! an accumulator fed **two passes over one city's records** ([`TwoPass`]):
//!
//! 1. `first_pass` sees every record once and keeps only what later records must be joined
//!    against: the re-employment-centre (RSC) stay of each cohort person, the set of
//!    laid-off/unemployed and hardship persons, each employer's type. Record-local counts
//!    (vacancies, offices, presence flags, classification currency) are taken here too.
//! 2. `second_pass` sees every record again and counts what depends on pass 1: service
//!    events and enrolments of cohort persons, vacancies by employer type, job seekers.
//!    A caller that can filter by kind needs to feed only [`SECOND_PASS_KINDS`].
//! 3. `finish` turns the accumulator into additive counts ([`CityCounts`],
//!    [`ReportCounts`]) holding no per-record data.
//!
//! Memory grows with the cohort, the employers and the classification groups seen, never
//! with the number of records. Province and national figures are **merges of city counts**
//! ([`MetricAggregate`], [`ReportCounts::merge`]): numerators and denominators are summed
//! and divided once, never averaged, so a caller can stream city by city.
//!
//! # Documents
//!
//! Targets come from `service_standard_target` documents ([`parse_target`]) over the
//! notice's defaults ([`builtin_targets`]); pilot cities from `pilot_designation`
//! documents ([`pilot_overview`]); when reports are due from `reporting_schedule`
//! documents ([`parse_schedule`]); the provinces' pilot evaluations and the ministry's
//! confirmations from `pilot_evaluation` documents ([`evaluations`]). Their JSON shapes
//! are documented in [`targets`], [`pilots`], [`schedule`] and [`evaluations`].
//!
//! # Record status
//!
//! `Voided` records (entered in error) are ignored everywhere. `Closed` and `Withdrawn`
//! records still happened and count for the dates they cover.
//!
//! What this module does not do: read or write the store, publish derived records
//! (`CityTargetStatus`; the city node writes its submitted report), or compute lag
//! percentiles (the engine supplies them as [`EngineFacts`]).

use std::borrow::Borrow;

use crate::core::model::kinds::RecordData;
use crate::core::model::{Kind, NodeCode, Record};

pub mod evaluations;
pub mod metrics;
pub mod period;
pub mod pilots;
pub mod report;
pub mod schedule;
pub mod scope;
pub mod targets;
pub mod trends;

#[cfg(test)]
pub(crate) mod tests;

pub use metrics::{
    CityCounts, CityMetrics, CohortSummary, EngineFacts, EngineLimits, EvalContext,
    MetricAggregate, MetricSet, MetricValue, Status, StoredCityCounts, Unit,
};
pub use period::{Period, PeriodError};
pub use pilots::{
    PilotDesignation, PilotError, PilotOverview, PilotState, ProvincePilots, parse_pilot,
    pilot_overview,
};
pub use report::{
    CityReport, CountBasis, PublishedReport, QuarterlyReport, ReportCounts, ReportOptions,
};
pub use schedule::{
    ReportingSchedule, ScheduleError, Submission, SubmissionState, SubmissionStatus, classify,
    parse_schedule,
};
pub use scope::{Scope, ScopeError};
pub use targets::{
    AppliesTo, Comparator, MetricId, Target, TargetError, TargetOrigin, builtin_targets,
    effective_targets, parse_target, resolve_target,
};
pub use trends::{Direction, TREND_QUARTERS, TargetTrend, TrendPoint, target_trends};

/// The record kinds a second pass needs; others may be skipped by a caller that can
/// filter its scan by kind.
pub const SECOND_PASS_KINDS: [Kind; 4] = [
    Kind::ServiceEvent,
    Kind::TrainingEnrolment,
    Kind::Vacancy,
    Kind::JobSeeker,
];

/// An accumulator fed two full passes over one city's records (see the module doc).
///
/// Every record of the first pass must be seen before the first record of the second;
/// the order of records within a pass does not matter.
pub trait TwoPass {
    /// Sees one record during the first pass.
    fn first_pass(&mut self, record: &Record);
    /// Sees one record during the second pass.
    fn second_pass(&mut self, record: &Record);
}

impl<A: TwoPass, B: TwoPass> TwoPass for (A, B) {
    fn first_pass(&mut self, record: &Record) {
        self.0.first_pass(record);
        self.1.first_pass(record);
    }

    fn second_pass(&mut self, record: &Record) {
        self.0.second_pass(record);
        self.1.second_pass(record);
    }
}

/// Drives `acc` through both passes; `scan` is called twice and must yield the same
/// records each time (for instance, a fresh iterator over one owner's records).
pub fn run_two_passes<A, I, R>(acc: &mut A, mut scan: impl FnMut() -> I)
where
    A: TwoPass,
    I: IntoIterator<Item = R>,
    R: Borrow<Record>,
{
    for r in scan() {
        acc.first_pass(r.borrow());
    }
    for r in scan() {
        acc.second_pass(r.borrow());
    }
}

/// Why two sets of counts cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The counts are for another quarter or counting basis; compute them again.
    #[error("counts for {found} cannot be merged into {expected}")]
    Mismatch {
        /// What the target holds.
        expected: String,
        /// What was offered.
        found: String,
    },
    /// The city lies outside the aggregate's scope; merge it into a wider one.
    #[error("city {city} is outside scope {scope}")]
    OutOfScope {
        /// The city offered.
        city: NodeCode,
        /// The aggregate's scope.
        scope: Scope,
    },
    /// The city was merged already; merging it twice would double count.
    #[error("city {0} is already counted")]
    Duplicate(NodeCode),
}

/// The date that places a record in a quarter: the first day of what the report and the
/// metrics count it for. A vacancy's `valid_from` and a job seeker's `registered_on` (the
/// date that makes it new in the report's quarter, or carried over into later ones), an
/// episode's, registration's or course's first day, an event's, placement's, payment's or
/// ledger entry's date, a submitted report's or ingest tally's quarter's first day. `None`
/// for offices and employers: the city's directory, which holds in every quarter rather
/// than in one; and for pid links, which join persons in every quarter.
pub fn placed_on(data: &RecordData) -> Option<chrono::NaiveDate> {
    match data {
        RecordData::Office(_) | RecordData::Employer(_) | RecordData::PidLink(_) => None,
        RecordData::Vacancy(v) => Some(v.valid_from),
        RecordData::JobSeeker(s) => Some(s.registered_on),
        RecordData::LaidOffEpisode(e) => Some(e.laid_off_on),
        RecordData::UnemploymentRegistration(u) => Some(u.registered_on),
        RecordData::ServiceEvent(e) => Some(e.occurred_on),
        RecordData::Placement(p) => Some(p.start_on),
        RecordData::UiBenefitPayment(b) => Some(b.paid_on),
        RecordData::UiFundEntry(f) => Some(f.entry_date),
        RecordData::TrainingCourse(c) => Some(c.start_on),
        RecordData::TrainingEnrolment(e) => Some(e.enrolled_on),
        RecordData::SupplyDemandReport(r) => {
            crate::core::model::kinds::quarter_days(&r.period).map(|(first, _)| first)
        }
        RecordData::IngestTally(t) => {
            crate::core::model::kinds::quarter_days(&t.quarter).map(|(first, _)| first)
        }
    }
}

/// True when a record takes part in any computation: it is the owner's and not voided.
fn counts_for(record: &Record, city: NodeCode) -> bool {
    record.envelope.owner == city && record.envelope.status != crate::core::model::Status::Voided
}

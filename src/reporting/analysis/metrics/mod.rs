//! Coverage metrics M01–M12 and engine metrics F01–F06 (`docs/reference/metrics.md`): what a
//! metric value is, the catalogue of computed variants, and evaluation against targets.
//!
//! Per city, [`CityMetrics`] streams the city's records in two passes into additive
//! [`CityCounts`]; [`MetricAggregate`] sums those per city, province or nation and
//! [`MetricAggregate::evaluate`] divides once and judges each primary variant against the
//! target that applies ([`super::resolve_target`]). Variants marked informational are
//! shown without a target.
//!
//! Definitions (in addition to §5.1):
//! - *valid in P*: a span `[from, until]` sharing a day with the quarter.
//! - M02–M05 cohort: persons whose latest RSC entry is on or before the period end; a
//!   member counts for the period when still in the centre on its first day (the
//!   cumulative variant counts every member). A member is evaluated once mature: ≥ 90 days
//!   in the centre at the period end, or exited by then; immature members are counted in
//!   [`CohortSummary::immature`]. Events count inside `[rsc_entry_on, min(rsc_exit_on,
//!   period end)]`.
//! - M06: each month of P in which the hardship flag was active needs a tracking contact.
//! - M07: (a) vacancies and seekers valid in P; (b) a laid-off episode or unemployment
//!   registration in P; (c) a fund entry and a benefit payment in P; (d) a course or an
//!   enrolment in P. Counted as categories met of four per city.
//! - M09: the notice's four channel types (screen, board, free query terminal, website).
//! - M12: service events in P of persons laid off or registered unemployed during P.
//! - F05: records whose owner wrote them in P (by `recorded_at_ms`, UTC); codes are checked
//!   only against the version in force, so codes of records declaring an older version
//!   are not counted as unresolvable.
//! - M10 and F03: from each city's submitted `supply_demand_report` for P, against the
//!   `reporting_schedule` in force and the time of evaluation ([`super::schedule`]).
//! - M11 comes from pilot designations ([`super::pilot_overview`]), per province and
//!   national.

mod aggregate;
mod city;
mod cohort;
mod engine;
mod join;
mod tally;

#[cfg(test)]
mod counting_tests;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use aggregate::{EvalContext, MetricAggregate, MetricSet};
pub use city::{CityCounts, CityMetrics, StoredCityCounts};
pub use cohort::{CohortSummary, HistogramBin};
pub use engine::{EngineFacts, EngineLimits};

use super::targets::{MetricId, Target};

/// Outcome of a metric against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The value meets the target.
    Pass,
    /// The value misses the target.
    Fail,
    /// Nothing to measure (denominator 0, or no facts supplied).
    NoData,
    /// The metric or its target does not apply here.
    NotApplicable,
    /// A value without a target (informational variants, or none set).
    NoTarget,
}

/// What a value measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// numerator ÷ denominator.
    Ratio,
    /// A count (the numerator; denominator 1).
    Count,
    /// Milliseconds (the numerator; denominator 1).
    Milliseconds,
    /// Seconds (the numerator; denominator 1).
    Seconds,
    /// Days (the numerator; denominator 1).
    Days,
}

/// One variant of one metric for one scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricValue {
    /// The metric.
    pub id: MetricId,
    /// Which reading, e.g. `by_reports` or `distinct_vacancies`.
    pub variant: &'static str,
    /// What the value measures.
    pub unit: Unit,
    /// Summed numerator (for counts and durations: the value itself).
    pub numerator: u64,
    /// Summed denominator (1 for counts and durations).
    pub denominator: u64,
    /// numerator ÷ denominator; `None` when there is nothing to measure.
    pub value: Option<f64>,
    /// The target that applies, if any.
    pub target: Option<Target>,
    /// The outcome.
    pub status: Status,
    /// What was counted, and any caveat.
    pub note: String,
}

fn judge(target: Option<&Target>, value: Option<f64>) -> Status {
    match (target, value) {
        (_, None) => Status::NoData,
        (None, Some(_)) => Status::NoTarget,
        (Some(t), Some(v)) if t.comparator.holds(v) => Status::Pass,
        (Some(_), Some(_)) => Status::Fail,
    }
}

impl MetricValue {
    /// A measured value, judged against `target`.
    pub(crate) fn measured(
        id: MetricId,
        variant: &'static str,
        unit: Unit,
        (numerator, denominator): (u64, u64),
        target: Option<&Target>,
        note: impl Into<String>,
    ) -> Self {
        let value = match unit {
            Unit::Ratio if denominator == 0 => None,
            Unit::Ratio => Some(numerator as f64 / denominator as f64),
            _ => Some(numerator as f64),
        };
        MetricValue {
            id,
            variant,
            unit,
            numerator,
            denominator,
            value,
            target: target.cloned(),
            status: judge(target, value),
            note: note.into(),
        }
    }

    /// A value that could not be measured, with the reason.
    pub(crate) fn unmeasured(
        id: MetricId,
        variant: &'static str,
        status: Status,
        note: impl Into<String>,
    ) -> Self {
        MetricValue {
            id,
            variant,
            unit: Unit::Ratio,
            numerator: 0,
            denominator: 0,
            value: None,
            target: None,
            status,
            note: note.into(),
        }
    }
}

/// One computed variant of a record-based metric.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VariantDef {
    pub(crate) metric: MetricId,
    pub(crate) variant: &'static str,
    pub(crate) unit: Unit,
    /// Judged against the metric's target; otherwise informational.
    pub(crate) primary: bool,
    pub(crate) note: &'static str,
}

const fn def(
    metric: MetricId,
    variant: &'static str,
    primary: bool,
    note: &'static str,
) -> VariantDef {
    VariantDef {
        metric,
        variant,
        unit: Unit::Ratio,
        primary,
        note,
    }
}

/// Every record-based variant, in output order.
pub(crate) const CATALOGUE: &[VariantDef] = {
    use MetricId::*;
    &[
        def(
            M01,
            "by_reports",
            true,
            "vacancy reports valid in the period with a term of one year or more (incl. open-ended); numerator: online by the period end",
        ),
        def(
            M01,
            "by_headcount",
            true,
            "as by_reports, weighted by headcount",
        ),
        def(
            M02,
            "cohort",
            true,
            "mature RSC members in the centre during the period with >= 1 career guidance in their stay",
        ),
        def(
            M02,
            "cumulative",
            false,
            "every mature RSC member up to the period end",
        ),
        def(
            M03,
            "cohort",
            true,
            "mature RSC members with >= 3 job-information provisions (events naming >= 1 vacancy) in their stay",
        ),
        def(
            M03,
            "distinct_vacancies",
            false,
            "stricter reading: >= 3 distinct vacancies offered in the stay",
        ),
        def(
            M03,
            "cumulative",
            false,
            "every mature RSC member up to the period end",
        ),
        def(
            M04,
            "cohort",
            true,
            "mature RSC members with >= 1 free or partly-free training offer in their stay",
        ),
        def(
            M04,
            "enrolled",
            false,
            "mature RSC members enrolled in a course in their stay",
        ),
        def(
            M04,
            "completed",
            false,
            "mature RSC members who completed a course by the period end",
        ),
        def(
            M04,
            "cumulative",
            false,
            "every mature RSC member up to the period end",
        ),
        def(
            M05,
            "cohort",
            true,
            "mature RSC members passing M02, M03 and M04",
        ),
        def(
            M05,
            "cumulative",
            false,
            "every mature RSC member up to the period end",
        ),
        def(
            M06,
            "monthly_tracking",
            true,
            "hardship persons with a tracking contact in each month of the period",
        ),
        def(
            M07,
            "all_four",
            true,
            "networked categories of four per city (supply/demand, laid-off and unemployed, UI fund and benefit, training)",
        ),
        def(
            M07,
            "supply_demand",
            false,
            "cities with vacancies and job seekers valid in the period",
        ),
        def(
            M07,
            "laid_off_unemployed",
            false,
            "cities with laid-off episodes or unemployment registrations in the period",
        ),
        def(
            M07,
            "ui_fund_benefit",
            false,
            "cities with fund ledger entries and benefit payments in the period",
        ),
        def(
            M07,
            "training",
            false,
            "cities with training courses or enrolments in the period",
        ),
        def(
            M08,
            "all",
            true,
            "networked offices of offices open during the period",
        ),
        def(M08, "city_centre", false, "city centres"),
        def(M08, "district_centre", false, "district centres"),
        def(M08, "street_station", false, "street stations"),
        def(M08, "ui_agency", false, "UI agencies"),
        def(
            M08,
            "reemployment_service_centre",
            false,
            "re-employment service centres",
        ),
        def(M08, "training_centre", false, "training centres"),
        def(M08, "private_agency", false, "private agencies"),
        def(
            M09,
            "channel_types",
            true,
            "of the four channel types (screen, board, free query terminal, website), those an open office runs, per city",
        ),
        def(
            M09,
            "offices_with_channel",
            false,
            "open offices running >= 1 of the four channel types",
        ),
        def(
            M12,
            "free_services",
            true,
            "service events in the period for laid-off or unemployed persons that were free or partly free",
        ),
        def(
            F05,
            "current_version",
            true,
            "records written in the period coded against the classification versions in force",
        ),
        def(
            F06,
            "rejection_rate",
            true,
            "records refused at ingest at the city, of those and the records it holds (every quarter so far)",
        ),
        VariantDef {
            metric: F05,
            variant: "unresolvable_codes",
            unit: Unit::Count,
            primary: false,
            note: "codes of records written in the period not found in the version in force they declare (must be 0)",
        },
    ]
};

/// The catalogue's own name of `(metric, variant)`, if it is there.
pub(crate) fn catalogued_variant(metric: MetricId, variant: &str) -> Option<&'static str> {
    CATALOGUE
        .iter()
        .find(|d| d.metric == metric && d.variant == variant)
        .map(|d| d.variant)
}

/// True when `(metric, variant)` is in the catalogue.
pub(crate) fn is_catalogued(metric: MetricId, variant: &str) -> bool {
    CATALOGUE
        .iter()
        .any(|d| d.metric == metric && d.variant == variant)
}

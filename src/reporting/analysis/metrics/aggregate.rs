//! [`MetricAggregate`]: city counts summed over a scope (one city, a province, the
//! nation), and their evaluation into a [`MetricSet`].
//!
//! Numerators and denominators are summed, then divided once. Counts of pilot cities are
//! kept apart as well, so a target that applies to pilots only is judged on pilot cities'
//! sums; where no pilot city is in scope it is not applicable. Each city's submitted
//! report (M10, F03) is kept per city and judged at evaluation, against the schedule in
//! force and the time of evaluation; the judgements are then counted over the cities.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::city::CityCounts;
use super::cohort::{CohortSummary, HistogramBin};
use super::engine::{self, EngineFacts, EngineLimits};
use super::tally::Tallies;
use super::{CATALOGUE, MetricValue, Status, Unit, VariantDef};
use crate::core::model::NodeCode;
use crate::reporting::analysis::MergeError;
use crate::reporting::analysis::period::Period;
use crate::reporting::analysis::pilots::PilotOverview;
use crate::reporting::analysis::schedule::{
    ReportingSchedule, Submission, SubmissionState, SubmissionStatus, classify, today_of,
};
use crate::reporting::analysis::scope::Scope;
use crate::reporting::analysis::targets::{AppliesTo, MetricId, Target, resolve_target};

/// Inputs of an evaluation besides the counts.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    /// The targets in force ([`crate::reporting::analysis::effective_targets`]).
    pub targets: &'a [Target],
    /// Pilot designations, for M11 (`None`: M11 has no data).
    pub pilots: Option<&'a PilotOverview>,
    /// The time and the staleness threshold, for F02; the time also for M10 and F03.
    pub limits: EngineLimits,
    /// The reporting schedules in force, for M10 and F03.
    pub schedules: &'a [ReportingSchedule],
}

/// Every metric of one scope and quarter, judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSet {
    /// Where.
    pub scope: Scope,
    /// When.
    pub period: Period,
    /// Cities counted.
    pub cities: Vec<NodeCode>,
    /// Of which active pilots.
    pub pilot_cities: Vec<NodeCode>,
    /// Every metric variant, in metric order.
    pub values: Vec<MetricValue>,
    /// The RSC cohort of M02–M05 (all cities in scope).
    pub cohort: CohortSummary,
    /// The M05 histogram of (guidance, information, training) counts.
    pub histogram: Vec<HistogramBin>,
}

impl MetricSet {
    /// The value of one variant.
    pub fn get(&self, metric: MetricId, variant: &str) -> Option<&MetricValue> {
        self.values
            .iter()
            .find(|v| v.id == metric && v.variant == variant)
    }
}

/// City counts summed over a scope.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAggregate {
    scope: Scope,
    period: Period,
    all: Tallies,
    pilots: Tallies,
    cities: BTreeSet<NodeCode>,
    pilot_cities: BTreeSet<NodeCode>,
    engine: BTreeMap<NodeCode, EngineFacts>,
    cohort: CohortSummary,
    submissions: BTreeMap<NodeCode, Option<Submission>>,
}

impl MetricAggregate {
    /// An empty aggregate over `scope` for `period`.
    pub fn new(scope: Scope, period: Period) -> Self {
        MetricAggregate {
            scope,
            period,
            all: Tallies::default(),
            pilots: Tallies::default(),
            cities: BTreeSet::new(),
            pilot_cities: BTreeSet::new(),
            engine: BTreeMap::new(),
            cohort: CohortSummary::default(),
            submissions: BTreeMap::new(),
        }
    }

    /// The aggregate of one city (scope: that city).
    pub fn for_city(counts: &CityCounts, is_pilot: bool, facts: Option<&EngineFacts>) -> Self {
        let mut a = MetricAggregate::new(Scope::City(counts.city()), counts.period());
        // Cannot fail: an empty aggregate of the city's own scope and period.
        let _ = a.add_city(counts, is_pilot, facts);
        a
    }

    /// Adds one city's counts; `is_pilot` from [`PilotOverview::is_active`], `facts` as the
    /// engine measured them (if at all).
    pub fn add_city(
        &mut self,
        counts: &CityCounts,
        is_pilot: bool,
        facts: Option<&EngineFacts>,
    ) -> Result<(), MergeError> {
        let city = counts.city();
        self.check(counts.period(), city)?;
        self.all.merge(&counts.tallies);
        if is_pilot {
            self.pilots.merge(&counts.tallies);
            self.pilot_cities.insert(city);
        }
        self.cities.insert(city);
        self.cohort.merge(&counts.cohort);
        self.submissions.insert(city, counts.submission.clone());
        if let Some(f) = facts {
            self.engine.insert(city, f.clone());
        }
        Ok(())
    }

    /// Adds a narrower aggregate (e.g. a province into the nation).
    pub fn merge(&mut self, other: &MetricAggregate) -> Result<(), MergeError> {
        for &city in &other.cities {
            self.check(other.period, city)?;
        }
        self.all.merge(&other.all);
        self.pilots.merge(&other.pilots);
        self.cities.extend(&other.cities);
        self.pilot_cities.extend(&other.pilot_cities);
        self.engine
            .extend(other.engine.iter().map(|(c, f)| (*c, f.clone())));
        self.cohort.merge(&other.cohort);
        self.submissions
            .extend(other.submissions.iter().map(|(c, s)| (*c, s.clone())));
        Ok(())
    }

    fn check(&self, period: Period, city: NodeCode) -> Result<(), MergeError> {
        if period != self.period {
            return Err(MergeError::Mismatch {
                expected: self.period.to_string(),
                found: period.to_string(),
            });
        }
        if !self.scope.contains(city) {
            return Err(MergeError::OutOfScope {
                city,
                scope: self.scope,
            });
        }
        if self.cities.contains(&city) {
            return Err(MergeError::Duplicate(city));
        }
        Ok(())
    }

    /// Divides the sums and judges every metric against the targets that apply here.
    pub fn evaluate(&self, cx: &EvalContext<'_>) -> MetricSet {
        let values = MetricId::ALL
            .iter()
            .flat_map(|&m| self.values_of(m, cx))
            .collect();
        MetricSet {
            scope: self.scope,
            period: self.period,
            cities: self.cities.iter().copied().collect(),
            pilot_cities: self.pilot_cities.iter().copied().collect(),
            values,
            cohort: self.cohort.clone(),
            histogram: self.cohort.histogram(),
        }
    }

    fn values_of(&self, m: MetricId, cx: &EvalContext<'_>) -> Vec<MetricValue> {
        use MetricId::*;
        match m {
            M10 | F03 => self.report_values(m, cx),
            M11 => vec![self.pilot_count(cx)],
            F01 | F02 | F04 => self.engine_values(m, cx),
            _ => {
                let mut values: Vec<MetricValue> = CATALOGUE
                    .iter()
                    .filter(|d| d.metric == m)
                    .map(|d| self.record_value(d, cx))
                    .collect();
                if m == F06 {
                    // Refusals at ingest are records; those of sync are measured here.
                    values.extend(self.engine_values(m, cx));
                }
                values
            }
        }
    }

    fn pilots_only(&self, target: Option<&Target>) -> bool {
        target.is_some_and(|t| t.applies_to == AppliesTo::Pilots)
    }

    fn record_value(&self, d: &VariantDef, cx: &EvalContext<'_>) -> MetricValue {
        let target = d
            .primary
            .then(|| resolve_target(cx.targets, d.metric, self.scope))
            .flatten();
        let pilots_only = self.pilots_only(target);
        let use_pilots = pilots_only && !self.pilot_cities.is_empty();
        let t = if use_pilots { &self.pilots } else { &self.all }.get(d.metric, d.variant);
        let pair = match d.unit {
            Unit::Ratio => (t.num, t.den),
            _ => (t.num, 1),
        };
        let mut v = MetricValue::measured(d.metric, d.variant, d.unit, pair, target, d.note);
        if pilots_only && !use_pilots {
            v.status = Status::NotApplicable;
            v.note
                .push_str("; the target applies to pilot cities only, none in scope");
        } else if use_pilots && self.pilot_cities.len() < self.cities.len() {
            let (k, n) = (self.pilot_cities.len(), self.cities.len());
            v.note
                .push_str(&format!("; pilot cities only ({k} of {n})"));
        }
        v
    }

    fn engine_values(&self, m: MetricId, cx: &EvalContext<'_>) -> Vec<MetricValue> {
        let target = resolve_target(cx.targets, m, self.scope);
        let facts: Vec<&EngineFacts> = self
            .engine
            .iter()
            .filter(|(c, _)| !self.pilots_only(target) || self.pilot_cities.contains(c))
            .map(|(_, f)| f)
            .collect();
        match m {
            MetricId::F01 => engine::lag(&facts, target),
            MetricId::F02 => engine::staleness(&facts, cx.limits, self.scope),
            MetricId::F04 => engine::gaps(&facts, target),
            _ => engine::rejections(&facts),
        }
    }

    /// Where each city's report stands (all cities in scope, or the pilots only).
    pub fn submission_states(&self, cx: &EvalContext<'_>, pilots: bool) -> Vec<SubmissionStatus> {
        let today = today_of(cx.limits.now_ms);
        self.submissions
            .iter()
            .filter(|(c, _)| !pilots || self.pilot_cities.contains(c))
            .map(|(c, s)| classify(*c, self.period, s.as_ref(), cx.schedules, today))
            .collect()
    }

    /// M10 (a report submitted) and F03 (on time), from the cities' submissions.
    fn report_values(&self, m: MetricId, cx: &EvalContext<'_>) -> Vec<MetricValue> {
        let target = resolve_target(cx.targets, m, self.scope);
        let pilots_only = self.pilots_only(target);
        let use_pilots = pilots_only && !self.pilot_cities.is_empty();
        let judged = self.submission_states(cx, use_pilots);
        let all = self.submission_states(cx, false);
        let count = |states: &[SubmissionStatus], f: &dyn Fn(SubmissionState) -> bool| {
            u64::try_from(states.iter().filter(|s| f(s.state)).count()).unwrap_or(u64::MAX)
        };
        let missing = |s| s == SubmissionState::Missing;
        let mut primary = if m == MetricId::M10 {
            let submitted = count(&judged, &SubmissionState::submitted);
            MetricValue::measured(
                m,
                "submitted",
                Unit::Ratio,
                (submitted, submitted + count(&judged, &missing)),
                target,
                "cities that submitted their report for the period (with its count basis) of those that did or whose report is due",
            )
        } else {
            let on_time = count(&judged, &|s| s == SubmissionState::OnTime);
            let due = count(&judged, &|s| {
                matches!(
                    s,
                    SubmissionState::OnTime | SubmissionState::Late | SubmissionState::Missing
                )
            });
            MetricValue::measured(
                m,
                "on_time",
                Unit::Ratio,
                (on_time, due),
                target,
                "reports submitted by the due day of the schedule in force of those due (submitted, or missing past the due day)",
            )
        };
        if pilots_only && !use_pilots {
            primary.status = Status::NotApplicable;
            primary
                .note
                .push_str("; the target applies to pilot cities only, none in scope");
        } else if use_pilots && self.pilot_cities.len() < self.cities.len() {
            let (k, n) = (self.pilot_cities.len(), self.cities.len());
            primary
                .note
                .push_str(&format!("; pilot cities only ({k} of {n})"));
        }
        if m == MetricId::M10 {
            return vec![primary];
        }
        let counted = |variant, state: SubmissionState, note| {
            let n = count(&all, &|s| s == state);
            MetricValue::measured(m, variant, Unit::Count, (n, 1), None, note)
        };
        let days = all.iter().filter_map(|s| s.days_after_quarter).max();
        let days = match days.and_then(|d| u64::try_from(d).ok()) {
            Some(d) => MetricValue::measured(
                m,
                "days_after_quarter",
                Unit::Days,
                (d, 1),
                None,
                "days from the quarter's last day to the first submission; the latest city",
            ),
            None => MetricValue::unmeasured(
                m,
                "days_after_quarter",
                Status::NoData,
                "no report submitted",
            ),
        };
        vec![
            primary,
            counted(
                "late",
                SubmissionState::Late,
                "reports submitted after the due day",
            ),
            counted(
                "missing",
                SubmissionState::Missing,
                "reports not submitted although the due day has passed",
            ),
            counted(
                "not_yet_due",
                SubmissionState::NotYetDue,
                "reports not submitted and not due yet",
            ),
            days,
        ]
    }

    fn pilot_count(&self, cx: &EvalContext<'_>) -> MetricValue {
        let none =
            |status, note| MetricValue::unmeasured(MetricId::M11, "active_pilots", status, note);
        match (self.scope, cx.pilots) {
            (Scope::City(_), _) => none(
                Status::NotApplicable,
                "evaluated per province and nationally",
            ),
            (_, None) => none(Status::NoData, "no pilot designations supplied"),
            (Scope::Province(p), Some(o)) => o
                .provinces
                .get(&p)
                .map(|pp| pp.m11.clone())
                .unwrap_or_else(|| none(Status::NoData, "unknown province")),
            (Scope::National, Some(o)) => o.national.clone(),
        }
    }
}

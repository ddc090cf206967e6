//! The re-employment service centre (RSC) cohort behind M02–M05: one stay per person,
//! the services counted inside it, the maturity rule and the (guidance, information,
//! training) histogram.
//!
//! Memory is one small entry per cohort person (at most three vacancy ids each), never
//! per record. A person with several episodes is evaluated on the latest entry on or
//! before the period end, also when the episodes carry pids of two key epochs joined by
//! the city's links ([`PidJoin`]).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use chrono::NaiveDate;
use serde::Serialize;

use super::join::PidJoin;
use super::tally::Tallies;
use crate::core::model::kinds::{
    Fee, LaidOffEpisode, ServiceEvent, ServiceType, TrainingEnrolment,
};
use crate::core::model::values::Pid;
use crate::reporting::analysis::period::Period;
use crate::reporting::analysis::targets::MetricId;

/// Days in the centre after which an entrant is evaluated.
pub(crate) const MATURITY_DAYS: i64 = 90;
/// Job-information provisions (and distinct vacancies) needed for M03.
const INFO_NEEDED: u32 = 3;
/// Distinct vacancies needed for M03's strict variant.
const DISTINCT_NEEDED: usize = 3;
/// Histogram caps: guidance 0/1/2+, information 0–2/3+, training 0/1+.
const CAPS: [usize; 3] = [2, 3, 1];
const BINS: usize = (CAPS[0] + 1) * (CAPS[1] + 1) * (CAPS[2] + 1);

#[derive(Debug, Clone)]
struct Stay {
    entry: NaiveDate,
    exit: Option<NaiveDate>,
    guidance: u32,
    info: u32,
    /// Up to three distinct vacancy ids offered (enough to decide M03's strict variant).
    vacancies: Vec<String>,
    training: u32,
    enrolled: bool,
    completed: bool,
}

impl Stay {
    fn new(entry: NaiveDate, exit: Option<NaiveDate>) -> Self {
        Stay {
            entry,
            exit,
            guidance: 0,
            info: 0,
            vacancies: Vec::new(),
            training: 0,
            enrolled: false,
            completed: false,
        }
    }

    /// True when `date` falls in `[entry, min(exit, period end)]`.
    fn covers(&self, date: NaiveDate, period: Period) -> bool {
        let end = self
            .exit
            .map_or(period.last_day(), |x| x.min(period.last_day()));
        self.entry <= date && date <= end
    }

    fn mature(&self, period: Period) -> bool {
        let end = period.last_day();
        self.exit.is_some_and(|x| x <= end) || (end - self.entry).num_days() >= MATURITY_DAYS
    }

    fn offer(&mut self, refs: &[String]) {
        for r in refs {
            let known = self.vacancies.iter().any(|v| v == r);
            if !known && self.vacancies.len() < DISTINCT_NEEDED {
                self.vacancies.push(r.clone());
            }
        }
    }

    fn passes(&self) -> [bool; 3] {
        [
            self.guidance >= 1,
            self.info >= INFO_NEEDED,
            self.training >= 1,
        ]
    }

    fn bin(&self) -> usize {
        let cap = |n: u32, c: usize| usize::try_from(n).map_or(c, |n| n.min(c));
        let g = cap(self.guidance, CAPS[0]);
        let i = cap(self.info, CAPS[1]);
        let t = cap(self.training, CAPS[2]);
        (g * (CAPS[1] + 1) + i) * (CAPS[2] + 1) + t
    }
}

/// Cohort sizes and the histogram of service counts, for the period cohort.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CohortSummary {
    /// Mature members in the centre during the period (the M02–M05 denominator).
    pub evaluated: u64,
    /// Members not yet 90 days in the centre at the period end, excluded from M02–M05.
    pub immature: u64,
    /// Mature members since the first entry on record (the cumulative denominator).
    pub cumulative: u64,
    #[serde(skip)]
    bins: [u64; BINS],
}

/// One cell of the M05 histogram: persons with these capped service counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistogramBin {
    /// Career guidance events: `0`, `1` or `2+`.
    pub guidance: String,
    /// Job-information provisions: `0`–`2` or `3+`.
    pub job_info: String,
    /// Free or partly-free training offers: `0` or `1+`.
    pub training: String,
    /// Persons.
    pub persons: u64,
}

fn bin_label(n: usize, cap: usize) -> String {
    if n == cap {
        format!("{n}+")
    } else {
        n.to_string()
    }
}

impl CohortSummary {
    /// Every count, the histogram's cells last: what [`CohortSummary::from_counts`] reads.
    pub(crate) fn counts(&self) -> Vec<u64> {
        [self.evaluated, self.immature, self.cumulative]
            .into_iter()
            .chain(self.bins)
            .collect()
    }

    /// The summary [`CohortSummary::counts`] gave, if `counts` has its length.
    pub(crate) fn from_counts(counts: &[u64]) -> Option<CohortSummary> {
        let (&[evaluated, immature, cumulative], bins) = counts.split_first_chunk::<3>()?;
        Some(CohortSummary {
            evaluated,
            immature,
            cumulative,
            bins: bins.try_into().ok()?,
        })
    }

    /// Adds another summary (for aggregation).
    pub(crate) fn merge(&mut self, other: &CohortSummary) {
        self.evaluated += other.evaluated;
        self.immature += other.immature;
        self.cumulative += other.cumulative;
        for (a, b) in self.bins.iter_mut().zip(other.bins) {
            *a += b;
        }
    }

    /// The non-empty histogram cells, in order of (guidance, information, training).
    pub fn histogram(&self) -> Vec<HistogramBin> {
        let per_g = (CAPS[1] + 1) * (CAPS[2] + 1);
        let per_i = CAPS[2] + 1;
        self.bins
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, &persons)| HistogramBin {
                guidance: bin_label(i / per_g, CAPS[0]),
                job_info: bin_label(i % per_g / per_i, CAPS[1]),
                training: bin_label(i % per_i, CAPS[2]),
                persons,
            })
            .collect()
    }
}

/// The RSC stays of one city's cohort.
#[derive(Debug, Default)]
pub(crate) struct Cohort {
    stays: BTreeMap<Pid, Stay>,
}

impl Cohort {
    /// First pass: keeps the person's latest RSC entry on or before the period end.
    pub(crate) fn add_episode(&mut self, ep: &LaidOffEpisode, period: Period) {
        let Some(entry) = ep.rsc_entry_on.filter(|e| *e <= period.last_day()) else {
            return;
        };
        let stay = Stay::new(entry, ep.rsc_exit_on);
        match self.stays.entry(ep.pid) {
            Entry::Vacant(v) => {
                v.insert(stay);
            }
            Entry::Occupied(mut o) if o.get().entry < entry => {
                o.insert(stay);
            }
            Entry::Occupied(_) => {}
        }
    }

    /// Between the passes: keys every stay by its person's representative pid, keeping
    /// the latest entry of a person whose episodes carry pids of several key epochs.
    pub(crate) fn join(&mut self, join: &PidJoin) {
        if join.is_empty() {
            return;
        }
        let stays = std::mem::take(&mut self.stays);
        for (pid, stay) in stays {
            match self.stays.entry(join.find(pid)) {
                Entry::Vacant(v) => {
                    v.insert(stay);
                }
                Entry::Occupied(mut o) if o.get().entry < stay.entry => {
                    o.insert(stay);
                }
                Entry::Occupied(_) => {}
            }
        }
    }

    /// Second pass: counts a service event inside the stay of `person` (the event's pid
    /// as joined).
    pub(crate) fn add_event(&mut self, person: Pid, ev: &ServiceEvent, period: Period) {
        let Some(stay) = self.stays.get_mut(&person) else {
            return;
        };
        if !stay.covers(ev.occurred_on, period) {
            return;
        }
        match ev.event_type {
            ServiceType::CareerGuidance => stay.guidance += 1,
            ServiceType::JobInfoProvision if !ev.vacancy_refs.is_empty() => {
                stay.info += 1;
                stay.offer(&ev.vacancy_refs);
            }
            ServiceType::TrainingOffer if matches!(ev.fee, Fee::Free | Fee::PartlyFree) => {
                stay.training += 1;
            }
            _ => {}
        }
    }

    /// Second pass: notes an enrolment inside the stay of `person` (the enrolment's pid as
    /// joined) and a completion by the period end.
    pub(crate) fn add_enrolment(&mut self, person: Pid, en: &TrainingEnrolment, period: Period) {
        let Some(stay) = self.stays.get_mut(&person) else {
            return;
        };
        if stay.covers(en.enrolled_on, period) {
            stay.enrolled = true;
            stay.completed |= en.completed_on.is_some_and(|d| d <= period.last_day());
        }
    }

    /// Adds every mature member's outcome to `tallies`; returns the cohort summary.
    pub(crate) fn tally(&self, period: Period, tallies: &mut Tallies) -> CohortSummary {
        let mut summary = CohortSummary::default();
        for stay in self.stays.values() {
            let in_period = stay.exit.is_none_or(|x| x >= period.first_day());
            if !stay.mature(period) {
                summary.immature += u64::from(in_period);
                continue;
            }
            summary.cumulative += 1;
            tally_stay(stay, "cumulative", tallies);
            if in_period {
                summary.evaluated += 1;
                summary.bins[stay.bin()] += 1;
                tally_stay(stay, "cohort", tallies);
            }
        }
        summary
    }
}

fn tally_stay(stay: &Stay, variant: &'static str, tallies: &mut Tallies) {
    let [g, i, t] = stay.passes();
    tallies.hit(MetricId::M02, variant, g);
    tallies.hit(MetricId::M03, variant, i);
    tallies.hit(MetricId::M04, variant, t);
    tallies.hit(MetricId::M05, variant, g && i && t);
    if variant == "cohort" {
        let distinct = stay.vacancies.len() >= DISTINCT_NEEDED;
        tallies.hit(MetricId::M03, "distinct_vacancies", distinct);
        tallies.hit(MetricId::M04, "enrolled", stay.enrolled);
        tallies.hit(MetricId::M04, "completed", stay.completed);
    }
}

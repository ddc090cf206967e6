//! [`CityMetrics`]: the two-pass accumulator of one city's record-based metrics, and the
//! additive [`CityCounts`] it finishes into.
//!
//! Pass 1 counts record-local metrics (M01, M07 presence, M08, M09, F05), notes the
//! city's submitted report for the quarter (M10, F03: judged later, against the schedule
//! and the time of evaluation) and keeps the join keys: RSC stays (M02–M05),
//! laid-off/unemployed persons (M12), hardship persons (M06), and the city's pid links.
//! Between the passes every person is keyed by their joined pid ([`PidJoin`]: one person
//! across key epochs); pass 2 counts service events and enrolments against them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

use super::cohort::{Cohort, CohortSummary};
use super::join::PidJoin;
use super::tally::Tallies;
use crate::core::model::kinds::{
    ChannelType, ContractTerm, Fee, JobSeeker, LaidOffEpisode, Office, OfficeType, RecordData,
    ServiceEvent, ServiceType, UnemploymentRegistration, Vacancy,
};
use crate::core::model::record::CodeRef;
use crate::core::model::standards::{Classification, Standards};
use crate::core::model::values::Pid;
use crate::core::model::{Kind, NodeCode, Record};
use crate::reporting::analysis::period::Period;
use crate::reporting::analysis::schedule::Submission;
use crate::reporting::analysis::targets::MetricId;
use crate::reporting::analysis::{TwoPass, counts_for};

/// The notice's four public release channel types (M09).
const CHANNELS: [ChannelType; 4] = [
    ChannelType::DisplayScreen,
    ChannelType::BulletinBoard,
    ChannelType::FreeQueryTerminal,
    ChannelType::Website,
];

/// The additive result of one city's passes: numerators and denominators, no records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CityCounts {
    city: NodeCode,
    period: Period,
    pub(crate) tallies: Tallies,
    pub(crate) cohort: CohortSummary,
    pub(crate) submission: Option<Submission>,
}

impl CityCounts {
    /// The city counted.
    pub fn city(&self) -> NodeCode {
        self.city
    }

    /// The quarter counted.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The RSC cohort summary.
    pub fn cohort(&self) -> &CohortSummary {
        &self.cohort
    }

    /// The city's submitted report for the quarter, if any.
    pub fn submission(&self) -> Option<&Submission> {
        self.submission.as_ref()
    }

    /// `(numerator, denominator)` of a record-based variant (zeros when never counted).
    pub fn tally(&self, metric: MetricId, variant: &'static str) -> (u64, u64) {
        let t = self.tallies.get(metric, variant);
        (t.num, t.den)
    }
}

/// [`CityCounts`] as they are stored and read back (the store's figures): plain data
/// that another release reads or refuses, never misreads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCityCounts {
    city: NodeCode,
    period: Period,
    tallies: Vec<(MetricId, String, u64, u64)>,
    cohort: Vec<u64>,
    submission: Option<Submission>,
}

impl From<&CityCounts> for StoredCityCounts {
    fn from(c: &CityCounts) -> Self {
        StoredCityCounts {
            city: c.city,
            period: c.period,
            tallies: c.tallies.entries(),
            cohort: c.cohort.counts(),
            submission: c.submission.clone(),
        }
    }
}

impl StoredCityCounts {
    /// The counts stored, or `None` if they do not fit this release's catalogue.
    pub fn counts(&self) -> Option<CityCounts> {
        Some(CityCounts {
            city: self.city,
            period: self.period,
            tallies: Tallies::from_entries(&self.tallies)?,
            cohort: CohortSummary::from_counts(&self.cohort)?,
            submission: self.submission.clone(),
        })
    }
}

/// Which of the M07 categories' records appeared in the period.
#[derive(Debug, Default)]
struct Presence {
    vacancies: bool,
    seekers: bool,
    laid_off: bool,
    unemployed: bool,
    fund: bool,
    payments: bool,
    courses: bool,
    enrolments: bool,
}

/// Bits 0–2: the three months of a quarter.
const EVERY_MONTH: u8 = 0b111;

/// Months of the period (bits 0–2) a hardship person needs, and had, a tracking contact.
#[derive(Debug, Default, Clone, Copy)]
struct Tracking {
    required: u8,
    seen: u8,
}

/// The record-based metrics of one city for one quarter, fed two passes ([`TwoPass`]).
#[derive(Debug)]
pub struct CityMetrics<'a> {
    city: NodeCode,
    period: Period,
    standards: &'a Standards,
    /// The versions in force, computed once.
    in_force: Vec<CodeRef>,
    tallies: Tallies,
    cohort: Cohort,
    /// Persons laid off or registered unemployed during the period (M12).
    served: BTreeSet<Pid>,
    hardship: BTreeMap<Pid, Tracking>,
    /// The city's pid links: one person across key epochs.
    join: PidJoin,
    /// True once the persons of pass 1 are keyed by their joined pids.
    joined: bool,
    presence: Presence,
    channels: BTreeSet<ChannelType>,
    submission: Option<Submission>,
}

impl<'a> CityMetrics<'a> {
    /// An empty accumulator for `city` in `period`; F05 is judged against `standards`.
    pub fn new(city: NodeCode, period: Period, standards: &'a Standards) -> Self {
        CityMetrics {
            city,
            period,
            standards,
            in_force: standards.code_refs(),
            tallies: Tallies::default(),
            cohort: Cohort::default(),
            served: BTreeSet::new(),
            hardship: BTreeMap::new(),
            join: PidJoin::default(),
            joined: false,
            presence: Presence::default(),
            channels: BTreeSet::new(),
            submission: None,
        }
    }

    /// The additive counts, once both passes are done.
    pub fn finish(mut self) -> CityCounts {
        self.join_persons();
        let cohort = self.cohort.tally(self.period, &mut self.tallies);
        for t in self.hardship.values() {
            let pass = t.seen & t.required == t.required;
            self.tallies.hit(MetricId::M06, "monthly_tracking", pass);
        }
        self.tally_presence();
        let channels = u64::try_from(self.channels.len()).unwrap_or(u64::MAX);
        self.tallies
            .add(MetricId::M09, "channel_types", channels, 4);
        CityCounts {
            city: self.city,
            period: self.period,
            tallies: self.tallies,
            cohort,
            submission: self.submission,
        }
    }

    /// Once, between the passes: keys every person noted in pass 1 by their joined pid,
    /// so that pass 2 and the tallies see one person across key epochs.
    fn join_persons(&mut self) {
        if std::mem::replace(&mut self.joined, true) || self.join.is_empty() {
            return;
        }
        self.join.flatten();
        self.cohort.join(&self.join);
        let join = &self.join;
        self.served = std::mem::take(&mut self.served)
            .into_iter()
            .map(|p| join.find(p))
            .collect();
        for (pid, t) in std::mem::take(&mut self.hardship) {
            let joined = self.hardship.entry(join.find(pid)).or_default();
            joined.required |= t.required;
            joined.seen |= t.seen;
        }
    }

    fn tally_presence(&mut self) {
        let p = &self.presence;
        let categories = [
            ("supply_demand", p.vacancies && p.seekers),
            ("laid_off_unemployed", p.laid_off || p.unemployed),
            ("ui_fund_benefit", p.fund && p.payments),
            ("training", p.courses || p.enrolments),
        ];
        for (variant, met) in categories {
            self.tallies.hit(MetricId::M07, variant, met);
            self.tallies
                .add(MetricId::M07, "all_four", u64::from(met), 1);
        }
    }

    fn currency(&mut self, r: &Record) {
        let written =
            DateTime::from_timestamp_millis(r.envelope.recorded_at_ms).map(|t| t.date_naive());
        if !written.is_some_and(|d| self.period.contains(d)) {
            return;
        }
        let refs = &r.envelope.code_refs;
        let current = !refs.is_empty()
            && refs.iter().all(|c| {
                self.in_force
                    .iter()
                    .all(|f| f.scheme != c.scheme || f.version == c.version)
            });
        self.tallies.hit(MetricId::F05, "current_version", current);
        let bad = self.unresolvable(r);
        self.tallies
            .add(MetricId::F05, "unresolvable_codes", bad, 0);
    }

    /// Codes of `r` missing from a classification whose in-force version `r` declares.
    fn unresolvable(&self, r: &Record) -> u64 {
        let s = self.standards;
        let missing = |class: &Classification, code: &str| {
            let declared = r
                .envelope
                .code_refs
                .iter()
                .any(|c| c.scheme == class.scheme && c.version == class.version);
            u64::from(declared && !class.contains(code))
        };
        match &r.data {
            RecordData::Vacancy(v) => {
                missing(&s.occupation, &v.occupation) + missing(&s.industry, &v.industry)
            }
            RecordData::Employer(e) => {
                missing(&s.industry, &e.industry) + missing(&s.employer_type, &e.ownership_type)
            }
            RecordData::JobSeeker(j) => j
                .desired_occupations
                .iter()
                .map(|c| missing(&s.occupation, c))
                .sum(),
            RecordData::Placement(p) => missing(&s.occupation, &p.occupation),
            RecordData::TrainingCourse(c) => missing(&s.occupation, &c.occupation),
            _ => 0,
        }
    }

    fn valid(&self, from: NaiveDate, until: Option<NaiveDate>) -> bool {
        self.period.overlaps(from, until)
    }

    fn vacancy(&mut self, v: &Vacancy) {
        if !self.valid(v.valid_from, Some(v.valid_until)) {
            return;
        }
        self.presence.vacancies = true;
        if v.contract_term == ContractTerm::UpTo1Year {
            return;
        }
        let online = v
            .published_online_on
            .is_some_and(|d| d <= self.period.last_day());
        let hc = u64::from(v.headcount);
        self.tallies.hit(MetricId::M01, "by_reports", online);
        let num = if online { hc } else { 0 };
        self.tallies.add(MetricId::M01, "by_headcount", num, hc);
    }

    fn seeker(&mut self, s: &JobSeeker) {
        if !self.valid(s.registered_on, Some(s.valid_until)) {
            return;
        }
        self.presence.seekers = true;
        let flagged = s
            .hardship
            .as_ref()
            .is_some_and(|h| h.since <= self.period.last_day());
        if !flagged {
            return;
        }
        // A contact in each month of the quarter, whenever in it the flag was raised.
        self.hardship.entry(s.pid).or_default().required = EVERY_MONTH;
    }

    fn laid_off(&mut self, e: &LaidOffEpisode) {
        self.cohort.add_episode(e, self.period);
        if self.valid(e.laid_off_on, e.rsc_exit_on) {
            self.presence.laid_off = true;
            self.served.insert(e.pid);
        }
    }

    fn unemployed(&mut self, u: &UnemploymentRegistration) {
        if self.valid(u.registered_on, u.ended_on) {
            self.presence.unemployed = true;
            self.served.insert(u.pid);
        }
    }

    fn office(&mut self, o: &Office) {
        if !self.valid(o.opened_on, o.closed_on) {
            return;
        }
        let end = self.period.last_day();
        let networked = o.networked && o.networked_since.is_none_or(|d| d <= end);
        self.tallies.hit(MetricId::M08, "all", networked);
        self.tallies
            .hit(MetricId::M08, office_variant(o.office_type), networked);
        let running: BTreeSet<ChannelType> = o
            .public_channels
            .iter()
            .filter(|c| c.since <= end && CHANNELS.contains(&c.channel))
            .map(|c| c.channel)
            .collect();
        self.tallies
            .hit(MetricId::M09, "offices_with_channel", !running.is_empty());
        self.channels.extend(running);
    }

    fn service(&mut self, e: &ServiceEvent) {
        let person = self.join.find(e.pid);
        self.cohort.add_event(person, e, self.period);
        let Some(month) = self.period.month_index(e.occurred_on) else {
            return;
        };
        if e.event_type == ServiceType::TrackingContact
            && let Some(t) = self.hardship.get_mut(&person)
        {
            t.seen |= 1 << month;
        }
        if self.served.contains(&person) {
            let free = matches!(e.fee, Fee::Free | Fee::PartlyFree);
            self.tallies.hit(MetricId::M12, "free_services", free);
        }
    }
}

fn office_variant(t: OfficeType) -> &'static str {
    match t {
        OfficeType::CityCentre => "city_centre",
        OfficeType::DistrictCentre => "district_centre",
        OfficeType::StreetStation => "street_station",
        OfficeType::UiAgency => "ui_agency",
        OfficeType::ReemploymentServiceCentre => "reemployment_service_centre",
        OfficeType::TrainingCentre => "training_centre",
        OfficeType::PrivateAgency => "private_agency",
    }
}

impl TwoPass for CityMetrics<'_> {
    fn first_pass(&mut self, r: &Record) {
        if r.envelope.owner == self.city && r.envelope.kind.posted() {
            // Every record the city holds was accepted at its ingest, voided ones too.
            self.tallies.add(MetricId::F06, "rejection_rate", 0, 1);
        }
        if !counts_for(r, self.city) {
            return;
        }
        if !matches!(r.envelope.kind, Kind::PidLink | Kind::IngestTally) {
            // Links and tallies are the node's own bookkeeping, not records an office
            // wrote, and carry no codes.
            self.currency(r);
        }
        let p = self.period;
        match &r.data {
            RecordData::Office(o) => self.office(o),
            RecordData::Vacancy(v) => self.vacancy(v),
            RecordData::JobSeeker(s) => self.seeker(s),
            RecordData::LaidOffEpisode(e) => self.laid_off(e),
            RecordData::UnemploymentRegistration(u) => self.unemployed(u),
            RecordData::UiFundEntry(f) => self.presence.fund |= p.contains(f.entry_date),
            RecordData::UiBenefitPayment(b) => self.presence.payments |= p.contains(b.paid_on),
            RecordData::TrainingCourse(c) => {
                self.presence.courses |= p.overlaps(c.start_on, Some(c.end_on));
            }
            RecordData::TrainingEnrolment(e) => {
                self.presence.enrolments |= p.overlaps(e.enrolled_on, e.completed_on);
            }
            RecordData::SupplyDemandReport(_) => {
                if let Some(s) = Submission::of(r, self.city, p) {
                    self.submission = Some(s);
                }
            }
            RecordData::IngestTally(t) => {
                // Refusals at ingest in every quarter so far, of those and the records
                // accepted (F06).
                self.tallies
                    .add(MetricId::F06, "rejection_rate", t.refused, t.refused);
            }
            RecordData::PidLink(l) => self.join.link(l.from_pid, l.to_pid),
            RecordData::Employer(_) | RecordData::ServiceEvent(_) | RecordData::Placement(_) => {}
        }
    }

    fn second_pass(&mut self, r: &Record) {
        self.join_persons();
        if !counts_for(r, self.city) {
            return;
        }
        match &r.data {
            RecordData::ServiceEvent(e) => self.service(e),
            RecordData::TrainingEnrolment(e) => {
                let person = self.join.find(e.pid);
                self.cohort.add_enrolment(person, e, self.period);
            }
            _ => {}
        }
    }
}

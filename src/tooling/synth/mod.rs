//! Seeded synthetic office records for one pilot city (`docs/reference/synthetic-data.md`), as the JSON that
//! `POST /v1/records` accepts (`docs/reference/records.md`). Used by `lmsync gen` and the demo.
//!
//! A [`Generator`] first emits the city's offices, employers and re-employment service
//! centres, then an endless day-by-day stream from 1999-07-01: training courses, vacancies,
//! job seekers with their laid-off episodes and unemployment registrations, service
//! events, placements, unemployment-insurance payments, fund ledger entries and training
//! enrolments, plus new versions of earlier records (published or filled vacancies, closed
//! episodes). Everything is deterministic for `(city, seed)`.
//!
//! This module does not talk to a node, does not validate (the ingest path does) and does
//! not inject transport faults (late batches, replays); those belong to the demo and tests.
//! Person records carry a synthetic `citizen_id` (and, for job seekers, a name and phone
//! that ingest drops), never a pid.

mod city;
mod codes;
mod dist;
mod jobs;
mod people;
mod services;
mod setup;
mod ui;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use chrono::{Datelike, Days, NaiveDate};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use self::city::City;
use self::codes::Occupations;
use self::dist::Draw;
use crate::core::model::kinds::RecordData;
use crate::core::model::{Kind, NodeCode, Status};

/// First simulated day: the pilot's second half-year of 1999.
const START: NaiveDate = match NaiveDate::from_ymd_opt(1999, 7, 1) {
    Some(d) => d,
    None => panic!("1999-07-01 is a valid date"),
};

/// Yearly arrivals for a city of one million urban residents (`docs/reference/synthetic-data.md`).
const VACANCIES_PER_YEAR: f64 = 20_000.0;
const SEEKERS_PER_YEAR: f64 = 60_000.0;
const WALK_INS_PER_YEAR: f64 = 1_500.0;

/// An endless, deterministic stream of one city's records, in dependency order.
pub struct Generator {
    rng: ChaCha8Rng,
    city: City,
    occupations: Occupations,
    today: NaiveDate,
    out: VecDeque<Value>,
    agenda: BTreeMap<NaiveDate, Vec<Task>>,
    next_id: [u64; Kind::ALL.len()],
    offices: setup::Offices,
    employers: Vec<setup::EmployerRef>,
    vacancies: jobs::Recent,
    courses: Vec<setup::CourseRef>,
    fund: ui::Fund,
    /// Benefit claims opened so far.
    claims: u64,
}

/// Something due on a future simulated day.
enum Task {
    /// Emit a record prepared earlier (a later event or a new version).
    Emit(Box<Pending>),
    /// Pay the next month of a benefit claim.
    Pay(Box<ui::Claim>),
    /// Book a fund ledger entry (amounts may be totals known only on the day).
    Fund(Box<ui::FundItem>),
}

/// One step of a simulated day, shuffled so that kinds interleave.
enum Step {
    Vacancy,
    Seeker,
    WalkIn,
    Task(Task),
}

/// A record ready to emit.
struct Pending {
    /// The id; `None` takes the next id of the kind at emission.
    id: Option<String>,
    /// Status when not active.
    status: Option<Status>,
    /// Citizen ID of the person the record names (replaces `pid`).
    person: Option<String>,
    /// Identifying extras that only the city sees (dropped at ingest).
    extra: Vec<(&'static str, Value)>,
    /// The fields.
    data: RecordData,
}

impl Pending {
    fn new(data: RecordData) -> Pending {
        Pending {
            id: None,
            status: None,
            person: None,
            extra: Vec::new(),
            data,
        }
    }

    fn of(person: &str, data: RecordData) -> Pending {
        Pending {
            person: Some(person.to_string()),
            ..Pending::new(data)
        }
    }

    fn version(id: &str, status: Option<Status>, data: RecordData) -> Pending {
        Pending {
            id: Some(id.to_string()),
            status,
            ..Pending::new(data)
        }
    }
}

impl Generator {
    /// Records for `city`, deterministic for `(city, seed)`: the city's generator is seeded
    /// with blake3 of the global seed and the city code, so cities are independent.
    pub fn new(city: NodeCode, seed: u64) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"lmsync-synth-v1|");
        hasher.update(&seed.to_le_bytes());
        hasher.update(&city.get().to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(*hasher.finalize().as_bytes());
        let profile = City::new(city, &mut rng);
        let mut generator = Generator {
            rng,
            city: profile,
            occupations: Occupations::builtin(),
            today: START,
            out: VecDeque::new(),
            agenda: BTreeMap::new(),
            next_id: [0; Kind::ALL.len()],
            offices: setup::Offices::default(),
            employers: Vec::new(),
            vacancies: jobs::Recent::default(),
            courses: Vec::new(),
            fund: ui::Fund::default(),
            claims: 0,
        };
        generator.set_up();
        generator
    }

    /// Runs one simulated day: month opening, shuffled arrivals and due tasks, then the
    /// tasks those created for the same day.
    fn run_day(&mut self) {
        let day = self.today;
        if day.day() == 1 {
            self.open_month();
        }
        let mut steps = self.arrivals();
        let due = self.agenda.remove(&day).unwrap_or_default();
        steps.extend(due.into_iter().map(Step::Task));
        steps.shuffle(&mut self.rng);
        if self.vacancies.is_empty() {
            // The first day: vacancies first, so job information has something to name.
            steps.sort_by_key(|s| !matches!(s, Step::Vacancy));
        }
        for step in steps {
            self.run_step(step);
        }
        while let Some(tasks) = self.agenda.remove(&day) {
            for task in tasks {
                self.run_task(task);
            }
        }
        self.today = day + Days::new(1);
    }

    fn arrivals(&mut self) -> Vec<Step> {
        let season = season(self.today.month());
        let vacancies = self
            .rng
            .poisson(self.city.daily(VACANCIES_PER_YEAR) * season);
        let seekers = self.rng.poisson(self.city.daily(SEEKERS_PER_YEAR) * season);
        let walk_ins = self.rng.poisson(self.city.daily(WALK_INS_PER_YEAR));
        let mut steps = Vec::new();
        steps.extend((0..vacancies).map(|_| Step::Vacancy));
        steps.extend((0..seekers).map(|_| Step::Seeker));
        steps.extend((0..walk_ins).map(|_| Step::WalkIn));
        steps
    }

    fn run_step(&mut self, step: Step) {
        match step {
            Step::Vacancy => self.new_vacancy(),
            Step::Seeker => self.new_seeker(),
            Step::WalkIn => self.walk_in(),
            Step::Task(task) => self.run_task(task),
        }
    }

    fn run_task(&mut self, task: Task) {
        match task {
            Task::Emit(pending) => {
                self.emit(*pending);
            }
            Task::Pay(claim) => self.pay(*claim),
            Task::Fund(item) => self.book(*item),
        }
    }

    /// Queues `task` for `date` (never before today).
    fn schedule(&mut self, date: NaiveDate, task: Task) {
        let date = date.max(self.today);
        self.agenda.entry(date).or_default().push(task);
    }

    /// Queues a prepared record for `date`.
    fn schedule_emit(&mut self, date: NaiveDate, pending: Pending) {
        self.schedule(date, Task::Emit(Box::new(pending)));
    }

    /// The next unused id of `kind`, e.g. `V-0000123`.
    fn new_id(&mut self, kind: Kind) -> String {
        let n = &mut self.next_id[kind.index()];
        *n += 1;
        format!("{}-{:07}", id_prefix(kind), n)
    }

    /// Appends a record to the output and returns its id.
    fn emit(&mut self, pending: Pending) -> String {
        let kind = pending.data.kind();
        let id = match pending.id {
            Some(id) => id,
            None => self.new_id(kind),
        };
        let mut data = match pending.data.to_json() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        data.retain(|_, v| !v.is_null());
        if let Some(citizen_id) = pending.person {
            data.remove("pid");
            data.remove("pid_epoch");
            data.insert("citizen_id".into(), Value::String(citizen_id));
        }
        data.extend(pending.extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        let mut record = Map::new();
        record.insert("kind".into(), Value::from(kind.as_str()));
        record.insert("id".into(), Value::String(id.clone()));
        if let Some(status) = pending.status {
            record.insert("status".into(), Value::from(status_name(status)));
        }
        record.insert("data".into(), Value::Object(data));
        self.out.push_back(Value::Object(record));
        id
    }

    /// `days` after today.
    fn in_days(&self, days: u32) -> NaiveDate {
        plus_days(self.today, days)
    }

    /// A uniform day `lo..=hi` days from today.
    fn soon(&mut self, lo: u32, hi: u32) -> NaiveDate {
        let days = self.rng.between(lo, hi);
        self.in_days(days)
    }
}

impl Iterator for Generator {
    type Item = Value;

    /// The next record; the stream never ends.
    fn next(&mut self) -> Option<Value> {
        while self.out.is_empty() {
            self.run_day();
        }
        self.out.pop_front()
    }
}

/// Convenience: the first `records` records of `city` for `seed`.
pub fn generate(city: NodeCode, records: usize, seed: u64) -> Vec<Value> {
    Generator::new(city, seed).take(records).collect()
}

/// `days` after `date`.
fn plus_days(date: NaiveDate, days: u32) -> NaiveDate {
    date + Days::new(u64::from(days))
}

/// Demand seasonality: Q1 low (Spring Festival), Q2 high (`docs/reference/synthetic-data.md`).
fn season(month: u32) -> f64 {
    match month {
        1 => 0.8,
        2 => 0.7,
        3 | 5 => 1.1,
        4 => 1.15,
        9 => 1.05,
        10 | 11 => 0.95,
        12 => 0.85,
        _ => 1.0,
    }
}

fn id_prefix(kind: Kind) -> &'static str {
    match kind {
        Kind::Office => "O",
        Kind::Employer => "E",
        Kind::Vacancy => "V",
        Kind::JobSeeker => "S",
        Kind::LaidOffEpisode => "L",
        Kind::UnemploymentRegistration => "U",
        Kind::ServiceEvent => "EV",
        Kind::Placement => "P",
        Kind::UiBenefitPayment => "B",
        Kind::UiFundEntry => "F",
        Kind::TrainingCourse => "C",
        Kind::TrainingEnrolment => "T",
        // Not generated: a city node writes its submitted report and tallies itself.
        Kind::SupplyDemandReport => "R",
        Kind::IngestTally => "IT",
        // Not generated: a city node links pids itself during a key overlap.
        Kind::PidLink => "K",
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Active => "active",
        Status::Closed => "closed",
        Status::Withdrawn => "withdrawn",
        Status::Voided => "voided",
    }
}

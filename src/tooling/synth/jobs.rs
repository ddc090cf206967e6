//! Demand and its outcome: vacancy reports with their later versions (published online,
//! filled, withdrawn, expired) and placements of job seekers into work.
//!
//! Shapes follow `docs/reference/synthetic-data.md`: occupation major groups, headcount geometric with mean 4
//! capped at 200, a per-city share of contracts of a year or more, and a per-city online
//! publication rate. Placements through a public referral name a recent vacancy and are
//! preceded by the referral itself.

use chrono::NaiveDate;

use super::codes;
use super::dist::Draw;
use super::{Generator, Pending, plus_days};
use crate::core::model::Status;
use crate::core::model::kinds::{
    ChannelType, ContractTerm, EmploymentType, FillState, Placement, PlacementEvidence,
    PlacementRoute, RecordData, ReportChannel, ServiceMode, ServiceOutcome, ServiceType,
    SexRequirement, SkillLevel, Vacancy,
};
use crate::core::model::values::{Pid, PidEpoch};

/// How many recent vacancies job information and referrals may point at.
const RECENT_CAP: usize = 400;

/// A recent vacancy, as services and placements refer to it.
#[derive(Debug, Clone)]
pub(super) struct VacancyRef {
    pub(super) id: String,
    pub(super) occupation: &'static str,
    pub(super) employer: String,
}

/// A ring of recent vacancies.
#[derive(Debug, Clone, Default)]
pub(super) struct Recent {
    items: Vec<VacancyRef>,
    next: usize,
}

impl Recent {
    fn push(&mut self, item: VacancyRef) {
        if self.items.len() < RECENT_CAP {
            self.items.push(item);
        } else {
            self.items[self.next] = item;
            self.next = (self.next + 1) % RECENT_CAP;
        }
    }

    /// True before the first vacancy.
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// One recent vacancy, if any.
    pub(super) fn pick<R: Draw>(&self, rng: &mut R) -> Option<VacancyRef> {
        self.items.get(rng.index(self.items.len())).cloned()
    }

    /// Up to `n` distinct recent vacancy ids.
    pub(super) fn ids<R: Draw>(&self, rng: &mut R, n: u32) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for _ in 0..n {
            if let Some(v) = self.pick(rng).filter(|v| !out.contains(&v.id)) {
                out.push(v.id);
            }
        }
        out
    }
}

impl Generator {
    /// Emits a vacancy report and schedules its later versions.
    pub(super) fn new_vacancy(&mut self) {
        let employer = self.rng.one(&self.employers).clone();
        let occupation = self.occupations.demand(&mut self.rng);
        let (contract_term, term_months, employment_type) = self.contract();
        let (wage_min, wage_max) = self.wages(occupation);
        let publish_allowed = self.rng.chance(0.93);
        let online = publish_allowed && self.rng.chance(self.city.profile.online);
        let lag = if online && self.rng.chance(0.4) {
            self.rng.between(1, 10)
        } else {
            0
        };
        let mut vacancy = Vacancy {
            receiving_office_id: self.receiving_office(),
            employer_id: employer.id.clone(),
            reported_on: self.today,
            report_channel: self.report_channel(),
            title: format!("招聘{}", codes::occupation_name(occupation)),
            occupation: occupation.to_string(),
            industry: employer.industry.to_string(),
            headcount: self.rng.geometric(4.0, 200),
            contract_term,
            term_months,
            employment_type,
            wage_min,
            wage_max,
            education_min: self
                .rng
                .chance(0.7)
                .then(|| self.rng.weighted(&codes::EDUCATION).to_string()),
            experience_years: self
                .rng
                .chance(0.5)
                .then(|| u8::try_from(self.rng.between(0, 5)).unwrap_or(0)),
            work_location: self.work_location(&employer.division),
            valid_from: self.today,
            valid_until: self.soon(30, 90),
            publish_allowed,
            published_online_on: (online && lag == 0).then_some(self.today),
            published_channels: channels(publish_allowed, online && lag == 0),
            fill_state: FillState::Open,
            filled_count: 0,
            skill_level_min: self.skill_asked(),
            sex_requirement: None,
            age_min: None,
            age_max: None,
        };
        self.forms_of_the_time(&mut vacancy);
        let id = self.emit(Pending::new(RecordData::Vacancy(vacancy.clone())));
        self.vacancies.push(VacancyRef {
            id: id.clone(),
            occupation,
            employer: employer.id,
        });
        if lag > 0 {
            let on = self.in_days(lag);
            vacancy.published_online_on = Some(on);
            vacancy.published_channels = channels(true, true);
            self.schedule_emit(
                on,
                Pending::version(&id, None, RecordData::Vacancy(vacancy.clone())),
            );
        }
        self.vacancy_fate(&id, vacancy, self.in_days(lag + 1));
    }

    /// About a quarter of vacancies get a later fill-state version.
    fn vacancy_fate(&mut self, id: &str, mut vacancy: Vacancy, after: NaiveDate) {
        let roll = self.rng.real(0.0, 1.0);
        let on = plus_days(after, self.rng.between(0, 40)).min(vacancy.valid_until);
        let status = if roll < 0.12 {
            vacancy.fill_state = FillState::Filled;
            vacancy.filled_count = vacancy.headcount;
            Status::Closed
        } else if roll < 0.17 && vacancy.headcount > 1 {
            vacancy.fill_state = FillState::PartlyFilled;
            vacancy.filled_count = self.rng.between(1, vacancy.headcount - 1);
            Status::Active
        } else if roll < 0.19 {
            vacancy.fill_state = FillState::Withdrawn;
            Status::Withdrawn
        } else if roll < 0.24 {
            vacancy.fill_state = FillState::Expired;
            let expired = plus_days(vacancy.valid_until, 1);
            return self.schedule_vacancy(expired, id, Status::Closed, vacancy);
        } else {
            return;
        };
        self.schedule_vacancy(on.max(after), id, status, vacancy);
    }

    fn schedule_vacancy(&mut self, on: NaiveDate, id: &str, status: Status, vacancy: Vacancy) {
        let status = (status != Status::Active).then_some(status);
        self.schedule_emit(
            on,
            Pending::version(id, status, RecordData::Vacancy(vacancy)),
        );
    }

    /// Contract class, months and employment type, with the city's long-term share.
    fn contract(&mut self) -> (ContractTerm, Option<u16>, EmploymentType) {
        if self.rng.chance(self.city.profile.long_term) {
            let apprentice = self.rng.chance(0.05);
            let kind = if apprentice {
                EmploymentType::Apprentice
            } else {
                EmploymentType::FullTime
            };
            if self.rng.chance(0.15) {
                return (ContractTerm::OpenEnded, None, kind);
            }
            let months = *self.rng.weighted(&[(12, 45), (24, 25), (36, 20), (60, 10)]);
            return (ContractTerm::OneYearOrMore, Some(months), kind);
        }
        let months = self
            .rng
            .chance(0.8)
            .then(|| u16::try_from(self.rng.between(1, 11)).unwrap_or(6));
        let kind = *self.rng.weighted(&[
            (EmploymentType::Temporary, 40),
            (EmploymentType::Seasonal, 15),
            (EmploymentType::PartTime, 15),
            (EmploymentType::FullTime, 30),
        ]);
        (ContractTerm::UpTo1Year, months, kind)
    }

    /// Monthly wage range in 1999 yuan by major group; one report in ten gives none.
    fn wages(&mut self, occupation: &str) -> (Option<u32>, Option<u32>) {
        if self.rng.chance(0.1) {
            return (None, None);
        }
        let (lo, hi) = match occupation.split('-').next() {
            Some("1") => (1000, 2500),
            Some("2") => (700, 1500),
            Some("3") => (500, 900),
            Some("5") => (300, 500),
            Some("6") => (450, 800),
            _ => (350, 700),
        };
        let min = self.rng.between(lo, hi) / 50 * 50;
        let max = min + self.rng.between(0, min / 2) / 50 * 50;
        (Some(min), Some(max))
    }

    /// A skill level asked for by about a third of vacancies.
    fn skill_asked(&mut self) -> Option<SkillLevel> {
        self.rng
            .chance(0.3)
            .then(|| *self.rng.weighted(&codes::SKILL_LEVELS))
    }

    /// The sex and age requirements some forms of the time carried (sensitive fields).
    fn forms_of_the_time(&mut self, v: &mut Vacancy) {
        if self.rng.chance(0.2) {
            v.sex_requirement = Some(if self.rng.chance(0.5) {
                SexRequirement::Male
            } else {
                SexRequirement::Female
            });
        }
        if self.rng.chance(0.4) {
            let lo = u8::try_from(self.rng.between(16, 25)).unwrap_or(16);
            v.age_min = Some(lo);
            v.age_max =
                Some(lo.saturating_add(u8::try_from(self.rng.between(10, 25)).unwrap_or(10)));
        }
    }

    fn receiving_office(&mut self) -> String {
        let roll = self.rng.between(0, 99);
        if roll < 40 && !self.offices.districts.is_empty() {
            return self.rng.one(&self.offices.districts).0.clone();
        }
        if roll < 70 && !self.offices.stations.is_empty() {
            return self.rng.one(&self.offices.stations).clone();
        }
        self.offices.city_centre.clone()
    }

    fn report_channel(&mut self) -> ReportChannel {
        *self.rng.weighted(&[
            (ReportChannel::OnSite, 60),
            (ReportChannel::Phone, 20),
            (ReportChannel::Fax, 8),
            (ReportChannel::Letter, 7),
            (ReportChannel::Online, 5),
        ])
    }

    fn work_location(&mut self, employer_division: &str) -> String {
        if self.rng.chance(0.8) {
            employer_division.to_string()
        } else {
            self.rng.one(&self.city.divisions).clone()
        }
    }

    /// Schedules a placement of `person` on `on`; `pes_share` of them come through a
    /// referral to a recent vacancy, preceded by the referral event.
    pub(super) fn schedule_placement(&mut self, person: &str, on: NaiveDate, pes_share: f64) {
        let referral = self
            .rng
            .chance(pes_share)
            .then(|| self.vacancies.pick(&mut self.rng))
            .flatten();
        let placement = match referral {
            Some(vacancy) => self.referred(person, on, vacancy),
            None => self.self_found(),
        };
        let placement = Placement {
            start_on: on,
            ..placement
        };
        self.schedule_emit(on, Pending::of(person, RecordData::Placement(placement)));
    }

    fn referred(&mut self, person: &str, on: NaiveDate, vacancy: VacancyRef) -> Placement {
        let referred_on =
            (on - chrono::Days::new(u64::from(self.rng.between(3, 14)))).max(self.today);
        let office = self.service_office();
        let mut event = self.service(
            office,
            referred_on,
            ServiceType::Referral,
            ServiceMode::InPerson,
        );
        event.vacancy_refs = vec![vacancy.id.clone()];
        event.outcome = Some(ServiceOutcome::AcceptedReferral);
        self.schedule_emit(
            referred_on,
            Pending::of(person, RecordData::ServiceEvent(event)),
        );
        Placement {
            employer_id: Some(vacancy.employer),
            vacancy_id: Some(vacancy.id),
            occupation: vacancy.occupation.to_string(),
            route: PlacementRoute::PesReferral,
            ..self.placement_base()
        }
    }

    fn self_found(&mut self) -> Placement {
        let route = *self.rng.weighted(&[
            (PlacementRoute::SelfFound, 60),
            (PlacementRoute::SelfEmployed, 20),
            (PlacementRoute::PublicWelfareJob, 12),
            (PlacementRoute::Other, 8),
        ]);
        let employer = (route != PlacementRoute::SelfEmployed)
            .then(|| self.rng.one(&self.employers).id.clone());
        Placement {
            employer_id: employer,
            occupation: self.occupations.supply(&mut self.rng).to_string(),
            route,
            ..self.placement_base()
        }
    }

    fn placement_base(&mut self) -> Placement {
        let months = *self.rng.weighted(&[
            (None, 20),
            (Some(6), 20),
            (Some(12), 35),
            (Some(24), 15),
            (Some(36), 10),
        ]);
        let evidence = *self.rng.weighted(&[
            (PlacementEvidence::EmploymentRegistration, 60),
            (PlacementEvidence::HiringFiling, 40),
        ]);
        Placement {
            pid: Pid([0; 16]),
            pid_epoch: PidEpoch::default(),
            employer_id: None,
            vacancy_id: None,
            start_on: self.today,
            occupation: String::new(),
            contract_term_months: months,
            route: PlacementRoute::Other,
            evidence,
            ended_on: None,
        }
    }
}

/// Release channels: boards and screens when publishable, the internet once online.
fn channels(publish_allowed: bool, online: bool) -> Vec<ChannelType> {
    let mut out = Vec::new();
    if publish_allowed {
        out.extend([ChannelType::DisplayScreen, ChannelType::BulletinBoard]);
    }
    if online {
        out.push(ChannelType::Website);
    }
    out
}

//! Job seekers and what follows their registration: synthetic citizen IDs (GB 11643, with
//! the address code in the city's province and a valid check character), the job-seeker
//! record, laid-off episodes with re-employment service centre stays, unemployment
//! registrations and eventual placements.
//!
//! Category mix per `docs/reference/synthetic-data.md` (1999: laid-off 35–50%, unemployed 25–40%, rural and
//! non-local 10–20%). Later records about a person carry the same citizen ID, so the node
//! derives the same pid; walk-ins are people the city never registered.

use chrono::{Datelike, NaiveDate};

use super::codes::{self, GIVEN, SURNAMES};
use super::dist::Draw;
use super::{Generator, Pending, plus_days};
use crate::core::model::Status;
use crate::core::model::kinds::{
    Hardship, HardshipBasis, HukouClass, JobSeeker, LaidOffEpisode, RecordData, RscExitReason,
    SeekerCategory, Sex, UnemploymentCategory, UnemploymentEnd, UnemploymentRegistration,
};
use crate::core::model::person::check_char;
use crate::core::model::values::{Pid, PidEpoch};

/// Seeker categories, per mille.
const CATEGORIES: [(SeekerCategory, u32); 10] = [
    (SeekerCategory::LaidOff, 420),
    (SeekerCategory::FormerlyEmployed, 180),
    (SeekerCategory::NewYouth, 90),
    (SeekerCategory::NewGraduate, 20),
    (SeekerCategory::OtherUnemployed, 50),
    (SeekerCategory::NonLocal, 90),
    (SeekerCategory::LocalRural, 60),
    (SeekerCategory::Employed, 40),
    (SeekerCategory::Student, 20),
    (SeekerCategory::Retired, 30),
];

/// Share of laid-off seekers who enter a re-employment service centre (≈10k per million).
const RSC_ENTRY: f64 = 0.4;

/// Monthly re-employment hazard of registered unemployed people.
const UNEMPLOYED_HAZARD: f64 = 0.06;

/// A synthetic person.
pub(super) struct Person {
    pub(super) citizen_id: String,
    pub(super) sex: Sex,
    pub(super) birth_year: u16,
    pub(super) age: u32,
}

impl Generator {
    /// A new job seeker and everything their registration sets in motion.
    pub(super) fn new_seeker(&mut self) {
        let category = *self.rng.weighted(&CATEGORIES);
        let person = self.person(category);
        self.emit_seeker(&person, category);
        self.registration_services(&person.citizen_id, entitled(category));
        match category {
            SeekerCategory::LaidOff => self.laid_off(&person),
            SeekerCategory::FormerlyEmployed
            | SeekerCategory::NewYouth
            | SeekerCategory::NewGraduate
            | SeekerCategory::OtherUnemployed => self.unemployed(&person, category),
            _ => self.maybe_placed(&person.citizen_id, 0.1, 6, 0.5),
        }
    }

    /// Someone the city never registered asks about policy (an unrelated person record).
    pub(super) fn walk_in(&mut self) {
        let person = self.person(SeekerCategory::Employed);
        self.policy_consultation(&person.citizen_id);
    }

    /// A person of a plausible age for `category`, with a valid citizen ID.
    fn person(&mut self, category: SeekerCategory) -> Person {
        let (lo, hi) = age_range(category);
        let age = self.rng.between(lo, hi);
        let year = u32::try_from(self.today.year())
            .unwrap_or(1999)
            .saturating_sub(age);
        let sex = if self.rng.chance(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        let sequence = self.rng.between(0, 499) * 2 + u32::from(sex == Sex::Male);
        let (month, day) = (self.rng.between(1, 12), self.rng.between(1, 28));
        let address = self.address_code(category);
        let first17 = format!("{address}{year:04}{month:02}{day:02}{sequence:03}");
        let check = check_char(first17.as_bytes());
        Person {
            citizen_id: format!("{first17}{check}"),
            sex,
            birth_year: u16::try_from(year).unwrap_or(1970),
            age,
        }
    }

    /// A household-registration address: the city's own divisions, or elsewhere in the
    /// province for non-local people.
    fn address_code(&mut self, category: SeekerCategory) -> String {
        if category == SeekerCategory::NonLocal {
            let (prefecture, county) = (self.rng.between(1, 20), self.rng.between(1, 30));
            return format!("{:02}{prefecture:02}{county:02}", self.city.province);
        }
        self.rng.one(&self.city.divisions).clone()
    }

    fn emit_seeker(&mut self, person: &Person, category: SeekerCategory) {
        let seeker = JobSeeker {
            pid: Pid([0; 16]),
            pid_epoch: 0,
            sex: person.sex,
            birth_year: person.birth_year,
            residence_division: self.rng.one(&self.city.divisions).clone(),
            hukou_class: self.hukou(category),
            education: Some(self.rng.weighted(&codes::EDUCATION).to_string()),
            desired_occupations: self.desired_occupations(),
            desired_wage_min: self.rng.chance(0.7).then(|| self.rng.between(6, 20) * 50),
            category,
            registered_on: self.today,
            valid_until: self.soon(90, 180),
            hardship: self.hardship(person.age),
            consent_publish_profile: self.rng.chance(0.7),
            skill_level: self
                .rng
                .chance(0.35)
                .then(|| *self.rng.weighted(&codes::SKILL_LEVELS)),
            tech_title: self
                .rng
                .chance(0.1)
                .then(|| *self.rng.weighted(&codes::TECH_TITLES)),
        };
        let mut pending = Pending::of(&person.citizen_id, RecordData::JobSeeker(seeker));
        pending.extra = vec![
            ("name", self.person_name().into()),
            ("phone", self.phone().into()),
        ];
        self.emit(pending);
    }

    fn hukou(&mut self, category: SeekerCategory) -> HukouClass {
        match category {
            SeekerCategory::NonLocal => HukouClass::NonLocal,
            SeekerCategory::LocalRural => HukouClass::LocalRural,
            _ if self.rng.chance(0.05) => HukouClass::LocalRural,
            _ => HukouClass::LocalUrban,
        }
    }

    /// One to three wanted occupations; 8.9% have no preference (无要求).
    fn desired_occupations(&mut self) -> Vec<String> {
        if self.rng.chance(0.089) {
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::new();
        for _ in 0..self.rng.between(1, 3) {
            let code = self.occupations.supply(&mut self.rng).to_string();
            if !out.contains(&code) {
                out.push(code);
            }
        }
        out
    }

    fn hardship(&mut self, age: u32) -> Option<Hardship> {
        if !self.rng.chance(0.06) {
            return None;
        }
        let basis = if age >= 40 && self.rng.chance(0.5) {
            HardshipBasis::Older
        } else {
            *self.rng.weighted(&[
                (HardshipBasis::LongTermUnemployed, 40),
                (HardshipBasis::ZeroEmploymentFamily, 25),
                (HardshipBasis::Disability, 20),
                (HardshipBasis::Other, 15),
            ])
        };
        let since = self.today - chrono::Days::new(u64::from(self.rng.between(0, 365)));
        Some(Hardship { basis, since })
    }

    fn person_name(&mut self) -> String {
        format!(
            "{}{}{}",
            self.rng.one(&SURNAMES),
            self.rng.one(&GIVEN),
            self.rng.one(&GIVEN)
        )
    }

    fn phone(&mut self) -> String {
        format!(
            "{}{:03}{:04}",
            self.rng.between(2, 8),
            self.rng.between(0, 999),
            self.rng.between(0, 9999)
        )
    }

    /// A laid-off worker: some enter a re-employment service centre, some bring an
    /// earlier episode, the rest only register.
    fn laid_off(&mut self, person: &Person) {
        if !self.offices.rscs.is_empty() && self.rng.chance(RSC_ENTRY) {
            return self.rsc_entrant(person);
        }
        if self.rng.chance(0.5) {
            let employer = self.rng.one(&self.employers).id.clone();
            let laid_off_on = self.today - chrono::Days::new(u64::from(self.rng.between(30, 700)));
            let episode = episode(employer, laid_off_on);
            self.emit(Pending::of(
                &person.citizen_id,
                RecordData::LaidOffEpisode(episode),
            ));
        }
        self.maybe_placed(&person.citizen_id, 0.06, 12, 0.4);
    }

    /// Entry into a centre today; services follow, and the stay ends with a placement or
    /// when the three-year agreement runs out.
    fn rsc_entrant(&mut self, person: &Person) {
        let (rsc, employer) = self.rng.one(&self.offices.rscs).clone();
        let laid_off_on = self.today - chrono::Days::new(u64::from(self.rng.between(0, 60)));
        let mut episode = LaidOffEpisode {
            rsc_entry_on: Some(self.today),
            rsc_office_id: Some(rsc.clone()),
            agreement_signed: self.rng.chance(0.95),
            living_allowance_fen: Some(i64::from(self.rng.between(150, 280)) * 100),
            ..episode(employer, laid_off_on)
        };
        let cid = person.citizen_id.clone();
        let id = self.emit(Pending::of(
            &cid,
            RecordData::LaidOffEpisode(episode.clone()),
        ));
        self.fund.rsc_stock += 1;
        let job = self
            .months_until(self.city.profile.rsc_hazard, 36)
            .map(|m| self.after_months(m));
        self.rsc_services(&cid, &rsc, job);
        let (exit_on, reason) = match job {
            Some(on) => {
                self.schedule_placement(&cid, on, self.city.profile.pes_share);
                (on, RscExitReason::Reemployed)
            }
            None if person.age >= 50 && self.rng.chance(0.3) => {
                (self.in_days(1095), RscExitReason::Retired)
            }
            None => (self.in_days(1095), RscExitReason::AgreementExpired),
        };
        episode.rsc_exit_on = Some(exit_on);
        episode.exit_reason = Some(reason);
        let closed = Pending {
            id: Some(id),
            status: Some(Status::Closed),
            ..Pending::of(&cid, RecordData::LaidOffEpisode(episode))
        };
        self.schedule_emit(exit_on, closed);
    }

    /// An unemployment registration, a benefit claim when eligible, and its end.
    fn unemployed(&mut self, person: &Person, category: SeekerCategory) {
        let eligible = category == SeekerCategory::FormerlyEmployed && self.rng.chance(0.85);
        let mut registration = UnemploymentRegistration {
            pid: Pid([0; 16]),
            pid_epoch: PidEpoch::default(),
            registered_on: self.today,
            category: unemployment_category(category),
            ui_eligible: eligible,
            ended_on: None,
            end_reason: None,
        };
        let cid = person.citizen_id.clone();
        let id = self.emit(Pending::of(
            &cid,
            RecordData::UnemploymentRegistration(registration.clone()),
        ));
        let job = self
            .months_until(UNEMPLOYED_HAZARD, 24)
            .map(|m| self.after_months(m));
        let end = match job {
            Some(on) => {
                self.schedule_placement(&cid, on, 0.45);
                Some((on, UnemploymentEnd::Employed))
            }
            None if self.rng.chance(0.3) => Some((self.soon(200, 700), UnemploymentEnd::MovedAway)),
            None => None,
        };
        if eligible {
            self.open_claim(&cid, end.map(|(on, _)| on));
        }
        if let Some((on, reason)) = end {
            registration.ended_on = Some(on);
            registration.end_reason = Some(reason);
            let data = RecordData::UnemploymentRegistration(registration);
            let closed = Pending {
                id: Some(id),
                status: Some(Status::Closed),
                ..Pending::of(&cid, data)
            };
            self.schedule_emit(on, closed);
        }
    }

    /// With a monthly `hazard` over `months`, a placement.
    fn maybe_placed(&mut self, person: &str, hazard: f64, months: u32, pes_share: f64) {
        if let Some(m) = self.months_until(hazard, months) {
            let on = self.after_months(m);
            self.schedule_placement(person, on, pes_share);
        }
    }

    /// Whole months until an event with a monthly `hazard`, if within `max` months.
    fn months_until(&mut self, hazard: f64, max: u32) -> Option<u32> {
        (0..max).find(|_| self.rng.chance(hazard))
    }

    /// A day within the `months`-th month from today.
    fn after_months(&mut self, months: u32) -> NaiveDate {
        plus_days(self.today, months * 30 + self.rng.between(1, 30))
    }
}

/// A laid-off episode without a centre stay.
fn episode(employer_id: String, laid_off_on: NaiveDate) -> LaidOffEpisode {
    LaidOffEpisode {
        pid: Pid([0; 16]),
        pid_epoch: PidEpoch::default(),
        employer_id,
        laid_off_on,
        rsc_entry_on: None,
        rsc_office_id: None,
        agreement_signed: false,
        living_allowance_fen: None,
        rsc_exit_on: None,
        exit_reason: None,
    }
}

/// Laid-off and unemployed people are entitled to free services (2000 规定).
fn entitled(category: SeekerCategory) -> bool {
    matches!(
        category,
        SeekerCategory::LaidOff
            | SeekerCategory::FormerlyEmployed
            | SeekerCategory::NewYouth
            | SeekerCategory::NewGraduate
            | SeekerCategory::OtherUnemployed
    )
}

fn unemployment_category(category: SeekerCategory) -> UnemploymentCategory {
    match category {
        SeekerCategory::NewYouth | SeekerCategory::NewGraduate => UnemploymentCategory::NewYouth,
        SeekerCategory::FormerlyEmployed => UnemploymentCategory::FormerlyEmployed,
        _ => UnemploymentCategory::Other,
    }
}

fn age_range(category: SeekerCategory) -> (u32, u32) {
    match category {
        SeekerCategory::NewYouth => (16, 24),
        SeekerCategory::NewGraduate => (21, 24),
        SeekerCategory::Student => (17, 23),
        SeekerCategory::LaidOff => (28, 52),
        SeekerCategory::Retired => (50, 62),
        SeekerCategory::NonLocal => (18, 40),
        SeekerCategory::Employed => (20, 45),
        _ => (18, 50),
    }
}

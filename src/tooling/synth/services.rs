//! Service events (`docs/reference/records.md`) and training enrolments.
//!
//! Every registered seeker gets a registration event and usually job information; every
//! re-employment centre entrant gets the notice's standard services from the city's
//! compliance profile (§6.4): career guidance 1 + Poisson(0.3), job-information
//! provisions NegBin(mean 4) naming recent vacancies, and a free or partly free training
//! offer, each missed entirely with the city's miss probability, plus tracking contacts.

use chrono::NaiveDate;

use super::dist::Draw;
use super::{Generator, Pending, plus_days};
use crate::core::model::kinds::{
    Fee, RecordData, ServiceEvent, ServiceMode, ServiceOutcome, ServiceType, TrainingEnrolment,
};
use crate::core::model::values::{Pid, PidEpoch};

impl Generator {
    /// Registration today, then job information, guidance or policy advice.
    pub(super) fn registration_services(&mut self, person: &str, entitled: bool) {
        let office = self.service_office();
        let mut event = self.service(
            office.clone(),
            self.today,
            ServiceType::Registration,
            ServiceMode::InPerson,
        );
        event.fee = self.fee(entitled);
        self.schedule_emit(
            self.today,
            Pending::of(person, RecordData::ServiceEvent(event)),
        );
        if self.rng.chance(0.7) {
            let on = self.soon(0, 14);
            let mode = *self.rng.weighted(&[
                (ServiceMode::Screen, 40),
                (ServiceMode::InPerson, 40),
                (ServiceMode::Group, 20),
            ]);
            self.job_info(person, office.clone(), on, mode, entitled);
        }
        if self.rng.chance(0.1) {
            let on = self.soon(0, 30);
            self.simple_service(
                person,
                office.clone(),
                on,
                ServiceType::CareerGuidance,
                entitled,
            );
        }
        if self.rng.chance(0.1) {
            let on = self.soon(0, 30);
            self.simple_service(
                person,
                office,
                on,
                ServiceType::PolicyConsultation,
                entitled,
            );
        }
    }

    /// A policy consultation today for someone not registered here.
    pub(super) fn policy_consultation(&mut self, person: &str) {
        let office = self.service_office();
        self.simple_service(
            person,
            office,
            self.today,
            ServiceType::PolicyConsultation,
            true,
        );
    }

    /// The standard services of a centre entrant; guidance, information and training
    /// offers after the person has left (`exit`) are not delivered.
    pub(super) fn rsc_services(&mut self, person: &str, rsc: &str, exit: Option<NaiveDate>) {
        let before_exit = |d: NaiveDate| exit.is_none_or(|x| d < x);
        let profile = self.city.profile.clone();
        if !self.rng.chance(profile.miss_guidance) {
            for _ in 0..1 + self.rng.poisson(0.3) {
                let on = self.soon(0, 20);
                if before_exit(on) {
                    self.simple_service(
                        person,
                        rsc.to_string(),
                        on,
                        ServiceType::CareerGuidance,
                        true,
                    );
                }
            }
        }
        if !self.rng.chance(profile.miss_info) {
            for _ in 0..self.rng.negbin(4.0) {
                let on = self.soon(0, 45);
                if before_exit(on) {
                    self.job_info(person, rsc.to_string(), on, ServiceMode::InPerson, true);
                }
            }
        }
        let offer_on = self.soon(3, 45);
        if !self.rng.chance(profile.miss_training) && before_exit(offer_on) {
            self.training_offer(person, rsc, offer_on);
        }
        for _ in 0..self.rng.poisson(1.5) {
            let on = self.soon(30, 300);
            self.simple_service(
                person,
                rsc.to_string(),
                on,
                ServiceType::TrackingContact,
                true,
            );
        }
    }

    fn job_info(
        &mut self,
        person: &str,
        office: String,
        on: NaiveDate,
        mode: ServiceMode,
        entitled: bool,
    ) {
        let count = self.rng.between(1, 5);
        let mut event = self.service(office, on, ServiceType::JobInfoProvision, mode);
        event.vacancy_refs = self.vacancies.ids(&mut self.rng, count);
        event.fee = self.fee(entitled);
        self.schedule_emit(on, Pending::of(person, RecordData::ServiceEvent(event)));
    }

    fn simple_service(
        &mut self,
        person: &str,
        office: String,
        on: NaiveDate,
        kind: ServiceType,
        entitled: bool,
    ) {
        let mode = match kind {
            ServiceType::TrackingContact => ServiceMode::Phone,
            _ if self.rng.chance(0.2) => ServiceMode::Group,
            _ => ServiceMode::InPerson,
        };
        let mut event = self.service(office, on, kind, mode);
        event.fee = self.fee(entitled);
        self.schedule_emit(on, Pending::of(person, RecordData::ServiceEvent(event)));
    }

    /// A free or partly free course offer; about half lead to an enrolment.
    fn training_offer(&mut self, person: &str, rsc: &str, on: NaiveDate) {
        let Some(course) = self.course_for(on) else {
            return;
        };
        let outcome = *self.rng.weighted(&[
            (ServiceOutcome::Enrolled, 50),
            (ServiceOutcome::Declined, 40),
            (ServiceOutcome::NoShow, 10),
        ]);
        let mut event = self.service(
            rsc.to_string(),
            on,
            ServiceType::TrainingOffer,
            ServiceMode::InPerson,
        );
        event.course_ref = Some(course.id.clone());
        event.fee = if course.fee == Fee::Free {
            Fee::Free
        } else {
            Fee::PartlyFree
        };
        event.outcome = Some(outcome);
        self.schedule_emit(on, Pending::of(person, RecordData::ServiceEvent(event)));
        if outcome == ServiceOutcome::Enrolled {
            self.enrol(person, &course.id, on, course.end_on);
        }
    }

    /// A recent course starting on or after `on`, else the latest one.
    fn course_for(&mut self, on: NaiveDate) -> Option<super::setup::CourseRef> {
        let upcoming: Vec<_> = self
            .courses
            .iter()
            .filter(|c| c.start_on >= on)
            .cloned()
            .collect();
        if upcoming.is_empty() {
            return self.courses.last().cloned();
        }
        Some(self.rng.one(&upcoming).clone())
    }

    /// An enrolment soon after the offer, and its completion as a new version.
    fn enrol(&mut self, person: &str, course: &str, offered_on: NaiveDate, course_end: NaiveDate) {
        let enrolled_on = plus_days(offered_on, self.rng.between(1, 10));
        let mut enrolment = TrainingEnrolment {
            course_id: course.to_string(),
            pid: Pid([0; 16]),
            pid_epoch: PidEpoch::default(),
            offered_on: Some(offered_on),
            enrolled_on,
            completed_on: None,
            certified: false,
        };
        let id = self.new_id(crate::core::model::Kind::TrainingEnrolment);
        let first = Pending {
            id: Some(id.clone()),
            ..Pending::of(person, RecordData::TrainingEnrolment(enrolment.clone()))
        };
        self.schedule_emit(enrolled_on, first);
        self.fund.enrolments += 1;
        if self.rng.chance(0.85) {
            let done = course_end.max(plus_days(enrolled_on, 20));
            enrolment.completed_on = Some(done);
            enrolment.certified = self.rng.chance(0.75);
            let data = RecordData::TrainingEnrolment(enrolment);
            self.schedule_emit(
                done,
                Pending {
                    id: Some(id),
                    ..Pending::of(person, data)
                },
            );
        }
    }

    /// A station, district centre or the city centre.
    pub(super) fn service_office(&mut self) -> String {
        if !self.offices.stations.is_empty() && self.rng.chance(0.5) {
            return self.rng.one(&self.offices.stations).clone();
        }
        if !self.offices.districts.is_empty() && self.rng.chance(0.7) {
            return self.rng.one(&self.offices.districts).0.clone();
        }
        self.offices.city_centre.clone()
    }

    /// A free service event of `kind`.
    pub(super) fn service(
        &mut self,
        office: String,
        on: NaiveDate,
        kind: ServiceType,
        mode: ServiceMode,
    ) -> ServiceEvent {
        ServiceEvent {
            pid: Pid([0; 16]),
            pid_epoch: PidEpoch::default(),
            office_id: office,
            occurred_on: on,
            event_type: kind,
            vacancy_refs: Vec::new(),
            course_ref: None,
            fee: Fee::Free,
            mode,
            outcome: None,
        }
    }

    /// Free or partly free for the laid-off and unemployed; others sometimes pay.
    fn fee(&mut self, entitled: bool) -> Fee {
        if entitled {
            if self.rng.chance(0.9) {
                Fee::Free
            } else {
                Fee::PartlyFree
            }
        } else if self.rng.chance(0.3) {
            Fee::Paid
        } else {
            Fee::Free
        }
    }
}

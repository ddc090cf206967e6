//! Services delivered to persons and the placements that came of them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::MAX_LIST;
use crate::core::model::validate::{Check, Checker};
use crate::core::model::values::{Pid, PidEpoch};

/// Type of a service event.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceType {
    CareerGuidance,
    JobInfoProvision,
    Referral,
    TrainingOffer,
    TrackingContact,
    PolicyConsultation,
    Registration,
}

/// Fee class of a service or course.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fee {
    Free,
    PartlyFree,
    Paid,
}

/// How a service was delivered.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceMode {
    InPerson,
    Group,
    Phone,
    Screen,
    Online,
}

/// What came of a service.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceOutcome {
    AcceptedReferral,
    Declined,
    Enrolled,
    NoShow,
    Other,
}

/// A service delivered to a person (服务记录).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEvent {
    /// The person served.
    pub pid: Pid,
    /// Key epoch of the pid (1 when absent: records stored before epochs were stamped).
    #[serde(default)]
    pub pid_epoch: PidEpoch,
    /// The office that served.
    pub office_id: String,
    /// Date of the service.
    pub occurred_on: NaiveDate,
    /// What was delivered.
    pub event_type: ServiceType,
    /// Vacancies offered (job-information provisions, referrals).
    #[serde(default)]
    pub vacancy_refs: Vec<String>,
    /// Course offered (training offers).
    #[serde(default)]
    pub course_ref: Option<String>,
    /// Fee class.
    pub fee: Fee,
    /// Delivery mode.
    pub mode: ServiceMode,
    /// Outcome.
    #[serde(default)]
    pub outcome: Option<ServiceOutcome>,
}

impl ServiceEvent {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.reference("office_id", &self.office_id)?;
        cx.ensure(self.vacancy_refs.len() <= MAX_LIST, "vacancy_refs", || {
            format!("at most {MAX_LIST} vacancies")
        })?;
        for (i, v) in self.vacancy_refs.iter().enumerate() {
            cx.reference(&format!("vacancy_refs[{i}]"), v)?;
        }
        if let Some(c) = &self.course_ref {
            cx.reference("course_ref", c)?;
        }
        Ok(())
    }
}

/// How a placement came about.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlacementRoute {
    PesReferral,
    SelfFound,
    SelfEmployed,
    PublicWelfareJob,
    Other,
}

/// The administrative evidence of a placement.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlacementEvidence {
    EmploymentRegistration,
    HiringFiling,
}

/// A person's placement into work (就业/安置).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The person.
    pub pid: Pid,
    /// Key epoch of the pid (1 when absent: records stored before epochs were stamped).
    #[serde(default)]
    pub pid_epoch: PidEpoch,
    /// The employer (absent for self-employment).
    #[serde(default)]
    pub employer_id: Option<String>,
    /// The vacancy, when the placement came through a referral.
    #[serde(default)]
    pub vacancy_id: Option<String>,
    /// First day of work.
    pub start_on: NaiveDate,
    /// Occupation (CN-OCC).
    pub occupation: String,
    /// Contract length in months.
    #[serde(default)]
    pub contract_term_months: Option<u16>,
    /// How the job was found.
    pub route: PlacementRoute,
    /// Evidence.
    pub evidence: PlacementEvidence,
    /// Last day of work.
    #[serde(default)]
    pub ended_on: Option<NaiveDate>,
}

impl Placement {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.occupation("occupation", &self.occupation)?;
        if let Some(e) = &self.employer_id {
            cx.reference("employer_id", e)?;
        }
        if let Some(v) = &self.vacancy_id {
            cx.reference("vacancy_id", v)?;
        }
        cx.ensure(
            self.route != PlacementRoute::PesReferral || self.vacancy_id.is_some(),
            "vacancy_id",
            || "a pes_referral placement names its vacancy".into(),
        )?;
        cx.date_order("ended_on", self.start_on, self.ended_on)
    }
}

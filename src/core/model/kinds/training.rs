//! Training courses and enrolments.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::Fee;
use super::MAX_TEXT;
use crate::core::model::validate::{Check, Checker};
use crate::core::model::values::{Pid, PidEpoch};

/// Course level.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CourseLevel {
    Entry,
    Initial,
    Intermediate,
    Advanced,
}

/// Who pays for a course.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Funding {
    UiFund,
    Fiscal,
    Employer,
    Participant,
    Mixed,
}

/// A training course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingCourse {
    /// Provider office.
    pub provider_office_id: String,
    /// Title.
    pub title: String,
    /// Target occupation (CN-OCC).
    pub occupation: String,
    /// Level.
    pub level: CourseLevel,
    /// First day.
    pub start_on: NaiveDate,
    /// Last day.
    pub end_on: NaiveDate,
    /// Seats.
    pub seats: u32,
    /// Fee class.
    pub fee: Fee,
    /// Funding source.
    pub funding: Funding,
    /// Certificate awarded.
    #[serde(default)]
    pub certificate: Option<String>,
}

impl TrainingCourse {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.reference("provider_office_id", &self.provider_office_id)?;
        cx.text("title", &self.title, MAX_TEXT)?;
        cx.occupation("occupation", &self.occupation)?;
        cx.date_order("end_on", self.start_on, Some(self.end_on))?;
        cx.ensure((1..=1000).contains(&self.seats), "seats", || {
            format!("must be 1 to 1000, got {}", self.seats)
        })
    }
}

/// A person's enrolment in a course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingEnrolment {
    /// The course.
    pub course_id: String,
    /// The person.
    pub pid: Pid,
    /// Key epoch of the pid (1 when absent: records stored before epochs were stamped).
    #[serde(default)]
    pub pid_epoch: PidEpoch,
    /// When the place was offered (links to the training-offer service event).
    #[serde(default)]
    pub offered_on: Option<NaiveDate>,
    /// Enrolment date.
    pub enrolled_on: NaiveDate,
    /// Completion date.
    #[serde(default)]
    pub completed_on: Option<NaiveDate>,
    /// Certificate obtained.
    #[serde(default)]
    pub certified: bool,
}

impl TrainingEnrolment {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.reference("course_id", &self.course_id)?;
        if let Some(offered) = self.offered_on {
            cx.date_order("enrolled_on", offered, Some(self.enrolled_on))?;
        }
        cx.date_order("completed_on", self.enrolled_on, self.completed_on)?;
        cx.ensure(
            !self.certified || self.completed_on.is_some(),
            "certified",
            || "certification needs a completion date".into(),
        )
    }
}

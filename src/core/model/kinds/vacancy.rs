//! Vacancy reports (空岗报告), the core upward record.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::MAX_TEXT;
use super::{ChannelType, SkillLevel};
use crate::core::model::validate::{Check, Checker};

/// How the employer reported the vacancy.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportChannel {
    OnSite,
    Phone,
    Fax,
    Letter,
    Online,
}

/// Contract term; "one year or more" includes exactly twelve months (以上包括本数).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractTerm {
    #[serde(rename = "up_to_1_year")]
    UpTo1Year,
    OneYearOrMore,
    OpenEnded,
}

/// Employment type.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmploymentType {
    FullTime,
    PartTime,
    Temporary,
    Seasonal,
    Apprentice,
}

/// Fill state of a vacancy.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillState {
    Open,
    PartlyFilled,
    Filled,
    Withdrawn,
    Expired,
}

/// A vacancy report (空岗报告): the core upward record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vacancy {
    /// Office that received the report.
    pub receiving_office_id: String,
    /// Reporting employer.
    pub employer_id: String,
    /// Date of the report.
    pub reported_on: NaiveDate,
    /// How it was reported.
    pub report_channel: ReportChannel,
    /// Job title.
    pub title: String,
    /// Occupation (CN-OCC).
    pub occupation: String,
    /// Industry (CN-IND), a snapshot of the employer's.
    pub industry: String,
    /// Number of people wanted (需求人数).
    pub headcount: u32,
    /// Contract term class.
    pub contract_term: ContractTerm,
    /// Contract length in months, when fixed.
    #[serde(default)]
    pub term_months: Option<u16>,
    /// Employment type.
    pub employment_type: EmploymentType,
    /// Monthly wage range, yuan.
    #[serde(default)]
    pub wage_min: Option<u32>,
    /// Monthly wage range, yuan.
    #[serde(default)]
    pub wage_max: Option<u32>,
    /// Minimum education (CN-EDU code).
    #[serde(default)]
    pub education_min: Option<String>,
    /// Years of experience asked for.
    #[serde(default)]
    pub experience_years: Option<u8>,
    /// Where the work is (CN-DIV, inside the owner's area).
    pub work_location: String,
    /// First day the vacancy is valid.
    pub valid_from: NaiveDate,
    /// Last day the vacancy is valid.
    pub valid_until: NaiveDate,
    /// The employer allows public release.
    pub publish_allowed: bool,
    /// When it was published online (上网) — the numerator of the online rate.
    #[serde(default)]
    pub published_online_on: Option<NaiveDate>,
    /// Channels it was released on.
    #[serde(default)]
    pub published_channels: Vec<ChannelType>,
    /// Fill state.
    pub fill_state: FillState,
    /// People placed so far.
    #[serde(default)]
    pub filled_count: u32,
    /// Lowest vocational skill level asked for (职业资格等级); absent: none asked.
    #[serde(default)]
    pub skill_level_min: Option<SkillLevel>,
    /// Sex asked for, as the forms of the time carried it. Sensitive: never public.
    #[serde(default)]
    pub sex_requirement: Option<SexRequirement>,
    /// Youngest age asked for. Sensitive: never public.
    #[serde(default)]
    pub age_min: Option<u8>,
    /// Oldest age asked for. Sensitive: never public.
    #[serde(default)]
    pub age_max: Option<u8>,
}

/// A vacancy's sex requirement (性别要求), a field of the forms of the time.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SexRequirement {
    Male,
    Female,
    Any,
}

impl Vacancy {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.reference("receiving_office_id", &self.receiving_office_id)?;
        cx.reference("employer_id", &self.employer_id)?;
        cx.text("title", &self.title, MAX_TEXT)?;
        cx.occupation("occupation", &self.occupation)?;
        cx.industry("industry", &self.industry)?;
        cx.division_in_owner("work_location", &self.work_location)?;
        cx.ensure((1..=10_000).contains(&self.headcount), "headcount", || {
            format!("must be 1 to 10000, got {}", self.headcount)
        })?;
        self.validate_term(cx)?;
        if let (Some(lo), Some(hi)) = (self.wage_min, self.wage_max) {
            cx.ensure(lo <= hi, "wage_max", || {
                format!("{hi} is below wage_min {lo}")
            })?;
        }
        cx.date_order("valid_until", self.valid_from, Some(self.valid_until))?;
        cx.ensure(
            self.publish_allowed || self.published_online_on.is_none(),
            "published_online_on",
            || "the employer did not allow publication".into(),
        )?;
        cx.ensure(self.filled_count <= self.headcount, "filled_count", || {
            format!("{} exceeds headcount {}", self.filled_count, self.headcount)
        })?;
        self.validate_ages(cx)
    }

    fn validate_ages(&self, cx: &Checker<'_>) -> Check {
        for (field, age) in [("age_min", self.age_min), ("age_max", self.age_max)] {
            if let Some(a) = age {
                cx.ensure((16..=70).contains(&a), field, || {
                    format!("must be 16 to 70, got {a}")
                })?;
            }
        }
        if let (Some(lo), Some(hi)) = (self.age_min, self.age_max) {
            cx.ensure(lo <= hi, "age_max", || {
                format!("{hi} is below age_min {lo}")
            })?;
        }
        Ok(())
    }

    fn validate_term(&self, cx: &Checker<'_>) -> Check {
        let ok = match (self.contract_term, self.term_months) {
            (ContractTerm::UpTo1Year, Some(m)) => (1..12).contains(&m),
            (ContractTerm::OneYearOrMore, Some(m)) => (12..=600).contains(&m),
            (ContractTerm::OpenEnded, Some(_)) => false,
            (_, None) => true,
        };
        cx.ensure(ok, "term_months", || {
            format!(
                "{:?} months does not match contract_term {:?} (one year or more includes 12)",
                self.term_months.unwrap_or_default(),
                self.contract_term
            )
        })
    }
}

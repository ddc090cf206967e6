//! Persons: job seekers, laid-off episodes and unemployment registrations, all pseudonymous.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::core::model::validate::{Check, Checker};
use crate::core::model::values::{Pid, PidEpoch};

/// Sex as recorded at registration.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// Household-registration class (report table 8).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HukouClass {
    LocalUrban,
    LocalRural,
    NonLocal,
}

/// Job-seeker category (求职人员类别, report table 8).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeekerCategory {
    /// 新成长失业青年 (never worked), not a graduate.
    NewYouth,
    /// 应届高校毕业生, a subset of new youth.
    NewGraduate,
    /// 就业转失业人员.
    FormerlyEmployed,
    /// 其他失业人员.
    OtherUnemployed,
    /// 在业人员.
    Employed,
    /// 下岗职工.
    LaidOff,
    /// 退休人员.
    Retired,
    /// 在学人员.
    Student,
    /// 本市农村人员.
    LocalRural,
    /// 外埠人员.
    NonLocal,
}

/// A vocational skill level (职业资格等级), from 五级 (初级) to 一级 (高级技师), in
/// ascending order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillLevel {
    /// 初级 (五级).
    Junior,
    /// 中级 (四级).
    Intermediate,
    /// 高级 (三级).
    Senior,
    /// 技师 (二级).
    Technician,
    /// 高级技师 (一级).
    SeniorTechnician,
}

impl SkillLevel {
    /// Every level, lowest first.
    pub const ALL: [SkillLevel; 5] = [
        SkillLevel::Junior,
        SkillLevel::Intermediate,
        SkillLevel::Senior,
        SkillLevel::Technician,
        SkillLevel::SeniorTechnician,
    ];

    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SkillLevel::Junior => "junior",
            SkillLevel::Intermediate => "intermediate",
            SkillLevel::Senior => "senior",
            SkillLevel::Technician => "technician",
            SkillLevel::SeniorTechnician => "senior_technician",
        }
    }
}

/// A professional technical title (专业技术职务).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TechTitle {
    Junior,
    Intermediate,
    Senior,
}

/// Basis of a hardship flag.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HardshipBasis {
    ZeroEmploymentFamily,
    Disability,
    Older,
    LongTermUnemployed,
    Other,
}

/// A hardship flag (就业困难), sensitive personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardship {
    /// Why.
    pub basis: HardshipBasis,
    /// Since when.
    pub since: NaiveDate,
}

/// A job seeker's pseudonymous profile and registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSeeker {
    /// Keyed pseudonym of the person.
    pub pid: Pid,
    /// Key epoch of the pseudonym.
    pub pid_epoch: u16,
    /// Sex.
    pub sex: Sex,
    /// Birth year (not the date).
    pub birth_year: u16,
    /// County of residence (CN-DIV).
    pub residence_division: String,
    /// Household-registration class.
    pub hukou_class: HukouClass,
    /// Education (CN-EDU code).
    #[serde(default)]
    pub education: Option<String>,
    /// Desired occupations (CN-OCC); empty means no preference (无要求).
    #[serde(default)]
    pub desired_occupations: Vec<String>,
    /// Lowest acceptable monthly wage, yuan.
    #[serde(default)]
    pub desired_wage_min: Option<u32>,
    /// Category for the report.
    pub category: SeekerCategory,
    /// Registration date.
    pub registered_on: NaiveDate,
    /// Registration valid until.
    pub valid_until: NaiveDate,
    /// Hardship flag.
    #[serde(default)]
    pub hardship: Option<Hardship>,
    /// Consent to publish the profile.
    #[serde(default)]
    pub consent_publish_profile: bool,
    /// Vocational skill level held (职业资格等级); absent: none.
    #[serde(default)]
    pub skill_level: Option<SkillLevel>,
    /// Professional technical title held (专业技术职务); absent: none.
    #[serde(default)]
    pub tech_title: Option<TechTitle>,
}

impl JobSeeker {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.ensure(
            (1900..=2100).contains(&self.birth_year),
            "birth_year",
            || format!("implausible birth year {}", self.birth_year),
        )?;
        cx.division("residence_division", &self.residence_division)?;
        cx.ensure(
            self.desired_occupations.len() <= 8,
            "desired_occupations",
            || "at most 8 occupations".into(),
        )?;
        for (i, code) in self.desired_occupations.iter().enumerate() {
            cx.occupation(&format!("desired_occupations[{i}]"), code)?;
        }
        cx.date_order("valid_until", self.registered_on, Some(self.valid_until))
    }
}

/// Why a person left the re-employment service centre.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RscExitReason {
    Reemployed,
    AgreementExpired,
    Retired,
    Other,
}

/// A laid-off worker's episode (下岗), including the re-employment service centre stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaidOffEpisode {
    /// The person.
    pub pid: Pid,
    /// Key epoch of the pid (1 when absent: records stored before epochs were stamped).
    #[serde(default)]
    pub pid_epoch: PidEpoch,
    /// Former employer.
    pub employer_id: String,
    /// Date laid off.
    pub laid_off_on: NaiveDate,
    /// Entry into the re-employment service centre (进中心): defines the service cohort.
    #[serde(default)]
    pub rsc_entry_on: Option<NaiveDate>,
    /// The centre.
    #[serde(default)]
    pub rsc_office_id: Option<String>,
    /// Agreement signed with the centre.
    #[serde(default)]
    pub agreement_signed: bool,
    /// Monthly living allowance, fen.
    #[serde(default)]
    pub living_allowance_fen: Option<i64>,
    /// Exit from the centre.
    #[serde(default)]
    pub rsc_exit_on: Option<NaiveDate>,
    /// Why the person left.
    #[serde(default)]
    pub exit_reason: Option<RscExitReason>,
}

impl LaidOffEpisode {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.reference("employer_id", &self.employer_id)?;
        if let Some(o) = &self.rsc_office_id {
            cx.reference("rsc_office_id", o)?;
        }
        cx.ensure(
            self.rsc_entry_on.is_some() == self.rsc_office_id.is_some(),
            "rsc_office_id",
            || "rsc_entry_on and rsc_office_id go together".into(),
        )?;
        cx.date_order("rsc_entry_on", self.laid_off_on, self.rsc_entry_on)?;
        if let Some(entry) = self.rsc_entry_on {
            cx.date_order("rsc_exit_on", entry, self.rsc_exit_on)?;
        } else {
            cx.ensure(self.rsc_exit_on.is_none(), "rsc_exit_on", || {
                "an exit needs an entry (rsc_entry_on)".into()
            })?;
        }
        cx.ensure(
            self.living_allowance_fen.is_none_or(|f| f >= 0),
            "living_allowance_fen",
            || "must not be negative".into(),
        )
    }
}

/// Category of a registered unemployed person.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnemploymentCategory {
    NewYouth,
    FormerlyEmployed,
    Other,
}

/// Why an unemployment registration ended.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnemploymentEnd {
    Employed,
    MovedAway,
    Retired,
    Other,
}

/// An unemployment registration (失业登记).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnemploymentRegistration {
    /// The person.
    pub pid: Pid,
    /// Key epoch of the pid (1 when absent: records stored before epochs were stamped).
    #[serde(default)]
    pub pid_epoch: PidEpoch,
    /// Registration date.
    pub registered_on: NaiveDate,
    /// Category.
    pub category: UnemploymentCategory,
    /// Eligible for unemployment-insurance benefit.
    pub ui_eligible: bool,
    /// End date.
    #[serde(default)]
    pub ended_on: Option<NaiveDate>,
    /// End reason.
    #[serde(default)]
    pub end_reason: Option<UnemploymentEnd>,
}

impl UnemploymentRegistration {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.date_order("ended_on", self.registered_on, self.ended_on)?;
        cx.ensure(
            self.ended_on.is_some() == self.end_reason.is_some(),
            "end_reason",
            || "ended_on and end_reason go together".into(),
        )
    }
}

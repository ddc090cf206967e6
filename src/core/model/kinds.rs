//! The fields of every upward record kind (`docs/reference/records.md`) and their validation.
//!
//! Structs here are what is stored and replicated. They carry pseudonyms (`pid`), never
//! citizen IDs, names, phones or addresses: the ingest path ([`super::ingest`]) replaces or
//! drops those before a record is built. JSON uses snake_case names; unknown fields are
//! rejected so that a typo is an error rather than silently lost data.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::record::Kind;
use super::validate::{Check, Checker};
use super::values::{Pid, YearMonth};

macro_rules! record_data {
    ($($variant:ident($ty:ident)),* $(,)?) => {
        /// The typed fields of a record, one variant per [`Kind`].
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub enum RecordData {
            $(
                #[allow(missing_docs)]
                $variant($ty),
            )*
        }

        impl RecordData {
            /// The kind these fields belong to.
            pub fn kind(&self) -> Kind {
                match self {
                    $(RecordData::$variant(_) => Kind::$variant,)*
                }
            }

            /// Checks every field against the node and the standards in force.
            pub fn validate(&self, cx: &Checker<'_>) -> Check {
                match self {
                    $(RecordData::$variant(d) => d.validate(cx),)*
                }
            }

            /// Parses the `data` object of a record of `kind`.
            pub fn from_json(kind: Kind, data: serde_json::Value)
                -> Result<Self, serde_path_to_error::Error<serde_json::Error>> {
                match kind {
                    $(Kind::$variant => serde_path_to_error::deserialize(data)
                        .map(RecordData::$variant),)*
                }
            }

            /// The `data` object as JSON.
            pub fn to_json(&self) -> serde_json::Value {
                let value = match self {
                    $(RecordData::$variant(d) => serde_json::to_value(d),)*
                };
                // Our own types always serialise to JSON: they hold no maps with
                // non-string keys and no non-finite floats.
                value.unwrap_or(serde_json::Value::Null)
            }
        }
    };
}

record_data! {
    Office(Office),
    Employer(Employer),
    Vacancy(Vacancy),
    JobSeeker(JobSeeker),
    LaidOffEpisode(LaidOffEpisode),
    UnemploymentRegistration(UnemploymentRegistration),
    ServiceEvent(ServiceEvent),
    Placement(Placement),
    UiBenefitPayment(UiBenefitPayment),
    UiFundEntry(UiFundEntry),
    TrainingCourse(TrainingCourse),
    TrainingEnrolment(TrainingEnrolment),
}

const MAX_TEXT: usize = 200;
const MAX_LIST: usize = 64;

// ---------------------------------------------------------------------------------------
// Office

/// Type of an employment-service office.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfficeType {
    CityCentre,
    DistrictCentre,
    StreetStation,
    UiAgency,
    ReemploymentServiceCentre,
    TrainingCentre,
    PrivateAgency,
}

/// A public release channel (the notice's display screens, boards, terminals, internet).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    DisplayScreen,
    BulletinBoard,
    FreeQueryTerminal,
    Website,
    Phone,
}

/// A service an office offers.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfficeService {
    Registration,
    Guidance,
    JobInfo,
    Referral,
    Training,
    UiClaims,
    Tracking,
}

/// A release channel an office runs, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicChannel {
    /// Which channel.
    pub channel: ChannelType,
    /// In operation since.
    pub since: NaiveDate,
    /// Address of a website channel.
    #[serde(default)]
    pub url: Option<String>,
}

/// An employment-service office (服务机构).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Office {
    /// District or county the office is in (CN-DIV, inside the owner city).
    pub division_code: String,
    /// What the office is.
    pub office_type: OfficeType,
    /// The supervising office.
    #[serde(default)]
    pub parent_office_id: Option<String>,
    /// For a re-employment service centre: the enterprise it belongs to.
    #[serde(default)]
    pub employer_id: Option<String>,
    /// Public name.
    pub name: String,
    /// Public address.
    #[serde(default)]
    pub public_address: Option<String>,
    /// Opening date.
    pub opened_on: NaiveDate,
    /// Closing date.
    #[serde(default)]
    pub closed_on: Option<NaiveDate>,
    /// Connected to the city network.
    pub networked: bool,
    /// Connected since.
    #[serde(default)]
    pub networked_since: Option<NaiveDate>,
    /// Public release channels.
    #[serde(default)]
    pub public_channels: Vec<PublicChannel>,
    /// Services offered.
    #[serde(default)]
    pub services: Vec<OfficeService>,
    /// Number of staff.
    pub staff_count: u32,
}

impl Office {
    fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.division_in_owner("division_code", &self.division_code)?;
        cx.text("name", &self.name, MAX_TEXT)?;
        if let Some(p) = &self.parent_office_id {
            cx.reference("parent_office_id", p)?;
        }
        if let Some(e) = &self.employer_id {
            cx.reference("employer_id", e)?;
        }
        cx.date_order("closed_on", self.opened_on, self.closed_on)?;
        cx.ensure(
            self.networked || self.networked_since.is_none(),
            "networked_since",
            || "set only when networked is true".into(),
        )?;
        cx.ensure(
            self.public_channels.len() <= MAX_LIST,
            "public_channels",
            || format!("at most {MAX_LIST} channels"),
        )?;
        cx.ensure(self.staff_count <= 100_000, "staff_count", || {
            "must be at most 100000".into()
        })
    }
}

// ---------------------------------------------------------------------------------------
// Employer

/// Employer size band.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeBand {
    Micro,
    Small,
    Medium,
    Large,
}

/// An employer (用人单位). Contact persons stay in the city's own systems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Employer {
    /// 9-character organisation code (GB 11714-1997).
    #[serde(default)]
    pub org_code: Option<String>,
    /// 18-character unified social credit code (GB 32100-2015).
    #[serde(default)]
    pub uscc: Option<String>,
    /// Registered name.
    pub name: String,
    /// Registered division (CN-DIV).
    pub division_code: String,
    /// Industry (CN-IND).
    pub industry: String,
    /// Employer type (CN-EMPLOYER-TYPE).
    pub ownership_type: String,
    /// Size band.
    pub size_band: SizeBand,
    /// Pays unemployment-insurance contributions.
    pub ui_participant: bool,
}

impl Employer {
    fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.text("name", &self.name, MAX_TEXT)?;
        cx.division("division_code", &self.division_code)?;
        cx.industry("industry", &self.industry)?;
        cx.employer_type("ownership_type", &self.ownership_type)?;
        if let Some(c) = &self.org_code {
            cx.ensure(
                c.len() == 9 && c.bytes().all(|b| b.is_ascii_alphanumeric()),
                "org_code",
                || format!("organisation code must be 9 letters or digits, got {c:?}"),
            )?;
        }
        if let Some(c) = &self.uscc {
            cx.ensure(
                c.len() == 18 && c.bytes().all(|b| b.is_ascii_alphanumeric()),
                "uscc",
                || format!("unified social credit code must be 18 letters or digits, got {c:?}"),
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Vacancy

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
}

impl Vacancy {
    fn validate(&self, cx: &Checker<'_>) -> Check {
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
        })
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

// ---------------------------------------------------------------------------------------
// Persons

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
}

impl JobSeeker {
    fn validate(&self, cx: &Checker<'_>) -> Check {
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
    fn validate(&self, cx: &Checker<'_>) -> Check {
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
    fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.date_order("ended_on", self.registered_on, self.ended_on)?;
        cx.ensure(
            self.ended_on.is_some() == self.end_reason.is_some(),
            "end_reason",
            || "ended_on and end_reason go together".into(),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Services and placements

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
    fn validate(&self, cx: &Checker<'_>) -> Check {
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
    fn validate(&self, cx: &Checker<'_>) -> Check {
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

// ---------------------------------------------------------------------------------------
// Unemployment insurance

/// Expenditure heads of the 1999 Unemployment Insurance Regulations, Art. 10.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenefitType {
    UiBenefit,
    MedicalSubsidy,
    FuneralAndSurvivor,
    TrainingSubsidy,
    PlacementSubsidy,
}

/// Payment method (the bank account itself stays in the city).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Bank,
    Cash,
}

/// Benefit entitlement by contribution years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlement {
    /// Years of contributions.
    pub contribution_years: u8,
    /// Maximum months of benefit: 12, 18 or 24.
    pub max_months: u8,
    /// Months paid so far, this one included.
    pub months_used: u8,
}

/// An unemployment-insurance benefit payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiBenefitPayment {
    /// The beneficiary.
    pub pid: Pid,
    /// The claim this payment belongs to.
    pub claim_id: String,
    /// Expenditure head.
    pub benefit_type: BenefitType,
    /// Month the benefit is for.
    pub benefit_month: YearMonth,
    /// Amount, fen.
    pub amount_fen: i64,
    /// Date paid.
    pub paid_on: NaiveDate,
    /// Payment method.
    pub method: PaymentMethod,
    /// Entitlement at the time of payment.
    pub entitlement: Entitlement,
}

/// The maximum benefit months the 1999 regulations allow for a contribution record:
/// 1 to under 5 years → 12, 5 to under 10 → 18, 10 or more → 24.
pub fn max_benefit_months(contribution_years: u8) -> Option<u8> {
    match contribution_years {
        0 => None,
        1..=4 => Some(12),
        5..=9 => Some(18),
        _ => Some(24),
    }
}

impl UiBenefitPayment {
    fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.reference("claim_id", &self.claim_id)?;
        cx.ensure(self.amount_fen > 0, "amount_fen", || {
            "must be positive (corrections are new versions)".into()
        })?;
        let e = &self.entitlement;
        let allowed = max_benefit_months(e.contribution_years);
        cx.ensure(
            allowed == Some(e.max_months),
            "entitlement.max_months",
            || match allowed {
                Some(m) => format!(
                    "{} contribution years allow {m} months, not {}",
                    e.contribution_years, e.max_months
                ),
                None => "at least one contribution year is needed".into(),
            },
        )?;
        cx.ensure(
            (1..=e.max_months).contains(&e.months_used),
            "entitlement.months_used",
            || format!("must be 1 to {}, got {}", e.max_months, e.months_used),
        )
    }
}

/// Direction of a fund ledger entry.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundDirection {
    Income,
    Expenditure,
    TransferOut,
    TransferIn,
}

/// Category of a fund ledger entry (Regulations Arts 5, 6, 8, 10).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundCategory {
    EmployerContribution,
    EmployeeContribution,
    Interest,
    FiscalSubsidy,
    UiBenefit,
    MedicalSubsidy,
    FuneralAndSurvivor,
    TrainingSubsidy,
    PlacementSubsidy,
    RscLivingAllowance,
    ProvincialAdjustmentFund,
    Other,
}

impl FundCategory {
    fn fits(self, direction: FundDirection) -> bool {
        use FundCategory as C;
        match direction {
            FundDirection::Income => matches!(
                self,
                C::EmployerContribution
                    | C::EmployeeContribution
                    | C::Interest
                    | C::FiscalSubsidy
                    | C::Other
            ),
            FundDirection::Expenditure => matches!(
                self,
                C::UiBenefit
                    | C::MedicalSubsidy
                    | C::FuneralAndSurvivor
                    | C::TrainingSubsidy
                    | C::PlacementSubsidy
                    | C::RscLivingAllowance
                    | C::Other
            ),
            FundDirection::TransferOut | FundDirection::TransferIn => {
                matches!(self, C::ProvincialAdjustmentFund | C::Other)
            }
        }
    }
}

/// An unemployment-insurance fund ledger entry: append-only, corrections reverse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiFundEntry {
    /// Pooling area (CN-DIV).
    pub fund_area: String,
    /// Booking date.
    pub entry_date: NaiveDate,
    /// Accounting month.
    pub period: YearMonth,
    /// Direction.
    pub direction: FundDirection,
    /// Category.
    pub category: FundCategory,
    /// Amount, fen, positive.
    pub amount_fen: i64,
    /// Counterparty (organisation code or "aggregated").
    #[serde(default)]
    pub counterparty: Option<String>,
    /// The entry this one reverses.
    #[serde(default)]
    pub reverses: Option<String>,
    /// Hex blake3 of the previous entry, for tamper evidence.
    #[serde(default)]
    pub prev_entry_hash: Option<String>,
}

impl UiFundEntry {
    fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.division_in_owner("fund_area", &self.fund_area)?;
        cx.ensure(self.amount_fen > 0, "amount_fen", || {
            "must be positive; record a reversal to correct".into()
        })?;
        cx.ensure(self.category.fits(self.direction), "category", || {
            format!("{:?} is not a {:?} category", self.category, self.direction)
        })?;
        if let Some(r) = &self.reverses {
            cx.reference("reverses", r)?;
        }
        if let Some(h) = &self.prev_entry_hash {
            cx.ensure(
                h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                "prev_entry_hash",
                || "must be 64 hex digits".into(),
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Training

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
    fn validate(&self, cx: &Checker<'_>) -> Check {
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
    fn validate(&self, cx: &Checker<'_>) -> Check {
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

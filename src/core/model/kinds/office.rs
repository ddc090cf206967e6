//! Offices and employers: who reports and who hires.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{MAX_LIST, MAX_TEXT};
use crate::core::model::validate::{Check, Checker};

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
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
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
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
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

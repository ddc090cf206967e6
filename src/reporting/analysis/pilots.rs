//! Pilot cities: `pilot_designation` documents, and per province the active pilots, the
//! ministry-confirmed ones and M11 (pilot count in range).
//!
//! # Document body
//!
//! A province designates (or later withdraws or graduates) one of its cities:
//!
//! ```json
//! {
//!   "city": "440100",              // a city inside the province
//!   "province": "440000",          // must be the issuing province
//!   "designated_on": "1999-07-01",
//!   "batch": 1,
//!   "status": "active",            // "active", "withdrawn" or "graduated"
//!   "status_on": "2001-01-01"      // optional: when the status took effect
//!                                  //   (defaults to designated_on)
//! }
//! ```
//!
//! The ministry confirms a designation with the same body plus `"confirms": true`; it
//! confirms the designation of the same city and batch, provided its own `status` is
//! `active`. Only the ministry may confirm, and it does not designate. Unknown fields are
//! rejected.
//!
//! # Resolution
//!
//! Documents whose `status_on` is after the evaluation date are ignored. Per city the
//! province document with the latest `status_on` decides (on a tie, the later in the
//! input). M11 counts active designations, confirmed or not; [`ProvincePilots::confirmed`]
//! lists those the ministry confirmed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::metrics::{MetricValue, Unit};
use super::scope::Scope;
use super::targets::{MetricId, Target, resolve_target};
use crate::core::model::tables::PROVINCES;
use crate::core::model::{MINISTRY, NodeCode, Tier};

/// Status of a designation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PilotState {
    /// A pilot city now.
    Active,
    /// No longer a pilot, withdrawn.
    Withdrawn,
    /// No longer a pilot, having completed the pilot.
    Graduated,
}

/// A parsed `pilot_designation` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PilotDesignation {
    /// The pilot city.
    pub city: NodeCode,
    /// Its province (the issuer of a designation).
    pub province: NodeCode,
    /// Date designated.
    pub designated_on: NaiveDate,
    /// Designation batch.
    pub batch: u16,
    /// Status.
    pub status: PilotState,
    /// When the status took effect (defaults to `designated_on`).
    #[serde(default)]
    pub status_on: Option<NaiveDate>,
    /// True for the ministry's confirmation of a province's designation.
    #[serde(default)]
    pub confirms: bool,
}

impl PilotDesignation {
    /// When the status took effect.
    pub fn effective_on(&self) -> NaiveDate {
        self.status_on.unwrap_or(self.designated_on)
    }
}

/// Why a pilot document is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum PilotError {
    /// Not JSON of the documented shape (path and reason given).
    #[error("pilot designation body: {0}")]
    Body(String),
    /// `city` is not a city of `province`.
    #[error("{city} is not a city of province {province}")]
    NotInProvince {
        /// The city named.
        city: NodeCode,
        /// The province named.
        province: NodeCode,
    },
    /// The issuer may not issue this document: provinces designate their own cities,
    /// the ministry only confirms.
    #[error(
        "{issuer} may not issue this designation (provinces designate their own cities, the ministry confirms)"
    )]
    Issuer {
        /// The document's issuer.
        issuer: NodeCode,
    },
    /// `status_on` is before `designated_on`.
    #[error("status_on is before designated_on")]
    Dates,
}

/// Parses and checks a `pilot_designation` body issued by `issuer`.
pub fn parse_pilot(issuer: NodeCode, body: &str) -> Result<PilotDesignation, PilotError> {
    let de = &mut serde_json::Deserializer::from_str(body);
    let d: PilotDesignation =
        serde_path_to_error::deserialize(de).map_err(|e| PilotError::Body(e.to_string()))?;
    if d.city.tier() != Tier::City
        || d.province.tier() != Tier::Province
        || d.city.province() != Some(d.province)
    {
        return Err(PilotError::NotInProvince {
            city: d.city,
            province: d.province,
        });
    }
    let allowed = if d.confirms {
        issuer == MINISTRY
    } else {
        issuer == d.province
    };
    if !allowed {
        return Err(PilotError::Issuer { issuer });
    }
    if d.effective_on() < d.designated_on {
        return Err(PilotError::Dates);
    }
    Ok(d)
}

/// One province's pilots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProvincePilots {
    /// The province.
    pub province: NodeCode,
    /// Its name.
    pub name: &'static str,
    /// A municipality (直辖市): participation voluntary.
    pub is_municipality: bool,
    /// Active pilot cities.
    pub active: BTreeSet<NodeCode>,
    /// Of those, confirmed by the ministry.
    pub confirmed: BTreeSet<NodeCode>,
    /// Pilot-count compliance.
    pub m11: MetricValue,
}

/// Pilot cities per province and M11 per province and nationally.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PilotOverview {
    /// The date the designations were evaluated at.
    pub as_of: NaiveDate,
    /// Every province of the built-in list, pilots or not.
    pub provinces: BTreeMap<NodeCode, ProvincePilots>,
    /// M11 for the national total.
    pub national: MetricValue,
    /// Documents rejected: their position in the input and why.
    pub rejected: Vec<(usize, PilotError)>,
    /// Cities retired on `as_of`, with the date: never active pilots, whatever their
    /// designation says.
    pub retired: BTreeMap<NodeCode, NaiveDate>,
}

impl PilotOverview {
    /// When `node` was retired, if it is retired on `as_of`.
    pub fn retired_since(&self, node: NodeCode) -> Option<NaiveDate> {
        self.retired.get(&node).copied()
    }

    /// True when `city` is an active pilot.
    pub fn is_active(&self, city: NodeCode) -> bool {
        city.province()
            .and_then(|p| self.provinces.get(&p))
            .is_some_and(|p| p.active.contains(&city))
    }

    /// Every active pilot city.
    pub fn active_cities(&self) -> BTreeSet<NodeCode> {
        self.provinces
            .values()
            .flat_map(|p| p.active.iter().copied())
            .collect()
    }
}

/// The deciding province document per city, and the ministry's confirmations.
#[derive(Default)]
struct Ledger {
    current: BTreeMap<NodeCode, PilotDesignation>,
    confirmations: BTreeSet<(NodeCode, u16)>,
}

impl Ledger {
    fn add(&mut self, d: PilotDesignation) {
        if d.confirms {
            if d.status == PilotState::Active {
                self.confirmations.insert((d.city, d.batch));
            }
            return;
        }
        let newer = self
            .current
            .get(&d.city)
            .is_none_or(|c| c.effective_on() <= d.effective_on());
        if newer {
            self.current.insert(d.city, d);
        }
    }
}

/// Evaluates `docs` (`(issuer, body)` of every `pilot_designation` document) as of
/// `as_of`, judging M11 against `targets`; a city in `retired` is not an active pilot.
pub fn pilot_overview<'a>(
    docs: impl IntoIterator<Item = (NodeCode, &'a str)>,
    as_of: NaiveDate,
    targets: &[Target],
    retired: BTreeMap<NodeCode, NaiveDate>,
) -> PilotOverview {
    let mut ledger = Ledger::default();
    let mut rejected = Vec::new();
    for (i, (issuer, body)) in docs.into_iter().enumerate() {
        match parse_pilot(issuer, body) {
            Ok(d) if d.effective_on() <= as_of => ledger.add(d),
            Ok(_) => {}
            Err(e) => rejected.push((i, e)),
        }
    }
    ledger.current.retain(|city, _| !retired.contains_key(city));
    let provinces: BTreeMap<NodeCode, ProvincePilots> = PROVINCES
        .iter()
        .filter_map(|&(code, name, municipality)| {
            let p = NodeCode::new(code).ok()?;
            Some((p, province_pilots(p, name, municipality, &ledger, targets)))
        })
        .collect();
    let total: u64 = provinces.values().map(|p| p.m11.numerator).sum();
    let target = resolve_target(targets, MetricId::M11, Scope::National);
    let note = "active pilot designations nationally";
    let national = MetricValue::measured(
        MetricId::M11,
        "active_pilots",
        Unit::Count,
        (total, 1),
        target,
        note,
    );
    PilotOverview {
        as_of,
        provinces,
        national,
        rejected,
        retired,
    }
}

fn province_pilots(
    p: NodeCode,
    name: &'static str,
    is_municipality: bool,
    ledger: &Ledger,
    targets: &[Target],
) -> ProvincePilots {
    let active: BTreeSet<NodeCode> = ledger
        .current
        .values()
        .filter(|d| d.province == p && d.status == PilotState::Active)
        .map(|d| d.city)
        .collect();
    let confirmed = ledger
        .current
        .values()
        .filter(|d| active.contains(&d.city) && ledger.confirmations.contains(&(d.city, d.batch)))
        .map(|d| d.city)
        .collect();
    let n = u64::try_from(active.len()).unwrap_or(u64::MAX);
    let target = resolve_target(targets, MetricId::M11, Scope::Province(p));
    let note = if is_municipality {
        "active pilot designations (municipality: voluntary)"
    } else {
        "active pilot designations in the province"
    };
    ProvincePilots {
        province: p,
        name,
        is_municipality,
        active,
        confirmed,
        m11: MetricValue::measured(
            MetricId::M11,
            "active_pilots",
            Unit::Count,
            (n, 1),
            target,
            note,
        ),
    }
}

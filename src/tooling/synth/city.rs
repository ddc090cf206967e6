//! The synthetic city: its scale, its divisions and its per-city behaviour profile.
//!
//! Scale comes from the built-in pilot list (urban population, `docs/reference/synthetic-data.md`); the
//! profile (online-publication rate, contract-term mix, service-standard misses) is drawn
//! once per city so that some pilots pass the ministry's targets and some fail (§6.3,
//! §6.4). Real district lists are not bundled: districts are `XXXX01…` of the city code.

use rand::Rng;

use super::dist::{Draw, round_u32};
use crate::core::model::tables::PILOT_CITIES;
use crate::core::model::{CityKind, NodeCode, Tier};

/// Urban population (thousands) assumed for a city missing from the pilot list.
const DEFAULT_POPULATION: u32 = 1000;

/// A city's size, divisions and drawn behaviour.
#[derive(Debug, Clone)]
pub(super) struct City {
    /// The node code, as a six-digit string.
    pub(super) code: String,
    /// Chinese name used in office and employer names.
    pub(super) name: String,
    /// Urban population relative to one million (scales every daily rate).
    pub(super) scale: f64,
    /// District and county codes inside the city (the city itself for a county-level one).
    pub(super) divisions: Vec<String>,
    /// How many of `divisions` are urban districts (street stations live there).
    pub(super) urban: usize,
    /// The two-digit province prefix of the city's code.
    pub(super) province: u32,
    /// Drawn behaviour.
    pub(super) profile: Profile,
}

/// Per-city behaviour, drawn once (`docs/reference/synthetic-data.md`).
#[derive(Debug, Clone)]
pub(super) struct Profile {
    /// Probability that a publishable vacancy is published online.
    pub(super) online: f64,
    /// Share of vacancies with a contract of one year or more.
    pub(super) long_term: f64,
    /// Probability that an RSC entrant gets no career guidance.
    pub(super) miss_guidance: f64,
    /// Probability that an RSC entrant gets no job information.
    pub(super) miss_info: f64,
    /// Probability that an RSC entrant gets no training offer.
    pub(super) miss_training: f64,
    /// Monthly re-employment hazard of RSC entrants.
    pub(super) rsc_hazard: f64,
    /// Share of placements that come through a PES referral.
    pub(super) pes_share: f64,
}

impl City {
    /// The profile of `code`, drawing its behaviour from `rng`.
    pub(super) fn new<R: Rng>(code: NodeCode, rng: &mut R) -> City {
        let known = PILOT_CITIES.iter().find(|c| c.0 == code.get());
        let population = known.map_or(DEFAULT_POPULATION, |c| c.3);
        let kind = known.map_or_else(|| guess_kind(code), |c| c.2);
        let name = code
            .builtin_name()
            .map_or_else(|| format!("{code}市"), str::to_string);
        let divisions = divisions(code, kind, population);
        let urban = (divisions.len() * 7).div_ceil(10).max(1);
        City {
            code: code.to_string(),
            name,
            scale: f64::from(population) / 1000.0,
            divisions,
            urban,
            province: code.get() / 10_000,
            profile: Profile::draw(rng),
        }
    }

    /// A rate per day for a city of one million, scaled to this city.
    pub(super) fn daily(&self, per_million_year: f64) -> f64 {
        per_million_year * self.scale / 365.0
    }

    /// A count that grows with the city, within `lo..=hi`.
    pub(super) fn sized(&self, per_million: f64, lo: u32, hi: u32) -> u32 {
        round_u32(per_million * self.scale).clamp(lo, hi)
    }
}

impl Profile {
    fn draw<R: Rng>(rng: &mut R) -> Profile {
        // A Beta-like city rate: a centre in 0.55..0.8 plus a bell-shaped spread.
        let centre = rng.real(0.55, 0.8);
        let spread = (rng.real(0.0, 1.0) + rng.real(0.0, 1.0) + rng.real(0.0, 1.0) - 1.5) * 0.1;
        let mut misses = [
            rng.real(0.0, 0.03),
            rng.real(0.0, 0.03),
            rng.real(0.0, 0.03),
        ];
        // About one city in five misses a service standard clearly.
        if rng.chance(0.2) {
            let which = rng.index(misses.len());
            misses[which] = rng.real(0.15, 0.35);
        }
        Profile {
            online: (centre + spread).clamp(0.3, 0.95),
            long_term: rng.real(0.4, 0.7),
            miss_guidance: misses[0],
            miss_info: misses[1],
            miss_training: misses[2],
            rsc_hazard: rng.real(0.03, 0.08),
            pes_share: rng.real(0.4, 0.6),
        }
    }
}

fn guess_kind(code: NodeCode) -> CityKind {
    if code.get().is_multiple_of(100) {
        CityKind::Prefecture
    } else {
        CityKind::CountyLevel
    }
}

/// District codes `XXXX01…` (a municipality's districts are `XX01nn`); a county-level
/// city has only itself.
fn divisions(code: NodeCode, kind: CityKind, population: u32) -> Vec<String> {
    let count = match kind {
        CityKind::CountyLevel if code.tier() == Tier::City => return vec![code.to_string()],
        CityKind::AutonomousPrefecture => (population / 200).clamp(3, 8),
        _ => (population / 400).clamp(3, 12),
    };
    let base = if code.tier() == Tier::Province {
        code.get() + 100
    } else {
        code.get()
    };
    (1..=count).map(|n| format!("{:06}", base + n)).collect()
}

//! The quarterly supply/demand report (职业供求状况分析报告, `docs/reference/metrics.md`): the
//! two-pass city accumulator, the additive counts behind tables 1–9, and their
//! publication (small-cell suppression with complementary suppression, so no withheld
//! count can be worked out; text, CSV, JSON and HTML renderings).
//!
//! Counting rules:
//! - Basis `valid_in_period` (default): vacancies with `valid_from ≤ end ∧ valid_until ≥
//!   start`, seekers with `registered_on ≤ end ∧ valid_until ≥ start`. Basis
//!   `new_in_period`: only those starting in the quarter. Voided records never count.
//! - Carried over (上期结转) = started before the quarter (`valid_from` or
//!   `registered_on`); new (本期新增) = started in it. Demand is headcount (需求人数),
//!   supply is job-seeker records (求职人数).
//! - Table 2/3: the sector comes from the industry's row in GB/T 4754-1994; industry
//!   codes outside the sixteen rows count as 其他行业 (row P). Table 2 shows each
//!   sector's coded demand (P aside) and redistributes P across the three sectors in
//!   proportion to it (two decimals), as the template does, so tables 2 and 3 add up to
//!   the same total.
//! - Table 4: a vacancy's employer is looked up among the same city's employers; a
//!   missing or voided employer counts in an explicit `unknown` row.
//! - Table 5: a seeker counts once, under the major group of the **first** desired
//!   occupation; seekers with none (无要求) are allocated to the groups in proportion to
//!   demand; the unallocated counts are shown too.
//! - Tables 6/7: minor groups (`M-mm-nn`) of vacancies and of seekers' first preference;
//!   coarser codes take no part. At most ten rows, largest gap first, ties by code.
//! - Table 9: a vacancy's demand under the lowest skill level it asks (`skill_level_min`),
//!   a seeker under the level held (`skill_level`); `none` for neither.
//!
//! Everything is additive per city ([`ReportCounts::merge`]), so a province or national
//! report is the merge of its cities' counts.

mod changes;
mod edition;
mod html;
mod labels;
mod protect;
mod publish;
mod relations;
mod render;
mod tables;

#[cfg(test)]
mod attacker;
#[cfg(test)]
mod change_disclosure_tests;
#[cfg(test)]
mod changes_tests;
#[cfg(test)]
mod disclosure_tests;
#[cfg(test)]
mod edition_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::period::Period;
use super::scope::Scope;
use super::{MergeError, TwoPass, counts_for};
use crate::core::model::kinds::{JobSeeker, RecordData, SeekerCategory, SkillLevel, Vacancy};
use crate::core::model::standards::{occupation_level, occupation_major};
use crate::core::model::{NodeCode, Record};

pub use changes::{Against, Change, Comparison, Measure};
pub use edition::{Edition, MappedLevel, Mapping, PublishedMapping, mapping_line};
pub use html::{TargetStatus, render_html, render_html_with_status};
pub use labels::Label;
pub use publish::{Cell, Column, PublishedReport, PublishedRow, PublishedTable};
pub use render::{WITHHELD, csv_field, render_csv, render_json, render_text};
pub use tables::{
    CategoryRow, DemandRow, GapRow, Note, OccupationRow, OccupationTable, Overall, QuarterlyReport,
    RegionRow, SectorRow, SkillRow, TOP_N, UNKNOWN_EMPLOYER, region_key,
};

/// Which records a report counts (defined with the submitted report record, which
/// declares it).
pub use crate::core::model::kinds::CountBasis;

/// How to compute and publish a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportOptions {
    /// Which records count.
    pub count_basis: CountBasis,
    /// Published counts from 1 to this minus 1 are suppressed (0 or 1: none).
    pub suppress_below: u64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            count_basis: CountBasis::ValidInPeriod,
            suppress_below: 5,
        }
    }
}

/// Started before the quarter, and started in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// 上期结转.
    pub carried_over: u64,
    /// 本期新增.
    pub new_in_period: u64,
}

impl Split {
    /// 合计.
    pub fn total(self) -> u64 {
        self.carried_over + self.new_in_period
    }

    fn add(&mut self, carried: bool, n: u64) {
        if carried {
            self.carried_over += n;
        } else {
            self.new_in_period += n;
        }
    }

    fn merge(&mut self, o: Split) {
        self.carried_over += o.carried_over;
        self.new_in_period += o.new_in_period;
    }
}

/// The additive counts behind tables 1–9 for one scope; no per-record data. Stored as
/// they are (the store's figures): every field is plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportCounts {
    scope: Scope,
    period: Period,
    basis: CountBasis,
    cities: BTreeSet<NodeCode>,
    demand: Split,
    seekers: Split,
    demand_by_industry: BTreeMap<String, u64>,
    demand_by_employer_type: BTreeMap<String, u64>,
    demand_unknown_employer: u64,
    demand_by_major: BTreeMap<String, u64>,
    demand_by_minor: BTreeMap<String, u64>,
    seekers_by_major: BTreeMap<String, u64>,
    seekers_by_minor: BTreeMap<String, u64>,
    seekers_no_preference: u64,
    seekers_by_category: BTreeMap<SeekerCategory, u64>,
    /// Demand by the lowest skill level asked (`none`: no level asked).
    demand_by_skill: BTreeMap<String, u64>,
    /// Seekers by the skill level held (`none`: none held).
    seekers_by_skill: BTreeMap<String, u64>,
    /// Demand and seekers of the cities of each region ([`region_key`]), filled as
    /// cities are merged into a wider scope; empty for a city.
    #[serde(default)]
    by_region: BTreeMap<String, (Split, Split)>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    // Look up before inserting: allocates a key only for a code not seen before.
    match map.get_mut(key) {
        Some(v) => *v += n,
        None => {
            map.insert(key.to_string(), n);
        }
    }
}

fn merge_map<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, n) in from {
        *into.entry(k.clone()).or_default() += n;
    }
}

/// The table-9 row of a skill level, asked or held.
fn skill_key(level: Option<SkillLevel>) -> &'static str {
    level.map_or(labels::NO_SKILL_LEVEL, SkillLevel::as_str)
}

/// The minor group (`M-mm-nn`) of an occupation code at level 3 or finer.
fn minor_group(code: &str) -> Option<String> {
    (occupation_level(code) >= 3).then(|| code.split('-').take(3).collect::<Vec<_>>().join("-"))
}

impl ReportCounts {
    /// Empty counts for `scope` in `period`.
    pub fn new(scope: Scope, period: Period, basis: CountBasis) -> Self {
        ReportCounts {
            scope,
            period,
            basis,
            cities: BTreeSet::new(),
            demand: Split::default(),
            seekers: Split::default(),
            demand_by_industry: BTreeMap::new(),
            demand_by_employer_type: BTreeMap::new(),
            demand_unknown_employer: 0,
            demand_by_major: BTreeMap::new(),
            demand_by_minor: BTreeMap::new(),
            seekers_by_major: BTreeMap::new(),
            seekers_by_minor: BTreeMap::new(),
            seekers_no_preference: 0,
            seekers_by_category: BTreeMap::new(),
            demand_by_skill: BTreeMap::new(),
            seekers_by_skill: BTreeMap::new(),
            by_region: BTreeMap::new(),
        }
    }

    /// The scope counted.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// `Some(carried_over)` when a span starting `from` and ending `until` counts.
    fn counted(&self, from: chrono::NaiveDate, until: chrono::NaiveDate) -> Option<bool> {
        let p = self.period;
        let counts = match self.basis {
            CountBasis::ValidInPeriod => p.overlaps(from, Some(until)),
            CountBasis::NewInPeriod => p.contains(from),
        };
        counts.then_some(from < p.first_day())
    }

    fn add_vacancy(&mut self, v: &Vacancy, employer_type: Option<&str>) {
        let Some(carried) = self.counted(v.valid_from, v.valid_until) else {
            return;
        };
        let n = u64::from(v.headcount);
        self.demand.add(carried, n);
        bump(&mut self.demand_by_industry, &v.industry, n);
        match employer_type {
            Some(t) => bump(&mut self.demand_by_employer_type, t, n),
            None => self.demand_unknown_employer += n,
        }
        bump(
            &mut self.demand_by_major,
            occupation_major(&v.occupation),
            n,
        );
        if let Some(minor) = minor_group(&v.occupation) {
            bump(&mut self.demand_by_minor, &minor, n);
        }
        bump(&mut self.demand_by_skill, skill_key(v.skill_level_min), n);
    }

    fn add_seeker(&mut self, s: &JobSeeker) {
        let Some(carried) = self.counted(s.registered_on, s.valid_until) else {
            return;
        };
        self.seekers.add(carried, 1);
        *self.seekers_by_category.entry(s.category).or_default() += 1;
        bump(&mut self.seekers_by_skill, skill_key(s.skill_level), 1);
        match s.desired_occupations.first() {
            Some(code) => {
                bump(&mut self.seekers_by_major, occupation_major(code), 1);
                if let Some(minor) = minor_group(code) {
                    bump(&mut self.seekers_by_minor, &minor, 1);
                }
            }
            None => self.seekers_no_preference += 1,
        }
    }

    /// Adds the counts of a narrower scope (a city into its province, a province into the
    /// nation). Refuses another quarter or basis, a scope outside this one, or a city
    /// counted already.
    pub fn merge(&mut self, other: &ReportCounts) -> Result<(), MergeError> {
        if (other.period, other.basis) != (self.period, self.basis) {
            return Err(MergeError::Mismatch {
                expected: format!("{} {:?}", self.period, self.basis),
                found: format!("{} {:?}", other.period, other.basis),
            });
        }
        for &city in &other.cities {
            if !self.scope.contains(city) {
                return Err(MergeError::OutOfScope {
                    city,
                    scope: self.scope,
                });
            }
            if self.cities.contains(&city) {
                return Err(MergeError::Duplicate(city));
            }
        }
        self.merge_unchecked(other);
        Ok(())
    }

    fn merge_unchecked(&mut self, o: &ReportCounts) {
        self.cities.extend(&o.cities);
        self.demand.merge(o.demand);
        self.seekers.merge(o.seekers);
        merge_map(&mut self.demand_by_industry, &o.demand_by_industry);
        merge_map(
            &mut self.demand_by_employer_type,
            &o.demand_by_employer_type,
        );
        self.demand_unknown_employer += o.demand_unknown_employer;
        merge_map(&mut self.demand_by_major, &o.demand_by_major);
        merge_map(&mut self.demand_by_minor, &o.demand_by_minor);
        merge_map(&mut self.seekers_by_major, &o.seekers_by_major);
        merge_map(&mut self.seekers_by_minor, &o.seekers_by_minor);
        self.seekers_no_preference += o.seekers_no_preference;
        merge_map(&mut self.seekers_by_category, &o.seekers_by_category);
        merge_map(&mut self.demand_by_skill, &o.demand_by_skill);
        merge_map(&mut self.seekers_by_skill, &o.seekers_by_skill);
        if let Scope::City(city) = o.scope {
            let slot = self
                .by_region
                .entry(region_key(city).to_string())
                .or_default();
            slot.0.merge(o.demand);
            slot.1.merge(o.seekers);
        }
        for (region, (d, s)) in &o.by_region {
            let slot = self.by_region.entry(region.clone()).or_default();
            slot.0.merge(*d);
            slot.1.merge(*s);
        }
    }

    /// Tables 1–8 of the counts.
    pub fn build(&self) -> QuarterlyReport {
        tables::build(self)
    }
}

/// The report counts of one city for one quarter, fed two passes ([`TwoPass`]): employers
/// (their types) in the first, vacancies and seekers in the second.
#[derive(Debug)]
pub struct CityReport {
    city: NodeCode,
    /// Employer id → employer type code (memory grows with employers, not records).
    employers: BTreeMap<String, String>,
    counts: ReportCounts,
}

impl CityReport {
    /// An empty accumulator for `city`.
    pub fn new(city: NodeCode, period: Period, basis: CountBasis) -> Self {
        let mut counts = ReportCounts::new(Scope::City(city), period, basis);
        counts.cities.insert(city);
        CityReport {
            city,
            employers: BTreeMap::new(),
            counts,
        }
    }

    /// The city's counts, once both passes are done.
    pub fn finish(self) -> ReportCounts {
        self.counts
    }
}

impl TwoPass for CityReport {
    fn first_pass(&mut self, r: &Record) {
        if let (true, RecordData::Employer(e)) = (counts_for(r, self.city), &r.data) {
            self.employers
                .insert(r.envelope.id.clone(), e.ownership_type.clone());
        }
    }

    fn second_pass(&mut self, r: &Record) {
        if !counts_for(r, self.city) {
            return;
        }
        match &r.data {
            RecordData::Vacancy(v) => {
                let t = self.employers.get(&v.employer_id).map(String::as_str);
                self.counts.add_vacancy(v, t);
            }
            RecordData::JobSeeker(s) => self.counts.add_seeker(s),
            _ => {}
        }
    }
}

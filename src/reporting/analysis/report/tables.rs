//! [`QuarterlyReport`]: tables 1–9 computed from [`ReportCounts`], raw (unsuppressed)
//! numbers with labels. Publication (suppression, rendering) is in `publish`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Serialize, Serializer};

use super::labels::{self, Label};
use super::{CountBasis, ReportCounts, Split};
use crate::core::model::NodeCode;
use crate::core::model::standards::occupation_level;
use crate::core::model::tables::{
    EMPLOYER_TYPES, INDUSTRIES_1994, OCCUPATIONS_1999, PROVINCE_REGIONS,
};
use crate::core::model::{Region, Sector};
use crate::reporting::analysis::period::Period;
use crate::reporting::analysis::scope::Scope;

/// Rows shown in tables 6 and 7.
pub const TOP_N: usize = 10;
/// The industry row that takes codes outside the sixteen rows.
const OTHER_INDUSTRY: &str = "P";
/// The key of the unknown-employer row in table 4.
pub const UNKNOWN_EMPLOYER: &str = "unknown";

/// Table 1: demand, job seekers and their ratio (求人倍率).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overall {
    /// 需求人数.
    pub demand: Split,
    /// 求职人数.
    pub seekers: Split,
}

/// A caveat of a report, with the count it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Demand with industry codes outside GB/T 4754-1994, counted in 其他行业 (row P).
    FoldedIndustries(u64),
    /// No demand at all: this many seekers without preference are not allocated.
    Unallocated(u64),
}

impl Note {
    /// The count the note is about.
    pub fn count(&self) -> u64 {
        match *self {
            Note::FoldedIndustries(n) | Note::Unallocated(n) => n,
        }
    }

    /// The published cell (table id, row key, column key) the count is part of: the
    /// note may show the count only while that cell is shown.
    pub fn cell(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            Note::FoldedIndustries(_) => ("table_3", OTHER_INDUSTRY, "demand"),
            Note::Unallocated(_) => ("table_5", "no_preference", "seekers"),
        }
    }

    /// The note's text, with its count or without.
    pub fn text(&self, with_count: bool) -> String {
        let n = self.count();
        match (self, with_count) {
            (Note::FoldedIndustries(_), true) => format!(
                "demand of {n} with industry codes outside GB/T 4754-1994 counted as 其他行业"
            ),
            (Note::FoldedIndustries(_), false) => {
                "demand with industry codes outside GB/T 4754-1994 counted as 其他行业".into()
            }
            (Note::Unallocated(_), true) => {
                format!("no demand: {n} seekers without preference are not allocated")
            }
            (Note::Unallocated(_), false) => {
                "no demand: seekers without preference are not allocated".into()
            }
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(true))
    }
}

/// Written as its text, with the count.
impl Serialize for Note {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// demand ÷ supply, `None` without supply.
pub(crate) fn ratio(demand: f64, supply: f64) -> Option<f64> {
    (supply > 0.0).then(|| demand / supply)
}

fn share(part: u64, whole: u64) -> Option<f64> {
    ratio(part as f64, whole as f64)
}

impl QuarterlyReport {
    /// Demand in 其他行业 (table 3's row P), which table 2 redistributes.
    pub fn other_industries(&self) -> u64 {
        self.by_industry
            .iter()
            .find(|r| r.code == OTHER_INDUSTRY)
            .map_or(0, |r| r.demand)
    }
}

impl Overall {
    /// 求人倍率 of the carried-over, new and total columns.
    pub fn ratios(&self) -> [Option<f64>; 3] {
        let r = |d: u64, s: u64| share(d, s);
        [
            r(self.demand.carried_over, self.seekers.carried_over),
            r(self.demand.new_in_period, self.seekers.new_in_period),
            r(self.demand.total(), self.seekers.total()),
        ]
    }
}

/// A demand row of tables 2, 3 and 4.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemandRow {
    /// Code (sector key, industry, employer type or `unknown`).
    pub code: String,
    /// Label.
    pub label: Label,
    /// Demand (headcount).
    pub demand: u64,
    /// Share of the table's demand.
    pub share: Option<f64>,
}

/// A sector row of table 2: the demand coded to the sector's industries, and its part
/// of 其他行业 (row P of table 3), redistributed in proportion to the sectors' coded
/// demand so that tables 2 and 3 add up to the same total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectorRow {
    /// Sector key.
    pub code: String,
    /// Label.
    pub label: Label,
    /// Demand of the sector's industries (table 3's rows but P).
    pub recorded: u64,
    /// Its part of 其他行业: P × recorded ÷ all sectors' recorded (0 when none recorded).
    pub allocated: f64,
    /// recorded + allocated.
    pub demand: f64,
    /// demand ÷ total demand.
    pub share: Option<f64>,
}

/// A row of table 9: demand by the skill level vacancies ask at least, seekers by the
/// level they hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkillRow {
    /// Level key (`junior` … `senior_technician`, or `none`).
    pub code: String,
    /// Label.
    pub label: Label,
    /// Demand (headcount) asking this level at least.
    pub demand: u64,
    /// Share of demand.
    pub demand_share: Option<f64>,
    /// Seekers holding this level.
    pub seekers: u64,
    /// Share of seekers.
    pub seekers_share: Option<f64>,
    /// demand ÷ seekers.
    pub ratio: Option<f64>,
}

/// A major-group row of table 5.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OccupationRow {
    /// Major group code.
    pub code: String,
    /// Label.
    pub label: Label,
    /// Demand (headcount).
    pub demand: u64,
    /// Share of demand.
    pub demand_share: Option<f64>,
    /// Seekers whose first preference is in the group (unallocated, 实际求职).
    pub seekers: u64,
    /// Seekers without preference allocated to the group in proportion to demand.
    pub allocated: f64,
    /// demand ÷ (seekers + allocated).
    pub ratio: Option<f64>,
}

/// Table 5: supply and demand by occupation major group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OccupationTable {
    /// One row per major group.
    pub rows: Vec<OccupationRow>,
    /// Seekers without occupational preference (无要求), before allocation.
    pub no_preference: u64,
}

/// A minor-group row of tables 6 and 7.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapRow {
    /// Minor group code (`M-mm-nn`).
    pub code: String,
    /// Label.
    pub label: Label,
    /// Demand (headcount).
    pub demand: u64,
    /// Seekers (first preference).
    pub seekers: u64,
    /// |demand − seekers|.
    pub gap: u64,
    /// demand ÷ seekers.
    pub ratio: Option<f64>,
}

/// A row of table 8.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryRow {
    /// Category key (snake_case).
    pub code: String,
    /// Label.
    pub label: Label,
    /// Seekers.
    pub seekers: u64,
    /// Share of seekers.
    pub share: Option<f64>,
}

/// A row of the national report's regional table (东部/中部/西部).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionRow {
    /// `east`, `central`, `west` (or `other`: a city outside the 31 provincial units).
    pub code: String,
    /// Label.
    pub label: Label,
    /// 需求人数.
    pub demand: u64,
    /// 求职人数.
    pub seekers: u64,
    /// 求人倍率.
    pub ratio: Option<f64>,
}

/// The regions in table order, with their keys and labels.
const REGIONS: [(Region, &str, &str, &str); 3] = [
    (Region::East, "east", "东部", "East"),
    (Region::Central, "central", "中部", "Central"),
    (Region::West, "west", "西部", "West"),
];

/// The key of the region a city lies in, by the first two digits of its code
/// (`other` outside the 31 provincial units).
pub fn region_key(city: NodeCode) -> &'static str {
    let prefix = city.get() / 10_000;
    PROVINCE_REGIONS
        .iter()
        .find(|(p, _)| *p == prefix)
        .and_then(|(_, r)| REGIONS.iter().find(|(k, ..)| k == r))
        .map_or("other", |(_, key, ..)| *key)
}

/// The quarterly supply/demand report of one scope, raw numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarterlyReport {
    /// Where.
    pub scope: Scope,
    /// Human label of the scope.
    pub scope_label: String,
    /// When.
    pub period: Period,
    /// The declared counting basis.
    pub count_basis: CountBasis,
    /// Cities counted.
    pub cities: Vec<NodeCode>,
    /// Table 1.
    pub overall: Overall,
    /// Table 2: demand by sector, 其他行业 redistributed.
    pub by_sector: Vec<SectorRow>,
    /// Table 3: demand by industry (the sixteen rows).
    pub by_industry: Vec<DemandRow>,
    /// Table 4: demand by employer type, with `unknown`.
    pub by_employer_type: Vec<DemandRow>,
    /// Table 5: supply and demand by occupation major group.
    pub by_occupation: OccupationTable,
    /// Table 6: minor groups where demand exceeds supply most.
    pub shortages: Vec<GapRow>,
    /// Table 7: minor groups where supply exceeds demand most.
    pub surpluses: Vec<GapRow>,
    /// Table 8: seekers by category.
    pub by_category: Vec<CategoryRow>,
    /// Table 9: supply and demand by skill level.
    pub by_skill: Vec<SkillRow>,
    /// The regional table (national scope only; empty otherwise): 东部, 中部, 西部, and
    /// `other` when a city lies outside them.
    pub by_region: Vec<RegionRow>,
    /// Caveats (codes outside the tables, unallocated seekers …).
    pub notes: Vec<Note>,
    /// The editions in force the report was put in; `None`: codes as recorded.
    pub edition: Option<super::Edition>,
    /// Codes mapped to the edition in force (empty in a report in the recorded codes).
    pub mapped: Vec<super::Mapping>,
}

fn demand_rows(rows: impl IntoIterator<Item = (String, Label, u64)>, total: u64) -> Vec<DemandRow> {
    rows.into_iter()
        .map(|(code, label, demand)| DemandRow {
            code,
            label,
            demand,
            share: share(demand, total),
        })
        .collect()
}

/// Demand per industry row, codes outside the sixteen folded into 其他行业.
fn industries(c: &ReportCounts, notes: &mut Vec<Note>) -> BTreeMap<&'static str, u64> {
    let mut out: BTreeMap<&'static str, u64> = INDUSTRIES_1994
        .iter()
        .map(|(code, _, _)| (*code, 0))
        .collect();
    let mut folded = 0;
    for (code, n) in &c.demand_by_industry {
        match INDUSTRIES_1994.iter().find(|(k, _, _)| k == code) {
            Some((k, _, _)) => *out.entry(k).or_default() += n,
            None => {
                folded += n;
                *out.entry(OTHER_INDUSTRY).or_default() += n;
            }
        }
    }
    if folded > 0 {
        notes.push(Note::FoldedIndustries(folded));
    }
    out
}

fn industry_tables(c: &ReportCounts, notes: &mut Vec<Note>) -> (Vec<SectorRow>, Vec<DemandRow>) {
    let per_industry = industries(c, notes);
    let total = c.demand.total();
    let rows = INDUSTRIES_1994.iter().map(|(code, _, _)| {
        let n = per_industry.get(code).copied().unwrap_or(0);
        ((*code).to_string(), labels::industry(code), n)
    });
    (sector_rows(&per_industry, total), demand_rows(rows, total))
}

/// Table 2: each sector's coded demand (其他行业 aside) plus its proportional part of
/// 其他行业, so that the sectors add up to all demand as in the template.
fn sector_rows(per_industry: &BTreeMap<&'static str, u64>, total: u64) -> Vec<SectorRow> {
    let other = per_industry.get(OTHER_INDUSTRY).copied().unwrap_or(0);
    let recorded = |sector: Sector| -> u64 {
        INDUSTRIES_1994
            .iter()
            .filter(|(k, _, s)| *s == sector && *k != OTHER_INDUSTRY)
            .map(|(k, _, _)| per_industry.get(k).copied().unwrap_or(0))
            .sum()
    };
    let sectors = [Sector::Primary, Sector::Secondary, Sector::Tertiary];
    let coded: u64 = sectors.iter().map(|s| recorded(*s)).sum();
    sectors
        .into_iter()
        .map(|sector| {
            let (key, label) = labels::sector(sector);
            let recorded = recorded(sector);
            // Nothing is redistributed without coded demand to weigh it by.
            let allocated = share(recorded, coded).map_or(0.0, |s| s * other as f64);
            let demand = recorded as f64 + allocated;
            SectorRow {
                code: key.to_string(),
                label,
                recorded,
                allocated,
                demand,
                share: ratio(demand, total as f64),
            }
        })
        .collect()
}

fn employer_table(c: &ReportCounts) -> Vec<DemandRow> {
    let known: BTreeSet<&str> = EMPLOYER_TYPES.iter().map(|(k, _)| *k).collect();
    let builtin = EMPLOYER_TYPES.iter().map(|(code, _)| {
        let n = c.demand_by_employer_type.get(*code).copied().unwrap_or(0);
        ((*code).to_string(), labels::employer_type(code), n)
    });
    let extra = c
        .demand_by_employer_type
        .iter()
        .filter(|(k, _)| !known.contains(k.as_str()))
        .map(|(k, n)| (k.clone(), labels::employer_type(k), *n));
    let unknown = (
        UNKNOWN_EMPLOYER.to_string(),
        Label::new("未知", "Unknown employer"),
        c.demand_unknown_employer,
    );
    demand_rows(builtin.chain(extra).chain([unknown]), c.demand.total())
}

fn occupation_table(c: &ReportCounts, notes: &mut Vec<Note>) -> OccupationTable {
    let mut majors: BTreeSet<String> = OCCUPATIONS_1999
        .iter()
        .filter(|(k, _)| occupation_level(k) == 1)
        .map(|(k, _)| (*k).to_string())
        .collect();
    majors.extend(c.demand_by_major.keys().cloned());
    majors.extend(c.seekers_by_major.keys().cloned());
    let total = c.demand.total();
    let unallocated = c.seekers_no_preference;
    if total == 0 && unallocated > 0 {
        notes.push(Note::Unallocated(unallocated));
    }
    let rows = majors
        .into_iter()
        .map(|code| {
            let demand = c.demand_by_major.get(&code).copied().unwrap_or(0);
            let seekers = c.seekers_by_major.get(&code).copied().unwrap_or(0);
            let allocated = share(demand, total).map_or(0.0, |s| s * unallocated as f64);
            OccupationRow {
                label: labels::occupation(&code),
                code,
                demand,
                demand_share: share(demand, total),
                seekers,
                allocated,
                ratio: ratio(demand as f64, seekers as f64 + allocated),
            }
        })
        .collect();
    OccupationTable {
        rows,
        no_preference: unallocated,
    }
}

/// Tables 6 and 7: minor groups by largest gap, demand over supply and the reverse.
fn gap_tables(c: &ReportCounts) -> (Vec<GapRow>, Vec<GapRow>) {
    let minors: BTreeSet<&String> = c
        .demand_by_minor
        .keys()
        .chain(c.seekers_by_minor.keys())
        .collect();
    let rows: Vec<GapRow> = minors
        .into_iter()
        .map(|code| {
            let demand = c.demand_by_minor.get(code).copied().unwrap_or(0);
            let seekers = c.seekers_by_minor.get(code).copied().unwrap_or(0);
            GapRow {
                code: code.clone(),
                label: labels::occupation(code),
                demand,
                seekers,
                gap: demand.abs_diff(seekers),
                ratio: share(demand, seekers),
            }
        })
        .collect();
    let top = |keep: fn(&GapRow) -> bool| {
        let mut v: Vec<GapRow> = rows.iter().filter(|r| keep(r)).cloned().collect();
        v.sort_by(|a, b| b.gap.cmp(&a.gap).then_with(|| a.code.cmp(&b.code)));
        v.truncate(TOP_N);
        v
    };
    (top(|r| r.demand > r.seekers), top(|r| r.seekers > r.demand))
}

fn category_table(c: &ReportCounts) -> Vec<CategoryRow> {
    let total = c.seekers.total();
    labels::seeker_categories()
        .into_iter()
        .map(|(cat, key, label)| {
            let seekers = c.seekers_by_category.get(&cat).copied().unwrap_or(0);
            CategoryRow {
                code: key.to_string(),
                label,
                seekers,
                share: share(seekers, total),
            }
        })
        .collect()
}

/// Table 9: demand by the lowest skill level asked, seekers by the level held.
fn skill_table(c: &ReportCounts) -> Vec<SkillRow> {
    let (demand, seekers) = (c.demand.total(), c.seekers.total());
    labels::skill_levels()
        .into_iter()
        .map(|(key, label)| {
            let d = c.demand_by_skill.get(key).copied().unwrap_or(0);
            let s = c.seekers_by_skill.get(key).copied().unwrap_or(0);
            SkillRow {
                code: key.to_string(),
                label,
                demand: d,
                demand_share: share(d, demand),
                seekers: s,
                seekers_share: share(s, seekers),
                ratio: share(d, s),
            }
        })
        .collect()
}

/// The regional table of a national report (empty for any other scope).
fn region_table(c: &ReportCounts) -> Vec<RegionRow> {
    if c.scope != Scope::National {
        return Vec::new();
    }
    let row = |code: &str, label: Label| {
        let (d, s) = c.by_region.get(code).copied().unwrap_or_default();
        RegionRow {
            code: code.to_string(),
            label,
            demand: d.total(),
            seekers: s.total(),
            ratio: share(d.total(), s.total()),
        }
    };
    let mut rows: Vec<RegionRow> = REGIONS
        .iter()
        .map(|(_, key, zh, en)| row(key, Label::new(zh, en)))
        .collect();
    if c.by_region.contains_key("other") {
        rows.push(row("other", Label::new("其他", "Other")));
    }
    rows
}

/// Builds tables 1–9 (and the regional table 10 of a national report).
pub(super) fn build(c: &ReportCounts) -> QuarterlyReport {
    let mut notes = Vec::new();
    let (by_sector, by_industry) = industry_tables(c, &mut notes);
    let by_occupation = occupation_table(c, &mut notes);
    let (shortages, surpluses) = gap_tables(c);
    QuarterlyReport {
        scope: c.scope,
        scope_label: c.scope.label(),
        period: c.period,
        count_basis: c.basis,
        cities: c.cities.iter().copied().collect(),
        overall: Overall {
            demand: c.demand,
            seekers: c.seekers,
        },
        by_sector,
        by_industry,
        by_employer_type: employer_table(c),
        by_occupation,
        shortages,
        surpluses,
        by_category: category_table(c),
        by_skill: skill_table(c),
        by_region: region_table(c),
        notes,
        edition: None,
        mapped: Vec::new(),
    }
}

//! A report in the edition in force: the scope's counts with their occupation codes
//! mapped through the CN-OCC crosswalk chain and the scope's division code through the
//! CN-DIV chain, rows that map to one code merged, and the list of what was mapped.
//!
//! The counts keep major groups (table 5) and minor groups (tables 6 and 7), so entries
//! for major and minor codes take effect here; a minor group whose new code lies in
//! another major group moves its counts to that major group too (exactly: a minor
//! group's counts are the records coded in it or finer, all in its own major group).
//! Merging happens before publication, so small-cell suppression protects the merged
//! rows like any other. A mapped row's counts are published only when no small count can
//! be worked out from them (see [`publish_mapped`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::publish::{Cell, PublishedTable};
use super::{QuarterlyReport, ReportCounts};
use crate::core::model::crosswalk::{Chain, Editions, Relation};
use crate::core::model::standards::{DIVISION, OCCUPATION, occupation_level, occupation_major};
use crate::reporting::analysis::scope::Scope;

/// Which rows a mapping moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappedLevel {
    /// Occupation major groups (table 5).
    Major,
    /// Occupation minor groups (tables 6 and 7).
    Minor,
    /// A city's division code (the scope, or a city counted).
    Division,
}

/// One code mapped to the edition in force, with the counts it carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// Which rows.
    pub level: MappedLevel,
    /// The code as recorded.
    pub from: String,
    /// The code in the edition in force.
    pub to: String,
    /// How they relate.
    pub relation: Relation,
    /// Demand (headcount) moved.
    pub demand: u64,
    /// Job seekers moved.
    pub seekers: u64,
}

/// A mapping as published: its counts, or withheld.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedMapping {
    /// `CN-OCC` or `CN-DIV`.
    pub scheme: String,
    /// `major`, `minor` or `division`.
    pub level: MappedLevel,
    /// The code as recorded.
    pub from: String,
    /// The code in the edition in force.
    pub to: String,
    /// The relation, as crosswalks write it.
    pub relation: String,
    /// Demand (headcount) it carried; `null` for a division.
    pub demand: Cell,
    /// Job seekers it carried; `null` for a division.
    pub seekers: Cell,
}

/// What moved, per (recorded code, code in force): the relation and the count.
type Moved = BTreeMap<(String, String), (Relation, u64)>;

fn add(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    *map.entry(key.to_string()).or_default() += n;
}

/// Keys of `level` mapped through `chain`: the merged map, and per (from, to, relation)
/// what moved.
fn map_keys(
    chain: &Chain,
    counts: &BTreeMap<String, u64>,
    level: usize,
) -> (BTreeMap<String, u64>, Moved) {
    let mut out = BTreeMap::new();
    let mut moved = BTreeMap::new();
    for (code, &n) in counts {
        match chain.map(code).filter(|_| occupation_level(code) == level) {
            Some(t) if t.to != *code => {
                add(&mut out, &t.to, n);
                let e: &mut (Relation, u64) = moved
                    .entry((code.clone(), t.to.clone()))
                    .or_insert((t.relation, 0));
                e.1 += n;
            }
            _ => add(&mut out, code, n),
        }
    }
    (out, moved)
}

/// The major groups after minor groups moved between them and major codes were mapped.
fn map_majors(
    chain: &Chain,
    majors: &BTreeMap<String, u64>,
    minors_moved: &Moved,
) -> (BTreeMap<String, u64>, Moved) {
    let mut residual = majors.clone();
    let mut arriving: BTreeMap<String, u64> = BTreeMap::new();
    for ((from, to), (_, n)) in minors_moved {
        let (old, new) = (occupation_major(from), occupation_major(to));
        if old != new {
            if let Some(r) = residual.get_mut(old) {
                *r = r.saturating_sub(*n);
            }
            add(&mut arriving, new, *n);
        }
    }
    let (mut out, moved) = map_keys(chain, &residual, 1);
    for (code, n) in arriving {
        add(&mut out, &code, n);
    }
    out.retain(|_, n| *n > 0);
    (out, moved)
}

fn mappings(level: MappedLevel, demand: Moved, seekers: Moved) -> Vec<Mapping> {
    let mut all: BTreeMap<(String, String), Mapping> = BTreeMap::new();
    for (is_demand, moved) in [(true, demand), (false, seekers)] {
        for ((from, to), (relation, n)) in moved {
            let m = all.entry((from.clone(), to.clone())).or_insert(Mapping {
                level,
                from,
                to,
                relation,
                demand: 0,
                seekers: 0,
            });
            if is_demand {
                m.demand += n;
            } else {
                m.seekers += n;
            }
        }
    }
    all.into_values().collect()
}

impl ReportCounts {
    /// These counts with their occupation codes in the edition in force, and what moved.
    fn in_edition(&self, chain: &Chain) -> (ReportCounts, Vec<Mapping>) {
        let mut c = self.clone();
        let (demand_minor, dm) = map_keys(chain, &self.demand_by_minor, 3);
        let (seekers_minor, sm) = map_keys(chain, &self.seekers_by_minor, 3);
        let (demand_major, dj) = map_majors(chain, &self.demand_by_major, &dm);
        let (seekers_major, sj) = map_majors(chain, &self.seekers_by_major, &sm);
        c.demand_by_minor = demand_minor;
        c.seekers_by_minor = seekers_minor;
        c.demand_by_major = demand_major;
        c.seekers_by_major = seekers_major;
        let mut list = mappings(MappedLevel::Major, dj, sj);
        list.extend(mappings(MappedLevel::Minor, dm, sm));
        (c, list)
    }

    /// Tables 1–8 in the edition in force (see the module doc): occupation rows mapped and
    /// merged, rows named by the crosswalk where it names them, the scope named by its
    /// division code in force, and the list of what was mapped.
    pub fn build_in_edition(&self, editions: &Editions) -> QuarterlyReport {
        let (counts, mut mapped) = self.in_edition(&editions.occupation);
        let mut report = counts.build();
        let name_of = |code: &str| editions.occupation.map_name(code);
        for row in &mut report.by_occupation.rows {
            if let Some(name) = name_of(&row.code) {
                row.label = super::Label::zh_only(&name);
            }
        }
        for row in report
            .shortages
            .iter_mut()
            .chain(report.surpluses.iter_mut())
        {
            if let Some(name) = name_of(&row.code) {
                row.label = super::Label::zh_only(&name);
            }
        }
        for &city in &self.cities {
            if let Some((code, t)) = editions.division_of(city)
                && code != city
            {
                mapped.push(Mapping {
                    level: MappedLevel::Division,
                    from: city.to_string(),
                    to: code.to_string(),
                    relation: t.relation,
                    demand: 0,
                    seekers: 0,
                });
            }
        }
        if let Scope::City(city) | Scope::Province(city) = self.scope
            && let Some((code, t)) = editions.division_of(city)
        {
            let name = t
                .name
                .clone()
                .or_else(|| code.builtin_name().map(String::from));
            let recorded = if code == city {
                String::new()
            } else {
                format!(" (recorded as {city})")
            };
            report.scope = Scope::of(code);
            report.scope_label = match name {
                Some(n) => format!("{code} {n}{recorded}"),
                None => format!("{code}{recorded}"),
            };
        }
        report.edition = Some(Edition {
            occupation: editions.occupation.edition().map(String::from),
            division: editions.division.edition().map(String::from),
        });
        report.mapped = mapped;
        report
    }
}

/// The editions a report was put in (`None` in a report in the recorded codes).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Edition {
    /// CN-OCC's edition in force, when a crosswalk leads to one.
    pub occupation: Option<String>,
    /// CN-DIV's edition in force, when a crosswalk leads to one.
    pub division: Option<String>,
}

/// The published cell `(table, row, column)`, if the row is published.
fn cell(tables: &[PublishedTable], table: &str, row: &str, column: &str) -> Option<Cell> {
    let t = tables.iter().find(|t| t.id == table)?;
    let col = t.columns.iter().position(|c| c.key == column)?;
    t.rows
        .iter()
        .find(|r| r.key == row)
        .and_then(|r| r.cells.get(col).copied())
}

/// The mappings as published. The counts of the mappings into one row's column are shown
/// only when that cell is shown, and every part of it — each mapped count and what the
/// row held under its own code — is 0 or at least `below`: otherwise a small part could
/// be worked out by difference, so all of them are withheld.
pub(super) fn publish_mapped(
    mapped: &[Mapping],
    tables: &[PublishedTable],
    below: u64,
) -> Vec<PublishedMapping> {
    let small = |n: u64| below > 1 && n > 0 && n < below;
    let shown = |m: &Mapping, column: &str, get: fn(&Mapping) -> u64| -> Cell {
        let tables_of: &[&str] = match m.level {
            MappedLevel::Major => &["table_5"],
            MappedLevel::Minor => &["table_6", "table_7"],
            MappedLevel::Division => return Cell::Empty,
        };
        let target = tables_of
            .iter()
            .find_map(|t| cell(tables, t, &m.to, column));
        let Some(Cell::Count(total)) = target else {
            return Cell::Suppressed;
        };
        let parts: Vec<u64> = mapped
            .iter()
            .filter(|o| o.level == m.level && o.to == m.to)
            .map(get)
            .collect();
        let own = total.saturating_sub(parts.iter().sum());
        if parts.iter().any(|&n| small(n)) || small(own) {
            return Cell::Suppressed;
        }
        Cell::Count(get(m))
    };
    mapped
        .iter()
        .map(|m| PublishedMapping {
            scheme: match m.level {
                MappedLevel::Division => DIVISION,
                _ => OCCUPATION,
            }
            .to_string(),
            level: m.level,
            from: m.from.clone(),
            to: m.to.clone(),
            relation: m.relation.as_str().to_string(),
            demand: shown(m, "demand", |m| m.demand),
            seekers: shown(m, "seekers", |m| m.seekers),
        })
        .collect()
}

/// The line a rendering shows for a mapping.
pub fn mapping_line(m: &PublishedMapping) -> String {
    let count = |c: Cell| match c {
        Cell::Count(n) => n.to_string(),
        _ => super::WITHHELD.to_string(),
    };
    match m.level {
        MappedLevel::Division => format!(
            "edition in force: {} {} → {} ({}); its records keep the code they were written with",
            m.scheme, m.from, m.to, m.relation
        ),
        _ => format!(
            "edition in force: {} {} → {} ({}): demand {}, job seekers {}",
            m.scheme,
            m.from,
            m.to,
            m.relation,
            count(m.demand),
            count(m.seekers)
        ),
    }
}

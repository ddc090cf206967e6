//! Change over time: the change columns a published report gains against the previous
//! quarter (P−1, 比上季度) and the same quarter of the previous year (P−4, 比去年同期).
//!
//! For each column of each table, matched by table id, row key and column key:
//! - a count: the difference (current − earlier) and, when the earlier count is not
//!   zero, the percent change (difference ÷ earlier × 100, two decimals);
//! - a share (所占比重): the difference in percentage points (百分点; shares are
//!   fractions, so × 100, two decimals);
//! - 求人倍率 and the other computed columns (allocation, gap): the difference
//!   (4 decimals for ratios, 2 for allocations).
//!
//! A change is computed from the two **published** cells only, so it tells nothing the
//! two published reports do not: it is withheld ([`Cell::Suppressed`]) when either cell
//! is, and empty when either is empty, the earlier quarter has no data (nothing
//! counted), or the row is not in the earlier table (a minor group outside its top
//! ten, a region without cities).

use serde::{Deserialize, Serialize};

use super::labels::Label;
use super::publish::{Cell, Column, PublishedReport, PublishedRow, PublishedTable};

/// Which earlier quarter a change column compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Against {
    /// P−1, 比上季度.
    PreviousQuarter,
    /// P−4, 比去年同期.
    SameQuarterLastYear,
}

/// How a change column measures the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// current − earlier (counts, ratios, allocations, gaps).
    Difference,
    /// (current − earlier) ÷ earlier × 100; empty when the earlier count is zero.
    Percent,
    /// (current − earlier) × 100 for shares: percentage points (百分点).
    Points,
}

/// What a change column holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The key of the column compared.
    pub of: String,
    /// Against which quarter.
    pub against: Against,
    /// How.
    pub measure: Measure,
}

/// The quarters a report's changes compare against: `None` when that quarter has no
/// data, and then every change against it is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// P−1, `YYYYQn`.
    pub previous_quarter: Option<String>,
    /// P−4, `YYYYQn`.
    pub same_quarter_last_year: Option<String>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn value(c: Cell) -> Option<f64> {
    match c {
        Cell::Count(n) => Some(n as f64),
        Cell::Number(x) => Some(x),
        Cell::Suppressed | Cell::Empty => None,
    }
}

/// The measures of a column: counts get a difference and a percent change, shares
/// percentage points, anything else computed a difference.
fn measures(c: &Column) -> &'static [Measure] {
    if c.derived_from.is_empty() {
        &[Measure::Difference, Measure::Percent]
    } else if c.key.contains("share") {
        &[Measure::Points]
    } else {
        &[Measure::Difference]
    }
}

/// Decimals a difference of a column keeps (counts and gaps are whole).
fn places(c: &Column) -> i32 {
    match c.key.as_str() {
        "allocated" => 2,
        _ => 4,
    }
}

/// The change of `now` against `then` as one cell.
pub(super) fn change_cell(now: Cell, then: Option<Cell>, measure: Measure, places: i32) -> Cell {
    let Some(then) = then else {
        return Cell::Empty;
    };
    if now == Cell::Suppressed || then == Cell::Suppressed {
        return Cell::Suppressed;
    }
    let (Some(a), Some(b)) = (value(now), value(then)) else {
        return Cell::Empty;
    };
    let x = match measure {
        Measure::Difference => round(a - b, places),
        Measure::Points => round((a - b) * 100.0, 2),
        Measure::Percent if b == 0.0 => return Cell::Empty,
        Measure::Percent => round((a - b) / b * 100.0, 2),
    };
    // No negative zero in the renderings.
    Cell::Number(x + 0.0)
}

fn suffix(against: Against, measure: Measure) -> &'static str {
    match (against, measure) {
        (Against::PreviousQuarter, Measure::Difference) => "qoq",
        (Against::PreviousQuarter, Measure::Percent) => "qoq_pct",
        (Against::PreviousQuarter, Measure::Points) => "qoq_pp",
        (Against::SameQuarterLastYear, Measure::Difference) => "yoy",
        (Against::SameQuarterLastYear, Measure::Percent) => "yoy_pct",
        (Against::SameQuarterLastYear, Measure::Points) => "yoy_pp",
    }
}

fn change_label(base: &Label, against: Against, measure: Measure) -> Label {
    let (zh, en) = match against {
        Against::PreviousQuarter => ("比上季度", "vs previous quarter"),
        Against::SameQuarterLastYear => ("比去年同期", "vs same quarter last year"),
    };
    let (zh_unit, en_unit) = match measure {
        Measure::Difference => ("增减", "change"),
        Measure::Percent => ("增减%", "change %"),
        Measure::Points => ("增减(百分点)", "change (pp)"),
    };
    let en_base = base.en.as_deref().unwrap_or(&base.zh);
    Label::new(
        &format!("{}{zh}{zh_unit}", base.zh),
        &format!("{en_base} {en_unit} {en}"),
    )
}

/// The earlier cell matching (row key, column key), `None` when the earlier report
/// is absent or has no such row or column.
fn earlier(t: Option<&PublishedTable>, row: &str, column: &str) -> Option<Cell> {
    let t = t?;
    let col = t.columns.iter().position(|c| c.key == column)?;
    t.rows
        .iter()
        .find(|r| r.key == row)?
        .cells
        .get(col)
        .copied()
}

fn table_of<'a>(p: Option<&'a PublishedReport>, id: &str) -> Option<&'a PublishedTable> {
    p?.tables.iter().find(|t| t.id == id)
}

/// The table with a change column after each column, against each earlier report.
fn compare_table(
    t: &PublishedTable,
    previous: Option<&PublishedReport>,
    year_ago: Option<&PublishedReport>,
) -> PublishedTable {
    let earlier_tables = [
        (Against::PreviousQuarter, table_of(previous, &t.id)),
        (Against::SameQuarterLastYear, table_of(year_ago, &t.id)),
    ];
    let mut columns = Vec::new();
    // Per output column: the base column's index and, for a change, which one.
    let mut plan: Vec<(usize, Option<(usize, Measure)>)> = Vec::new();
    for (i, c) in t.columns.iter().enumerate() {
        columns.push(c.clone());
        plan.push((i, None));
        for (e, (against, _)) in earlier_tables.iter().enumerate() {
            for &m in measures(c) {
                let derived_from = if c.derived_from.is_empty() {
                    vec![c.key.clone()]
                } else {
                    c.derived_from.clone()
                };
                columns.push(Column {
                    key: format!("{}_{}", c.key, suffix(*against, m)),
                    label: change_label(&c.label, *against, m),
                    derived_from,
                    change: Some(Change {
                        of: c.key.clone(),
                        against: *against,
                        measure: m,
                    }),
                });
                plan.push((i, Some((e, m))));
            }
        }
    }
    let rows = t
        .rows
        .iter()
        .map(|r| {
            let cells = plan
                .iter()
                .map(|&(i, change)| {
                    let now = r.cells.get(i).copied().unwrap_or(Cell::Empty);
                    let Some((e, m)) = change else {
                        return now;
                    };
                    let base = &t.columns[i];
                    let then = earlier(earlier_tables[e].1, &r.key, &base.key);
                    change_cell(now, then, m, places(base))
                })
                .collect();
            PublishedRow {
                key: r.key.clone(),
                label: r.label.clone(),
                cells,
            }
        })
        .collect();
    PublishedTable {
        id: t.id.clone(),
        title: t.title.clone(),
        columns,
        rows,
    }
}

impl PublishedReport {
    /// Adds the change columns against `previous` (P−1) and `year_ago` (P−4), both
    /// published with the same scope and threshold; `None` for a quarter with no data.
    pub fn compare(
        &mut self,
        previous: Option<&PublishedReport>,
        year_ago: Option<&PublishedReport>,
    ) {
        self.tables = self
            .tables
            .iter()
            .map(|t| compare_table(t, previous, year_ago))
            .collect();
        self.compared_with = Some(Comparison {
            previous_quarter: previous.map(|p| p.period.clone()),
            same_quarter_last_year: year_ago.map(|p| p.period.clone()),
        });
    }
}

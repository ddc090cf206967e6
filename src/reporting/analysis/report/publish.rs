//! The published form of a report: tables of labelled rows and typed cells, with
//! small-cell suppression applied. Every renderer (text, CSV, JSON, HTML) renders this
//! one structure, so they carry the same numbers.
//!
//! Suppression (`protect`): a count from 1 to `suppress_below − 1` becomes
//! [`Cell::Suppressed`], so does every cell computed from a withheld count, and then
//! enough other cells (complementary suppression) that no withheld count can be worked
//! out from the relations between the cells (`relations`). A note's figure is left out
//! when the cell it belongs to is withheld. Ratios and shares are rounded to four
//! decimals, allocated seekers to two.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::CountBasis;
use super::changes::{Change, Comparison};
use super::labels::{self, Label};
use super::protect;
use super::tables::{
    CategoryRow, DemandRow, GapRow, Note, QuarterlyReport, RegionRow, SectorRow, SkillRow, ratio,
};

/// One published cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// A count.
    Count(u64),
    /// A ratio, share or allocated number (rounded).
    Number(f64),
    /// Withheld: a small count, a cell that would give one away, or a number computed
    /// from a withheld cell.
    Suppressed,
    /// Nothing to show (no denominator, or not applicable to the row).
    Empty,
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Marker {
            suppressed: bool,
        }
        match *self {
            Cell::Count(n) => s.serialize_u64(n),
            Cell::Number(x) => s.serialize_f64(x),
            Cell::Suppressed => Marker { suppressed: true }.serialize(s),
            Cell::Empty => s.serialize_none(),
        }
    }
}

/// Reads back what [`Cell`]'s `Serialize` writes, so a client can render a report it
/// fetched as JSON: a whole number is a count, any other number a ratio or share.
impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Count(u64),
            Number(f64),
            Marker { suppressed: bool },
            Empty(()),
        }
        match Written::deserialize(d)? {
            Written::Count(n) => Ok(Cell::Count(n)),
            Written::Number(x) => Ok(Cell::Number(x)),
            Written::Marker { suppressed: true } => Ok(Cell::Suppressed),
            Written::Marker { suppressed: false } => Err(D::Error::custom(
                "a cell marker is always {\"suppressed\": true}",
            )),
            Written::Empty(()) => Ok(Cell::Empty),
        }
    }
}

/// A column of a published table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Stable key (the CSV header).
    pub key: String,
    /// Heading.
    pub label: Label,
    /// The count columns of the same row this one is computed from (empty for a count);
    /// a derived cell is withheld with any of them, and with any other count it is
    /// computed from (the total row's, table 5's no-preference seekers).
    pub derived_from: Vec<String>,
    /// For a change column: which column it compares, against which quarter, how
    /// (absent for the quarter's own figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

/// A row of a published table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedRow {
    /// Stable key (code).
    pub key: String,
    /// Label.
    pub label: Label,
    /// One cell per column.
    pub cells: Vec<Cell>,
}

/// A published table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedTable {
    /// `table_1` … `table_9`.
    pub id: String,
    /// Title.
    pub title: Label,
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows.
    pub rows: Vec<PublishedRow>,
}

/// A report as published: suppressed, rounded, labelled. It reads back from its JSON, so
/// a client can render a report fetched from a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedReport {
    /// Scope (`national` or a code).
    pub scope: String,
    /// Scope label.
    pub scope_label: String,
    /// Quarter, `YYYYQn`.
    pub period: String,
    /// Counting basis.
    pub count_basis: CountBasis,
    /// Counts below this (and above 0) are suppressed.
    pub suppress_below: u64,
    /// Number of cities counted.
    pub cities: u64,
    /// Tables 1–9, and `table_10` (regions) in a national report.
    pub tables: Vec<PublishedTable>,
    /// The quarters the change columns compare against (absent: published without
    /// comparison).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<Comparison>,
    /// Caveats, and a line for each code mapped to the edition in force.
    pub notes: Vec<String>,
    /// The editions in force the report was put in (`?edition=current`); `null`: codes
    /// as recorded.
    #[serde(default)]
    pub edition: Option<super::Edition>,
    /// Codes mapped to the edition in force, with the counts they carried (withheld when
    /// a small count could be worked out from them).
    #[serde(default)]
    pub mapped: Vec<super::PublishedMapping>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn num(x: Option<f64>) -> Cell {
    x.map_or(Cell::Empty, |v| Cell::Number(round(v, 4)))
}

fn col(key: &'static str, zh: &str, en: &str, derived_from: &[&'static str]) -> Column {
    Column {
        key: key.to_string(),
        label: Label::new(zh, en),
        derived_from: derived_from.iter().map(|k| k.to_string()).collect(),
        change: None,
    }
}

fn row(key: &str, label: Label, cells: Vec<Cell>) -> PublishedRow {
    PublishedRow {
        key: key.to_string(),
        label,
        cells,
    }
}

fn table(
    id: &'static str,
    zh: &str,
    en: &str,
    columns: Vec<Column>,
    rows: Vec<PublishedRow>,
) -> PublishedTable {
    PublishedTable {
        id: id.to_string(),
        title: Label::new(zh, en),
        columns,
        rows,
    }
}

fn overall(r: &QuarterlyReport) -> PublishedTable {
    let o = &r.overall;
    let [rc, rn, rt] = o.ratios();
    let line = |key, zh, en, d: u64, s: u64, q| {
        row(
            key,
            Label::new(zh, en),
            vec![Cell::Count(d), Cell::Count(s), num(q)],
        )
    };
    let rows = vec![
        line(
            "carried_over",
            "上期结转",
            "Carried over",
            o.demand.carried_over,
            o.seekers.carried_over,
            rc,
        ),
        line(
            "new_in_period",
            "本期新增",
            "New in period",
            o.demand.new_in_period,
            o.seekers.new_in_period,
            rn,
        ),
        line(
            "total",
            "合计",
            "Total",
            o.demand.total(),
            o.seekers.total(),
            rt,
        ),
    ];
    let cols = vec![
        col("demand", "需求人数", "Demand", &[]),
        col("seekers", "求职人数", "Job seekers", &[]),
        col(
            "ratio",
            "求人倍率",
            "Demand/supply ratio",
            &["demand", "seekers"],
        ),
    ];
    table(
        "table_1",
        "总体供求状况",
        "Overall supply and demand",
        cols,
        rows,
    )
}

/// The heading of a table, and the key and labels of its count column.
struct Heading<'a> {
    id: &'static str,
    zh: &'a str,
    en: &'a str,
    count: (&'static str, &'static str, &'static str),
}

/// A table of counts with their shares and a total row (tables 2, 3, 4 and 8).
fn share_table<'r>(
    heading: Heading<'_>,
    rows: impl Iterator<Item = (&'r str, &'r Label, u64, Option<f64>)>,
    total: u64,
) -> PublishedTable {
    let mut out: Vec<PublishedRow> = rows
        .map(|(code, label, count, share)| {
            row(code, label.clone(), vec![Cell::Count(count), num(share)])
        })
        .collect();
    let all = if total > 0 { Some(1.0) } else { None };
    out.push(row(
        "total",
        labels::total(),
        vec![Cell::Count(total), num(all)],
    ));
    let (key, zh, en) = heading.count;
    let cols = vec![
        col(key, zh, en, &[]),
        col("share", "所占比重", "Share", &[key]),
    ];
    table(heading.id, heading.zh, heading.en, cols, out)
}

fn demand_table(
    id: &'static str,
    zh: &str,
    en: &str,
    rows: &[DemandRow],
    total: u64,
) -> PublishedTable {
    let heading = Heading {
        id,
        zh,
        en,
        count: ("demand", "需求人数", "Demand"),
    };
    let rows = rows
        .iter()
        .map(|d| (d.code.as_str(), &d.label, d.demand, d.share));
    share_table(heading, rows, total)
}

fn occupation(r: &QuarterlyReport) -> PublishedTable {
    let t = &r.by_occupation;
    let mut rows: Vec<PublishedRow> = t
        .rows
        .iter()
        .map(|o| {
            let cells = vec![
                Cell::Count(o.demand),
                num(o.demand_share),
                Cell::Count(o.seekers),
                Cell::Number(round(o.allocated, 2)),
                num(o.ratio),
            ];
            row(&o.code, o.label.clone(), cells)
        })
        .collect();
    let no_pref = vec![
        Cell::Empty,
        Cell::Empty,
        Cell::Count(t.no_preference),
        Cell::Empty,
        Cell::Empty,
    ];
    rows.push(row(
        "no_preference",
        Label::new("无要求", "No preference"),
        no_pref,
    ));
    let (demand, seekers) = (r.overall.demand.total(), r.overall.seekers.total());
    let share = if demand > 0 { Some(1.0) } else { None };
    let totals = vec![
        Cell::Count(demand),
        num(share),
        Cell::Count(seekers),
        Cell::Empty,
        num(ratio(demand as f64, seekers as f64)),
    ];
    rows.push(row("total", labels::total(), totals));
    let cols = vec![
        col("demand", "需求人数", "Demand", &[]),
        col("demand_share", "所占比重", "Share of demand", &["demand"]),
        col("seekers", "求职人数", "Job seekers (first preference)", &[]),
        col(
            "allocated",
            "无要求分摊",
            "No-preference seekers allocated",
            &["demand"],
        ),
        col(
            "ratio",
            "求人倍率",
            "Demand/supply ratio",
            &["demand", "seekers"],
        ),
    ];
    table(
        "table_5",
        "按职业分组的供求状况",
        "Supply and demand by occupation major group",
        cols,
        rows,
    )
}

fn gaps(id: &'static str, zh: &str, en: &str, rows: &[GapRow]) -> PublishedTable {
    let rows = rows
        .iter()
        .map(|g| {
            let cells = vec![
                Cell::Count(g.demand),
                Cell::Count(g.seekers),
                Cell::Count(g.gap),
                num(g.ratio),
            ];
            row(&g.code, g.label.clone(), cells)
        })
        .collect();
    let cols = vec![
        col("demand", "需求人数", "Demand", &[]),
        col("seekers", "求职人数", "Job seekers", &[]),
        col("gap", "差额", "Gap", &["demand", "seekers"]),
        col(
            "ratio",
            "求人倍率",
            "Demand/supply ratio",
            &["demand", "seekers"],
        ),
    ];
    table(id, zh, en, cols, rows)
}

/// Table 2: each sector's coded demand, its part of 其他行业 and the sum, with shares.
fn sectors(rows: &[SectorRow], other: u64, total: u64) -> PublishedTable {
    let mut out: Vec<PublishedRow> = rows
        .iter()
        .map(|r| {
            let cells = vec![
                Cell::Count(r.recorded),
                Cell::Number(round(r.allocated, 2)),
                Cell::Number(round(r.demand, 2)),
                num(r.share),
            ];
            row(&r.code, r.label.clone(), cells)
        })
        .collect();
    let coded = rows.iter().map(|r| r.recorded).sum();
    let all = if total > 0 { Some(1.0) } else { None };
    let totals = vec![
        Cell::Count(coded),
        Cell::Count(other),
        Cell::Count(total),
        num(all),
    ];
    out.push(row("total", labels::total(), totals));
    let cols = vec![
        col(
            "recorded",
            "按行业代码计",
            "Demand coded to the sector",
            &[],
        ),
        col(
            "allocated",
            "其他行业分摊",
            "其他行业 redistributed",
            &["recorded"],
        ),
        col("demand", "需求人数", "Demand", &["recorded"]),
        col("share", "所占比重", "Share", &["demand"]),
    ];
    table("table_2", "按产业分组的需求", "Demand by sector", cols, out)
}

/// Table 9: demand by the skill level asked, seekers by the level held.
fn skills(rows: &[SkillRow], demand: u64, seekers: u64) -> PublishedTable {
    let mut out: Vec<PublishedRow> = rows
        .iter()
        .map(|r| {
            let cells = vec![
                Cell::Count(r.demand),
                num(r.demand_share),
                Cell::Count(r.seekers),
                num(r.seekers_share),
                num(r.ratio),
            ];
            row(&r.code, r.label.clone(), cells)
        })
        .collect();
    let whole = |n: u64| if n > 0 { Some(1.0) } else { None };
    let totals = vec![
        Cell::Count(demand),
        num(whole(demand)),
        Cell::Count(seekers),
        num(whole(seekers)),
        num(ratio(demand as f64, seekers as f64)),
    ];
    out.push(row("total", labels::total(), totals));
    let cols = vec![
        col("demand", "需求人数", "Demand (lowest level asked)", &[]),
        col("demand_share", "所占比重", "Share of demand", &["demand"]),
        col("seekers", "求职人数", "Job seekers (level held)", &[]),
        col(
            "seekers_share",
            "所占比重",
            "Share of seekers",
            &["seekers"],
        ),
        col(
            "ratio",
            "求人倍率",
            "Demand/supply ratio",
            &["demand", "seekers"],
        ),
    ];
    table(
        "table_9",
        "按技术等级分组的供求状况",
        "Supply and demand by skill level",
        cols,
        out,
    )
}

fn categories(rows: &[CategoryRow], total: u64) -> PublishedTable {
    let heading = Heading {
        id: "table_8",
        zh: "求职人员类别构成",
        en: "Job seekers by category",
        count: ("seekers", "求职人数", "Job seekers"),
    };
    let rows = rows
        .iter()
        .map(|c| (c.code.as_str(), &c.label, c.seekers, c.share));
    share_table(heading, rows, total)
}

/// The regional table of a national report: demand, seekers and 求人倍率 per region.
fn regions(rows: &[RegionRow], demand: u64, seekers: u64) -> PublishedTable {
    let mut out: Vec<PublishedRow> = rows
        .iter()
        .map(|g| {
            let cells = vec![Cell::Count(g.demand), Cell::Count(g.seekers), num(g.ratio)];
            row(&g.code, g.label.clone(), cells)
        })
        .collect();
    let total = vec![
        Cell::Count(demand),
        Cell::Count(seekers),
        num(ratio(demand as f64, seekers as f64)),
    ];
    out.push(row("total", labels::total(), total));
    let cols = vec![
        col("demand", "需求人数", "Demand", &[]),
        col("seekers", "求职人数", "Job seekers", &[]),
        col(
            "ratio",
            "求人倍率",
            "Demand/supply ratio",
            &["demand", "seekers"],
        ),
    ];
    table(
        "table_10",
        "分地区供求状况",
        "Supply and demand by region",
        cols,
        out,
    )
}

impl QuarterlyReport {
    /// Whether anything was counted (demand or seekers): a quarter without data gives
    /// no changes to compare against.
    pub fn has_data(&self) -> bool {
        self.overall.demand.total() + self.overall.seekers.total() > 0
    }

    /// The published form: counts from 1 to `suppress_below − 1` withheld, with every
    /// cell that would give one away (`protect`).
    pub fn publish(&self, suppress_below: u64) -> PublishedReport {
        let demand = self.overall.demand.total();
        let mut tables = vec![
            overall(self),
            sectors(&self.by_sector, self.other_industries(), demand),
            demand_table(
                "table_3",
                "按行业分组的需求",
                "Demand by industry",
                &self.by_industry,
                demand,
            ),
            demand_table(
                "table_4",
                "按用人单位性质分组的需求",
                "Demand by employer type",
                &self.by_employer_type,
                demand,
            ),
            occupation(self),
            gaps(
                "table_6",
                "需求大于供给的职业（小类）前十",
                "Top 10 minor groups where demand exceeds supply",
                &self.shortages,
            ),
            gaps(
                "table_7",
                "供给大于需求的职业（小类）前十",
                "Top 10 minor groups where supply exceeds demand",
                &self.surpluses,
            ),
            categories(&self.by_category, self.overall.seekers.total()),
            skills(&self.by_skill, demand, self.overall.seekers.total()),
        ];
        if !self.by_region.is_empty() {
            let seekers = self.overall.seekers.total();
            tables.push(regions(&self.by_region, demand, seekers));
        }
        protect::suppress(&mut tables, suppress_below);
        let mapped = super::edition::publish_mapped(&self.mapped, &tables, suppress_below);
        let notes = self
            .notes
            .iter()
            .map(|n| note_text(n, &tables, suppress_below))
            .chain(mapped.iter().map(super::mapping_line))
            .collect();
        PublishedReport {
            scope: self.scope.to_string(),
            scope_label: self.scope_label.clone(),
            period: self.period.to_string(),
            count_basis: self.count_basis,
            suppress_below,
            cities: u64::try_from(self.cities.len()).unwrap_or(u64::MAX),
            tables,
            compared_with: None,
            notes,
            edition: self.edition.clone(),
            mapped,
        }
    }
}

/// A note as published: its figure only if the cell it is part of is shown and the
/// figure is not itself a small count.
fn note_text(note: &Note, tables: &[PublishedTable], below: u64) -> String {
    let (table, row, column) = note.cell();
    let shown = tables
        .iter()
        .filter(|t| t.id == table)
        .flat_map(|t| {
            let col = t.columns.iter().position(|c| c.key == column);
            t.rows
                .iter()
                .filter(|r| r.key == row)
                .filter_map(move |r| r.cells.get(col?))
        })
        .all(|c| *c != Cell::Suppressed);
    let n = note.count();
    let small = below > 1 && n > 0 && n < below;
    note.text(shown && !small)
}

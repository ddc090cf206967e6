//! What a reader can work out from a published report: the equalities between its
//! cells (column totals, the cells of a row that add up, the same number shown in two
//! tables, sectors as sums of industries), the bounds (the minor groups of tables 6 and
//! 7 are parts of table 5's major groups; tables 6 and 7 are sorted by gap) and the
//! cells computed from others (shares, ratios, gaps, allocations). Written as data per
//! table ([`RULES`], [`SAME_NUMBER`], [`MINOR_GROUPS`]) and resolved against the
//! published tables by [`Relations::of`]; `protect` suppresses with them.

use crate::core::model::Sector;
use crate::core::model::standards::occupation_major;
use crate::core::model::tables::INDUSTRIES_1994;

use super::labels;
use super::publish::{Cell, PublishedTable};

/// The key of the total row.
const TOTAL: &str = "total";
/// Table 3's row of 其他行业, which table 2 redistributes.
const OTHER_INDUSTRY: &str = "P";

/// A cell of a report: indices of the table, the row and the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct CellRef {
    /// Index of the table in the report.
    pub(super) table: usize,
    /// Index of the row in the table.
    pub(super) row: usize,
    /// Index of the column in the table.
    pub(super) col: usize,
}

/// The parts add up to the whole (one part: the same number twice), or, when not
/// `exact`, to at most the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sum {
    /// The cells added, in row order.
    pub(super) parts: Vec<CellRef>,
    /// Their sum.
    pub(super) whole: CellRef,
    /// Equal to the whole, or only at most the whole.
    pub(super) exact: bool,
}

impl Sum {
    /// The parts add up to the whole.
    fn equal(parts: Vec<CellRef>, whole: CellRef) -> Sum {
        let exact = true;
        Sum {
            parts,
            whole,
            exact,
        }
    }

    /// The parts add up to at most the whole.
    fn at_most(parts: Vec<CellRef>, whole: CellRef) -> Sum {
        let exact = false;
        Sum {
            parts,
            whole,
            exact,
        }
    }

    /// Every cell of the relation, the parts first, the whole last.
    pub(super) fn cells(&self) -> impl Iterator<Item = CellRef> + '_ {
        self.parts.iter().copied().chain([self.whole])
    }
}

/// An ordering: `greater` ≥ `lesser`, and > when `strict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Order {
    /// The cell of the row above.
    pub(super) greater: CellRef,
    /// The cell of the row below.
    pub(super) lesser: CellRef,
    /// Ties are broken by key, so a row above with a greater key is strictly greater.
    pub(super) strict: bool,
}

/// A cell computed from other cells: it tells about them whenever it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Derived {
    /// The computed cell.
    pub(super) cell: CellRef,
    /// The counts it is computed from, in any row or table.
    pub(super) from: Vec<CellRef>,
}

/// Every relation of one report's published tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Relations {
    /// Equalities, and sums bounded by a cell.
    pub(super) sums: Vec<Sum>,
    /// Orderings.
    pub(super) orders: Vec<Order>,
    /// Computed cells.
    pub(super) derived: Vec<Derived>,
}

/// Where an operand of a computed cell lies, seen from the cell's row.
#[derive(Debug, Clone, Copy)]
enum At {
    /// In the same row.
    Same,
    /// In the table's total row.
    Total,
    /// In the row with this key.
    Row(&'static str),
}

/// Which rows of a column a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// Every row.
    All,
    /// Every row but the total.
    Parts,
    /// The total row only.
    Total,
}

/// A computed column: in the rows named, each cell is computed from these operands.
struct DerivedRule {
    column: &'static str,
    rows: Rows,
    from: &'static [(At, &'static str)],
}

/// The relations of one table, as data.
struct TableRules {
    id: &'static str,
    /// Count columns whose cells in every row but the total add up to the total row's.
    column_sums: &'static [&'static str],
    /// Within each row, these columns add up to that one.
    row_sums: &'static [(&'static [&'static str], &'static str)],
    /// Computed columns.
    derived: &'static [DerivedRule],
    /// The rows are sorted by this column, largest first, ties by key.
    sorted_by: Option<&'static str>,
}

/// `share` = demand ÷ the total row's demand (tables 2, 3 and 4).
const SHARE_OF_DEMAND: &[DerivedRule] = &[DerivedRule {
    column: "share",
    rows: Rows::All,
    from: &[(At::Same, "demand"), (At::Total, "demand")],
}];

/// `share` = seekers ÷ the total row's seekers (table 8).
const SHARE_OF_SEEKERS: &[DerivedRule] = &[DerivedRule {
    column: "share",
    rows: Rows::All,
    from: &[(At::Same, "seekers"), (At::Total, "seekers")],
}];

/// `gap` and `ratio` of tables 6 and 7, both from the row's demand and seekers.
const GAP_AND_RATIO: &[DerivedRule] = &[
    DerivedRule {
        column: "gap",
        rows: Rows::All,
        from: &[(At::Same, "demand"), (At::Same, "seekers")],
    },
    DerivedRule {
        column: "ratio",
        rows: Rows::All,
        from: &[(At::Same, "demand"), (At::Same, "seekers")],
    },
];

/// Table 5: shares of total demand; allocations = share × the no-preference count;
/// a group's ratio = demand ÷ (seekers + allocation); the total's ratio = demand ÷ seekers.
const OCCUPATION: &[DerivedRule] = &[
    DerivedRule {
        column: "demand_share",
        rows: Rows::All,
        from: &[(At::Same, "demand"), (At::Total, "demand")],
    },
    DerivedRule {
        column: "allocated",
        rows: Rows::Parts,
        from: &[
            (At::Same, "demand"),
            (At::Total, "demand"),
            (At::Row("no_preference"), "seekers"),
        ],
    },
    DerivedRule {
        column: "ratio",
        rows: Rows::Parts,
        from: &[
            (At::Same, "demand"),
            (At::Same, "seekers"),
            (At::Total, "demand"),
            (At::Row("no_preference"), "seekers"),
        ],
    },
    DerivedRule {
        column: "ratio",
        rows: Rows::Total,
        from: &[(At::Same, "demand"), (At::Same, "seekers")],
    },
];

/// What a sector's part of 其他行业 and its demand are computed from: its coded demand,
/// all sectors' and 其他行业 (the total row's `allocated`).
const SECTOR_PART: &[(At, &str)] = &[
    (At::Same, "recorded"),
    (At::Total, "recorded"),
    (At::Total, "allocated"),
];

/// Table 2: a sector's part of 其他行业, its demand and its share.
const SECTOR: &[DerivedRule] = &[
    DerivedRule {
        column: "allocated",
        rows: Rows::Parts,
        from: SECTOR_PART,
    },
    DerivedRule {
        column: "demand",
        rows: Rows::Parts,
        from: SECTOR_PART,
    },
    // A sector's demand is withheld with any of its operands, and its share with it.
    DerivedRule {
        column: "share",
        rows: Rows::Parts,
        from: &[
            (At::Same, "demand"),
            (At::Total, "demand"),
            (At::Total, "recorded"),
            (At::Total, "allocated"),
        ],
    },
    DerivedRule {
        column: "share",
        rows: Rows::Total,
        from: &[(At::Same, "demand")],
    },
];

/// Table 9: shares of demand and of seekers, and the ratio of each row.
const SKILL: &[DerivedRule] = &[
    DerivedRule {
        column: "demand_share",
        rows: Rows::All,
        from: &[(At::Same, "demand"), (At::Total, "demand")],
    },
    DerivedRule {
        column: "seekers_share",
        rows: Rows::All,
        from: &[(At::Same, "seekers"), (At::Total, "seekers")],
    },
    DerivedRule {
        column: "ratio",
        rows: Rows::All,
        from: &[(At::Same, "demand"), (At::Same, "seekers")],
    },
];

/// The relations of tables 1–9 and of the national report's regional table 10.
const RULES: [TableRules; 10] = [
    TableRules {
        id: "table_1",
        // carried over + new in period = total, for demand and for seekers.
        column_sums: &["demand", "seekers"],
        row_sums: &[],
        derived: &[DerivedRule {
            column: "ratio",
            rows: Rows::All,
            from: &[(At::Same, "demand"), (At::Same, "seekers")],
        }],
        sorted_by: None,
    },
    TableRules {
        id: "table_2",
        // The sectors' coded demand adds up to the total row's; the total row's coded
        // demand and 其他行业 add up to all demand (`add_sectors`).
        column_sums: &["recorded"],
        row_sums: &[],
        derived: SECTOR,
        sorted_by: None,
    },
    TableRules {
        id: "table_3",
        column_sums: &["demand"],
        row_sums: &[],
        derived: SHARE_OF_DEMAND,
        sorted_by: None,
    },
    TableRules {
        id: "table_4",
        column_sums: &["demand"],
        row_sums: &[],
        derived: SHARE_OF_DEMAND,
        sorted_by: None,
    },
    TableRules {
        id: "table_5",
        // The groups' demand adds up to the total; their seekers and the
        // no-preference row add up to all seekers.
        column_sums: &["demand", "seekers"],
        row_sums: &[],
        derived: OCCUPATION,
        sorted_by: None,
    },
    TableRules {
        id: "table_6",
        column_sums: &[],
        // Demand exceeds supply: seekers + gap = demand.
        row_sums: &[(&["seekers", "gap"], "demand")],
        derived: GAP_AND_RATIO,
        sorted_by: Some("gap"),
    },
    TableRules {
        id: "table_7",
        column_sums: &[],
        // Supply exceeds demand: demand + gap = seekers.
        row_sums: &[(&["demand", "gap"], "seekers")],
        derived: GAP_AND_RATIO,
        sorted_by: Some("gap"),
    },
    TableRules {
        id: "table_8",
        column_sums: &["seekers"],
        row_sums: &[],
        derived: SHARE_OF_SEEKERS,
        sorted_by: None,
    },
    TableRules {
        id: "table_9",
        column_sums: &["demand", "seekers"],
        row_sums: &[],
        derived: SKILL,
        sorted_by: None,
    },
    TableRules {
        id: "table_10",
        // The regions' demand and seekers add up to the nation's.
        column_sums: &["demand", "seekers"],
        row_sums: &[],
        derived: &[DerivedRule {
            column: "ratio",
            rows: Rows::All,
            from: &[(At::Same, "demand"), (At::Same, "seekers")],
        }],
        sorted_by: None,
    },
];

/// The table of major occupation groups, and those listing minor groups.
const MAJOR_GROUPS: &str = "table_5";
const MINOR_GROUPS: [&str; 2] = ["table_6", "table_7"];

/// A cell named by table id, row key and column key.
type Key = (&'static str, &'static str, &'static str);

/// Cells that show the same number: total demand in tables 1–5 and 9, total seekers in
/// tables 1, 5, 8, 9 and 10, and 其他行业 in tables 2 and 3.
const SAME_NUMBER: [(Key, Key); 11] = [
    (("table_1", TOTAL, "demand"), ("table_9", TOTAL, "demand")),
    (("table_1", TOTAL, "seekers"), ("table_9", TOTAL, "seekers")),
    (("table_3", "P", "demand"), ("table_2", TOTAL, "allocated")),
    (("table_1", TOTAL, "demand"), ("table_2", TOTAL, "demand")),
    (("table_1", TOTAL, "demand"), ("table_3", TOTAL, "demand")),
    (("table_1", TOTAL, "demand"), ("table_4", TOTAL, "demand")),
    (("table_1", TOTAL, "demand"), ("table_5", TOTAL, "demand")),
    (("table_1", TOTAL, "seekers"), ("table_5", TOTAL, "seekers")),
    (("table_1", TOTAL, "seekers"), ("table_8", TOTAL, "seekers")),
    (("table_1", TOTAL, "demand"), ("table_10", TOTAL, "demand")),
    (
        ("table_1", TOTAL, "seekers"),
        ("table_10", TOTAL, "seekers"),
    ),
];

/// Lookups by key in the published tables.
struct Index<'a> {
    tables: &'a [PublishedTable],
}

impl Index<'_> {
    fn table(&self, id: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.id == id)
    }

    fn row(&self, table: usize, key: &str) -> Option<usize> {
        self.tables
            .get(table)?
            .rows
            .iter()
            .position(|r| r.key == key)
    }

    fn col(&self, table: usize, key: &str) -> Option<usize> {
        self.tables
            .get(table)?
            .columns
            .iter()
            .position(|c| c.key == key)
    }

    /// The cell, unless it is missing or empty (an empty cell takes part in nothing).
    fn cell(&self, table: usize, row: usize, col: usize) -> Option<CellRef> {
        let cell = self.tables.get(table)?.rows.get(row)?.cells.get(col)?;
        (*cell != Cell::Empty).then_some(CellRef { table, row, col })
    }

    fn named(&self, (table, row, col): (&str, &str, &str)) -> Option<CellRef> {
        let t = self.table(table)?;
        self.cell(t, self.row(t, row)?, self.col(t, col)?)
    }

    fn key(&self, table: usize, row: usize) -> Option<&str> {
        Some(self.tables.get(table)?.rows.get(row)?.key.as_str())
    }

    fn rows(&self, table: usize) -> usize {
        self.tables.get(table).map_or(0, |t| t.rows.len())
    }

    fn is_total(&self, table: usize, row: usize) -> bool {
        self.tables
            .get(table)
            .and_then(|t| t.rows.get(row))
            .is_some_and(|r| r.key == TOTAL)
    }
}

impl Relations {
    /// The relations of `tables`, as published (before suppression: empty cells take
    /// part in none).
    pub(super) fn of(tables: &[PublishedTable]) -> Relations {
        let ix = Index { tables };
        let mut out = Relations::default();
        for rules in &RULES {
            if let Some(t) = ix.table(rules.id) {
                out.add_table(&ix, t, rules);
            }
        }
        for (a, b) in SAME_NUMBER {
            if let (Some(a), Some(b)) = (ix.named(a), ix.named(b)) {
                out.sums.push(Sum::equal(vec![a], b));
            }
        }
        out.add_sectors(&ix);
        out.add_minor_groups(&ix);
        out
    }

    fn add_table(&mut self, ix: &Index<'_>, t: usize, rules: &TableRules) {
        for column in rules.column_sums {
            self.add_column_sum(ix, t, column);
        }
        for (parts, whole) in rules.row_sums {
            self.add_row_sums(ix, t, parts, whole);
        }
        for rule in rules.derived {
            self.add_derived(ix, t, rule);
        }
        if let Some(column) = rules.sorted_by {
            self.add_orders(ix, t, column);
        }
    }

    fn add_column_sum(&mut self, ix: &Index<'_>, t: usize, column: &str) {
        let (Some(col), Some(total)) = (ix.col(t, column), ix.row(t, TOTAL)) else {
            return;
        };
        let Some(whole) = ix.cell(t, total, col) else {
            return;
        };
        let parts = (0..ix.rows(t))
            .filter(|&r| r != total)
            .filter_map(|r| ix.cell(t, r, col))
            .collect();
        self.sums.push(Sum::equal(parts, whole));
    }

    fn add_row_sums(&mut self, ix: &Index<'_>, t: usize, parts: &[&str], whole: &str) {
        let cols: Option<Vec<usize>> = parts.iter().map(|p| ix.col(t, p)).collect();
        let (Some(cols), Some(whole_col)) = (cols, ix.col(t, whole)) else {
            return;
        };
        for r in 0..ix.rows(t) {
            let parts: Option<Vec<CellRef>> = cols.iter().map(|&c| ix.cell(t, r, c)).collect();
            if let (Some(parts), Some(whole)) = (parts, ix.cell(t, r, whole_col)) {
                self.sums.push(Sum::equal(parts, whole));
            }
        }
    }

    fn add_derived(&mut self, ix: &Index<'_>, t: usize, rule: &DerivedRule) {
        let Some(col) = ix.col(t, rule.column) else {
            return;
        };
        for r in 0..ix.rows(t) {
            let covered = match rule.rows {
                Rows::All => true,
                Rows::Parts => !ix.is_total(t, r),
                Rows::Total => ix.is_total(t, r),
            };
            let Some(cell) = ix.cell(t, r, col).filter(|_| covered) else {
                continue;
            };
            let mut from: Vec<CellRef> = rule
                .from
                .iter()
                .filter_map(|&(at, column)| operand(ix, t, r, at, column))
                .collect();
            from.sort();
            from.dedup();
            self.derived.push(Derived { cell, from });
        }
    }

    fn add_orders(&mut self, ix: &Index<'_>, t: usize, column: &str) {
        let (Some(col), Some(table)) = (ix.col(t, column), ix.tables.get(t)) else {
            return;
        };
        for (r, pair) in table.rows.windows(2).enumerate() {
            if let (Some(greater), Some(lesser)) = (ix.cell(t, r, col), ix.cell(t, r + 1, col)) {
                self.orders.push(Order {
                    greater,
                    lesser,
                    strict: pair[0].key > pair[1].key,
                });
            }
        }
    }

    /// Table 2's coded demand of a sector is the sum of table 3's industries of the
    /// sector but 其他行业 (GB/T 4754-1994 rows); with 其他行业 it makes all demand.
    fn add_sectors(&mut self, ix: &Index<'_>) {
        for sector in [Sector::Primary, Sector::Secondary, Sector::Tertiary] {
            let (key, _) = labels::sector(sector);
            let Some(whole) = ix.named(("table_2", key, "recorded")) else {
                continue;
            };
            let parts: Option<Vec<CellRef>> = INDUSTRIES_1994
                .iter()
                .filter(|(code, _, s)| *s == sector && *code != OTHER_INDUSTRY)
                .map(|(code, _, _)| ix.named(("table_3", code, "demand")))
                .collect();
            if let Some(parts) = parts {
                self.sums.push(Sum::equal(parts, whole));
            }
        }
        let total = |col| ix.named(("table_2", TOTAL, col));
        if let (Some(coded), Some(other), Some(all)) =
            (total("recorded"), total("allocated"), total("demand"))
        {
            self.sums.push(Sum::equal(vec![coded, other], all));
        }
    }

    /// The minor groups listed in tables 6 and 7 are parts of table 5's major groups:
    /// their demand (seekers) adds up to at most the major group's (coarser codes and
    /// unlisted minor groups make up the rest).
    fn add_minor_groups(&mut self, ix: &Index<'_>) {
        let Some(majors) = ix.table(MAJOR_GROUPS) else {
            return;
        };
        let minors: Vec<(usize, usize)> = MINOR_GROUPS
            .iter()
            .filter_map(|id| ix.table(id))
            .flat_map(|t| (0..ix.rows(t)).map(move |r| (t, r)))
            .collect();
        for major in 0..ix.rows(majors) {
            let Some(code) = ix.key(majors, major) else {
                continue;
            };
            let within: Vec<(usize, usize)> = minors
                .iter()
                .copied()
                .filter(|&(t, r)| ix.key(t, r).map(occupation_major) == Some(code))
                .collect();
            for column in ["demand", "seekers"] {
                self.add_at_most(ix, &within, (majors, major), column);
            }
        }
    }

    fn add_at_most(
        &mut self,
        ix: &Index<'_>,
        parts: &[(usize, usize)],
        whole: (usize, usize),
        column: &str,
    ) {
        let cell = |(t, r): (usize, usize)| ix.cell(t, r, ix.col(t, column)?);
        let parts: Option<Vec<CellRef>> = parts.iter().map(|&p| cell(p)).collect();
        if let (Some(parts), Some(whole)) = (parts.filter(|p| !p.is_empty()), cell(whole)) {
            self.sums.push(Sum::at_most(parts, whole));
        }
    }
}

/// The cell an operand names, seen from row `r` of table `t`.
fn operand(ix: &Index<'_>, t: usize, r: usize, at: At, column: &str) -> Option<CellRef> {
    let row = match at {
        At::Same => r,
        At::Total => ix.row(t, TOTAL)?,
        At::Row(key) => ix.row(t, key)?,
    };
    ix.cell(t, row, ix.col(t, column)?)
}

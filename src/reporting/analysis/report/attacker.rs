//! A test attacker: given a published report, it works out every withheld cell it can
//! from what is shown and the relations a reader knows from the documented rules
//! (`docs/reference/metrics.md`). Written apart from `relations` and `protect`, by
//! table, row and column keys, so that a relation the suppression forgot is one the
//! attacker still uses.
//!
//! It repeats, until it learns nothing more:
//! - an equality (parts add up to a whole, counts or numbers) with one unknown cell
//!   gives that cell;
//! - a shown non-zero share, ratio or allocation with one unknown operand gives the
//!   operand, and known operands give the computed cell (rounding is ignored: the
//!   attacker is assumed to invert it exactly);
//! - bounds: a withheld count is at least 1; equalities between counts and the gap
//!   order of tables 6 and 7 narrow the bounds, and a count narrowed to one value is
//!   learnt (two withheld cells adding up to 2, a gap between two equal gaps …).

use std::collections::{BTreeMap, BTreeSet};

use super::publish::{Cell, PublishedReport, PublishedTable};

/// A cell: table id, row key, column key.
pub(super) type Key = (String, String, String);

/// How a computed cell follows from its operands `[a, b, c]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Formula {
    /// a ÷ b (shares, ratios).
    Quotient,
    /// a ÷ b × c (table 5's allocation: demand ÷ total demand × no-preference seekers).
    Allocation,
    /// a ÷ (b + c) (table 5's ratio: demand ÷ (seekers + allocated)).
    GroupRatio,
}

/// Something a reader knows about the cells of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rel {
    /// The parts add up to the whole.
    Sum { parts: Vec<Key>, whole: Key },
    /// The parts add up to at most the whole.
    AtMost { parts: Vec<Key>, whole: Key },
    /// `cell` is computed from `operands`.
    Formula {
        cell: Key,
        formula: Formula,
        operands: Vec<Key>,
    },
    /// `greater` ≥ `lesser`, and > when `strict`.
    Order {
        greater: Key,
        lesser: Key,
        strict: bool,
    },
}

fn key(t: &str, r: &str, c: &str) -> Key {
    (t.to_string(), r.to_string(), c.to_string())
}

fn table<'a>(p: &'a PublishedReport, id: &str) -> Option<&'a PublishedTable> {
    p.tables.iter().find(|t| t.id == id)
}

/// The value of a cell (`None`: missing).
pub(super) fn get(p: &PublishedReport, (t, r, c): &Key) -> Option<Cell> {
    let t = table(p, t)?;
    let col = t.columns.iter().position(|x| &x.key == c)?;
    t.rows.iter().find(|x| &x.key == r)?.cells.get(col).copied()
}

/// The row keys of a table other than the total.
fn part_rows(p: &PublishedReport, id: &str) -> Vec<String> {
    table(p, id).map_or_else(Vec::new, |t| {
        t.rows
            .iter()
            .filter(|r| r.key != "total")
            .map(|r| r.key.clone())
            .collect()
    })
}

fn present(p: &PublishedReport, k: &Key) -> bool {
    !matches!(get(p, k), None | Some(Cell::Empty))
}

/// Column `c` over the rows of `id` (skipping empty cells) adds up to the total row.
fn column_sum(p: &PublishedReport, id: &str, c: &str) -> Rel {
    let parts = part_rows(p, id)
        .iter()
        .map(|r| key(id, r, c))
        .filter(|k| present(p, k))
        .collect();
    Rel::Sum {
        parts,
        whole: key(id, "total", c),
    }
}

/// A share column: each share is its count ÷ the total's, and the shares add up to 1.
fn shares(p: &PublishedReport, id: &str, count: &str, share: &str, out: &mut Vec<Rel>) {
    let rows: Vec<String> = part_rows(p, id)
        .into_iter()
        .chain(["total".into()])
        .collect();
    for r in rows.iter().filter(|r| present(p, &key(id, r, count))) {
        out.push(Rel::Formula {
            cell: key(id, r, share),
            formula: Formula::Quotient,
            operands: vec![key(id, r, count), key(id, "total", count)],
        });
    }
    if present(p, &key(id, "total", share)) {
        out.push(column_sum(p, id, share));
    }
}

/// The relations of a report, from the documented rules.
pub(super) fn relations(p: &PublishedReport) -> Vec<Rel> {
    let mut out = Vec::new();
    overall(&mut out);
    for id in ["table_3", "table_4"] {
        out.push(column_sum(p, id, "demand"));
        shares(p, id, "demand", "share", &mut out);
    }
    sectors(p, &mut out);
    occupations(p, &mut out);
    gaps(p, "table_6", ["seekers", "gap"], "demand", &mut out);
    gaps(p, "table_7", ["demand", "gap"], "seekers", &mut out);
    minor_groups(p, &mut out);
    out.push(column_sum(p, "table_8", "seekers"));
    shares(p, "table_8", "seekers", "share", &mut out);
    skills(p, &mut out);
    if table(p, "table_10").is_some() {
        regions(p, &mut out);
    }
    same_numbers(p, &mut out);
    out
}

/// Table 10 (national reports): the regions add up to the nation, for demand and
/// seekers; each ratio = demand ÷ seekers.
fn regions(p: &PublishedReport, out: &mut Vec<Rel>) {
    let t = "table_10";
    out.push(column_sum(p, t, "demand"));
    out.push(column_sum(p, t, "seekers"));
    for r in part_rows(p, t).into_iter().chain(["total".into()]) {
        out.push(Rel::Formula {
            cell: key(t, &r, "ratio"),
            formula: Formula::Quotient,
            operands: vec![key(t, &r, "demand"), key(t, &r, "seekers")],
        });
    }
}

/// Table 1: carried over + new = total, for demand and seekers; ratio = demand ÷ seekers.
fn overall(out: &mut Vec<Rel>) {
    let t = "table_1";
    for c in ["demand", "seekers"] {
        out.push(Rel::Sum {
            parts: vec![key(t, "carried_over", c), key(t, "new_in_period", c)],
            whole: key(t, "total", c),
        });
    }
    for r in ["carried_over", "new_in_period", "total"] {
        out.push(Rel::Formula {
            cell: key(t, r, "ratio"),
            formula: Formula::Quotient,
            operands: vec![key(t, r, "demand"), key(t, r, "seekers")],
        });
    }
}

/// Table 2: a sector's coded demand is the sum of its industries in table 3 (A is
/// primary, B–E secondary, F–O tertiary; P, 其他行业, is the total row's `allocated`),
/// its `allocated` is its coded demand ÷ all coded demand × 其他行业, its demand the sum
/// of the two, and its share that ÷ all demand.
fn sectors(p: &PublishedReport, out: &mut Vec<Rel>) {
    let t = "table_2";
    let groups = [
        ("primary", "A"),
        ("secondary", "BCDE"),
        ("tertiary", "FGHIJKLMNO"),
    ];
    for (sector, sections) in groups {
        out.push(Rel::Sum {
            parts: sections
                .chars()
                .map(|s| key("table_3", &s.to_string(), "demand"))
                .collect(),
            whole: key(t, sector, "recorded"),
        });
        out.push(Rel::Formula {
            cell: key(t, sector, "allocated"),
            formula: Formula::Allocation,
            operands: vec![
                key(t, sector, "recorded"),
                key(t, "total", "recorded"),
                key(t, "total", "allocated"),
            ],
        });
        out.push(Rel::Sum {
            parts: vec![key(t, sector, "recorded"), key(t, sector, "allocated")],
            whole: key(t, sector, "demand"),
        });
    }
    out.push(column_sum(p, t, "recorded"));
    out.push(Rel::Sum {
        parts: vec![key(t, "total", "recorded"), key(t, "total", "allocated")],
        whole: key(t, "total", "demand"),
    });
    out.push(Rel::Sum {
        parts: vec![key("table_3", "P", "demand")],
        whole: key(t, "total", "allocated"),
    });
    // Redistributed only when some demand is coded (a withheld total is not zero).
    if get(p, &key(t, "total", "recorded")) != Some(Cell::Count(0)) {
        out.push(column_sum(p, t, "allocated"));
        out.push(column_sum(p, t, "demand"));
    }
    shares(p, t, "demand", "share", out);
}

/// Table 9: demand and seekers add up, their shares, and each row's ratio.
fn skills(p: &PublishedReport, out: &mut Vec<Rel>) {
    let t = "table_9";
    for (count, share) in [("demand", "demand_share"), ("seekers", "seekers_share")] {
        out.push(column_sum(p, t, count));
        shares(p, t, count, share, out);
    }
    for r in part_rows(p, t).into_iter().chain(["total".into()]) {
        out.push(Rel::Formula {
            cell: key(t, &r, "ratio"),
            formula: Formula::Quotient,
            operands: vec![key(t, &r, "demand"), key(t, &r, "seekers")],
        });
    }
}

/// Table 5: demand and seekers (with no preference) add up; shares; allocations of the
/// no-preference seekers, which add up to them; ratios with the allocation.
fn occupations(p: &PublishedReport, out: &mut Vec<Rel>) {
    let t = "table_5";
    out.push(column_sum(p, t, "demand"));
    out.push(column_sum(p, t, "seekers"));
    shares(p, t, "demand", "demand_share", out);
    let groups: Vec<String> = part_rows(p, t)
        .into_iter()
        .filter(|r| r != "no_preference")
        .collect();
    let no_pref = key(t, "no_preference", "seekers");
    for g in &groups {
        out.push(Rel::Formula {
            cell: key(t, g, "allocated"),
            formula: Formula::Allocation,
            operands: vec![
                key(t, g, "demand"),
                key(t, "total", "demand"),
                no_pref.clone(),
            ],
        });
        out.push(Rel::Formula {
            cell: key(t, g, "ratio"),
            formula: Formula::GroupRatio,
            operands: vec![
                key(t, g, "demand"),
                key(t, g, "seekers"),
                key(t, g, "allocated"),
            ],
        });
    }
    out.push(Rel::Formula {
        cell: key(t, "total", "ratio"),
        formula: Formula::Quotient,
        operands: vec![key(t, "total", "demand"), key(t, "total", "seekers")],
    });
    // Allocated only when there is demand (a withheld total is not zero).
    if get(p, &key(t, "total", "demand")) != Some(Cell::Count(0)) {
        out.push(Rel::Sum {
            parts: groups.iter().map(|g| key(t, g, "allocated")).collect(),
            whole: no_pref,
        });
    }
}

/// Tables 6 and 7: `parts` add up to `whole` in each row, ratio = demand ÷ seekers, rows
/// sorted by gap (largest first, ties by key).
fn gaps(p: &PublishedReport, t: &str, parts: [&str; 2], whole: &str, out: &mut Vec<Rel>) {
    let rows = part_rows(p, t);
    for r in &rows {
        out.push(Rel::Sum {
            parts: parts.iter().map(|c| key(t, r, c)).collect(),
            whole: key(t, r, whole),
        });
        out.push(Rel::Formula {
            cell: key(t, r, "ratio"),
            formula: Formula::Quotient,
            operands: vec![key(t, r, "demand"), key(t, r, "seekers")],
        });
    }
    for pair in rows.windows(2) {
        out.push(Rel::Order {
            greater: key(t, &pair[0], "gap"),
            lesser: key(t, &pair[1], "gap"),
            strict: pair[0] > pair[1],
        });
    }
}

/// Tables 6 and 7 list minor groups; the demand (seekers) of those of one major group
/// is part of the group's demand (seekers) in table 5.
fn minor_groups(p: &PublishedReport, out: &mut Vec<Rel>) {
    let minors: Vec<(&str, String)> = ["table_6", "table_7"]
        .into_iter()
        .flat_map(|t| part_rows(p, t).into_iter().map(move |r| (t, r)))
        .collect();
    for major in part_rows(p, "table_5") {
        let within: Vec<&(&str, String)> = minors
            .iter()
            .filter(|(_, m)| m.split('-').next() == Some(major.as_str()))
            .collect();
        for c in ["demand", "seekers"] {
            if !within.is_empty() {
                out.push(Rel::AtMost {
                    parts: within.iter().map(|(t, m)| key(t, m, c)).collect(),
                    whole: key("table_5", &major, c),
                });
            }
        }
    }
}

/// Totals shown in several tables.
fn same_numbers(p: &PublishedReport, out: &mut Vec<Rel>) {
    let same = [
        (
            "demand",
            [
                "table_2", "table_3", "table_4", "table_5", "table_9", "table_10",
            ]
            .as_slice(),
        ),
        (
            "seekers",
            ["table_5", "table_8", "table_9", "table_10"].as_slice(),
        ),
        ("ratio", ["table_5", "table_9", "table_10"].as_slice()),
    ];
    for (c, tables) in same {
        for t in tables {
            let (a, b) = (key("table_1", "total", c), key(t, "total", c));
            // An empty ratio (no seekers) says nothing.
            if present(p, &a) && present(p, &b) {
                out.push(Rel::Sum {
                    parts: vec![a],
                    whole: b,
                });
            }
        }
    }
}

fn number(c: Option<Cell>) -> Option<f64> {
    match c? {
        Cell::Count(n) => Some(n as f64),
        Cell::Number(x) => Some(x),
        Cell::Suppressed | Cell::Empty => None,
    }
}

fn evaluate(f: Formula, v: &[f64]) -> Option<f64> {
    let at = |i: usize| v.get(i).copied();
    let x = match f {
        Formula::Quotient => at(0)? / at(1)?,
        // Nothing is allocated without demand.
        Formula::Allocation if at(1)? == 0.0 => 0.0,
        Formula::Allocation => at(0)? / at(1)? * at(2)?,
        Formula::GroupRatio => at(0)? / (at(1)? + at(2)?),
    };
    x.is_finite().then_some(x)
}

/// The least and greatest values of `f` over its operands' rounding: a count is exact, a
/// shown number within 0.005 (allocations have two decimals, the rest four).
fn evaluate_rounded(f: Formula, v: &[(f64, bool)]) -> Option<(f64, f64)> {
    let corners = 1usize << v.len();
    let values: Option<Vec<f64>> = (0..corners)
        .map(|corner| {
            let at: Vec<f64> = v
                .iter()
                .enumerate()
                .map(|(i, (x, rounded))| match (rounded, corner >> i & 1) {
                    (false, _) => *x,
                    (true, 0) => x - 0.005,
                    (true, _) => x + 0.005,
                })
                .collect();
            evaluate(f, &at)
        })
        .collect();
    let values = values?;
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lo, hi))
}

/// Whether a formula holds on `truth`: an empty cell where it is undefined, else the
/// shown number within what rounding of the operands and of the cell allows.
fn formula_holds(truth: &PublishedReport, cell: &Key, f: Formula, operands: &[Key]) -> bool {
    let ops: Option<Vec<(f64, bool)>> = operands
        .iter()
        .map(|k| match get(truth, k)? {
            Cell::Count(n) => Some((n as f64, false)),
            Cell::Number(x) => Some((x, true)),
            Cell::Suppressed | Cell::Empty => None,
        })
        .collect();
    let Some(ops) = ops else {
        return false;
    };
    let exact: Vec<f64> = ops.iter().map(|(x, _)| *x).collect();
    match (evaluate(f, &exact), get(truth, cell)) {
        (None, Some(Cell::Empty)) => true,
        (Some(_), Some(Cell::Number(v))) => evaluate_rounded(f, &ops)
            .is_none_or(|(lo, hi)| lo - 0.005 - 1e-9 <= v && v <= hi + 0.005 + 1e-9),
        _ => false,
    }
}

/// The relations that do not hold on `truth` (the report published without
/// suppression), allowing for rounding: a check that the attacker knows true things.
pub(super) fn broken(truth: &PublishedReport, rels: &[Rel]) -> Vec<Rel> {
    let holds = |rel: &Rel| match rel {
        Rel::Sum { parts, whole } => {
            let sum: Option<f64> = parts.iter().map(|k| number(get(truth, k))).sum();
            let tolerance = 0.005 * (parts.len() + 1) as f64 + 1e-9;
            match (sum, number(get(truth, whole))) {
                (Some(s), Some(w)) => (s - w).abs() <= tolerance,
                _ => false,
            }
        }
        Rel::AtMost { parts, whole } => {
            let sum: Option<f64> = parts.iter().map(|k| number(get(truth, k))).sum();
            matches!((sum, number(get(truth, whole))), (Some(s), Some(w)) if s <= w)
        }
        Rel::Formula {
            cell,
            formula,
            operands,
        } => formula_holds(truth, cell, *formula, operands),
        Rel::Order {
            greater,
            lesser,
            strict,
        } => match (number(get(truth, greater)), number(get(truth, lesser))) {
            (Some(g), Some(l)) => g > l || (!strict && g == l),
            _ => false,
        },
    };
    rels.iter().filter(|r| !holds(r)).cloned().collect()
}

/// What the attacker knows of a count: at least `.0`, at most `.1` (`None`: no bound).
type Bound = (u64, Option<u64>);

/// The attacker's knowledge of one report.
struct Attack<'a> {
    truth: &'a PublishedReport,
    known: BTreeSet<Key>,
    bounds: BTreeMap<Key, Bound>,
}

/// The withheld cells of `published` the attacker works out; `truth` is the same report
/// published without suppression (the attacker uses a value only once it has learnt it).
pub(super) fn attack(published: &PublishedReport, truth: &PublishedReport) -> Vec<Key> {
    attack_with(published, truth, &relations(published))
}

/// [`attack`] with the relations given: several reports side by side (a quarter and an
/// earlier one, with the changes between them) and what ties them.
pub(super) fn attack_with(
    published: &PublishedReport,
    truth: &PublishedReport,
    rels: &[Rel],
) -> Vec<Key> {
    let mut a = Attack {
        truth,
        known: BTreeSet::new(),
        bounds: BTreeMap::new(),
    };
    for t in &published.tables {
        for r in &t.rows {
            for (c, cell) in t.columns.iter().zip(&r.cells) {
                let k = key(&t.id, &r.key, &c.key);
                match *cell {
                    // Zeros are never withheld: a withheld count is at least 1.
                    Cell::Suppressed if matches!(get(truth, &k), Some(Cell::Count(_))) => {
                        a.bounds.insert(k, (1, None));
                    }
                    Cell::Suppressed => {}
                    Cell::Count(n) => {
                        a.bounds.insert(k.clone(), (n, Some(n)));
                        a.known.insert(k);
                    }
                    Cell::Number(_) | Cell::Empty => {
                        a.known.insert(k);
                    }
                }
            }
        }
    }
    while a.round(rels) {}
    let mut learnt: Vec<Key> = a
        .known
        .into_iter()
        .filter(|k| get(published, k) == Some(Cell::Suppressed))
        .collect();
    learnt.sort();
    learnt
}

impl Attack<'_> {
    /// Learns `k`: its true value becomes known. True if it was not known.
    fn learn(&mut self, k: &Key) -> bool {
        if let Some(Cell::Count(n)) = get(self.truth, k) {
            self.bounds.insert(k.clone(), (n, Some(n)));
        }
        self.known.insert(k.clone())
    }

    fn unknown<'k>(&self, keys: impl IntoIterator<Item = &'k Key>) -> Vec<&'k Key> {
        keys.into_iter()
            .filter(|k| !self.known.contains(*k))
            .collect()
    }

    /// One round over every relation; true if anything was learnt.
    fn round(&mut self, rels: &[Rel]) -> bool {
        let mut learnt = false;
        for rel in rels {
            learnt |= match rel {
                Rel::Sum { parts, whole } => self.solve_sum(parts, whole),
                Rel::Formula { cell, operands, .. } => self.solve_formula(cell, operands),
                Rel::AtMost { .. } | Rel::Order { .. } => false,
            };
        }
        learnt | self.narrow(rels)
    }

    fn solve_sum(&mut self, parts: &[Key], whole: &Key) -> bool {
        match self.unknown(parts.iter().chain([whole]))[..] {
            [k] => {
                let k = k.clone();
                self.learn(&k)
            }
            _ => false,
        }
    }

    fn solve_formula(&mut self, cell: &Key, operands: &[Key]) -> bool {
        let unknown: Vec<Key> = self.unknown(operands).into_iter().cloned().collect();
        if !self.known.contains(cell) {
            return unknown.is_empty() && self.learn(cell);
        }
        // A zero share or ratio says its numerator is zero, which is shown anyway.
        let nonzero = matches!(get(self.truth, cell), Some(Cell::Number(x)) if x != 0.0);
        match &unknown[..] {
            [k] if nonzero => self.learn(k),
            _ => false,
        }
    }

    /// Tightens count bounds over every count equality and order; learns any count
    /// narrowed to one value.
    fn narrow(&mut self, rels: &[Rel]) -> bool {
        for _ in 0..10_000 {
            let mut moved = false;
            for rel in rels {
                moved |= match rel {
                    Rel::Sum { parts, whole } => self.narrow_sum(parts, whole, true),
                    Rel::AtMost { parts, whole } => self.narrow_sum(parts, whole, false),
                    Rel::Order {
                        greater,
                        lesser,
                        strict,
                    } => self.narrow_order(greater, lesser, *strict),
                    Rel::Formula { .. } => false,
                };
            }
            if !moved {
                break;
            }
        }
        let pinned: Vec<Key> = self
            .bounds
            .iter()
            .filter(|(k, (lo, hi))| *hi == Some(*lo) && !self.known.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        pinned.iter().fold(false, |any, k| self.learn(k) | any)
    }

    fn set(&mut self, k: &Key, lo: u64, hi: Option<u64>) -> bool {
        let Some(&(old_lo, old_hi)) = self.bounds.get(k) else {
            return false;
        };
        let new_hi = match (old_hi, hi) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let new = (old_lo.max(lo), new_hi);
        self.bounds.insert(k.clone(), new);
        new != (old_lo, old_hi)
    }

    /// `exact`: the parts add up to the whole; else to at most the whole.
    fn narrow_sum(&mut self, parts: &[Key], whole: &Key, exact: bool) -> bool {
        let b: Option<Vec<Bound>> = parts.iter().map(|k| self.bounds.get(k).copied()).collect();
        let (Some(b), Some(&(w_lo, w_hi))) = (b, self.bounds.get(whole)) else {
            return false; // not an equality between counts
        };
        let lo: u64 = b.iter().map(|x| x.0).sum();
        let hi: Option<u64> = b.iter().map(|x| x.1).sum();
        let mut moved = self.set(whole, lo, hi.filter(|_| exact));
        for (k, (p_lo, p_hi)) in parts.iter().zip(&b) {
            let rest_lo = lo - p_lo;
            let rest_hi = hi.and_then(|h| Some(h - (*p_hi)?));
            let new_lo = rest_hi
                .filter(|_| exact)
                .map_or(0, |r| w_lo.saturating_sub(r));
            let new_hi = w_hi.map(|w| w.saturating_sub(rest_lo));
            moved |= self.set(k, new_lo, new_hi);
        }
        moved
    }

    fn narrow_order(&mut self, greater: &Key, lesser: &Key, strict: bool) -> bool {
        let (Some(&(_, g_hi)), Some(&(l_lo, _))) =
            (self.bounds.get(greater), self.bounds.get(lesser))
        else {
            return false;
        };
        let step = u64::from(strict);
        let up = self.set(greater, l_lo + step, None);
        let down = self.set(lesser, 0, g_hi.map(|h| h.saturating_sub(step)));
        up | down
    }
}

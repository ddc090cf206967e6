//! Small-cell suppression of the published tables, so that no withheld count can be
//! worked out from what is shown (`docs/reference/metrics.md`, "Small-cell
//! suppression"):
//!
//! 1. *Primary*: every count from 1 to `below − 1` is withheld ([`Cell::Suppressed`]).
//! 2. *Derived*: a computed cell (share, ratio, gap, allocation) is withheld when any
//!    count it is computed from is, in whatever row or table that count lies.
//! 3. *Complementary*: while some equality or ordering of [`Relations`] pins a withheld
//!    count to one value, given what is shown and that a withheld count is at least 1,
//!    the smallest shown non-zero count of that relation is withheld too (first in
//!    relation order on a tie, so the total last), and step 2 runs again.
//!
//! Step 3 finds a pinned count by tightening bounds: a shown count is its value, a
//! withheld one lies in [1, ∞), and each equality (parts add up to the whole) or ordering
//! narrows the bounds of its cells until nothing changes. One withheld cell in an
//! equality is pinned at once (total minus the rest); so are two withheld cells adding up
//! to 2, or a withheld gap between two equal shown gaps. Zeros are never withheld: when
//! the other cells of an equality are shown zeros, its total is the smallest non-zero
//! cell and goes, with the same number in the other tables.

use std::collections::{BTreeMap, BTreeSet};

use super::publish::{Cell, PublishedTable};
use super::relations::{CellRef, Order, Relations, Sum};

/// Most rounds of bound tightening per check. Bounds of report-sized tables settle in a
/// few rounds; the cap only keeps a pathological cycle from running long.
const MAX_PASSES: usize = 1_000;

/// Applies primary, derived and complementary suppression to `tables`; counts from 1
/// to `below − 1` are small (none when `below` ≤ 1).
pub(super) fn suppress(tables: &mut [PublishedTable], below: u64) {
    if below <= 1 {
        return;
    }
    let relations = Relations::of(tables);
    hide_small(tables, &relations, below);
    loop {
        hide_derived(tables, &relations);
        match complementary(tables, &relations) {
            Some(c) => hide(tables, c),
            None => break,
        }
    }
}

fn cell(tables: &[PublishedTable], c: CellRef) -> Cell {
    tables
        .get(c.table)
        .and_then(|t| t.rows.get(c.row))
        .and_then(|r| r.cells.get(c.col))
        .copied()
        .unwrap_or(Cell::Empty)
}

fn hide(tables: &mut [PublishedTable], c: CellRef) {
    let slot = tables
        .get_mut(c.table)
        .and_then(|t| t.rows.get_mut(c.row))
        .and_then(|r| r.cells.get_mut(c.col));
    // An empty cell says nothing, so it stays empty.
    if let Some(slot) = slot.filter(|s| **s != Cell::Empty) {
        *slot = Cell::Suppressed;
    }
}

fn is_hidden(tables: &[PublishedTable], c: CellRef) -> bool {
    cell(tables, c) == Cell::Suppressed
}

/// Step 1: the small counts (computed cells are judged by their operands instead).
fn hide_small(tables: &mut [PublishedTable], relations: &Relations, below: u64) {
    let derived: BTreeSet<CellRef> = relations.derived.iter().map(|d| d.cell).collect();
    for (table, t) in tables.iter_mut().enumerate() {
        for (row, r) in t.rows.iter_mut().enumerate() {
            for (col, slot) in r.cells.iter_mut().enumerate() {
                let small = matches!(slot, Cell::Count(n) if *n > 0 && *n < below);
                if small && !derived.contains(&CellRef { table, row, col }) {
                    *slot = Cell::Suppressed;
                }
            }
        }
    }
}

/// Step 2: computed cells of withheld counts.
fn hide_derived(tables: &mut [PublishedTable], relations: &Relations) {
    for d in &relations.derived {
        if d.from.iter().any(|&c| is_hidden(tables, c)) {
            hide(tables, d.cell);
        }
    }
}

/// Step 3: the next count to withhold, if a withheld one is pinned. Among the relations
/// holding a pinned cell, one that pins it from its other cells comes first, then the
/// one with the fewest withheld cells (the cause, rather than a relation that only
/// repeats it), then the first in relation order.
fn complementary(tables: &[PublishedTable], relations: &Relations) -> Option<CellRef> {
    let bounds = Bounds::settle(tables, relations);
    let pinned = |c: &CellRef| is_hidden(tables, *c) && bounds.is_point(*c);
    let fixed = |c: &CellRef| !is_hidden(tables, *c) || bounds.is_point(*c);
    let constraints: Vec<Vec<CellRef>> = relations
        .sums
        .iter()
        .map(|s| s.cells().collect())
        .chain(relations.orders.iter().map(|o| vec![o.greater, o.lesser]))
        .collect();
    let mut pinning: Vec<(bool, usize, &[CellRef])> = constraints
        .iter()
        .filter(|cells| cells.iter().any(pinned))
        .map(|cells| {
            let hidden = cells.iter().filter(|c| is_hidden(tables, **c)).count();
            (!cells.iter().all(fixed), hidden, cells.as_slice())
        })
        .collect();
    // Stable: equal keys keep relation order.
    pinning.sort_by_key(|(open, hidden, _)| (*open, *hidden));
    pinning
        .into_iter()
        .find_map(|(_, _, cells)| smallest_shown(tables, cells))
}

/// The smallest shown non-zero count among `cells`, the first one on a tie.
fn smallest_shown(tables: &[PublishedTable], cells: &[CellRef]) -> Option<CellRef> {
    cells
        .iter()
        .filter_map(|&c| match cell(tables, c) {
            Cell::Count(n) if n > 0 => Some((n, c)),
            _ => None,
        })
        .min_by_key(|(n, _)| *n)
        .map(|(_, c)| c)
}

/// What a reader can tell of a count: at least `lo`, at most `hi` (`None`: no bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    lo: u64,
    hi: Option<u64>,
}

/// The bounds of every cell in an equality or ordering, tightened until they settle.
struct Bounds {
    ranges: BTreeMap<CellRef, Range>,
}

impl Bounds {
    fn settle(tables: &[PublishedTable], relations: &Relations) -> Bounds {
        let cells = relations
            .sums
            .iter()
            .flat_map(Sum::cells)
            .chain(relations.orders.iter().flat_map(|o| [o.greater, o.lesser]));
        let ranges = cells
            .map(|c| {
                let range = match cell(tables, c) {
                    Cell::Count(n) => Range { lo: n, hi: Some(n) },
                    // Zeros are never withheld, so a withheld count is at least 1.
                    Cell::Suppressed => Range { lo: 1, hi: None },
                    Cell::Number(_) | Cell::Empty => Range { lo: 0, hi: None },
                };
                (c, range)
            })
            .collect();
        let mut bounds = Bounds { ranges };
        for _ in 0..MAX_PASSES {
            let sums = relations.sums.iter().map(|s| bounds.tighten_sum(s));
            let mut changed = sums.fold(false, |a, b| a | b);
            for o in &relations.orders {
                changed |= bounds.tighten_order(o);
            }
            if !changed {
                break;
            }
        }
        bounds
    }

    fn get(&self, c: CellRef) -> Range {
        self.ranges
            .get(&c)
            .copied()
            .unwrap_or(Range { lo: 0, hi: None })
    }

    fn is_point(&self, c: CellRef) -> bool {
        let r = self.get(c);
        r.hi == Some(r.lo)
    }

    /// Raises the lower bound to `lo` and lowers the upper to `hi`; true if either moved.
    fn narrow(&mut self, c: CellRef, lo: u64, hi: Option<u64>) -> bool {
        let old = self.get(c);
        let new = Range {
            lo: old.lo.max(lo),
            hi: match (old.hi, hi) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        };
        self.ranges.insert(c, new);
        new != old
    }

    /// The whole lies between the sums of the parts' bounds; each part between the
    /// whole's bounds less the others' (only upper bounds for an inexact sum).
    fn tighten_sum(&mut self, s: &Sum) -> bool {
        let parts: Vec<Range> = s.parts.iter().map(|&c| self.get(c)).collect();
        let lo = parts.iter().fold(0u64, |a, r| a.saturating_add(r.lo));
        let hi = parts
            .iter()
            .try_fold(0u64, |a, r| r.hi.and_then(|h| a.checked_add(h)));
        // A sum bounded by the whole gives the whole a floor, and each part a ceiling.
        let mut changed = self.narrow(s.whole, lo, hi.filter(|_| s.exact));
        let whole = self.get(s.whole);
        for (&c, r) in s.parts.iter().zip(&parts) {
            let others_lo = lo.saturating_sub(r.lo);
            let others_hi = hi.zip(r.hi).map(|(h, own)| h.saturating_sub(own));
            let others_hi = others_hi.filter(|_| s.exact);
            let part_lo = others_hi.map_or(0, |o| whole.lo.saturating_sub(o));
            let part_hi = whole.hi.map(|w| w.saturating_sub(others_lo));
            changed |= self.narrow(c, part_lo, part_hi);
        }
        changed
    }

    fn tighten_order(&mut self, o: &Order) -> bool {
        let step = u64::from(o.strict);
        let (greater, lesser) = (self.get(o.greater), self.get(o.lesser));
        let raised = self.narrow(o.greater, lesser.lo.saturating_add(step), None);
        let lowered = self.narrow(o.lesser, 0, greater.hi.map(|h| h.saturating_sub(step)));
        raised | lowered
    }
}

//! Differencing across quarters: a reader holding a quarter's report with its change
//! columns and the earlier quarter's report works out no withheld count of either.
//! The attacker sees both reports side by side (the earlier one's tables renamed
//! `earlier:…`), every relation of each, and each shown change as an equation tying
//! the two cells it compares (one of the three known gives the third).

use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

use super::attacker::{self, Key, Rel};
use super::disclosure_tests::{city, config, tier_report};
use super::*;

const EARLIER: &str = "earlier:";

fn renamed_key((t, r, c): &Key) -> Key {
    (format!("{EARLIER}{t}"), r.clone(), c.clone())
}

fn renamed_rel(rel: &Rel) -> Rel {
    let all = |keys: &[Key]| keys.iter().map(renamed_key).collect::<Vec<_>>();
    match rel {
        Rel::Sum { parts, whole } => Rel::Sum {
            parts: all(parts),
            whole: renamed_key(whole),
        },
        Rel::AtMost { parts, whole } => Rel::AtMost {
            parts: all(parts),
            whole: renamed_key(whole),
        },
        Rel::Formula {
            cell,
            formula,
            operands,
        } => Rel::Formula {
            cell: renamed_key(cell),
            formula: *formula,
            operands: all(operands),
        },
        Rel::Order {
            greater,
            lesser,
            strict,
        } => Rel::Order {
            greater: renamed_key(greater),
            lesser: renamed_key(lesser),
            strict: *strict,
        },
    }
}

/// `now` (with its changes against `earlier`) and `earlier` as one report.
fn side_by_side(now: &PublishedReport, earlier: &PublishedReport) -> PublishedReport {
    let mut both = now.clone();
    both.tables
        .extend(earlier.tables.iter().map(|t| PublishedTable {
            id: format!("{EARLIER}{}", t.id),
            ..t.clone()
        }));
    both
}

/// Every relation of both reports, and one per shown change: the change and either
/// cell it compares give the other.
fn relations(now: &PublishedReport, earlier: &PublishedReport) -> Vec<Rel> {
    let mut rels = attacker::relations(now);
    rels.extend(attacker::relations(earlier).iter().map(renamed_rel));
    for t in &now.tables {
        for r in &t.rows {
            for (c, cell) in t.columns.iter().zip(&r.cells) {
                let Some(change) = &c.change else { continue };
                if matches!(cell, Cell::Number(_)) {
                    let base = (t.id.clone(), r.key.clone(), change.of.clone());
                    rels.push(Rel::Sum {
                        parts: vec![
                            renamed_key(&base),
                            (t.id.clone(), r.key.clone(), c.key.clone()),
                        ],
                        whole: base,
                    });
                }
            }
        }
    }
    rels
}

/// A shown change with a withheld cell on either side.
fn leaking_change(now: &PublishedReport, earlier: &PublishedReport) -> Option<String> {
    for t in &now.tables {
        for r in &t.rows {
            for (c, cell) in t.columns.iter().zip(&r.cells) {
                let Some(change) = &c.change else { continue };
                if change.against != Against::PreviousQuarter {
                    continue; // compared against no report here: empty
                }
                let key = (t.id.clone(), r.key.clone(), change.of.clone());
                let sides = [attacker::get(now, &key), attacker::get(earlier, &key)];
                let shown = matches!(cell, Cell::Number(_));
                if shown && sides.contains(&Some(Cell::Suppressed)) {
                    return Some(format!("{} {} {} = {cell:?}", t.id, r.key, c.key));
                }
            }
        }
    }
    None
}

/// Publishes the pair, compares, and attacks both at once.
fn check(now: &QuarterlyReport, earlier: &QuarterlyReport, below: u64) -> Result<(), String> {
    let earlier_published = earlier.publish(below);
    let mut published = now.publish(below);
    published.compare(Some(&earlier_published), None);
    if let Some(leak) = leaking_change(&published, &earlier_published) {
        return Err(format!("a change shows with a withheld cell: {leak}"));
    }
    let earlier_truth = earlier.publish(0);
    let mut truth = now.publish(0);
    truth.compare(Some(&earlier_truth), None);
    let rels = relations(&published, &earlier_published);
    let seen = side_by_side(&published, &earlier_published);
    let learnt = attacker::attack_with(&seen, &side_by_side(&truth, &earlier_truth), &rels);
    if learnt.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "withheld cells worked out by differencing: {learnt:?}"
        ))
    }
}

/// Random pairs of quarters at every tier: neither quarter's withheld counts can be
/// worked out from the two reports and the changes between them. Prints the figures.
#[test]
fn no_pair_of_quarters_gives_a_withheld_cell_away() {
    let mut config = config();
    // Two reports per case: half the cases of the single-report test.
    config.cases = config.cases.div_ceil(2);
    let seed = config.rng_seed;
    let below = prop_oneof![6 => Just(5u64), 1 => 2u64..=10];
    let quarter = || prop::collection::vec(city(), 3);
    let strategy = (0u8..3, quarter(), quarter(), below);
    let start = Instant::now();
    let cases = std::cell::Cell::new(0usize);
    let result = TestRunner::new(config).run(&strategy, |(tier, now, earlier, below)| {
        cases.set(cases.get() + 1);
        check(
            &tier_report(tier, &now),
            &tier_report(tier, &earlier),
            below,
        )
        .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e} (seed {seed}; replay with PROPTEST_RNG_SEED)");
    }
    println!(
        "quarter pairs: cases={} seed={seed}; worked out 0; elapsed_ms={}",
        cases.get(),
        start.elapsed().as_millis()
    );
}

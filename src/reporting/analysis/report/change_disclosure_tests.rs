//! Differencing across quarters: a reader holding a quarter's report with its change
//! columns and the reports of the previous quarter and of the same quarter a year
//! before works out no withheld count of any. The attacker sees the three side by side
//! (the earlier ones' tables renamed `previous:…` and `year_ago:…`), every relation of
//! each, and each shown change as an equation tying the two cells it compares (any two
//! known give the third).

use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

use super::attacker::{self, Key, Rel};
use super::disclosure_tests::{city, config, tier_report};
use super::*;

/// The earlier reports' table prefixes, by what a change compares against.
fn prefix(against: Against) -> &'static str {
    match against {
        Against::PreviousQuarter => "previous:",
        Against::SameQuarterLastYear => "year_ago:",
    }
}

const BOTH: [Against; 2] = [Against::PreviousQuarter, Against::SameQuarterLastYear];

fn renamed_key(prefix: &str, (t, r, c): &Key) -> Key {
    (format!("{prefix}{t}"), r.clone(), c.clone())
}

fn renamed_rel(prefix: &str, rel: &Rel) -> Rel {
    let one = |k: &Key| renamed_key(prefix, k);
    let all = |keys: &[Key]| keys.iter().map(one).collect::<Vec<_>>();
    match rel {
        Rel::Sum { parts, whole } => Rel::Sum {
            parts: all(parts),
            whole: one(whole),
        },
        Rel::AtMost { parts, whole } => Rel::AtMost {
            parts: all(parts),
            whole: one(whole),
        },
        Rel::Formula {
            cell,
            formula,
            operands,
        } => Rel::Formula {
            cell: one(cell),
            formula: *formula,
            operands: all(operands),
        },
        Rel::Order {
            greater,
            lesser,
            strict,
        } => Rel::Order {
            greater: one(greater),
            lesser: one(lesser),
            strict: *strict,
        },
    }
}

/// `now` (with its changes) and the earlier reports as one report.
fn side_by_side(now: &PublishedReport, earlier: [&PublishedReport; 2]) -> PublishedReport {
    let mut all = now.clone();
    for (against, e) in BOTH.into_iter().zip(earlier) {
        all.tables.extend(e.tables.iter().map(|t| PublishedTable {
            id: format!("{}{}", prefix(against), t.id),
            ..t.clone()
        }));
    }
    all
}

/// Every relation of the three reports, and one per shown change: the change and
/// either cell it compares give the other.
fn relations(now: &PublishedReport, earlier: [&PublishedReport; 2]) -> Vec<Rel> {
    let mut rels = attacker::relations(now);
    for (against, e) in BOTH.into_iter().zip(earlier) {
        let renamed = attacker::relations(e);
        rels.extend(renamed.iter().map(|r| renamed_rel(prefix(against), r)));
    }
    for t in &now.tables {
        for r in &t.rows {
            for (c, cell) in t.columns.iter().zip(&r.cells) {
                let Some(change) = &c.change else { continue };
                if matches!(cell, Cell::Number(_)) {
                    let base = (t.id.clone(), r.key.clone(), change.of.clone());
                    let then = renamed_key(prefix(change.against), &base);
                    let shown = (t.id.clone(), r.key.clone(), c.key.clone());
                    rels.push(Rel::Sum {
                        parts: vec![then, shown],
                        whole: base,
                    });
                }
            }
        }
    }
    rels
}

/// A shown change with a withheld cell on either side.
fn leaking_change(now: &PublishedReport, earlier: [&PublishedReport; 2]) -> Option<String> {
    for t in &now.tables {
        for r in &t.rows {
            for (c, cell) in t.columns.iter().zip(&r.cells) {
                let Some(change) = &c.change else { continue };
                let then = match change.against {
                    Against::PreviousQuarter => earlier[0],
                    Against::SameQuarterLastYear => earlier[1],
                };
                let key = (t.id.clone(), r.key.clone(), change.of.clone());
                let sides = [attacker::get(now, &key), attacker::get(then, &key)];
                let shown = matches!(cell, Cell::Number(_));
                if shown && sides.contains(&Some(Cell::Suppressed)) {
                    return Some(format!("{} {} {} = {cell:?}", t.id, r.key, c.key));
                }
            }
        }
    }
    None
}

/// Publishes P, P−1 and P−4, compares, and attacks the three at once.
fn check(reports: [&QuarterlyReport; 3], below: u64) -> Result<(), String> {
    let [now, previous, year_ago] = reports;
    let (p, y) = (previous.publish(below), year_ago.publish(below));
    let mut published = now.publish(below);
    published.compare(Some(&p), Some(&y));
    if let Some(leak) = leaking_change(&published, [&p, &y]) {
        return Err(format!("a change shows with a withheld cell: {leak}"));
    }
    let (pt, yt) = (previous.publish(0), year_ago.publish(0));
    let mut truth = now.publish(0);
    truth.compare(Some(&pt), Some(&yt));
    let rels = relations(&published, [&p, &y]);
    let seen = side_by_side(&published, [&p, &y]);
    let learnt = attacker::attack_with(&seen, &side_by_side(&truth, [&pt, &yt]), &rels);
    if learnt.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "withheld cells worked out by differencing: {learnt:?}"
        ))
    }
}

/// Random quarters P, P−1 and P−4 at every tier: no quarter's withheld counts can be
/// worked out from the three reports and the changes between them. Prints the figures.
#[test]
fn no_three_quarters_give_a_withheld_cell_away() {
    let mut config = config();
    // Three reports per case: a third of the cases of the single-report test.
    config.cases = config.cases.div_ceil(3);
    let seed = config.rng_seed;
    let below = prop_oneof![6 => Just(5u64), 1 => 2u64..=10];
    let quarter = || prop::collection::vec(city(), 3);
    let strategy = (0u8..3, [quarter(), quarter(), quarter()], below);
    let start = Instant::now();
    let cases = std::cell::Cell::new(0usize);
    let result = TestRunner::new(config).run(&strategy, |(tier, quarters, below)| {
        cases.set(cases.get() + 1);
        let [now, previous, year_ago] = quarters.map(|q| tier_report(tier, &q));
        check([&now, &previous, &year_ago], below).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e} (seed {seed}; replay with PROPTEST_RNG_SEED)");
    }
    println!(
        "quarters P, P-1, P-4: cases={} seed={seed}; worked out 0; elapsed_ms={}",
        cases.get(),
        start.elapsed().as_millis()
    );
}

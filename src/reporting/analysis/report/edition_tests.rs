//! Tests of reports in the edition in force: chained mapping, merged rows, splits to
//! their primary target, moves between major groups, the scope's division code, and
//! which mapped counts are published.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::core::model::crosswalk::{Editions, Relation};
use crate::reporting::analysis::tests::{code, q3};

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| ((*k).to_string(), *n)).collect()
}

/// Demand 40: 6-04-01 ×10, 6-04-02 ×12, 4-01-01 ×9, 2-02-07 ×9 (majors 6: 22, 4: 9,
/// 2: 9). Seekers 14: 6-04-01 ×`s1`, 6-04-02 ×6, 2-02-07 ×3 (majors 6: 6 + s1, 2: 3).
fn counts(s1: u64) -> ReportCounts {
    let mut c = ReportCounts::new(Scope::City(code("142200")), q3(), CountBasis::ValidInPeriod);
    c.cities.insert(code("142200"));
    c.demand.new_in_period = 40;
    c.seekers.new_in_period = 9 + s1;
    c.demand_by_major = map(&[("6", 22), ("4", 9), ("2", 9)]);
    c.demand_by_minor = map(&[
        ("6-04-01", 10),
        ("6-04-02", 12),
        ("4-01-01", 9),
        ("2-02-07", 9),
    ]);
    c.seekers_by_major = map(&[("6", 6 + s1), ("2", 3)]);
    c.seekers_by_minor = map(&[("6-04-01", s1), ("6-04-02", 6), ("2-02-07", 3)]);
    c
}

/// 1999 → 2015: two minors merged into 6-18-01; 2-02-07 split, its primary target
/// (largest share) 6-30-01 in another major group. 2015 → 2022: 6-18-01 renamed 6-20-01.
/// CN-DIV 199912 → 200012: 142200 → 140900.
fn editions() -> Editions {
    let occ = json!({"scheme": "CN-OCC", "from_version": "1999", "to_version": "2015",
        "effective_date": "2015-07-29", "entries": [
            {"from": "6-04-01", "to": "6-18-01", "relation": "mergedInto"},
            {"from": "6-04-02", "to": "6-18-01", "relation": "mergedInto"},
            {"from": "2-02-07", "to": "2-02-08", "relation": "splitInto", "share": 0.3},
            {"from": "2-02-07", "to": "6-30-01", "relation": "splitInto", "share": 0.7}]});
    let later = json!({"scheme": "CN-OCC", "from_version": "2015", "to_version": "2022",
        "effective_date": "2022-09-28", "entries": [
            {"from": "6-18-01", "to": "6-20-01", "relation": "exact", "name": "机械加工人员"}]});
    let div = json!({"scheme": "CN-DIV", "from_version": "199912", "to_version": "200012",
        "effective_date": "2000-12-31", "entries": [
            {"from": "142200", "to": "140900", "relation": "replacedBy", "name": "忻州市"}]});
    let bodies = [later.to_string(), div.to_string(), occ.to_string()];
    Editions::of(
        bodies.iter().map(String::as_str),
        "2024-01-01".parse().unwrap(),
    )
}

fn gap(rows: &[GapRow], code: &str) -> Option<(u64, u64)> {
    rows.iter()
        .find(|r| r.code == code)
        .map(|r| (r.demand, r.seekers))
}

fn major(r: &QuarterlyReport, code: &str) -> (u64, u64) {
    let row = r
        .by_occupation
        .rows
        .iter()
        .find(|r| r.code == code)
        .unwrap();
    (row.demand, row.seekers)
}

#[test]
fn rows_mapping_to_one_code_merge_through_the_chain_and_splits_go_to_the_primary_target() {
    let r = counts(5).build_in_edition(&editions());
    // 6-04-01 and 6-04-02 → 6-18-01 → 6-20-01: demand 10 + 12 = 22, seekers 5 + 6 = 11.
    assert_eq!(gap(&r.shortages, "6-20-01"), Some((22, 11)));
    assert_eq!(
        r.shortages
            .iter()
            .find(|g| g.code == "6-20-01")
            .unwrap()
            .label
            .zh,
        "机械加工人员"
    );
    // 2-02-07 wholly to 6-30-01 (share 0.7): demand 9, seekers 3.
    assert_eq!(gap(&r.shortages, "6-30-01"), Some((9, 3)));
    assert_eq!(gap(&r.shortages, "2-02-08"), None);
    assert_eq!(gap(&r.shortages, "4-01-01"), Some((9, 0)));
    for old in ["6-04-01", "6-04-02", "2-02-07"] {
        assert_eq!(gap(&r.shortages, old), None, "{old}");
    }
    // Major groups: 2-02-07's counts move from 2 to 6: 22 + 9 = 31 and 11 + 3 = 14.
    assert_eq!(major(&r, "6"), (31, 14));
    assert_eq!(major(&r, "2"), (0, 0));
    assert_eq!(major(&r, "4"), (9, 0));
    assert_eq!(r.overall.demand.total(), 40, "totals never change");
    // The scope by its code in force.
    assert_eq!(r.scope, Scope::City(code("140900")));
    assert_eq!(r.scope_label, "140900 忻州市 (recorded as 142200)");
    // What was mapped.
    let first = r.mapped.iter().find(|m| m.from == "6-04-01").unwrap();
    assert_eq!(
        (
            first.level,
            first.to.as_str(),
            first.relation,
            first.demand,
            first.seekers
        ),
        (MappedLevel::Minor, "6-20-01", Relation::MergedInto, 10, 5)
    );
    let split = r.mapped.iter().find(|m| m.from == "2-02-07").unwrap();
    assert_eq!(
        (split.to.as_str(), split.relation, split.demand),
        ("6-30-01", Relation::SplitInto, 9)
    );
    assert!(
        r.mapped
            .iter()
            .any(|m| m.level == MappedLevel::Division && m.to == "140900")
    );
    assert_eq!(
        r.edition.as_ref().unwrap().occupation.as_deref(),
        Some("2022")
    );
    // In the recorded codes nothing moves.
    let recorded = counts(5).build();
    assert_eq!(gap(&recorded.shortages, "6-04-02"), Some((12, 6)));
    assert!(recorded.mapped.is_empty() && recorded.edition.is_none());
}

#[test]
fn a_mapped_count_is_published_only_when_no_small_part_can_be_worked_out() {
    let published = counts(5).build_in_edition(&editions()).publish(5);
    let m = |from: &str| {
        published
            .mapped
            .iter()
            .find(|m| m.from == from)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (m("6-04-01").demand, m("6-04-01").seekers),
        (Cell::Count(10), Cell::Count(5))
    );
    assert_eq!(m("6-04-02").seekers, Cell::Count(6));
    // 2-02-07's 3 seekers are a small count: withheld (the row's cell is withheld too).
    assert_eq!(m("2-02-07").seekers, Cell::Suppressed);
    assert_eq!(m("2-02-07").demand, Cell::Count(9));
    assert!(published.notes.iter().any(|n| n
        == "edition in force: CN-OCC 6-04-02 → 6-20-01 (mergedInto): demand 12, job seekers 6"));
    // One merged part small (2 of 8 seekers): the row may be shown, but each part would
    // give the other away by difference, so both are withheld.
    let published = counts(2).build_in_edition(&editions()).publish(5);
    let m = |from: &str| {
        published
            .mapped
            .iter()
            .find(|m| m.from == from)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (m("6-04-01").seekers, m("6-04-02").seekers),
        (Cell::Suppressed, Cell::Suppressed)
    );
    assert_eq!(m("6-04-02").demand, Cell::Count(12));
    // The JSON reads back.
    let text = render_json(&published).unwrap();
    let back: PublishedReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, published);
}

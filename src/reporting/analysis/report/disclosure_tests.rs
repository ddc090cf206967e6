//! Tests that no withheld cell of a published report can be worked out: the attacker
//! (`attacker`) against hand-made reports reproducing the attacks found (allocations
//! adding up to a withheld count, a lone withheld cell, table 1's carried over + new,
//! two withheld ones, a withheld gap between equal gaps, a note's figure), against
//! random reports of small counts at every tier (a property test), and against the
//! CSV, text, HTML and JSON renderings read back.

use std::cell::RefCell;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};
use serde_json::Value;

use super::attacker::{self, Key};
use super::labels;
use super::relations::Relations;
use super::tests::parse_csv;
use super::*;
use crate::core::model::kinds::SkillLevel;
use crate::reporting::analysis::tests::{code, day, q3, seeker, vacancy};

/// A vacancy: headcount, industry, employer type (`None`: unknown), occupation, carried
/// over from before the quarter.
#[derive(Debug, Clone)]
pub(super) struct Vac(u32, String, Option<String>, String, bool);

/// A job seeker: category (index into the report's order), first preference, carried.
#[derive(Debug, Clone)]
pub(super) struct Seek(usize, Option<String>, bool);

pub(super) fn v(headcount: u32, industry: &str, employer: &str, occupation: &str) -> Vac {
    let employer = (employer != "unknown").then(|| employer.to_string());
    Vac(
        headcount,
        industry.into(),
        employer,
        occupation.into(),
        false,
    )
}

/// `n` seekers of category `category` (a report key) wanting `first`.
fn s(n: usize, category: &str, first: Option<&str>) -> Vec<Seek> {
    let i = labels::seeker_categories()
        .iter()
        .position(|(_, k, _)| *k == category)
        .unwrap();
    vec![Seek(i, first.map(String::from), false); n]
}

/// Two eastern cities of one province and a western one (the national report has
/// its regional table).
const CITIES: [&str; 3] = ["440100", "440300", "610100"];

fn city_counts(city: &str, vacs: &[Vac], seekers: &[Seek]) -> ReportCounts {
    let start = |carried: bool| day(if carried { "2024-06-01" } else { "2024-07-15" });
    let mut c = ReportCounts::new(Scope::City(code(city)), q3(), CountBasis::ValidInPeriod);
    c.cities.insert(code(city));
    for Vac(headcount, industry, employer, occupation, carried) in vacs {
        let mut r = vacancy();
        (r.headcount, r.industry) = (*headcount, industry.clone());
        (r.occupation, r.valid_from) = (occupation.clone(), start(*carried));
        // Table 9 takes its level from the headcount, so random reports fill it too.
        r.skill_level_min = skill(*headcount as usize);
        c.add_vacancy(&r, employer.as_deref());
    }
    for (i, Seek(category, first, carried)) in seekers.iter().enumerate() {
        let desired: Vec<&str> = first.iter().map(String::as_str).collect();
        let category = labels::seeker_categories()[*category].0;
        let mut r = seeker(u16::try_from(i).unwrap(), &desired, category);
        r.registered_on = start(*carried);
        r.skill_level = skill(category as usize);
        c.add_seeker(&r);
    }
    c
}

/// A skill level, or none, picked by `n`.
fn skill(n: usize) -> Option<SkillLevel> {
    SkillLevel::ALL
        .get(n % (SkillLevel::ALL.len() + 1))
        .copied()
}

/// The report of one city (tier 0), of province 440000 (tier 1: the first two cities)
/// or of the nation (tier 2: all three).
pub(super) fn tier_report(tier: u8, cities: &[(Vec<Vac>, Vec<Seek>)]) -> QuarterlyReport {
    tier_counts(tier, cities).build()
}

fn tier_counts(tier: u8, cities: &[(Vec<Vac>, Vec<Seek>)]) -> ReportCounts {
    let counts = |i: usize| city_counts(CITIES[i], &cities[i].0, &cities[i].1);
    let (scope, n) = match tier {
        0 => return counts(0),
        1 => (Scope::Province(code("440000")), 2),
        _ => (Scope::National, 3),
    };
    let mut all = ReportCounts::new(scope, q3(), CountBasis::ValidInPeriod);
    for i in 0..n.min(cities.len()) {
        all.merge(&counts(i)).unwrap();
    }
    all
}

pub(super) fn city_report(vacs: &[Vac], seekers: &[Seek]) -> QuarterlyReport {
    city_counts(CITIES[0], vacs, seekers).build()
}

pub(super) fn cell(p: &PublishedReport, table: &str, row: &str, column: &str) -> Cell {
    attacker::get(p, &(table.into(), row.into(), column.into())).unwrap()
}

/// What was withheld, by kind.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Withheld {
    /// Small counts.
    primary: usize,
    /// Counts of `below` or more withheld so as not to give a small one away.
    complementary: usize,
    /// Computed cells (shares, ratios, gaps, allocations).
    derived: usize,
}

impl Withheld {
    fn add(&mut self, o: Withheld) {
        self.primary += o.primary;
        self.complementary += o.complementary;
        self.derived += o.derived;
    }
}

/// Publishes `r`, checks the suppression and attacks it; what was withheld, or why not.
fn check(r: &QuarterlyReport, below: u64) -> Result<Withheld, String> {
    let (published, truth) = (r.publish(below), r.publish(0));
    let broken = attacker::broken(&truth, &attacker::relations(&truth));
    if !broken.is_empty() {
        return Err(format!("the attacker's relations do not hold: {broken:?}"));
    }
    let withheld = tally(&published, &truth, below)?;
    let learnt = attacker::attack(&published, &truth);
    if !learnt.is_empty() {
        return Err(format!(
            "withheld cells worked out: {}",
            show(&learnt, &truth)
        ));
    }
    Ok(withheld)
}

fn show(keys: &[Key], truth: &PublishedReport) -> String {
    let each = keys
        .iter()
        .map(|k| format!("{k:?} = {:?}", attacker::get(truth, k)));
    each.collect::<Vec<_>>().join(", ")
}

/// Counts what was withheld, checking that every small count was, no zero was and
/// every shown cell is the true one.
fn tally(
    published: &PublishedReport,
    truth: &PublishedReport,
    below: u64,
) -> Result<Withheld, String> {
    let mut w = Withheld::default();
    for (t, raw) in published.tables.iter().zip(&truth.tables) {
        for (r, raw_row) in t.rows.iter().zip(&raw.rows) {
            for ((c, col), raw_cell) in r.cells.iter().zip(&t.columns).zip(&raw_row.cells) {
                let at = format!("{}/{}/{}", t.id, r.key, col.key);
                let count = col.derived_from.is_empty();
                match (*c, *raw_cell) {
                    (Cell::Suppressed, Cell::Count(0)) => {
                        return Err(format!("zero withheld: {at}"));
                    }
                    (Cell::Suppressed, Cell::Count(n)) if count && n < below => w.primary += 1,
                    (Cell::Suppressed, _) if count => w.complementary += 1,
                    (Cell::Suppressed, _) => w.derived += 1,
                    (shown, Cell::Count(n)) if count && n > 0 && n < below => {
                        return Err(format!("small count shown: {at} = {shown:?}"));
                    }
                    (shown, raw) if shown != raw => {
                        return Err(format!("{at}: {shown:?} ≠ {raw:?}"));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(w)
}

pub(super) fn assert_safe(r: &QuarterlyReport) -> Withheld {
    check(r, 5).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn allocations_do_not_give_the_no_preference_count_away() {
    // 3 seekers without preference are allocated 1.2 and 1.8: shown, they add up to 3.
    let mut seekers = s(10, "formerly_employed", Some("1-01-01"));
    seekers.extend(s(12, "other_unemployed", Some("4-01-01")));
    seekers.extend(s(3, "new_youth", None));
    let vacs = [v(20, "C", "110", "1-01-01"), v(30, "H", "170", "4-01-01")];
    let r = city_report(&vacs, &seekers);
    let p = r.publish(5);
    let w = assert_safe(&r);
    assert_eq!(
        cell(&p, "table_5", "no_preference", "seekers"),
        Cell::Suppressed
    );
    for group in ["1", "4", "6"] {
        assert_eq!(
            cell(&p, "table_5", group, "allocated"),
            Cell::Suppressed,
            "{group}"
        );
    }
    assert_eq!(cell(&p, "table_5", "4", "ratio"), Cell::Suppressed);
    assert_eq!(cell(&p, "table_5", "6", "ratio"), Cell::Empty, "no demand");
    assert!(w.complementary >= 1, "{w:?}");
}

#[test]
fn a_lone_withheld_cell_is_not_the_total_less_the_others() {
    let vacs = [
        v(3, "P", "110", "6-04-01"),
        v(10, "C", "110", "6-04-01"),
        v(20, "H", "170", "4-01-01"),
    ];
    let mut seekers = s(3, "new_graduate", Some("2"));
    seekers.extend(s(10, "formerly_employed", Some("6-04-01")));
    seekers.extend(s(20, "laid_off", Some("4-01-01")));
    let r = city_report(&vacs, &seekers);
    let p = r.publish(5);
    assert_safe(&r);
    let hidden = |t: &str, c: &str| {
        let table = p.tables.iter().find(|x| x.id == t).unwrap();
        let i = table.columns.iter().position(|x| x.key == c).unwrap();
        table
            .rows
            .iter()
            .filter(|r| r.cells[i] == Cell::Suppressed)
            .count()
    };
    assert_eq!(cell(&p, "table_3", "P", "demand"), Cell::Suppressed);
    assert_eq!(
        cell(&p, "table_8", "new_graduate", "seekers"),
        Cell::Suppressed
    );
    assert!(hidden("table_3", "demand") >= 2 && hidden("table_8", "seekers") >= 2);
    assert_eq!(
        cell(&p, "table_8", "total", "seekers"),
        Cell::Count(33),
        "totals stay"
    );
}

#[test]
fn table_1_carried_over_and_new_do_not_give_each_other_away() {
    let vacs = [
        Vac(17, "C".into(), Some("110".into()), "6-04-01".into(), true),
        v(29, "H", "170", "4-01-01"),
    ];
    let mut seekers = vec![Seek(1, Some("2".into()), true); 2];
    seekers.extend(s(22, "formerly_employed", Some("6-04-01")));
    let r = city_report(&vacs, &seekers);
    let p = r.publish(5);
    assert_safe(&r);
    assert_eq!(
        cell(&p, "table_1", "carried_over", "seekers"),
        Cell::Suppressed
    );
    assert_eq!(
        cell(&p, "table_1", "new_in_period", "seekers"),
        Cell::Suppressed
    );
    assert_eq!(
        cell(&p, "table_1", "new_in_period", "ratio"),
        Cell::Suppressed
    );
    assert_eq!(cell(&p, "table_1", "total", "seekers"), Cell::Count(24));
    assert_eq!(
        cell(&p, "table_1", "carried_over", "demand"),
        Cell::Count(17)
    );
}

#[test]
fn two_withheld_ones_do_not_give_themselves_away() {
    // 1 + 1 = 32 − 30: both are 1, since a withheld count is at least 1.
    let mut seekers = s(1, "student", None);
    seekers.extend(s(1, "retired", None));
    seekers.extend(s(10, "formerly_employed", None));
    seekers.extend(s(20, "laid_off", None));
    let r = city_report(&[v(40, "C", "110", "6-04-01")], &seekers);
    let p = r.publish(5);
    assert_safe(&r);
    assert_eq!(
        cell(&p, "table_8", "formerly_employed", "seekers"),
        Cell::Suppressed
    );
    assert_eq!(cell(&p, "table_8", "laid_off", "seekers"), Cell::Count(20));
}

#[test]
fn a_withheld_gap_between_equal_gaps_is_protected() {
    // Table 6 rows 1-01-01 (9 − 5), 1-01-02 (4 − 0), 1-01-03 (10 − 6): all gaps 4, so
    // the middle gap, between two shown 4s, would be 4 and its demand 0 + 4.
    let vacs = [
        v(9, "C", "110", "1-01-01"),
        v(4, "C", "110", "1-01-02"),
        v(10, "C", "110", "1-01-03"),
    ];
    let mut seekers = s(5, "formerly_employed", Some("1-01-01"));
    seekers.extend(s(6, "laid_off", Some("1-01-03")));
    let r = city_report(&vacs, &seekers);
    let p = r.publish(5);
    assert_safe(&r);
    assert_eq!(cell(&p, "table_6", "1-01-02", "gap"), Cell::Suppressed);
    let neighbours = [
        cell(&p, "table_6", "1-01-01", "gap"),
        cell(&p, "table_6", "1-01-03", "gap"),
    ];
    assert!(neighbours.contains(&Cell::Suppressed), "{neighbours:?}");
}

#[test]
fn zeros_stay_shown_and_a_whole_goes_instead() {
    // H (3) is small, so C (10) goes with it in table 3. Then secondary's coded demand
    // = B + C + D + E with B, D, E zeros would give C away: zeros are not withheld, so
    // the sector's goes, and with it tertiary's in table 2.
    let vacs = [
        v(10, "C", "110", "6-04-01"),
        v(3, "H", "110", "6-04-01"),
        v(20, "K", "110", "6-04-01"),
    ];
    let r = city_report(&vacs, &[]);
    let p = r.publish(5);
    assert_safe(&r);
    let withheld = [
        ("table_3", "H"),
        ("table_3", "C"),
        ("table_2", "secondary"),
        ("table_2", "tertiary"),
    ];
    let count = |t: &str| if t == "table_2" { "recorded" } else { "demand" };
    for (t, row) in withheld {
        assert_eq!(cell(&p, t, row, count(t)), Cell::Suppressed, "{t}/{row}");
    }
    for (t, row) in [("table_3", "B"), ("table_3", "D"), ("table_2", "primary")] {
        assert_eq!(cell(&p, t, row, count(t)), Cell::Count(0), "{t}/{row}");
    }
    assert_eq!(cell(&p, "table_3", "K", "demand"), Cell::Count(20));
    assert_eq!(cell(&p, "table_2", "total", "demand"), Cell::Count(33));
}

#[test]
fn a_note_gives_no_withheld_figure_away() {
    let r = city_report(
        &[v(3, "Z", "110", "6-04-01"), v(20, "C", "110", "6-04-01")],
        &[],
    );
    assert_eq!(r.notes, [Note::FoldedIndustries(3)]);
    let p = r.publish(5);
    assert_safe(&r);
    assert_eq!(cell(&p, "table_3", "P", "demand"), Cell::Suppressed);
    assert_eq!(p.notes, [Note::FoldedIndustries(3).text(false)]);
    assert!(!p.notes[0].contains('3'));
    assert_eq!(r.publish(0).notes, [Note::FoldedIndustries(3).to_string()]);
    // No demand: the no-preference count is in the note, and withheld when small.
    let r = city_report(&[], &s(3, "new_youth", None));
    assert_eq!(r.publish(5).notes, [Note::Unallocated(3).text(false)]);
    assert_eq!(r.publish(2).notes, [Note::Unallocated(3).text(true)]);
    assert_safe(&r);
}

#[test]
fn the_rules_agree_with_the_published_columns() {
    // Same-row operands of every computed cell are its column's `derived_from`.
    let tables = super::tests::report().publish(0).tables;
    let relations = Relations::of(&tables);
    assert!(relations.sums.len() > 20 && relations.orders.len() > 2);
    for d in &relations.derived {
        let t = &tables[d.cell.table];
        let mut same: Vec<&str> = d
            .from
            .iter()
            .filter(|c| (c.table, c.row) == (d.cell.table, d.cell.row))
            .map(|c| t.columns[c.col].key.as_str())
            .collect();
        same.sort();
        let mut declared: Vec<&str> = t.columns[d.cell.col]
            .derived_from
            .iter()
            .map(String::as_str)
            .collect();
        declared.sort();
        assert_eq!(same, declared, "{} {}", t.id, t.columns[d.cell.col].key);
    }
}

// ---------------------------------------------------------------------------------------
// Renderings read back

/// `p` with every cell replaced by what a rendering shows: a number, `empty` (empty) or
/// the withheld marker (and nothing else).
fn read_back(
    p: &PublishedReport,
    rows: impl Iterator<Item = (usize, usize, Vec<String>)>,
    empty: &str,
) -> PublishedReport {
    let mut out = p.clone();
    for (t, r, fields) in rows {
        let cells = &mut out.tables[t].rows[r].cells;
        assert_eq!(cells.len(), fields.len(), "{t}/{r}");
        for (c, f) in cells.iter_mut().zip(fields) {
            *c = match (f.parse::<u64>(), f.parse::<f64>()) {
                _ if f == empty => Cell::Empty,
                (Ok(n), _) if !matches!(c, Cell::Number(_)) => Cell::Count(n),
                (_, Ok(x)) => Cell::Number(x),
                _ => {
                    assert_eq!(f, WITHHELD, "{t}/{r}");
                    Cell::Suppressed
                }
            };
        }
    }
    out
}

fn from_csv(p: &PublishedReport) -> PublishedReport {
    let csv = parse_csv(&render_csv(p));
    let rows = p.tables.iter().enumerate().flat_map(|(t, table)| {
        let by_key = &csv[&table.id];
        table.rows.iter().enumerate().map(move |(r, row)| {
            let fields = table
                .columns
                .iter()
                .map(|c| by_key[&row.key][&c.key].clone());
            (t, r, fields.collect())
        })
    });
    read_back(p, rows, "")
}

/// The numeric cells of each table row of the HTML page, in order.
fn from_html(p: &PublishedReport) -> PublishedReport {
    let html = render_html(p);
    let mut rows = Vec::new();
    for (t, block) in html.split("<table id=\"").skip(1).enumerate() {
        let body = block
            .split("<tbody>")
            .nth(1)
            .unwrap()
            .split("</tbody>")
            .next()
            .unwrap();
        for (r, tr) in body.split("<tr>").skip(1).enumerate() {
            let cells = tr.split("<td class=\"n\">").skip(1);
            rows.push((
                t,
                r,
                cells
                    .map(|c| c.split("</td>").next().unwrap().to_string())
                    .collect(),
            ));
        }
    }
    read_back(p, rows.into_iter(), "–")
}

/// The last cells of each row line of the text rendering.
fn from_text(p: &PublishedReport) -> PublishedReport {
    let text = render_text(p);
    let mut rows = Vec::new();
    for (t, table) in p.tables.iter().enumerate() {
        let start = text.find(&format!("\n{} ", table.id)).unwrap();
        let lines = text[start..].lines().skip(3).take(table.rows.len());
        for (r, line) in lines.enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let cells = words[words.len() - table.columns.len()..]
                .iter()
                .map(|w| w.to_string());
            rows.push((t, r, cells.collect()));
        }
    }
    read_back(p, rows.into_iter(), "-")
}

fn from_json(p: &PublishedReport) -> PublishedReport {
    let json: Value = serde_json::from_str(&render_json(p).unwrap()).unwrap();
    let mut out = p.clone();
    for (t, table) in out.tables.iter_mut().enumerate() {
        for (r, row) in table.rows.iter_mut().enumerate() {
            for (c, slot) in row.cells.iter_mut().enumerate() {
                *slot = match &json["tables"][t]["rows"][r]["cells"][c] {
                    Value::Null => Cell::Empty,
                    Value::Object(m) if m.get("suppressed") == Some(&Value::Bool(true)) => {
                        Cell::Suppressed
                    }
                    n if matches!(slot, Cell::Number(_)) => Cell::Number(n.as_f64().unwrap()),
                    n => Cell::Count(n.as_u64().unwrap()),
                };
            }
        }
    }
    out
}

/// Every rendering of `r` reads back as the published cells, withheld ones as the
/// marker, and the attacker works nothing out of any of them.
fn check_renderings(r: &QuarterlyReport) {
    let (p, truth) = (r.publish(5), r.publish(0));
    assert!(render_text(&p).contains(WITHHELD));
    for (format, seen) in [
        ("csv", from_csv(&p)),
        ("html", from_html(&p)),
        ("text", from_text(&p)),
        ("json", from_json(&p)),
    ] {
        assert_eq!(seen, p, "{format} does not read back as published");
        let learnt = attacker::attack(&seen, &truth);
        assert!(learnt.is_empty(), "{format}: {}", show(&learnt, &truth));
    }
}

#[test]
fn renderings_show_withheld_cells_as_withheld_and_nothing_more() {
    let mut seekers = s(10, "formerly_employed", Some("1-01-01"));
    seekers.extend(s(12, "other_unemployed", Some("4-01-01")));
    seekers.extend(s(3, "new_youth", None));
    let vacs = [
        v(20, "C", "110", "1-01-01"),
        v(30, "H", "170", "4-01-01"),
        v(3, "A", "unknown", "5-01-01"),
    ];
    check_renderings(&city_report(&vacs, &seekers));
    check_renderings(&super::tests::report());
}

// ---------------------------------------------------------------------------------------
// Random reports

/// Seed used unless `PROPTEST_RNG_SEED` says otherwise.
const SEED: u64 = 0x7375_7070_7265_7373;

fn occupation() -> impl Strategy<Value = String> {
    // Major groups 1–9 (9 is outside the built-in table), coarse or in one of 3 minors.
    (1u8..=9, 0u8..=3).prop_map(|(m, minor)| match minor {
        0 => m.to_string(),
        n => format!("{m}-0{n}-01"),
    })
}

fn vac() -> impl Strategy<Value = Vac> {
    const INDUSTRIES: &str = "ABCDEFGHIJKLMNOPZ";
    const TYPES: [&str; 5] = ["110", "170", "900", "999", "unknown"];
    (
        1u32..=6,
        0..INDUSTRIES.len(),
        0..TYPES.len(),
        occupation(),
        any::<bool>(),
    )
        .prop_map(|(n, i, t, occ, carried)| {
            let mut x = v(n, &INDUSTRIES[i..=i], TYPES[t], &occ);
            x.4 = carried;
            x
        })
}

fn seek() -> impl Strategy<Value = Seek> {
    (
        0usize..10,
        prop::option::weighted(0.8, occupation()),
        any::<bool>(),
    )
        .prop_map(|(c, first, carried)| Seek(c, first, carried))
}

pub(super) fn city() -> impl Strategy<Value = (Vec<Vac>, Vec<Seek>)> {
    (
        prop::collection::vec(vac(), 0..25),
        prop::collection::vec(seek(), 0..35),
    )
}

/// 256 cases (or `PROPTEST_CASES`) from a fixed seed (or `PROPTEST_RNG_SEED`); failing
/// inputs are kept beside this file.
pub(super) fn config() -> Config {
    let base = Config::default();
    let cases = match std::env::var_os("PROPTEST_CASES") {
        Some(_) => base.cases,
        None => 256,
    };
    let rng_seed = match base.rng_seed {
        RngSeed::Random => RngSeed::Fixed(SEED),
        fixed => fixed,
    };
    let persistence = FileFailurePersistence::WithSource("proptest-regressions");
    Config {
        cases,
        rng_seed,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(persistence)),
        ..base
    }
}

/// Random reports of small counts, at every tier, with thresholds mostly 5: the
/// attacker works out no withheld cell. Prints the figures.
#[test]
fn no_random_report_gives_a_withheld_cell_away() {
    let config = config();
    let seed = config.rng_seed;
    let below = prop_oneof![6 => Just(5u64), 1 => 2u64..=10];
    let strategy = (0u8..3, prop::collection::vec(city(), 3), below);
    // Reports checked, what they withheld, most complementary cells in one report.
    let figures = RefCell::new((0usize, Withheld::default(), 0usize));
    let start = Instant::now();
    let result = TestRunner::new(config).run(&strategy, |(tier, cities, below)| {
        let w = check(&tier_report(tier, &cities), below).map_err(TestCaseError::fail)?;
        let mut f = figures.borrow_mut();
        f.0 += 1;
        f.1.add(w);
        f.2 = f.2.max(w.complementary);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e} (seed {seed}; replay with PROPTEST_RNG_SEED)");
    }
    let (cases, w, most) = figures.into_inner();
    let per = |n: usize| n as f64 / cases.max(1) as f64;
    let all = w.primary + w.complementary + w.derived;
    println!(
        "random reports: cases={cases} seed={seed} withheld={all} (per report: primary {:.1}, \
         complementary {:.1}, max {most}, derived {:.1}); worked out 0; elapsed_ms={}",
        per(w.primary),
        per(w.complementary),
        per(w.derived),
        start.elapsed().as_millis()
    );
}

/// A crosswalk for the random occupations: in each major group `M`, minors `M-01-01`
/// and `M-02-01` merge into `M-09-01`, and `M-03-01` moves to the next major group.
fn random_editions() -> crate::core::model::crosswalk::Editions {
    let mut entries = Vec::new();
    for m in 1..=9 {
        entries.push(serde_json::json!({"from": format!("{m}-01-01"), "to": format!("{m}-09-01"), "relation": "mergedInto"}));
        entries.push(serde_json::json!({"from": format!("{m}-02-01"), "to": format!("{m}-09-01"), "relation": "mergedInto"}));
        let next = m % 9 + 1;
        entries.push(serde_json::json!({"from": format!("{m}-03-01"), "to": format!("{next}-03-01"), "relation": "related"}));
    }
    let body = serde_json::json!({"scheme": "CN-OCC", "from_version": "1999",
        "to_version": "2015", "effective_date": "2015-07-29", "entries": entries});
    let text = body.to_string();
    crate::core::model::crosswalk::Editions::of([text.as_str()], day("2024-01-01"))
}

/// Random reports in the edition in force (rows merged and moved between major groups
/// before suppression): the attacker works out no withheld cell, and no mapped count is
/// shown that is small or whose row holds a small part.
#[test]
fn no_random_report_in_the_edition_in_force_gives_a_withheld_cell_away() {
    let mut config = config();
    config.cases = config.cases.min(96);
    let seed = config.rng_seed;
    let editions = random_editions();
    let below = prop_oneof![6 => Just(5u64), 1 => 2u64..=10];
    let strategy = (0u8..3, prop::collection::vec(city(), 3), below);
    let result = TestRunner::new(config).run(&strategy, |(tier, cities, below)| {
        let r = tier_counts(tier, &cities).build_in_edition(&editions);
        check(&r, below).map_err(TestCaseError::fail)?;
        let small = |n: u64| n > 0 && n < below;
        for m in r.publish(below).mapped {
            for cell in [m.demand, m.seekers] {
                if let Cell::Count(n) = cell {
                    prop_assert!(!small(n), "small mapped count shown: {m:?}");
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e} (seed {seed}; replay with PROPTEST_RNG_SEED)");
    }
}

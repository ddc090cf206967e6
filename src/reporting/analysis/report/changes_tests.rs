//! Known-answer tests of the change columns (counts, percent, percentage points, ratio
//! differences), of their suppression, and of the national regional table.

use super::*;
use crate::core::model::kinds::SeekerCategory;
use crate::reporting::analysis::tests::{code, seeker, vacancy};

/// The counts of `city` in `period`: vacancies (occupation, headcount) and seekers
/// (first preference, how many), all starting on the quarter's first day.
fn counts(city: &str, period: Period, vacs: &[(&str, u32)], seeks: &[(&str, u16)]) -> ReportCounts {
    let mut c = CityReport::new(code(city), period, CountBasis::ValidInPeriod).counts;
    for &(occupation, headcount) in vacs {
        let mut v = vacancy();
        (v.occupation, v.headcount) = (occupation.to_string(), headcount);
        (v.valid_from, v.valid_until) = (period.first_day(), period.last_day());
        c.add_vacancy(&v, Some("110"));
    }
    let mut n = 0;
    for &(occupation, many) in seeks {
        for _ in 0..many {
            n += 1;
            let mut s = seeker(n, &[occupation], SeekerCategory::NewYouth);
            (s.registered_on, s.valid_until) = (period.first_day(), period.last_day());
            c.add_seeker(&s);
        }
    }
    c
}

fn quarter(text: &str) -> Period {
    text.parse().unwrap()
}

fn get(p: &PublishedReport, table: &str, row: &str, column: &str) -> Cell {
    let t = p.tables.iter().find(|t| t.id == table).unwrap();
    let col = t.columns.iter().position(|c| c.key == column);
    let col = col.unwrap_or_else(|| panic!("{table} has no column {column}"));
    t.rows.iter().find(|r| r.key == row).unwrap().cells[col]
}

/// 2024Q3 against 2024Q2 and 2023Q3, city 440100, threshold 5 (no small cell):
/// - 2024Q3: demand 45 (group 6) + 15 (group 4) = 60; seekers 24 (6) + 6 (4) = 30.
/// - 2024Q2: demand 30 (6) + 10 (4) = 40; seekers 20 (6).
/// - 2023Q3: demand 20 (6); seekers 25 (6).
fn three_quarters() -> (ReportCounts, ReportCounts, ReportCounts) {
    let now = counts(
        "440100",
        quarter("2024Q3"),
        &[("6-04-01", 45), ("4-01-01", 15)],
        &[("6-04-01", 24), ("4-01-01", 6)],
    );
    let previous = counts(
        "440100",
        quarter("2024Q2"),
        &[("6-04-01", 30), ("4-01-01", 10)],
        &[("6-04-01", 20)],
    );
    let year_ago = counts(
        "440100",
        quarter("2023Q3"),
        &[("6-04-01", 20)],
        &[("6-04-01", 25)],
    );
    (now, previous, year_ago)
}

#[test]
fn changes_are_differences_percents_points_and_ratio_differences() {
    let (now, previous, year_ago) = three_quarters();
    let mut p = now.build().publish(5);
    let (prev, year) = (previous.build().publish(5), year_ago.build().publish(5));
    p.compare(Some(&prev), Some(&year));
    let n = Cell::Number;
    // Table 1 total: demand 60 vs 40 → +20, +50 %; vs 20 → +40, +200 %.
    assert_eq!(get(&p, "table_1", "total", "demand"), Cell::Count(60));
    assert_eq!(get(&p, "table_1", "total", "demand_qoq"), n(20.0));
    assert_eq!(get(&p, "table_1", "total", "demand_qoq_pct"), n(50.0));
    assert_eq!(get(&p, "table_1", "total", "demand_yoy"), n(40.0));
    assert_eq!(get(&p, "table_1", "total", "demand_yoy_pct"), n(200.0));
    // Seekers 30 vs 20 → +10, +50 %; vs 25 → +5, +20 %.
    assert_eq!(get(&p, "table_1", "total", "seekers_qoq"), n(10.0));
    assert_eq!(get(&p, "table_1", "total", "seekers_qoq_pct"), n(50.0));
    assert_eq!(get(&p, "table_1", "total", "seekers_yoy"), n(5.0));
    assert_eq!(get(&p, "table_1", "total", "seekers_yoy_pct"), n(20.0));
    // 求人倍率 60/30 = 2 vs 40/20 = 2 → 0; vs 20/25 = 0.8 → +1.2.
    assert_eq!(get(&p, "table_1", "total", "ratio_qoq"), n(0.0));
    assert_eq!(get(&p, "table_1", "total", "ratio_yoy"), n(1.2));
    // Nothing carried over in any quarter: 0 − 0 = 0, and no percent of a zero base.
    assert_eq!(get(&p, "table_1", "carried_over", "demand_qoq"), n(0.0));
    assert_eq!(
        get(&p, "table_1", "carried_over", "demand_qoq_pct"),
        Cell::Empty
    );
    // Table 5, group 4: share 15/60 = 0.25 vs 10/40 = 0.25 → 0 pp; vs 0/20 = 0 → +25 pp.
    assert_eq!(get(&p, "table_5", "4", "demand_share"), n(0.25));
    assert_eq!(get(&p, "table_5", "4", "demand_share_qoq_pp"), n(0.0));
    assert_eq!(get(&p, "table_5", "4", "demand_share_yoy_pp"), n(25.0));
    // Group 6: share 0.75 vs 1.0 a year ago → −25 pp; demand 45 vs 20 → +25, +125 %.
    assert_eq!(get(&p, "table_5", "6", "demand_share_yoy_pp"), n(-25.0));
    assert_eq!(get(&p, "table_5", "6", "demand_yoy"), n(25.0));
    assert_eq!(get(&p, "table_5", "6", "demand_yoy_pct"), n(125.0));
    // Group 4 seekers 6 vs 0 → +6, no percent (zero base).
    assert_eq!(get(&p, "table_5", "4", "seekers_qoq"), n(6.0));
    assert_eq!(get(&p, "table_5", "4", "seekers_qoq_pct"), Cell::Empty);
    // Group 6's ratio 45/24 = 1.875 vs 30/20 = 1.5 → +0.375.
    assert_eq!(get(&p, "table_5", "6", "ratio_qoq"), n(0.375));
    let compared = p.compared_with.as_ref().unwrap();
    assert_eq!(compared.previous_quarter.as_deref(), Some("2024Q2"));
    assert_eq!(compared.same_quarter_last_year.as_deref(), Some("2023Q3"));
}

#[test]
fn a_change_is_withheld_when_either_cell_is() {
    // 2024Q3 has 3 seekers wanting group 4 (a small cell, withheld below 5); 2024Q2
    // has 20 there. The change of that cell must not show (3 − 20 = −17 gives 3 away).
    let now = counts(
        "440100",
        quarter("2024Q3"),
        &[("6-04-01", 45), ("4-01-01", 15)],
        &[("6-04-01", 24), ("4-01-01", 3)],
    );
    let previous = counts(
        "440100",
        quarter("2024Q2"),
        &[("6-04-01", 30), ("4-01-01", 10)],
        &[("6-04-01", 20), ("4-01-01", 20)],
    );
    let mut p = now.build().publish(5);
    let prev = previous.build().publish(5);
    p.compare(Some(&prev), None);
    assert_eq!(get(&p, "table_5", "4", "seekers"), Cell::Suppressed);
    assert_eq!(get(&p, "table_5", "4", "seekers_qoq"), Cell::Suppressed);
    assert_eq!(get(&p, "table_5", "4", "seekers_qoq_pct"), Cell::Suppressed);
    // The other way round: a withheld earlier cell withholds the change too.
    let mut back = previous.build().publish(5);
    back.compare(Some(&now.build().publish(5)), None);
    assert_eq!(get(&back, "table_5", "4", "seekers_qoq"), Cell::Suppressed);
    // Without an earlier quarter (no data) every change is empty, and says so.
    assert_eq!(get(&p, "table_1", "total", "demand_yoy"), Cell::Empty);
    assert_eq!(p.compared_with.unwrap().same_quarter_last_year, None);
    // Every change column of a withheld cell is withheld, in every table.
    for t in &back.tables {
        for r in &t.rows {
            for (c, cell) in t.columns.iter().zip(&r.cells) {
                let Some(change) = &c.change else { continue };
                let base = t.columns.iter().position(|x| x.key == change.of).unwrap();
                if r.cells[base] == Cell::Suppressed {
                    assert_eq!(*cell, Cell::Suppressed, "{} {} {}", t.id, r.key, c.key);
                }
            }
        }
    }
}

#[test]
fn change_cells_round_and_measure() {
    use super::changes::change_cell;
    let (c, x) = (Cell::Count, Cell::Number);
    // Shares 0.3333 → 0.25: −8.33 pp (from the published, rounded shares).
    assert_eq!(
        change_cell(x(0.25), Some(x(0.3333)), Measure::Points, 4),
        x(-8.33)
    );
    // 7 against 3: +4, +133.33 %.
    assert_eq!(
        change_cell(c(7), Some(c(3)), Measure::Difference, 4),
        x(4.0)
    );
    assert_eq!(
        change_cell(c(7), Some(c(3)), Measure::Percent, 4),
        x(133.33)
    );
    // Ratios 1.3333 → 0.6667: −0.6666.
    assert_eq!(
        change_cell(x(0.6667), Some(x(1.3333)), Measure::Difference, 4),
        x(-0.6666)
    );
    // Withheld on either side, empty without an earlier cell or value.
    let withheld = Cell::Suppressed;
    assert_eq!(
        change_cell(withheld, Some(c(3)), Measure::Difference, 4),
        withheld
    );
    assert_eq!(
        change_cell(c(9), Some(withheld), Measure::Percent, 4),
        withheld
    );
    assert_eq!(change_cell(c(9), None, Measure::Difference, 4), Cell::Empty);
    assert_eq!(
        change_cell(Cell::Empty, Some(c(3)), Measure::Difference, 4),
        Cell::Empty
    );
}

#[test]
fn cities_fall_in_regions_by_their_first_two_digits() {
    assert_eq!(region_key(code("440100")), "east");
    assert_eq!(region_key(code("110100")), "east");
    assert_eq!(region_key(code("460100")), "east");
    assert_eq!(region_key(code("140100")), "central");
    assert_eq!(region_key(code("430100")), "central");
    assert_eq!(region_key(code("150100")), "west");
    assert_eq!(region_key(code("500100")), "west");
    assert_eq!(region_key(code("610100")), "west");
    assert_eq!(region_key(code("650100")), "west");
    // Eleven, eight and twelve provincial units.
    use crate::core::model::Region;
    use crate::core::model::tables::PROVINCE_REGIONS;
    let count = |r: Region| PROVINCE_REGIONS.iter().filter(|(_, x)| *x == r).count();
    assert_eq!(
        (
            count(Region::East),
            count(Region::Central),
            count(Region::West)
        ),
        (11, 8, 12)
    );
}

#[test]
fn the_national_report_has_regional_ratios_with_changes() {
    let q = quarter("2024Q3");
    let p = quarter("2024Q2");
    let national = |period, east: (u32, u16), west: (u32, u16)| {
        let mut all = ReportCounts::new(Scope::National, period, CountBasis::ValidInPeriod);
        let gz = counts(
            "440100",
            period,
            &[("6-04-01", east.0)],
            &[("6-04-01", east.1)],
        );
        let xa = counts(
            "610100",
            period,
            &[("6-04-01", west.0)],
            &[("6-04-01", west.1)],
        );
        all.merge(&gz).unwrap();
        all.merge(&xa).unwrap();
        all.build().publish(5)
    };
    // 2024Q3: east demand 30, seekers 20 (ratio 1.5); west 10 and 40 (0.25).
    // 2024Q2: east 20 and 20 (1.0); west 10 and 8 (1.25).
    let mut now = national(q, (30, 20), (10, 40));
    let before = national(p, (20, 20), (10, 8));
    now.compare(Some(&before), None);
    assert_eq!(get(&now, "table_10", "east", "demand"), Cell::Count(30));
    assert_eq!(get(&now, "table_10", "east", "ratio"), Cell::Number(1.5));
    assert_eq!(get(&now, "table_10", "west", "seekers"), Cell::Count(40));
    assert_eq!(get(&now, "table_10", "west", "ratio"), Cell::Number(0.25));
    assert_eq!(get(&now, "table_10", "central", "demand"), Cell::Count(0));
    assert_eq!(get(&now, "table_10", "total", "demand"), Cell::Count(40));
    // East demand 30 vs 20: +10, +50 %; ratio 1.5 vs 1.0: +0.5.
    assert_eq!(
        get(&now, "table_10", "east", "demand_qoq"),
        Cell::Number(10.0)
    );
    assert_eq!(
        get(&now, "table_10", "east", "demand_qoq_pct"),
        Cell::Number(50.0)
    );
    assert_eq!(
        get(&now, "table_10", "east", "ratio_qoq"),
        Cell::Number(0.5)
    );
    // West seekers 40 vs 8: +32, +400 %; ratio 0.25 vs 1.25: −1.
    assert_eq!(
        get(&now, "table_10", "west", "seekers_qoq_pct"),
        Cell::Number(400.0)
    );
    assert_eq!(
        get(&now, "table_10", "west", "ratio_qoq"),
        Cell::Number(-1.0)
    );
    // A province or city report has no regional table.
    let city = counts("440100", q, &[("6-04-01", 30)], &[("6-04-01", 20)]);
    let published = city.build().publish(5);
    assert!(published.tables.iter().all(|t| t.id != "table_10"));
}

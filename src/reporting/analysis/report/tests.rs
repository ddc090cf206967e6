//! Tests of the quarterly report: counting rules, reconciliation between tables,
//! suppression, and agreement of the renderings.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::core::model::kinds::{RecordData, SeekerCategory, SkillLevel};
use crate::core::model::{Record, Status as RecordStatus};
use crate::reporting::analysis::tests::{
    code, day, employer, q3, record, record_as, seeker, vacancy,
};
use crate::reporting::analysis::{MergeError, run_two_passes};

const GZ: &str = "440100";

/// A vacancy of `city`: headcount, industry, occupation, employer, valid from.
fn vac(city: &str, id: &str, (hc, ind, occ, emp, from): (u32, &str, &str, &str, &str)) -> Record {
    let mut v = vacancy();
    v.headcount = hc;
    v.industry = ind.into();
    v.occupation = occ.into();
    v.employer_id = emp.into();
    v.valid_from = day(from);
    record(code(city), id, RecordData::Vacancy(v))
}

fn seekers(city: &str, first: u16, n: u16, desired: &[&str], cat: SeekerCategory) -> Vec<Record> {
    (first..first + n)
        .map(|i| {
            record(
                code(city),
                &format!("P-{i}"),
                RecordData::JobSeeker(seeker(i, desired, cat)),
            )
        })
        .collect()
}

/// Demand 46 (17 carried over), 24 seekers (2 carried over).
fn city_records(city: &str) -> Vec<Record> {
    let c = code(city);
    let mut r = vec![
        record(c, "E-SOE", RecordData::Employer(employer("110"))),
        record(c, "E-PRIV", RecordData::Employer(employer("170"))),
        record(c, "E-ODD", RecordData::Employer(employer("<b>"))),
        vac(city, "V1", (10, "C", "6-04-01", "E-SOE", "2024-05-01")),
        vac(city, "V2", (20, "H", "4-01-01", "E-PRIV", "2024-07-15")),
        vac(city, "V3", (6, "A", "5-01-01", "E-ODD", "2024-07-15")),
        vac(city, "V4", (3, "Z", "2-02-13", "E-MISSING", "2024-08-01")),
        vac(city, "V5", (7, "K", "4-07-13", "E-PRIV", "2024-06-01")),
    ];
    let mut voided = vacancy();
    voided.headcount = 100;
    r.push(record_as(
        c,
        "V6",
        RecordStatus::Voided,
        RecordData::Vacancy(voided),
    ));
    let mut expired = vacancy();
    (expired.valid_from, expired.valid_until) = (day("2024-01-01"), day("2024-06-30"));
    r.push(record(c, "V7", RecordData::Vacancy(expired)));
    r.extend(seekers(
        city,
        1,
        8,
        &["6-04-01"],
        SeekerCategory::FormerlyEmployed,
    ));
    r.extend(seekers(
        city,
        20,
        3,
        &["4-01-01", "6-04-01"],
        SeekerCategory::LaidOff,
    ));
    r.extend(seekers(city, 30, 6, &[], SeekerCategory::NewYouth));
    r.extend(seekers(
        city,
        40,
        5,
        &["3-01-01"],
        SeekerCategory::OtherUnemployed,
    ));
    let mut carried = seekers(city, 50, 2, &["2"], SeekerCategory::NewGraduate);
    for s in &mut carried {
        if let RecordData::JobSeeker(j) = &mut s.data {
            j.registered_on = day("2024-06-01");
        }
    }
    r.extend(carried);
    let mut gone = seeker(60, &[], SeekerCategory::Retired);
    gone.valid_until = day("2024-06-30");
    gone.registered_on = day("2024-01-01");
    r.push(record(c, "P-60", RecordData::JobSeeker(gone)));
    r.push(record_as(
        c,
        "P-61",
        RecordStatus::Voided,
        RecordData::JobSeeker(seeker(61, &[], SeekerCategory::Retired)),
    ));
    r
}

fn city_counts(city: &str, basis: CountBasis, records: &[Record]) -> ReportCounts {
    let mut acc = CityReport::new(code(city), q3(), basis);
    run_two_passes(&mut acc, || records.iter());
    acc.finish()
}

pub(super) fn report() -> QuarterlyReport {
    city_counts(GZ, CountBasis::ValidInPeriod, &city_records(GZ)).build()
}

fn sum(rows: &[DemandRow]) -> u64 {
    rows.iter().map(|r| r.demand).sum()
}

#[test]
fn tables_reconcile() {
    let r = report();
    let o = &r.overall;
    assert_eq!(
        (
            o.demand.carried_over,
            o.demand.new_in_period,
            o.demand.total()
        ),
        (17, 29, 46)
    );
    assert_eq!((o.seekers.carried_over, o.seekers.total()), (2, 24));
    assert_eq!(o.ratios()[2], Some(46.0 / 24.0));
    let demand = o.demand.total();
    let sectors: f64 = r.by_sector.iter().map(|s| s.demand).sum();
    assert!((sectors - demand as f64).abs() < 1e-9, "table 2: {sectors}");
    assert_eq!(sum(&r.by_industry), demand, "table 3");
    assert_eq!(sum(&r.by_employer_type), demand, "table 4");
    let t5 = &r.by_occupation;
    assert_eq!(
        t5.rows.iter().map(|x| x.demand).sum::<u64>(),
        demand,
        "table 5 demand"
    );
    let actual: u64 = t5.rows.iter().map(|x| x.seekers).sum();
    assert_eq!(
        actual + t5.no_preference,
        o.seekers.total(),
        "table 5 seekers"
    );
    let allocated: f64 = t5.rows.iter().map(|x| x.allocated).sum();
    assert!(
        (allocated - 6.0).abs() < 1e-9,
        "all six without preference allocated"
    );
    assert_eq!(
        r.by_category.iter().map(|x| x.seekers).sum::<u64>(),
        o.seekers.total(),
        "table 8"
    );
    assert_eq!(r.by_industry.len(), 16);
    assert_eq!(r.by_sector.len(), 3);
}

#[test]
fn rows_follow_the_rules() {
    let r = report();
    let industry = |c: &str| r.by_industry.iter().find(|x| x.code == c).unwrap().demand;
    assert_eq!(
        industry("P"),
        3,
        "an unknown industry code counts as 其他行业"
    );
    assert!(r.notes.iter().any(|n| n.to_string().contains("其他行业")));
    let sector = |c: &str| r.by_sector.iter().find(|x| x.code == c).unwrap();
    let coded = |c: &str| sector(c).recorded;
    assert_eq!(
        (coded("primary"), coded("secondary"), coded("tertiary")),
        (6, 10, 27),
        "其他行业 (P) is no sector's coded demand"
    );
    // P = 3 redistributed over 6 + 10 + 27 = 43 coded: 3 × 6/43, 3 × 10/43, 3 × 27/43.
    let expected = [
        ("primary", 18.0 / 43.0),
        ("secondary", 30.0 / 43.0),
        ("tertiary", 81.0 / 43.0),
    ];
    for (c, allocated) in expected {
        assert!((sector(c).allocated - allocated).abs() < 1e-12, "{c}");
        let demand = coded(c) as f64 + allocated;
        assert!((sector(c).demand - demand).abs() < 1e-12, "{c}");
        assert!(
            (sector(c).share.unwrap() - demand / 46.0).abs() < 1e-12,
            "{c}"
        );
    }
    let etype = |c: &str| r.by_employer_type.iter().find(|x| x.code == c).unwrap();
    assert_eq!(etype("110").demand, 10);
    assert_eq!(etype("170").demand, 27);
    assert_eq!(etype("<b>").demand, 6);
    assert_eq!(etype(UNKNOWN_EMPLOYER).demand, 3);
    assert_eq!(
        etype("110").label.en.as_deref(),
        Some("State-owned enterprise")
    );
    // Table 5, group 4: demand 27 of 46, 3 seekers, 6 × 27/46 allocated.
    let g4 = r.by_occupation.rows.iter().find(|x| x.code == "4").unwrap();
    let alloc = 6.0 * 27.0 / 46.0;
    assert_eq!((g4.demand, g4.seekers), (27, 3));
    assert!((g4.allocated - alloc).abs() < 1e-9);
    assert_eq!(g4.ratio, Some(27.0 / (3.0 + alloc)));
    assert_eq!(g4.label.zh, "商业、服务业人员");
    // Table 6: largest gap first; table 7: supply over demand.
    let gaps: Vec<(&str, u64)> = r
        .shortages
        .iter()
        .map(|g| (g.code.as_str(), g.gap))
        .collect();
    assert_eq!(
        gaps,
        [
            ("4-01-01", 17),
            ("4-07-13", 7),
            ("5-01-01", 6),
            ("2-02-13", 3),
            ("6-04-01", 2)
        ]
    );
    let surplus: Vec<(&str, u64)> = r
        .surpluses
        .iter()
        .map(|g| (g.code.as_str(), g.gap))
        .collect();
    assert_eq!(surplus, [("3-01-01", 5)]);
    let t8 = |c: &str| r.by_category.iter().find(|x| x.code == c).unwrap().seekers;
    assert_eq!(
        (t8("new_youth"), t8("new_graduate"), t8("retired")),
        (6, 2, 0)
    );
}

#[test]
fn new_in_period_basis_counts_only_starts() {
    let r = city_counts(GZ, CountBasis::NewInPeriod, &city_records(GZ)).build();
    assert_eq!(r.count_basis, CountBasis::NewInPeriod);
    assert_eq!(
        (r.overall.demand.carried_over, r.overall.demand.total()),
        (0, 29)
    );
    assert_eq!(r.overall.seekers.total(), 22);
}

#[test]
fn top_lists_stop_at_ten() {
    let records: Vec<Record> = (1..=12)
        .map(|i| {
            vac(
                GZ,
                &format!("V{i}"),
                (i, "C", &format!("6-99-{i:02}"), "E-1", "2024-07-01"),
            )
        })
        .collect();
    let r = city_counts(GZ, CountBasis::ValidInPeriod, &records).build();
    assert_eq!(r.shortages.len(), TOP_N);
    assert_eq!(r.shortages[0].code, "6-99-12");
    assert_eq!(r.shortages[9].gap, 3);
    assert!(r.surpluses.is_empty());
}

#[test]
fn a_province_report_merges_its_cities() {
    let a = city_counts("440100", CountBasis::ValidInPeriod, &city_records("440100"));
    let b = city_counts("440300", CountBasis::ValidInPeriod, &city_records("440300"));
    let mut gd = ReportCounts::new(
        Scope::Province(code("440000")),
        q3(),
        CountBasis::ValidInPeriod,
    );
    gd.merge(&a).unwrap();
    gd.merge(&b).unwrap();
    let r = gd.build();
    assert_eq!(r.overall.demand.total(), 92);
    assert_eq!(r.cities.len(), 2);
    assert_eq!(r.shortages[0].gap, 34);
    assert_eq!(gd.merge(&a), Err(MergeError::Duplicate(code("440100"))));
    let other = city_counts("420100", CountBasis::ValidInPeriod, &[]);
    assert!(matches!(
        gd.merge(&other),
        Err(MergeError::OutOfScope { .. })
    ));
    let new_basis = city_counts("440500", CountBasis::NewInPeriod, &[]);
    assert!(matches!(
        gd.merge(&new_basis),
        Err(MergeError::Mismatch { .. })
    ));
    let mut nation = ReportCounts::new(Scope::National, q3(), CountBasis::ValidInPeriod);
    nation.merge(&gd).unwrap();
    assert_eq!(nation.build().overall, r.overall);
}

fn cell<'a>(p: &'a PublishedReport, table: &str, row: &str, column: &str) -> &'a Cell {
    let t = p.tables.iter().find(|t| t.id == table).unwrap();
    let i = t.columns.iter().position(|c| c.key == column).unwrap();
    &t.rows.iter().find(|r| r.key == row).unwrap().cells[i]
}

#[test]
fn small_cells_are_suppressed_in_publication() {
    let p = report().publish(5);
    assert_eq!(
        *cell(&p, "table_3", "P", "demand"),
        Cell::Suppressed,
        "3 < 5"
    );
    assert_eq!(
        *cell(&p, "table_3", "P", "share"),
        Cell::Suppressed,
        "derived from 3"
    );
    assert_eq!(
        *cell(&p, "table_3", "B", "demand"),
        Cell::Count(0),
        "zero is not suppressed"
    );
    assert_eq!(*cell(&p, "table_3", "H", "demand"), Cell::Count(20));
    // A (6) goes with the small cells of table 3 (complementary suppression).
    assert_eq!(*cell(&p, "table_3", "A", "demand"), Cell::Suppressed);
    assert_eq!(
        *cell(&p, "table_4", UNKNOWN_EMPLOYER, "demand"),
        Cell::Suppressed
    );
    assert_eq!(
        *cell(&p, "table_8", "new_graduate", "seekers"),
        Cell::Suppressed
    );
    assert_eq!(
        *cell(&p, "table_1", "carried_over", "seekers"),
        Cell::Suppressed
    );
    assert_eq!(
        *cell(&p, "table_1", "carried_over", "ratio"),
        Cell::Suppressed
    );
    assert_eq!(
        *cell(&p, "table_1", "carried_over", "demand"),
        Cell::Count(17)
    );
    assert_eq!(*cell(&p, "table_1", "total", "ratio"), Cell::Number(1.9167));
    let json: Value = serde_json::from_str(&render_json(&p).unwrap()).unwrap();
    let t3 = &json["tables"][2];
    let p_row = t3["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "P")
        .unwrap();
    assert_eq!(p_row["cells"][0], serde_json::json!({"suppressed": true}));
    assert!(render_csv(&p).contains("P,其他行业,Other industries,x,x"));
    // Raw numbers stay in the computed report; no suppression below 1.
    assert_eq!(
        *cell(&report().publish(0), "table_3", "P", "demand"),
        Cell::Count(3)
    );
}

/// Splits a CSV line into fields (quotes, doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// table id → row key → column key → field, from the CSV.
pub(super) fn parse_csv(csv: &str) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>> {
    let mut out = BTreeMap::new();
    for section in csv.split("\n\n").skip(1) {
        let mut lines = section.lines();
        let id = csv_fields(lines.next().unwrap())[1].clone();
        let header = csv_fields(lines.next().unwrap());
        let rows = lines
            .map(|l| {
                let f = csv_fields(l);
                let cells = header.iter().cloned().zip(f.iter().cloned()).collect();
                (f[0].clone(), cells)
            })
            .collect();
        out.insert(id, rows);
    }
    out
}

#[test]
fn csv_and_json_carry_the_same_numbers() {
    let p = report().publish(5);
    let csv = parse_csv(&render_csv(&p));
    let json: Value = serde_json::from_str(&render_json(&p).unwrap()).unwrap();
    let tables = json["tables"].as_array().unwrap();
    assert_eq!(csv.len(), 9);
    let mut compared = 0;
    for t in tables {
        let id = t["id"].as_str().unwrap();
        let columns: Vec<&str> = t["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["key"].as_str().unwrap())
            .collect();
        let rows = t["rows"].as_array().unwrap();
        assert_eq!(csv[id].len(), rows.len(), "{id}");
        for row in rows {
            let key = row["key"].as_str().unwrap();
            let fields = &csv[id][key];
            assert_eq!(fields["label_zh"], row["label"]["zh"].as_str().unwrap());
            for (i, column) in columns.iter().enumerate() {
                let (j, c) = (&row["cells"][i], fields[*column].as_str());
                match j {
                    Value::Null => assert_eq!(c, "", "{id}/{key}/{column}"),
                    Value::Object(_) => assert_eq!(c, WITHHELD, "{id}/{key}/{column}"),
                    n => assert_eq!(
                        c.parse::<f64>().unwrap(),
                        n.as_f64().unwrap(),
                        "{id}/{key}/{column}"
                    ),
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "{compared}");
    assert_eq!(json["period"], "2024Q3");
    assert_eq!(json["count_basis"], "valid_in_period");
}

#[test]
fn html_is_self_contained_and_escaped() {
    let html = render_html(&report().publish(5));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg") && html.contains("<rect"));
    assert!(
        html.contains("&lt;b&gt;"),
        "the employer type code is escaped"
    );
    assert!(!html.contains("<b>"));
    assert!(
        !html.contains("http://") || html.matches("http://").count() == 1,
        "only the SVG namespace"
    );
    assert_eq!(html.matches("<table").count(), 9);
}

/// Text that would break out of HTML if it went in raw.
const HOSTILE: &str = "<script>alert('x')</script> & \"quoted\"";
/// `HOSTILE` as maud writes it: `&`, `<`, `>` and `"` escaped, `'` kept (harmless in
/// element content, and every attribute value is quoted with `"`).
const HOSTILE_ESCAPED: &str = "&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;quoted&quot;";

#[test]
fn html_escapes_untrusted_text_everywhere() {
    let mut p = report().publish(5);
    p.scope_label = HOSTILE.into();
    p.notes.push(HOSTILE.into());
    p.tables[0].id = format!("{HOSTILE}\" onclick=\"alert('y')");
    p.tables[0].title.en = Some(HOSTILE.into());
    let t5 = p.tables.iter_mut().find(|t| t.id == "table_5").unwrap();
    t5.rows[0].label.zh = HOSTILE.into();
    let rows = vec![vec![HOSTILE.to_string(), "pass".to_string()]];
    let status = TargetStatus {
        head: &["metric", "status"],
        rows: &rows,
    };
    let html = render_html_with_status(&p, Some(&status));
    assert!(!html.contains("<script"), "{html}");
    assert!(
        !html.contains("onclick=\""),
        "an attribute cannot be broken out of"
    );
    assert!(html.contains(&format!(
        "<title>职业供求状况分析报告 {HOSTILE_ESCAPED} 2024Q3</title>"
    )));
    assert!(html.contains(&format!("<li>{HOSTILE_ESCAPED}</li>")));
    assert!(
        html.contains(&format!("<td>{HOSTILE_ESCAPED}</td>")),
        "the status row"
    );
    assert!(html.contains(&format!("<span class=\"en\">{HOSTILE_ESCAPED}</span>")));
    assert!(html.contains(&format!(
        "id=\"{HOSTILE_ESCAPED}&quot; onclick=&quot;alert('y')\""
    )));
    // The chart's label is the name cut to 16 characters, escaped too.
    assert!(html.contains(">&lt;script&gt;alert('x</text>"), "{html}");
}

#[test]
fn the_target_status_is_the_last_section() {
    let rows = vec![vec!["M01".to_string(), "fail".to_string()]];
    let status = TargetStatus {
        head: &["metric", "status"],
        rows: &rows,
    };
    let p = report().publish(5);
    let html = render_html_with_status(&p, Some(&status));
    let section = "<section><h2>Target status</h2><table><thead><tr><th>metric</th><th>status</th></tr></thead>\
         <tbody><tr><td>M01</td><td>fail</td></tr></tbody></table></section></body></html>";
    assert!(html.ends_with(&format!("{section}\n")), "{html}");
    assert_eq!(html.matches("<table").count(), 10);
    assert_eq!(render_html(&p), render_html_with_status(&p, None));
}

#[test]
fn a_published_report_reads_back_from_its_json() {
    let p = report().publish(5);
    let json = render_json(&p).unwrap();
    let back: PublishedReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    assert_eq!(render_html(&back), render_html(&p));
}

#[test]
fn text_shows_every_table() {
    let text = render_text(&report().publish(5));
    for i in 1..=8 {
        assert!(text.contains(&format!("table_{i} ")), "table_{i}");
    }
    let mut words = text.lines().flat_map(str::split_whitespace);
    assert!(words.any(|w| w == WITHHELD));
    assert!(!text.contains("<5"), "a withheld cell claims no bound");
    assert!(text.contains("440100 广州市 2024Q3"));
}

#[test]
fn derived_cells_are_suppressed_only_with_their_sources() {
    let p = report().publish(5);
    // Group 4: demand 27 shown with its share; 3 seekers hide the ratio, not the share.
    assert_eq!(*cell(&p, "table_5", "4", "demand"), Cell::Count(27));
    assert_eq!(
        *cell(&p, "table_5", "4", "demand_share"),
        Cell::Number(0.587)
    );
    assert_eq!(*cell(&p, "table_5", "4", "seekers"), Cell::Suppressed);
    assert_eq!(*cell(&p, "table_5", "4", "ratio"), Cell::Suppressed);
    // Group 2: demand 3 hides its share and the allocation derived from it.
    assert_eq!(*cell(&p, "table_5", "2", "allocated"), Cell::Suppressed);
    assert_eq!(*cell(&p, "table_6", "4-01-01", "gap"), Cell::Suppressed);
    assert_eq!(*cell(&p, "table_6", "4-07-13", "gap"), Cell::Count(7));
}

#[test]
fn table_9_counts_demand_by_the_level_asked_and_seekers_by_the_level_held() {
    let c = code(GZ);
    let asked = |id: &str, hc: u32, level: Option<SkillLevel>| {
        let mut v = vacancy();
        (v.headcount, v.skill_level_min) = (hc, level);
        record(c, id, RecordData::Vacancy(v))
    };
    let held = |n: u16, level: Option<SkillLevel>| {
        let mut s = seeker(n, &["6-04-01"], SeekerCategory::LaidOff);
        s.skill_level = level;
        record(c, &format!("P-{n}"), RecordData::JobSeeker(s))
    };
    let records = vec![
        asked("V1", 12, Some(SkillLevel::Intermediate)),
        asked("V2", 8, Some(SkillLevel::Intermediate)),
        asked("V3", 5, Some(SkillLevel::Technician)),
        asked("V4", 15, None),
        held(1, Some(SkillLevel::Intermediate)),
        held(2, Some(SkillLevel::Intermediate)),
        held(3, Some(SkillLevel::Intermediate)),
        held(4, Some(SkillLevel::Intermediate)),
        held(5, Some(SkillLevel::Intermediate)),
        held(6, None),
        held(7, None),
        held(8, Some(SkillLevel::Junior)),
    ];
    let mut city = CityReport::new(c, q3(), CountBasis::ValidInPeriod);
    run_two_passes(&mut city, || records.iter());
    let r = city.finish().build();
    let row = |k: &str| r.by_skill.iter().find(|x| x.code == k).unwrap().clone();
    // Demand 12 + 8 = 20 asking intermediate of 40; 5 seekers of 8 hold it: 20 ÷ 5 = 4.
    let mid = row("intermediate");
    assert_eq!((mid.demand, mid.seekers), (20, 5));
    assert_eq!(mid.demand_share, Some(0.5));
    assert_eq!(mid.seekers_share, Some(5.0 / 8.0));
    assert_eq!(mid.ratio, Some(4.0));
    // Technician: 5 asked, none held: no ratio.
    assert_eq!(
        (row("technician").demand, row("technician").ratio),
        (5, None)
    );
    // Neither asked nor held: 15 demand, 2 seekers.
    assert_eq!((row("none").demand, row("none").seekers), (15, 2));
    assert_eq!((row("junior").demand, row("junior").seekers), (0, 1));
    let ids: Vec<&str> = r.by_skill.iter().map(|x| x.code.as_str()).collect();
    assert_eq!(
        ids,
        [
            "junior",
            "intermediate",
            "senior",
            "technician",
            "senior_technician",
            "none"
        ]
    );
}

#[test]
fn a_small_other_industries_row_withholds_every_sector_part_of_it() {
    use super::disclosure_tests::{assert_safe, cell, city_report, v};
    // 其他行业 (P) is 3, small: each sector's part of it would give it away
    // (part ÷ coded × all coded), and so would its demand.
    let vacs = [
        v(10, "C", "110", "6-04-01"),
        v(3, "P", "110", "6-04-01"),
        v(20, "K", "110", "6-04-01"),
        v(8, "A", "110", "6-04-01"),
    ];
    let r = city_report(&vacs, &[]);
    let p = r.publish(5);
    assert_safe(&r);
    assert_eq!(cell(&p, "table_3", "P", "demand"), Cell::Suppressed);
    assert_eq!(cell(&p, "table_2", "total", "allocated"), Cell::Suppressed);
    for sector in ["primary", "secondary", "tertiary"] {
        for col in ["allocated", "demand", "share"] {
            assert_eq!(
                cell(&p, "table_2", sector, col),
                Cell::Suppressed,
                "{sector} {col}"
            );
        }
    }
    // A (8) goes with P in table 3, and with it primary's coded demand.
    assert_eq!(cell(&p, "table_3", "A", "demand"), Cell::Suppressed);
    assert_eq!(cell(&p, "table_2", "primary", "recorded"), Cell::Suppressed);
    // Unsuppressed: 3 over 8 + 10 + 20 = 38 coded, two decimals.
    let all = r.publish(0);
    assert_eq!(
        cell(&all, "table_2", "primary", "allocated"),
        Cell::Number(0.63)
    );
    assert_eq!(
        cell(&all, "table_2", "secondary", "demand"),
        Cell::Number(10.79)
    );
    assert_eq!(
        cell(&all, "table_2", "tertiary", "demand"),
        Cell::Number(21.58)
    );
    assert_eq!(cell(&all, "table_2", "total", "demand"), Cell::Count(41));
}

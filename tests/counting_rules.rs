//! The counting rules of the report and coverage, with hand-worked known answers at a
//! city, its province and the ministry: table 2 redistributes 其他行业 across the sectors
//! in proportion to their coded demand, table 9 counts demand by the skill level asked and
//! seekers by the level held, and M06 asks for a tracking contact in each month.
//!
//! Real processes: a ministry, province 440000 and cities 440100 and 440300 over QUIC.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Http, RunningNode, citizen_id, converged, tree, vacancy};
use serde_json::{Value, json};

/// A vacancy of `city` for `headcount`, in `industry`, asking `skill` (or none).
fn asking(city: &str, id: &str, headcount: u32, industry: &str, skill: Option<&str>) -> Value {
    let mut v = vacancy(id, headcount);
    v["data"]["industry"] = json!(industry);
    v["data"]["work_location"] = json!(format!("{}03", &city[..4]));
    if let Some(s) = skill {
        v["data"]["skill_level_min"] = json!(s);
    }
    v
}

/// A laid-off job seeker registered in 1999Q3, holding `skill` (or none), flagged in
/// hardship since June when `hardship`.
fn seeker(id: &str, n: u32, skill: Option<&str>, hardship: bool) -> Value {
    let mut s = json!({"kind": "job_seeker", "id": id, "data": {
        "citizen_id": citizen_id(&format!("44010419650101{n:03}")),
        "sex": "female", "birth_year": 1965, "residence_division": "440104",
        "hukou_class": "local_urban", "category": "laid_off",
        "registered_on": "1999-07-01", "valid_until": "1999-12-31"}});
    if let Some(level) = skill {
        s["data"]["skill_level"] = json!(level);
    }
    if hardship {
        s["data"]["hardship"] = json!({"basis": "older", "since": "1999-06-01"});
    }
    s
}

fn contact(id: &str, n: u32, on: &str) -> Value {
    json!({"kind": "service_event", "id": id, "data": {
        "citizen_id": citizen_id(&format!("44010419650101{n:03}")), "office_id": "O-1",
        "occurred_on": on, "event_type": "tracking_contact", "fee": "free",
        "mode": "in_person"}})
}

fn post(http: &Http, (files, node): &(common::NodeFiles, RunningNode), records: Vec<Value>) {
    let (status, answer) = http.post(&node.url("/v1/records"), &files.token, &json!(records));
    assert_eq!(status, 200, "{answer}");
}

/// The report of 1999Q3 at `node` for `scope` (its own scope when `None`).
fn report(http: &Http, node: &RunningNode, scope: Option<&str>) -> Value {
    let scope = scope.map_or(String::new(), |s| format!("&scope={s}"));
    let (status, body) = http.get(&node.url(&format!("/v1/reports/1999Q3?format=json{scope}")));
    assert_eq!(status, 200, "{body}");
    body
}

/// A cell of a published report as a number (`None`: empty).
fn cell(report: &Value, table: &str, row: &str, column: &str) -> Option<f64> {
    let v = common::report_cell(report, table, row, column)
        .unwrap_or_else(|| panic!("no {table}/{row}"));
    assert!(!v.is_string(), "{table}/{row}/{column} withheld: {v}");
    v.as_f64()
}

/// Table 2's sectors: coded demand, part of 其他行业 and demand, by row.
fn assert_sectors(report: &Value, expected: [(&str, f64, f64, f64); 3]) {
    for (row, recorded, allocated, demand) in expected {
        assert_eq!(
            cell(report, "table_2", row, "recorded"),
            Some(recorded),
            "{row}"
        );
        assert_eq!(
            cell(report, "table_2", row, "allocated"),
            Some(allocated),
            "{row}"
        );
        assert_eq!(
            cell(report, "table_2", row, "demand"),
            Some(demand),
            "{row}"
        );
    }
}

fn m06(http: &Http, node: &RunningNode) -> (u64, u64) {
    let (status, body) = http.get(&node.url("/v1/coverage?period=1999Q3"));
    assert_eq!(status, 200, "{body}");
    let v = body["summary"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "M06" && v["variant"] == "monthly_tracking")
        .unwrap()
        .clone();
    (
        v["numerator"].as_u64().unwrap(),
        v["denominator"].as_u64().unwrap(),
    )
}

#[test]
fn sectors_skill_levels_and_tracking_at_every_tier() {
    let t = tree(&["440100", "440300"]);
    let http = Http::new();
    let mut a = vec![
        asking("440100", "V-C", 10, "C", Some("intermediate")),
        asking("440100", "V-K", 20, "K", None),
        asking("440100", "V-A", 8, "A", Some("senior")),
        asking("440100", "V-P", 6, "P", None),
    ];
    a.extend((1..=5).map(|n| seeker(&format!("S-{n}"), n, Some("intermediate"), false)));
    a.extend((6..=11).map(|n| seeker(&format!("S-{n}"), n, None, n >= 10)));
    // Person 10 is contacted in July, August and September; person 11 not in August.
    a.extend([
        contact("T-10-7", 10, "1999-07-05"),
        contact("T-10-8", 10, "1999-08-05"),
        contact("T-10-9", 10, "1999-09-05"),
        contact("T-11-7", 11, "1999-07-05"),
        contact("T-11-9a", 11, "1999-09-01"),
        contact("T-11-9b", 11, "1999-09-20"),
    ]);
    post(&http, &t.cities[0], a);
    let mut b = vec![
        asking("440300", "V-C", 12, "C", Some("intermediate")),
        asking("440300", "V-G", 9, "G", None),
    ];
    b.extend((21..=25).map(|n| seeker(&format!("S-{n}"), n, Some("intermediate"), false)));
    post(&http, &t.cities[1], b);
    converged(&http, &t);

    let city = &t.cities[0].1;
    let (province, ministry) = (&t.province.1, &t.ministry.1);
    // 440100: coded demand A 8 (primary), C 10 (secondary), K 20 (tertiary) = 38;
    // 其他行业 P = 6 goes 6×8/38 = 1.26, 6×10/38 = 1.58, 6×20/38 = 3.16.
    let r = report(&http, city, None);
    assert_sectors(
        &r,
        [
            ("primary", 8.0, 1.26, 9.26),
            ("secondary", 10.0, 1.58, 11.58),
            ("tertiary", 20.0, 3.16, 23.16),
        ],
    );
    assert_eq!(cell(&r, "table_2", "total", "demand"), Some(44.0));
    assert_eq!(cell(&r, "table_2", "total", "allocated"), Some(6.0));
    // Table 9 at 440100: intermediate 10 asked, 5 held (ratio 2); senior 8 asked, none
    // held; no level: 20 + 6 = 26 asked, 6 held (4.3333); all 44 of 11 (4).
    assert_eq!(cell(&r, "table_9", "intermediate", "demand"), Some(10.0));
    assert_eq!(cell(&r, "table_9", "intermediate", "seekers"), Some(5.0));
    assert_eq!(cell(&r, "table_9", "intermediate", "ratio"), Some(2.0));
    assert_eq!(cell(&r, "table_9", "senior", "ratio"), None);
    assert_eq!(cell(&r, "table_9", "none", "demand"), Some(26.0));
    assert_eq!(cell(&r, "table_9", "none", "ratio"), Some(4.3333));
    assert_eq!(cell(&r, "table_9", "total", "ratio"), Some(4.0));

    // The province and the ministry: C 10 + 12 = 22, G 9 joins K 20 in tertiary (29),
    // A 8; coded 59, P 6: 6×8/59 = 0.81, 6×22/59 = 2.24, 6×29/59 = 2.95; all 65.
    // Table 9: intermediate 22 asked, 10 held (2.2); no level 35 asked, 6 held (5.8333).
    for (node, scope) in [
        (province, None),
        (ministry, Some("440000")),
        (ministry, None),
    ] {
        let r = report(&http, node, scope);
        assert_sectors(
            &r,
            [
                ("primary", 8.0, 0.81, 8.81),
                ("secondary", 22.0, 2.24, 24.24),
                ("tertiary", 29.0, 2.95, 31.95),
            ],
        );
        assert_eq!(cell(&r, "table_2", "total", "demand"), Some(65.0));
        assert_eq!(cell(&r, "table_9", "intermediate", "demand"), Some(22.0));
        assert_eq!(cell(&r, "table_9", "intermediate", "ratio"), Some(2.2));
        assert_eq!(cell(&r, "table_9", "none", "seekers"), Some(6.0));
        assert_eq!(cell(&r, "table_9", "none", "ratio"), Some(5.8333));
        assert_eq!(cell(&r, "table_9", "total", "seekers"), Some(16.0));
    }
    // M06: two persons flagged, one contacted in every month of 1999Q3.
    for node in [city, province, ministry] {
        assert_eq!(m06(&http, node), (1, 2));
    }
}

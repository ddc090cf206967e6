//! Change over time between real processes: a ministry, provinces 320000 and 610000 and
//! one city in each (320500 in the east, 610100 in the west), hand-built records in
//! 1999Q1, 1999Q4 and 2000Q1. The 2000Q1 report carries its changes against 1999Q4
//! (quarter on quarter) and 1999Q1 (year on year) with the figures worked out below at
//! the city, its province and the ministry, a small cell's change is withheld, the
//! ministry's report has the regional table, and coverage gives each target's trend —
//! through the API and the CLI.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{
    Http, Network, NodeFiles, RunningNode, citizen_id, eventually, free_udp_port, lmsync_ok,
};
use serde_json::{Value, json};

const PERIOD: &str = "2000Q1";

/// A vacancy of `city` valid from `from` to `to`, online by the quarter's end or never.
fn vacancy(city: &str, id: &str, headcount: u32, (from, to): (&str, &str), online: bool) -> Value {
    let mut v = common::vacancy(id, headcount);
    let d = &mut v["data"];
    d["work_location"] = json!(city);
    d["reported_on"] = json!(from);
    d["valid_from"] = json!(from);
    d["valid_until"] = json!(to);
    d["published_online_on"] = if online { json!(from) } else { Value::Null };
    d["publish_allowed"] = json!(online);
    v
}

/// `n` job seekers of `city` wanting `occupation`, valid from `from` to `to`; `first`
/// numbers them (ids and citizen ids stay distinct).
fn seekers(
    city: &str,
    first: u32,
    n: u32,
    occupation: &str,
    (from, to): (&str, &str),
) -> Vec<Value> {
    (first..first + n)
        .map(|i| {
            let citizen = citizen_id(&format!("{}0219700101{i:03}", &city[..4]));
            json!({"kind": "job_seeker", "id": format!("S-{i}"), "data": {
                "citizen_id": citizen, "name": "张三", "phone": "13800000000",
                "sex": "male", "birth_year": 1970, "residence_division": format!("{}02", &city[..4]),
                "hukou_class": "local_urban", "desired_occupations": [occupation],
                "category": "laid_off", "registered_on": from, "valid_until": to
            }})
        })
        .collect()
}

const Y1999Q1: (&str, &str) = ("1999-01-05", "1999-03-31");
const Y1999Q4: (&str, &str) = ("1999-10-05", "1999-12-31");
const Y2000Q1: (&str, &str) = ("2000-01-05", "2000-03-31");

/// 320500 (east):
/// - 1999Q1: demand 20 (one vacancy, online); 25 seekers (group 6).
/// - 1999Q4: demand 30 (online) + 10 (not online) = 40; 20 seekers (group 6).
/// - 2000Q1: demand 40 + 10 (online) + 10 (not online) = 60; 28 seekers of group 6 and
///   2 of group 4 (a small cell, withheld below 5) = 30.
fn suzhou() -> Vec<Value> {
    let c = "320502";
    let mut r = vec![
        vacancy(c, "V-1", 20, Y1999Q1, true),
        vacancy(c, "V-2", 30, Y1999Q4, true),
        vacancy(c, "V-3", 10, Y1999Q4, false),
        vacancy(c, "V-4", 40, Y2000Q1, true),
        vacancy(c, "V-5", 10, Y2000Q1, true),
        vacancy(c, "V-6", 10, Y2000Q1, false),
    ];
    r.extend(seekers("320500", 100, 25, "6-04", Y1999Q1));
    r.extend(seekers("320500", 200, 20, "6-04", Y1999Q4));
    r.extend(seekers("320500", 300, 28, "6-04", Y2000Q1));
    r.extend(seekers("320500", 400, 2, "4-01", Y2000Q1));
    r
}

/// 610100 (west): demand 10, 20, 20 and seekers 10, 10, 40 in 1999Q1, 1999Q4, 2000Q1.
fn xian() -> Vec<Value> {
    let c = "610102";
    let mut r = vec![
        vacancy(c, "V-1", 10, Y1999Q1, true),
        vacancy(c, "V-2", 20, Y1999Q4, true),
        vacancy(c, "V-3", 20, Y2000Q1, true),
    ];
    r.extend(seekers("610100", 100, 10, "6-04", Y1999Q1));
    r.extend(seekers("610100", 200, 10, "6-04", Y1999Q4));
    r.extend(seekers("610100", 300, 40, "6-04", Y2000Q1));
    r
}

/// A running node and its files.
type Node = (NodeFiles, RunningNode);

struct Tree {
    _net: Network,
    ministry: Node,
    provinces: Vec<Node>,
    cities: Vec<Node>,
}

/// Ministry 100000, provinces 320000 and 610000, cities 320500 and 610100.
fn two_region_tree() -> Tree {
    let net = Network::new();
    let m = net.init_at("100000", None, &format!("127.0.0.1:{}", free_udp_port()));
    let mr = RunningNode::start(&m);
    let mut provinces = Vec::new();
    let mut cities = Vec::new();
    for (province, city) in [("320000", "320500"), ("610000", "610100")] {
        let parent = format!("100000@{}", mr.quic.clone().unwrap());
        let listen = format!("127.0.0.1:{}", free_udp_port());
        let p = net.init_at(province, Some(&parent), &listen);
        let pr = RunningNode::start(&p);
        let c = net.init(
            city,
            Some(&format!("{province}@{}", pr.quic.clone().unwrap())),
        );
        let cr = RunningNode::start(&c);
        provinces.push((p, pr));
        cities.push((c, cr));
    }
    Tree {
        _net: net,
        ministry: (m, mr),
        provinces,
        cities,
    }
}

fn digest(http: &Http, node: &RunningNode, owner: &str) -> Value {
    http.get(&node.url(&format!("/v1/digest?owner={owner}"))).1
}

fn report(http: &Http, node: &RunningNode, scope: &str) -> Value {
    let url = node.url(&format!("/v1/reports/{PERIOD}?scope={scope}"));
    let (status, body) = http.get(&url);
    assert_eq!(status, 200, "{body}");
    body
}

/// The cell of `table`, `row`, `column` of a report's JSON.
fn cell<'a>(report: &'a Value, table: &str, row: &str, column: &str) -> &'a Value {
    common::report_cell(report, table, row, column).unwrap_or_else(|| panic!("no {table}/{row}"))
}

/// Asserts number cells (within rounding) by (table, row, column).
fn assert_cells(report: &Value, at: &str, expected: &[(&str, &str, &str, f64)]) {
    for (t, r, c, want) in expected {
        let got = cell(report, t, r, c);
        let x = got
            .as_f64()
            .unwrap_or_else(|| panic!("{at} {t}/{r}/{c} = {got}"));
        assert!(
            (x - want).abs() < 1e-9,
            "{at} {t}/{r}/{c} = {x}, expected {want}"
        );
    }
}

/// The east city's figures (and its province's, the only city there), worked by hand:
/// demand 60 vs 40 (1999Q4): +20, +50 %; vs 20 (1999Q1): +40, +200 %. Seekers 30 vs
/// 20: +10, +50 %; vs 25: +5, +20 %. 求人倍率 60/30 = 2 vs 40/20 = 2: 0; vs 20/25 =
/// 0.8: +1.2. Table 5, group 6 demand 60 vs 40: +20; its share 1.0 vs 1.0: 0 pp.
const EAST: [(&str, &str, &str, f64); 14] = [
    ("table_1", "total", "demand", 60.0),
    ("table_1", "total", "demand_qoq", 20.0),
    ("table_1", "total", "demand_qoq_pct", 50.0),
    ("table_1", "total", "demand_yoy", 40.0),
    ("table_1", "total", "demand_yoy_pct", 200.0),
    ("table_1", "total", "seekers_qoq", 10.0),
    ("table_1", "total", "seekers_qoq_pct", 50.0),
    ("table_1", "total", "seekers_yoy", 5.0),
    ("table_1", "total", "seekers_yoy_pct", 20.0),
    ("table_1", "total", "ratio_qoq", 0.0),
    ("table_1", "total", "ratio_yoy", 1.2),
    ("table_5", "6", "demand_qoq", 20.0),
    ("table_5", "6", "demand_share_qoq_pp", 0.0),
    ("table_5", "6", "demand_yoy_pct", 200.0),
];

/// The nation (both cities), and the regional table:
/// - 2000Q1: east 60 / 30 (2.0), west 20 / 40 (0.5), total 80 / 70 (1.1429).
/// - 1999Q4: east 40 / 20 (2.0), west 20 / 10 (2.0), total 60 / 30 (2.0).
/// - 1999Q1: east 20 / 25 (0.8), west 10 / 10 (1.0), total 30 / 35 (0.8571).
///
/// Total demand 80 vs 60: +20, +33.33 %; vs 30: +50, +166.67 %. Seekers 70 vs 30: +40,
/// +133.33 %; vs 35: +35, +100 %. Ratio 1.1429 − 2 = −0.8571; 1.1429 − 0.8571 = 0.2858.
/// West: demand 20 vs 20: 0, 0 %; seekers 40 vs 10: +30, +300 %; ratio 0.5 − 2 = −1.5,
/// 0.5 − 1.0 = −0.5. East as above.
const NATION: [(&str, &str, &str, f64); 23] = [
    ("table_1", "total", "demand", 80.0),
    ("table_1", "total", "demand_qoq", 20.0),
    ("table_1", "total", "demand_qoq_pct", 33.33),
    ("table_1", "total", "demand_yoy", 50.0),
    ("table_1", "total", "demand_yoy_pct", 166.67),
    ("table_1", "total", "seekers_qoq", 40.0),
    ("table_1", "total", "seekers_qoq_pct", 133.33),
    ("table_1", "total", "seekers_yoy_pct", 100.0),
    ("table_1", "total", "ratio", 1.1429),
    ("table_1", "total", "ratio_qoq", -0.8571),
    ("table_1", "total", "ratio_yoy", 0.2858),
    ("table_10", "east", "demand", 60.0),
    ("table_10", "east", "seekers", 30.0),
    ("table_10", "east", "ratio", 2.0),
    ("table_10", "east", "ratio_yoy", 1.2),
    ("table_10", "west", "demand", 20.0),
    ("table_10", "west", "ratio", 0.5),
    ("table_10", "west", "demand_qoq", 0.0),
    ("table_10", "west", "demand_qoq_pct", 0.0),
    ("table_10", "west", "seekers_qoq_pct", 300.0),
    ("table_10", "west", "ratio_qoq", -1.5),
    ("table_10", "west", "ratio_yoy", -0.5),
    ("table_10", "total", "demand_yoy", 50.0),
];

fn withheld(v: &Value) -> bool {
    *v == json!({"suppressed": true})
}

#[test]
fn changes_regions_and_target_trends_at_every_tier() {
    let t = two_region_tree();
    let http = Http::new();
    for ((files, city), records) in t.cities.iter().zip([suzhou(), xian()]) {
        let (status, body) = http.post(&city.url("/v1/records"), &files.token, &json!(records));
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["accepted"].as_array().map(Vec::len),
            Some(records.len()),
            "{body}"
        );
    }
    // 320000 designates 320500 a pilot from 1999: the notice's M01 target applies.
    let (pf, province) = &t.provinces[0];
    let designation = json!({"city": "320500", "province": "320000",
        "designated_on": "1999-01-01", "batch": 1, "status": "active"});
    let (status, body) = http.post(
        &province.url("/v1/documents"),
        &pf.token,
        &json!({"kind": "pilot_designation", "id": "P-320500", "body": designation}),
    );
    assert_eq!(status, 200, "{body}");
    let east_city = &t.cities[0].1;
    let everywhere = [east_city, &t.provinces[0].1, &t.ministry.1];
    eventually(
        "the records and the designation everywhere",
        Duration::from_secs(60),
        || {
            let records = t.cities.iter().all(|(f, c)| {
                let here = digest(&http, c, &f.code);
                let province = if f.code == "320500" {
                    &t.provinces[0].1
                } else {
                    &t.provinces[1].1
                };
                digest(&http, province, &f.code) == here
                    && digest(&http, &t.ministry.1, &f.code) == here
            });
            records
                && everywhere.iter().all(|n| {
                    http.get(&n.url("/v1/documents/pilot_designation/P-320500"))
                        .0
                        == 200
                })
        },
    );

    // The east city, at the city, the province and the ministry; its province alike.
    for node in everywhere {
        for scope in ["320500", "320000"] {
            if std::ptr::eq(node, east_city) && scope == "320000" {
                continue; // outside the city's subtree
            }
            let r = report(&http, node, scope);
            assert_cells(&r, scope, &EAST);
            assert_eq!(r["compared_with"]["previous_quarter"], "1999Q4", "{r}");
            assert_eq!(r["compared_with"]["same_quarter_last_year"], "1999Q1");
            // The 2 seekers of group 4 are withheld, and so are their changes.
            assert!(withheld(cell(&r, "table_5", "4", "seekers")), "{scope}");
            for c in [
                "seekers_qoq",
                "seekers_qoq_pct",
                "seekers_yoy",
                "seekers_yoy_pct",
            ] {
                assert!(withheld(cell(&r, "table_5", "4", c)), "{scope} {c}");
            }
            assert!(
                r["tables"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|t| t["id"] != "table_10")
            );
        }
    }
    // The nation, with the regions, at the ministry.
    let national = report(&http, &t.ministry.1, "100000");
    assert_cells(&national, "national", &NATION);
    assert_eq!(cell(&national, "table_10", "central", "demand"), &json!(0));
    assert_eq!(
        cell(&national, "table_10", "central", "ratio"),
        &Value::Null
    );
    assert!(withheld(cell(&national, "table_5", "4", "seekers_yoy")));

    // A quarter without an earlier one with data: 1999Q1 has no 1998Q4 or 1998Q1.
    let url = t.ministry.1.url("/v1/reports/1999Q1?scope=320500");
    let (_, early) = http.get(&url);
    assert_eq!(
        early["compared_with"]["previous_quarter"],
        Value::Null,
        "{early}"
    );
    assert_eq!(cell(&early, "table_1", "total", "demand_qoq"), &Value::Null);

    // The other renderings carry the changes: CSV columns and the text table.
    let (_, csv) = http.get_text(
        &t.ministry
            .1
            .url(&format!("/v1/reports/{PERIOD}?scope=320500&format=csv")),
    );
    assert!(
        csv.contains(
            "key,label_zh,label_en,demand,demand_qoq,demand_qoq_pct,demand_yoy,demand_yoy_pct,"
        ),
        "{csv}"
    );
    assert!(csv.contains("\ntotal,合计,Total,60,20,50,40,200,"), "{csv}");
    let (_, html) = http.get_text(
        &t.ministry
            .1
            .url(&format!("/v1/reports/{PERIOD}?scope=100000&format=html")),
    );
    assert!(
        html.contains("分地区供求状况") && html.contains("比上季度"),
        "{html}"
    );

    // Coverage: M01 of 320500 over 1999Q2–2000Q1: no vacancy in 1999Q2 and Q3; 1/2
    // online in 1999Q4 (0.5, missed ≥ 0.6); 2/3 in 2000Q1 (0.6667, met): improving.
    // By headcount: 30/40 = 0.75 then 50/60 = 0.8333, both met: improving.
    for node in everywhere {
        let (status, c) =
            http.get(&node.url(&format!("/v1/coverage?period={PERIOD}&scope=320500")));
        assert_eq!(status, 200, "{c}");
        let trend = |variant: &str| {
            c["target_trends"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["id"] == "M01" && x["variant"] == variant)
                .unwrap_or_else(|| panic!("no M01 {variant} trend in {c}"))
                .clone()
        };
        let m01 = trend("by_reports");
        let q = m01["quarters"].as_array().unwrap();
        let periods: Vec<&str> = q.iter().map(|p| p["period"].as_str().unwrap()).collect();
        assert_eq!(periods, ["1999Q2", "1999Q3", "1999Q4", "2000Q1"]);
        assert_eq!((&q[0]["value"], &q[0]["met"]), (&Value::Null, &Value::Null));
        assert_eq!(
            (&q[2]["numerator"], &q[2]["denominator"]),
            (&json!(1), &json!(2))
        );
        assert_eq!((&q[2]["value"], &q[2]["met"]), (&json!(0.5), &json!(false)));
        assert_eq!(
            (&q[3]["numerator"], &q[3]["denominator"]),
            (&json!(2), &json!(3))
        );
        assert_eq!(q[3]["met"], true);
        assert_eq!(m01["direction"], "improving", "{m01}");
        let by_headcount = trend("by_headcount");
        let q = by_headcount["quarters"].as_array().unwrap();
        assert_eq!(
            (&q[2]["numerator"], &q[2]["denominator"]),
            (&json!(30), &json!(40))
        );
        assert_eq!(
            (&q[3]["numerator"], &q[3]["denominator"]),
            (&json!(50), &json!(60))
        );
        assert_eq!(by_headcount["direction"], "improving");
    }

    // The province's dashboard for the quarter: the trend table, direction in words.
    let (status, page) = http.get_text(&t.provinces[0].1.url(&format!("/?period={PERIOD}")));
    assert_eq!(status, 200);
    let trends = page
        .split("id=\"target-trends\"")
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"));
    let m01 = trends
        .split("<tr>")
        .find(|r| r.contains("M01") && r.contains("by_reports"));
    let m01 = m01.unwrap_or_else(|| panic!("{trends}"));
    assert!(
        m01.contains("0.67 met") && m01.contains("improving"),
        "{m01}"
    );

    // The CLI: the report's text table has the change columns; coverage the trends.
    let ministry = t.ministry.0.config.to_str().unwrap();
    let out = lmsync_ok(&[
        "report", "--config", ministry, "--period", PERIOD, "--scope", "320500",
    ]);
    assert!(
        out.contains("比上季度") && out.contains("比去年同期"),
        "{out}"
    );
    assert!(out.contains("Target trends"), "{out}");
    let out = lmsync_ok(&[
        "coverage", "--config", ministry, "--period", PERIOD, "--scope", "320500",
    ]);
    let line = out
        .lines()
        .find(|l| l.starts_with("M01") && l.contains("by_reports"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("0.5000 (1/2) missed"), "{line}");
    assert!(line.contains("0.6667 (2/3) met"), "{line}");
    assert!(line.trim_end().ends_with("improving"), "{line}");
    let out = lmsync_ok(&[
        "coverage", "--config", ministry, "--period", PERIOD, "--scope", "320500", "--json",
    ]);
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert!(
        printed["target_trends"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
}

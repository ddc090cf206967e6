//! Crosswalks: the ministry publishes how old codes map to the edition in force; reports
//! and coverage asked for `edition=current` show merged occupation rows and a city by its
//! new division code, with what was mapped, at the city, its province and the ministry,
//! while the records keep their codes. Only the ministry issues a crosswalk, and a
//! malformed one is refused and stores nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Http, Network, NodeFiles, RunningNode, citizen_id, eventually, lmsync_ok};
use serde_json::{Value, json};

const CITY: &str = "142200";
const NEW_CODE: &str = "140900";

fn vacancy(id: &str, occupation: &str, headcount: u32, from: &str, until: &str) -> Value {
    json!({"kind": "vacancy", "id": id, "data": {
        "receiving_office_id": "O-1", "employer_id": "E-1", "reported_on": from,
        "report_channel": "on_site", "title": "车工", "occupation": occupation,
        "industry": "C", "headcount": headcount, "contract_term": "one_year_or_more",
        "term_months": 12, "employment_type": "full_time", "work_location": "142201",
        "valid_from": from, "valid_until": until, "publish_allowed": false,
        "fill_state": "open"}})
}

fn seeker(n: u32, occupation: &str, from: &str, until: &str) -> Value {
    json!({"kind": "job_seeker", "id": format!("S-{n}"), "data": {
        "citizen_id": citizen_id(&format!("14220119650317{n:03}")),
        "sex": "male", "birth_year": 1965, "residence_division": "142201",
        "hukou_class": "local_urban", "desired_occupations": [occupation],
        "category": "laid_off", "registered_on": from, "valid_until": until}})
}

/// The count in `table`'s row `row`, column `column` of a published report (null
/// without that row).
fn cell(report: &Value, table: &str, row: &str, column: &str) -> Value {
    common::report_cell(report, table, row, column)
        .cloned()
        .unwrap_or(Value::Null)
}

fn row_keys(report: &Value, table: &str) -> Vec<String> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == table)
        .unwrap()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect()
}

fn publish(net: &Network, files: &NodeFiles, name: &str, doc: &Value) -> String {
    let path = net.path().join(name);
    std::fs::write(&path, doc.to_string()).unwrap();
    lmsync_ok(&[
        "publish",
        "--config",
        files.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ])
}

fn occupation_crosswalk() -> Value {
    json!({"kind": "crosswalk", "id": "CN-OCC@1999-2015", "body": {
        "scheme": "CN-OCC", "from_version": "1999", "to_version": "2015",
        "effective_date": "2015-07-29", "entries": [
            {"from": "6-04-01", "to": "6-18-01", "relation": "mergedInto", "name": "机械加工人员"},
            {"from": "6-04-02", "to": "6-18-01", "relation": "mergedInto"}]}})
}

#[test]
fn reports_in_the_edition_in_force_merge_old_codes_and_follow_the_city_s_new_code() {
    let net = Network::new();
    let m = net.init("100000", None);
    let mr = RunningNode::start(&m);
    let p = net.init(
        "140000",
        Some(&format!("100000@{}", mr.quic.clone().unwrap())),
    );
    let pr = RunningNode::start(&p);
    let c = net.init(CITY, Some(&format!("140000@{}", pr.quic.clone().unwrap())));
    let cr = RunningNode::start(&c);
    let http = Http::new();

    // 1999Q4 (all new in the quarter): vacancies 6-04-01 ×10, 6-04-02 ×12, 4-01-01 ×9;
    // seekers: five want 6-04-01, six want 6-04-02. 2001Q1: one vacancy 6-04-01 ×8.
    let (q4, q4_end) = ("1999-10-10", "1999-12-20");
    let mut records = vec![
        vacancy("V-1", "6-04-01", 10, q4, q4_end),
        vacancy("V-2", "6-04-02", 12, q4, q4_end),
        vacancy("V-3", "4-01-01", 9, q4, q4_end),
        vacancy("V-4", "6-04-01", 8, "2001-01-10", "2001-03-20"),
    ];
    records.extend((1..=5).map(|n| seeker(n, "6-04-01", q4, q4_end)));
    records.extend((6..=11).map(|n| seeker(n, "6-04-02", q4, q4_end)));
    let (status, answer) = http.post(&cr.url("/v1/records"), &c.token, &json!(records));
    assert_eq!(status, 200, "{answer}");

    // Neither the city nor the province may issue a crosswalk; a malformed one is refused
    // at the ministry with its reason, and nothing is stored.
    let doc = occupation_crosswalk();
    let (status, answer) = http.post(&cr.url("/v1/documents"), &c.token, &doc);
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("forbidden")),
        "{answer}"
    );
    let (status, answer) = http.post(&pr.url("/v1/documents"), &p.token, &doc);
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("not_the_issuer")),
        "{answer}"
    );
    let mut bad = doc.clone();
    bad["id"] = json!("CN-OCC@bad");
    bad["body"]["entries"][1]["to"] = json!("6-18");
    let (status, answer) = http.post(&mr.url("/v1/documents"), &m.token, &bad);
    assert_eq!(
        (status, answer["error"].as_str()),
        (422, Some("invalid_body")),
        "{answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("different levels"),
        "{answer}"
    );
    assert_eq!(
        http.get(&mr.url("/v1/documents/crosswalk/CN-OCC@bad")).0,
        404
    );

    // The ministry publishes both crosswalks (the division one from the shipped example).
    let out = publish(&net, &m, "occ.json", &doc);
    assert!(out.contains("published"), "{out}");
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/crosswalk-CN-DIV-199912-200012.json");
    let out = lmsync_ok(&[
        "publish",
        "--config",
        m.config.to_str().unwrap(),
        example.to_str().unwrap(),
    ]);
    assert!(out.contains("published"), "{out}");

    let nodes = [(&m, &mr), (&p, &pr), (&c, &cr)];
    let limit = Duration::from_secs(60);
    for (_, node) in nodes {
        eventually("both crosswalks at every node", limit, || {
            ["CN-OCC@1999-2015", "CN-DIV@199912-200012"]
                .iter()
                .all(|id| {
                    http.get(&node.url(&format!("/v1/documents/crosswalk/{id}")))
                        .0
                        == 200
                })
        });
        eventually("the city's records at every node", limit, || {
            http.get(&node.url(&format!("/v1/digest?owner={CITY}"))).1["records"] == 15
        });
    }
    let listed = http.get(&cr.url("/v1/documents")).1;
    assert!(
        listed["documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "crosswalk" && d["issuer"] == "100000"),
        "{listed}"
    );

    for (files, node) in nodes {
        let at = &files.code;
        // Codes as recorded: the three minor groups, the city as 142200, nothing mapped.
        let (status, recorded) = http.get(&node.url(&format!("/v1/reports/1999Q4?scope={CITY}")));
        assert_eq!(status, 200, "{at}: {recorded}");
        assert_eq!(recorded["scope"], CITY, "{at}");
        assert_eq!(recorded["mapped"], json!([]), "{at}");
        assert_eq!(recorded["edition"], Value::Null, "{at}");
        // Table 6, largest gap first: 4-01-01 9−0 = 9, 6-04-02 12−6 = 6, 6-04-01 10−5 = 5.
        assert_eq!(
            row_keys(&recorded, "table_6"),
            ["4-01-01", "6-04-02", "6-04-01"],
            "{at}"
        );

        // In the edition in force: 6-04-01 and 6-04-02 are one row 6-18-01 with demand
        // 10 + 12 = 22, seekers 5 + 6 = 11, gap 11 (ahead of 4-01-01's 9).
        let scope = if files.code == CITY {
            String::new()
        } else {
            format!("&scope={}", files.code)
        };
        let (status, current) =
            http.get(&node.url(&format!("/v1/reports/1999Q4?edition=current{scope}")));
        assert_eq!(status, 200, "{at}: {current}");
        assert_eq!(
            row_keys(&current, "table_6"),
            ["6-18-01", "4-01-01"],
            "{at}"
        );
        assert_eq!(cell(&current, "table_6", "6-18-01", "demand"), 22, "{at}");
        assert_eq!(cell(&current, "table_6", "6-18-01", "seekers"), 11, "{at}");
        assert_eq!(cell(&current, "table_6", "6-18-01", "gap"), 11, "{at}");
        // Table 5 keeps major group 6: 22 demand, 11 seekers; table 1: 22 + 9 = 31.
        assert_eq!(cell(&current, "table_5", "6", "demand"), 22, "{at}");
        assert_eq!(cell(&current, "table_5", "6", "seekers"), 11, "{at}");
        assert_eq!(cell(&current, "table_1", "total", "demand"), 31, "{at}");
        assert_eq!(current["edition"]["occupation"], "2015", "{at}");
        assert_eq!(current["edition"]["division"], "200012", "{at}");
        let mapped = current["mapped"].as_array().unwrap();
        let minor = |from: &str| {
            mapped
                .iter()
                .find(|m| m["level"] == "minor" && m["from"] == from)
                .unwrap_or_else(|| panic!("{at}: no {from} in {mapped:?}"))
                .clone()
        };
        assert_eq!(
            minor("6-04-01"),
            json!({"scheme": "CN-OCC", "level": "minor", "from": "6-04-01", "to": "6-18-01",
                "relation": "mergedInto", "demand": 10, "seekers": 5}),
            "{at}"
        );
        assert_eq!(minor("6-04-02")["demand"], 12, "{at}");
        assert_eq!(minor("6-04-02")["seekers"], 6, "{at}");
        assert!(
            mapped.iter().any(|m| m["level"] == "division"
                && m["from"] == CITY
                && m["to"] == NEW_CODE
                && m["relation"] == "replacedBy"),
            "{at}: {mapped:?}"
        );
        let text = http
            .get_text(&node.url(&format!(
                "/v1/reports/1999Q4?edition=current&format=table{scope}"
            )))
            .1;
        assert!(
            text.contains(
                "edition in force: CN-OCC 6-04-02 → 6-18-01 (mergedInto): demand 12, job seekers 6"
            ),
            "{at}: {text}"
        );
        assert!(text.contains("6-18-01"), "{at}");
        let html = http
            .get_text(&node.url(&format!(
                "/v1/reports/1999Q4?edition=current&format=html{scope}"
            )))
            .1;
        assert!(
            html.contains("edition in force: CN-DIV 142200 → 140900"),
            "{at}"
        );

        // The city by its code in force: 140900 answers for both quarters of its history.
        for (period, demand) in [("1999Q4", 31), ("2001Q1", 8)] {
            let (status, r) = http.get(&node.url(&format!(
                "/v1/reports/{period}?scope={NEW_CODE}&edition=current"
            )));
            assert_eq!(status, 200, "{at} {period}: {r}");
            assert_eq!(r["scope"], NEW_CODE, "{at} {period}");
            assert_eq!(
                r["scope_label"], "140900 忻州市 (recorded as 142200)",
                "{at} {period}"
            );
            assert_eq!(
                cell(&r, "table_1", "total", "demand"),
                demand,
                "{at} {period}"
            );
            // Asked by the new code without the edition: the recorded code answers.
            let (status, r) =
                http.get(&node.url(&format!("/v1/reports/{period}?scope={NEW_CODE}")));
            assert_eq!(
                (status, r["scope"].as_str()),
                (200, Some(CITY)),
                "{at} {period}: {r}"
            );
            assert_eq!(
                cell(&r, "table_1", "total", "demand"),
                demand,
                "{at} {period}"
            );
        }
        // 2001Q1: one vacancy of 6-04-01 ×8, shown under 6-18-01.
        let r = http
            .get(&node.url(&format!(
                "/v1/reports/2001Q1?scope={NEW_CODE}&edition=current"
            )))
            .1;
        assert_eq!(cell(&r, "table_6", "6-18-01", "demand"), 8, "{at}");

        // Coverage names the city 140900, with its recorded code.
        let (status, cov) = http.get(&node.url("/v1/coverage?period=1999Q4&edition=current"));
        assert_eq!(status, 200, "{at}: {cov}");
        let city = cov["cities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["recorded_as"] == CITY)
            .unwrap_or_else(|| panic!("{at}: {cov}"));
        assert_eq!(
            (city["city"].as_str(), city["name"].as_str()),
            (Some(NEW_CODE), Some("忻州市"))
        );
        assert_eq!(city["records"], 15, "{at}");
        assert!(
            cov["mapped"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["from"] == CITY && m["to"] == NEW_CODE)
        );
        let (status, cov) = http.get(&node.url(&format!(
            "/v1/coverage?period=2001Q1&scope={NEW_CODE}&edition=current"
        )));
        assert_eq!(
            (status, cov["scope"].as_str()),
            (200, Some(NEW_CODE)),
            "{at}: {cov}"
        );
        let recorded = http.get(&node.url("/v1/coverage?period=1999Q4")).1;
        assert!(
            recorded["cities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["city"] == CITY && x["recorded_as"].is_null()),
            "{at}: {recorded}"
        );
    }

    // Through the CLI, at the province: the merged row and what was mapped.
    let printed = lmsync_ok(&[
        "report",
        "--config",
        p.config.to_str().unwrap(),
        "--period",
        "1999Q4",
        "--scope",
        NEW_CODE,
        "--current-edition",
    ]);
    assert!(
        printed.contains("140900 忻州市 (recorded as 142200)"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "edition in force: CN-OCC 6-04-01 → 6-18-01 (mergedInto): demand 10, job seekers 5"
        ),
        "{printed}"
    );
    let printed = lmsync_ok(&[
        "report",
        "--config",
        p.config.to_str().unwrap(),
        "--period",
        "1999Q4",
    ]);
    assert!(!printed.contains("edition in force"), "{printed}");
    assert!(printed.contains("6-04-02"), "{printed}");

    // The records keep the codes they were written with.
    let (status, v) = http.get(&cr.url(&format!("/v1/records/{CITY}/vacancy/V-2")));
    assert_eq!(status, 200);
    assert_eq!(v["data"]["occupation"], "6-04-02", "{v}");
    assert_eq!(v["owner"], CITY, "{v}");
}

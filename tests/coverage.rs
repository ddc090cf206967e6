//! Coverage monitoring and the quarterly report between real processes: hand-built
//! records with known answers give the same metrics at the city, the province and the
//! ministry; province pilot designations reach the ministry, where six fail M11; a city
//! whose link is cut turns stale on the ministry's coverage page within the threshold; the
//! report's tables reconcile, and CSV agrees with JSON.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Http, RunningNode, Tree, citizen_id, converged, eventually, lmsync_ok, tree};
use serde_json::{Value, json};

const PERIOD: &str = "1999Q4";

/// A one-year-plus vacancy valid through the quarter, online from October or never.
fn vacancy(id: &str, online: bool) -> Value {
    let mut v = common::vacancy(id, 2);
    v["data"]["valid_from"] = json!("1999-10-01");
    v["data"]["valid_until"] = json!("1999-12-31");
    v["data"]["reported_on"] = json!("1999-10-01");
    v["data"]["published_online_on"] = if online {
        json!("1999-10-05")
    } else {
        Value::Null
    };
    v["data"]["publish_allowed"] = json!(online);
    v
}

fn service(id: &str, person: &str, event_type: &str, on: &str, vacancies: &[&str]) -> Value {
    json!({"kind": "service_event", "id": id, "data": {
        "citizen_id": person, "office_id": "O-1", "occurred_on": on, "event_type": event_type,
        "vacancy_refs": vacancies, "fee": "free", "mode": "in_person"}})
}

/// Ten one-year-plus vacancies (six online) and one laid-off worker in the re-employment
/// centre since July with one guidance session, two job-information provisions and one
/// free training offer: M01 = 0.60 (pass), M02 pass, M03 fail, M04 pass.
fn known_records() -> Vec<Value> {
    let worker = citizen_id("44010419700101123");
    let mut records: Vec<Value> = (1..=10)
        .map(|i| vacancy(&format!("V-{i}"), i <= 6))
        .collect();
    records.push(json!({"kind": "laid_off_episode", "id": "L-1", "data": {
        "citizen_id": worker, "employer_id": "E-1", "laid_off_on": "1999-06-15",
        "rsc_entry_on": "1999-07-01", "rsc_office_id": "O-1", "agreement_signed": true}}));
    records.push(service(
        "S-1",
        &worker,
        "career_guidance",
        "1999-07-05",
        &[],
    ));
    records.push(service(
        "S-2",
        &worker,
        "job_info_provision",
        "1999-07-06",
        &["V-1"],
    ));
    records.push(service(
        "S-3",
        &worker,
        "job_info_provision",
        "1999-08-06",
        &["V-2"],
    ));
    records.push(service("S-4", &worker, "training_offer", "1999-08-07", &[]));
    records
}

fn metric<'a>(coverage: &'a Value, id: &str, variant: &str) -> &'a Value {
    coverage["summary"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id && v["variant"] == variant)
        .unwrap_or_else(|| panic!("no {id}/{variant} in {coverage}"))
}

fn coverage(http: &Http, node: &RunningNode, query: &str) -> Value {
    let (status, body) = http.get(&node.url(&format!("/v1/coverage?{query}")));
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn known_answers_are_the_same_at_the_city_the_province_and_the_ministry() {
    let t = tree(&["440100"]);
    let http = Http::new();
    let (files, city) = &t.cities[0];
    let (status, body) = http.post(
        &city.url("/v1/records"),
        &files.token,
        &json!(known_records()),
    );
    assert_eq!(status, 200, "{body}");
    // The province designates the city a pilot: the notice's targets apply to pilots.
    let (pf, province) = &t.province;
    let (status, body) = publish(
        &http,
        province,
        &pf.token,
        "pilot_designation",
        "P-440100",
        designation("440100"),
    );
    assert_eq!(status, 200, "{body}");
    converged(&http, &t);
    for node in [city, &t.province.1, &t.ministry.1] {
        eventually(
            "the designation at every tier",
            Duration::from_secs(30),
            || {
                http.get(&node.url("/v1/documents/pilot_designation/P-440100"))
                    .0
                    == 200
            },
        );
    }

    let query = format!("period={PERIOD}&scope=440100");
    for node in [city, &t.province.1, &t.ministry.1] {
        let c = coverage(&http, node, &query);
        let m01 = metric(&c, "M01", "by_reports");
        assert_eq!(
            (&m01["numerator"], &m01["denominator"], &m01["status"]),
            (&json!(6), &json!(10), &json!("pass")),
            "{m01}"
        );
        assert!((m01["value"].as_f64().unwrap() - 0.6).abs() < 1e-9);
        let by_headcount = metric(&c, "M01", "by_headcount");
        assert_eq!(
            (&by_headcount["numerator"], &by_headcount["denominator"]),
            (&json!(12), &json!(20))
        );
        for (id, passes) in [("M02", 1), ("M03", 0), ("M04", 1)] {
            let m = metric(&c, id, "cohort");
            assert_eq!(
                (&m["numerator"], &m["denominator"]),
                (&json!(passes), &json!(1)),
                "{id}: {m}"
            );
            let expected = if passes == 1 { "pass" } else { "fail" };
            assert_eq!(m["status"], expected, "{id}: {m}");
        }
        assert_eq!(c["cities"][0]["city"], "440100");
        assert_eq!(c["cities"][0]["records"], 15);
    }
    // Upstream, freshness and lag of the city are measured; at the city itself they are not.
    let at_ministry = coverage(&http, &t.ministry.1, &query);
    assert_eq!(at_ministry["cities"][0]["stale"], false, "{at_ministry}");
    assert!(at_ministry["cities"][0]["seconds_since_received"].is_i64());

    // The CLI prints the report and the target status.
    let out = lmsync_ok(&[
        "report",
        "--config",
        t.ministry.0.config.to_str().unwrap(),
        "--period",
        PERIOD,
        "--scope",
        "440100",
        "--format",
        "json",
    ]);
    let printed: Value = serde_json::from_str(&out).unwrap();
    let statuses = printed["target_status"].as_array().unwrap();
    assert!(
        statuses
            .iter()
            .any(|v| v["id"] == "M03" && v["status"] == "fail"),
        "{out}"
    );
    assert_eq!(printed["report"]["period"], PERIOD);
}

/// Publishes a document at `node` through the API.
fn publish(
    http: &Http,
    node: &RunningNode,
    token: &str,
    kind: &str,
    id: &str,
    body: Value,
) -> (u16, Value) {
    http.post(
        &node.url("/v1/documents"),
        token,
        &json!({"kind": kind, "id": id, "body": body}),
    )
}

fn designation(city: &str) -> Value {
    json!({"city": city, "province": "440000", "designated_on": "1999-07-01", "batch": 1, "status": "active"})
}

const GUANGDONG: [&str; 6] = ["440100", "440300", "440200", "440400", "440500", "440600"];

fn m11_of_guangdong(http: &Http, t: &Tree) -> Value {
    let c = coverage(http, &t.ministry.1, &format!("period={PERIOD}"));
    c["provinces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["province"] == "440000")
        .map(|p| p["m11"].clone())
        .unwrap()
}

#[test]
fn a_province_with_six_pilots_fails_m11_at_the_ministry() {
    let t = tree(&[]);
    let http = Http::new();
    let (pf, province) = &t.province;
    // A malformed designation is refused at publish time.
    let (status, body) = publish(
        &http,
        province,
        &pf.token,
        "pilot_designation",
        "P-bad",
        json!({"city": "440100"}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid_body")),
        "{body}"
    );
    for city in &GUANGDONG[..3] {
        let (status, body) = publish(
            &http,
            province,
            &pf.token,
            "pilot_designation",
            &format!("P-{city}"),
            designation(city),
        );
        assert_eq!(status, 200, "{body}");
    }
    eventually(
        "three designations at the ministry",
        Duration::from_secs(30),
        || m11_of_guangdong(&http, &t)["numerator"] == 3,
    );
    assert_eq!(m11_of_guangdong(&http, &t)["status"], "pass");
    for city in &GUANGDONG[3..] {
        publish(
            &http,
            province,
            &pf.token,
            "pilot_designation",
            &format!("P-{city}"),
            designation(city),
        );
    }
    eventually(
        "six designations at the ministry",
        Duration::from_secs(30),
        || m11_of_guangdong(&http, &t)["numerator"] == 6,
    );
    let m11 = m11_of_guangdong(&http, &t);
    assert_eq!(m11["status"], "fail", "{m11}");
    // The documents came up from the province, signed by it.
    let (_, doc) = http.get(&t.ministry.1.url("/v1/documents/pilot_designation/P-440600"));
    assert_eq!(doc["issuer"], "440000", "{doc}");
    // The ministry's coverage page says so, in words.
    let (_, page) = http.get_text(&t.ministry.1.url(&format!("/?period={PERIOD}")));
    let row = page
        .split("<tr data-province=\"440000\">")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_else(|| panic!("no Guangdong row on the page"));
    assert!(row.contains(">6<") && row.contains("fail"), "{row}");
    // A ministry document under an id a province issued is another document (documents
    // are identified by issuer too): it neither replaces nor hides the province's.
    let (mf, ministry) = &t.ministry;
    let (status, answer) = publish(
        &http,
        ministry,
        &mf.token,
        "pilot_designation",
        "P-440100",
        json!({"city": "440100", "province": "440000", "designated_on": "1999-07-01", "batch": 1, "status": "active", "confirms": true}),
    );
    assert_eq!(status, 200, "{answer}");
    let url = "/v1/documents/pilot_designation/P-440100";
    assert_eq!(http.get(&ministry.url(url)).0, 409, "two issuers, one id");
    let (_, provincial) = http.get(&ministry.url(&format!("{url}?issuer=440000")));
    assert_eq!(
        provincial["body"]["confirms"],
        serde_json::Value::Null,
        "{provincial}"
    );
}

#[test]
fn a_city_whose_link_is_cut_turns_stale_on_the_ministry_page() {
    let threshold = 3;
    let mut t = common::tree_with(&["440100"], |code, text| {
        if code == "100000" {
            text.replace(
                "stale_after = \"1d\"",
                &format!("stale_after = \"{threshold}s\""),
            )
        } else {
            text
        }
    });
    let http = Http::new();
    let (files, city) = t.cities.pop().unwrap();
    let page = || {
        http.get_text(&t.ministry.1.url(&format!("/?period={PERIOD}")))
            .1
    };
    let city_cell = |page: &str| {
        page.split("<tr data-city=\"440100\">")
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .map(str::to_string)
            .unwrap_or_default()
    };
    // While the city keeps reporting, the ministry sees it fresh.
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(2 * threshold) {
        n += 1;
        let (status, _) = http.post(
            &city.url("/v1/records"),
            &files.token,
            &json!([vacancy(&format!("W-{n}"), true)]),
        );
        assert_eq!(status, 200);
        std::thread::sleep(Duration::from_millis(250));
        if start.elapsed() > Duration::from_secs(threshold) {
            let row = city_cell(&page());
            assert!(row.contains("fresh"), "a reporting city is fresh: {row}");
        }
    }
    // Cut its link: the city goes away.
    let cut = Instant::now();
    city.kill();
    eventually(
        "the city flagged stale",
        Duration::from_secs(threshold + 10),
        || city_cell(&page()).contains("stale"),
    );
    assert!(
        cut.elapsed() >= Duration::from_secs(threshold - 1),
        "stale only after the threshold"
    );
    let c = coverage(&http, &t.ministry.1, &format!("period={PERIOD}"));
    let row = c["cities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["city"] == "440100")
        .unwrap();
    assert_eq!(row["stale"], true, "{row}");
}

#[test]
fn the_report_of_a_generated_quarter_reconciles() {
    let t = tree(&["440100", "440300"]);
    let http = Http::new();
    for (files, _) in &t.cities {
        let text = lmsync_ok(&[
            "gen",
            "--node",
            &files.code,
            "--records",
            "6000",
            "--seed",
            "5",
        ]);
        let path = t.net.path().join(format!("{}.jsonl", files.code));
        std::fs::write(&path, text).unwrap();
        lmsync_ok(&[
            "import",
            "--config",
            files.config.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
    }
    converged(&http, &t);
    let url = |format: &str| {
        t.ministry.1.url(&format!(
            "/v1/reports/1999Q3?format={format}&suppress_below=0"
        ))
    };
    let (status, json_text) = http.get_text(&url("json"));
    assert_eq!(status, 200, "{json_text}");
    let report: Value = serde_json::from_str(&json_text).unwrap();
    let (_, csv) = http.get_text(&url("csv"));
    check_reconciles(&t, &report, &csv);
    let (_, html) = http.get_text(&url("html"));
    assert!(html.contains("<svg"), "the HTML report has its chart");
}

/// A published table as `row key → column key → number` (suppression is off here).
fn table(report: &Value, id: &str) -> Vec<(String, std::collections::BTreeMap<String, f64>)> {
    let t = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no {id}"));
    let columns: Vec<&str> = t["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let cells = columns
                .iter()
                .zip(r["cells"].as_array().unwrap())
                .filter_map(|(c, v)| Some((c.to_string(), v.as_f64()?)))
                .collect();
            (r["key"].as_str().unwrap().to_string(), cells)
        })
        .collect()
}

fn cell(rows: &[(String, std::collections::BTreeMap<String, f64>)], row: &str, col: &str) -> f64 {
    rows.iter()
        .find(|(k, _)| k == row)
        .and_then(|(_, c)| c.get(col).copied())
        .unwrap_or_else(|| panic!("no {row}/{col}"))
}

/// Sum of `col` over every row but the total.
fn sum(rows: &[(String, std::collections::BTreeMap<String, f64>)], col: &str) -> f64 {
    rows.iter()
        .filter(|(k, _)| k != "total")
        .filter_map(|(_, c)| c.get(col))
        .sum()
}

/// Demand (headcount) and job seekers valid in 1999Q3, counted from the generated files.
fn counted_from_files(t: &Tree) -> (f64, f64) {
    let (start, end) = ("1999-07-01", "1999-09-30");
    let (mut demand, mut seekers) = (0.0, 0.0);
    for (files, _) in &t.cities {
        let text =
            std::fs::read_to_string(t.net.path().join(format!("{}.jsonl", files.code))).unwrap();
        // A record may appear again with changes: the last line of each id is current.
        let mut current = std::collections::BTreeMap::new();
        for line in text.lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            current.insert((r["kind"].to_string(), r["id"].to_string()), r);
        }
        for r in current.values() {
            let d = &r["data"];
            if r["status"] == "voided" {
                continue;
            }
            let between = |from: &Value, until: &Value| {
                from.as_str().unwrap() <= end && until.as_str().unwrap() >= start
            };
            match r["kind"].as_str().unwrap() {
                "vacancy" if between(&d["valid_from"], &d["valid_until"]) => {
                    demand += d["headcount"].as_f64().unwrap();
                }
                "job_seeker" if between(&d["registered_on"], &d["valid_until"]) => seekers += 1.0,
                _ => {}
            }
        }
    }
    (demand, seekers)
}

fn check_reconciles(t: &Tree, report: &Value, csv: &str) {
    let t1 = table(report, "table_1");
    let (demand, seekers) = (cell(&t1, "total", "demand"), cell(&t1, "total", "seekers"));
    assert!(
        demand > 0.0 && seekers > 0.0,
        "the quarter has data: {report}"
    );
    assert_eq!(
        counted_from_files(t),
        (demand, seekers),
        "table 1 against the records"
    );
    for col in ["demand", "seekers"] {
        assert_eq!(
            cell(&t1, "carried_over", col) + cell(&t1, "new_in_period", col),
            cell(&t1, "total", col),
            "table 1 {col}: carried over + new = total"
        );
    }
    // Table 2 redistributes 其他行业 with two decimals per sector.
    let t2 = sum(&table(report, "table_2"), "demand");
    assert!(
        (t2 - demand).abs() <= 0.015,
        "table 2 demand {t2} sums to table 1's {demand}"
    );
    for id in ["table_3", "table_4", "table_5"] {
        assert_eq!(
            sum(&table(report, id), "demand"),
            demand,
            "{id} demand sums to table 1"
        );
    }
    let t5 = table(report, "table_5");
    assert_eq!(
        sum(&t5, "seekers"),
        seekers,
        "table 5 seekers incl. no preference"
    );
    assert_eq!(
        sum(&table(report, "table_8"), "seekers"),
        seekers,
        "table 8 seekers"
    );
    let ratio = cell(&t1, "total", "ratio");
    assert!(
        (ratio - demand / seekers).abs() < 1e-4,
        "求人倍率 = demand / seekers"
    );
    // CSV carries the same numbers as JSON, cell by cell.
    let mut current: Option<(String, Vec<String>)> = None;
    let mut compared = 0;
    for line in csv.lines() {
        let fields = csv_fields(line);
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        match (fields.first().copied(), &current) {
            (Some("table"), _) => current = Some((fields[1].to_string(), Vec::new())),
            (Some("key"), Some((id, _))) => {
                current = Some((
                    id.clone(),
                    fields[3..].iter().map(|s| s.to_string()).collect(),
                ));
            }
            (Some(key), Some((id, columns))) if !key.is_empty() && !columns.is_empty() => {
                let rows = table(report, id);
                for (col, text) in columns.iter().zip(&fields[3..]) {
                    if let (Ok(x), Some(y)) = (
                        text.parse::<f64>(),
                        rows.iter()
                            .find(|(k, _)| k == key)
                            .and_then(|(_, c)| c.get(col)),
                    ) {
                        assert!(
                            (x - y).abs() < 1e-9,
                            "{id} {key} {col}: CSV {x} vs JSON {y}"
                        );
                        compared += 1;
                    }
                }
            }
            _ => {}
        }
    }
    assert!(compared > 50, "compared {compared} CSV cells");
}

/// Splits one CSV line, honouring quotes (labels contain commas).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The ministry answers coverage and the report from the figures it keeps: the same
/// answers after a restart, figures brought up to date in the background once new
/// records have arrived, and `lmsync figures` finds every kept figure equal to a scan.
#[test]
fn figures_are_kept_across_a_restart_and_follow_new_records() {
    let Tree {
        net: _net,
        ministry: (mf, ministry),
        province: _province,
        cities,
    } = tree(&["440100"]);
    let http = Http::new();
    let (files, city) = &cities[0];
    let post = |records: Vec<Value>| {
        let (status, body) = http.post(&city.url("/v1/records"), &files.token, &json!(records));
        assert_eq!(status, 200, "{body}");
    };
    let at_ministry = |node: &RunningNode| {
        eventually(
            "the city's records at the ministry",
            Duration::from_secs(60),
            || common::digest(&http, node, "440100") == common::digest(&http, city, "440100"),
        );
    };
    post(known_records());
    at_ministry(&ministry);
    let query = format!("period={PERIOD}");
    let report_url = format!("/v1/reports/{PERIOD}");
    let before = coverage(&http, &ministry, &query);
    let (_, report_before) = http.get(&ministry.url(&report_url));

    assert_eq!(ministry.terminate(), Some(0));
    let ministry = RunningNode::start(&mf);
    let verify = || {
        let (status, found) = http.post(&ministry.url("/v1/figures/verify"), &mf.token, &json!({}));
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["differences"], json!([]), "{found}");
        found
    };
    // Asked before anything else of the restarted node: the figures were kept on disk.
    let found = verify();
    assert!(
        found["checked"].as_u64().unwrap() >= 2,
        "coverage and report kept: {found}"
    );

    // The record-based metrics; lag (F01) is sampled in memory and starts afresh.
    let counted = |c: &Value| -> Vec<Value> {
        let values = c["summary"]["values"].as_array().unwrap();
        values
            .iter()
            .filter(|v| v["id"].as_str().unwrap().starts_with('M'))
            .map(|v| json!([v["id"], v["variant"], v["numerator"], v["denominator"]]))
            .chain([c["summary"]["cohort"].clone()])
            .collect()
    };
    let after = coverage(&http, &ministry, &query);
    assert_eq!(
        counted(&after),
        counted(&before),
        "coverage after a restart"
    );
    assert_eq!(http.get(&ministry.url(&report_url)).1, report_before);
    // New records: the kept figures go stale, and the node computes them again.
    post(
        (11..=14)
            .map(|i| vacancy(&format!("V-{i}"), true))
            .collect(),
    );
    at_ministry(&ministry);
    eventually(
        "the ministry's figures up to date",
        Duration::from_secs(60),
        || verify()["stale"] == 0,
    );
    let out = lmsync_ok(&["figures", "--config", mf.config.to_str().unwrap()]);
    assert!(out.contains(", 0 differed"), "{out}");
    assert_ne!(
        metric(&coverage(&http, &ministry, &query), "M01", "by_reports"),
        metric(&before, "M01", "by_reports"),
        "the new vacancies count"
    );
}

//! Submitted quarterly reports between real processes: two cities of a three-tier tree
//! submit their reports (one on time, one late, one missing against the ministry's
//! reporting schedules); the ministry's coverage shows M10 and F03 with the known answers
//! and holds each report with its signature verified; a report of a quarter that has not
//! ended and one from a province are refused; a province's pilot evaluation and the
//! ministry's confirmation of it show at the ministry, on its coverage and its dashboard.
//! In process: a report a province rewrites on its way up is quarantined at the ministry.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use common::{Http, RunningNode, Tree, converged, eventually, lmsync, lmsync_ok, tree};
use lmsync::reporting::analysis::Period;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// The quarter that ended last (P1), the one before it (P0) and the current one.
fn quarters() -> (Period, Period, Period, NaiveDate) {
    let today = Utc::now().date_naive();
    let current = Period::of_date(today).unwrap();
    let p1 = current.previous().unwrap();
    (p1.previous().unwrap(), p1, current, today)
}

/// A vacancy of `city` valid through `period`, for `headcount` persons.
fn vacancy(city: &str, id: &str, headcount: u32, period: Period) -> Value {
    let mut v = common::owned_vacancy(city, id, headcount);
    let (from, until) = (
        period.first_day().to_string(),
        period.last_day().to_string(),
    );
    v["data"]["reported_on"] = json!(from);
    v["data"]["valid_from"] = json!(from);
    v["data"]["valid_until"] = json!(until);
    v["data"]["published_online_on"] = json!(from);
    v
}

fn publish(http: &Http, node: &RunningNode, token: &str, kind: &str, id: &str, body: Value) {
    let (status, answer) = http.post(
        &node.url("/v1/documents"),
        token,
        &json!({"kind": kind, "id": id, "body": body}),
    );
    assert_eq!(status, 200, "publishing {kind} {id}: {answer}");
}

fn holds_document(http: &Http, node: &RunningNode, kind: &str, id: &str) -> bool {
    http.get(&node.url(&format!("/v1/documents/{kind}/{id}"))).0 == 200
}

fn coverage(http: &Http, node: &RunningNode, period: Period) -> Value {
    let (status, body) = http.get(&node.url(&format!("/v1/coverage?period={period}")));
    assert_eq!(status, 200, "{body}");
    body
}

/// `(numerator, denominator, status)` of a summary value.
fn reading(coverage: &Value, id: &str, variant: &str) -> (u64, u64, String) {
    let v = coverage["summary"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id && v["variant"] == variant)
        .unwrap_or_else(|| panic!("no {id}/{variant} in {coverage}"));
    (
        v["numerator"].as_u64().unwrap(),
        v["denominator"].as_u64().unwrap(),
        v["status"].as_str().unwrap().to_string(),
    )
}

/// Where `city`'s report stands on `coverage`.
fn state_of(coverage: &Value, city: &str) -> String {
    coverage["cities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["city"] == city)
        .unwrap_or_else(|| panic!("no city {city} in {coverage}"))["report"]["state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn submit(http: &Http, node: &RunningNode, token: &str, period: Period) -> (u16, Value) {
    http.post(
        &node.url(&format!("/v1/reports/{period}/submit")),
        token,
        &json!({}),
    )
}

/// The ministry's schedules: P0's reports due on the quarter's last day (so any
/// submission now is late), P1's a year after it (so not due yet).
fn schedules(http: &Http, t: &Tree, p0: Period, p1: Period) {
    let (mf, ministry) = &t.ministry;
    for (id, period, offset) in [("rs-p0", p0, 0), ("rs-p1", p1, 366)] {
        let body = json!({"report_kind": "supply_demand_report", "periods": [period.to_string()],
            "due_offset_days": offset, "recipients": ["440000", "100000"]});
        publish(http, ministry, &mf.token, "reporting_schedule", id, body);
    }
    let (pf, province) = &t.province;
    for city in ["440100", "440300"] {
        let body = json!({"city": city, "province": "440000", "designated_on": "2000-01-01",
            "batch": 1, "status": "active"});
        publish(
            http,
            province,
            &pf.token,
            "pilot_designation",
            &format!("P-{city}"),
            body,
        );
    }
    for (_, city) in &t.cities {
        eventually("the schedules at every city", WAIT, || {
            ["rs-p0", "rs-p1"]
                .iter()
                .all(|id| holds_document(http, city, "reporting_schedule", id))
        });
    }
    eventually("the designations at the ministry", WAIT, || {
        ["P-440100", "P-440300"]
            .iter()
            .all(|id| holds_document(http, ministry, "pilot_designation", id))
    });
}

#[test]
fn cities_submit_and_the_ministry_judges_the_reports() {
    let (p0, p1, current, today) = quarters();
    println!("today {today}: quarters {p0}, {p1}, current {current}");
    let t = tree(&["440100", "440300"]);
    let http = Http::new();
    schedules(&http, &t, p0, p1);
    let [(gz, guangzhou), (sz, shenzhen)] = [&t.cities[0], &t.cities[1]];
    for (files, city, headcount) in [(gz, guangzhou, 7), (sz, shenzhen, 9)] {
        let records = json!([vacancy(&files.code, "V-1", headcount, p1)]);
        let (status, body) = http.post(&city.url("/v1/records"), &files.token, &records);
        assert_eq!(status, 200, "{body}");
    }

    // Both submit P1 through the CLI, in time; 440100 also P0, late; 440300 never P0.
    for files in [gz, sz] {
        let config = files.config.to_str().unwrap();
        let period = p1.to_string();
        let out = lmsync_ok(&[
            "report", "--config", config, "--period", &period, "--submit",
        ]);
        assert!(
            out.contains("version 1") && out.contains("on time"),
            "{out}"
        );
    }
    let (status, late) = submit(&http, guangzhou, &gz.token, p0);
    assert_eq!(status, 200, "{late}");
    assert_eq!(late["status"]["state"], "late", "{late}");
    assert_eq!(
        late["status"]["days_after_quarter"],
        (today - p0.last_day()).num_days()
    );

    // Refused: an unfinished quarter, a province, no token, and posting the kind.
    let (status, body) = submit(&http, guangzhou, &gz.token, current);
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("period_not_ended")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("ends on"),
        "{body}"
    );
    let out = lmsync(&[
        "report",
        "--config",
        gz.config.to_str().unwrap(),
        "--period",
        &current.to_string(),
        "--submit",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ends on"));
    let (pf, province) = &t.province;
    let (status, body) = submit(&http, province, &pf.token, p1);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("only a city"),
        "{body}"
    );
    let url = guangzhou.url(&format!("/v1/reports/{p1}/submit"));
    assert_eq!(http.post_raw(&url, None, b"{}".to_vec()).unwrap().0, 401);
    let posted = json!([{"kind": "supply_demand_report", "id": p1.to_string(), "data": {}}]);
    let (status, body) = http.post(&guangzhou.url("/v1/records"), &gz.token, &posted);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["rejected"][0]["error"], "derived_kind", "{body}");

    converged(&http, &t);
    let ministry = &t.ministry.1;

    // The report arrived whole and signed: the tables the city gives for its scope.
    let (status, held) =
        http.get(&ministry.url(&format!("/v1/reports/{p1}/submitted?city=440100")));
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["signature"]["verified"], true, "{held}");
    assert_eq!(
        (held["version"].as_u64(), held["count_basis"].as_str()),
        (Some(1), Some("valid_in_period"))
    );
    assert_eq!(held["standing"]["state"], "on_time");
    let (_, live) = http.get(&guangzhou.url(&format!("/v1/reports/{p1}")));
    assert_eq!(
        held["report"],
        without_changes(&live),
        "the frozen report is the city's report (without its change columns)"
    );
    let overall = held["report"]["tables"][0]["rows"].as_array().unwrap();
    let total = overall.iter().find(|r| r["key"] == "total").unwrap();
    assert_eq!(total["cells"][0], 7, "total demand: {held}");
    let (status, record) =
        http.get(&ministry.url(&format!("/v1/records/440100/supply_demand_report/{p1}")));
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["data"]["period"], p1.to_string());

    // M10 and F03 at the ministry and the province.
    for node in [ministry, province] {
        let c = coverage(&http, node, p0);
        assert_eq!(reading(&c, "M10", "submitted"), (1, 2, "fail".into()));
        assert_eq!(reading(&c, "F03", "on_time"), (0, 2, "fail".into()));
        assert_eq!(reading(&c, "F03", "late").0, 1);
        assert_eq!(reading(&c, "F03", "missing").0, 1);
        assert_eq!(
            (state_of(&c, "440100"), state_of(&c, "440300")),
            ("late".into(), "missing".into())
        );
        let c = coverage(&http, node, p1);
        assert_eq!(reading(&c, "M10", "submitted"), (2, 2, "pass".into()));
        assert_eq!(reading(&c, "F03", "on_time"), (2, 2, "pass".into()));
        assert_eq!(reading(&c, "F03", "not_yet_due").0, 0);
    }
    let (_, listed) = http.get(&ministry.url(&format!("/v1/reports/{p0}/submitted")));
    let states: Vec<&str> = listed["cities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["report"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["late", "missing"], "{listed}");

    // A correction is version 2, signed again; timeliness keeps the first submission.
    let (status, again) = submit(&http, guangzhou, &gz.token, p1);
    assert_eq!(
        (status, again["version"].as_u64()),
        (200, Some(2)),
        "{again}"
    );
    eventually("the correction at the ministry", WAIT, || {
        let (_, held) = http.get(&ministry.url(&format!("/v1/reports/{p1}/submitted?city=440100")));
        held["version"] == 2 && held["signature"]["verified"] == true
    });
    let (_, held2) = http.get(&ministry.url(&format!("/v1/reports/{p1}/submitted?city=440100")));
    assert_eq!(held2["first_submitted_at"], held["first_submitted_at"]);
    assert_eq!(held2["standing"]["state"], "on_time");

    evaluation_is_confirmed(&http, &t, p1);
}

/// The province evaluates 440100 for `p1`; the ministry confirms; both show it.
fn evaluation_is_confirmed(http: &Http, t: &Tree, p1: Period) {
    let (pf, province) = &t.province;
    let (mf, ministry) = &t.ministry;
    let seen = coverage(http, province, p1);
    let m10 = reading(&seen, "M10", "submitted");
    let body = json!({"city": "440100", "period": p1.to_string(), "verdict": "meets",
        "evaluated_on": Utc::now().date_naive().to_string(),
        "figures": [{"metric": "M10", "variant": "submitted", "numerator": m10.0,
            "denominator": m10.1, "status": m10.2}],
        "notes": "report on time"});
    let id = format!("ev-440100-{p1}");
    publish(http, province, &pf.token, "pilot_evaluation", &id, body);
    eventually("the evaluation at the ministry", WAIT, || {
        holds_document(http, ministry, "pilot_evaluation", &id)
    });
    let c = coverage(http, ministry, p1);
    let e = &c["evaluations"][0];
    assert_eq!(
        (e["city"].as_str(), e["verdict"].as_str()),
        (Some("440100"), Some("meets")),
        "{c}"
    );
    assert!(e["confirmation"].is_null(), "{e}");
    // A province may not confirm; the ministry does, naming the version it read.
    let confirm = json!({"confirms": {"issuer": "440000", "id": id, "version": e["version"]},
        "confirmed_on": Utc::now().date_naive().to_string()});
    let (status, refused) = http.post(
        &province.url("/v1/documents"),
        &pf.token,
        &json!({"kind": "pilot_evaluation", "id": "confirm", "body": confirm}),
    );
    assert_eq!(status, 422, "{refused}");
    publish(
        http,
        ministry,
        &mf.token,
        "pilot_evaluation",
        &format!("confirm-{id}"),
        confirm,
    );
    let c = coverage(http, ministry, p1);
    assert_eq!(c["evaluations"][0]["confirmation"]["current"], true, "{c}");
    eventually("the confirmation at the province", WAIT, || {
        coverage(http, province, p1)["evaluations"][0]["confirmation"]["current"] == true
    });
    // The ministry's dashboard: the reports by quarter and the confirmed evaluation.
    let (status, page) = http.get_text(&ministry.url("/"));
    assert_eq!(status, 200);
    assert!(page.contains("id=\"reports\""), "{page}");
    assert!(page.contains("data-state=\"missing\"") && page.contains("data-state=\"on_time\""));
    assert!(page.contains("id=\"evaluations\"") && page.contains("data-confirmed=\"true\""));
}

/// In process: the city's report signed with its key is stored at the ministry; the same
/// report rewritten by the province on its way up (its tables changed, the content hash
/// recomputed) or signed by the province in the city's name is quarantined.
#[test]
fn a_report_rewritten_on_its_way_up_is_quarantined() {
    use lmsync::core::model::kinds::{Bytes, CountBasis, RecordData, SupplyDemandReport};
    use lmsync::core::model::record::content_hash;
    use lmsync::core::model::signature::DocumentVerifier;
    use lmsync::core::model::standards::Standards;
    use lmsync::core::model::{Envelope, Kind, MINISTRY, NodeCode, Record, Status};
    use lmsync::core::protocol::merge::plan_replica;
    use lmsync::node::storage::{SledOptions, SledStore};

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    lmsync::node::pki::init_ca(&ca).unwrap();
    let pair = |node: &str| {
        let out = dir.path().join(node);
        lmsync::node::pki::issue(&ca, node.parse().unwrap(), &out, 1).unwrap();
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
        (read("node.crt"), read("node.key"))
    };
    let city: NodeCode = "440100".parse().unwrap();
    let report = |(cert, key): &(String, String), tables: &str| {
        let mut r = SupplyDemandReport {
            period: "2024Q1".into(),
            count_basis: CountBasis::ValidInPeriod,
            suppress_below: 5,
            submitted_at_ms: 1_715_342_400_000,
            first_submitted_at_ms: 1_715_342_400_000,
            tables: tables.into(),
            certificate: Bytes::default(),
            signature: Bytes::default(),
        };
        lmsync::core::model::kinds::sign_report(&mut r, city, 1, cert, key).unwrap();
        r
    };
    let record = |data: SupplyDemandReport| {
        let data = RecordData::SupplyDemandReport(data);
        let hash = content_hash(city, "2024Q1", Status::Active, &data).unwrap();
        Record {
            envelope: Envelope {
                owner: city,
                kind: Kind::SupplyDemandReport,
                id: "2024Q1".into(),
                version: 1,
                seq: 1,
                status: Status::Active,
                recorded_at_ms: 1_715_342_400_000,
                code_refs: Vec::new(),
                hash,
            },
            data,
        }
    };
    let (city_pair, province_pair) = (pair("440100"), pair("440000"));
    let genuine = record(report(&city_pair, r#"{"tables":[7]}"#));
    let mut rewritten = report(&city_pair, r#"{"tables":[7]}"#);
    rewritten.tables = r#"{"tables":[70]}"#.into();
    let rewritten = record(rewritten);
    let forged = record(report(&province_pair, r#"{"tables":[70]}"#));
    assert!(rewritten.verify_hash().unwrap() && forged.verify_hash().unwrap());

    let verifier =
        DocumentVerifier::new(&std::fs::read_to_string(ca.join("ca.crt")).unwrap()).unwrap();
    let store = SledStore::create(
        &dir.path().join("store"),
        MINISTRY,
        [7; 16],
        0,
        SledOptions::default(),
    )
    .unwrap();
    let standards = Standards::builtin();
    let plan = plan_replica(
        &store,
        (&standards, &verifier),
        vec![rewritten, forged, genuine.clone()],
    )
    .unwrap();
    assert_eq!(plan.writes.len(), 1);
    assert_eq!(plan.writes[0].record, genuine);
    let reasons: Vec<&str> = plan.quarantined.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("signature does not match"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("certificate is for 440000"),
        "{reasons:?}"
    );
}

/// A report's JSON without its change columns (and their cells) and `compared_with`:
/// what a city freezes when it submits.
fn without_changes(report: &Value) -> Value {
    let mut out = report.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("compared_with");
    }
    for t in out["tables"].as_array_mut().unwrap() {
        let keep: Vec<bool> = t["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.get("change").is_none())
            .collect();
        let columns: Vec<Value> = t["columns"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.clone())
            .collect();
        t["columns"] = Value::from(columns);
        for r in t["rows"].as_array_mut().unwrap() {
            let cells: Vec<Value> = r["cells"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(c, _)| c.clone())
                .collect();
            r["cells"] = Value::from(cells);
        }
    }
    out
}

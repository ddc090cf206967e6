//! F06 counts the records a city refuses at ingest, and the counts reach the province and
//! the ministry: the city writes its refusals into the quarter's `ingest_tally` record in
//! the same commit as the records it accepts, and the tally replicates like any record.
//!
//! Real processes: a ministry, province 440000 and city 440100 `lmsync run` over QUIC.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::Datelike;
use common::{Http, RunningNode, converged, tree, vacancy};
use serde_json::{Value, json};

const CITY: &str = "440100";

/// `(numerator, denominator)` of F06 `variant` in the coverage of 1999Q3.
fn f06(http: &Http, node: &RunningNode, variant: &str) -> (u64, u64) {
    let (status, body) = http.get(&node.url("/v1/coverage?period=1999Q3"));
    assert_eq!(status, 200, "{body}");
    let v = body["summary"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "F06" && v["variant"] == variant)
        .unwrap_or_else(|| panic!("no F06/{variant} in {body}"))
        .clone();
    (
        v["numerator"].as_u64().unwrap(),
        v["denominator"].as_u64().unwrap(),
    )
}

/// The quarter (`YYYYQn`) of the wall clock, as the node names its tallies.
fn this_quarter() -> String {
    let now = chrono::Utc::now().date_naive();
    format!("{}Q{}", now.year(), now.month0() / 3 + 1)
}

/// The city's tallies of `quarters` that `node` holds.
fn tallies(http: &Http, node: &RunningNode, quarters: &[String]) -> Vec<Value> {
    let mut found = Vec::new();
    for q in quarters {
        let url = node.url(&format!("/v1/records/{CITY}/ingest_tally/{q}"));
        let (status, body) = http.get(&url);
        match status {
            200 => found.push(body),
            404 => {}
            _ => panic!("{status} {body}"),
        }
    }
    found
}

#[test]
fn refusals_at_the_city_count_in_f06_at_every_tier() {
    let t = tree(&[CITY]);
    let http = Http::new();
    let (files, city) = &t.cities[0];
    let mut quarters = vec![this_quarter()];
    let mut bad_code = vacancy("V-bad-code", 3);
    bad_code["data"]["occupation"] = json!("9-99-99-99");
    let mut missing = vacancy("V-missing", 3);
    missing["data"].as_object_mut().unwrap().remove("title");
    let no_kind = json!({"id": "X-1", "data": {}});
    let batch = json!([
        vacancy("V-1", 2),
        bad_code,
        vacancy("V-2", 2),
        missing,
        no_kind,
        vacancy("V-3", 2)
    ]);
    let (status, answer) = http.post(&city.url("/v1/records"), &files.token, &batch);
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["accepted"].as_array().unwrap().len(), 3);
    assert_eq!(answer["rejected"].as_array().unwrap().len(), 3);
    // A request refused whole leaves the store as it was; its refusal waits for the
    // next request that stores something. A dry run counts nothing.
    let digest = |node: &RunningNode| http.get(&node.url("/v1/digest")).1;
    let before = digest(city);
    let mut again = vacancy("V-4", 1);
    again["data"]["headcount"] = json!(0);
    let (status, _) = http.post(&city.url("/v1/records"), &files.token, &json!([again]));
    assert_eq!(status, 422);
    let dry = city.url("/v1/records?dry_run=true");
    let empty = json!([{"kind": "vacancy", "id": "V-5", "data": {}}]);
    let (status, _) = http.post(&dry, &files.token, &empty);
    assert_eq!(status, 422);
    assert_eq!(digest(city), before, "bad input leaves the store unchanged");
    let valid = json!([vacancy("V-4", 1)]);
    let (status, _) = http.post(&city.url("/v1/records"), &files.token, &valid);
    assert_eq!(status, 200);

    quarters.push(this_quarter());
    quarters.dedup();
    converged(&http, &t);
    // 4 refused; the city holds 4 records: 4 of 8 at the city, the province and the
    // ministry alike.
    for node in [city, &t.province.1, &t.ministry.1] {
        assert_eq!(
            f06(&http, node, "rejection_rate"),
            (4, 8),
            "{}",
            node.url("")
        );
    }
    // One tally, this quarter's, with its breakdown, replicated to the ministry.
    let at_ministry = tallies(&http, &t.ministry.1, &quarters);
    assert_eq!(at_ministry.len(), 1, "{at_ministry:?}");
    let data = &at_ministry[0]["data"];
    assert_eq!(data["refused"], 4);
    assert_eq!(data["refused_by_kind"], json!({"unknown": 1, "vacancy": 3}));
    let by_error: u64 = data["refused_by_error"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(by_error, 4);
    assert_eq!(
        at_ministry[0]["version"], 2,
        "one version per request that stored records and had refusals to count"
    );
    assert_eq!(tallies(&http, city, &quarters), at_ministry);
}

#[test]
fn clients_cannot_post_a_tally() {
    let t = tree(&[CITY]);
    let http = Http::new();
    let (files, city) = &t.cities[0];
    let forged = json!([{"kind": "ingest_tally", "id": "1999Q3",
        "data": {"quarter": "1999Q3", "refused": 0, "refused_by_kind": {}, "refused_by_error": {}}}]);
    let quarters = [this_quarter(), "1999Q3".to_string()];
    let (status, answer) = http.post(&city.url("/v1/records"), &files.token, &forged);
    assert_eq!(status, 422, "{answer}");
    assert!(tallies(&http, city, &quarters).is_empty(), "nothing stored");
    // Refused like any bad record: its refusal is counted with the next stored record,
    // and the forgery is never stored.
    let (status, _) = http.post(
        &city.url("/v1/records"),
        &files.token,
        &json!([vacancy("V-1", 1)]),
    );
    assert_eq!(status, 200);
    let held = tallies(&http, city, &quarters);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        held[0]["data"]["refused_by_kind"],
        json!({"ingest_tally": 1})
    );
}

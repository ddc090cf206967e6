//! Adding and retiring nodes on a live network, with real processes: a city initialised
//! and started while the network runs is admitted and its records reach the ministry;
//! a retired city's records stay, coverage stops expecting it (no pilot, never stale),
//! its province no longer counts its silent link as a fault, and reinstating it undoes
//! that.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Http, RunningNode, digest, eventually, lmsync_ok, tree_with, vacancy};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);
/// The ministry's staleness threshold in this test, seconds.
const STALE_AFTER: i64 = 2;

fn city_row(http: &Http, node: &RunningNode, city: &str) -> Value {
    let c = http.get(&node.url("/v1/coverage")).1;
    c["cities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["city"] == city)
        .cloned()
        .unwrap_or(Value::Null)
}

fn guangdong_pilots(http: &Http, node: &RunningNode) -> Value {
    let c = http.get(&node.url("/v1/coverage")).1;
    c["provinces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["province"] == "440000")
        .map(|p| p["m11"]["numerator"].clone())
        .unwrap()
}

#[test]
fn a_city_joins_a_live_network_and_a_retired_one_is_no_longer_expected() {
    let t = tree_with(&["440100"], |code, text| {
        if code == "100000" {
            text.replace(
                "stale_after = \"1d\"",
                &format!("stale_after = \"{STALE_AFTER}s\""),
            )
        } else {
            text
        }
    });
    let http = Http::new();
    let (ministry, province) = (&t.ministry.1, &t.province.1);

    // A new city joins while everything runs: a certificate, `init`, `run`.
    let parent = format!("440000@{}", province.quic.clone().unwrap());
    let joined = t.net.init("440300", Some(&parent));
    let joined_node = RunningNode::start(&joined);
    let records: Vec<Value> = (0..5)
        .map(|i| {
            let mut v = vacancy(&format!("J-{i}"), 1);
            v["data"]["work_location"] = json!("440303");
            v
        })
        .collect();
    let (code, answer) = http.post(
        &joined_node.url("/v1/records"),
        &joined.token,
        &json!(records),
    );
    assert_eq!(code, 200, "{answer}");
    eventually("the new city's records at the ministry", LIMIT, || {
        digest(&http, ministry, "440300")["records"] == 5
    });

    // Both are pilots of the province.
    for city in ["440100", "440300"] {
        let body = json!({"kind": "pilot_designation", "id": format!("P-{city}"), "body": {
            "city": city, "province": "440000", "designated_on": "1999-07-01", "batch": 1, "status": "active"}});
        let (code, answer) = http.post(&province.url("/v1/documents"), &t.province.0.token, &body);
        assert_eq!(code, 200, "{answer}");
    }
    eventually("two pilots at the ministry", LIMIT, || {
        guangdong_pilots(&http, ministry) == 2
            && city_row(&http, ministry, "440300")["pilot"] == true
    });

    // The province retires the new city, whose node is then stopped.
    let out = lmsync_ok(&[
        "retire",
        "--config",
        t.province.0.config.to_str().unwrap(),
        "--node",
        "440300",
        "--reason",
        "merged into 440100",
    ]);
    assert!(out.contains("440300 retired"), "{out}");
    joined_node.kill();
    let today = chrono::Utc::now().date_naive().to_string();
    for node in [ministry, province] {
        eventually("the retirement in coverage", LIMIT, || {
            let row = city_row(&http, node, "440300");
            row["retired"] == today.as_str() && row["pilot"] == false
        });
    }
    assert_eq!(guangdong_pilots(&http, ministry), 1);
    // Its records stay.
    assert_eq!(digest(&http, ministry, "440300")["records"], 5);
    // Long past the staleness threshold, it is still not stale: nothing is expected of it.
    eventually(
        "the city's newest record older than the threshold",
        LIMIT,
        || {
            city_row(&http, ministry, "440300")["seconds_since_received"]
                .as_i64()
                .is_some_and(|s| s > STALE_AFTER)
        },
    );
    let row = city_row(&http, ministry, "440300");
    assert_eq!(row["stale"], false, "{row}");
    // The province shows the child as retired and, once its link is down, raises no
    // alert for it.
    let child = || {
        http.get(&province.url("/v1/status")).1["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == "440300")
            .cloned()
            .unwrap()
    };
    eventually("the retired child's link down", LIMIT, || {
        child()["connected"] == false
    });
    assert_eq!(child()["retired"], today.as_str(), "{}", child());
    let page = http.get_text(&province.url("/")).1;
    let alerts = page
        .split("id=\"alerts\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    assert!(!alerts.contains("440300"), "{alerts}");
    assert!(page.contains("retired since"), "{page}");
    let text = lmsync_ok(&["status", "--config", t.province.0.config.to_str().unwrap()]);
    assert!(text.contains(&format!("retired since {today}")), "{text}");

    // Reinstated, it is expected again.
    lmsync_ok(&[
        "retire",
        "--config",
        t.province.0.config.to_str().unwrap(),
        "--node",
        "440300",
        "--reinstate",
    ]);
    eventually("the city expected again", LIMIT, || {
        let row = city_row(&http, ministry, "440300");
        row["retired"].is_null() && row["pilot"] == true && row["stale"] == true
    });
}

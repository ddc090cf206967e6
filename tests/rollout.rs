//! A staged upgrade with real processes: nodes of different protocol versions in one
//! tree. `[network] max_protocol` makes a node of this release speak as an earlier one
//! did (version 3: documents listed with their issuer; version 2: without), so every
//! pairing a rollout passes through runs here: an older parent with a newer child (the
//! ministry upgraded last) and a newer parent with an older child (cities upgraded last).
//! Records go up, documents come down and go up, and each link reports the version it
//! agreed on.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Http, RunningNode, converged, eventually, tree_with, vacancy};
use lmsync::core::wire::PROTOCOL_VERSION;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

fn pinned(text: String, version: u16) -> String {
    text.replace(
        "[network]\n",
        &format!("[network]\nmax_protocol = {version}\n"),
    )
}

fn link_protocol(http: &Http, node: &RunningNode, peer: &str) -> Value {
    let s = http.get(&node.url("/v1/status")).1;
    if s["parent"]["code"] == peer {
        return s["parent"]["protocol"].clone();
    }
    s["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == peer)
        .map_or(Value::Null, |c| c["protocol"].clone())
}

#[test]
fn nodes_of_earlier_protocol_versions_sync_with_this_release_in_both_directions() {
    // The ministry speaks version 3 (not yet upgraded), the province this release; one
    // city this release, the other version 2.
    let t = tree_with(&["440100", "440300"], |code, text| match code {
        "100000" => pinned(text, 3),
        "440300" => pinned(text, 2),
        _ => text,
    });
    let http = Http::new();
    let (ministry, province) = (&t.ministry.1, &t.province.1);
    let [(new_city_files, new_city), (old_city_files, old_city)] = &t.cities[..] else {
        panic!("two cities")
    };
    eventually("every link agreed on a version", LIMIT, || {
        link_protocol(&http, province, "100000") == 3
            && link_protocol(&http, ministry, "440000") == 3
            && link_protocol(&http, province, "440100") == PROTOCOL_VERSION
            && link_protocol(&http, new_city, "440000") == PROTOCOL_VERSION
            && link_protocol(&http, province, "440300") == 2
            && link_protocol(&http, old_city, "440000") == 2
    });

    // Records go up from both cities.
    for (files, node) in [(new_city_files, new_city), (old_city_files, old_city)] {
        let records: Vec<Value> = (0..20)
            .map(|i| {
                let mut v = vacancy(&format!("R-{i}"), 1);
                v["data"]["work_location"] = json!(format!("{}04", &files.code[..4]));
                v
            })
            .collect();
        let (code, answer) = http.post(&node.url("/v1/records"), &files.token, &json!(records));
        assert_eq!(code, 200, "{answer}");
    }
    converged(&http, &t);

    // A ministry document comes down to both cities; a province's designation goes up.
    let policy =
        json!({"kind": "policy", "id": "劳社部发〔1999〕1号", "body": {"title": "pilot notice"}});
    let (code, answer) = http.post(&ministry.url("/v1/documents"), &t.ministry.0.token, &policy);
    assert_eq!(code, 200, "{answer}");
    let designation = json!({"kind": "pilot_designation", "id": "P-440100", "body": {
        "city": "440100", "province": "440000", "designated_on": "1999-07-01", "batch": 1, "status": "active"}});
    let (code, answer) = http.post(
        &province.url("/v1/documents"),
        &t.province.0.token,
        &designation,
    );
    assert_eq!(code, 200, "{answer}");
    for city in [new_city, old_city] {
        eventually("the ministry's policy at the city", LIMIT, || {
            http.get(&city.url("/v1/documents/policy/劳社部发〔1999〕1号"))
                .0
                == 200
        });
    }
    eventually("the province's designation at the ministry", LIMIT, || {
        http.get(&ministry.url("/v1/documents/pilot_designation/P-440100"))
            .0
            == 200
    });
}

#[test]
fn a_version_this_release_does_not_speak_is_refused_at_start() {
    let net = common::Network::new();
    let files = net.init("100000", None);
    let text = std::fs::read_to_string(&files.config).unwrap();
    std::fs::write(&files.config, pinned(text, PROTOCOL_VERSION + 1)).unwrap();
    let out = common::lmsync(&[
        "config",
        "check",
        "--config",
        files.config.to_str().unwrap(),
    ]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("network.max_protocol"), "{said}");
}

//! The HTTP API against a real `lmsync run` process: per-record rejection, atomic refusal
//! of bad requests, idempotent re-posts, versions, reads, digest, status and metrics.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Http, Network, RunningNode, citizen_id, vacancy};
use serde_json::{Value, json};

fn job_seeker(id: &str, citizen: &str) -> Value {
    json!({"kind": "job_seeker", "id": id, "data": {
        "citizen_id": citizen, "name": "张三", "phone": "13800000000",
        "sex": "male", "birth_year": 1965, "residence_division": "440104",
        "hukou_class": "local_urban", "desired_occupations": ["6-04"],
        "category": "laid_off", "registered_on": "1999-08-01", "valid_until": "1999-10-31"
    }})
}

fn records(node: &RunningNode, http: &Http) -> u64 {
    http.get(&node.url("/v1/digest")).1["records"]
        .as_u64()
        .unwrap()
}

#[test]
fn mixed_batch_stores_the_valid_records_and_names_each_error() {
    let net = Network::new();
    let files = net.init("440100", Some("440000@127.0.0.1:7400"));
    let node = RunningNode::start(&files);
    let http = Http::new();
    let mut bad_occupation = vacancy("V-2", 3);
    bad_occupation["data"]["occupation"] = json!("9-99-99");
    let mut missing = vacancy("V-3", 3);
    missing["data"].as_object_mut().unwrap().remove("title");
    let mut wrong_type = vacancy("V-4", 3);
    wrong_type["data"]["headcount"] = json!("three");
    let mut bad_id = citizen_id("44010619650317123");
    bad_id.replace_range(17..18, if bad_id.ends_with('0') { "1" } else { "0" });
    let body = json!([
        vacancy("V-1", 2),
        bad_occupation,
        missing,
        wrong_type,
        job_seeker("S-1", &bad_id),
        job_seeker("S-2", &citizen_id("44010619650317123")),
        {"kind": "vacancies", "id": "X", "data": {}},
    ]);
    let (status, answer) = http.post(&node.url("/v1/records"), &files.token, &body);
    assert_eq!(status, 422, "{answer}");
    let accepted: Vec<&str> = answer["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(accepted, ["V-1", "S-2"]);
    let rejected: Vec<(u64, &str, &str)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["field"].as_str().unwrap(),
                r["error"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "data.occupation", "unknown_code"),
            (2, "data.title", "missing_field"),
            (3, "data.headcount", "wrong_type"),
            (4, "data.citizen_id", "invalid_citizen_id"),
            (6, "kind", "unknown_kind"),
        ]
    );
    let occupation_message = answer["rejected"][0]["message"].as_str().unwrap();
    assert!(
        occupation_message.contains("9-99-99") && occupation_message.contains("CN-OCC@1999"),
        "{occupation_message}"
    );
    // The two valid records, and the quarter's ingest tally counting the five refusals.
    assert_eq!(
        records(&node, &http),
        3,
        "only the valid records are stored, with the tally of refusals"
    );

    // The stored job seeker carries a pseudonym and none of the identifying fields.
    let (status, seeker) = http.get(&node.url("/v1/records/440100/job_seeker/S-2"));
    assert_eq!(status, 200);
    let data = seeker["data"].as_object().unwrap();
    assert_eq!(data["pid"].as_str().unwrap().len(), 32);
    for field in ["citizen_id", "name", "phone"] {
        assert!(!data.contains_key(field), "{field} must not be stored");
    }
    assert!(
        !seeker.to_string().contains("44010619650317123"),
        "the raw ID appears nowhere"
    );
}

#[test]
fn refused_requests_write_nothing() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let http = Http::new();
    let url = node.url("/v1/records");
    let valid = serde_json::to_vec(&json!([vacancy("V-1", 1)])).unwrap();

    let (status, body) = http.post_raw(&url, None, valid.clone()).unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorised"))
    );
    let (status, _) = http
        .post_raw(&url, Some("wrong-token-wrong-token-wrong-token"), valid)
        .unwrap();
    assert_eq!(status, 401);

    let (status, body) = http
        .post_raw(&url, Some(&files.token), b"[{\"kind\":".to_vec())
        .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, body) = http
        .post_raw(&url, Some(&files.token), b"{\"kind\":\"vacancy\"}".to_vec())
        .unwrap();
    assert_eq!((status, body["error"].as_str()), (400, Some("malformed")));

    // 17 MiB of otherwise valid records exceeds the default 16 MiB limit.
    let big: Vec<Value> = (0..40_000).map(|i| vacancy(&format!("B-{i}"), 1)).collect();
    let bytes = serde_json::to_vec(&big).unwrap();
    assert!(bytes.len() > 16 << 20);
    match http.post_raw(&url, Some(&files.token), bytes) {
        Ok((status, body)) => assert_eq!(
            (status, body["error"].as_str()),
            (413, Some("body_too_large"))
        ),
        // The server may close the connection before reading the whole body.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    assert_eq!(
        records(&node, &http),
        0,
        "nothing was written by any refused request"
    );
}

#[test]
fn reposting_is_a_no_op_and_changes_make_new_versions() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let http = Http::new();
    let url = node.url("/v1/records");
    let first = http
        .post(
            &url,
            &files.token,
            &json!([vacancy("V-1", 2), vacancy("V-2", 5)]),
        )
        .1;
    let again = http.post(&url, &files.token, &json!([vacancy("V-1", 2)])).1;
    assert_eq!(again["accepted"][0]["version"], 1);
    assert_eq!(again["accepted"][0]["seq"], first["accepted"][0]["seq"]);
    assert_eq!(again["accepted"][0]["changed"], false);
    let digest_before = http.get(&node.url("/v1/digest")).1;

    let mut closed = vacancy("V-1", 2);
    closed["status"] = json!("closed");
    closed["data"]["fill_state"] = json!("filled");
    closed["data"]["filled_count"] = json!(2);
    let (status, changed) = http.post(&url, &files.token, &json!([closed]));
    assert_eq!(status, 200);
    assert_eq!(changed["accepted"][0]["version"], 2);
    assert_eq!(
        changed["accepted"][0]["seq"], 3,
        "seqs 1 and 2 went to the first writes"
    );
    let digest_after = http.get(&node.url("/v1/digest")).1;
    assert_eq!(digest_after["records"], 2);
    assert_ne!(digest_after["root"], digest_before["root"]);

    let (_, record) = http.get(&node.url("/v1/records/440100/vacancy/V-1"));
    assert_eq!(record["version"], 2);
    assert_eq!(record["status"], "closed");
    assert_eq!(record["data"]["fill_state"], "filled");
    assert_eq!(record["hash"].as_str().unwrap().len(), 64);
    let (status, missing) = http.get(&node.url("/v1/records/440100/vacancy/V-9"));
    assert_eq!(
        (status, missing["error"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = http.get(&node.url("/v1/records/440100/nonsense/V-1"));
    assert_eq!(status, 400);

    let by_kind = http
        .get(&node.url("/v1/digest?owner=440100&kind=vacancy"))
        .1;
    assert_eq!(
        by_kind["root"], digest_after["root"],
        "all records are vacancies"
    );
    let other = http.get(&node.url("/v1/digest?kind=office")).1;
    assert_eq!(other["records"], 0);

    // Nothing was refused: the quarantine is empty; a bad owner is the caller's mistake.
    let (status, q) = http.get(&node.url("/v1/quarantine?owner=440100"));
    assert_eq!(
        (status, &q["total"], &q["records"]),
        (200, &json!(0), &json!([]))
    );
    assert_eq!(http.get(&node.url("/v1/quarantine?owner=44")).0, 400);
}

#[test]
fn status_and_metrics_report_the_node() {
    let net = Network::new();
    let files = net.init("440100", Some("440000@127.0.0.1:7400"));
    let node = RunningNode::start(&files);
    let http = Http::new();
    http.post(
        &node.url("/v1/records"),
        &files.token,
        &json!([vacancy("V-1", 2)]),
    );
    let (status, s) = http.get(&node.url("/v1/status"));
    assert_eq!(status, 200);
    assert_eq!(s["node"], "440100");
    assert_eq!(s["tier"], "city");
    assert_eq!(s["records"]["by_kind"]["vacancy"], 1);
    assert_eq!(s["parent"]["code"], "440000");
    assert_eq!(
        s["parent"]["pending"], 1,
        "nothing acknowledged upstream yet"
    );
    assert_eq!(s["store"]["healthy"], true);
    assert!(s["certificate"]["days_left"].as_i64().unwrap() > 300);
    let (status, text) = http.get_text(&node.url("/metrics"));
    assert_eq!(status, 200);
    assert!(
        text.contains("store_records{owner=\"440100\",kind=\"vacancy\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ingest_records_total{result=\"stored\"} 1"),
        "{text}"
    );
    assert!(text.contains("cert_expiry_timestamp_seconds"), "{text}");

    let out = common::lmsync_ok(&["status", "--config", files.config.to_str().unwrap()]);
    assert!(
        out.contains("440100") && out.contains("vacancy") && out.contains("pending 1"),
        "{out}"
    );
    assert_eq!(node.terminate(), Some(0), "SIGTERM drains and exits 0");
}

/// A token is rotated without a restart: the next one added as a second line and the file
/// reloaded on SIGHUP, both are accepted; the old one removed and reloaded again, it is
/// refused.
#[test]
fn the_api_token_is_rotated_without_a_restart() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let http = Http::new();
    let token_file = net.path().join("440100.token");
    let old = files.token.clone();
    let new = "rotated-token-0123456789abcdef0123456789".to_string();
    let status_with = |token: &str| {
        http.post(&node.url("/v1/figures/verify"), token, &json!({}))
            .0
    };
    let reload = |text: String| {
        std::fs::write(&token_file, text).unwrap();
        let pid = node.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    let eventually = |what: &str, check: &dyn Fn() -> bool| {
        common::eventually(what, std::time::Duration::from_secs(30), check);
    };
    assert_eq!((status_with(&old), status_with(&new)), (200, 401));

    reload(format!("{old}\n{new}\n"));
    eventually("the next token accepted", &|| status_with(&new) == 200);
    assert_eq!(status_with(&old), 200, "both during the switch");

    reload(format!("{new}\n"));
    eventually("the old token refused", &|| status_with(&old) == 401);
    assert_eq!(status_with(&new), 200);

    assert_eq!(node.terminate(), Some(0), "SIGHUP did not stop the node");
}

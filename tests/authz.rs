//! Unauthorised peers are refused and nothing they send is stored, asserted on the
//! receiving server: a foreign CA, a certificate for another code than the node claims, a
//! node of the wrong tier, and a city sending another city's records.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Http, Network, NodeFiles, RunningNode, lmsync_ok};
use serde_json::Value;

fn province(net: &Network) -> (NodeFiles, RunningNode) {
    let files = net.init("440000", None);
    let run = RunningNode::start(&files);
    (files, run)
}

fn parent_arg(p: &RunningNode) -> String {
    format!("440000@{}", p.quic.clone().unwrap())
}

/// Waits (bounded) until the node reports an error on its parent link, and returns it.
fn parent_error(http: &Http, node: &RunningNode) -> String {
    let start = Instant::now();
    loop {
        let s = http.get(&node.url("/v1/status")).1;
        if let Value::String(e) = &s["parent"]["last_error"] {
            return e.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no refusal reported: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn records_at(http: &Http, node: &RunningNode, owner: &str) -> u64 {
    http.get(&node.url(&format!("/v1/digest?owner={owner}"))).1["records"]
        .as_u64()
        .unwrap()
}

fn feed(net: &Network, city: &NodeFiles, code: &str) {
    let text = lmsync_ok(&["gen", "--node", code, "--records", "50", "--seed", "1"]);
    let path = net.path().join(format!("{code}.jsonl"));
    std::fs::write(&path, text).unwrap();
    lmsync_ok(&[
        "import",
        "--config",
        city.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
}

#[test]
fn a_certificate_from_a_foreign_ca_is_refused() {
    let net = Network::new();
    let (_, p) = province(&net);
    let rogue = Network::new();
    let city = rogue.init("440100", Some(&parent_arg(&p)));
    let run = RunningNode::start(&city);
    feed(&rogue, &city, "440100");
    let http = Http::new();
    let error = parent_error(&http, &run);
    assert!(error.contains("connecting"), "{error}");
    assert_eq!(
        records_at(&http, &p, "440100"),
        0,
        "nothing from a foreign CA is stored"
    );
    let status = http.get(&p.url("/v1/status")).1;
    assert_eq!(status["children"].as_array().unwrap().len(), 0, "{status}");
}

#[test]
fn a_node_presenting_another_codes_certificate_is_refused() {
    let net = Network::new();
    let (_, p) = province(&net);
    let city = net.init("440100", Some(&parent_arg(&p)));
    net.init("440300", None);
    // 440100's config now presents 440300's certificate and key.
    let text = std::fs::read_to_string(&city.config)
        .unwrap()
        .replace("pki-440100", "pki-440300");
    std::fs::write(&city.config, text).unwrap();
    let run = RunningNode::start(&city);
    feed(&net, &city, "440100");
    let http = Http::new();
    let error = parent_error(&http, &run);
    assert!(
        error.contains("Identity") && error.contains("the certificate is for 440300"),
        "{error}"
    );
    assert_eq!(records_at(&http, &p, "440100"), 0);
    assert_eq!(records_at(&http, &p, "440300"), 0);
}

/// Connects to the province with `code`'s certificate and returns why it was closed.
fn closed_by_province(net: &Network, code: &str, province: &RunningNode) -> String {
    net.init(code, None);
    let pki = net.path().join(format!("pki-{code}"));
    let files = lmsync::transport::tls::TlsFiles {
        ca: &pki.join("ca.crt"),
        cert: &pki.join("node.crt"),
        key: &pki.join("node.key"),
    };
    let material = lmsync::transport::tls::TlsMaterial::load(&files).unwrap();
    let config = lmsync::transport::tls::client_config(&material).unwrap();
    let addr: std::net::SocketAddr = province.quic.clone().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(config);
        let conn = endpoint
            .connect(addr, "n440000.lmsync")
            .unwrap()
            .await
            .unwrap();
        // The TLS handshake succeeds (the certificate is genuine); the tree says no.
        match conn.closed().await {
            quinn::ConnectionError::ApplicationClosed(c) => {
                String::from_utf8_lossy(&c.reason).into_owned()
            }
            other => panic!("expected an application close, got {other}"),
        }
    })
}

#[test]
fn nodes_outside_the_subtree_or_of_the_wrong_tier_are_refused() {
    let net = Network::new();
    let (_, p) = province(&net);
    let http = Http::new();
    let reason = closed_by_province(&net, "210100", &p);
    assert!(
        reason.contains("210100 (city) is not a child of 440000"),
        "{reason}"
    );
    let reason = closed_by_province(&net, "210000", &p);
    assert!(
        reason.contains("210000 (province) is not a child of 440000"),
        "{reason}"
    );
    let reason = closed_by_province(&net, "100000", &p);
    assert!(reason.contains("is not a child of 440000"), "{reason}");
    assert_eq!(
        http.get(&p.url("/v1/digest")).1["records"]
            .as_u64()
            .unwrap(),
        0
    );
    assert_eq!(
        http.get(&p.url("/v1/status")).1["children"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The config refuses such a parent before anything is sent.
    let stranger = net.init("210200", None);
    let text = std::fs::read_to_string(&stranger.config).unwrap();
    let text = text.replace(
        "[network]\n",
        &format!("[network]\nparent = \"{}\"\n", parent_arg(&p)),
    );
    std::fs::write(&stranger.config, text).unwrap();
    let out = common::lmsync(&[
        "config",
        "check",
        "--config",
        stranger.config.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("network.parent"));
}

#[test]
fn a_city_sending_another_citys_records_is_cut_off_with_nothing_stored() {
    let net = Network::new();
    let (_, p) = province(&net);
    let city = net.init("440300", Some(&parent_arg(&p)));
    // Plant records owned by 440100 in 440300's store, as a compromised node might.
    {
        let owner: lmsync::model::NodeCode = "440100".parse().unwrap();
        let me: lmsync::model::NodeCode = "440300".parse().unwrap();
        let store = lmsync::storage::SledStore::open(
            &city.data,
            me,
            lmsync::storage::sled_options(16 << 20),
        )
        .unwrap();
        let standards = lmsync::model::standards::Standards::builtin();
        let key = lmsync::model::person::Pseudonymiser::new([3; 32], 1);
        let cx = lmsync::model::ingest::IngestContext {
            checker: lmsync::model::validate::Checker {
                owner,
                standards: &standards,
            },
            pseudonymiser: Some(&key),
        };
        let mut planner = lmsync::node::Planner::new(&store, owner);
        for v in lmsync::synth::generate(owner, 30, 2) {
            planner
                .plan(cx.draft(v).unwrap(), &standards.code_refs(), 0)
                .unwrap();
        }
        let batch = lmsync::storage::WriteBatch {
            records: planner.into_writes(),
            ..Default::default()
        };
        lmsync::storage::Store::commit(&store, batch).unwrap();
    }
    let run = RunningNode::start(&city);
    feed(&net, &city, "440300");
    let http = Http::new();
    let error = parent_error(&http, &run);
    assert!(
        error.contains("Unauthorised") && error.contains("outside its subtree"),
        "{error}"
    );
    assert_eq!(
        records_at(&http, &p, "440100"),
        0,
        "no foreign record stored"
    );
    assert_eq!(
        records_at(&http, &p, "440300"),
        0,
        "the session was cut before anything was stored"
    );
}

//! The certificate lifecycle with real processes: a node's certificate renewed and put in
//! force by SIGHUP while its sessions carry on; the network CA rotated with an overlap in
//! which both CAs are trusted; a stolen key revoked by the ministry, refused everywhere,
//! and its node carrying on under a new certificate with nothing lost; a certificate near
//! its expiry shown in status, the dashboard, the metrics and the log.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{
    Http, NodeFiles, RunningNode, Tree, converged, digest, eventually, lmsync_ok, tree, vacancy,
};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

fn pki_dir(t: &Tree, code: &str) -> PathBuf {
    t.net.path().join(format!("pki-{code}"))
}

fn ca_dir(t: &Tree) -> PathBuf {
    t.net.path().join("ca")
}

fn status(http: &Http, node: &RunningNode) -> Value {
    http.get(&node.url("/v1/status")).1
}

fn hangup(node: &RunningNode) {
    node.signal("HUP");
}

fn renew(ca: &Path, code: &str, pki: &Path) -> String {
    lmsync_ok(&[
        "pki",
        "renew",
        "--dir",
        ca.to_str().unwrap(),
        "--node",
        code,
        "--out",
        pki.to_str().unwrap(),
    ])
}

fn serial(http: &Http, node: &RunningNode) -> String {
    status(http, node)["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The certificate a child presented on its current session, as its parent saw it.
fn child_serial(http: &Http, parent: &RunningNode, child: &str) -> Option<String> {
    status(http, parent)["children"]
        .as_array()?
        .iter()
        .find(|c| c["code"] == child)?["certificate"]["serial"]
        .as_str()
        .map(str::to_string)
}

fn child_link(http: &Http, parent: &RunningNode, child: &str) -> Value {
    status(http, parent)["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == child)
        .cloned()
        .unwrap_or(Value::Null)
}

fn post(http: &Http, node: &RunningNode, files: &NodeFiles, id: &str) {
    let (code, answer) = http.post(
        &node.url("/v1/records"),
        &files.token,
        &json!([vacancy(id, 1)]),
    );
    assert_eq!(code, 200, "{answer}");
}

/// Stops the province and starts it again on its port, so that every link through it
/// handshakes anew.
fn restart_province(t: &mut Tree) {
    t.province.1.signal("TERM");
    t.province.1.child.wait().unwrap();
    t.province.1 = RunningNode::start(&t.province.0);
}

#[test]
fn a_renewed_certificate_is_put_in_force_by_sighup_and_sessions_carry_on() {
    let mut t = tree(&["440100"]);
    let http = Http::new();
    let (files, city) = &t.cities[0];
    post(&http, city, files, "V-before");
    converged(&http, &t);
    let old = serial(&http, city);
    assert_eq!(
        child_serial(&http, &t.province.1, "440100"),
        Some(old.clone())
    );
    let broken = child_link(&http, &t.province.1, "440100")["sessions_broken"].clone();

    let out = renew(&ca_dir(&t), "440100", &pki_dir(&t, "440100"));
    assert!(out.contains(&format!("(was {old})")), "{out}");
    hangup(city);
    eventually("the renewed certificate in force", LIMIT, || {
        serial(&http, city) != old
    });
    let new = serial(&http, city);

    // The session established before carries on: records still move over it and it did
    // not break.
    post(&http, city, files, "V-after-renewal");
    converged(&http, &t);
    let link = child_link(&http, &t.province.1, "440100");
    assert_eq!(link["sessions_broken"], broken, "{link}");
    assert_eq!(link["connected"], true);

    // The next handshake presents the new certificate.
    restart_province(&mut t);
    eventually("the province seeing the new certificate", LIMIT, || {
        child_serial(&http, &t.province.1, "440100").as_deref() == Some(new.as_str())
    });
    let (files, city) = &t.cities[0];
    post(&http, city, files, "V-after-restart");
    converged(&http, &t);
}

/// Writes the concatenation of the CA certificates in `cas` as `node`'s trusted bundle.
fn trust(t: &Tree, code: &str, cas: &[&Path]) {
    let bundle: String = cas
        .iter()
        .map(|ca| std::fs::read_to_string(ca.join("ca.crt")).unwrap())
        .collect();
    std::fs::write(pki_dir(t, code).join("ca.crt"), bundle).unwrap();
}

#[test]
fn the_network_ca_is_rotated_with_both_trusted_in_between() {
    let mut t = tree(&["440100"]);
    let http = Http::new();
    // A document signed before the rotation, which must still verify after it.
    let policy = t.net.path().join("policy.json");
    std::fs::write(
        &policy,
        json!({"kind": "policy", "id": "劳社部发〔1999〕1号", "body": {"title": "pilot notice"}})
            .to_string(),
    )
    .unwrap();
    lmsync_ok(&[
        "publish",
        "--config",
        t.ministry.0.config.to_str().unwrap(),
        policy.to_str().unwrap(),
    ]);
    let (old_ca, new_ca) = (ca_dir(&t), t.net.path().join("ca2"));
    lmsync_ok(&["pki", "init", "--dir", new_ca.to_str().unwrap()]);
    let codes = ["100000", "440000", "440100"];

    // 1. Every node trusts both CAs.
    for code in codes {
        trust(&t, code, &[&old_ca, &new_ca]);
    }
    for node in [&t.ministry.1, &t.province.1, &t.cities[0].1] {
        hangup(node);
    }
    // 2. Every node gets a certificate of the new CA.
    for (code, node) in codes
        .iter()
        .zip([&t.ministry.1, &t.province.1, &t.cities[0].1])
    {
        let old = serial(&http, node);
        let out = renew(&new_ca, code, &pki_dir(&t, code));
        assert!(!out.contains("does not hold the CA"), "{out}");
        hangup(node);
        eventually("the new certificate in force", LIMIT, || {
            serial(&http, node) != old
        });
    }
    // 3. The issuers sign their documents again.
    let out = lmsync_ok(&[
        "pki",
        "resign",
        "--config",
        t.ministry.0.config.to_str().unwrap(),
    ]);
    assert!(out.contains("Re-signed 1 documents"), "{out}");
    // 4. The old CA is dropped everywhere.
    for code in codes {
        trust(&t, code, &[&new_ca]);
    }
    for node in [&t.ministry.1, &t.province.1, &t.cities[0].1] {
        hangup(node);
    }
    // New handshakes, under the new CA alone, work both ways through the province.
    restart_province(&mut t);
    let (files, city) = &t.cities[0];
    post(&http, city, files, "V-after-rotation");
    converged(&http, &t);
    eventually("the re-signed document at the city", LIMIT, || {
        let (code, doc) = http.get(&city.url("/v1/documents/policy/劳社部发〔1999〕1号"));
        code == 200 && doc["version"] == 2
    });

    // A certificate of the old CA is refused now.
    let stray = t.net.init(
        "440300",
        Some(&format!("440000@{}", t.province.1.quic.clone().unwrap())),
    );
    let stray_node = RunningNode::start(&stray);
    eventually("the old CA's certificate refused", LIMIT, || {
        !status(&http, &stray_node)["parent"]["refused"].is_null()
    });
    assert_eq!(status(&http, &stray_node)["parent"]["connected"], false);
}

#[test]
fn a_stolen_key_is_revoked_refused_everywhere_and_its_node_carries_on() {
    let mut t = tree(&["440100"]);
    let http = Http::new();
    let (files, city) = &t.cities[0];
    for i in 0..20 {
        post(&http, city, files, &format!("V-{i}"));
    }
    converged(&http, &t);
    let stolen = serial(&http, city);

    // The thief runs a copy of the city: its certificate, key and store (taken while the
    // city was stopped, as from a disk image), so that the parent cannot tell them apart.
    let thief_pki = t.net.path().join("pki-thief");
    common::copy_dir(&pki_dir(&t, "440100"), &thief_pki);
    let thief_config = t.net.path().join("thief.toml");
    let thief_data = t.net.path().join("data-thief");
    let parent = format!("440000@{}", t.province.1.quic.clone().unwrap());
    lmsync_ok(&[
        "init",
        "--node",
        "440100",
        "--pki",
        thief_pki.to_str().unwrap(),
        "--data",
        thief_data.to_str().unwrap(),
        "--api",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
        "--parent",
        &parent,
        "--config",
        thief_config.to_str().unwrap(),
    ]);
    city.signal("TERM");
    t.cities[0].1.child.wait().unwrap();
    std::fs::remove_dir_all(&thief_data).unwrap();
    common::copy_dir(&t.cities[0].0.data, &thief_data);
    t.cities[0].1 = RunningNode::start(&t.cities[0].0);
    let (files, city) = &t.cities[0];
    let thief_files = NodeFiles {
        code: "440100".into(),
        config: thief_config.clone(),
        data: thief_data,
        token: String::new(),
    };
    let thief = RunningNode::start(&thief_files);
    eventually("the copy connected", LIMIT, || {
        status(&http, &thief)["parent"]["connected"] == true
    });

    // The CA names every certificate of the city; the ministry publishes the revocation.
    let printed = lmsync_ok(&[
        "pki",
        "revoke",
        "--dir",
        ca_dir(&t).to_str().unwrap(),
        "--node",
        "440100",
        "--reason",
        "key stolen",
    ]);
    let document: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(document["kind"], "revocation");
    assert_eq!(
        document["body"]["serials"],
        json!([stolen.clone()]),
        "{printed}"
    );
    let revocation = t.net.path().join("revoke.json");
    std::fs::write(&revocation, &printed).unwrap();
    let out = lmsync_ok(&[
        "publish",
        "--config",
        t.ministry.0.config.to_str().unwrap(),
        revocation.to_str().unwrap(),
    ]);
    assert!(out.contains("published"), "{out}");
    for node in [&t.ministry.1, &t.province.1] {
        eventually("the revocation named in status", LIMIT, || {
            status(&http, node)["revoked_certificates"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["serial"] == stolen.as_str()))
        });
    }
    let refused = |node: &RunningNode| {
        let parent = &status(&http, node)["parent"];
        parent["connected"] == false
            && parent["refused"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("revoked"))
    };
    eventually("the copy refused", LIMIT, || refused(&thief));
    eventually(
        "the stolen certificate refused at the city too",
        LIMIT,
        || refused(city),
    );
    let dashboard = http.get_text(&t.province.1.url("/")).1;
    assert!(
        dashboard.contains(&stolen) && dashboard.contains("key stolen"),
        "{dashboard}"
    );

    // The city gets a new certificate and carries on with nothing lost.
    renew(&ca_dir(&t), "440100", &pki_dir(&t, "440100"));
    hangup(city);
    eventually("the city connected again", LIMIT, || {
        status(&http, city)["parent"]["connected"] == true
    });
    for i in 20..30 {
        post(&http, city, files, &format!("V-{i}"));
    }
    converged(&http, &t);
    let at_ministry = digest(&http, &t.ministry.1, "440100");
    assert_eq!(at_ministry["records"], 30, "{at_ministry}");
    // The revocation reached the city once it was back, and the copy is still refused.
    eventually("the revocation at the city", LIMIT, || {
        status(&http, city)["revoked_certificates"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    assert!(refused(&thief));
}

#[test]
fn a_certificate_near_its_expiry_shows_in_status_dashboard_metrics_and_log() {
    let net = common::Network::new();
    let files = net.init("100000", None);
    // Replace the node's certificate with one that expires in 10 days.
    let soon = net.path().join("soon");
    let today = chrono::Utc::now().date_naive();
    lmsync::node::pki::issue_between(
        &net.path().join("ca"),
        "100000".parse().unwrap(),
        &soon,
        today - chrono::Days::new(1),
        today + chrono::Days::new(10),
    )
    .unwrap();
    for name in ["node.crt", "node.key"] {
        std::fs::copy(soon.join(name), net.path().join("pki-100000").join(name)).unwrap();
    }
    let log = net.path().join("node.log");
    let child = common::bin()
        .args(["run", "--config", files.config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let node = RunningNode::when_ready(child);
    let http = Http::new();
    let certificate = status(&http, &node)["certificate"].clone();
    assert!(
        certificate["warning"]
            .as_str()
            .is_some_and(|w| w.contains("expires on")),
        "{certificate}"
    );
    assert!(certificate["days_left"].as_i64().unwrap() <= 10);
    let dashboard = http.get_text(&node.url("/")).1;
    assert!(
        dashboard.contains("id=\"alerts\"") && dashboard.contains("expires on"),
        "{dashboard}"
    );
    let metrics = http.get_text(&node.url("/metrics")).1;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("cert_needs_renewal") && l.ends_with(" 1")),
        "{metrics}"
    );
    eventually("the warning in the log", LIMIT, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("WARN") && l.contains("expires on"))
    });
    let text = lmsync_ok(&["status", "--config", files.config.to_str().unwrap()]);
    assert!(text.contains("! the certificate expires on"), "{text}");
}

//! Documents flow down: a classification version published at the ministry reaches the
//! city through the province and takes effect for validation there; a province's policy
//! reaches its cities; cities cannot publish; a forged document is refused at the hop.
//! Documents move when they are committed, not on a sync tick, so an idle link may tick
//! rarely.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Http, Network, RunningNode, lmsync, lmsync_ok, vacancy};
use lmsync::core::model::NodeCode;
use lmsync::core::model::document::StoredDocument;
use lmsync::core::protocol::{Action, ChildSession};
use lmsync::core::store::Store;
use lmsync::core::wire::{Message, PROTOCOL_VERSION, RefusalCode};
use lmsync::node::storage::{SledStore, sled_options};
use serde_json::json;

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_classification_published_at_the_ministry_is_enforced_at_the_city() {
    let net = Network::new();
    let m = net.init("100000", None);
    let mr = RunningNode::start(&m);
    let p = net.init(
        "440000",
        Some(&format!("100000@{}", mr.quic.clone().unwrap())),
    );
    let pr = RunningNode::start(&p);
    let c = net.init(
        "440100",
        Some(&format!("440000@{}", pr.quic.clone().unwrap())),
    );
    let cr = RunningNode::start(&c);
    let http = Http::new();
    let mut care = vacancy("V-care", 3);
    care["data"]["occupation"] = json!("4-07-99");
    let (status, answer) = http.post(&cr.url("/v1/records"), &c.token, &json!([care.clone()]));
    assert_eq!(status, 422, "unknown before the new version: {answer}");
    assert_eq!(answer["rejected"][0]["error"], "unknown_code");

    let doc = json!({"kind": "classification_version", "id": "CN-OCC@1999+2005", "body": {
        "scheme": "CN-OCC", "version": "1999+2005", "supersedes": "1999", "add": [["4-07-99", "养老护理员"]]}});
    let path = net.path().join("occ.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let out = lmsync_ok(&[
        "publish",
        "--config",
        m.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(out.contains("published"), "{out}");
    // The city puts a classification in force just after it stores the document: wait
    // for the standards in force, which is what enforcement follows.
    eventually("the classification in force at the city", || {
        http.get(&cr.url("/v1/status")).1["standards"]
            .as_array()
            .unwrap()
            .contains(&json!("CN-OCC@1999+2005"))
    });
    assert_eq!(
        http.get(&cr.url("/v1/documents/classification_version/CN-OCC@1999+2005"))
            .0,
        200
    );
    let (status, answer) = http.post(&cr.url("/v1/records"), &c.token, &json!([care]));
    assert_eq!(
        status, 200,
        "accepted once the version is in force: {answer}"
    );
    let (_, d) = http.get(&pr.url("/v1/documents/classification_version/CN-OCC@1999+2005"));
    assert_eq!(
        (d["issuer"].as_str(), d["signature"].as_str()),
        (Some("100000"), Some("verified"))
    );

    // A province's policy reaches its cities; a city cannot publish.
    let policy = json!({"kind": "policy", "id": "粤劳社〔1999〕12号", "body": {"title": "试点城市工作方案"}});
    std::fs::write(&path, policy.to_string()).unwrap();
    lmsync_ok(&[
        "publish",
        "--config",
        p.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    eventually("the province's policy at the city", || {
        http.get(&cr.url("/v1/documents/policy/粤劳社〔1999〕12号"))
            .0
            == 200
    });
    assert_eq!(
        http.get(&mr.url("/v1/documents/policy/粤劳社〔1999〕12号"))
            .0,
        404,
        "documents never flow up"
    );
    let out = lmsync(&[
        "publish",
        "--config",
        c.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only the ministry and provinces publish")
    );
}

/// City 440100's store and a child session with province 440000 past its handshake, in a
/// network whose PKI holds both nodes' certificates.
fn welcomed_city(net: &Network) -> (SledStore, ChildSession) {
    let c = net.init("440100", None);
    net.init("440000", None);
    let read = |p: &str| std::fs::read_to_string(net.path().join(p)).unwrap();
    let (city, province): (NodeCode, NodeCode) =
        ("440100".parse().unwrap(), "440000".parse().unwrap());
    let store = SledStore::open(&c.data, city, sled_options(8 << 20)).unwrap();
    let verifier =
        lmsync::core::model::signature::DocumentVerifier::new(&read("ca/ca.crt")).unwrap();
    let standards = std::sync::Arc::new(lmsync::core::model::standards::StandardsCell::new(
        lmsync::core::model::standards::Standards::builtin(),
    ));
    let mut session = ChildSession::new(city, province, 100, verifier, standards);
    session.start(&store);
    let welcome = Message::Welcome {
        protocol: PROTOCOL_VERSION,
        node: province,
        store_id: [0; 16],
    };
    session.handle(&store, welcome).unwrap();
    (store, session)
}

#[test]
fn a_forged_ministry_document_is_refused_and_not_stored() {
    let net = Network::new();
    let (store, mut session) = welcomed_city(&net);
    let read = |p: &str| std::fs::read_to_string(net.path().join(p)).unwrap();
    // The province signs a document that claims to come from the ministry.
    let mut forged = StoredDocument {
        kind: "policy".into(),
        id: "forged".into(),
        issuer: lmsync::core::model::MINISTRY,
        version: 1,
        body: "{}".into(),
        certificate: Vec::new(),
        signature: Vec::new(),
    };
    lmsync::core::model::signature::sign(
        &mut forged,
        &read("pki-440000/node.crt"),
        &read("pki-440000/node.key"),
    )
    .unwrap();
    let actions = session.handle(&store, Message::Document(forged)).unwrap();
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Close {
                code: RefusalCode::Unauthorised,
                ..
            }]
        ),
        "{actions:?}"
    );
    assert!(store.documents().unwrap().is_empty(), "nothing stored");
}

/// The same kind and id published by a province and then by the ministry are two
/// documents: both reach the province and its city, neither hides the other, and a read
/// without an issuer says which issuers there are.
#[test]
fn the_same_id_from_two_issuers_is_two_documents_at_every_tier() {
    let t = common::tree(&["440100"]);
    let ((m, _), (p, pr), (_, cr)) = (&t.ministry, &t.province, &t.cities[0]);
    let http = Http::new();
    let publish = |files: &common::NodeFiles, title: &str| {
        let path = t.net.path().join(format!("{}.json", files.code));
        let doc = json!({"kind": "policy", "id": "NOTICE-1999-1", "body": {"title": title}});
        std::fs::write(&path, doc.to_string()).unwrap();
        lmsync_ok(&[
            "publish",
            "--config",
            files.config.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
    };
    publish(p, "provincial notice");
    eventually("the province's notice at the city", || {
        http.get(&cr.url("/v1/documents/policy/NOTICE-1999-1")).0 == 200
    });
    publish(m, "national notice");
    for (node, name) in [(pr, "province"), (cr, "city")] {
        eventually(&format!("both notices at the {name}"), || {
            let (_, all) = http.get(&node.url("/v1/documents"));
            let issuers: Vec<&str> = all["documents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["id"] == "NOTICE-1999-1")
                .filter_map(|d| d["issuer"].as_str())
                .collect();
            issuers.contains(&"100000") && issuers.contains(&"440000")
        });
        let (status, answer) = http.get(&node.url("/v1/documents/policy/NOTICE-1999-1"));
        assert_eq!(status, 409, "{name}: {answer}");
        assert_eq!(answer["error"], "ambiguous_document", "{name}: {answer}");
        let (status, national) =
            http.get(&node.url("/v1/documents/policy/NOTICE-1999-1?issuer=100000"));
        assert_eq!(status, 200, "{name}: {national}");
        assert_eq!(national["body"]["title"], "national notice", "{name}");
    }
    let listed = |kind: &str| {
        let (_, all) = http.get(&cr.url(&format!("/v1/documents?kind={kind}")));
        all["documents"].as_array().unwrap().len()
    };
    assert_eq!((listed("policy"), listed("classification_version")), (2, 0));
}

/// National classifications are the ministry's alone: a province cannot publish one, so a
/// city, its province and the ministry accept and reject the same codes.
#[test]
fn a_province_cannot_extend_a_national_classification() {
    let t = common::tree(&[]);
    let (net, (p, _)) = (&t.net, &t.province);
    let doc = json!({"kind": "classification_version", "id": "CN-OCC@1999+2010", "body": {
        "scheme": "CN-OCC", "version": "1999+2010", "supersedes": "1999", "add": [["4-07-98", "本省工种"]]}});
    let path = net.path().join("occ.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let out = lmsync(&[
        "publish",
        "--config",
        p.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("only the ministry"), "{said}");
}

/// A classification version signed by the city's own province (genuine signature, wrong
/// authority) is not stored and not applied at the city; the session goes on, and the
/// refusal is an event for the operator.
#[test]
fn a_provincial_classification_is_refused_at_the_city_without_ending_the_session() {
    let net = Network::new();
    let (store, mut session) = welcomed_city(&net);
    let read = |p: &str| std::fs::read_to_string(net.path().join(p)).unwrap();
    let province: NodeCode = "440000".parse().unwrap();
    let mut extension = StoredDocument {
        kind: "classification_version".into(),
        id: "CN-OCC@1999+2010".into(),
        issuer: province,
        version: 1,
        body: json!({"scheme": "CN-OCC", "version": "1999+2010", "supersedes": "1999",
                     "add": [["4-07-98", "本省工种"]]})
        .to_string(),
        certificate: Vec::new(),
        signature: Vec::new(),
    };
    lmsync::core::model::signature::sign(
        &mut extension,
        &read("pki-440000/node.crt"),
        &read("pki-440000/node.key"),
    )
    .unwrap();
    let actions = session
        .handle(&store, Message::Document(extension.clone()))
        .unwrap();
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Event(
                lmsync::core::protocol::Event::DocumentRefused { .. }
            )]
        ),
        "refused, reported, session not closed: {actions:?}"
    );
    assert!(store.documents().unwrap().is_empty(), "nothing stored");

    // One stored before the rule (an older release) is ignored for validation.
    store
        .commit(lmsync::core::store::WriteBatch {
            documents: vec![extension],
            ..Default::default()
        })
        .unwrap();
    let in_force = lmsync::node::write::standards_in_force(&store);
    assert!(
        !in_force
            .code_refs()
            .iter()
            .any(|r| r.version == "1999+2010"),
        "a province's classification never takes effect: {:?}",
        in_force.code_refs()
    );
}

/// A version-3 parent speaks version 2 with a version-2 child: it welcomes it in version 2
/// and lists documents without issuers, which that child can read.
#[test]
fn a_version_two_child_is_answered_in_version_two() {
    let net = Network::new();
    let p = net.init("440000", None);
    let read = |f: &str| std::fs::read_to_string(net.path().join(f)).unwrap();
    let (city, province): (NodeCode, NodeCode) =
        ("440100".parse().unwrap(), "440000".parse().unwrap());
    let store = SledStore::open(&p.data, province, sled_options(8 << 20)).unwrap();
    let verifier =
        lmsync::core::model::signature::DocumentVerifier::new(&read("ca/ca.crt")).unwrap();
    let standards = std::sync::Arc::new(lmsync::core::model::standards::StandardsCell::new(
        lmsync::core::model::standards::Standards::builtin(),
    ));
    let mut session =
        lmsync::core::protocol::ParentSession::new(province, city, standards, verifier);
    let hello = Message::Hello {
        protocol: (2, 2),
        node: city,
        store_id: [9; 16],
    };
    let sent = |actions: Vec<Action>| -> Vec<Message> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Send(m) => Some(m),
                _ => None,
            })
            .collect()
    };
    let welcome = sent(session.handle(&store, hello).unwrap());
    assert!(
        matches!(welcome.as_slice(), [Message::Welcome { protocol: 2, .. }]),
        "{welcome:?}"
    );
    let lists = sent(
        session
            .handle(&store, Message::Documents { have: Vec::new() })
            .unwrap(),
    );
    assert!(
        matches!(lists.first(), Some(Message::Documents { .. })),
        "a version-2 list: {lists:?}"
    );
}

/// With ticks an hour apart, a document published at the ministry still reaches the city
/// through the province (pushed on commit, both hops), and a province's designation still
/// goes up to the ministry (listed on commit).
#[test]
fn documents_move_on_commit_without_a_sync_tick() {
    let hourly = |_: &str, text: String| {
        text.replace("interval = \"100ms\"", "interval = \"1h\"")
            .replace(
                "anti_entropy_interval = \"1s\"",
                "anti_entropy_interval = \"1h\"",
            )
    };
    let t = common::tree_with(&["440100"], hourly);
    let ((mf, m), (pf, p), (cf, c)) = (&t.ministry, &t.province, &t.cities[0]);
    let http = Http::new();
    // Records also go on commit: once the ministry holds the city's record, both links
    // are up and past their opening exchange of document lists.
    let (status, body) = http.post(
        &c.url("/v1/records"),
        &cf.token,
        &json!([vacancy("V-1", 2)]),
    );
    assert_eq!(status, 200, "{body}");
    eventually("the city's record at the ministry", || {
        http.get(&m.url("/v1/records/440100/vacancy/V-1")).0 == 200
    });
    let doc = json!({"kind": "policy", "id": "NOTICE-1999-7", "body": {"title": "pushed"}});
    let (status, body) = http.post(&m.url("/v1/documents"), &mf.token, &doc);
    assert_eq!(status, 200, "{body}");
    eventually("the ministry's notice at the city", || {
        http.get(&c.url("/v1/documents/policy/NOTICE-1999-7")).0 == 200
    });
    let designation = json!({"kind": "pilot_designation", "id": "P-440100", "body": {
        "city": "440100", "province": "440000", "designated_on": "1999-07-01",
        "batch": 1, "status": "active"}});
    let (status, body) = http.post(&p.url("/v1/documents"), &pf.token, &designation);
    assert_eq!(status, 200, "{body}");
    eventually("the province's designation at the ministry", || {
        http.get(&m.url("/v1/documents/pilot_designation/P-440100"))
            .0
            == 200
    });
}

/// A tick that finds nothing new doubles the delay to the next, up to 16 intervals; a
/// commit brings the interval back.
#[test]
fn an_idle_link_ticks_less_often_until_something_is_committed() {
    let net = Network::new();
    let (store, mut session) = welcomed_city(&net);
    let interval = Duration::from_secs(5);
    let mut delays = Vec::new();
    for _ in 0..7 {
        session.on_tick(&store).unwrap();
        delays.push(session.tick_delay(interval).as_secs());
    }
    // The first tick has no earlier offer to compare with.
    assert_eq!(delays, [5, 10, 20, 40, 80, 80, 80]);
    session.on_commit(&store).unwrap();
    session.on_tick(&store).unwrap();
    assert_eq!(
        session.tick_delay(interval),
        interval,
        "a commit stirs the link"
    );
}

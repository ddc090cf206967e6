//! Pseudonym key rotation across a real three-tier tree: every person record carries the
//! key epoch of its pid; a city that restarts under a new epoch announces it in a signed
//! `key_epoch_notice` that reaches its province and the ministry (a reload by SIGHUP
//! does the same); during the overlap
//! (previous key kept) ingest links each person's old pid to the new one, and the
//! re-employment centre cohort (M02–M05) counts each person once at every tier, their
//! services under both epochs added up. A city that rotates without keeping the previous
//! key shows the documented reset. Epochs only go up; only a city announces, and only its
//! own epoch.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::sessions::{Signer, code, store};
use common::{Http, NodeFiles, RunningNode, Tree, citizen_id, eventually, lmsync_ok, tree};
use lmsync::core::model::standards::{Standards, StandardsCell};
use lmsync::core::model::{MINISTRY, NodeCode};
use lmsync::core::protocol::{Action, ParentSession};
use lmsync::core::store::Store;
use lmsync::core::wire::{Message, PROTOCOL_VERSION, RefusalCode};
use lmsync::node::storage::SledStore;
use serde_json::{Value, json};

const PERIOD: &str = "1999Q4";

fn vacancy(id: &str) -> Value {
    let mut v = common::vacancy(id, 1);
    v["data"]["valid_from"] = json!("1999-07-01");
    v["data"]["valid_until"] = json!("1999-12-31");
    v["data"]["reported_on"] = json!("1999-07-01");
    v
}

fn episode(id: &str, person: &str, entry: &str) -> Value {
    json!({"kind": "laid_off_episode", "id": id, "data": {
        "citizen_id": person, "employer_id": "E-1", "laid_off_on": "1999-06-15",
        "rsc_entry_on": entry, "rsc_office_id": "O-1", "agreement_signed": true}})
}

fn service(id: &str, person: &str, event_type: &str, on: &str, vacancies: &[&str]) -> Value {
    json!({"kind": "service_event", "id": id, "data": {
        "citizen_id": person, "office_id": "O-1", "occurred_on": on, "event_type": event_type,
        "vacancy_refs": vacancies, "fee": "free", "mode": "in_person"}})
}

fn post(http: &Http, node: &RunningNode, files: &NodeFiles, records: &[Value]) -> Value {
    let (status, body) = http.post(&node.url("/v1/records"), &files.token, &json!(records));
    assert_eq!(status, 200, "{body}");
    body
}

fn metric<'a>(coverage: &'a Value, id: &str, variant: &str) -> &'a Value {
    coverage["summary"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id && v["variant"] == variant)
        .unwrap_or_else(|| panic!("no {id}/{variant} in {coverage}"))
}

/// `(numerator, denominator)` of M02–M05 (cohort variant) for `city` as `node` sees it.
fn cohort_figures(http: &Http, node: &RunningNode, city: &str) -> Vec<(u64, u64)> {
    let (status, c) = http.get(&node.url(&format!("/v1/coverage?period={PERIOD}&scope={city}")));
    assert_eq!(status, 200, "{c}");
    ["M02", "M03", "M04", "M05"]
        .iter()
        .map(|id| {
            let m = metric(&c, id, "cohort");
            (
                m["numerator"].as_u64().unwrap(),
                m["denominator"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Writes a new 32-byte key beside the config and returns its path.
fn new_key(files: &NodeFiles, name: &str, byte: u8) -> String {
    let path = files.config.with_file_name(name);
    std::fs::write(&path, format!("{}\n", hex_of(byte))).unwrap();
    path.to_str().unwrap().to_string()
}

fn hex_of(byte: u8) -> String {
    format!("{byte:02x}").repeat(32)
}

/// The config's `pid_key_file` path.
fn key_file(config: &Path) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("pid_key_file"))
        .unwrap();
    line.split('=')
        .nth(1)
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_string()
}

/// Rewrites `[privacy]` with `lines` (the rest of the config as it was).
fn set_privacy(config: &Path, lines: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("pid_") && !l.starts_with("previous_pid"))
        .collect();
    let mut out = String::new();
    for l in kept {
        out.push_str(l);
        out.push('\n');
        if l.trim() == "[privacy]" {
            out.push_str(lines);
            out.push('\n');
        }
    }
    std::fs::write(config, out).unwrap();
}

/// Restarts city `i` of `t` after `edit` changed its config.
fn restart(t: &mut Tree, i: usize, edit: impl FnOnce(&NodeFiles)) {
    let (files, node) = t.cities.remove(i);
    assert_eq!(node.terminate(), Some(0));
    edit(&files);
    let node = RunningNode::start(&files);
    t.cities.insert(i, (files, node));
}

fn notices(http: &Http, node: &RunningNode) -> Vec<Value> {
    let (status, body) = http.get(&node.url("/v1/documents?kind=key_epoch_notice"));
    assert_eq!(status, 200, "{body}");
    body["documents"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no document list in {body}"))
}

#[test]
fn a_rotation_keeps_each_person_once_at_every_tier() {
    let mut t = tree(&["440100", "440300"]);
    let http = Http::new();
    let (w1, w2, w3) = (
        citizen_id("44010419700101123"),
        citizen_id("44010419710202234"),
        citizen_id("44010419720303345"),
    );
    let w4 = citizen_id("44030419730404456");

    // Epoch 1 (the default). City 440100: two workers in the re-employment centre.
    {
        let (files, city) = &t.cities[0];
        let mut records: Vec<Value> = (1..=3).map(|i| vacancy(&format!("V-{i}"))).collect();
        records.extend([
            episode("L-1", &w1, "1999-07-01"),
            service("S-1", &w1, "career_guidance", "1999-07-05", &[]),
            service("S-2", &w1, "job_info_provision", "1999-07-06", &["V-1"]),
            episode("L-2", &w2, "1999-08-01"),
            service("S-5", &w2, "job_info_provision", "1999-08-05", &["V-1"]),
        ]);
        let answer = post(&http, city, files, &records);
        assert_eq!(answer["accepted"].as_array().unwrap().len(), 8, "{answer}");
        // City 440300: one worker with a guidance session.
        let (files, city) = &t.cities[1];
        post(
            &http,
            city,
            files,
            &[
                episode("L-4", &w4, "1999-07-01"),
                service("S-1", &w4, "career_guidance", "1999-07-05", &[]),
            ],
        );
    }

    // 440100 rotates to epoch 2 and keeps its previous key for the overlap; 440300
    // rotates without keeping it.
    restart(&mut t, 0, |f| {
        let old = key_file(&f.config);
        let new = new_key(f, "440100-epoch2.pidkey", 0x22);
        set_privacy(
            &f.config,
            &format!(
                "pid_key_file = \"{new}\"\npid_epoch = 2\npid_epoch_valid_from = \"1999-10-01\"\n\
                 previous_pid_key_file = \"{old}\"\nprevious_pid_epoch = 1"
            ),
        );
    });
    // 440300 rotates without a restart: the new config, then SIGHUP. Once its notice can
    // be seen the new key is in force.
    {
        let (f, node) = &t.cities[1];
        let new = new_key(f, "440300-epoch2.pidkey", 0x33);
        set_privacy(
            &f.config,
            &format!("pid_key_file = \"{new}\"\npid_epoch = 2"),
        );
        node.signal("HUP");
        eventually(
            "440300's notice after a reload",
            Duration::from_secs(30),
            || {
                http.get(&node.url("/v1/documents/key_epoch_notice/epoch-2?issuer=440300"))
                    .0
                    == 200
            },
        );
    }

    // Epoch 2: more services for the same citizens, and a third worker.
    {
        let (files, city) = &t.cities[0];
        let answer = post(
            &http,
            city,
            files,
            &[
                service("S-3", &w1, "job_info_provision", "1999-10-06", &["V-2"]),
                service("S-4", &w1, "job_info_provision", "1999-10-07", &["V-3"]),
                service("S-6", &w1, "training_offer", "1999-10-08", &[]),
                service("S-7", &w2, "career_guidance", "1999-10-10", &[]),
                episode("L-3", &w3, "1999-09-01"),
                service("S-8", &w3, "training_offer", "1999-10-12", &[]),
            ],
        );
        // The answer lists the six records posted, not the links written beside them.
        assert_eq!(answer["accepted"].as_array().unwrap().len(), 6, "{answer}");
        // Posting the same again changes nothing: the links are the same records.
        let again = post(
            &http,
            city,
            files,
            &[service("S-7", &w2, "career_guidance", "1999-10-10", &[])],
        );
        assert_eq!(again["accepted"][0]["changed"], false, "{again}");
        let (files, city) = &t.cities[1];
        post(
            &http,
            city,
            files,
            &[
                service("S-2", &w4, "job_info_provision", "1999-10-06", &["V-1"]),
                service("S-3", &w4, "job_info_provision", "1999-10-07", &["V-1"]),
                service("S-4", &w4, "job_info_provision", "1999-10-08", &["V-1"]),
                service("S-6", &w4, "training_offer", "1999-10-09", &[]),
            ],
        );
    }
    common::converged(&http, &t);

    // Every person record carries its pid's epoch, at every tier; W1's link joins the
    // pid of their epoch-1 records to that of their epoch-2 ones.
    for node in [&t.cities[0].1, &t.province.1, &t.ministry.1] {
        let record = |kind: &str, id: &str| {
            let (status, r) = http.get(&node.url(&format!("/v1/records/440100/{kind}/{id}")));
            assert_eq!(status, 200, "{kind} {id}: {r}");
            r
        };
        let (s1, s3) = (
            record("service_event", "S-1"),
            record("service_event", "S-3"),
        );
        assert_eq!(s1["data"]["pid_epoch"], 1, "{s1}");
        assert_eq!(s3["data"]["pid_epoch"], 2, "{s3}");
        assert_eq!(record("laid_off_episode", "L-1")["data"]["pid_epoch"], 1);
        assert_eq!(record("laid_off_episode", "L-3")["data"]["pid_epoch"], 2);
        let (old, new) = (s1["data"]["pid"].clone(), s3["data"]["pid"].clone());
        assert_ne!(old, new, "a new key gives a new pid");
        let link = record("pid_link", &format!("1-2-{}", new.as_str().unwrap()));
        assert_eq!(
            link["data"],
            json!({"from_epoch": 1, "from_pid": old, "to_epoch": 2, "to_pid": new}),
            "{link}"
        );
        // One link per person ingested during the overlap (W1, W2, W3), nothing else.
        let (_, links) = http.get(&node.url("/v1/digest?owner=440100&kind=pid_link"));
        assert_eq!(links["records"], 3, "{links}");
    }

    // 440300's records after the reload are of epoch 2.
    let (_, s2) = http.get(&t.ministry.1.url("/v1/records/440300/service_event/S-2"));
    assert_eq!(s2["data"]["pid_epoch"], 2, "{s2}");

    // The notices reach the province and the ministry.
    for node in [&t.cities[0].1, &t.province.1, &t.ministry.1] {
        eventually("the key epoch notice", Duration::from_secs(30), || {
            http.get(&node.url("/v1/documents/key_epoch_notice/epoch-2?issuer=440100"))
                .0
                == 200
        });
        let (_, n) = http.get(&node.url("/v1/documents/key_epoch_notice/epoch-2?issuer=440100"));
        assert_eq!(
            n["body"],
            json!({"city": "440100", "epoch": 2, "valid_from": "1999-10-01"}),
            "{n}"
        );
        assert_eq!(n["issuer"], "440100");
    }
    eventually(
        "440300's notice at the ministry",
        Duration::from_secs(30),
        || {
            notices(&http, &t.ministry.1)
                .iter()
                .any(|n| n["issuer"] == "440300" && n["body"]["epoch"] == 2)
        },
    );
    // Coverage at the ministry shows each city's epoch in force.
    let (_, c) = http.get(&t.ministry.1.url(&format!("/v1/coverage?period={PERIOD}")));
    for row in c["cities"].as_array().unwrap() {
        assert_eq!(row["key_epoch"], 2, "{row}");
    }
    assert_eq!(c["cities"][0]["key_epoch_valid_from"], "1999-10-01", "{c}");
    // 440300 configured no date: its epoch holds from the start of this quarter.
    let at_ministry = notices(&http, &t.ministry.1);
    let b = at_ministry
        .iter()
        .find(|n| n["issuer"] == "440300")
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    let quarter_month = (chrono::Datelike::month(&today) - 1) / 3 * 3 + 1;
    let start =
        chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&today), quarter_month, 1).unwrap();
    assert_eq!(b["body"]["valid_from"], start.to_string(), "{b}");

    // The cohort at 440100, worked by hand. Maturity: 90 days in the centre by 1999-12-31.
    //   W1 entered 1999-07-01 (183 days): guidance 1 (S-1), job information 3 (S-2 in
    //      epoch 1; S-3, S-4 in epoch 2), free training 1 (S-6)  → passes M02, M03, M04, M05
    //   W2 entered 1999-08-01 (152 days): guidance 1 (S-7, epoch 2), information 1 (S-5)
    //      → passes M02 only
    //   W3 entered 1999-09-01 (121 days): training 1 (S-8) → passes M04 only
    //   denominator 3; M02 = 2 (W1, W2), M03 = 1 (W1), M04 = 2 (W1, W3), M05 = 1 (W1).
    // Without the links W1 would count S-1 and S-2 only and W2 nothing: 1/3, 0/3, 1/3, 0/3.
    let linked = vec![(2, 3), (1, 3), (2, 3), (1, 3)];
    // 440300 kept no previous key: W4's epoch-2 services are another person's (who has no
    // stay), so W4 has guidance 1 only: M02 1/1, M03 0/1, M04 0/1, M05 0/1 (the reset).
    let reset = vec![(1, 1), (0, 1), (0, 1), (0, 1)];
    for node in [&t.cities[0].1, &t.province.1, &t.ministry.1] {
        assert_eq!(cohort_figures(&http, node, "440100"), linked);
    }
    for node in [&t.cities[1].1, &t.province.1, &t.ministry.1] {
        assert_eq!(cohort_figures(&http, node, "440300"), reset);
    }

    // The CLI prints the same figures at the ministry.
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
    for (id, (num, den)) in ["M02", "M03", "M04", "M05"].iter().zip(&linked) {
        let m = statuses
            .iter()
            .find(|v| v["id"] == *id && v["variant"] == "cohort")
            .unwrap_or_else(|| panic!("no {id} in {out}"));
        assert_eq!(
            (&m["numerator"], &m["denominator"]),
            (&json!(num), &json!(den))
        );
    }
    // The kept figures, links included, are those of a full scan, at every tier.
    for files in [&t.cities[0].0, &t.province.0, &t.ministry.0] {
        let out = lmsync_ok(&["figures", "--config", files.config.to_str().unwrap()]);
        assert!(out.contains(", 0 differed"), "{out}");
    }

    // A record given by pid must say its epoch.
    let (files, city) = &t.cities[0];
    let (status, body) = http.post(
        &city.url("/v1/records"),
        &files.token,
        &json!([{"kind": "service_event", "id": "S-9", "data": {
            "pid": "ab".repeat(16), "office_id": "O-1", "occurred_on": "1999-10-20",
            "event_type": "career_guidance", "fee": "free", "mode": "in_person"}}]),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["rejected"][0]["field"], "data.pid_epoch", "{body}");

    // Only a city announces, and only its own epoch.
    let (status, body) = http.post(
        &city.url("/v1/documents"),
        &files.token,
        &json!({"kind": "key_epoch_notice", "id": "epoch-2",
                "body": {"city": "440300", "epoch": 2, "valid_from": "1999-10-01"}}),
    );
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("not_the_issuer")),
        "{body}"
    );
    let (pf, province) = &t.province;
    let (status, body) = http.post(
        &province.url("/v1/documents"),
        &pf.token,
        &json!({"kind": "key_epoch_notice", "id": "epoch-2",
                "body": {"city": "440000", "epoch": 2, "valid_from": "1999-10-01"}}),
    );
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("not_the_issuer")),
        "{body}"
    );

    // Epochs only go up: back to epoch 1 is refused at start, with the reason.
    let (files, node) = t.cities.remove(0);
    assert_eq!(node.terminate(), Some(0));
    let old = key_file(&files.config);
    set_privacy(
        &files.config,
        &format!("pid_key_file = \"{old}\"\npid_epoch = 1"),
    );
    let out = common::bin()
        .args(["run", "--config", files.config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("announced key epoch 2") && stderr.contains("epochs only go up"),
        "{stderr}"
    );
}

/// The parent's checks at the hop, on sessions without a network: a notice is taken only
/// from the city it names (at the province) or from the province above that city (at the
/// ministry); anything else ends the session with nothing stored.
#[test]
fn a_parent_takes_a_notice_only_from_the_city_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new();
    let (gz, sz, gd, nn) = (
        code("440100"),
        code("440300"),
        code("440000"),
        code("450100"),
    );
    let notice = |issuer: NodeCode, city: &str| {
        let body = format!(r#"{{"city":"{city}","epoch":2,"valid_from":"1999-10-01"}}"#);
        signer.document(issuer, "key_epoch_notice", "epoch-2", 1, &body)
    };
    let standards = Arc::new(StandardsCell::new(Standards::builtin()));
    // `child` offers `doc` to `me`; what is committed is committed.
    let offer = |me: NodeCode, child: NodeCode, at: &SledStore, doc| {
        let mut parent = ParentSession::new(me, child, standards.clone(), signer.verifier.clone());
        let hello = Message::Hello {
            protocol: (PROTOCOL_VERSION, PROTOCOL_VERSION),
            node: child,
            store_id: [9; 16],
        };
        let mut actions = parent.handle(at, hello).unwrap();
        actions.extend(parent.handle(at, Message::Document(doc)).unwrap());
        let refused = actions.iter().any(|a| {
            matches!(
                a,
                Action::Close {
                    code: RefusalCode::Unauthorised,
                    ..
                }
            )
        });
        for a in actions {
            if let Action::Commit { batch, .. } = a {
                at.commit(batch).unwrap();
            }
        }
        refused
    };
    let held = |at: &SledStore| {
        let mut docs: Vec<(String, String)> = at
            .documents()
            .unwrap()
            .into_iter()
            .filter(|d| d.kind == "key_epoch_notice")
            .map(|d| (d.issuer.to_string(), d.id))
            .collect();
        docs.sort();
        docs
    };

    let province = store(&dir.path().join("province"), gd);
    for (what, doc) in [
        ("a city naming another city", notice(gz, "440300")),
        (
            "a city passing on another city's notice",
            notice(sz, "440300"),
        ),
    ] {
        assert!(offer(gd, gz, &province, doc), "{what}");
    }
    assert!(held(&province).is_empty());
    assert!(
        !offer(gd, gz, &province, notice(gz, "440100")),
        "the city's own"
    );
    assert_eq!(
        held(&province),
        [("440100".to_string(), "epoch-2".to_string())]
    );

    let ministry = store(&dir.path().join("ministry"), MINISTRY);
    for (what, doc) in [
        ("a province's own", notice(gd, "440000")),
        ("a city of another province", notice(nn, "450100")),
    ] {
        assert!(offer(MINISTRY, gd, &ministry, doc), "{what}");
    }
    assert!(held(&ministry).is_empty());
    assert!(
        !offer(MINISTRY, gd, &ministry, notice(gz, "440100")),
        "forwarded"
    );
    assert_eq!(
        held(&ministry),
        [("440100".to_string(), "epoch-2".to_string())]
    );
}

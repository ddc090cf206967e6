//! Upgrades: a store written by an earlier release opens in this one, with every record,
//! document and summary as it was, and takes new writes.
//!
//! `tests/fixtures/store-format2.tar.gz` is a city store (440100) written in store format
//! 2 (the format of the release that added this test): generated records, some of them
//! changed once, a policy document, a child's watermark, closed cleanly.
//! `tests/fixtures/store-format2.json` says what it holds. A release that changes the
//! format keeps this fixture and adds one of its own: regenerate with
//! `cargo test --test upgrade -- --ignored write_the_format_fixture` (it writes the
//! fixture of the format this build writes).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lmsync::core::model::NodeCode;
use lmsync::core::model::document::StoredDocument;
use lmsync::core::model::ingest::IngestContext;
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::standards::Standards;
use lmsync::core::store::{FORMAT_VERSION, Store, WriteBatch};
use lmsync::node::clock::{Clock, ManualClock};
use lmsync::node::storage::{SledStore, sled_options};
use lmsync::node::write::Planner;
use lmsync::tooling::synth::generate;
use serde_json::{Value, json};

fn city() -> NodeCode {
    "440100".parse().unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Commits `values` as the city's records, as its write path does.
fn write(store: &SledStore, values: &[Value], clock: &ManualClock) {
    let standards = Standards::builtin();
    let key = Pseudonymiser::new([5; 32], 1);
    let cx = IngestContext::new(city(), &standards, Some(&key));
    let refs = standards.code_refs();
    let mut planner = Planner::new(store, city());
    for v in values {
        clock.advance(1);
        planner
            .plan(cx.draft(v.clone()).unwrap(), &refs, clock.now_ms())
            .unwrap();
    }
    store
        .commit(WriteBatch {
            records: planner.into_writes(),
            ..WriteBatch::default()
        })
        .unwrap();
}

/// What a store holds, as the fixture's JSON records it.
fn described(store: &SledStore) -> Value {
    let digest = store.digest(Some(city()), None);
    let records: Vec<Value> = store
        .scan_owner(city())
        .map(|r| {
            let e = r.unwrap().envelope;
            json!(format!(
                "{}/{} v{} seq {}",
                e.kind.as_str(),
                e.id,
                e.version,
                e.seq
            ))
        })
        .collect();
    json!({
        "format": store.identity().format,
        "records": digest.records,
        "digest_sum": digest.sum.to_string(),
        "last_seq": store.last_seq(city()),
        "versions": records,
        "documents": store.documents().unwrap().iter()
            .map(|d| json!([d.kind, d.id, d.version])).collect::<Vec<_>>(),
        "watermark": store.watermark("440000".parse().unwrap(), city()).unwrap(),
    })
}

#[test]
#[ignore = "writes the fixture of this build's store format; run by hand when it changes"]
fn write_the_format_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let clock = ManualClock::new(936_144_000_000);
    let store = SledStore::create(
        &path,
        city(),
        [42; 16],
        clock.now_ms(),
        sled_options(8 << 20),
    )
    .unwrap();
    let values = generate(city(), 400, 19_990_701);
    write(&store, &values[..300], &clock);
    write(&store, &values[300..], &clock);
    // A later version of some records, as an office correcting them.
    let changed: Vec<Value> = values[..40]
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v["status"] = json!("closed");
            v
        })
        .collect();
    write(&store, &changed, &clock);
    let doc = StoredDocument {
        kind: "policy".into(),
        id: "NOTICE-1999-1".into(),
        issuer: "100000".parse().unwrap(),
        version: 1,
        body: "{\"title\":\"fixture\"}".into(),
        certificate: Vec::new(),
        signature: Vec::new(),
    };
    store
        .commit(WriteBatch {
            documents: vec![doc],
            watermarks: vec![("440000".parse().unwrap(), city(), 7)],
            ..WriteBatch::default()
        })
        .unwrap();
    let description = described(&store);
    drop(store);
    let name = format!("store-format{FORMAT_VERSION}");
    let status = Command::new("tar")
        .args(["czf"])
        .arg(fixtures().join(format!("{name}.tar.gz")))
        .args(["-C"])
        .arg(dir.path())
        .arg("store")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        fixtures().join(format!("{name}.json")),
        serde_json::to_string_pretty(&description).unwrap() + "\n",
    )
    .unwrap();
}

/// The fixture of each format this release still opens, unpacked into a fresh directory.
fn unpack(format: u32) -> (tempfile::TempDir, PathBuf, Value) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("store-format{format}");
    let status = Command::new("tar")
        .args(["xzf"])
        .arg(fixtures().join(format!("{name}.tar.gz")))
        .args(["-C"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "tar could not unpack {name}");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    let path = dir.path().join("store");
    (dir, path, expected)
}

#[test]
fn a_format_2_store_opens_with_everything_it_held_and_takes_writes() {
    let (_dir, path, expected) = unpack(2);
    let store = SledStore::open(&path, city(), sled_options(8 << 20)).unwrap();
    let mut found = described(&store);
    assert_eq!(
        found["format"],
        json!(FORMAT_VERSION),
        "opened at this release's format"
    );
    found["format"] = expected["format"].clone();
    assert_eq!(
        found, expected,
        "records, versions, summaries, documents, watermarks"
    );
    for r in store.scan_owner(city()) {
        assert!(
            r.unwrap().verify_hash().unwrap(),
            "every record matches its hash"
        );
    }
    // New writes continue the city's seqs.
    let clock = ManualClock::new(2_000_000_000_000);
    let last_seq = store.last_seq(city());
    write(&store, &generate(city(), 410, 19_990_701)[400..], &clock);
    assert_eq!(store.last_seq(city()), last_seq + 10);
    let digest = store.digest(None, None);
    store.close_as_if_crashed();
    let store = SledStore::open(&path, city(), sled_options(8 << 20)).unwrap();
    assert!(!store.opened_from_checkpoint(), "rebuilt from the log");
    assert_eq!(store.digest(None, None), digest);
    assert_eq!(
        store.last_seq(city()),
        last_seq + 10,
        "and survive a crash after"
    );
}

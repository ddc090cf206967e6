//! The operator path end to end: `gen` 50,000 records for a city, `import` them through a
//! running node, every one accepted, `status` shows the counts; rejected lines are reported
//! with their line numbers while the rest is stored, a line too large for a request too.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{Http, Network, RunningNode, lmsync, lmsync_ok};
use serde_json::Value;

#[test]
fn fifty_thousand_generated_records_import_cleanly() {
    let net = Network::new();
    let files = net.init("440100", Some("440000@127.0.0.1:7400"));
    let node = RunningNode::start(&files);
    let path = net.path().join("records.jsonl");
    let text = lmsync_ok(&[
        "gen",
        "--node",
        "440100",
        "--records",
        "50000",
        "--seed",
        "11",
    ]);
    std::fs::write(&path, &text).unwrap();
    let keys: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["kind"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let distinct: BTreeSet<(String, String)> = keys.iter().cloned().collect();

    let out = lmsync_ok(&[
        "import",
        "--config",
        files.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(
        out.contains("50000 accepted") && out.contains("0 rejected"),
        "{out}"
    );

    let status = Http::new().get(&node.url("/v1/status")).1;
    assert_eq!(
        status["records"]["total"].as_u64().unwrap(),
        distinct.len() as u64
    );
    for kind in [
        "office",
        "employer",
        "vacancy",
        "job_seeker",
        "service_event",
    ] {
        let expected = distinct.iter().filter(|(k, _)| k == kind).count() as u64;
        assert_eq!(
            status["records"]["by_kind"][kind].as_u64().unwrap_or(0),
            expected,
            "{kind}"
        );
    }
    let human = lmsync_ok(&["status", "--config", files.config.to_str().unwrap()]);
    assert!(human.contains(&distinct.len().to_string()), "{human}");

    // Importing the file again rewrites nothing that has one line in it. (A record with
    // several lines — an update — is written again: its first line differs from the stored
    // final version, so the owner's history repeats with new versions.)
    let unchanged = unchanged_on_replay(&text);
    assert!(
        unchanged > 40_000 && unchanged < keys.len(),
        "the file should hold some updates"
    );
    let out = lmsync_ok(&[
        "import",
        "--config",
        files.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(
        out.contains(&format!("50000 accepted ({unchanged} unchanged)")),
        "{out}"
    );
    let again = Http::new().get(&node.url("/v1/status")).1;
    assert_eq!(again["records"]["total"], status["records"]["total"]);
}

#[test]
fn rejected_lines_are_reported_by_line_number() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let mut lines = twenty_lines();
    lines[4] = "{not json".into();
    let mut bad: Value = serde_json::from_str(&lines[9]).unwrap();
    bad["kind"] = Value::from("nonsense");
    lines[9] = bad.to_string();
    let stdout = import_failing(&net, &files, &lines);
    assert!(stdout.contains("line 5: malformed_json"), "{stdout}");
    assert!(stdout.contains("line 10: kind unknown_kind"), "{stdout}");
    assert!(stdout.contains("18 accepted"), "{stdout}");
    assert_eq!(
        Http::new().get(&node.url("/v1/digest")).1["records"]
            .as_u64()
            .unwrap(),
        // The accepted lines, and the quarter's ingest tally counting the refusals.
        u64::try_from(18 - duplicates(&lines) + 1).unwrap()
    );
}

/// A line over the node's request limit is rejected by its number, and the lines before
/// and after it are stored (before, the whole import stopped at its batch's 413).
#[test]
fn an_oversized_line_is_named_and_the_rest_imported() {
    let net = Network::new();
    let files = net.init("440100", None);
    let text = std::fs::read_to_string(&files.config).unwrap();
    std::fs::write(
        &files.config,
        text.replace("body_limit = \"16MiB\"", "body_limit = \"1MiB\""),
    )
    .unwrap();
    let node = RunningNode::start(&files);
    let mut lines = twenty_lines();
    let mut huge: Value = serde_json::from_str(&lines[3]).unwrap();
    huge["data"]["name"] = Value::from("x".repeat(2 << 20));
    lines[3] = huge.to_string();
    let stdout = import_failing(&net, &files, &lines);
    assert!(stdout.contains("line 4: too_large"), "{stdout}");
    assert!(stdout.contains("19 accepted"), "{stdout}");
    let stored = Http::new().get(&node.url("/v1/digest")).1["records"]
        .as_u64()
        .unwrap();
    let mut rest = lines.clone();
    rest.remove(3);
    assert_eq!(stored, u64::try_from(19 - duplicates(&rest)).unwrap());
}

/// Twenty generated records of 440100, one JSON line each.
fn twenty_lines() -> Vec<String> {
    lmsync_ok(&["gen", "--node", "440100", "--records", "20", "--seed", "3"])
        .lines()
        .map(String::from)
        .collect()
}

/// Imports `lines` through the node of `files`, which must reject some (exit 1); its
/// report.
fn import_failing(net: &Network, files: &common::NodeFiles, lines: &[String]) -> String {
    let path = net.path().join("r.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = lmsync(&[
        "import",
        "--config",
        files.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many lines of `text` match the stored content when the file is imported a second
/// time: the store starts from each record's last line, and each line replaces it.
fn unchanged_on_replay(text: &str) -> usize {
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = |v: &Value| (v["kind"].to_string(), v["id"].to_string());
    let mut state: std::collections::BTreeMap<_, &Value> =
        lines.iter().map(|v| (key(v), v)).collect();
    lines
        .iter()
        .filter(|v| {
            let same = state.get(&key(v)).is_some_and(|s| *s == *v);
            state.insert(key(v), v);
            same
        })
        .count()
}

/// Lines that rewrite a record an earlier line wrote (new versions of the same id).
fn duplicates(lines: &[String]) -> usize {
    let mut seen = BTreeSet::new();
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] != "nonsense")
        .filter(|v| !seen.insert((v["kind"].to_string(), v["id"].to_string())))
        .count()
}

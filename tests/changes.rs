//! The change feed (`GET /v1/changes`, `lmsync changes`) with real processes: a consumer
//! SIGKILLed at seeded points while records keep coming, restarted from its cursor file,
//! misses nothing and never sees a record go back; a province's and the ministry's feeds
//! carry their cities' records and filter by owner and kind; cursors of another node,
//! damaged ones and ones of a restored store are refused, and a cursor survives a
//! restart; a caught-up request returns as soon as a record commits, ends at its bound,
//! and ends when the node stops.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    Http, Ledger, Network, RunningNode, bin, converged, eventually, lmsync_ok, owned_vacancy, tree,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

fn seed() -> u64 {
    std::env::var("LMSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) ^ 0xfeed)
}

/// One answer of the feed: its record lines and its last line.
struct Answer {
    records: Vec<Value>,
    last: Value,
}

/// `GET /v1/changes?QUERY` at `node`: status and body.
fn get_changes(http: &Http, node: &RunningNode, query: &str) -> (u16, String) {
    http.get_text(&node.url(&format!("/v1/changes?{query}")))
}

/// A 200 answer's lines, checked: every line has a cursor, only the last one has none
/// of a record and says whether there is more.
fn answer(body: &str) -> Answer {
    let mut lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    let last = lines.pop().expect("an answer ends with a line of its own");
    assert!(last["more"].is_boolean(), "the last line is {last}");
    assert!(last["cursor"].is_string() && last.get("record").is_none());
    for l in &lines {
        assert!(l["cursor"].as_str().is_some_and(|c| !c.is_empty()), "{l}");
        assert!(l["record"]["owner"].is_string(), "{l}");
    }
    Answer {
        records: lines.into_iter().map(|mut l| l["record"].take()).collect(),
        last,
    }
}

/// Reads the feed of `node` from `since` under `filters` (`&owner=…`) until it is caught
/// up, without waiting: the records and the cursor to go on from.
fn read_all(http: &Http, node: &RunningNode, since: &str, filters: &str) -> (Vec<Value>, String) {
    let mut records = Vec::new();
    let mut cursor = since.to_string();
    for _ in 0..1_000 {
        let (status, body) = get_changes(
            http,
            node,
            &format!("since={cursor}&wait=0&limit=300{filters}"),
        );
        assert_eq!(status, 200, "{body}");
        let a = answer(&body);
        records.extend(a.records);
        cursor = a.last["cursor"].as_str().unwrap().to_string();
        if a.last["more"] == false {
            return (records, cursor);
        }
    }
    panic!("the feed never caught up");
}

fn error_of(body: &str) -> (String, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    (
        v["error"].as_str().unwrap_or_default().to_string(),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// `(owner, kind, id)` of a record line.
fn key_of(r: &Value) -> (String, String, String) {
    let s = |k: &str| r[k].as_str().unwrap().to_string();
    (s("owner"), s("kind"), s("id"))
}

fn version_of(r: &Value) -> u64 {
    r["version"].as_u64().unwrap()
}

const BATCHES: usize = 30;
const BATCH: u64 = 40;
const KILLS: usize = 5;

/// A run of `lmsync changes` from a cursor file: the process and its lines as they come.
struct Consumer {
    child: std::process::Child,
    lines: mpsc::Receiver<Value>,
}

impl Consumer {
    /// Starts `lmsync changes`, with `--follow` or to stop once caught up.
    fn start(api: &str, cursor_file: &Path, follow: bool) -> Self {
        let mut command = bin();
        command
            .args(["changes", "--api", api, "--limit", "40", "--wait", "5"])
            .arg("--cursor-file")
            .arg(cursor_file);
        if follow {
            command.arg("--follow");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                // End of output, or a line cut short by the kill: the rest never counted.
                if reader.read_line(&mut line).unwrap_or(0) == 0 || !line.ends_with('\n') {
                    return;
                }
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("the consumer printed {line:?}: {e}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Consumer { child, lines }
    }

    /// Reads lines into `run` until `enough` holds (asked after each line and every
    /// 100 ms), then SIGKILLs the consumer and reads what it had written.
    fn kill_when(
        mut self,
        run: &mut Vec<Value>,
        received: &AtomicUsize,
        mut enough: impl FnMut(&[Value]) -> bool,
    ) {
        let start = Instant::now();
        let limit = Duration::from_secs(120);
        while !enough(run) {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the consumer exited by itself"
            );
            assert!(
                start.elapsed() < limit,
                "the consumer ran {limit:?} without enough lines ({} read)",
                run.len()
            );
            if let Ok(v) = self.lines.recv_timeout(Duration::from_millis(100)) {
                run.push(v);
                received.fetch_add(1, SeqCst);
            }
        }
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        // What it wrote before it died counts: its cursor file may stand past it.
        for v in self.lines.iter() {
            run.push(v);
            received.fetch_add(1, SeqCst);
        }
    }

    /// Reads every line of a consumer started without `--follow`, which must exit 0
    /// once caught up.
    fn read_to_the_end(mut self, run: &mut Vec<Value>) {
        let start = Instant::now();
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(v) => run.push(v),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "the consumer did not catch up"
                ),
            }
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the consumer failed: {status}");
    }
}

#[test]
fn a_consumer_killed_at_random_points_and_restarted_from_its_cursor_file_misses_nothing() {
    let seed = seed();
    println!("change feed kill test seed={seed} (rerun with LMSYNC_TEST_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);

    // New records and new versions of earlier ones, planned up front.
    let mut ledger = Ledger::default();
    let mut new_before = Vec::new();
    let batches: Vec<Vec<Value>> = (0..BATCHES)
        .map(|_| {
            new_before.push(ledger.sent.len());
            ledger.batch(&mut rng, "440100", BATCH, (20, 0.3))
        })
        .collect();
    let distinct = ledger.sent.len();
    // Kill points, in lines read over all runs: every record comes at least once, so
    // there are more lines than distinct records.
    let mut kills: Vec<usize> = (0..KILLS).map(|_| rng.random_range(1..distinct)).collect();
    kills.sort_unstable();
    kills.dedup();

    let received = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (url, token, received) = (
            node.url("/v1/records"),
            files.token.clone(),
            received.clone(),
        );
        std::thread::spawn(move || {
            let http = Http::with_timeout(Duration::from_secs(60));
            for (batch, gate) in batches.into_iter().zip(new_before) {
                // Paced by the consumer, so that it is killed while records keep coming.
                eventually("the consumer to read on", Duration::from_secs(120), || {
                    received.load(SeqCst) >= gate / 2
                });
                let (status, answer) = http.post(&url, &token, &Value::Array(batch));
                assert_eq!(status, 200, "{answer}");
                ledger.acknowledged(&answer);
            }
            ledger
        })
    };

    let cursor_file = net.path().join("changes.cursor");
    let mut runs: Vec<Vec<Value>> = Vec::new();
    let mut total = 0;
    for kill in kills {
        if kill <= total {
            continue;
        }
        let mut run = Vec::new();
        Consumer::start(&node.api, &cursor_file, true)
            .kill_when(&mut run, &received, |lines| total + lines.len() >= kill);
        total += run.len();
        runs.push(run);
    }
    // One more, killed once the writer is done; the last run, without --follow, reads
    // on from where that one left and stops once caught up.
    let mut run = Vec::new();
    Consumer::start(&node.api, &cursor_file, true)
        .kill_when(&mut run, &received, |_| writer.is_finished());
    runs.push(run);
    let ledger = writer.join().expect("the writer failed");
    assert!(
        cursor_file.exists(),
        "no cursor file after {} runs (seed {seed})",
        runs.len()
    );
    let mut last = Vec::new();
    Consumer::start(&node.api, &cursor_file, false).read_to_the_end(&mut last);
    runs.push(last);

    // Within one run no record goes back, or comes twice.
    for (n, run) in runs.iter().enumerate() {
        let mut at: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for l in run {
            assert!(l["cursor"].as_str().is_some_and(|c| !c.is_empty()));
            let (key, v) = (key_of(&l["record"]), version_of(&l["record"]));
            if let Some(before) = at.insert(key.clone(), v) {
                assert!(
                    v > before,
                    "run {n}: {key:?} v{v} after v{before} (seed {seed})"
                );
            }
        }
    }
    // Nothing missing, nothing that was never acknowledged.
    let mut all: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for l in runs.iter().flatten() {
        let v = all.entry(key_of(&l["record"])).or_insert(0);
        *v = (*v).max(version_of(&l["record"]));
    }
    for (key, v) in &all {
        assert_eq!((key.0.as_str(), key.1.as_str()), ("440100", "vacancy"));
        let acked = ledger.acked.get(&key.2);
        assert!(
            acked.is_some_and(|a| a >= v),
            "{key:?} v{v} seen, acknowledged {acked:?} (seed {seed})"
        );
    }
    let missing: Vec<String> = ledger
        .acked
        .iter()
        .filter(|(id, v)| {
            all.get(&("440100".to_string(), "vacancy".to_string(), (*id).clone())) != Some(*v)
        })
        .map(|(id, v)| format!("{id} v{v}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} records never seen at their last version, e.g. {:?} (seed {seed})",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    println!(
        "{} runs ({} killed), {} lines for {} records (seed {seed})",
        runs.len(),
        runs.len() - 1,
        runs.iter().map(Vec::len).sum::<usize>(),
        ledger.acked.len()
    );
}

fn import(net: &Network, files: &common::NodeFiles, records: u64, seed: u64) {
    let text = lmsync_ok(&[
        "gen",
        "--node",
        &files.code,
        "--records",
        &records.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    let path = net.path().join(format!("{}.jsonl", files.code));
    std::fs::write(&path, text).unwrap();
    lmsync_ok(&[
        "import",
        "--config",
        files.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
}

fn digest_count(http: &Http, node: &RunningNode, query: &str) -> usize {
    let n = http.get(&node.url(&format!("/v1/digest?{query}"))).1["records"]
        .as_u64()
        .unwrap();
    usize::try_from(n).unwrap()
}

/// Every record exactly once, each owner's in seq order.
fn once_each_in_order(records: &[Value]) {
    let mut keys = std::collections::BTreeSet::new();
    let mut seqs: BTreeMap<String, u64> = BTreeMap::new();
    for r in records {
        assert!(keys.insert(key_of(r)), "{:?} twice", key_of(r));
        let seq = r["seq"].as_u64().unwrap();
        let last = seqs.insert(r["owner"].as_str().unwrap().to_string(), seq);
        assert!(last.is_none_or(|l| l < seq), "{r} after seq {last:?}");
    }
}

#[test]
fn a_province_and_the_ministry_carry_their_cities_changes_filtered_by_owner_and_kind() {
    let t = tree(&["440100", "440300"]);
    for (n, (files, _)) in t.cities.iter().enumerate() {
        import(&t.net, files, 150, 7 + n as u64);
    }
    let http = Http::new();
    converged(&http, &t);
    for node in [&t.province.1, &t.ministry.1] {
        let (all, _) = read_all(&http, node, "0", "");
        once_each_in_order(&all);
        for city in ["440100", "440300"] {
            let of_city = all.iter().filter(|r| r["owner"] == city).count();
            assert_eq!(of_city, digest_count(&http, node, &format!("owner={city}")));
        }
        assert_eq!(all.len(), digest_count(&http, node, ""));
        // What the feed shows is the record as GET /v1/records shows it.
        let one = &all[all.len() / 2];
        let (o, k, i) = key_of(one);
        let (status, direct) = http.get(&node.url(&format!("/v1/records/{o}/{k}/{i}")));
        assert_eq!((status, &direct), (200, one));

        let (only, cursor) = read_all(&http, node, "0", "&owner=440300");
        assert!(!only.is_empty() && only.iter().all(|r| r["owner"] == "440300"));
        assert_eq!(only.len(), digest_count(&http, node, "owner=440300"));
        once_each_in_order(&only);
        let (vacancies, _) = read_all(&http, node, "0", "&kind=vacancy");
        assert!(!vacancies.is_empty() && vacancies.iter().all(|r| r["kind"] == "vacancy"));
        assert_eq!(vacancies.len(), digest_count(&http, node, "kind=vacancy"));
        let (both, _) = read_all(&http, node, "0", "&owner=440100&kind=employer");
        assert!(!both.is_empty());
        assert!(
            both.iter()
                .all(|r| r["owner"] == "440100" && r["kind"] == "employer")
        );
        assert_eq!(
            both.len(),
            digest_count(&http, node, "owner=440100&kind=employer")
        );

        // A cursor goes with the filters it was issued for.
        let (status, body) = get_changes(&http, node, &format!("since={cursor}&wait=0"));
        assert_eq!(status, 400, "{body}");
        let (error, message) = error_of(&body);
        assert_eq!(error, "cursor_mismatch");
        assert!(message.contains("owner=440300"), "{message}");
    }
    // Filters are checked, naming the parameter.
    let province = &t.province.1;
    for (query, error, names) in [
        ("owner=44010", "bad_owner", "owner"),
        ("kind=vacancies", "unknown_kind", "kind"),
        ("limit=0", "bad_query", "limit"),
        ("limit=10001", "bad_query", "limit"),
        ("wait=61", "bad_query", "wait"),
        ("wait=-1", "bad_query", "wait"),
        ("sense=0", "bad_query", "sense"),
    ] {
        let (status, body) = get_changes(&http, province, query);
        assert_eq!(status, 400, "{query}: {body}");
        let (e, message) = error_of(&body);
        assert_eq!(e, error, "{query}: {message}");
        assert!(message.contains(names), "{query}: {message}");
    }
}

#[test]
fn cursors_of_another_node_damaged_or_of_a_restored_store_are_refused_and_survive_a_restart() {
    let net = Network::new();
    let a = net.init("440100", None);
    let b = net.init("440300", None);
    let node_a = RunningNode::start(&a);
    let node_b = RunningNode::start(&b);
    let http = Http::new();
    let post = |node: &RunningNode, token: &str, owner: &str, ids: &[&str]| {
        let body: Vec<Value> = ids.iter().map(|id| owned_vacancy(owner, id, 3)).collect();
        let (status, answer) = http.post(&node.url("/v1/records"), token, &Value::Array(body));
        assert_eq!(status, 200, "{answer}");
    };
    post(&node_a, &a.token, "440100", &["V-1", "V-2", "V-3"]);
    post(&node_b, &b.token, "440300", &["V-1"]);
    let (records, cursor) = read_all(&http, &node_a, "0", "");
    assert_eq!(records.len(), 3);

    let (status, body) = get_changes(&http, &node_b, &format!("since={cursor}"));
    assert_eq!(status, 400, "{body}");
    let (error, message) = error_of(&body);
    assert_eq!(error, "foreign_cursor");
    assert!(message.contains("440100"), "{message}");
    let mut damaged = cursor.clone().into_bytes();
    let i = damaged.len() / 2;
    damaged[i] = if damaged[i] == b'A' { b'B' } else { b'A' };
    let damaged = String::from_utf8(damaged).unwrap();
    for bad in [
        "!!!",
        "AAAA",
        &cursor[..cursor.len() - 2],
        &damaged,
        &"A".repeat(13_000),
    ] {
        let (status, body) = get_changes(&http, &node_a, &format!("since={bad}&wait=0"));
        assert_eq!(status, 400, "{bad}: {body}");
        let (error, message) = error_of(&body);
        assert_eq!(error, "bad_cursor", "{message}");
        assert!(message.contains("since"), "{message}");
    }

    // A restart keeps the store, and with it the cursor.
    assert_eq!(node_a.terminate(), Some(0));
    let node_a = RunningNode::start(&a);
    let (status, body) = get_changes(&http, &node_a, &format!("since={cursor}&wait=0"));
    assert_eq!(status, 200, "{body}");
    let caught_up = answer(&body);
    assert!(caught_up.records.is_empty() && caught_up.last["more"] == false);
    post(&node_a, &a.token, "440100", &["V-4"]);
    let (status, body) = get_changes(&http, &node_a, &format!("since={cursor}&wait=0"));
    assert_eq!(status, 200, "{body}");
    let next = answer(&body);
    assert_eq!(next.records.len(), 1, "{body}");
    assert_eq!(next.records[0]["id"], "V-4");

    // A store restored from a backup is another store: its cursors start again.
    let backup = net.path().join("backup-a");
    lmsync_ok(&[
        "backup",
        "--config",
        a.config.to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert_eq!(node_a.terminate(), Some(0));
    std::fs::rename(&a.data, net.path().join("data-440100-before")).unwrap();
    lmsync_ok(&[
        "restore",
        "--config",
        a.config.to_str().unwrap(),
        "--from",
        backup.to_str().unwrap(),
    ]);
    let node_a = RunningNode::start(&a);
    let (status, body) = get_changes(&http, &node_a, &format!("since={cursor}&wait=0"));
    assert_eq!(status, 410, "{body}");
    let (error, message) = error_of(&body);
    assert_eq!(error, "cursor_expired");
    assert!(message.contains("since=0"), "{message}");
    let (again, _) = read_all(&http, &node_a, "0", "");
    assert_eq!(again.len(), 4);
}

#[test]
fn a_caught_up_request_returns_when_a_record_commits_ends_at_its_bound_and_when_the_node_stops() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let http = Http::new();
    let post = |id: &str| {
        let body = Value::Array(vec![owned_vacancy("440100", id, 2)]);
        let (status, answer) = http.post(&node.url("/v1/records"), &files.token, &body);
        assert_eq!(status, 200, "{answer}");
    };
    post("V-1");
    let (_, cursor) = read_all(&http, &node, "0", "");
    let waiting = |n: u64| {
        let (_, text) = http.get_text(&node.url("/metrics"));
        text.lines()
            .any(|l| l == format!("api_changes_waiting {n}"))
    };

    // Nothing commits: the answer ends at its bound, caught up.
    let start = Instant::now();
    let (status, body) = get_changes(&http, &node, &format!("since={cursor}&wait=1"));
    let took = start.elapsed();
    assert_eq!(status, 200);
    let a = answer(&body);
    assert!(a.records.is_empty() && a.last["more"] == false, "{body}");
    assert_eq!(a.last["cursor"], cursor.as_str());
    assert!(took >= Duration::from_secs(1), "returned after {took:?}");

    // A record commits while the request waits: it comes at once.
    let poll = {
        let url = node.url(&format!("/v1/changes?since={cursor}&wait=60"));
        std::thread::spawn(move || {
            let start = Instant::now();
            let (status, body) = Http::new().get_text(&url);
            (status, body, start.elapsed())
        })
    };
    eventually("the request to wait", Duration::from_secs(30), || {
        waiting(1)
    });
    let committed = Instant::now();
    post("V-2");
    let (status, body, _) = poll.join().unwrap();
    let after = committed.elapsed();
    assert_eq!(status, 200);
    let a = answer(&body);
    assert_eq!(a.records.len(), 1, "{body}");
    assert_eq!(a.records[0]["id"], "V-2");
    assert!(a.last["more"] == false);
    assert!(
        after < Duration::from_secs(20),
        "the answer came {after:?} after the commit"
    );
    let cursor = a.last["cursor"].as_str().unwrap().to_string();

    // The node stops while a request waits: the answer ends, whole, and the node exits.
    let poll = {
        let url = node.url(&format!("/v1/changes?since={cursor}&wait=60"));
        std::thread::spawn(move || Http::new().get_text(&url))
    };
    eventually("the request to wait", Duration::from_secs(30), || {
        waiting(1)
    });
    let stopping = Instant::now();
    assert_eq!(node.terminate(), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "the node took {:?} to stop",
        stopping.elapsed()
    );
    let (status, body) = poll.join().unwrap();
    assert_eq!(status, 200);
    let a = answer(&body);
    assert!(a.records.is_empty());
    assert_eq!(a.last["cursor"], cursor.as_str());
}

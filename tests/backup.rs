//! Online backup and restore with real processes: a backup taken while a client keeps
//! posting holds exactly the store at its cut (the manifest names it), restores into a
//! store a node runs on and writes after; a backup cut short by SIGKILL of the node is
//! refused as incomplete, the node lost nothing acknowledged, and the next backup restores
//! exactly; an altered backup and one of another node are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Http, Network, NodeFiles, RunningNode, bin, lmsync, lmsync_ok, vacancy};
use lmsync::core::model::NodeCode;
use lmsync::node::storage::{SledStore, sled_options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// One acknowledged write: id, version, seq.
type Ack = (String, u64, u64);

fn seed() -> u64 {
    std::env::var("LMSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) ^ 0xbac0)
}

/// Posts batches of new records and new versions of earlier ones (among the first
/// `preloaded` ids too, so that keys the backup has yet to read are overwritten) until
/// `stop`, or until the node stops answering; every acknowledged write (not those that
/// changed nothing) goes to `acks`.
fn client(
    api: String,
    token: String,
    (rng_seed, preloaded): (u64, u64),
    acks: mpsc::Sender<Vec<Ack>>,
    stop: Arc<AtomicBool>,
) {
    let http = Http::with_timeout(Duration::from_secs(30));
    let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
    let mut next = preloaded;
    while !stop.load(Ordering::SeqCst) {
        let batch: Vec<Value> = (0..rng.random_range(20..120))
            .map(|_| {
                let n = if rng.random_bool(0.4) {
                    rng.random_range(0..next)
                } else {
                    next += 1;
                    next
                };
                vacancy(&format!("V-{n}"), rng.random_range(1..200))
            })
            .collect();
        let body = serde_json::to_vec(&batch).unwrap();
        match http.post_raw(&format!("{api}/v1/records"), Some(&token), body) {
            Ok((200, answer)) => {
                let accepted = answer["accepted"].as_array().unwrap();
                // A version identical to the one stored is acknowledged with its old seq:
                // no write.
                let _ = acks.send(
                    accepted
                        .iter()
                        .filter(|a| a["changed"] == true)
                        .map(|a| {
                            (
                                a["id"].as_str().unwrap().to_string(),
                                a["version"].as_u64().unwrap(),
                                a["seq"].as_u64().unwrap(),
                            )
                        })
                        .collect(),
                );
            }
            _ => return,
        }
    }
}

/// Posts `count` new vacancies `V-0..` in batches, so that a backup has a while to run.
/// Preloads `preloaded` records into `node`, then starts a client writing to it until
/// stopped: the acknowledgements of the preload, where the client's come, its stop
/// switch and its thread.
fn keep_writing(
    http: &Http,
    node: &RunningNode,
    files: &NodeFiles,
    seed: u64,
    preloaded: u64,
) -> (
    Vec<Ack>,
    mpsc::Receiver<Vec<Ack>>,
    Arc<AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    preload(http, node, &files.token, preloaded);
    let acks = (0..preloaded)
        .map(|n| (format!("V-{n}"), 1, n + 1))
        .collect();
    let (ack_tx, ack_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (api, token, stop) = (node.api.clone(), files.token.clone(), stop.clone());
        std::thread::spawn(move || client(api, token, (seed, preloaded), ack_tx, stop))
    };
    (acks, ack_rx, stop, worker)
}

fn preload(http: &Http, node: &RunningNode, token: &str, count: u64) {
    for start in (0..count).step_by(2000) {
        let batch: Vec<Value> = (start..(start + 2000).min(count))
            .map(|n| vacancy(&format!("V-{n}"), 1))
            .collect();
        let (status, answer) = http.post(&node.url("/v1/records"), token, &Value::from(batch));
        assert_eq!(status, 200, "{answer}");
    }
}

/// What a stopped store holds of `owner`: id → (version, seq), every hash verified.
fn stored(data: &Path, node: &str) -> BTreeMap<String, (u64, u64)> {
    let code: NodeCode = node.parse().unwrap();
    let store = SledStore::open(data, code, sled_options(32 << 20))
        .unwrap_or_else(|e| panic!("{} does not open: {e}", data.display()));
    store
        .scan_owner(code)
        .map(|r| {
            let r = r.unwrap();
            assert!(r.verify_hash().unwrap(), "bad hash for {}", r.envelope.id);
            (r.envelope.id.clone(), (r.envelope.version, r.envelope.seq))
        })
        .collect()
}

/// The cut's highest seq of `owner`, from a backup's manifest.
fn cut_seq(dir: &Path, owner: &str) -> u64 {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    manifest["cut"]["owners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["owner"] == owner)
        .map_or(0, |o| o["last_seq"].as_u64().unwrap())
}

/// A second config of the same node, on data directory `data` (API and QUIC on ephemeral
/// ports like the first).
fn second_config(files: &NodeFiles, name: &str) -> NodeFiles {
    let data = files.data.with_file_name(format!("data-{name}"));
    let config = files.config.with_file_name(format!("{name}.toml"));
    let text = std::fs::read_to_string(&files.config).unwrap().replace(
        &format!("\"{}\"", files.data.display()),
        &format!("\"{}\"", data.display()),
    );
    assert!(text.contains(&data.display().to_string()));
    std::fs::write(&config, text).unwrap();
    NodeFiles {
        config,
        data,
        ..files.clone()
    }
}

fn backup_args(files: &NodeFiles, out: &Path) -> Vec<String> {
    vec![
        "backup".into(),
        "--config".into(),
        files.config.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ]
}

fn restore(files: &NodeFiles, from: &Path) -> std::process::Output {
    lmsync(&[
        "restore",
        "--config",
        files.config.to_str().unwrap(),
        "--from",
        from.to_str().unwrap(),
    ])
}

/// Waits for `child` to exit, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "the process did not exit in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// For each id, the acknowledged write with the highest seq up to `cut`.
fn at_cut(acks: &[Ack], cut: u64) -> BTreeMap<String, (u64, u64)> {
    let mut expected: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (id, version, seq) in acks.iter().filter(|a| a.2 <= cut) {
        let e = expected.entry(id.clone()).or_insert((*version, *seq));
        if *seq > e.1 {
            *e = (*version, *seq);
        }
    }
    expected
}

#[test]
fn a_backup_under_writes_holds_exactly_its_cut_and_restores_into_a_running_node() {
    let seed = seed();
    println!("backup test seed={seed} (rerun with LMSYNC_TEST_SEED={seed})");
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let http = Http::new();
    let preloaded = 20_000;
    let (mut acks, ack_rx, stop, worker) = keep_writing(&http, &node, &files, seed, preloaded);
    // Some writes acknowledged before the backup starts.
    for _ in 0..3 {
        acks.extend(ack_rx.recv_timeout(Duration::from_secs(30)).unwrap());
    }
    let before = acks.len();
    let out = net.path().join("backup-1");
    // Slowed, so that the client's writes land while the backup reads the store.
    let mut args = backup_args(&files, &out);
    args.extend(["--rate".into(), "1MiB".into()]);
    let mut backup = bin().args(&args).stdout(Stdio::piped()).spawn().unwrap();
    let status = wait_exit(&mut backup, Duration::from_secs(120));
    assert!(status.success(), "lmsync backup failed (seed {seed})");
    let during: Vec<Ack> = ack_rx.try_iter().flatten().collect();
    assert!(
        !during.is_empty(),
        "no write was acknowledged while the backup ran (seed {seed})"
    );
    acks.extend(during);
    // Writes after the backup, then stop the client and collect every answer.
    let after = acks.len();
    for _ in 0..3 {
        acks.extend(ack_rx.recv_timeout(Duration::from_secs(30)).unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    worker.join().unwrap();
    acks.extend(ack_rx.try_iter().flatten());

    let cut = cut_seq(&out, "440100");
    assert!(
        acks[..before].iter().all(|a| a.2 <= cut),
        "a write acknowledged before the backup began is after its cut (seed {seed})"
    );
    assert!(
        acks[after..].iter().all(|a| a.2 > cut),
        "a write acknowledged after the backup ended is inside its cut (seed {seed})"
    );
    let expected = at_cut(&acks, cut);

    let copy = second_config(&files, "restored");
    let restored = restore(&copy, &out);
    assert!(
        restored.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let held = stored(&copy.data, "440100");
    let missing = expected
        .iter()
        .filter(|(id, v)| held.get(*id) != Some(v))
        .count();
    let extra = held.keys().filter(|id| !expected.contains_key(*id)).count();
    assert_eq!(
        (missing, extra),
        (0, 0),
        "the restored store is not the cut at seq {cut}: {missing} records differ, {extra} \
         not in it (seed {seed})"
    );
    println!(
        "backup test: cut at seq {cut}, {} records, {} writes acknowledged, {} during the backup",
        held.len(),
        acks.len(),
        after - before
    );

    // A node runs on the restored store and writes after the restored versions and seqs.
    drop(node);
    let node = RunningNode::start(&copy);
    let (id, (version, _)) = expected.iter().next().unwrap();
    let (status, answer) = http.post(
        &node.url("/v1/records"),
        &copy.token,
        &Value::from(vec![vacancy(id, 999)]),
    );
    assert_eq!(status, 200, "{answer}");
    let accepted = &answer["accepted"][0];
    assert_eq!(accepted["version"].as_u64(), Some(version + 1), "{answer}");
    assert!(accepted["seq"].as_u64().unwrap() > cut, "{answer}");
    let late = acks.iter().find(|a| !expected.contains_key(&a.0)).unwrap();
    let (status, _) = http.get(&node.url(&format!("/v1/records/440100/vacancy/{}", late.0)));
    assert_eq!(status, 404, "{} was written after the cut", late.0);
    assert_eq!(node.terminate(), Some(0));

    // An altered backup, an incomplete one and one of another node are refused.
    let altered = net.path().join("backup-altered");
    common::copy_dir(&out, &altered);
    let data = altered.join("backup.data");
    let mut bytes = std::fs::read(&data).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&data, bytes).unwrap();
    let other = second_config(&files, "other");
    let refused = restore(&other, &altered);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("damaged or altered"), "{said}");
    assert!(
        !other.data.exists(),
        "a refused restore created the data directory"
    );
    std::fs::remove_file(altered.join("manifest.json")).unwrap();
    let said = String::from_utf8_lossy(&restore(&other, &altered).stderr).into_owned();
    assert!(said.contains("incomplete backup"), "{said}");
    let foreign = net.init("440300", None);
    let said = String::from_utf8_lossy(&restore(&foreign, &out).stderr).into_owned();
    assert!(said.contains("is of node 440100, not 440300"), "{said}");
    let said = String::from_utf8_lossy(&restore(&copy, &out).stderr).into_owned();
    assert!(said.contains("not empty"), "{said}");
}

#[test]
fn a_backup_cut_short_by_sigkill_is_refused_and_the_next_one_restores_exactly() {
    let seed = seed();
    println!("backup kill test seed={seed} (rerun with LMSYNC_TEST_SEED={seed})");
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let http = Http::new();
    // About 15 MB of stream: more than the socket buffers and the frames a node runs
    // ahead of a client, so that a slow client is still reading when the node dies.
    let preloaded = 60_000;
    let (mut acks, ack_rx, stop, worker) = keep_writing(&http, &node, &files, seed, preloaded);
    acks.extend(ack_rx.recv_timeout(Duration::from_secs(30)).unwrap());

    let out = net.path().join("backup-killed");
    let mut args = backup_args(&files, &out);
    args.extend(["--rate".into(), "256KiB".into()]);
    let mut backup = bin()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let data = out.join("backup.data");
    let start = Instant::now();
    while std::fs::metadata(&data).map_or(0, |m| m.len()) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the backup wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!out.join("manifest.json").exists());
    node.kill();
    let status = wait_exit(&mut backup, Duration::from_secs(120));
    let mut said = String::new();
    std::io::Read::read_to_string(backup.stderr.as_mut().unwrap(), &mut said).unwrap();
    assert!(!status.success(), "a backup whose node died succeeded");
    assert!(said.contains("did not complete"), "{said}");
    assert!(!out.join("manifest.json").exists());
    stop.store(true, Ordering::SeqCst);
    worker.join().unwrap();
    acks.extend(ack_rx.try_iter().flatten());
    let copy = second_config(&files, "from-killed");
    let refused = restore(&copy, &out);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("incomplete backup"), "{said}");
    assert!(!copy.data.exists());

    // The restarted node lost nothing acknowledged; a new backup restores it exactly.
    let node = RunningNode::start(&files);
    let out = net.path().join("backup-2");
    lmsync_ok(
        &backup_args(&files, &out)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(node.terminate(), Some(0));
    let original = stored(&files.data, "440100");
    for (id, version, seq) in &acks {
        let held = original.get(id).copied();
        assert!(
            held.is_some_and(|(v, s)| v > *version || (v, s) == (*version, *seq)),
            "acknowledged {id} v{version} seq {seq} lost: {held:?} (seed {seed})"
        );
    }
    let copy = second_config(&files, "restored");
    let restored = restore(&copy, &out);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(
        cut_seq(&out, "440100"),
        original.values().map(|v| v.1).max().unwrap()
    );
    assert!(
        stored(&copy.data, "440100") == original,
        "the restored store differs from the one backed up (seed {seed})"
    );
    // Without a config: the backup's node, into the directory named.
    let bare = net.path().join("data-bare");
    let restored = lmsync(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--data",
        bare.to_str().unwrap(),
        "--config",
        net.path().join("no-such.toml").to_str().unwrap(),
    ]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(
        stored(&bare, "440100") == original,
        "the store restored without a config differs (seed {seed})"
    );
    println!(
        "backup kill test: {} records, {} writes acknowledged, none lost",
        original.len(),
        acks.len()
    );
}

mod in_process {
    //! The cut in one process, deterministically: commits between the chunks a backup
    //! reads change records behind and ahead of it, documents, watermarks, children's
    //! store ids, quarantine and the restore mark; the restored store is the store at
    //! the cut in every one of them.

    use lmsync::core::model::document::StoredDocument;
    use lmsync::core::model::ingest::{Draft, IngestContext};
    use lmsync::core::model::person::Pseudonymiser;
    use lmsync::core::model::standards::Standards;
    use lmsync::core::model::{NodeCode, Record};
    use lmsync::core::store::{QuarantinedRecord, Removal, Store, WriteBatch};
    use lmsync::node::storage::backup::files::BackupWriter;
    use lmsync::node::storage::backup::restore::{Target, restore};
    use lmsync::node::storage::backup::{BackupError, produce};
    use lmsync::node::storage::{SledStore, sled_options};
    use lmsync::node::write::Planner;
    use serde_json::json;

    fn city() -> NodeCode {
        "440100".parse().unwrap()
    }

    fn draft(id: &str, headcount: u32) -> Draft {
        let standards = Standards::builtin();
        let key = Pseudonymiser::new([1; 32], 1);
        let cx = IngestContext::new(city(), &standards, Some(&key));
        let mut v = super::vacancy(id, 1);
        v["data"]["headcount"] = json!(headcount);
        cx.draft(v).unwrap()
    }

    fn write(store: &SledStore, drafts: Vec<Draft>) -> WriteBatch {
        let refs = Standards::builtin().code_refs();
        let mut planner = Planner::new(store, city());
        for d in drafts {
            planner.plan(d, &refs, 1_000).unwrap();
        }
        WriteBatch {
            records: planner.into_writes(),
            ..WriteBatch::default()
        }
    }

    fn document(id: &str, version: u64) -> StoredDocument {
        StoredDocument {
            kind: "policy".into(),
            id: id.into(),
            issuer: "100000".parse().unwrap(),
            version,
            body: format!("{{\"v\":{version}}}"),
            certificate: vec![1, 2, 3],
            signature: vec![4, 5, 6],
        }
    }

    fn quarantined(record: &Record, id: &str) -> QuarantinedRecord {
        let mut record = record.clone();
        record.envelope.id = id.into();
        QuarantinedRecord {
            record,
            reason: "a test".into(),
            from: "440100".parse().unwrap(),
            received_at_ms: 5,
        }
    }

    /// Everything a backup copies, read through the store's interface.
    fn state(store: &SledStore) -> String {
        let records: Vec<Record> = store.scan_owner(city()).map(Result::unwrap).collect();
        let parent: NodeCode = "440000".parse().unwrap();
        format!(
            "{records:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            store.documents().unwrap(),
            store.watermark(parent, city()).unwrap(),
            store.quarantined(None, 100).unwrap(),
            store.peer_store_id(parent).unwrap(),
            store.last_received(city()).unwrap(),
            store.restore_pending().unwrap(),
            store.digest(Some(city()), None),
        )
    }

    #[test]
    fn the_restored_store_is_the_store_at_the_cut_whatever_commits_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let options = sled_options(16 << 20);
        let store = SledStore::create(&dir.path().join("a"), city(), [7; 16], 0, options).unwrap();
        let parent: NodeCode = "440000".parse().unwrap();
        // About 1.2 MB of records: more than one frame, so commits land between chunks.
        for start in (0..6000).step_by(1000) {
            let drafts = (start..start + 1000)
                .map(|n| draft(&format!("V-{n}"), 1))
                .collect();
            store.commit(write(&store, drafts)).unwrap();
        }
        let some = store.scan_owner(city()).next().unwrap().unwrap();
        store
            .commit(WriteBatch {
                documents: vec![document("P-1", 1), document("P-2", 1)],
                watermarks: vec![(parent, city(), 100)],
                peer_store_ids: vec![(parent, [1; 16])],
                quarantine: vec![quarantined(&some, "Q-1")],
                received_at_ms: Some(77),
                ..write(&store, vec![draft("V-0", 2)])
            })
            .unwrap();
        let at_cut = state(&store);

        let out = dir.path().join("backup");
        let mut writer = BackupWriter::create(&out).unwrap();
        let run = produce::begin(&store).unwrap();
        assert!(matches!(produce::begin(&store), Err(BackupError::Busy)));
        let mut round = 0u32;
        let mut send = |bytes: Vec<u8>| {
            round += 1;
            // Every record gets a new version, some are removed and new ones added, and
            // everything else a backup holds changes too.
            let drafts = (0..6000)
                .step_by(7)
                .map(|n| draft(&format!("V-{n}"), 10 + round))
                .chain((0..50).map(|n| draft(&format!("N-{round}-{n}"), 1)))
                .collect();
            let mut batch = write(&store, drafts);
            let removed = format!("V-{}", 3 + 7 * round);
            let gone = store
                .scan_owner(city())
                .map(Result::unwrap)
                .find(|r| r.envelope.id == removed)
                .unwrap();
            batch.removals = vec![Removal {
                envelope: gone.envelope,
            }];
            batch.documents = vec![document("P-1", u64::from(round) + 1), document("P-9", 1)];
            batch.watermarks = vec![(parent, city(), 100 + u64::from(round))];
            batch.peer_store_ids = vec![(parent, [u8::try_from(round).unwrap(); 16])];
            batch.quarantine = vec![quarantined(&some, &format!("Q-{round}-x"))];
            batch.received_at_ms = Some(1_000 + i64::from(round));
            batch.restore_pending = Some(true);
            store.commit(batch).unwrap();
            writer.write(&bytes)
        };
        produce::stream(&store, run, 0, &mut send).unwrap();
        assert!(
            round >= 3,
            "only {round} frames: no commit fell between chunks"
        );
        assert_ne!(state(&store), at_cut);
        let manifest = writer.finish(0).unwrap();
        assert_eq!(manifest.documents, 2);

        let data = dir.path().join("b");
        let target = Target {
            data: &data,
            node: city(),
            options,
            restore_pending: false,
            now_ms: 0,
        };
        let restored = restore(&out, target, &mut |_| {}).unwrap();
        assert!(!restored.restore_pending);
        drop(store);
        let back = SledStore::open(&data, city(), options).unwrap();
        assert!(
            state(&back) == at_cut,
            "the restored store is not the store at the cut"
        );
    }
}

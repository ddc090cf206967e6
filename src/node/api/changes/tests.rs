//! Tests of the change feed's reading: superseded versions passed over, answers that
//! resume where the last stopped, a replica's gaps, and a client that reads nothing or
//! goes away.

use super::*;
use crate::core::model::ingest::IngestContext;
use crate::core::model::standards::Standards;
use crate::core::store::{RecordWrite, WriteBatch};
use crate::node::storage::{SledStore, sled_options};
use crate::node::write::Planner;

fn code(s: &str) -> NodeCode {
    s.parse().unwrap()
}

fn store(dir: &std::path::Path, node: &str) -> Arc<SledStore> {
    Arc::new(SledStore::create(dir, code(node), [9; 16], 0, sled_options(8 << 20)).unwrap())
}

/// The city's writes of `items` (id, headcount) in order, one version each.
fn plan(city: &SledStore, items: &[(&str, u32)]) -> Vec<RecordWrite> {
    let standards = Standards::builtin();
    let cx = IngestContext::new(code("440100"), &standards, None);
    let mut planner = Planner::new(city, code("440100"));
    for (id, headcount) in items {
        let draft = cx
            .draft(json!({"kind": "vacancy", "id": id, "data": {
                "receiving_office_id": "O-1", "employer_id": "E-1", "reported_on": "1999-07-01",
                "report_channel": "on_site", "title": "钳工", "occupation": "6-04-01",
                "industry": "C", "headcount": headcount, "contract_term": "one_year_or_more",
                "employment_type": "full_time", "work_location": "440104",
                "valid_from": "1999-07-01", "valid_until": "1999-12-31",
                "publish_allowed": true, "fill_state": "open"}}))
            .unwrap();
        planner.plan(draft, &standards.code_refs(), 1_000).unwrap();
    }
    planner.into_writes()
}

fn feed(store: &Arc<SledStore>, cursor: Cursor, limit: usize) -> Feed {
    Feed {
        store: store.clone(),
        cursor,
        limit,
        delivered: 0,
        examined: 0,
    }
}

/// Reads one answer: `(id, version)` of its lines, how it ended, and where it stands.
fn answer(feed: &mut Feed) -> (Vec<(String, u64)>, Read) {
    let mut out = Vec::new();
    let mut read = Read::ChunkFull;
    while read == Read::ChunkFull {
        read = feed.read(&mut out).unwrap();
    }
    let lines = String::from_utf8(out).unwrap();
    let mut last = None;
    let given = lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let c = v["cursor"].as_str().unwrap().to_string();
            assert_eq!(Cursor::decode(&c).unwrap().node, feed.cursor.node);
            last = Some(c);
            let r = &v["record"];
            (
                r["id"].as_str().unwrap().to_string(),
                r["version"].as_u64().unwrap(),
            )
        })
        .collect();
    (given, read)
}

fn ids(given: &[(String, u64)]) -> Vec<(&str, u64)> {
    given.iter().map(|(i, v)| (i.as_str(), *v)).collect()
}

#[test]
fn superseded_versions_are_passed_over_and_an_answer_resumes_where_the_last_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let city = store(dir.path(), "440100");
    let items = [
        ("V-1", 1),
        ("V-2", 1),
        ("V-3", 1),
        ("V-4", 1),
        ("V-2", 2),
        ("V-5", 1),
    ];
    let records = plan(&city, &items);
    city.commit(WriteBatch {
        records,
        ..WriteBatch::default()
    })
    .unwrap();
    let start = || Cursor::start(code("440100"), [9; TAG], None, None);

    let mut whole = feed(&city, start(), 100);
    let (given, read) = answer(&mut whole);
    assert_eq!(read, Read::CaughtUp);
    assert_eq!(
        ids(&given),
        [("V-1", 1), ("V-3", 1), ("V-4", 1), ("V-2", 2), ("V-5", 1)]
    );
    assert_eq!(whole.cursor.at(code("440100")), 6);

    // Two lines an answer: each goes on from the last one's cursor.
    let mut cursor = start();
    let mut pieces = Vec::new();
    for _ in 0..3 {
        let mut part = feed(&city, cursor.clone(), 2);
        let (given, _) = answer(&mut part);
        pieces.extend(given);
        cursor = part.cursor;
    }
    assert_eq!(ids(&pieces), ids(&whole_lines(&city, start())));

    // Another kind: nothing to give, and the cursor moves past what it passed over.
    let mut offices = feed(
        &city,
        Cursor::start(code("440100"), [9; TAG], None, Some(Kind::Office)),
        100,
    );
    let (given, read) = answer(&mut offices);
    assert!(given.is_empty());
    assert_eq!(read, Read::CaughtUp);
    assert_eq!(offices.cursor.at(code("440100")), 6);
}

fn whole_lines(store: &Arc<SledStore>, cursor: Cursor) -> Vec<(String, u64)> {
    answer(&mut feed(store, cursor, MAX_LIMIT)).0
}

#[test]
fn a_replica_gives_another_owners_records_only_through_where_it_holds_them_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let city = store(&dir.path().join("city"), "440100");
    let items = [
        ("V-1", 1),
        ("V-2", 1),
        ("V-3", 1),
        ("V-4", 1),
        ("V-5", 1),
        ("V-2", 2),
    ];
    let writes = plan(&city, &items);
    let province = store(&dir.path().join("province"), "440000");
    let (p, c) = (code("440000"), code("440100"));
    let commit = |seqs: &[u64], through: Option<u64>| {
        let records = writes
            .iter()
            .filter(|w| seqs.contains(&w.record.envelope.seq))
            .cloned()
            .collect();
        province
            .commit(WriteBatch {
                records,
                watermarks: through.map(|t| (p, c, t)).into_iter().collect(),
                ..WriteBatch::default()
            })
            .unwrap();
    };
    // In order through 3; then 5 and 6 ahead of the upload (a repair), 4 missing.
    commit(&[1, 2, 3], Some(3));
    commit(&[5, 6], None);
    let mut first = feed(&province, Cursor::start(p, [9; TAG], None, None), 100);
    let (given, read) = answer(&mut first);
    assert_eq!(read, Read::CaughtUp);
    assert_eq!(
        ids(&given),
        [("V-1", 1), ("V-3", 1)],
        "V-2 v1 is superseded here"
    );
    assert_eq!(first.cursor.at(c), 3, "the cursor stops at the gap");
    // A cursor past what this store holds without gaps was issued by another store.
    let mut ahead = first.cursor.clone();
    ahead.advance(c, 5);
    assert!(check_positions(province.as_ref(), ahead).unwrap().is_err());
    assert!(
        check_positions(province.as_ref(), first.cursor.clone())
            .unwrap()
            .is_ok()
    );

    commit(&[4], Some(6));
    let (given, _) = answer(&mut feed(&province, first.cursor.clone(), 100));
    assert_eq!(ids(&given), [("V-4", 1), ("V-5", 1), ("V-2", 2)]);
}

/// Starts producing the whole feed of `store` into a channel nobody reads yet.
fn unread(
    store: &Arc<SledStore>,
    stats: &Arc<ApiStats>,
) -> (mpsc::Receiver<Bytes>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    let wakes = Wakes {
        signal: crate::node::write::CommitSignal::default().subscribe(),
        stopping: None,
        wait: Duration::ZERO,
    };
    let cursor = Cursor::start(code("440100"), [9; TAG], None, None);
    let task = tokio::spawn(produce(
        feed(store, cursor, MAX_LIMIT),
        wakes,
        stats.clone(),
        tx,
    ));
    (rx, task)
}

/// Waits (bounded) until the producer has filled the channel.
async fn filled(rx: &mpsc::Receiver<Bytes>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while rx.len() < CHUNKS_AHEAD {
        assert!(
            std::time::Instant::now() < deadline,
            "the channel never filled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_holds_the_reading_up_and_one_that_leaves_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let city = store(dir.path(), "440100");
    let n = 6_000;
    let ids: Vec<String> = (0..n).map(|i| format!("V-{i}")).collect();
    let items: Vec<(&str, u32)> = ids.iter().map(|i| (i.as_str(), 1)).collect();
    let records = plan(&city, &items);
    city.commit(WriteBatch {
        records,
        ..WriteBatch::default()
    })
    .unwrap();
    let stats = Arc::new(ApiStats::default());
    let (mut rx, task) = unread(&city, &stats);
    filled(&rx).await;
    // The producer holds at most one chunk beyond those queued.
    let held = stats.changes_records.load(Relaxed);
    let (mut lines, mut shortest, mut last) = (0usize, usize::MAX, String::new());
    while let Some(chunk) = rx.recv().await {
        for line in std::str::from_utf8(&chunk).unwrap().lines() {
            lines += 1;
            shortest = shortest.min(line.len() + 1);
            last = line.to_string();
        }
    }
    task.await.unwrap();
    assert_eq!(lines, n + 1, "every record, then the last line");
    assert!(last.contains("\"more\":false"), "{last}");
    let per_chunk = CHUNK_BYTES / shortest + 1;
    assert!(
        held <= ((CHUNKS_AHEAD + 1) * per_chunk) as u64 && held < n as u64,
        "{held} lines read ahead of a client that read nothing"
    );

    // A client that goes away ends the reading.
    let (rx, task) = unread(&city, &stats);
    filled(&rx).await;
    drop(rx);
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the producer ended")
        .unwrap();
    assert_eq!(stats.changes_streams.load(Relaxed), 0);
}

//! Keeps the public board up to date: built once from every owner's records at start,
//! then fed each commit's records as they are committed (the node's own writes and
//! replicas alike), so that searches never scan the store. A keeper that falls behind
//! the feed catches up from each owner's change log instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::core::model::NodeCode;
use crate::core::store::{Store, StoreError};
use crate::node::write::CommitSignal;
use crate::reporting::public::Board;

/// Records read from a change log per step: the board's lock is held for one step only.
const STEP: usize = 2_000;

/// How far the board has followed each owner's change log.
type Seen = BTreeMap<NodeCode, u64>;

/// Builds the board, marks it ready, then follows commits until aborted.
pub(super) async fn keep(
    store: Arc<dyn Store>,
    commits: CommitSignal,
    board: Arc<RwLock<Board>>,
    ready: Arc<AtomicBool>,
) {
    // Subscribed before the build, so that nothing committed during it goes unnoticed
    // (applying a version twice is harmless: the feed delivers them in commit order).
    let mut feed = commits.subscribe_records();
    let built = {
        let (store, board) = (store.clone(), board.clone());
        tokio::task::spawn_blocking(move || build(store.as_ref(), &board)).await
    };
    let mut seen = match built {
        Ok(Ok(seen)) => seen,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "The public board could not be built; it stays empty");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "The public board's build failed");
            return;
        }
    };
    ready.store(true, Ordering::Release);
    loop {
        match feed.recv().await {
            Ok(records) => {
                for r in records.iter() {
                    let e = &r.envelope;
                    let at = seen.entry(e.owner).or_default();
                    *at = (*at).max(e.seq);
                }
                // Off the async workers: the board's lock may be held by a long search.
                let board = board.clone();
                if tokio::task::spawn_blocking(move || apply(&board, &records))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::info!(
                    missed,
                    "The public board fell behind the commits; catching up from the change log"
                );
                let (store2, board2) = (store.clone(), board.clone());
                let caught_up = tokio::task::spawn_blocking(move || {
                    let r = follow(store2.as_ref(), &board2, &mut seen);
                    (seen, r)
                })
                .await;
                match caught_up {
                    Ok((s, r)) => {
                        seen = s;
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "The public board could not catch up; it tries again when it falls behind next");
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "The public board's catch-up failed");
                        return;
                    }
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Reads every owner's records into the board; returns how far each owner is covered.
fn build(store: &dyn Store, board: &RwLock<Board>) -> Result<Seen, StoreError> {
    let mut seen = Seen::new();
    let started = std::time::Instant::now();
    for owner in store.owner_counts().into_keys() {
        // Taken before reading: what commits meanwhile is followed from the change log.
        seen.insert(owner, store.last_seq(owner));
        let mut batch = Vec::with_capacity(STEP);
        for record in store.records_of(owner) {
            batch.push(record?);
            if batch.len() == STEP {
                apply(board, &batch);
                batch.clear();
            }
        }
        apply(board, &batch);
    }
    let listed = board.read().map_or(0, |b| b.listed());
    tracing::info!(listed, took = ?started.elapsed(), "Public board built");
    Ok(seen)
}

/// Brings the board forward from each owner's change log.
fn follow(store: &dyn Store, board: &RwLock<Board>, seen: &mut Seen) -> Result<(), StoreError> {
    for owner in store.owner_counts().into_keys() {
        let last = store.last_seq(owner);
        let mut at = seen.get(&owner).copied().unwrap_or(0);
        while at < last {
            let (covered, records) = store.changes(owner, at, last, STEP)?;
            apply(board, &records);
            if covered <= at {
                break;
            }
            at = covered;
        }
        seen.insert(owner, at);
    }
    Ok(())
}

fn apply(board: &RwLock<Board>, records: &[crate::core::model::Record]) {
    if records.is_empty() {
        return;
    }
    let mut board = board.write().unwrap_or_else(|p| p.into_inner());
    for r in records {
        board.apply(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::NodeCode;
    use crate::core::model::ingest::IngestContext;
    use crate::core::model::standards::Standards;
    use crate::core::store::WriteBatch;
    use crate::node::storage::{SledStore, sled_options};
    use crate::node::write::Planner;

    fn city() -> NodeCode {
        "440100".parse().unwrap()
    }

    /// Commits one publishable vacancy, as the writer does: durable, then the feed.
    fn commit(store: &SledStore, signal: &CommitSignal, n: usize) {
        let standards = Standards::builtin();
        let cx = IngestContext::new(city(), &standards, None);
        let draft = cx
            .draft(
                serde_json::json!({"kind": "vacancy", "id": format!("V-{n}"), "data": {
                "receiving_office_id": "O-1", "employer_id": "E-1", "reported_on": "1999-07-01",
                "report_channel": "on_site", "title": "钳工", "occupation": "6-04-01",
                "industry": "C", "headcount": 1, "contract_term": "one_year_or_more",
                "employment_type": "full_time", "work_location": "440104",
                "valid_from": "1999-07-01", "valid_until": "1999-12-31",
                "publish_allowed": true, "fill_state": "open"}}),
            )
            .unwrap();
        let mut planner = Planner::new(store, city());
        planner.plan(draft, &standards.code_refs(), 1_000).unwrap();
        let records = planner.into_writes();
        let copy = records.iter().map(|w| w.record.clone()).collect();
        store
            .commit(WriteBatch {
                records,
                ..WriteBatch::default()
            })
            .unwrap();
        signal.committed(copy);
        signal.notify();
    }

    /// A keeper held up past the feed's depth catches up from the change log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_keeper_that_fell_behind_catches_up_from_the_change_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SledStore::create(dir.path(), city(), [1; 16], 0, sled_options(8 << 20)).unwrap(),
        );
        let signal = CommitSignal::default();
        let board = Arc::new(RwLock::new(Board::default()));
        let ready = Arc::new(AtomicBool::new(false));
        let keeper = tokio::spawn(keep(
            store.clone(),
            signal.clone(),
            board.clone(),
            ready.clone(),
        ));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !ready.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the board was never built"
            );
            tokio::task::yield_now().await;
        }
        commit(&store, &signal, 0);
        // Hold the board while many more commits than the feed keeps go by.
        let total = 400;
        {
            let held = board.write().unwrap();
            for n in 1..total {
                commit(&store, &signal, n);
            }
            drop(held);
        }
        while board.read().unwrap().listed() < total {
            assert!(
                std::time::Instant::now() < deadline,
                "the board holds {} of {total}",
                board.read().unwrap().listed()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        keeper.abort();
    }
}

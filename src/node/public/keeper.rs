//! Keeps the public board up to date: built once from every owner's records at start,
//! then brought forward from each owner's change log whenever records commit (the
//! node's own writes and replicas alike), so that searches never scan the store.

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
    // Subscribed before the build, so that nothing committed during it goes unnoticed.
    let mut rings = commits.subscribe();
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
        let (store2, board2) = (store.clone(), board.clone());
        let followed = tokio::task::spawn_blocking(move || {
            let mut seen = seen;
            let r = follow(store2.as_ref(), &board2, &mut seen);
            (seen, r)
        })
        .await;
        match followed {
            Ok((s, Ok(()))) => seen = s,
            Ok((s, Err(e))) => {
                tracing::warn!(error = %e, "The public board could not follow the change log; retrying at the next commit");
                seen = s;
            }
            Err(e) => {
                tracing::error!(error = %e, "The public board's follower failed");
                return;
            }
        }
        if rings.changed().await.is_err() {
            return;
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

//! Keeps the store's figures (`reporting::scan::figures`) current in the background, so
//! that coverage and reports answer from stored counts: once the records have settled
//! after commits, every figure asked for before, and each city's coverage and report of
//! its latest quarters of activity, is computed again for the cities whose records
//! changed, taking at most a fifth of the time.
//!
//! A refresh gives way: it stops between cities as soon as records are committed again
//! (the sessions and the writer come first), and waits for the records to settle before
//! it starts. Under a steady stream of commits it still gets through one city every
//! [`LONGEST_WAIT`], so figures never fall behind for good.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::core::model::standards::StandardsCell;
use crate::core::store::Store;
use crate::node::write::CommitSignal;
use crate::reporting::scan::figures;

/// No records committed for this long: they have settled.
const SETTLE: Duration = Duration::from_secs(2);
/// Records still being committed after this long: refresh anyway (one city at least).
const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// Rest after a refresh, per unit of time it took.
const REST_PER_WORK: u32 = 4;

/// The background task and its stop flag.
pub(super) struct FiguresKeeper {
    task: tokio::task::JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

impl FiguresKeeper {
    /// Starts keeping `store`'s figures, with a first refresh at once (figures stored
    /// before a crash may be stale).
    pub(super) fn start(
        store: Arc<dyn Store>,
        standards: Arc<StandardsCell>,
        commits: &CommitSignal,
    ) -> FiguresKeeper {
        let stopping = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(keep(
            store,
            standards,
            commits.subscribe(),
            stopping.clone(),
        ));
        FiguresKeeper { task, stopping }
    }

    /// Stops the task; a refresh under way stops after the city it is on.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.task.abort();
    }
}

async fn keep(
    store: Arc<dyn Store>,
    standards: Arc<StandardsCell>,
    mut commits: watch::Receiver<u64>,
    stopping: Arc<AtomicBool>,
) {
    loop {
        commits.borrow_and_update();
        let started = tokio::time::Instant::now();
        let (store, standards, stopping) = (store.clone(), standards.current(), stopping.clone());
        let newer = commits.clone();
        let refreshed = tokio::task::spawn_blocking(move || {
            // At least one city per round, so that figures never fall behind for good.
            let stop = |scanned: usize| {
                stopping.load(Ordering::Relaxed)
                    || (scanned > 0 && newer.has_changed().unwrap_or(true))
            };
            figures::refresh(store.as_ref(), &standards, stop)
        })
        .await;
        match refreshed {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(figures = n, "Figures brought up to date"),
            Ok(Err(e)) => tracing::warn!(error = %e, "Refreshing the figures failed"),
            Err(e) => tracing::warn!(error = %e, "The figures task failed"),
        }
        // At most a fifth of the time: a ministry whose cities keep changing would
        // otherwise rescan them back to back.
        let rest_until = tokio::time::Instant::now() + started.elapsed() * REST_PER_WORK;
        if commits.changed().await.is_err() {
            return;
        }
        settle(&mut commits).await;
        tokio::time::sleep_until(rest_until).await;
    }
}

/// Waits until no commit has come for [`SETTLE`], or [`LONGEST_WAIT`] has passed.
async fn settle(commits: &mut watch::Receiver<u64>) {
    let deadline = tokio::time::Instant::now() + LONGEST_WAIT;
    loop {
        tokio::select! {
            changed = commits.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(SETTLE) => return,
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

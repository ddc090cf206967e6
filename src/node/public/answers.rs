//! Answers to searches, kept for a second: the board changes with every commit, and a
//! public board read by many screens and phones at once asks the same few questions
//! again and again. The first request for a query computes it (on the blocking pool);
//! requests for the same query meanwhile wait for that answer instead of computing it
//! again, and for [`FRESH_FOR`] after it they get it as it is. After that the next
//! request computes a new answer in the background while it and the others still get
//! the last one, so no reader waits for a recomputation: what the public sees is at most
//! a second, and one computation, behind the board.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::reporting::public::search::Page;

/// How long an answer is served as it is.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(1);
/// Queries remembered at most; beyond, the stale are dropped (then, if need be, all).
const MAX_QUERIES: usize = 4_096;

/// One query's answer, computed once.
type Cell = Arc<OnceCell<Arc<Result<Page, String>>>>;

/// A query's answer, when it was computed, and whether a newer one is being computed.
struct Entry {
    answer: Cell,
    at: Instant,
    refreshing: bool,
}

/// The answers of the last second, by query.
#[derive(Default)]
pub(super) struct Answers {
    slots: Mutex<HashMap<String, Entry>>,
}

/// What a request does about its query.
enum Plan {
    /// Serve this answer now.
    Serve(Arc<Result<Page, String>>),
    /// Serve this answer now, and compute the next one in the background.
    Refresh(Arc<Result<Page, String>>),
    /// Wait for this first computation (started by this request or another).
    Wait(Cell),
}

impl Answers {
    /// The answer to the query named `key`: a fresh one as it is; an older one as it is
    /// while one request's `compute` makes the next in the background; with none yet,
    /// the first computation, which every request for it waits for.
    pub(super) async fn get(
        self: &Arc<Self>,
        key: String,
        compute: impl FnOnce() -> Result<Page, String> + Send + 'static,
    ) -> Arc<Result<Page, String>> {
        match self.plan(&key, Instant::now()) {
            Plan::Serve(answer) => answer,
            Plan::Refresh(answer) => {
                let me = self.clone();
                tokio::spawn(async move {
                    let next = computed(compute).await;
                    me.store(key, next);
                });
                answer
            }
            Plan::Wait(cell) => cell
                .get_or_init(|| async move { computed(compute).await })
                .await
                .clone(),
        }
    }

    fn plan(&self, key: &str, now: Instant) -> Plan {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = slots.get_mut(key) {
            let Some(answer) = entry.answer.get().cloned() else {
                return Plan::Wait(entry.answer.clone());
            };
            if now.duration_since(entry.at) < FRESH_FOR || entry.refreshing {
                return Plan::Serve(answer);
            }
            entry.refreshing = true;
            return Plan::Refresh(answer);
        }
        if slots.len() >= MAX_QUERIES {
            slots.retain(|_, e| now.duration_since(e.at) < FRESH_FOR);
            if slots.len() >= MAX_QUERIES {
                slots.clear();
            }
        }
        let cell = Cell::default();
        slots.insert(
            key.to_string(),
            Entry {
                answer: cell.clone(),
                at: now,
                refreshing: false,
            },
        );
        Plan::Wait(cell)
    }

    /// Puts a newly computed answer in place.
    fn store(&self, key: String, answer: Arc<Result<Page, String>>) {
        let cell = Cell::new(OnceCell::new_with(Some(answer)));
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.insert(
            key,
            Entry {
                answer: cell,
                at: Instant::now(),
                refreshing: false,
            },
        );
    }
}

/// Runs `compute` on the blocking pool.
async fn computed(
    compute: impl FnOnce() -> Result<Page, String> + Send + 'static,
) -> Arc<Result<Page, String>> {
    let answer = tokio::task::spawn_blocking(compute)
        .await
        .unwrap_or_else(|e| Err(format!("the search failed: {e}")));
    Arc::new(answer)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn page() -> Result<Page, String> {
        Ok(Page {
            total: 0,
            date: chrono::NaiveDate::MIN,
            items: Vec::new(),
        })
    }

    #[tokio::test]
    async fn one_computation_serves_the_same_query_within_a_second() {
        let answers = Arc::new(Answers::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let ask = |key: &str| {
            let runs = runs.clone();
            answers.get(key.to_string(), move || {
                runs.fetch_add(1, Ordering::SeqCst);
                page()
            })
        };
        let (a, b) = tokio::join!(ask("q=1"), ask("q=1"));
        assert!(a.is_ok() && b.is_ok());
        ask("q=1").await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "one computation for three asks"
        );
        ask("q=2").await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "another query is computed");
        // An old answer is served while the next one is computed.
        assert!(matches!(
            answers.plan("q=1", Instant::now() + FRESH_FOR),
            Plan::Refresh(_)
        ));
        assert!(
            matches!(
                answers.plan("q=1", Instant::now() + FRESH_FOR),
                Plan::Serve(_)
            ),
            "one refresh at a time"
        );
    }
}

//! The commit signal: tells the sync sessions that records were committed here, so that
//! an upload starts as soon as its records are durable instead of on the next sync tick.
//!
//! A counter in a `watch` channel: a session that was busy sees one change for any
//! number of commits, so a burst of small commits wakes it once.

use std::sync::Arc;

use tokio::sync::watch;

/// Shared by everything that commits records (the writer thread, sync sessions storing
/// replicas) and every session that forwards them.
#[derive(Debug, Clone)]
pub struct CommitSignal(Arc<watch::Sender<u64>>);

impl Default for CommitSignal {
    fn default() -> Self {
        CommitSignal(Arc::new(watch::channel(0).0))
    }
}

impl CommitSignal {
    /// Records were committed (call after the commit is durable).
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that wakes on the next commit after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::CommitSignal;

    #[tokio::test]
    async fn a_burst_of_commits_wakes_a_subscriber_once() {
        let signal = CommitSignal::default();
        let mut rx = signal.subscribe();
        assert!(!rx.has_changed().unwrap_or(true), "nothing committed yet");
        signal.notify();
        signal.notify();
        rx.changed().await.expect("the sender lives");
        assert!(
            !rx.has_changed().unwrap_or(true),
            "two commits, one wake-up"
        );
    }
}

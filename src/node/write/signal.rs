//! The commit signal: tells the sync sessions that records or documents were committed
//! here, so that an upload starts as soon as its records are durable, and a new document
//! goes down to the children at once, instead of on the next sync tick.
//!
//! A counter per kind of change in a `watch` channel: a session that was busy sees one
//! change for any number of commits, so a burst of small commits wakes it once. Who needs
//! the records themselves (the public board) subscribes to a feed of each commit's
//! records; while nobody does, nothing is copied for it.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::core::model::Record;

/// Commits the record feed holds for a slow subscriber before it must catch up from the
/// change log instead.
const FEED_DEPTH: usize = 256;

/// Shared by everything that commits records or documents (the writer thread, the API's
/// publishing, sync sessions storing replicas) and every session that forwards them.
#[derive(Debug, Clone)]
pub struct CommitSignal {
    records: Arc<watch::Sender<u64>>,
    documents: Arc<watch::Sender<u64>>,
    feed: Arc<broadcast::Sender<Arc<Vec<Record>>>>,
}

impl Default for CommitSignal {
    fn default() -> Self {
        CommitSignal {
            records: Arc::new(watch::channel(0).0),
            documents: Arc::new(watch::channel(0).0),
            feed: Arc::new(broadcast::channel(FEED_DEPTH).0),
        }
    }
}

impl CommitSignal {
    /// True when something follows the records committed (worth copying them for).
    pub fn wants_records(&self) -> bool {
        self.feed.receiver_count() > 0
    }

    /// These records were committed, durably (call before [`CommitSignal::notify`]).
    pub fn committed(&self, records: Vec<Record>) {
        if !records.is_empty() {
            let _ = self.feed.send(Arc::new(records));
        }
    }

    /// The records of every commit after this call, in commit order; a subscriber that
    /// falls [`FEED_DEPTH`] commits behind is told it lagged.
    pub fn subscribe_records(&self) -> broadcast::Receiver<Arc<Vec<Record>>> {
        self.feed.subscribe()
    }

    /// Records were committed (call after the commit is durable).
    pub fn notify(&self) {
        self.records.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that wakes on the next commit of records after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.records.subscribe()
    }

    /// Documents were committed (call after the commit is durable).
    pub fn notify_documents(&self) {
        self.documents.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that wakes on the next commit of documents after this call.
    pub fn subscribe_documents(&self) -> watch::Receiver<u64> {
        self.documents.subscribe()
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

    #[tokio::test]
    async fn documents_and_records_wake_their_own_subscribers() {
        let signal = CommitSignal::default();
        let records = signal.subscribe();
        let mut documents = signal.subscribe_documents();
        signal.notify_documents();
        documents.changed().await.expect("the sender lives");
        assert!(
            !records.has_changed().unwrap_or(true),
            "a document is not a record"
        );
    }
}

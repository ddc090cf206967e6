//! The node's write path: turning validated drafts into versioned records and committing
//! them in groups, so that one flush + fsync acknowledges many requests at once.
//!
//! [`plan`] is the pure part (version and seq assignment, no-op detection); [`Writer`] is
//! the thin shell: one thread that owns all writes to the store, drains whatever requests
//! are waiting, commits them as one durable batch, then answers every request, and
//! [`CommitSignal`] tells the sync sessions that there is something new to send.

mod plan;
mod signal;
mod writer;

pub use plan::{Outcome, Planner};
pub use signal::CommitSignal;
pub use writer::{WriteError, Writer, WriterStats};

/// The built-in standards with the ministry's classification documents stored here
/// applied: every tier applies the same ones, so every tier judges a record the same way.
pub fn standards_in_force(
    store: &dyn crate::core::store::Store,
) -> crate::core::model::standards::Standards {
    let docs = store.documents().unwrap_or_else(|e| {
        tracing::error!(error = %e, "Cannot read documents; using the built-in standards");
        Vec::new()
    });
    let bodies: Vec<&str> = docs
        .iter()
        // Only the ministry's: a classification issued by anyone else (stored before
        // issuing was restricted) would make this tier judge records differently from
        // the others.
        .filter(|d| {
            d.kind == crate::core::model::document::CLASSIFICATION
                && d.issuer == crate::core::model::MINISTRY
        })
        .map(|d| d.body.as_str())
        .collect();
    crate::core::model::standards::Standards::with_documents(bodies)
}

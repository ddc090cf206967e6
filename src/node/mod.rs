//! The node's write path: turning validated drafts into versioned records and committing
//! them in groups, so that one flush + fsync acknowledges many requests at once.
//!
//! [`plan`] is the pure part (version and seq assignment, no-op detection); [`Writer`] is
//! the thin shell: one thread that owns all writes to the store, drains whatever requests
//! are waiting, commits them as one durable batch, then answers every request.

mod plan;
mod writer;

pub use plan::{Outcome, Planner};
pub use writer::{WriteError, Writer, WriterStats};

//! The node's write path: turning validated drafts into versioned records and committing
//! them in groups, so that one flush + fsync acknowledges many requests at once.
//!
//! [`plan`] is the pure part (version and seq assignment, no-op detection); [`Writer`] is
//! the thin shell: one thread that owns all writes to the store, drains whatever requests
//! are waiting, commits them as one durable batch, then answers every request, and
//! [`CommitSignal`] tells the sync sessions that there is something new to send;
//! `tally` adds each group's counts of records offered and refused to the quarter's
//! `ingest_tally` record in the same commit.
//! [`preview`] plans drafts without writing them, for a dry run.

mod plan;
mod signal;
mod tally;
mod writer;

pub use plan::{Outcome, Planner, preview};
pub use signal::CommitSignal;
pub use writer::{WriteError, Writer, WriterStats};

/// Reads the revocations in force from `store` and puts them in `verifier`, logging each
/// one that is new at WARN: from then on no session accepts that certificate.
pub fn put_revocations_in_force(
    store: &dyn crate::core::store::Store,
    verifier: &crate::core::model::signature::DocumentVerifier,
) {
    let docs = match store.documents() {
        Ok(docs) => docs,
        Err(e) => {
            tracing::error!(error = %e, "Cannot read documents; the revocations in force stay");
            return;
        }
    };
    let revoked = crate::core::model::revocation::in_force(&docs);
    let known: std::collections::BTreeSet<String> = verifier
        .revocations()
        .into_iter()
        .map(|r| r.serial)
        .collect();
    for r in revoked.values().filter(|r| !known.contains(&r.serial)) {
        tracing::warn!(node = %r.node, serial = %r.serial, issuer = %r.issuer, reason = %r.reason, "Certificate revoked; no session accepts it from now on");
    }
    verifier.replace_revocations(revoked);
}

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

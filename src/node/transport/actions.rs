//! Driving a session and carrying out what it asks for. Each step of a session (its store
//! reads, the decoding of records) and each commit run where the context's
//! [`StorageCalls`](super::StorageCalls) says — off the async workers in a node — so that
//! one child's long anti-entropy pass never stalls the sessions of the others. A new
//! classification is put in force as soon as it is stored, every commit of records rings
//! the [`CommitSignal`](crate::node::write::CommitSignal), and every event updates the
//! link table.

use std::sync::{Arc, Mutex, PoisonError};

use quinn::SendStream;

use super::frames::write_frame;
use super::{SyncContext, TransportError};
use crate::core::model::NodeCode;
use crate::core::model::document::REVOCATION;
use crate::core::protocol::{Action, Event};
use crate::core::store::{Store, StoreError};
use crate::core::wire::Message;
use crate::node::write::put_revocations_in_force;

/// A sans-IO session whose steps run on the context's storage threads. The async task
/// holds only this handle; the session itself is lent to one step at a time.
pub(super) struct Driven<S> {
    session: Arc<Mutex<S>>,
}

impl<S: Send + 'static> Driven<S> {
    pub(super) fn new(session: S) -> Self {
        Driven {
            session: Arc::new(Mutex::new(session)),
        }
    }

    /// Runs one step of the session (a message, a timer) against the store.
    pub(super) async fn step<F>(
        &self,
        ctx: &SyncContext,
        step: F,
    ) -> Result<Vec<Action>, TransportError>
    where
        F: FnOnce(&mut S, &dyn Store) -> Result<Vec<Action>, StoreError> + Send + 'static,
    {
        let (session, store) = (self.session.clone(), ctx.store.clone());
        let actions = ctx
            .storage_calls
            .run(move || {
                step(
                    &mut session.lock().unwrap_or_else(PoisonError::into_inner),
                    store.as_ref(),
                )
            })
            .await??;
        Ok(actions)
    }

    /// Reads the session's state between steps.
    pub(super) fn read<T>(&self, read: impl FnOnce(&S) -> T) -> T {
        read(&self.session.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Carries out a session's actions in order: sends, commits (then their acks, never
/// before), closes and events. Returns Err when the session must end.
pub(super) async fn carry_out(
    ctx: &SyncContext,
    peer: NodeCode,
    send: &mut SendStream,
    actions: Vec<Action>,
) -> Result<(), TransportError> {
    for action in actions {
        match action {
            Action::Send(m) => write_frame(send, &m).await?,
            Action::Commit { mut batch, then } => {
                let now_ms = ctx.clock.now_ms();
                batch
                    .quarantine
                    .iter_mut()
                    .for_each(|q| q.received_at_ms = now_ms);
                if !batch.records.is_empty() {
                    batch.received_at_ms = Some(now_ms);
                    ctx.links.record_lags(&batch.records, now_ms);
                }
                let store = ctx.store.clone();
                let has_records = !batch.records.is_empty();
                let has_documents = !batch.documents.is_empty();
                let revokes = batch.documents.iter().any(|d| d.kind == REVOCATION);
                let copy: Option<Vec<_>> = (has_records && ctx.commits.wants_records())
                    .then(|| batch.records.iter().map(|w| w.record.clone()).collect());
                ctx.storage_calls.run(move || store.commit(batch)).await??;
                if let Some(records) = copy {
                    ctx.commits.committed(records);
                }
                if revokes {
                    // In force before the sessions hear of the documents: each checks its
                    // peer's certificate when they do.
                    let (store, verifier) = (ctx.store.clone(), ctx.verifier.clone());
                    ctx.storage_calls
                        .run(move || put_revocations_in_force(store.as_ref(), &verifier))
                        .await?;
                }
                if has_records {
                    ctx.commits.notify();
                }
                if has_documents {
                    ctx.commits.notify_documents();
                }
                for m in &then {
                    write_frame(send, m).await?;
                }
            }
            Action::Close { code, reason } => {
                tracing::warn!(%peer, ?code, %reason, "Closing sync session");
                let _ = write_frame(
                    send,
                    &Message::Refuse {
                        code,
                        reason: reason.clone(),
                    },
                )
                .await;
                let _ = send.finish();
                return Err(TransportError::Refused { code, reason });
            }
            Action::Event(e) => {
                if let Event::DocumentStored { kind, .. } = &e
                    && kind == crate::core::model::document::CLASSIFICATION
                {
                    let store = ctx.store.clone();
                    let standards = ctx
                        .storage_calls
                        .run(move || crate::node::write::standards_in_force(store.as_ref()))
                        .await?;
                    tracing::info!(standards = ?standards.code_refs(), "New classification in force");
                    ctx.standards.replace(standards);
                }
                ctx.links.record(peer, &e, ctx.clock.now_ms());
            }
        }
    }
    Ok(())
}

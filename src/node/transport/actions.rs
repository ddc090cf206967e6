//! The action interpreter: what a session asks for, done for real. Commits run where the
//! context's [`StorageCalls`](super::StorageCalls) says, a new classification is put in
//! force as soon as it is stored, and every event updates the link table.

use quinn::SendStream;

use super::frames::write_frame;
use super::{SyncContext, TransportError};
use crate::core::model::NodeCode;
use crate::core::protocol::{Action, Event};
use crate::core::wire::Message;

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
                ctx.storage_calls.run(move || store.commit(batch)).await??;
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

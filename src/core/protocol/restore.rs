//! Restore: a node whose store went back (lost disk, older backup, damaged end) gets its
//! own records back from its parent, one acknowledged batch at a time, and accepts no
//! writes until they are all back. Only a node's own records are restored to it.

use super::child::ChildSession;
use super::documents::documents_held;
use super::merge::commit_replica;
use super::parent::ParentSession;
use super::{Action, Event, close};
use crate::core::model::{NodeCode, Record};
use crate::core::store::{Store, StoreError, WriteBatch};
use crate::core::wire::{Message, RefusalCode};

/// Records per restore batch.
pub(super) const RESTORE_BATCH: usize = 1000;

impl ParentSession {
    /// The child lost its store: stream its own records back, one acknowledged batch at a
    /// time. Only a node's own records are restored to it, never a sibling's.
    pub(super) fn restore(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        after: u64,
    ) -> Result<Vec<Action>, StoreError> {
        if owner != self.child {
            return Ok(close(
                RefusalCode::Unauthorised,
                format!(
                    "{} may restore only its own records, not {owner}'s",
                    self.child
                ),
            ));
        }
        self.restoring = Some((after, store.complete_through(owner)?));
        let mut actions = Vec::new();
        if let Some((_, new)) = self.identity_changed.take() {
            // A node rebuilding from here is the legitimate owner of its new store.
            actions.push(Action::Commit {
                batch: WriteBatch {
                    peer_store_ids: vec![(self.child, new)],
                    ..WriteBatch::default()
                },
                then: Vec::new(),
            });
        }
        actions.extend(self.restore_next(store)?);
        Ok(actions)
    }

    pub(super) fn restore_acked(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        through: u64,
    ) -> Result<Vec<Action>, StoreError> {
        match self.restoring {
            Some((sent, _)) if owner == self.child && through == sent => self.restore_next(store),
            _ => Ok(close(
                RefusalCode::Protocol,
                "an Ack from a child outside a restore".to_string(),
            )),
        }
    }

    pub(super) fn restore_next(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        let Some((sent, upto)) = self.restoring else {
            return Ok(Vec::new());
        };
        if sent >= upto {
            self.restoring = None;
            return Ok(vec![Action::Send(Message::Restored {
                owner: self.child,
                through: upto,
            })]);
        }
        let (to, records) = store.changes(self.child, sent, upto, RESTORE_BATCH)?;
        let (to, records) = super::first_batch(to, records);
        self.restoring = Some((to, upto));
        Ok(vec![Action::Send(Message::Batch {
            owner: self.child,
            from: sent + 1,
            to,
            records,
        })])
    }
}

impl ChildSession {
    /// Restore: store a batch of this node's own records from the parent, then ask for
    /// the next.
    pub(super) fn restore_batch(
        &mut self,
        store: &dyn Store,
        from: u64,
        to: u64,
        records: Vec<Record>,
    ) -> Result<Vec<Action>, StoreError> {
        if records
            .iter()
            .any(|r| r.envelope.owner != self.me || !(from..=to).contains(&r.envelope.seq))
        {
            return Ok(close(
                RefusalCode::Protocol,
                "a restore batch holds records it should not".to_string(),
            ));
        }
        let ack = Message::Ack {
            owner: self.me,
            through: to,
            ministry: 0,
        };
        commit_replica(
            store,
            (&self.standards.current(), &self.verifier),
            (self.me, self.parent),
            records,
            vec![ack],
        )
    }

    /// The parent holds more of this node's own records than it does: the store went
    /// back. Mark it for restore (writes are refused from the commit on) and fetch them.
    pub(super) fn behind_parent(&mut self, here: u64, at_parent: u64) -> Vec<Action> {
        self.restoring = true;
        self.uploads.clear();
        vec![
            Action::Event(Event::BehindParent { here, at_parent }),
            Action::Commit {
                batch: WriteBatch {
                    restore_pending: Some(true),
                    ..WriteBatch::default()
                },
                then: vec![Message::Restore {
                    owner: self.me,
                    after: here,
                }],
            },
        ]
    }

    /// Restore complete: clear the marker and sync normally from now on.
    pub(super) fn restored(
        &mut self,
        store: &dyn Store,
        through: u64,
    ) -> Result<Vec<Action>, StoreError> {
        self.restoring = false;
        let watermarks = vec![(self.parent, self.me, through)];
        Ok(vec![
            Action::Commit {
                batch: WriteBatch {
                    restore_pending: Some(false),
                    watermarks,
                    ..WriteBatch::default()
                },
                then: Vec::new(),
            },
            Action::Send(self.offer(store)?),
            Action::Send(self.digests(store)?),
            Action::Send(documents_held(store, self.protocol)?),
        ])
    }
}

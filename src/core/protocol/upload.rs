//! Upload, the fast path: records flow up in order. The child offers how far each owner's
//! records are complete; the parent asks for what lies beyond its watermark; the child
//! streams a window of bounded batches of change-log ranges; the parent commits each
//! batch with its new watermark and only then acknowledges it. Acks carry the ministry's
//! watermark too, so a city learns how far its records have reached the top.

use super::child::ChildSession;
use super::merge::plan_replica;
use super::parent::ParentSession;
use super::{Action, Event, WINDOW, close};
use crate::core::model::{MINISTRY, NodeCode, Record};
use crate::core::store::{Store, StoreError, WriteBatch};
use crate::core::wire::{Message, RefusalCode};

/// Where the upload of one owner's records stands.
#[derive(Debug, Clone, Copy)]
pub(super) struct Upload {
    /// Sent through this seq.
    pub(super) sent: u64,
    /// Complete here through this seq when the parent asked.
    pub(super) upto: u64,
    /// Batches sent and not yet acknowledged.
    pub(super) unacked: usize,
}

impl ParentSession {
    /// How far the ministry holds `owner`'s records, as far as this node knows.
    pub(super) fn ministry_mark(
        &self,
        store: &dyn Store,
        owner: NodeCode,
        here: u64,
    ) -> Result<u64, StoreError> {
        if self.me == MINISTRY {
            Ok(here)
        } else {
            store.watermark(MINISTRY, owner)
        }
    }

    pub(super) fn offer(
        &mut self,
        store: &dyn Store,
        owners: &[(NodeCode, u64)],
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = owners.iter().find_map(|(o, _)| self.unauthorised_owner(*o)) {
            return Ok(refusal);
        }
        let mut actions = vec![Action::Event(Event::Offered {
            owners: owners.to_vec(),
        })];
        for &(owner, offered) in owners {
            let held = store.complete_through(owner)?;
            if offered < held {
                actions.push(Action::Event(Event::Regression {
                    owner,
                    offered,
                    held,
                }));
            }
            if offered > held {
                actions.push(Action::Send(Message::Want { owner, after: held }));
            }
            if held > 0 {
                // A child's own records are written only there: if this node holds more of
                // them, the child's store went back, and acknowledging all of them lets it
                // notice and restore. Another owner's records are the child's to re-fetch
                // from below.
                let through = if owner == self.child {
                    held
                } else {
                    held.min(offered)
                };
                let ministry = self.ministry_mark(store, owner, held)?;
                actions.push(Action::Send(Message::Ack {
                    owner,
                    through,
                    ministry,
                }));
            }
        }
        Ok(actions)
    }

    pub(super) fn batch(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        from: u64,
        to: u64,
        records: Vec<Record>,
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = self.unauthorised_owner(owner) {
            return Ok(refusal);
        }
        if let Some(r) = records
            .iter()
            .find(|r| r.envelope.owner != owner || !(from..=to).contains(&r.envelope.seq))
        {
            return Ok(close(
                RefusalCode::Protocol,
                format!(
                    "batch of {owner} {from}..={to} holds {}/{} seq {}",
                    r.envelope.owner, r.envelope.id, r.envelope.seq
                ),
            ));
        }
        let held = store.complete_through(owner)?;
        if to <= held {
            // Already stored (a retransmission after a lost ack): acknowledge again.
            let ministry = self.ministry_mark(store, owner, held)?;
            return Ok(vec![Action::Send(Message::Ack {
                owner,
                through: held,
                ministry,
            })]);
        }
        if from != held + 1 {
            return Ok(vec![Action::Send(Message::Want { owner, after: held })]);
        }
        let mut plan = plan_replica(store, (&self.standards.current(), &self.verifier), records)?;
        let mut actions = plan.alerts(owner);
        let written = plan.writes.len();
        let ministry = self.ministry_mark(store, owner, to)?;
        actions.push(Action::Commit {
            batch: WriteBatch {
                quarantine: plan.take_quarantine(self.child),
                records: plan.writes,
                watermarks: vec![(self.me, owner, to)],
                ..WriteBatch::default()
            },
            then: vec![Message::Ack {
                owner,
                through: to,
                ministry,
            }],
        });
        actions.push(Action::Event(Event::Received {
            owner,
            through: to,
            records: written,
        }));
        Ok(actions)
    }
}

impl ChildSession {
    pub(super) fn offer(&self, store: &dyn Store) -> Result<Message, StoreError> {
        let mut owners = Vec::new();
        for owner in store.owner_counts().into_keys() {
            owners.push((owner, store.complete_through(owner)?));
        }
        Ok(Message::Offer { owners })
    }

    pub(super) fn want(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        after: u64,
    ) -> Result<Vec<Action>, StoreError> {
        self.ticks_without_answer = 0;
        self.stirred = true;
        self.offered_unheard.remove(&owner);
        let upto = store.complete_through(owner)?;
        // A new request restarts the upload from the parent's watermark: after a lost
        // connection or a refused batch nothing is resent that the parent already has.
        self.uploads.insert(
            owner,
            Upload {
                sent: after,
                upto,
                unacked: 0,
            },
        );
        self.fill_window(store, owner)
    }

    pub(super) fn fill_window(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
    ) -> Result<Vec<Action>, StoreError> {
        let mut actions = Vec::new();
        // Records committed since the upload started go with it: the upload streams on
        // for as long as there are records the parent lacks.
        let complete = store.complete_through(owner)?;
        if let Some(up) = self.uploads.get_mut(&owner) {
            up.upto = up.upto.max(complete);
        }
        while let Some(up) = self.uploads.get_mut(&owner) {
            if up.sent >= up.upto || up.unacked >= WINDOW {
                break;
            }
            let (to, records) = store.changes(owner, up.sent, up.upto, self.batch_records)?;
            let (to, records) = super::first_batch(to, records);
            let from = up.sent + 1;
            up.sent = to;
            up.unacked += 1;
            actions.push(Action::Send(Message::Batch {
                owner,
                from,
                to,
                records,
            }));
        }
        Ok(actions)
    }

    pub(super) fn ack(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        through: u64,
        ministry: u64,
    ) -> Result<Vec<Action>, StoreError> {
        if !(owner == self.me || owner.is_within(self.me)) {
            return Ok(close(
                RefusalCode::Protocol,
                format!("an ack for {owner}, outside the subtree of {}", self.me),
            ));
        }
        self.ticks_without_answer = 0;
        if owner == self.me && !self.restoring {
            let here = store.complete_through(owner)?;
            if through > here {
                return Ok(self.behind_parent(here, through));
            }
        }
        let at_parent = store.watermark(self.parent, owner)?;
        let at_ministry = store.watermark(MINISTRY, owner)?;
        let mut actions = Vec::new();
        if through > at_parent || ministry > at_ministry {
            let mut watermarks = vec![(self.parent, owner, through.max(at_parent))];
            if self.parent != MINISTRY {
                watermarks.push((MINISTRY, owner, ministry.max(at_ministry)));
            }
            actions.push(Action::Commit {
                batch: WriteBatch {
                    watermarks,
                    ..WriteBatch::default()
                },
                then: Vec::new(),
            });
            actions.push(Action::Event(Event::Acknowledged {
                owner,
                through,
                ministry,
            }));
        }
        self.offered_unheard.remove(&owner);
        // An owner the parent holds becomes an upload at rest: the next commit streams on
        // from there without another offer.
        let up = self.uploads.entry(owner).or_insert(Upload {
            sent: through,
            upto: through,
            unacked: 0,
        });
        up.unacked = up.unacked.saturating_sub(1);
        // What the parent holds durably is never sent again.
        up.sent = up.sent.max(through);
        actions.extend(self.fill_window(store, owner)?);
        Ok(actions)
    }
}

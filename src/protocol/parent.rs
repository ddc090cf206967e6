//! The parent's side of a session with one child.

use std::sync::Arc;

use super::merge::plan_replica;
use super::{Action, Event, close};
use crate::model::standards::Standards;
use crate::model::{MINISTRY, NodeCode, Record};
use crate::storage::{Store, StoreError, WriteBatch};
use crate::wire::messages::{MIN_PROTOCOL_VERSION, Message, PROTOCOL_VERSION, RefusalCode};

/// One child's session at the parent. The child's node code comes from its certificate.
pub struct ParentSession {
    me: NodeCode,
    child: NodeCode,
    standards: Arc<Standards>,
    greeted: bool,
}

impl ParentSession {
    /// A session with the authenticated `child`.
    pub fn new(me: NodeCode, child: NodeCode, standards: Arc<Standards>) -> Self {
        ParentSession {
            me,
            child,
            standards,
            greeted: false,
        }
    }

    /// The child this session serves.
    pub fn child(&self) -> NodeCode {
        self.child
    }

    /// Handles one message from the child.
    pub fn handle(
        &mut self,
        store: &dyn Store,
        message: Message,
    ) -> Result<Vec<Action>, StoreError> {
        match (self.greeted, message) {
            (false, Message::Hello { protocol, node, .. }) => Ok(self.hello(store, protocol, node)),
            (false, other) => Ok(close(
                RefusalCode::Protocol,
                format!("expected Hello, got {}", name(&other)),
            )),
            (true, Message::Offer { owners }) => self.offer(store, &owners),
            (
                true,
                Message::Batch {
                    owner,
                    from,
                    to,
                    records,
                },
            ) => self.batch(store, owner, from, to, records),
            (true, Message::Ping) => Ok(Vec::new()),
            (true, Message::Refuse { code, reason }) => Ok(vec![Action::Close {
                code,
                reason: format!("the child refused: {reason}"),
            }]),
            (true, other) => Ok(close(
                RefusalCode::Protocol,
                format!("a child may not send {}", name(&other)),
            )),
        }
    }

    fn hello(&mut self, store: &dyn Store, (min, max): (u16, u16), node: NodeCode) -> Vec<Action> {
        if !(min..=max).contains(&PROTOCOL_VERSION) {
            return close(
                RefusalCode::Version,
                format!(
                    "no common protocol version: the child speaks {min}..={max}, this node {MIN_PROTOCOL_VERSION}..={PROTOCOL_VERSION}"
                ),
            );
        }
        if node != self.child {
            return close(
                RefusalCode::Identity,
                format!(
                    "the certificate is for {}, the handshake says {node}",
                    self.child
                ),
            );
        }
        self.greeted = true;
        let identity = store.identity();
        vec![
            Action::Send(Message::Welcome {
                protocol: PROTOCOL_VERSION,
                node: self.me,
                store_id: identity.store_id,
            }),
            Action::Event(Event::Connected { peer: self.child }),
        ]
    }

    fn unauthorised_owner(&self, owner: NodeCode) -> Option<Vec<Action>> {
        (!owner.is_within(self.child)).then(|| {
            close(
                RefusalCode::Unauthorised,
                format!(
                    "{} may not send records of {owner}, which is outside its subtree",
                    self.child
                ),
            )
        })
    }

    /// How far the ministry holds `owner`'s records, as far as this node knows.
    fn ministry_mark(
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

    fn offer(
        &mut self,
        store: &dyn Store,
        owners: &[(NodeCode, u64)],
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = owners.iter().find_map(|(o, _)| self.unauthorised_owner(*o)) {
            return Ok(refusal);
        }
        let mut actions = Vec::new();
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
                let ministry = self.ministry_mark(store, owner, held)?;
                actions.push(Action::Send(Message::Ack {
                    owner,
                    through: held.min(offered),
                    ministry,
                }));
            }
        }
        Ok(actions)
    }

    fn batch(
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
        let plan = plan_replica(store, &self.standards, records)?;
        let mut actions: Vec<Action> = plan
            .conflicts
            .into_iter()
            .map(|detail| Action::Event(Event::Conflict { detail }))
            .collect();
        for (r, reason) in plan.quarantined {
            actions.push(Action::Event(Event::Quarantined {
                owner,
                id: r.envelope.id,
                reason,
            }));
        }
        let written = plan.writes.len();
        let ministry = self.ministry_mark(store, owner, to)?;
        actions.push(Action::Commit {
            batch: WriteBatch {
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

/// A message's name, for error sentences.
pub(super) fn name(m: &Message) -> &'static str {
    match m {
        Message::Hello { .. } => "Hello",
        Message::Welcome { .. } => "Welcome",
        Message::Refuse { .. } => "Refuse",
        Message::Offer { .. } => "Offer",
        Message::Want { .. } => "Want",
        Message::Batch { .. } => "Batch",
        Message::Ack { .. } => "Ack",
        Message::Document(_) => "Document",
        Message::Ping => "Ping",
    }
}

//! The child's side of a session with its parent.

use std::collections::BTreeMap;

use super::parent::name;
use super::{Action, Event, WINDOW, close};
use crate::model::{MINISTRY, NodeCode};
use crate::storage::{Store, StoreError, WriteBatch};
use crate::wire::messages::{MIN_PROTOCOL_VERSION, Message, PROTOCOL_VERSION, RefusalCode};

/// Where the upload of one owner's records stands.
#[derive(Debug, Clone, Copy)]
struct Upload {
    /// Sent through this seq.
    sent: u64,
    /// Complete here through this seq when the parent asked.
    upto: u64,
    /// Batches sent and not yet acknowledged.
    unacked: usize,
}

/// The session with the parent, at the child.
pub struct ChildSession {
    me: NodeCode,
    parent: NodeCode,
    batch_records: usize,
    welcomed: bool,
    uploads: BTreeMap<NodeCode, Upload>,
}

impl ChildSession {
    /// A session of `me` with `parent`, sending batches of `batch_records` records.
    pub fn new(me: NodeCode, parent: NodeCode, batch_records: usize) -> Self {
        ChildSession {
            me,
            parent,
            batch_records: batch_records.max(1),
            welcomed: false,
            uploads: BTreeMap::new(),
        }
    }

    /// The opening message.
    pub fn start(&self, store: &dyn Store) -> Vec<Action> {
        vec![Action::Send(Message::Hello {
            protocol: (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
            node: self.me,
            store_id: store.identity().store_id,
        })]
    }

    /// The sync timer fired: offer what is new (the parent asks for what it lacks).
    pub fn on_tick(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        if !self.welcomed {
            return Ok(Vec::new());
        }
        Ok(vec![Action::Send(self.offer(store)?)])
    }

    fn offer(&self, store: &dyn Store) -> Result<Message, StoreError> {
        let mut owners = Vec::new();
        for owner in store.owner_counts().into_keys() {
            owners.push((owner, store.complete_through(owner)?));
        }
        Ok(Message::Offer { owners })
    }

    /// Handles one message from the parent.
    pub fn handle(
        &mut self,
        store: &dyn Store,
        message: Message,
    ) -> Result<Vec<Action>, StoreError> {
        match (self.welcomed, message) {
            (false, Message::Welcome { protocol, node, .. }) => self.welcome(store, protocol, node),
            (_, Message::Refuse { code, reason }) => Ok(vec![Action::Close {
                code,
                reason: format!("the parent refused: {reason}"),
            }]),
            (false, other) => Ok(close(
                RefusalCode::Protocol,
                format!("expected Welcome, got {}", name(&other)),
            )),
            (true, Message::Want { owner, after }) => self.want(store, owner, after),
            (
                true,
                Message::Ack {
                    owner,
                    through,
                    ministry,
                },
            ) => self.ack(store, owner, through, ministry),
            (true, Message::Ping) => Ok(Vec::new()),
            (true, other) => Ok(close(
                RefusalCode::Protocol,
                format!("a parent may not send {}", name(&other)),
            )),
        }
    }

    fn welcome(
        &mut self,
        store: &dyn Store,
        protocol: u16,
        node: NodeCode,
    ) -> Result<Vec<Action>, StoreError> {
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&protocol) {
            return Ok(close(
                RefusalCode::Version,
                format!(
                    "the parent chose protocol {protocol}, this node speaks {MIN_PROTOCOL_VERSION}..={PROTOCOL_VERSION}"
                ),
            ));
        }
        if node != self.parent {
            return Ok(close(
                RefusalCode::Identity,
                format!("expected parent {}, it says it is {node}", self.parent),
            ));
        }
        self.welcomed = true;
        Ok(vec![
            Action::Event(Event::Connected { peer: self.parent }),
            Action::Send(self.offer(store)?),
        ])
    }

    fn want(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        after: u64,
    ) -> Result<Vec<Action>, StoreError> {
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

    fn fill_window(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
    ) -> Result<Vec<Action>, StoreError> {
        let mut actions = Vec::new();
        while let Some(up) = self.uploads.get_mut(&owner) {
            if up.sent >= up.upto || up.unacked >= WINDOW {
                break;
            }
            let (to, records) = store.changes(owner, up.sent, up.upto, self.batch_records)?;
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

    fn ack(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        through: u64,
        ministry: u64,
    ) -> Result<Vec<Action>, StoreError> {
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
        if let Some(up) = self.uploads.get_mut(&owner) {
            up.unacked = up.unacked.saturating_sub(1);
        }
        actions.extend(self.fill_window(store, owner)?);
        Ok(actions)
    }
}

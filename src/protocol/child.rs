//! The child's side of a session with its parent.

use std::collections::BTreeMap;

use super::parent::{from_wire, name, wire_buckets};
use crate::model::RecordKey;
use crate::recon::differing;

/// Leaves listed in one anti-entropy message; the rest wait for the next round.
const MAX_LEAVES: usize = 256;
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
        // While an upload is under way its acks drive it; a new offer would only make the
        // parent ask again for what is already in flight.
        let uploading = self
            .uploads
            .values()
            .any(|u| u.unacked > 0 || u.sent < u.upto);
        if !self.welcomed || uploading {
            return Ok(Vec::new());
        }
        Ok(vec![Action::Send(self.offer(store)?)])
    }

    /// The anti-entropy timer fired: compare summaries with the parent.
    pub fn on_anti_entropy(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        if !self.welcomed {
            return Ok(Vec::new());
        }
        Ok(vec![Action::Send(self.digests(store)?)])
    }

    fn digests(&self, store: &dyn Store) -> Result<Message, StoreError> {
        let mut owners = Vec::new();
        for owner in store.owner_counts().into_keys() {
            let d = store.digest(Some(owner), None);
            owners.push((owner, store.complete_through(owner)?, d.records, d.sum));
        }
        Ok(Message::Digests { owners })
    }

    /// Anti-entropy, steps 2 and 4: the parent's buckets; answer with ours one level down
    /// where they differ, or with the records of differing leaves.
    fn buckets(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        depth: u8,
        parents: &[u16],
        theirs: &[(u32, u64)],
    ) -> Result<Vec<Action>, StoreError> {
        let valid = matches!(depth, 1 | 3)
            && theirs.len() == parents.len() * 16
            && parents.iter().all(|p| *p < 256);
        if !valid {
            return Ok(close(
                RefusalCode::Protocol,
                format!("unexpected Buckets at depth {depth}"),
            ));
        }
        let mine = store.buckets(owner, u32::from(depth), parents);
        let differing = differing(parents, &mine, &from_wire(theirs));
        if differing.is_empty() {
            return Ok(Vec::new());
        }
        if depth == 1 {
            let buckets = wire_buckets(&store.buckets(owner, 2, &differing));
            return Ok(vec![Action::Send(Message::Buckets {
                owner,
                depth: 2,
                parents: differing,
                buckets,
            })]);
        }
        let mut leaves = Vec::new();
        for leaf in differing.into_iter().take(MAX_LEAVES) {
            leaves.push((leaf, store.leaf_items(owner, leaf)?));
        }
        Ok(vec![Action::Send(Message::Leaves { owner, leaves })])
    }

    /// Anti-entropy, step 6: send the records the parent asked for, in bounded messages.
    fn fetch(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        keys: &[RecordKey],
    ) -> Result<Vec<Action>, StoreError> {
        let mut actions = Vec::new();
        for chunk in keys.chunks(self.batch_records) {
            let mut records = Vec::with_capacity(chunk.len());
            for key in chunk {
                if let Some(r) = store.get_record(owner, *key)? {
                    records.push(r);
                }
            }
            actions.push(Action::Send(Message::Repair { owner, records }));
        }
        Ok(actions)
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
            (
                true,
                Message::Buckets {
                    owner,
                    depth,
                    parents,
                    buckets,
                },
            ) => self.buckets(store, owner, depth, &parents, &buckets),
            (true, Message::Fetch { owner, keys }) => self.fetch(store, owner, &keys),
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

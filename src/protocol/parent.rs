//! The parent's side of a session with one child.

use std::sync::Arc;

use std::collections::BTreeMap;

use super::merge::plan_replica;
use super::{Action, Event, close};
use crate::model::RecordKey;
use crate::model::standards::Standards;
use crate::model::{MINISTRY, NodeCode, Record};
use crate::recon::{Bucket, differing};
use crate::storage::LeafItem;
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
            (true, Message::Digests { owners }) => self.digests(store, &owners),
            (
                true,
                Message::Buckets {
                    owner,
                    depth,
                    parents,
                    buckets,
                },
            ) => self.buckets(store, owner, depth, &parents, &buckets),
            (true, Message::Leaves { owner, leaves }) => self.leaves(store, owner, leaves),
            (true, Message::Repair { owner, records }) => self.repair(store, owner, records),
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

impl ParentSession {
    /// Anti-entropy, step 1: compare per-owner digests; open the tree where they differ.
    /// Owners still catching up on the fast path are left to it.
    fn digests(
        &mut self,
        store: &dyn Store,
        owners: &[(NodeCode, u64, u64, u128)],
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = owners
            .iter()
            .find_map(|(o, ..)| self.unauthorised_owner(*o))
        {
            return Ok(refusal);
        }
        let mut actions = Vec::new();
        for &(owner, complete, records, sum) in owners {
            let mine = store.digest(Some(owner), None);
            if store.complete_through(owner)? < complete
                || (mine.records, mine.sum) == (records, sum)
            {
                continue;
            }
            let buckets = wire_buckets(&store.buckets(owner, 1, &[0]));
            actions.push(Action::Send(Message::Buckets {
                owner,
                depth: 1,
                parents: vec![0],
                buckets,
            }));
        }
        Ok(actions)
    }

    /// Anti-entropy, step 3: the child's depth-2 buckets under the depth-1 buckets that
    /// differed; answer with depth 3 (the leaves) under those that still differ.
    fn buckets(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        depth: u8,
        parents: &[u16],
        theirs: &[(u32, u64)],
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = self.unauthorised_owner(owner) {
            return Ok(refusal);
        }
        if depth != 2 || theirs.len() != parents.len() * 16 || parents.iter().any(|p| *p >= 16) {
            return Ok(close(
                RefusalCode::Protocol,
                format!("unexpected Buckets at depth {depth}"),
            ));
        }
        let mine = store.buckets(owner, 2, parents);
        let differing = differing(parents, &mine, &from_wire(theirs));
        if differing.is_empty() {
            return Ok(Vec::new());
        }
        let buckets = wire_buckets(&store.buckets(owner, 3, &differing));
        Ok(vec![Action::Send(Message::Buckets {
            owner,
            depth: 3,
            parents: differing,
            buckets,
        })])
    }

    /// Anti-entropy, step 5: the child's records in differing leaves; fetch those that are
    /// missing here or newer there.
    fn leaves(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        leaves: Vec<(u16, Vec<LeafItem>)>,
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = self.unauthorised_owner(owner) {
            return Ok(refusal);
        }
        let mut wanted = Vec::new();
        let mut actions = Vec::new();
        for (leaf, items) in leaves {
            let mine: BTreeMap<RecordKey, (u64, u64)> = store
                .leaf_items(owner, leaf)?
                .into_iter()
                .map(|(k, v, f)| (k, (v, f)))
                .collect();
            for (key, version, fp) in items {
                match mine.get(&key) {
                    Some((v, _)) if *v > version => {}
                    Some((v, f)) if *v == version && *f == fp => {}
                    Some((v, _)) if *v == version => actions.push(Action::Event(Event::Conflict {
                        detail: format!("{owner} record key {key:?} version {version} differs between {} and {}", self.child, self.me),
                    })),
                    _ => wanted.push(key),
                }
            }
        }
        if !wanted.is_empty() {
            actions.push(Action::Send(Message::Fetch {
                owner,
                keys: wanted,
            }));
        }
        Ok(actions)
    }

    /// Anti-entropy, step 7: store the repaired records (newer versions only).
    fn repair(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        records: Vec<Record>,
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = self.unauthorised_owner(owner) {
            return Ok(refusal);
        }
        if records.iter().any(|r| r.envelope.owner != owner) {
            return Ok(close(
                RefusalCode::Protocol,
                format!("a repair of {owner} holds another owner's record"),
            ));
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
        let repaired = plan.writes.len();
        actions.push(Action::Commit {
            batch: WriteBatch {
                records: plan.writes,
                ..WriteBatch::default()
            },
            then: Vec::new(),
        });
        actions.push(Action::Event(Event::Repaired {
            owner,
            records: repaired,
        }));
        Ok(actions)
    }
}

/// Buckets as they travel.
pub(super) fn wire_buckets(buckets: &[Bucket]) -> Vec<(u32, u64)> {
    buckets.iter().map(|b| (b.count, b.fp)).collect()
}

/// Buckets as they arrived.
pub(super) fn from_wire(buckets: &[(u32, u64)]) -> Vec<Bucket> {
    buckets
        .iter()
        .map(|&(count, fp)| Bucket { count, fp })
        .collect()
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
        Message::Digests { .. } => "Digests",
        Message::Buckets { .. } => "Buckets",
        Message::Leaves { .. } => "Leaves",
        Message::Fetch { .. } => "Fetch",
        Message::Repair { .. } => "Repair",
    }
}

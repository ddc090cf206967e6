//! The parent's side of a session with one child.

use std::sync::Arc;

use std::collections::BTreeSet;

use super::merge::{commit_replica, leaf_entries, plan_replica};
use super::{Action, Event, close, newer_documents, store_document};
use crate::core::model::document::StoredDocument;
use crate::core::model::document::{issued_above, may_publish, reported_up};
use crate::core::model::signature::DocumentVerifier;
use crate::core::model::standards::StandardsCell;
use crate::core::model::{MINISTRY, NodeCode, Record, RecordKey};
use crate::core::reconcile::{Bucket, differing};
use crate::core::store::{Store, StoreError, WriteBatch};
use crate::core::wire::{LeafFp, MIN_PROTOCOL_VERSION, Message, PROTOCOL_VERSION, RefusalCode};

/// One child's session at the parent. The child's node code comes from its certificate.
pub struct ParentSession {
    me: NodeCode,
    child: NodeCode,
    standards: Arc<StandardsCell>,
    verifier: DocumentVerifier,
    greeted: bool,
    /// A restore in progress: `(sent through, complete here)`.
    restoring: Option<(u64, u64)>,
    /// The child's store id differs from the one it had: `(known, presented)`.
    identity_changed: Option<([u8; 16], [u8; 16])>,
}

impl ParentSession {
    /// A session with the authenticated `child`; `verifier` checks the documents a
    /// province reports up.
    pub fn new(
        me: NodeCode,
        child: NodeCode,
        standards: Arc<StandardsCell>,
        verifier: DocumentVerifier,
    ) -> Self {
        ParentSession {
            me,
            child,
            standards,
            verifier,
            greeted: false,
            restoring: None,
            identity_changed: None,
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
        if let Some(refusal) = self.identity_gate(&message) {
            return Ok(refusal);
        }
        match (self.greeted, message) {
            (
                false,
                Message::Hello {
                    protocol,
                    node,
                    store_id,
                },
            ) => self.hello(store, protocol, node, store_id),
            (false, other) => Ok(close(
                RefusalCode::Protocol,
                format!("expected Hello, got {}", other.name()),
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
            (
                true,
                Message::Leaves {
                    owner,
                    salt,
                    leaves,
                },
            ) => self.leaves(store, owner, salt, leaves),
            (true, Message::Repair { owner, records }) => self.repair(store, owner, records),
            (true, Message::Documents { have }) => self.documents(store, &have),
            (true, Message::Document(doc)) => self.returned_document(store, doc),
            (true, Message::DocumentsReturned { count }) => {
                Ok(vec![Action::Event(Event::DocumentsReturned {
                    peer: self.child,
                    count,
                })])
            }
            (true, Message::Restore { owner, after }) => self.restore(store, owner, after),
            (true, Message::Ack { owner, through, .. }) => {
                self.restore_acked(store, owner, through)
            }
            (true, Message::Refuse { code, reason }) => Ok(vec![Action::Close {
                code,
                reason: format!("the child refused: {reason}"),
            }]),
            (true, other) => Ok(close(
                RefusalCode::Protocol,
                format!("a child may not send {}", other.name()),
            )),
        }
    }

    /// While a child's store identity has changed, only a restore, documents and pings
    /// are accepted from it: its records would be those of another store.
    fn identity_gate(&self, message: &Message) -> Option<Vec<Action>> {
        let (old, new) = self.identity_changed?;
        let allowed = matches!(
            message,
            Message::Restore { .. }
                | Message::Documents { .. }
                | Message::Ping
                | Message::Refuse { .. }
        );
        (!allowed).then(|| {
            close(
                RefusalCode::Identity,
                format!(
                    "the store of {} changed from {} to {} (restored backup, re-initialised or cloned node?); \
                     nothing from it is accepted until it restores its records from here (`lmsync init --restore`)",
                    self.child,
                    hex::encode(old),
                    hex::encode(new)
                ),
            )
        })
    }

    fn hello(
        &mut self,
        store: &dyn Store,
        (min, max): (u16, u16),
        node: NodeCode,
        store_id: [u8; 16],
    ) -> Result<Vec<Action>, StoreError> {
        let close = |code, reason| Ok(close(code, reason));
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
        let mut actions = Vec::new();
        match store.peer_store_id(self.child)? {
            Some(known) if known != store_id => {
                self.identity_changed = Some((known, store_id));
                actions.push(Action::Event(Event::IdentityChanged {
                    peer: self.child,
                    old: known,
                    new: store_id,
                }));
            }
            Some(_) => {}
            None => actions.push(Action::Commit {
                batch: WriteBatch {
                    peer_store_ids: vec![(self.child, store_id)],
                    ..WriteBatch::default()
                },
                then: Vec::new(),
            }),
        }
        actions.push(Action::Send(Message::Welcome {
            protocol: PROTOCOL_VERSION,
            node: self.me,
            store_id: store.identity().store_id,
        }));
        actions.push(Action::Event(Event::Connected { peer: self.child }));
        Ok(actions)
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
        let mut plan = plan_replica(store, &self.standards.current(), records)?;
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
        let own_listed = owners.iter().any(|(o, ..)| *o == self.child);
        if !own_listed && store.digest(Some(self.child), None).records > 0 {
            // The child lists none of its own records while this node holds some: open
            // the tree so that they are repaired down (see `leaves`).
            actions.push(self.open_tree(store, self.child));
        }
        for &(owner, complete, records, sum) in owners {
            let mine = store.digest(Some(owner), None);
            if store.complete_through(owner)? < complete
                || (mine.records, mine.sum) == (records, sum)
            {
                continue;
            }
            actions.push(self.open_tree(store, owner));
        }
        Ok(actions)
    }

    /// The depth-1 buckets of `owner`: the first step down the reconciliation tree.
    fn open_tree(&self, store: &dyn Store, owner: NodeCode) -> Action {
        let buckets = wire_buckets(&store.buckets(owner, 1, &[0]));
        Action::Send(Message::Buckets {
            owner,
            depth: 1,
            parents: vec![0],
            buckets,
        })
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

    /// Anti-entropy, step 5: the child's fingerprints in differing leaves; fetch those
    /// this node lacks (missing records, other versions). Which version wins is decided
    /// when the records arrive. The child's *own* records that it lacks are sent down:
    /// only a damaged store loses them (a copy its scrub removed, an end sled dropped), and
    /// this node is where they are kept.
    fn leaves(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        salt: u64,
        leaves: Vec<(u16, Vec<LeafFp>)>,
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = self.unauthorised_owner(owner) {
            return Ok(refusal);
        }
        let mut wanted = Vec::new();
        let mut lacking = Vec::new();
        for (leaf, theirs) in leaves {
            let mine = leaf_entries(store, owner, leaf, salt)?;
            let my_fps: BTreeSet<LeafFp> = mine.iter().map(|(_, f)| *f).collect();
            let theirs: BTreeSet<LeafFp> = theirs.into_iter().collect();
            let missing: Vec<LeafFp> = theirs.difference(&my_fps).copied().collect();
            if !missing.is_empty() {
                wanted.push((leaf, missing));
            }
            if owner == self.child {
                lacking.extend(
                    mine.into_iter()
                        .filter(|(_, f)| !theirs.contains(f))
                        .map(|(k, _)| k),
                );
            }
        }
        let mut actions: Vec<Action> = chunk_leaves(wanted)
            .into_iter()
            .map(|leaves| {
                Action::Send(Message::Fetch {
                    owner,
                    salt,
                    leaves,
                })
            })
            .collect();
        // Bounded per round: what a parent holds in memory for one answer stays small, and
        // the next round sends more (a store that lost much restores instead).
        lacking.truncate(REPAIR_DOWN_PER_ROUND);
        actions.extend(self.repair_down(store, &lacking)?);
        Ok(actions)
    }

    /// Sends the child its own records at `keys`, in bounded messages.
    fn repair_down(
        &self,
        store: &dyn Store,
        keys: &[RecordKey],
    ) -> Result<Vec<Action>, StoreError> {
        let mut records = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(r) = store.get_record(self.child, *key)? {
                records.push(r);
            }
        }
        Ok(super::split_by_size(records, RESTORE_BATCH)
            .into_iter()
            .map(|records| {
                Action::Send(Message::Repair {
                    owner: self.child,
                    records,
                })
            })
            .collect())
    }

    /// The child lost its store: stream its own records back, one acknowledged batch at a
    /// time. Only a node's own records are restored to it, never a sibling's.
    fn restore(
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

    fn restore_acked(
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

    fn restore_next(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
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

    /// Sends the child every document issued above it that it lacks or holds older, and
    /// lists what the child may give back: the documents this node issued (a rebuilt store
    /// gets them back from its children) and, from a province, those it reported up.
    fn documents(
        &mut self,
        store: &dyn Store,
        have: &[(String, String, u64)],
    ) -> Result<Vec<Action>, StoreError> {
        let held = store.documents()?;
        let (me, child) = (self.me, self.child);
        let returnable = held
            .iter()
            .filter(|d| d.issuer == me || (d.issuer == child && may_publish(child)))
            .map(|d| (d.kind.clone(), d.id.clone(), d.version))
            .collect();
        let mut actions = vec![Action::Send(Message::Documents { have: returnable })];
        actions.extend(newer_documents(held, have, |doc| {
            issued_above(doc.issuer, child)
        }));
        Ok(actions)
    }

    /// A document from the child, answering this node's list: one the child issued and
    /// reports up (pilot designations, targets), or one this node issued and lacks or
    /// holds older (its store was rebuilt or went back). Stored only if it is one of
    /// these, its signature verifies, and it is newer than the one held.
    fn returned_document(
        &mut self,
        store: &dyn Store,
        doc: StoredDocument,
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(reason) = self.refusal_of_returned(&doc) {
            return Ok(close(RefusalCode::Unauthorised, reason));
        }
        let held = store.get_document(&doc.kind, &doc.id)?;
        match held {
            Some(h) if h.issuer != doc.issuer => Ok(vec![Action::Event(Event::Conflict {
                detail: format!(
                    "document {}/{} is issued here by {}; {} sent one by {} under the same id",
                    doc.kind, doc.id, h.issuer, self.child, doc.issuer
                ),
            })]),
            Some(h) if h.version >= doc.version => Ok(Vec::new()),
            Some(h) if doc.issuer == self.me => {
                // This node published an older version after its store went back: the
                // newer one its children hold wins everywhere, so the operator must
                // publish again to supersede it.
                let mut actions = vec![Action::Event(Event::Conflict {
                    detail: format!(
                        "{} returned version {} of this node's document {}/{}, newer than the \
                         version {} held here (the store went back): the returned one is in \
                         force; publish again to change it",
                        self.child, doc.version, doc.kind, doc.id, h.version
                    ),
                })];
                actions.extend(store_document(doc));
                Ok(actions)
            }
            _ => Ok(store_document(doc)),
        }
    }

    /// Why the child may not send `doc`, if it may not.
    fn refusal_of_returned(&self, doc: &StoredDocument) -> Option<String> {
        let reported = doc.issuer == self.child && may_publish(self.child);
        if !reported && doc.issuer != self.me {
            return Some(format!(
                "{} may not send a document issued by {}",
                self.child, doc.issuer
            ));
        }
        if reported && !reported_up(&doc.kind) {
            return Some(format!("{} documents are not reported up", doc.kind));
        }
        self.verifier.verify(doc).err()
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
        commit_replica(
            store,
            &self.standards.current(),
            (owner, self.child),
            records,
            Vec::new(),
        )
    }
}

/// Fingerprints per anti-entropy message (8 bytes each: about 2 MiB, well under a frame).
pub(super) const FINGERPRINTS_PER_MESSAGE: usize = 256 * 1024;

/// Splits per-leaf fingerprint lists into messages of bounded size.
pub(super) fn chunk_leaves(leaves: Vec<(u16, Vec<LeafFp>)>) -> Vec<Vec<(u16, Vec<LeafFp>)>> {
    let mut out = vec![Vec::new()];
    let mut size = 0;
    for (leaf, fps) in leaves {
        if fps.is_empty() {
            // A leaf empty here still differs from the peer's: say so.
            if let Some(last) = out.last_mut() {
                last.push((leaf, Vec::new()));
            }
            continue;
        }
        for part in fps.chunks(FINGERPRINTS_PER_MESSAGE) {
            if size + part.len() > FINGERPRINTS_PER_MESSAGE && size > 0 {
                out.push(Vec::new());
                size = 0;
            }
            size += part.len();
            if let Some(last) = out.last_mut() {
                last.push((leaf, part.to_vec()));
            }
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// Records per restore batch.
const RESTORE_BATCH: usize = 1000;
/// A child's own records sent down per anti-entropy answer, at most.
const REPAIR_DOWN_PER_ROUND: usize = 5 * RESTORE_BATCH;

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

//! The child's side of a session with its parent.

use std::collections::BTreeMap;

use super::parent::{chunk_leaves, from_wire, wire_buckets};
use crate::core::model::RecordKey;
use crate::core::model::document::StoredDocument;
use crate::core::model::document::{issued_above, reported_up};
use crate::core::model::signature::DocumentVerifier;
use std::sync::Arc;

use super::merge::{commit_replica, leaf_entries, leaf_fingerprints};
use crate::core::model::Record;
use crate::core::model::standards::StandardsCell;

/// The documents this node holds, as the parent needs to know them.
fn documents_held(store: &dyn Store) -> Result<Message, StoreError> {
    let have = store
        .documents()?
        .into_iter()
        .map(|d| (d.kind, d.id, d.version))
        .collect();
    Ok(Message::Documents { have })
}
use crate::core::reconcile::differing;

use super::{Action, Event, WINDOW, close, newer_documents, store_document};
use crate::core::model::{MINISTRY, NodeCode};
use crate::core::store::{Store, StoreError, WriteBatch};
use crate::core::wire::{LeafFp, MIN_PROTOCOL_VERSION, Message, PROTOCOL_VERSION, RefusalCode};

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

/// Ticks an upload may go unanswered before the child offers afresh (at the default
/// 5 s interval, 5 minutes; a batch on a slow link or a busy parent is answered far
/// sooner, and a false alarm only costs a re-sent window).
const STALLED_AFTER_TICKS: u32 = 60;

/// The session with the parent, at the child.
pub struct ChildSession {
    verifier: DocumentVerifier,
    me: NodeCode,
    parent: NodeCode,
    batch_records: usize,
    welcomed: bool,
    uploads: BTreeMap<NodeCode, Upload>,
    /// Ticks since the parent last answered an upload (an ack or a want).
    ticks_without_answer: u32,
    standards: Arc<StandardsCell>,
    restoring: bool,
    /// Counts anti-entropy rounds; salts the leaf fingerprints of each round.
    anti_entropy_round: u64,
}

impl ChildSession {
    /// A session of `me` with `parent`, sending batches of `batch_records` records.
    pub fn new(
        me: NodeCode,
        parent: NodeCode,
        batch_records: usize,
        verifier: DocumentVerifier,
        standards: Arc<StandardsCell>,
    ) -> Self {
        ChildSession {
            verifier,
            me,
            parent,
            batch_records: batch_records.max(1),
            welcomed: false,
            uploads: BTreeMap::new(),
            ticks_without_answer: 0,
            standards,
            restoring: false,
            anti_entropy_round: 0,
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

    /// Restore: store a batch of this node's own records from the parent, then ask for
    /// the next.
    fn restore_batch(
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
            &self.standards.current(),
            (self.me, self.parent),
            records,
            vec![ack],
        )
    }

    /// The parent holds more of this node's own records than it does: the store went
    /// back. Mark it for restore (writes are refused from the commit on) and fetch them.
    fn behind_parent(&mut self, here: u64, at_parent: u64) -> Vec<Action> {
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

    /// Anti-entropy sent down this node's own records that it lacked (see the parent's
    /// `leaves`): stored if newer than what is held, like any replica.
    fn repaired_down(
        &mut self,
        store: &dyn Store,
        records: Vec<Record>,
    ) -> Result<Vec<Action>, StoreError> {
        commit_replica(
            store,
            &self.standards.current(),
            (self.me, self.parent),
            records,
            Vec::new(),
        )
    }

    /// Restore complete: clear the marker and sync normally from now on.
    fn restored(&mut self, store: &dyn Store, through: u64) -> Result<Vec<Action>, StoreError> {
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
            Action::Send(documents_held(store)?),
        ])
    }

    /// The sync timer fired: offer what is new (the parent asks for what it lacks).
    pub fn on_tick(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        // While an upload is under way its acks drive it; a new offer would only make the
        // parent ask again for what is already in flight.
        let uploading = self
            .uploads
            .values()
            .any(|u| u.unacked > 0 || u.sent < u.upto);
        if !self.welcomed || self.restoring {
            return Ok(Vec::new());
        }
        let mut actions = Vec::new();
        if uploading {
            self.ticks_without_answer += 1;
            if self.ticks_without_answer < STALLED_AFTER_TICKS {
                return Ok(actions);
            }
            // Safety net: an upload the parent stopped answering would otherwise wait
            // forever (and anti-entropy leaves owners on the fast path to it). Offering
            // again is idempotent: the parent answers from its durable watermark.
            let owners: Vec<NodeCode> = self.uploads.keys().copied().collect();
            actions.push(Action::Event(Event::UploadRestarted { owners }));
            self.uploads.clear();
        }
        self.ticks_without_answer = 0;
        actions.push(Action::Send(self.offer(store)?));
        actions.push(Action::Send(documents_held(store)?));
        Ok(actions)
    }

    /// A document from above: store it only if an ancestor issued and signed it.
    fn document(
        &mut self,
        store: &dyn Store,
        doc: StoredDocument,
    ) -> Result<Vec<Action>, StoreError> {
        if !issued_above(doc.issuer, self.me) {
            return Ok(close(
                RefusalCode::Unauthorised,
                format!("{} may not issue documents to {}", doc.issuer, self.me),
            ));
        }
        if let Err(reason) = self.verifier.verify(&doc) {
            return Ok(close(RefusalCode::Unauthorised, reason));
        }
        let held = store
            .get_document(&doc.kind, &doc.id)?
            .map_or(0, |d| d.version);
        if doc.version <= held {
            return Ok(Vec::new());
        }
        Ok(store_document(doc))
    }

    /// The parent lists the documents it issued and those this node reported up: send
    /// back each of them held newer here (the parent's store was rebuilt or went back; a
    /// report not yet up), then say that is all.
    fn parent_lists_documents(
        &mut self,
        store: &dyn Store,
        at_parent: &[(String, String, u64)],
    ) -> Result<Vec<Action>, StoreError> {
        let (me, parent) = (self.me, self.parent);
        let mut actions = newer_documents(store.documents()?, at_parent, |doc| {
            doc.issuer == parent || (doc.issuer == me && reported_up(&doc.kind))
        });
        let count = u32::try_from(actions.len()).unwrap_or(u32::MAX);
        actions.push(Action::Send(Message::DocumentsReturned { count }));
        Ok(actions)
    }

    /// The anti-entropy timer fired: compare summaries with the parent.
    pub fn on_anti_entropy(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        if !self.welcomed || self.restoring {
            return Ok(Vec::new());
        }
        Ok(vec![Action::Send(self.digests(store)?)])
    }

    fn digests(&mut self, store: &dyn Store) -> Result<Message, StoreError> {
        self.anti_entropy_round += 1;
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
        if self.restoring && owner == self.me {
            // The restore is bringing this node's own records back; comparing them now
            // would only have the parent send them twice.
            return Ok(Vec::new());
        }
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
        let salt = self.anti_entropy_round;
        let mut leaves = Vec::new();
        for leaf in differing {
            leaves.push((leaf, leaf_fingerprints(store, owner, leaf, salt)?));
        }
        Ok(chunk_leaves(leaves)
            .into_iter()
            .map(|leaves| {
                Action::Send(Message::Leaves {
                    owner,
                    salt,
                    leaves,
                })
            })
            .collect())
    }

    /// Anti-entropy, step 6: send the records whose fingerprints the parent asked for, in
    /// bounded messages.
    fn fetch(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        salt: u64,
        leaves: &[(u16, Vec<LeafFp>)],
    ) -> Result<Vec<Action>, StoreError> {
        let mut keys: Vec<RecordKey> = Vec::new();
        for (leaf, fps) in leaves {
            let wanted: std::collections::BTreeSet<&LeafFp> = fps.iter().collect();
            let entries = leaf_entries(store, owner, *leaf, salt)?;
            keys.extend(
                entries
                    .into_iter()
                    .filter(|(_, f)| wanted.contains(f))
                    .map(|(k, _)| k),
            );
        }
        let mut actions = Vec::new();
        for chunk in keys.chunks(self.batch_records) {
            let mut records = Vec::with_capacity(chunk.len());
            for key in chunk {
                if let Some(r) = store.get_record(owner, *key)? {
                    records.push(r);
                }
            }
            let mut runs = super::split_by_size(records, self.batch_records);
            if runs.is_empty() {
                // Answer even when every record went away meanwhile.
                runs.push(Vec::new());
            }
            for run in runs {
                actions.push(Action::Send(Message::Repair {
                    owner,
                    records: run,
                }));
            }
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
                format!("expected Welcome, got {}", other.name()),
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
            (true, Message::Document(doc)) => self.document(store, doc),
            (true, Message::Documents { have }) => self.parent_lists_documents(store, &have),
            (
                true,
                Message::Batch {
                    owner,
                    from,
                    to,
                    records,
                },
            ) if self.restoring && owner == self.me => self.restore_batch(store, from, to, records),
            (true, Message::Restored { owner, through }) if self.restoring && owner == self.me => {
                self.restored(store, through)
            }
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
                Message::Fetch {
                    owner,
                    salt,
                    leaves,
                },
            ) => self.fetch(store, owner, salt, &leaves),
            (true, Message::Repair { owner, records }) if owner == self.me => {
                self.repaired_down(store, records)
            }
            (true, other) => Ok(close(
                RefusalCode::Protocol,
                format!("a parent may not send {}", other.name()),
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
        if store.restore_pending()? {
            // Nothing is offered until the node's own records are back: an empty store
            // must never look like the truth to the parent.
            self.restoring = true;
            let after = store.last_seq(self.me);
            return Ok(vec![
                Action::Event(Event::Connected { peer: self.parent }),
                Action::Send(Message::Restore {
                    owner: self.me,
                    after,
                }),
            ]);
        }
        Ok(vec![
            Action::Event(Event::Connected { peer: self.parent }),
            Action::Send(self.offer(store)?),
            Action::Send(self.digests(store)?),
            Action::Send(documents_held(store)?),
        ])
    }

    fn want(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        after: u64,
    ) -> Result<Vec<Action>, StoreError> {
        self.ticks_without_answer = 0;
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

    fn ack(
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
        if let Some(up) = self.uploads.get_mut(&owner) {
            up.unacked = up.unacked.saturating_sub(1);
        }
        actions.extend(self.fill_window(store, owner)?);
        Ok(actions)
    }
}

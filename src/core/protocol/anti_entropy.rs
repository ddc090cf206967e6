//! Anti-entropy: both sides compare per-owner digests and, where they differ, descend
//! the 16-way bucket tree together to the differing leaves, whose fingerprints say which
//! records to fetch. The parent fetches what it lacks; a child's own records that it lacks
//! are repaired down. The descent is one algorithm ([`descend`]) that both sides run on
//! alternate levels: the parent opens at depth 1, the child answers at depth 2, the parent
//! at depth 3 (the leaves), and the child lists the leaves' fingerprints.

use std::collections::BTreeSet;

use super::child::ChildSession;
use super::merge::{commit_replica, leaf_entries, leaf_fingerprints};
use super::parent::ParentSession;
use super::restore::RESTORE_BATCH;
use super::{Action, close};
use crate::core::model::{NodeCode, Record, RecordKey};
use crate::core::reconcile::{Bucket, differing};
use crate::core::store::{Store, StoreError};
use crate::core::wire::{LeafFp, Message, RefusalCode};

impl ParentSession {
    /// Anti-entropy, step 1: compare per-owner digests; open the tree where they differ.
    /// Owners still catching up on the fast path are left to it.
    pub(super) fn digests(
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
    pub(super) fn open_tree(&self, store: &dyn Store, owner: NodeCode) -> Action {
        Action::Send(buckets_message(store, owner, 1, vec![0]))
    }

    /// Anti-entropy, step 3: the child's depth-2 buckets under the depth-1 buckets that
    /// differed; answer with depth 3 (the leaves) under those that still differ.
    pub(super) fn buckets(
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
        Ok(
            match descend(store, owner, (depth, parents, theirs), &[2]) {
                Descent::Refused(reason) => close(RefusalCode::Protocol, reason),
                Descent::Deeper(message) => vec![Action::Send(message)],
                // The parent never receives leaf-depth buckets (`descend` refused them).
                Descent::Same | Descent::Leaves(_) => Vec::new(),
            },
        )
    }

    /// Anti-entropy, step 5: the child's fingerprints in differing leaves; fetch those
    /// this node lacks (missing records, other versions). Which version wins is decided
    /// when the records arrive. The child's *own* records that it lacks are sent down:
    /// only a damaged store loses them (a copy its scrub removed, an end sled dropped), and
    /// this node is where they are kept.
    pub(super) fn leaves(
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
    pub(super) fn repair_down(
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

    /// Anti-entropy, step 7: store the repaired records (newer versions only).
    pub(super) fn repair(
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

impl ChildSession {
    /// The anti-entropy timer fired: compare summaries with the parent.
    pub fn on_anti_entropy(&mut self, store: &dyn Store) -> Result<Vec<Action>, StoreError> {
        if !self.welcomed || self.restoring {
            return Ok(Vec::new());
        }
        Ok(vec![Action::Send(self.digests(store)?)])
    }

    pub(super) fn digests(&mut self, store: &dyn Store) -> Result<Message, StoreError> {
        self.anti_entropy_round += 1;
        let mut owners = Vec::new();
        for owner in store.owner_counts().into_keys() {
            let d = store.digest(Some(owner), None);
            owners.push((owner, store.complete_through(owner)?, d.records, d.sum));
        }
        Ok(Message::Digests { owners })
    }

    /// Anti-entropy, steps 2 and 4: the parent's buckets; answer with ours one level down
    /// where they differ, or with the fingerprints of differing leaves.
    pub(super) fn buckets(
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
        match descend(store, owner, (depth, parents, theirs), &[1, LEAF_DEPTH]) {
            Descent::Refused(reason) => Ok(close(RefusalCode::Protocol, reason)),
            Descent::Same => Ok(Vec::new()),
            Descent::Deeper(message) => Ok(vec![Action::Send(message)]),
            Descent::Leaves(differing) => self.list_leaves(store, owner, differing),
        }
    }

    /// The fingerprints of the records in `leaves`, salted with this round's number, in
    /// bounded messages.
    fn list_leaves(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        leaves: Vec<u16>,
    ) -> Result<Vec<Action>, StoreError> {
        let salt = self.anti_entropy_round;
        let mut listed = Vec::new();
        for leaf in leaves {
            listed.push((leaf, leaf_fingerprints(store, owner, leaf, salt)?));
        }
        Ok(chunk_leaves(listed)
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
    pub(super) fn fetch(
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

    /// Anti-entropy sent down this node's own records that it lacked (see the parent's
    /// `leaves`): stored if newer than what is held, like any replica.
    pub(super) fn repaired_down(
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

/// A child's own records sent down per anti-entropy answer, at most.
pub(super) const REPAIR_DOWN_PER_ROUND: usize = 5 * RESTORE_BATCH;

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

/// The depth of the leaves: 16 × 16 × 16 = 4,096 leaf buckets per owner.
const LEAF_DEPTH: u8 = 3;

/// What one step down the reconciliation tree leads to.
enum Descent {
    /// The peer's buckets are malformed or at a depth this side does not receive.
    Refused(String),
    /// Every bucket matches: nothing more to do for this owner.
    Same,
    /// Our buckets one level down, under those that differ: the peer's next step.
    Deeper(Message),
    /// The differing buckets are leaves: compare their records.
    Leaves(Vec<u16>),
}

/// One step down the tree, the same on both sides: compares the peer's buckets at `depth`
/// under `parents` with this store's, and says what comes next. `expected` lists the
/// depths this side receives (the sides alternate levels).
fn descend(
    store: &dyn Store,
    owner: NodeCode,
    (depth, parents, theirs): (u8, &[u16], &[(u32, u64)]),
    expected: &[u8],
) -> Descent {
    let well_formed = expected.contains(&depth)
        && theirs.len() == parents.len() * 16
        && parents
            .iter()
            .all(|p| u32::from(*p) < 16u32.pow(u32::from(depth) - 1));
    if !well_formed {
        return Descent::Refused(format!("unexpected Buckets at depth {depth}"));
    }
    let mine = store.buckets(owner, u32::from(depth), parents);
    let differing = differing(parents, &mine, &from_wire(theirs));
    if differing.is_empty() {
        Descent::Same
    } else if depth == LEAF_DEPTH {
        Descent::Leaves(differing)
    } else {
        Descent::Deeper(buckets_message(store, owner, depth + 1, differing))
    }
}

/// This store's buckets of `owner` at `depth` under `parents`, as a message.
fn buckets_message(store: &dyn Store, owner: NodeCode, depth: u8, parents: Vec<u16>) -> Message {
    let buckets = wire_buckets(&store.buckets(owner, u32::from(depth), &parents));
    Message::Buckets {
        owner,
        depth,
        parents,
        buckets,
    }
}

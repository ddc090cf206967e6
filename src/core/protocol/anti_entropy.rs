//! Anti-entropy: both sides compare per-owner digests and, where they differ, descend
//! the 16-way bucket tree together to the differing leaves, whose fingerprints say which
//! records to fetch. The parent fetches what it lacks; a child's own records that it lacks
//! are repaired down. Both sides run the same comparison on alternate levels (the peer's
//! 16 buckets under each parent against this store's, once [`malformed`] has refused what
//! cannot be compared): the parent opens at depth 1, the child answers at depth 2, the
//! parent at depth 3 (the leaves), and the child lists the leaves' fingerprints.
//!
//! Version 4 goes one level further when there are many differences: a child that finds
//! most depth-1 buckets differing answers with every leaf bucket under them, the parent
//! with the 16 sub-leaf buckets of each differing leaf (summed from the store's leaf
//! index), and the child lists only the differing sub-leaves: as many round trips, far
//! fewer fingerprints. Below the tree, leaves are read through [`leaves`].

mod leaves;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use self::leaves::{LeafSet, Salted, Scope, runs};
use super::child::ChildSession;
use super::merge::{commit_replica, plan_replica, replica_actions};
use super::parent::ParentSession;
use super::restore::RESTORE_BATCH;
use super::{Action, close};
use crate::core::model::{NodeCode, Record, RecordKey};
use crate::core::reconcile::{Bucket, differing};
use crate::core::store::{Store, StoreError};
use crate::core::wire::{LeafFp, Message, RefusalCode};

/// The first protocol version that descends to sub-leaves (depth 4).
pub(super) const SUB_LEAVES_FROM: u16 = 4;

/// Differing depth-1 buckets (of 16) from which a version-4 child skips depth 2: with that
/// many, each differing leaf is likely to hold several differences, and listing whole
/// leaves (~250 records each at 10^6) would cost more than the level below them.
const WIDE_FROM: usize = 12;

/// The depth of the leaves: 16 × 16 × 16 = 4,096 leaf buckets per owner. Version 4's
/// depth 4 splits each leaf into 16 sub-leaves.
const LEAF_DEPTH: u8 = 3;

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

    /// Anti-entropy, step 3: the child's buckets one level down where they differed
    /// (depth 2; in version 4 also the leaves, depth 3); answer one level further down
    /// under those that still differ (the leaves; below them the sub-leaves).
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
        let expected: &[u8] = if self.protocol >= SUB_LEAVES_FROM {
            &[2, LEAF_DEPTH]
        } else {
            &[2]
        };
        if let Some(reason) = malformed((depth, parents, theirs), expected) {
            return Ok(close(RefusalCode::Protocol, reason));
        }
        let mine = store.buckets(owner, u32::from(depth), parents);
        let differing = differing(parents, &mine, &from_wire(theirs));
        if differing.is_empty() {
            return Ok(Vec::new());
        }
        if depth < LEAF_DEPTH {
            return Ok(vec![Action::Send(buckets_message(
                store,
                owner,
                depth + 1,
                differing,
            ))]);
        }
        let mut buckets = Vec::with_capacity(differing.len() * 16);
        for run in runs(Scope::Leaves, &differing) {
            let leaves = &differing[run];
            let set = LeafSet::read(store, owner, Scope::Leaves, leaves)?;
            buckets.extend(wire_buckets(&set.sub_buckets(leaves)));
        }
        Ok(vec![Action::Send(Message::Buckets {
            owner,
            depth: LEAF_DEPTH + 1,
            parents: differing,
            buckets,
        })])
    }

    /// Anti-entropy, step 5: the child's fingerprints in differing leaves (or sub-leaves);
    /// fetch those this node lacks (missing records, other versions). Which version wins is
    /// decided when the records arrive. The child's *own* records that it lacks are sent
    /// down: only a damaged store loses them (a copy its scrub removed, an end sled
    /// dropped), and this node is where they are kept.
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
        let scope = Scope::of_salt(salt, self.protocol);
        let salted = Salted::new(salt, self.protocol);
        let indices: Vec<u16> = leaves.iter().map(|(index, _)| *index).collect();
        let mut wanted = Vec::new();
        let mut lacking = Vec::new();
        let mut set = LeafSet::default();
        let mut runs = runs(scope, &indices).into_iter().peekable();
        for (at, (index, theirs)) in leaves.into_iter().enumerate() {
            if let Some(run) = runs.next_if(|run| run.start == at) {
                set = LeafSet::read(store, owner, scope, &indices[run])?;
            }
            let (missing, unlisted) = compare(set.listed(scope, &salted, index), theirs);
            if missing.is_empty() && owner == self.child {
                // Every record the child listed here is held here in the same version, so
                // each one held here that it did not list is one it lacks. Where it listed
                // others, an unlisted record may be one it holds newer: those wait for the
                // fetched records to arrive (`repair`) and for the next round.
                let room = REPAIR_DOWN_PER_ROUND.saturating_sub(lacking.len());
                lacking.extend(unlisted.into_iter().take(room));
            } else if !missing.is_empty() {
                wanted.push((index, missing));
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
        actions.extend(self.repair_down(store, &lacking)?);
        Ok(actions)
    }

    /// Sends the child its own records at `keys`, in bounded messages. Bounded per round:
    /// what a parent holds in memory for one answer stays small, and the next round sends
    /// more (a store that lost much restores instead).
    pub(super) fn repair_down(
        &self,
        store: &dyn Store,
        keys: &[RecordKey],
    ) -> Result<Vec<Action>, StoreError> {
        let mut records = Vec::new();
        for key in keys.iter().take(REPAIR_DOWN_PER_ROUND) {
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

    /// Anti-entropy, step 7: store the repaired records (newer versions only). A record of
    /// the child's own that this node holds in a newer version is one the child's store
    /// lost the newer version of: it goes back down.
    pub(super) fn repair(
        &mut self,
        store: &dyn Store,
        owner: NodeCode,
        records: Vec<Record>,
    ) -> Result<Vec<Action>, StoreError> {
        if let Some(refusal) = self.unauthorised_owner(owner) {
            return Ok(refusal);
        }
        let from = (owner, self.child);
        if records.iter().any(|r| r.envelope.owner != owner) {
            // Refused there, with nothing stored.
            return commit_replica(
                store,
                (&self.standards.current(), &self.verifier),
                from,
                records,
                Vec::new(),
            );
        }
        let mut plan = plan_replica(store, (&self.standards.current(), &self.verifier), records)?;
        let newer = std::mem::take(&mut plan.held_newer);
        let mut actions = replica_actions(plan, from, Vec::new());
        if owner == self.child {
            actions.extend(self.repair_down(store, &newer)?);
        }
        Ok(actions)
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
    /// where they differ, or with the fingerprints of differing leaves (sub-leaves).
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
        let expected: &[u8] = if self.protocol >= SUB_LEAVES_FROM {
            &[1, LEAF_DEPTH, LEAF_DEPTH + 1]
        } else {
            &[1, LEAF_DEPTH]
        };
        if let Some(reason) = malformed((depth, parents, theirs), expected) {
            return Ok(close(RefusalCode::Protocol, reason));
        }
        let theirs = from_wire(theirs);
        if depth > LEAF_DEPTH {
            // The sub-leaves: one read of a group's leaves gives their buckets and listings.
            let mut listed = Vec::new();
            for run in runs(Scope::Leaves, parents) {
                let (leaves, theirs) =
                    (&parents[run.clone()], &theirs[run.start * 16..run.end * 16]);
                let set = LeafSet::read(store, owner, Scope::Leaves, leaves)?;
                let differing = differing(leaves, &set.sub_buckets(leaves), theirs);
                listed.extend(self.listing(&set, Scope::SubLeaves, &differing));
            }
            return Ok(self.leaves_messages(owner, Scope::SubLeaves, listed));
        }
        let mine = store.buckets(owner, u32::from(depth), parents);
        let differing = differing(parents, &mine, &theirs);
        if differing.is_empty() {
            Ok(Vec::new())
        } else if depth == 1 {
            Ok(vec![Action::Send(
                self.first_answer(store, owner, differing),
            )])
        } else {
            let mut listed = Vec::new();
            for run in runs(Scope::Leaves, &differing) {
                let leaves = &differing[run];
                let set = LeafSet::read(store, owner, Scope::Leaves, leaves)?;
                listed.extend(self.listing(&set, Scope::Leaves, leaves));
            }
            Ok(self.leaves_messages(owner, Scope::Leaves, listed))
        }
    }

    /// This store's buckets under the depth-1 buckets that differ: at depth 2, or, when
    /// most differ and the parent speaks version 4, every leaf bucket under them.
    fn first_answer(&self, store: &dyn Store, owner: NodeCode, differing: Vec<u16>) -> Message {
        if self.protocol >= SUB_LEAVES_FROM && differing.len() >= WIDE_FROM {
            let parents = differing
                .iter()
                .flat_map(|p| (0..16).map(move |c| p * 16 + c))
                .collect();
            buckets_message(store, owner, LEAF_DEPTH, parents)
        } else {
            buckets_message(store, owner, 2, differing)
        }
    }

    /// The fingerprints of the records under each of `indices` (leaves or sub-leaves, read
    /// into `set`), salted with this round's salt.
    fn listing(&self, set: &LeafSet, scope: Scope, indices: &[u16]) -> Vec<(u16, Vec<LeafFp>)> {
        let salted = Salted::new(scope.salt(self.anti_entropy_round), self.protocol);
        indices
            .iter()
            .map(|index| {
                let fps = set
                    .listed(scope, &salted, *index)
                    .into_iter()
                    .map(|(_, f)| f);
                (*index, fps.collect())
            })
            .collect()
    }

    /// `listed` as `Leaves` messages of bounded size; none when nothing is listed.
    fn leaves_messages(
        &self,
        owner: NodeCode,
        scope: Scope,
        listed: Vec<(u16, Vec<LeafFp>)>,
    ) -> Vec<Action> {
        let salt = scope.salt(self.anti_entropy_round);
        chunk_leaves(listed)
            .into_iter()
            .map(|leaves| {
                Action::Send(Message::Leaves {
                    owner,
                    salt,
                    leaves,
                })
            })
            .collect()
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
        let scope = Scope::of_salt(salt, self.protocol);
        let salted = Salted::new(salt, self.protocol);
        let indices: Vec<u16> = leaves.iter().map(|(index, _)| *index).collect();
        let mut keys: Vec<RecordKey> = Vec::new();
        for run in runs(scope, &indices) {
            let set = LeafSet::read(store, owner, scope, &indices[run.clone()])?;
            for (index, fps) in &leaves[run] {
                let wanted: BTreeSet<&LeafFp> = fps.iter().collect();
                keys.extend(
                    set.listed(scope, &salted, *index)
                        .into_iter()
                        .filter(|(_, f)| wanted.contains(f))
                        .map(|(k, _)| k),
                );
            }
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
            (&self.standards.current(), &self.verifier),
            (self.me, self.parent),
            records,
            Vec::new(),
        )
    }
}

/// What one listed leaf (or sub-leaf) holds that the other side's does not: the peer's
/// fingerprints missing here, and the keys of the records here the peer did not list.
fn compare(mine: Vec<(RecordKey, LeafFp)>, theirs: Vec<LeafFp>) -> (Vec<LeafFp>, Vec<RecordKey>) {
    let my_fps: BTreeSet<LeafFp> = mine.iter().map(|(_, f)| *f).collect();
    let theirs: BTreeSet<LeafFp> = theirs.into_iter().collect();
    let missing = theirs.difference(&my_fps).copied().collect();
    let unlisted = mine
        .into_iter()
        .filter(|(_, f)| !theirs.contains(f))
        .map(|(k, _)| k)
        .collect();
    (missing, unlisted)
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

/// Why the peer's buckets cannot be compared: at a depth this side does not receive
/// (the sides alternate levels), or not 16 per parent, or under parents that do not
/// exist at the depth above. `None` when they can.
fn malformed(
    (depth, parents, theirs): (u8, &[u16], &[(u32, u64)]),
    expected: &[u8],
) -> Option<String> {
    let well_formed = expected.contains(&depth)
        && theirs.len() == parents.len() * 16
        && parents
            .iter()
            .all(|p| u32::from(*p) < 16u32.pow(u32::from(depth) - 1));
    (!well_formed).then(|| format!("unexpected Buckets at depth {depth}"))
}

/// This store's buckets of `owner` at `depth` (1 to 3, kept in memory) under `parents`,
/// as a message.
fn buckets_message(store: &dyn Store, owner: NodeCode, depth: u8, parents: Vec<u16>) -> Message {
    let buckets = wire_buckets(&store.buckets(owner, u32::from(depth), &parents));
    Message::Buckets {
        owner,
        depth,
        parents,
        buckets,
    }
}

//! The leaf index on sled (see [`super::super::leaf_index`]): what a commit appends and
//! folds, how anti-entropy reads leaves, and building the index once for a store written
//! before it existed.

use std::collections::BTreeMap;
use std::fs::File;

use super::super::keys;
use super::super::leaf_index::{
    self, Base, Changes, FoldState, GROUP_LEAVES, IndexChange, Malformed, closes_group, group_of,
    leaf_of, opens_group,
};
use super::{SledStore, storage_error};
use crate::core::codec;
use crate::core::model::{NodeCode, Record, RecordKey};
use crate::core::reconcile::low64;
use crate::core::store::{FORMAT_VERSION, LeafItem, NodeIdentity, StoreError};

/// One owner's index changes in one batch: the last change of each key.
pub(super) type OwnerChanges = BTreeMap<RecordKey, Option<(u64, u64)>>;

/// A group's tail: `(batch, value)` in batch order.
type Tail = Vec<(u64, sled::IVec)>;

fn malformed(e: Malformed) -> StoreError {
    StoreError::Storage(e.to_string())
}

impl SledStore {
    /// Adds a batch's index changes to `sled_batch`: each owner's tail values, and the
    /// folding of as many leaves as the changes call for. Runs under the commit lock, so
    /// what it reads is every earlier commit and nothing else.
    pub(super) fn index_batch(
        &self,
        changes: &BTreeMap<NodeCode, OwnerChanges>,
        batch_no: u64,
        sled_batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        for (owner, owned) in changes {
            append_tail(*owner, owned, batch_no, sled_batch);
            self.fold(*owner, owned, batch_no, sled_batch)?;
        }
        Ok(())
    }

    /// Folds the next leaves of `owner`'s rolling pass through this batch, and deletes the
    /// tail values of a group the pass leaves (every leaf of it has absorbed them).
    fn fold(
        &self,
        owner: NodeCode,
        owned: &OwnerChanges,
        batch_no: u64,
        sled_batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        let min_tail = self.index_min_tail();
        let width = leaf_index::fold_width(owned.len(), self.records_held(owner), min_tail);
        if width == 0 {
            return Ok(());
        }
        let stored = self
            .db
            .get(keys::index_state(owner))
            .map_err(storage_error)?;
        let mut state = match stored {
            Some(bytes) => FoldState::decode(&bytes).map_err(malformed)?,
            None => FoldState::default(),
        };
        let window: Vec<u16> = leaf_index::window(state.next, width).collect();
        // The window wraps only from the last group to the first: each run is sorted.
        for run in window.chunk_by(|a, b| group_of(*a) == group_of(*b)) {
            let committed = self.group_leaves(owner, run)?;
            for (leaf, entries) in run.iter().zip(committed) {
                if opens_group(*leaf) {
                    state.entered = batch_no;
                }
                let now = owned
                    .range(leaf_index::leaf_keys(*leaf))
                    .map(|(key, now)| IndexChange {
                        key: *key,
                        now: *now,
                    });
                let entries = leaf_index::apply(entries.into_iter(), now);
                sled_batch.insert(
                    &keys::index_base(owner, *leaf)[..],
                    leaf_index::encode_base(batch_no + 1, &entries),
                );
                if closes_group(*leaf) {
                    self.drop_absorbed(owner, group_of(*leaf), state.entered, sled_batch)?;
                }
            }
        }
        state.next = window
            .last()
            .map_or(state.next, |last| (last + 1) % leaf_index::LEAF_COUNT);
        sled_batch.insert(&keys::index_state(owner)[..], &state.encode()[..]);
        Ok(())
    }

    /// Deletes the tail values of `group` up to batch `through`.
    fn drop_absorbed(
        &self,
        owner: NodeCode,
        group: u8,
        through: u64,
        sled_batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        let range = keys::index_tail(owner, group, 0)..=keys::index_tail(owner, group, through);
        for item in self.db.range(range) {
            let (k, _) = item.map_err(storage_error)?;
            sled_batch.remove(k);
        }
        Ok(())
    }

    /// The tail values of one group of `owner`'s leaves, from batch `from` on.
    fn group_tail(&self, owner: NodeCode, group: u8, from: u64) -> Result<Tail, StoreError> {
        let from = keys::index_tail(owner, group, from);
        let to = keys::index_tail(owner, group, u64::MAX);
        self.db
            .range(from..=to)
            .map(|item| {
                let (k, v) = item.map_err(storage_error)?;
                let batch = keys::parse_index_tail(&k)
                    .ok_or_else(|| StoreError::Storage(format!("bad index key {k:?}")))?;
                Ok((batch, v))
            })
            .collect()
    }

    /// Each of `leaves` (sorted, all of one group) as committed: its base with the group's
    /// later tail values applied, the tail read once for all of them.
    fn group_leaves(
        &self,
        owner: NodeCode,
        leaves: &[u16],
    ) -> Result<Vec<Vec<LeafItem>>, StoreError> {
        let Some(group) = leaves.first().map(|leaf| group_of(*leaf)) else {
            return Ok(Vec::new());
        };
        let stored = self.bases(owner, leaves)?;
        let bases = stored
            .iter()
            .map(|b| Base::decode(b.as_deref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(malformed)?;
        let from: Vec<u64> = bases.iter().map(|b| b.unfolded_from).collect();
        let oldest = from.iter().copied().min().unwrap_or(0);
        let tail = self.group_tail(owner, group, oldest)?;
        let changes = tail_changes(&tail, leaves, &from)?;
        Ok(bases
            .into_iter()
            .zip(changes)
            .map(|(base, changes)| leaf_index::apply(base.entries(), changes.into_iter()))
            .collect())
    }

    /// The records of `owner` in each of `leaves` (in the order asked), in key order: each
    /// leaf's base with the later tail values of its group applied.
    pub(super) fn read_leaves(
        &self,
        owner: NodeCode,
        leaves: &[u16],
    ) -> Result<Vec<Vec<LeafItem>>, StoreError> {
        // A commit replaces bases and deletes tail values together; read between commits.
        let _gate = self.index_gate.read().unwrap_or_else(|p| p.into_inner());
        let mut unique = leaves.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut items = Vec::with_capacity(unique.len());
        for run in unique.chunk_by(|a, b| group_of(*a) == group_of(*b)) {
            items.extend(self.group_leaves(owner, run)?);
        }
        if unique == leaves {
            return Ok(items);
        }
        Ok(leaves
            .iter()
            .map(|leaf| {
                unique
                    .binary_search(leaf)
                    .map(|at| items[at].clone())
                    .unwrap_or_default()
            })
            .collect())
    }

    /// The stored bases of `leaves` (sorted, one group), in order: one range read when
    /// many are asked, else one read each.
    fn bases(
        &self,
        owner: NodeCode,
        leaves: &[u16],
    ) -> Result<Vec<Option<sled::IVec>>, StoreError> {
        let (Some(first), Some(last)) = (leaves.first(), leaves.last()) else {
            return Ok(Vec::new());
        };
        if leaves.len() < RANGE_READ_FROM {
            return leaves
                .iter()
                .map(|leaf| {
                    self.db
                        .get(keys::index_base(owner, *leaf))
                        .map_err(storage_error)
                })
                .collect();
        }
        let mut found = BTreeMap::new();
        for item in self
            .db
            .range(keys::index_base(owner, *first)..=keys::index_base(owner, *last))
        {
            let (k, v) = item.map_err(storage_error)?;
            let leaf = keys::parse_index_base(&k)
                .ok_or_else(|| StoreError::Storage(format!("bad index key {k:?}")))?;
            found.insert(leaf, v);
        }
        Ok(leaves.iter().map(|leaf| found.remove(leaf)).collect())
    }

    /// How many records of `owner` the summaries count.
    fn records_held(&self, owner: NodeCode) -> u64 {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        owners
            .get(&owner)
            .map_or(0, |s| s.summary.digest(None).records)
    }

    fn index_min_tail(&self) -> u64 {
        self.index_min_tail
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The leaf index's keys and bytes (keys and values) as stored: `(bases, tail values,
    /// bytes)`. For measurements of what the index costs.
    #[doc(hidden)]
    pub fn index_size(&self) -> Result<(u64, u64, u64), StoreError> {
        let (mut bases, mut tails, mut bytes) = (0, 0, 0);
        for item in self.db.scan_prefix([keys::INDEX]) {
            let (k, v) = item.map_err(storage_error)?;
            if keys::parse_index_base(&k).is_some() {
                bases += 1;
            } else if keys::parse_index_tail(&k).is_some() {
                tails += 1;
            }
            bytes += (k.len() + v.len()) as u64;
        }
        Ok((bases, tails, bytes))
    }

    /// Folds the index as if owners were larger than they are, so that small tests pass
    /// through whole folding passes. Only for tests of the index.
    #[doc(hidden)]
    pub fn set_index_min_tail_for_test(&self, entries: u64) {
        self.index_min_tail
            .store(entries.max(1), std::sync::atomic::Ordering::Relaxed);
    }
}

/// The changes in `tail` to each of `leaves` (sorted, all of one group) from each leaf's
/// own `from` batch on, oldest first.
fn tail_changes(
    tail: &Tail,
    leaves: &[u16],
    from: &[u64],
) -> Result<Vec<Vec<IndexChange>>, StoreError> {
    let mut out = vec![Vec::new(); leaves.len()];
    for (batch, value) in tail {
        let changes = Changes::decode(value).map_err(malformed)?;
        let sweep = leaves.len() * SWEEP_FROM_PER_LEAF >= changes.len();
        collect(changes, (*batch, sweep), (leaves, from), &mut out);
    }
    Ok(out)
}

/// Adds the changes of one tail value (of batch `batch`) to `out`, for each leaf that has
/// not absorbed it: searched once per leaf when few leaves are asked, swept once when
/// many are.
fn collect(
    changes: Changes<'_>,
    (batch, sweep): (u64, bool),
    (leaves, from): (&[u16], &[u64]),
    out: &mut [Vec<IndexChange>],
) {
    if !sweep {
        for (i, leaf) in leaves.iter().enumerate() {
            if batch >= from[i] {
                out[i].extend(changes.of_leaf(*leaf));
            }
        }
        return;
    }
    let mut slot = [usize::MAX; GROUP_LEAVES as usize];
    for (i, leaf) in leaves.iter().enumerate() {
        slot[usize::from(leaf % GROUP_LEAVES)] = i;
    }
    for change in changes.iter() {
        let i = slot[usize::from(leaf_of(&change.key) % GROUP_LEAVES)];
        if i != usize::MAX && batch >= from[i] {
            out[i].push(change);
        }
    }
}

/// A tail value with fewer changes than this per leaf asked is swept rather than searched
/// (a search costs about two binary searches of a dozen steps each).
const SWEEP_FROM_PER_LEAF: usize = 24;

/// One tail value per group this batch changed, under the batch's number.
fn append_tail(owner: NodeCode, owned: &OwnerChanges, batch_no: u64, sled_batch: &mut sled::Batch) {
    let changes: Vec<IndexChange> = owned
        .iter()
        .map(|(key, now)| IndexChange {
            key: *key,
            now: *now,
        })
        .collect();
    // Keys sort by leaf, so each group's changes are one run, already in key order.
    for run in changes.chunk_by(|a, b| group_of(leaf_of(&a.key)) == group_of(leaf_of(&b.key))) {
        if let Some(first) = run.first() {
            let group = group_of(leaf_of(&first.key));
            sled_batch.insert(
                &keys::index_tail(owner, group, batch_no)[..],
                leaf_index::encode_changes(run),
            );
        }
    }
}

/// Leaves of one group asked together from which their bases are read as one range.
const RANGE_READ_FROM: usize = 16;

/// Bases written per sled batch while building the index.
const BUILD_BASES_PER_BATCH: usize = 512;

/// Builds the leaf index from the records of a store written before it existed (format
/// 1), then marks the store with the current format; the marker is written last, so an
/// interrupted build starts again. Reads and decodes every record once.
pub(super) fn build_index(
    db: &sled::Db,
    data_file: &File,
    identity: &mut NodeIdentity,
) -> Result<(), StoreError> {
    if identity.format == FORMAT_VERSION {
        return Ok(());
    }
    clear_index(db)?;
    let mut builder = Builder::default();
    for item in db.scan_prefix([keys::RECORD]) {
        let (k, v) = item.map_err(storage_error)?;
        let (owner, key) = keys::parse_record(&k)
            .ok_or_else(|| StoreError::Storage(format!("bad record key {k:?}")))?;
        let owner = NodeCode::new(owner)
            .map_err(|e| StoreError::Storage(format!("a record key names a bad owner: {e}")))?;
        match codec::decode::<Record>(&v) {
            Ok(r) => builder.add(
                db,
                owner,
                key,
                r.envelope.version,
                low64(r.envelope.fingerprint()),
            )?,
            // Nothing can be served from it; the scrub reports it too.
            Err(e) => {
                tracing::error!(key = ?k, error = %e, "Undecodable record left out of the leaf index")
            }
        }
    }
    let records = builder.records;
    let mut batch = builder.finish();
    identity.format = FORMAT_VERSION;
    batch.insert(keys::IDENTITY, codec::encode(identity)?);
    db.apply_batch(batch).map_err(storage_error)?;
    db.flush().map_err(storage_error)?;
    data_file.sync_data().map_err(storage_error)?;
    tracing::info!(
        records,
        "Built the leaf index of a store written by an earlier release"
    );
    Ok(())
}

/// Removes what an interrupted build left.
fn clear_index(db: &sled::Db) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for item in db.scan_prefix([keys::INDEX]) {
        let (k, _) = item.map_err(storage_error)?;
        batch.remove(k);
    }
    db.apply_batch(batch).map_err(storage_error)
}

/// Bases built from records read in key order (so each leaf's records are one run).
#[derive(Default)]
struct Builder {
    leaf: Option<(NodeCode, u16)>,
    entries: Vec<LeafItem>,
    batch: sled::Batch,
    bases: usize,
    records: u64,
}

impl Builder {
    fn add(
        &mut self,
        db: &sled::Db,
        owner: NodeCode,
        key: RecordKey,
        version: u64,
        fp: u64,
    ) -> Result<(), StoreError> {
        let at = (owner, leaf_of(&key));
        if self.leaf != Some(at) {
            self.close_leaf();
            self.leaf = Some(at);
            if self.bases >= BUILD_BASES_PER_BATCH {
                db.apply_batch(std::mem::take(&mut self.batch))
                    .map_err(storage_error)?;
                self.bases = 0;
            }
        }
        self.entries.push((key, version, fp));
        self.records += 1;
        Ok(())
    }

    fn close_leaf(&mut self) {
        if let Some((owner, leaf)) = self.leaf.take() {
            let base = leaf_index::encode_base(0, &std::mem::take(&mut self.entries));
            self.batch.insert(&keys::index_base(owner, leaf)[..], base);
            self.bases += 1;
        }
    }

    fn finish(mut self) -> sled::Batch {
        self.close_leaf();
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searching_and_sweeping_a_tail_value_agree() {
        // Changes to leaves 0 to 63 of group 0, three per leaf, sorted by key.
        let changes: Vec<IndexChange> = (0u16..192)
            .map(|i| {
                let mut key = [0u8; 16];
                key[..2].copy_from_slice(&((i / 3) << 4).to_be_bytes());
                key[15] = u8::try_from(i % 3).unwrap_or(0);
                let now = (i % 5 != 0).then_some((u64::from(i), u64::from(i) * 7));
                IndexChange {
                    key: RecordKey(key),
                    now,
                }
            })
            .collect();
        let bytes = leaf_index::encode_changes(&changes);
        let value = Changes::decode(&bytes).unwrap();
        let leaves = [0, 5, 6, 63, 200];
        let from = [0, 9, 3, 0, 0];
        let mut searched = vec![Vec::new(); leaves.len()];
        let mut swept = vec![Vec::new(); leaves.len()];
        collect(value, (3, false), (&leaves, &from), &mut searched);
        collect(value, (3, true), (&leaves, &from), &mut swept);
        assert_eq!(searched, swept);
        assert_eq!(
            searched.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 0, 3, 3, 0]
        );
    }
}

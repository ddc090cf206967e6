//! Below the in-memory tree: what anti-entropy reads of leaves from the store's leaf index.
//! A [`LeafSet`] holds the items of the leaves one message needs, read in one call; from
//! it come the salted fingerprints of the records under a leaf or a sub-leaf (one
//! sixteenth of a leaf, by the next 4 bits of the record key), and the sub-leaf buckets
//! version 4 compares before listing.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::core::model::{NodeCode, RecordKey};
use crate::core::reconcile::{Bucket, LEAVES};
use crate::core::store::{LeafItem, Store, StoreError};
use crate::core::wire::LeafFp;

use super::SUB_LEAVES_FROM;

/// Set in a `Leaves`/`Fetch` salt (version 4): the listed indices are sub-leaves, not
/// leaves. The child chooses the salt and the parent echoes it, so both read it alike.
pub(super) const SUB_LEAF_SALT: u64 = 1 << 63;

/// Sub-leaves per leaf.
const SUB_LEAVES: u16 = 16;

/// What the indices of one listing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Leaves (depth 3, 4,096 per owner).
    Leaves,
    /// Sub-leaves (depth 4, 16 per leaf).
    SubLeaves,
}

impl Scope {
    /// The scope a salt names; only version 4 lists sub-leaves.
    pub(super) fn of_salt(salt: u64, protocol: u16) -> Scope {
        if protocol >= SUB_LEAVES_FROM && salt & SUB_LEAF_SALT != 0 {
            Scope::SubLeaves
        } else {
            Scope::Leaves
        }
    }

    /// The salt of a listing of this scope in round `round`.
    pub(super) fn salt(self, round: u64) -> u64 {
        match self {
            Scope::Leaves => round & !SUB_LEAF_SALT,
            Scope::SubLeaves => round | SUB_LEAF_SALT,
        }
    }

    /// The leaf holding the records under `index`, if `index` names one.
    fn leaf(self, index: u16) -> Option<u16> {
        let leaf = match self {
            Scope::Leaves => index,
            Scope::SubLeaves => index / SUB_LEAVES,
        };
        (usize::from(leaf) < LEAVES).then_some(leaf)
    }

    /// True when the record at `key` (in the leaf of `index`) lies under `index`.
    fn holds(self, index: u16, key: &RecordKey) -> bool {
        match self {
            Scope::Leaves => true,
            Scope::SubLeaves => u16::from(sub_leaf(key)) == index % SUB_LEAVES,
        }
    }
}

/// The sub-leaf of a key within its leaf: bits 12 to 15.
fn sub_leaf(key: &RecordKey) -> u8 {
    key.0[1] & 0x0f
}

/// The salted 48-bit fingerprint of a record in a listing: 48 bits keep a list short; the
/// salt changes every round, so a rare collision that hides a difference in one round
/// does not hide it in the next. Up to version 3 it is blake3 of the salt and the record's
/// 64-bit fingerprint; version 4 mixes the fingerprint (already a uniform hash) through a
/// permutation of 64-bit words keyed by the salt, which costs nanoseconds instead of a
/// blake3 compression per record.
pub(super) enum Salted {
    /// Up to version 3 (the hasher already holds the key and the salt).
    Blake3(Box<blake3::Hasher>),
    /// Version 4: the permutation's two keys.
    Mixed(u64, u64),
}

impl Salted {
    pub(super) fn new(salt: u64, protocol: u16) -> Self {
        if protocol >= SUB_LEAVES_FROM {
            let key = blake3::derive_key("lmsync leaf fingerprint v2", &salt.to_le_bytes());
            let word = |at: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&key[at..at + 8]);
                u64::from_le_bytes(w)
            };
            Salted::Mixed(word(0), word(8) | 1)
        } else {
            let mut base = blake3::Hasher::new_derive_key("lmsync leaf fingerprint v1");
            base.update(&salt.to_le_bytes());
            Salted::Blake3(Box::new(base))
        }
    }

    pub(super) fn of(&self, fp: u64) -> LeafFp {
        let mut out = [0u8; 6];
        match self {
            Salted::Blake3(base) => {
                let mut h = blake3::Hasher::clone(base);
                h.update(&fp.to_le_bytes());
                out.copy_from_slice(&h.finalize().as_bytes()[..6]);
            }
            Salted::Mixed(xor, odd) => {
                // Each step is invertible, so distinct fingerprints stay distinct words;
                // the salt decides which of them share their top 48 bits.
                let mut x = (fp ^ xor).wrapping_mul(*odd);
                x ^= x >> 32;
                x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
                x ^= x >> 32;
                out.copy_from_slice(&x.to_be_bytes()[..6]);
            }
        }
        out
    }
}

/// Leaves per group of the leaf index: what one [`LeafSet`] holds at most.
const GROUP_LEAVES: u16 = 256;

/// Splits `indices` (of `scope`) into runs of consecutive indices whose leaves lie in one
/// group of 256 leaves, by position. Each run is read as one [`LeafSet`]: a message is
/// handled one group at a time, so what it holds in memory is at most a sixteenth of the
/// owner's leaf index, however many leaves differ.
pub(super) fn runs(scope: Scope, indices: &[u16]) -> Vec<Range<usize>> {
    let group = |index: &u16| scope.leaf(*index).map(|leaf| leaf / GROUP_LEAVES);
    let mut out = Vec::new();
    let mut start = 0;
    for run in indices.chunk_by(|a, b| group(a) == group(b)) {
        out.push(start..start + run.len());
        start += run.len();
    }
    out
}

/// The leaf-index items (in key order) of the leaves under some indices, read together.
#[derive(Default)]
pub(super) struct LeafSet(BTreeMap<u16, Vec<LeafItem>>);

impl LeafSet {
    /// Reads the leaves under `indices` of `scope`, each once.
    pub(super) fn read(
        store: &dyn Store,
        owner: NodeCode,
        scope: Scope,
        indices: &[u16],
    ) -> Result<LeafSet, StoreError> {
        let mut leaves: Vec<u16> = indices.iter().filter_map(|i| scope.leaf(*i)).collect();
        leaves.sort_unstable();
        leaves.dedup();
        let items = store.leaves_items(owner, &leaves)?;
        Ok(LeafSet(leaves.into_iter().zip(items).collect()))
    }

    /// The items under `index` of `scope`.
    fn under(&self, scope: Scope, index: u16) -> impl Iterator<Item = &LeafItem> {
        let items = scope.leaf(index).and_then(|leaf| self.0.get(&leaf));
        items
            .into_iter()
            .flatten()
            .filter(move |(key, ..)| scope.holds(index, key))
    }

    /// The key and salted fingerprint of each record under `index` of `scope`, in key
    /// order.
    pub(super) fn listed(
        &self,
        scope: Scope,
        salted: &Salted,
        index: u16,
    ) -> Vec<(RecordKey, LeafFp)> {
        self.under(scope, index)
            .map(|(key, _, fp)| (*key, salted.of(*fp)))
            .collect()
    }

    /// The 16 sub-leaf buckets of each of `leaves` (in order).
    pub(super) fn sub_buckets(&self, leaves: &[u16]) -> Vec<Bucket> {
        let mut out = Vec::with_capacity(leaves.len() * usize::from(SUB_LEAVES));
        for leaf in leaves {
            let mut subs = [Bucket::default(); SUB_LEAVES as usize];
            for (key, _, fp) in self.under(Scope::Leaves, *leaf) {
                let sub = &mut subs[usize::from(sub_leaf(key))];
                sub.count += 1;
                sub.fp = sub.fp.wrapping_add(*fp);
            }
            out.extend(subs);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_4_fingerprints_are_salted_and_spread() {
        let (a, b) = (Salted::new(1, 4), Salted::new(2, 4));
        assert_ne!(a.of(7), b.of(7), "another round, another fingerprint");
        assert_eq!(a.of(7), Salted::new(1, 4).of(7));
        let distinct: std::collections::BTreeSet<LeafFp> = (0..10_000u64)
            .map(|i| a.of(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        assert_eq!(distinct.len(), 10_000);
        // Version 3 peers compute blake3's.
        let mut h = blake3::Hasher::new_derive_key("lmsync leaf fingerprint v1");
        h.update(&1u64.to_le_bytes());
        h.update(&7u64.to_le_bytes());
        assert_eq!(Salted::new(1, 3).of(7)[..], h.finalize().as_bytes()[..6]);
    }

    #[test]
    fn a_salt_says_whether_sub_leaves_are_listed() {
        let salt = Scope::SubLeaves.salt(5);
        assert_eq!(Scope::of_salt(salt, 4), Scope::SubLeaves);
        assert_eq!(
            Scope::of_salt(salt, 3),
            Scope::Leaves,
            "not before version 4"
        );
        assert_eq!(Scope::of_salt(Scope::Leaves.salt(5), 4), Scope::Leaves);
        assert_eq!(Scope::SubLeaves.leaf(0xffff), Some(4095));
        assert_eq!(Scope::Leaves.leaf(4096), None);
        let indices = [0, 17, 255, 256, 4095, 300, 16 * 300];
        assert_eq!(
            runs(Scope::Leaves, &indices),
            vec![0..3, 3..4, 4..5, 5..6, 6..7]
        );
        assert_eq!(runs(Scope::SubLeaves, &indices), vec![0..6, 6..7]);
    }
}

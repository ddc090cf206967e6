//! Additive fingerprints of record sets: the digest and the reconciliation buckets.
//!
//! Each record contributes a 128-bit fingerprint of `(owner, kind, id, version, hash)`.
//! Sums (mod 2^128) per owner and kind give the digest; sums per leaf bucket (the first
//! 12 bits of the record key) give the 16-way tree anti-entropy compares. Because the sums
//! are additive, replacing a version is `+ new − old`: a write never reads its neighbours,
//! and the whole structure is rebuilt on open from the change log without touching records.
//! Pure data, no IO.

use crate::core::model::{Hash32, Kind, RecordKey};

/// Number of leaf buckets per owner (16^3): deep enough that a leaf of a million-record
/// owner holds ~250 records, small enough (48 KiB) to keep for hundreds of owners.
pub const LEAVES: usize = 4096;

/// Record count and fingerprint sum of a set of records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Digest {
    /// Number of records.
    pub records: u64,
    /// Wrapping sum of their fingerprints.
    pub sum: u128,
}

impl Digest {
    /// Adds another set (disjoint from this one).
    pub fn merge(&mut self, other: Digest) {
        self.records += other.records;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// The digest root shown to operators: equal iff the record sets are equal
    /// (up to a 2^-128 chance for sets that differ by accident).
    pub fn root(&self) -> Hash32 {
        let mut h = blake3::Hasher::new_derive_key("lmsync digest v1");
        h.update(&self.records.to_be_bytes());
        h.update(&self.sum.to_be_bytes());
        Hash32(*h.finalize().as_bytes())
    }
}

/// One leaf bucket: count and the low 64 bits of the fingerprint sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    /// Records in the bucket.
    pub count: u32,
    /// Wrapping sum of the low 64 bits of their fingerprints.
    pub fp: u64,
}

/// How one record changes a summary: a new record, a version replacing another, or the
/// removal of a record found corrupted (so that anti-entropy fetches it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The record's key.
    pub key: RecordKey,
    /// The record's kind.
    pub kind: Kind,
    /// Fingerprint of the version written (`None`: the record was removed).
    pub fp: Option<u128>,
    /// Fingerprint of the version it replaced, if any.
    pub prev_fp: Option<u128>,
}

/// The summary of one owner's records held by a node.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OwnerSummary {
    kinds: [Digest; Kind::ALL.len()],
    leaves: Box<[Bucket]>,
}

impl Default for OwnerSummary {
    fn default() -> Self {
        OwnerSummary {
            kinds: [Digest::default(); Kind::ALL.len()],
            leaves: vec![Bucket::default(); LEAVES].into_boxed_slice(),
        }
    }
}

/// Low 64 bits of a fingerprint (what buckets add and leaves compare); truncation is the
/// point.
#[allow(clippy::cast_possible_truncation)]
pub fn low64(fp: u128) -> u64 {
    fp as u64
}

impl OwnerSummary {
    /// Applies one change.
    pub fn apply(&mut self, change: &Change) {
        let kind = &mut self.kinds[change.kind.index()];
        let leaf = &mut self.leaves[change.key.bucket()];
        if let Some(prev) = change.prev_fp {
            kind.records = kind.records.saturating_sub(1);
            kind.sum = kind.sum.wrapping_sub(prev);
            leaf.count = leaf.count.saturating_sub(1);
            leaf.fp = leaf.fp.wrapping_sub(low64(prev));
        }
        if let Some(fp) = change.fp {
            kind.records += 1;
            kind.sum = kind.sum.wrapping_add(fp);
            leaf.count += 1;
            leaf.fp = leaf.fp.wrapping_add(low64(fp));
        }
    }

    /// The digest of this owner's records, optionally of one kind only.
    pub fn digest(&self, kind: Option<Kind>) -> Digest {
        match kind {
            Some(k) => self.kinds[k.index()],
            None => {
                let mut d = Digest::default();
                self.kinds.iter().for_each(|k| d.merge(*k));
                d
            }
        }
    }

    /// Record count per kind.
    pub fn counts(&self) -> impl Iterator<Item = (Kind, u64)> + '_ {
        Kind::ALL
            .into_iter()
            .map(|k| (k, self.kinds[k.index()].records))
    }

    /// The buckets at `depth` (1 → 16, 2 → 256, 3 → 4096 leaves), summed from the leaves.
    pub fn level(&self, depth: u32) -> Vec<Bucket> {
        let width = 16usize.pow(depth.clamp(1, 3));
        let per = LEAVES / width;
        self.leaves
            .chunks(per)
            .map(|c| {
                c.iter().fold(Bucket::default(), |acc, b| Bucket {
                    count: acc.count + b.count,
                    fp: acc.fp.wrapping_add(b.fp),
                })
            })
            .collect()
    }

    /// The 16 buckets at `depth` (1–3) under each of `parents` (indices at `depth - 1`;
    /// `[0]` for the root), in order.
    pub fn children(&self, depth: u32, parents: &[u16]) -> Vec<Bucket> {
        let level = self.level(depth);
        parents
            .iter()
            .flat_map(|p| {
                let start = usize::from(*p) * 16;
                level.get(start..start + 16).unwrap_or(&[]).to_vec()
            })
            .collect()
    }
}

/// Indices (at `depth`) of the buckets that differ between two equally laid-out lists of
/// children of `parents`.
pub fn differing(parents: &[u16], mine: &[Bucket], theirs: &[Bucket]) -> Vec<u16> {
    let mut out = Vec::new();
    for (i, p) in parents.iter().enumerate() {
        for c in 0..16u16 {
            let at = i * 16 + usize::from(c);
            // Parents past the leaf level (4096 buckets) name no bucket.
            let child = p.checked_mul(16).and_then(|x| x.checked_add(c));
            if let Some(child) = child.filter(|_| mine.get(at) != theirs.get(at)) {
                out.push(child);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, fp: u128, prev: Option<u128>) -> Change {
        Change {
            key: RecordKey::of(Kind::Vacancy, id),
            kind: Kind::Vacancy,
            fp: Some(fp),
            prev_fp: prev,
        }
    }

    #[test]
    fn removal_undoes_a_write_and_shows_in_the_buckets() {
        let mut a = OwnerSummary::default();
        a.apply(&change("1", 11, None));
        let full = a.clone();
        a.apply(&change("2", 22, None));
        let mut gone = change("2", 0, Some(22));
        gone.fp = None;
        a.apply(&gone);
        assert_eq!(a.digest(None), full.digest(None));
        let mut b = full.clone();
        b.apply(&change("3", 33, None));
        let diff = differing(&[0], &a.children(1, &[0]), &b.children(1, &[0]));
        assert_eq!(diff.len(), 1, "one level-1 bucket differs");
        let leaf = RecordKey::of(Kind::Vacancy, "3").bucket();
        assert_eq!(usize::from(diff[0]), leaf >> 8);
    }

    #[test]
    fn order_of_writes_does_not_matter() {
        let mut a = OwnerSummary::default();
        let mut b = OwnerSummary::default();
        a.apply(&change("1", 11, None));
        a.apply(&change("2", 22, None));
        b.apply(&change("2", 22, None));
        b.apply(&change("1", 11, None));
        assert_eq!(a.digest(None), b.digest(None));
        assert_eq!(a.level(3), b.level(3));
    }

    #[test]
    fn replacing_a_version_equals_writing_it_fresh() {
        let mut a = OwnerSummary::default();
        a.apply(&change("1", 11, None));
        a.apply(&change("1", 99, Some(11)));
        let mut b = OwnerSummary::default();
        b.apply(&change("1", 99, None));
        assert_eq!(a.digest(None), b.digest(None));
        assert_eq!(a.digest(Some(Kind::Vacancy)).records, 1);
        assert_eq!(a.level(1).iter().map(|x| x.count).sum::<u32>(), 1);
    }

    #[test]
    fn different_sets_have_different_roots() {
        let mut a = OwnerSummary::default();
        a.apply(&change("1", 11, None));
        let mut b = OwnerSummary::default();
        b.apply(&change("1", 12, None));
        assert_ne!(a.digest(None).root(), b.digest(None).root());
        assert_eq!(a.digest(Some(Kind::Office)), Digest::default());
    }
}

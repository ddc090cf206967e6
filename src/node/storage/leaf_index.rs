//! The leaf index: every record's version and 64-bit fingerprint, by reconciliation leaf,
//! so that anti-entropy lists a leaf's records without reading or decoding them.
//!
//! Two parts, because a commit must not read (new records need no read on the write path)
//! and a leaf must read fast:
//!
//! - the **tail**: each commit appends what it changed, one value per owner and group of
//!   256 leaves (`f owner t group batch`), the changes sorted by record key;
//! - the **bases**: one sorted value per leaf (`f owner b leaf`) saying the first batch not
//!   folded into it. A leaf is its base plus the tail values from that batch on.
//!
//! Each commit also folds the tail into a few bases, in a rolling pass over the leaves
//! (`f owner s` says where it stands), sized so that a whole pass completes before about
//! a quarter of the owner's record count has been appended; when the pass leaves a group,
//! the tail values every leaf of the group has absorbed are deleted. So a leaf reads as
//! one base and a bounded tail, a commit reads a few bases and writes them back, and the
//! index costs a fixed 32 bytes per record plus the tail. Pure data and encodings; the
//! reads and writes are in `sled_store::index`.

use std::ops::{Range, RangeInclusive};

use crate::core::model::RecordKey;
use crate::core::reconcile::LEAVES;
use crate::core::store::LeafItem;

/// Leaves per group: tail values are kept per group, so that folding a few leaves reads
/// only their group's tail.
pub const GROUP_LEAVES: u16 = 256;

/// Tail entries an owner may accumulate before a pass must have folded them: at least this
/// many (small owners), and a quarter of its records (large owners). A 1,000-record commit
/// then folds at most 32 leaves (3% more sled writes), and a leaf read searches at most
/// 2 × 128 Ki changes (4 MiB) of tail values.
pub const MIN_TAIL: u64 = 128 * 1024;
const TAIL_SHARE: u64 = 4;

/// Bytes of one base entry: key, version, fingerprint.
const ENTRY: usize = 32;
/// Bytes of one tail change: an entry and whether the record is present.
const CHANGE: usize = ENTRY + 1;
/// Bytes of a base's header: the first batch not folded into it.
const HEADER: usize = 8;

/// A stored value of the index does not have the layout of its kind.
#[derive(Debug, thiserror::Error)]
#[error("malformed leaf index {what} of {len} bytes")]
pub struct Malformed {
    what: &'static str,
    len: usize,
}

/// One record's change: it now has `(version, fingerprint)`, or it was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexChange {
    /// The record's key.
    pub key: RecordKey,
    /// Its version and the low 64 bits of its fingerprint; `None`: removed.
    pub now: Option<(u64, u64)>,
}

/// The leaf (first 12 bits) of a record key, as the summaries count it.
pub fn leaf_of(key: &RecordKey) -> u16 {
    // A bucket is below 4,096: it always fits.
    u16::try_from(key.bucket()).unwrap_or(u16::MAX)
}

/// The group of a leaf.
pub fn group_of(leaf: u16) -> u8 {
    u8::try_from(leaf / GROUP_LEAVES).unwrap_or(u8::MAX)
}

/// The record keys of one leaf.
pub fn leaf_keys(leaf: u16) -> RangeInclusive<RecordKey> {
    let [high, low] = (leaf << 4).to_be_bytes();
    let mut first = [0u8; 16];
    (first[0], first[1]) = (high, low);
    let mut last = [0xff; 16];
    (last[0], last[1]) = (high, low | 0x0f);
    RecordKey(first)..=RecordKey(last)
}

/// Leaves in an owner's tree, as the index counts them.
#[allow(clippy::cast_possible_truncation)] // 4,096 fits
pub const LEAF_COUNT: u16 = LEAVES as u16;

/// How many leaves a commit of `changes` index changes folds, for an owner holding
/// `records`: enough that a whole pass completes before the tail holds a quarter of the
/// records, or `min_tail` entries ([`MIN_TAIL`] but in tests). Each fold rewrites one
/// base, so a change costs about `32 × 4` bytes of rewriting, whatever the owner's size.
pub fn fold_width(changes: usize, records: u64, min_tail: u64) -> u16 {
    if changes == 0 {
        return 0;
    }
    let tail = min_tail.max(records / TAIL_SHARE).max(1);
    let width = (u64::from(LEAF_COUNT) * changes as u64).div_ceil(tail);
    u16::try_from(width.clamp(1, u64::from(LEAF_COUNT))).unwrap_or(LEAF_COUNT)
}

/// The leaves a fold of `width` starting at `next` visits, in order (wrapping).
pub fn window(next: u16, width: u16) -> impl Iterator<Item = u16> {
    (0..width).map(move |i| (next % LEAF_COUNT + i) % LEAF_COUNT)
}

/// True for the first leaf of a group, where a pass enters it.
pub fn opens_group(leaf: u16) -> bool {
    leaf.is_multiple_of(GROUP_LEAVES)
}

/// True for the last leaf of a group, where a pass leaves it.
pub fn closes_group(leaf: u16) -> bool {
    leaf % GROUP_LEAVES == GROUP_LEAVES - 1
}

/// Where the rolling fold of one owner's index stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldState {
    /// The next leaf to fold.
    pub next: u16,
    /// The batch in which the pass folded the first leaf of the group it is in: every
    /// leaf of the group is folded through it or later once the pass leaves the group.
    pub entered: u64,
}

impl FoldState {
    /// The stored form.
    pub fn encode(&self) -> [u8; 10] {
        let mut out = [0u8; 10];
        out[..2].copy_from_slice(&self.next.to_be_bytes());
        out[2..].copy_from_slice(&self.entered.to_be_bytes());
        out
    }

    /// Reads the stored form.
    pub fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        let malformed = || Malformed {
            what: "fold state",
            len: bytes.len(),
        };
        let raw: [u8; 10] = bytes.try_into().map_err(|_| malformed())?;
        let next = u16::from_be_bytes([raw[0], raw[1]]);
        if next >= LEAF_COUNT {
            return Err(malformed());
        }
        Ok(FoldState {
            next,
            entered: u64::from_be_bytes(raw[2..].try_into().map_err(|_| malformed())?),
        })
    }
}

fn put_entry(out: &mut Vec<u8>, key: &RecordKey, version: u64, fp: u64) {
    out.extend_from_slice(&key.0);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&fp.to_be_bytes());
}

fn get_entry(bytes: &[u8]) -> LeafItem {
    let mut key = [0u8; 16];
    key.copy_from_slice(&bytes[..16]);
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[16..24]);
    let version = u64::from_be_bytes(word);
    word.copy_from_slice(&bytes[24..32]);
    (RecordKey(key), version, u64::from_be_bytes(word))
}

/// A leaf's entries, sorted by key, holding every batch before `unfolded_from`.
pub fn encode_base(unfolded_from: u64, entries: &[LeafItem]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + entries.len() * ENTRY);
    out.extend_from_slice(&unfolded_from.to_be_bytes());
    for (key, version, fp) in entries {
        put_entry(&mut out, key, *version, *fp);
    }
    out
}

/// A stored base, read in place.
#[derive(Debug, Clone, Copy, Default)]
pub struct Base<'a> {
    /// The first batch not folded into it (0: a leaf never folded).
    pub unfolded_from: u64,
    entries: &'a [u8],
}

impl<'a> Base<'a> {
    /// Reads a stored base; `None` (a leaf never folded) is an empty one.
    pub fn decode(bytes: Option<&'a [u8]>) -> Result<Self, Malformed> {
        let Some(bytes) = bytes else {
            return Ok(Base::default());
        };
        if bytes.len() < HEADER || !(bytes.len() - HEADER).is_multiple_of(ENTRY) {
            return Err(Malformed {
                what: "base",
                len: bytes.len(),
            });
        }
        let mut unfolded_from = [0u8; 8];
        unfolded_from.copy_from_slice(&bytes[..HEADER]);
        Ok(Base {
            unfolded_from: u64::from_be_bytes(unfolded_from),
            entries: &bytes[HEADER..],
        })
    }

    /// Its entries, in key order.
    pub fn entries(&self) -> impl Iterator<Item = LeafItem> + 'a {
        self.entries.chunks_exact(ENTRY).map(get_entry)
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len() / ENTRY
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One batch's changes to one group, sorted by key (one change per key).
pub fn encode_changes<'c>(changes: impl IntoIterator<Item = &'c IndexChange>) -> Vec<u8> {
    let mut out = Vec::new();
    for c in changes {
        let (version, fp) = c.now.unwrap_or((0, 0));
        put_entry(&mut out, &c.key, version, fp);
        out.push(u8::from(c.now.is_some()));
    }
    out
}

/// A stored tail value, read in place.
#[derive(Debug, Clone, Copy)]
pub struct Changes<'a>(&'a [u8]);

impl<'a> Changes<'a> {
    /// Reads a stored tail value.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Malformed> {
        if !bytes.len().is_multiple_of(CHANGE) {
            return Err(Malformed {
                what: "tail value",
                len: bytes.len(),
            });
        }
        Ok(Changes(bytes))
    }

    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.0.len() / CHANGE
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Its changes, in key order.
    pub fn iter(self) -> impl Iterator<Item = IndexChange> + 'a {
        (0..self.len()).map(move |i| self.get(i))
    }

    fn get(&self, i: usize) -> IndexChange {
        let at = &self.0[i * CHANGE..(i + 1) * CHANGE];
        let (key, version, fp) = get_entry(at);
        let now = (at[ENTRY] != 0).then_some((version, fp));
        IndexChange { key, now }
    }

    fn leaf_at(&self, i: usize) -> u16 {
        let at = i * CHANGE;
        (u16::from(self.0[at]) << 4) | u16::from(self.0[at + 1] >> 4)
    }

    /// Positions of the changes to `leaf` (they are contiguous: sorted by key).
    fn range(&self, leaf: u16) -> Range<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = usize::midpoint(lo, hi);
            if self.leaf_at(mid) < leaf {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let start = lo;
        hi = self.len();
        while lo < hi {
            let mid = usize::midpoint(lo, hi);
            if self.leaf_at(mid) <= leaf {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        start..lo
    }

    /// The changes to `leaf`, in key order.
    pub fn of_leaf(self, leaf: u16) -> impl Iterator<Item = IndexChange> + 'a {
        self.range(leaf).map(move |i| self.get(i))
    }
}

/// A leaf as it stands: `base` (sorted) with `changes` applied, oldest first (the last
/// change of a key wins).
pub fn apply(
    base: impl Iterator<Item = LeafItem>,
    changes: impl Iterator<Item = IndexChange>,
) -> Vec<LeafItem> {
    // A leaf has a few dozen changes at most: sorting them beats a map.
    let mut latest: Vec<IndexChange> = changes.collect();
    latest.reverse();
    latest.sort_by_key(|c| c.key); // stable: the newest change of a key comes first
    latest.dedup_by_key(|c| c.key);
    let (low, _) = base.size_hint();
    let mut out = Vec::with_capacity(low + latest.len());
    let mut pending = latest.into_iter().peekable();
    let emit = |out: &mut Vec<LeafItem>, c: IndexChange| {
        if let Some((version, fp)) = c.now {
            out.push((c.key, version, fp));
        }
    };
    for item in base {
        while let Some(c) = pending.next_if(|c| c.key < item.0) {
            emit(&mut out, c);
        }
        match pending.next_if(|c| c.key == item.0) {
            Some(c) => emit(&mut out, c),
            None => out.push(item),
        }
    }
    pending.for_each(|c| emit(&mut out, c));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u8, second: u8, last: u8) -> RecordKey {
        let mut k = [0u8; 16];
        (k[0], k[1], k[15]) = (first, second, last);
        RecordKey(k)
    }

    fn set(key: RecordKey, version: u64) -> IndexChange {
        IndexChange {
            key,
            now: Some((version, version * 10)),
        }
    }

    #[test]
    fn a_base_round_trips_and_changes_apply_in_order() {
        let (a, b, c) = (key(0, 0x10, 1), key(0, 0x10, 2), key(0, 0x10, 3));
        let bytes = encode_base(7, &[(a, 1, 10), (c, 1, 10)]);
        let base = Base::decode(Some(&bytes)).unwrap();
        assert_eq!((base.unfolded_from, base.len()), (7, 2));
        let gone = IndexChange { key: a, now: None };
        let leaf = apply(
            base.entries(),
            [set(b, 1), set(c, 2), gone, set(c, 3)].into_iter(),
        );
        assert_eq!(leaf, vec![(b, 1, 10), (c, 3, 30)]);
        assert!(Base::decode(None).unwrap().is_empty());
        assert!(Base::decode(Some(&bytes[..9])).is_err());
    }

    #[test]
    fn a_tail_value_yields_the_changes_of_one_leaf() {
        // Leaves 1, 2, 2, 5 (the leaf is the first 12 bits).
        let mut changes = vec![
            set(key(0, 0x10, 0), 1),
            set(key(0, 0x20, 0), 2),
            IndexChange {
                key: key(0, 0x2f, 9),
                now: None,
            },
            set(key(0, 0x50, 0), 4),
        ];
        changes.sort_by_key(|c| c.key);
        let bytes = encode_changes(&changes);
        let tail = Changes::decode(&bytes).unwrap();
        assert_eq!(tail.of_leaf(2).collect::<Vec<_>>(), changes[1..3].to_vec());
        assert_eq!(tail.of_leaf(5).count(), 1);
        assert_eq!(tail.of_leaf(3).count(), 0);
        assert_eq!(tail.of_leaf(4095).count(), 0);
        assert!(Changes::decode(&bytes[1..]).is_err());
    }

    #[test]
    fn folding_keeps_pace_with_the_tail() {
        assert_eq!(fold_width(0, 1_000_000, MIN_TAIL), 0);
        assert_eq!(fold_width(1, 10, MIN_TAIL), 1);
        assert_eq!(fold_width(1000, 100_000, MIN_TAIL), 32);
        // A 1,000-record commit to a million-record owner folds 17 leaves: a pass takes
        // about 250,000 changes.
        assert_eq!(fold_width(1000, 1_000_000, MIN_TAIL), 17);
        assert_eq!(fold_width(1_000_000, 10, MIN_TAIL), LEAF_COUNT);
        assert_eq!(fold_width(3, 10, 1), LEAF_COUNT);
        let keys = leaf_keys(0xabc);
        assert_eq!(leaf_of(keys.start()), 0xabc);
        assert_eq!(leaf_of(keys.end()), 0xabc);
        assert_eq!(leaf_of(&key(0xab, 0xd0, 0)), 0xabd);
        let wrapped: Vec<u16> = window(4094, 3).collect();
        assert_eq!(wrapped, vec![4094, 4095, 0]);
        assert!(opens_group(256) && closes_group(511) && !closes_group(256));
        let state = FoldState {
            next: 300,
            entered: 9,
        };
        assert_eq!(FoldState::decode(&state.encode()).unwrap(), state);
        assert!(FoldState::decode(&[0xff; 10]).is_err());
        assert_eq!(leaf_of(&key(0xab, 0xcd, 0)), 0xabc);
        assert_eq!(group_of(0xabc), 0xa);
    }
}

//! The key layout of the one sled tree. Every key a node writes is built here.
//!
//! sled's cost is per key, so a record costs one key and a batch adds one packed change-log
//! key per owner. Prefix bytes keep the kinds of key apart within a single tree (a sled
//! batch covers one tree; multi-tree transactions were measured slower).
//!
//! | prefix | key                                     | value                        |
//! |--------|-----------------------------------------|------------------------------|
//! | `i`    | `i`                                     | node identity marker         |
//! | `r`    | `r` owner:u32 record-key:[u8;16]        | record (envelope + data)     |
//! | `l`    | `l` owner:u32 first-seq:u64 batch:u64   | packed change-log entries    |
//! | `d`    | `d` kind NUL id                         | document                     |
//! | `w`    | `w` peer:u32 owner:u32                  | peer watermark (seq)         |
//! | `x`    | `x`                                     | restore from parent pending  |
//! | `c`    | `c` child:u32                           | child's store id (16 bytes)  |
//! | `q`    | `q` owner:u32 record-key:[u8;16]        | quarantined received record  |
//! | `t`    | `t` owner:u32                           | last receipt of its records  |
//! | `f`    | `f` owner:u32 `b` leaf:u16              | leaf index: folded entries   |
//! | `f`    | `f` owner:u32 `t` group:u8 batch:u64    | leaf index: a batch's changes|
//! | `f`    | `f` owner:u32 `s`                       | leaf index: fold position    |
//! | `y`    | `y`                                     | restore from a backup going on|
//!
//! A running backup keeps the values it has yet to copy, as they were at its cut, in a tree
//! of its own ([`backup_tree`]) under the same keys; a store drops such trees when it opens.
//!
//! The leaf index (`f`, see [`super::leaf_index`]) holds each record's version and
//! fingerprint by leaf, so that anti-entropy lists a leaf without decoding its records.
//!
//! Integers are big-endian so that byte order is numeric order: an owner's records sit in
//! record-key (hash) order, its log in seq order.

use crate::core::model::{NodeCode, RecordKey};

/// The identity marker's key.
pub const IDENTITY: &[u8] = b"i";
/// Prefix of record keys.
pub const RECORD: u8 = b'r';
/// Prefix of change-log keys.
pub const LOG: u8 = b'l';
/// Prefix of document keys: kind, issuer and id.
pub const DOCUMENT: u8 = b'D';
/// Prefix of document keys written before documents were identified by their issuer
/// (kind and id only); a store moves them under [`DOCUMENT`] when it opens.
pub const LEGACY_DOCUMENT: u8 = b'd';
/// Prefix of watermark keys.
pub const WATERMARK: u8 = b'w';
/// Set while the node's own records are being restored from its parent.
pub const RESTORE_PENDING: &[u8] = b"x";
/// Prefix of the store id last seen from each child.
pub const PEER_STORE: u8 = b'c';
/// Set while a store is being restored from a backup: a store still holding it is an
/// interrupted restore, never a node's store.
pub const RESTORING_BACKUP: &[u8] = b"y";

/// The prefixes of what a backup copies, in key order: documents, children's store ids,
/// quarantine, records, receipt times, watermarks and the restore mark. The rest (change
/// log, leaf index, checkpoint, figures) is derived and rebuilt by the commits of a restore.
pub const BACKED_UP: [u8; 7] = [
    DOCUMENT, PEER_STORE, QUARANTINE, RECORD, RECEIVED, WATERMARK, b'x',
];

/// Prefix of the names of the trees in which running backups keep values as they were at
/// their cut.
pub const BACKUP_TREE_PREFIX: &[u8] = b"backup-preimages-";

/// The name of the tree of backup `id` (see [`BACKUP_TREE_PREFIX`]).
pub fn backup_tree(id: u64) -> Vec<u8> {
    let mut name = BACKUP_TREE_PREFIX.to_vec();
    name.extend_from_slice(id.to_string().as_bytes());
    name
}

/// The child of a key of [`peer_store`]'s layout.
pub fn parse_peer_store(key: &[u8]) -> Option<u32> {
    if key.len() != 5 || key[0] != PEER_STORE {
        return None;
    }
    Some(u32::from_be_bytes(key[1..5].try_into().ok()?))
}

/// The owner of a key of [`received`]'s layout.
pub fn parse_received(key: &[u8]) -> Option<u32> {
    if key.len() != 5 || key[0] != RECEIVED {
        return None;
    }
    Some(u32::from_be_bytes(key[1..5].try_into().ok()?))
}

/// `(peer, owner)` of a key of [`watermark`]'s layout.
pub fn parse_watermark(key: &[u8]) -> Option<(u32, u32)> {
    if key.len() != 9 || key[0] != WATERMARK {
        return None;
    }
    let peer = u32::from_be_bytes(key[1..5].try_into().ok()?);
    Some((peer, u32::from_be_bytes(key[5..9].try_into().ok()?)))
}

/// Prefix of the time an owner's records were last received here.
pub const RECEIVED: u8 = b't';

/// Key of the time `owner`'s records were last received.
pub fn received(owner: NodeCode) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = RECEIVED;
    k[1..].copy_from_slice(&owner.get().to_be_bytes());
    k
}

/// The checkpoint of the in-memory summaries: its header (the log extent it covers and
/// the owners it holds).
pub const CHECKPOINT: &[u8] = b"k";

/// Key of one owner's summary in the checkpoint.
pub fn checkpoint_owner(owner: NodeCode) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = b'K';
    k[1..].copy_from_slice(&owner.get().to_be_bytes());
    k
}

/// Prefix of figures derived from the records (a cache checked against their digest).
pub const FIGURES: u8 = b'g';

/// Key of the figures the reporting layer names `name`.
pub fn figures(name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(FIGURES);
    k.extend_from_slice(name);
    k
}

/// Prefix of quarantined records.
pub const QUARANTINE: u8 = b'q';

/// Prefix of the leaf index.
pub const INDEX: u8 = b'f';
const INDEX_BASE: u8 = b'b';
const INDEX_STATE: u8 = b's';
const INDEX_TAIL: u8 = b't';

fn index_owner(owner: NodeCode, part: u8) -> [u8; 6] {
    let mut k = [0u8; 6];
    k[0] = INDEX;
    k[1..5].copy_from_slice(&owner.get().to_be_bytes());
    k[5] = part;
    k
}

/// Key of the folded entries of one leaf of `owner`.
pub fn index_base(owner: NodeCode, leaf: u16) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..6].copy_from_slice(&index_owner(owner, INDEX_BASE));
    k[6..].copy_from_slice(&leaf.to_be_bytes());
    k
}

/// The leaf of an index base key of [`index_base`]'s layout.
pub fn parse_index_base(key: &[u8]) -> Option<u16> {
    if key.len() != 8 || key[0] != INDEX || key[5] != INDEX_BASE {
        return None;
    }
    Some(u16::from_be_bytes([key[6], key[7]]))
}

/// Key of the index changes one batch made to one group of `owner`'s leaves.
pub fn index_tail(owner: NodeCode, group: u8, batch: u64) -> [u8; 15] {
    let mut k = [0u8; 15];
    k[..6].copy_from_slice(&index_owner(owner, INDEX_TAIL));
    k[6] = group;
    k[7..].copy_from_slice(&batch.to_be_bytes());
    k
}

/// The batch number of an index change key of [`index_tail`]'s layout.
pub fn parse_index_tail(key: &[u8]) -> Option<u64> {
    if key.len() != 15 || key[0] != INDEX || key[5] != INDEX_TAIL {
        return None;
    }
    Some(u64::from_be_bytes(key[7..].try_into().ok()?))
}

/// Key of where the folding of `owner`'s index stands.
pub fn index_state(owner: NodeCode) -> [u8; 6] {
    index_owner(owner, INDEX_STATE)
}

/// Key of the store id last seen from `peer`.
pub fn peer_store(peer: NodeCode) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = PEER_STORE;
    k[1..].copy_from_slice(&peer.get().to_be_bytes());
    k
}

/// Key of one record.
pub fn record(owner: NodeCode, key: RecordKey) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[0] = RECORD;
    k[1..5].copy_from_slice(&owner.get().to_be_bytes());
    k[5..].copy_from_slice(&key.0);
    k
}

/// Key of a quarantined record: the same layout as [`record`] under its own prefix.
pub fn quarantine(owner: NodeCode, key: RecordKey) -> [u8; 21] {
    let mut k = record(owner, key);
    k[0] = QUARANTINE;
    k
}

/// Parses a quarantine key into `(owner, record key)`.
pub fn parse_quarantine(key: &[u8]) -> Option<(u32, RecordKey)> {
    if key.len() != 21 || key[0] != QUARANTINE {
        return None;
    }
    let owner = u32::from_be_bytes(key[1..5].try_into().ok()?);
    Some((owner, RecordKey(key[5..].try_into().ok()?)))
}

/// Splits a record key into `(owner, record key)`.
pub fn parse_record(key: &[u8]) -> Option<(u32, RecordKey)> {
    if key.len() != 21 || key[0] != RECORD {
        return None;
    }
    let owner = u32::from_be_bytes(key[1..5].try_into().ok()?);
    Some((owner, RecordKey(key[5..].try_into().ok()?)))
}

/// Prefix of every record of `owner`.
pub fn record_prefix(owner: NodeCode) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = RECORD;
    k[1..5].copy_from_slice(&owner.get().to_be_bytes());
    k
}

/// Key of one packed change-log batch.
pub fn log(owner: NodeCode, first_seq: u64, batch: u64) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[0] = LOG;
    k[1..5].copy_from_slice(&owner.get().to_be_bytes());
    k[5..13].copy_from_slice(&first_seq.to_be_bytes());
    k[13..].copy_from_slice(&batch.to_be_bytes());
    k
}

/// Splits a change-log key into `(owner, first_seq, batch)`.
pub fn parse_log(key: &[u8]) -> Option<(u32, u64, u64)> {
    if key.len() != 21 || key[0] != LOG {
        return None;
    }
    let owner = u32::from_be_bytes(key[1..5].try_into().ok()?);
    let first = u64::from_be_bytes(key[5..13].try_into().ok()?);
    let batch = u64::from_be_bytes(key[13..].try_into().ok()?);
    Some((owner, first, batch))
}

/// Key of one document: kind, a NUL (a kind never holds one), the issuer's code, then the
/// id. Two issuers' documents of one kind and id are two keys.
pub fn document(kind: &str, issuer: NodeCode, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + kind.len() + id.len());
    k.push(DOCUMENT);
    k.extend_from_slice(kind.as_bytes());
    k.push(0);
    k.extend_from_slice(&issuer.get().to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// Key of one peer watermark.
pub fn watermark(peer: NodeCode, owner: NodeCode) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = WATERMARK;
    k[1..5].copy_from_slice(&peer.get().to_be_bytes());
    k[5..].copy_from_slice(&owner.get().to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Kind;

    #[test]
    fn log_keys_round_trip_and_sort_by_seq() {
        let owner: NodeCode = "440100".parse().unwrap();
        let a = log(owner, 5, 9);
        let b = log(owner, 6, 1);
        assert!(a < b, "seq orders before batch number");
        assert_eq!(parse_log(&a), Some((440_100, 5, 9)));
        assert_eq!(parse_log(b"x"), None);
    }

    #[test]
    fn index_changes_sort_by_group_then_batch() {
        let owner: NodeCode = "440100".parse().unwrap();
        assert!(index_tail(owner, 0, 9) < index_tail(owner, 1, 2));
        assert!(index_tail(owner, 1, 2) < index_tail(owner, 1, 3));
        assert_eq!(parse_index_tail(&index_tail(owner, 3, 77)), Some(77));
        assert_eq!(parse_index_tail(&index_base(owner, 3)), None);
        assert_eq!(parse_index_base(&index_base(owner, 3)), Some(3));
        assert_eq!(parse_index_base(&index_tail(owner, 3, 77)), None);
        assert!(index_base(owner, 4095)[..] < index_state(owner)[..]);
        assert!(index_state(owner)[..] < index_tail(owner, 0, 0)[..]);
    }

    #[test]
    fn what_a_backup_copies_is_in_key_order_and_parses_back() {
        assert!(BACKED_UP.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(BACKED_UP[6], RESTORE_PENDING[0]);
        let (a, b): (NodeCode, NodeCode) = ("440000".parse().unwrap(), "440100".parse().unwrap());
        assert_eq!(parse_watermark(&watermark(a, b)), Some((440_000, 440_100)));
        assert_eq!(parse_peer_store(&peer_store(b)), Some(440_100));
        assert_eq!(parse_received(&received(b)), Some(440_100));
        assert_eq!(parse_received(&peer_store(b)), None);
        assert!(backup_tree(7).starts_with(BACKUP_TREE_PREFIX));
    }

    #[test]
    fn records_of_an_owner_share_a_prefix() {
        let owner: NodeCode = "440100".parse().unwrap();
        let key = RecordKey::of(Kind::Vacancy, "V-1");
        let k = record(owner, key);
        assert!(k.starts_with(&record_prefix(owner)));
        assert_eq!(parse_record(&k), Some((440_100, key)));
    }
}

//! The storage interface of the core: the [`Store`] trait the protocol sessions read
//! through, the [`WriteBatch`] they hand back to be committed, and the errors a store
//! reports. The node shell implements it on sled (`node::storage`); the protocol tests
//! implement it in memory.
//!
//! The contract every implementation keeps: [`Store::commit`] is atomic and returns Ok
//! only once the batch is durable (flushed and fsynced); only then may anything that
//! depends on it be acknowledged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::codec::CodecError;
use crate::core::model::document::StoredDocument;
use crate::core::model::{Envelope, Kind, NodeCode, Record, RecordKey};
use crate::core::reconcile::Digest;

/// Largest encoded record a store accepts. sled stores values over ~128 KiB as blob files
/// it never fsyncs, so records stay well below that.
pub const MAX_RECORD_BYTES: usize = 60 * 1024;

/// Format version of the data directory. Version 2 added the leaf index (each record's
/// version and fingerprint by reconciliation leaf); a version-1 store gains it on open.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this build opens (and brings up to [`FORMAT_VERSION`]).
pub const OLDEST_FORMAT: u32 = 1;

/// The identity marker written when a data directory is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Data-directory format version.
    pub format: u32,
    /// The node this directory belongs to.
    pub node: NodeCode,
    /// Random id of this store, new with every fresh directory (a restored or cloned
    /// store is recognisable by it).
    pub store_id: [u8; 16],
    /// When the directory was created, ms since the Unix epoch.
    pub created_at_ms: i64,
}

/// A stored record found corrupted (its data no longer matches its hash), to be removed so
/// that the summaries stop counting it and anti-entropy fetches a good copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The record's envelope as stored.
    pub envelope: Envelope,
}

/// One record's identity in a reconciliation leaf: key, version and the low 64 bits of its
/// fingerprint.
pub type LeafItem = (RecordKey, u64, u64);

/// Where a verification pass over the records stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubCursor {
    /// The last record key verified (`None`: start from the beginning).
    pub after: Option<Vec<u8>>,
    /// Records verified in this pass.
    pub verified: u64,
    /// Completed passes.
    pub passes: u64,
}

/// A record to write and the fingerprint of the version it replaces.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordWrite {
    /// The new version.
    pub record: Record,
    /// Fingerprint of the stored version it replaces (`None` for a new record).
    pub prev_fp: Option<u128>,
}

/// Everything one commit writes, atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    /// Record versions.
    pub records: Vec<RecordWrite>,
    /// Documents.
    pub documents: Vec<StoredDocument>,
    /// Peer watermarks `(peer, owner, seq)`.
    pub watermarks: Vec<(NodeCode, NodeCode, u64)>,
    /// Corrupted records to remove.
    pub removals: Vec<Removal>,
    /// Set or clear "restore my records from my parent" (a node that lost its disk).
    pub restore_pending: Option<bool>,
    /// The store id a child presented `(child, store id)`.
    pub peer_store_ids: Vec<(NodeCode, [u8; 16])>,
    /// Received records refused by validation, kept for an operator to inspect.
    pub quarantine: Vec<QuarantinedRecord>,
    /// When the batch's records arrived from a peer (ms since the epoch): stored per owner
    /// as the freshness of that owner's data here. `None` for local writes.
    pub received_at_ms: Option<i64>,
}

/// A received record that failed the hash check or validation here: not applied, kept
/// (one entry per owner and record key, the latest wins) until a valid version of the
/// same record replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedRecord {
    /// The record as received.
    pub record: Record,
    /// Why it was refused.
    pub reason: String,
    /// The peer it came from.
    pub from: NodeCode,
    /// When it arrived (this node's clock, ms since the epoch).
    pub received_at_ms: i64,
}

/// Quarantined records kept per owner at most; beyond this they are reported, not kept,
/// so a misbehaving child cannot fill the disk with refused records.
pub const MAX_QUARANTINED_PER_OWNER: u64 = 10_000;

impl WriteBatch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.documents.is_empty()
            && self.watermarks.is_empty()
            && self.removals.is_empty()
            && self.restore_pending.is_none()
            && self.peer_store_ids.is_empty()
            && self.quarantine.is_empty()
    }
}

/// Why a store operation failed. After any `Storage` error the handle is poisoned and the
/// node must stop acknowledging writes until it is restarted.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory holds no identity marker: it is not an lmsync data directory.
    #[error("{0} is not an lmsync data directory (no identity marker); run `lmsync init`")]
    NotInitialised(String),
    /// The directory already holds a store.
    #[error("{0} already holds an lmsync store")]
    AlreadyInitialised(String),
    /// Another process has the store open.
    #[error(
        "the data directory {0} is in use by another process: is this node already running? \
         (`lmsync status` asks it)"
    )]
    InUse(String),
    /// The directory belongs to another node.
    #[error("data directory belongs to node {found}, not {expected}; refusing to open it")]
    WrongNode {
        /// Node code in the marker.
        found: NodeCode,
        /// Node code the caller expected.
        expected: NodeCode,
    },
    /// The directory was written by an incompatible version of lmsync.
    #[error(
        "data directory format {found} is not supported (this build reads {OLDEST_FORMAT} to {FORMAT_VERSION})"
    )]
    Format {
        /// Format in the marker.
        found: u32,
    },
    /// The disk is full: nothing was acknowledged; the node reopens once space returns.
    #[error("storage full: {0}")]
    Full(String),
    /// sled or the file system failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored bytes do not decode: the store is corrupted.
    #[error("corrupted store value: {0}")]
    Corrupt(#[from] CodecError),
    /// A record encodes larger than [`MAX_RECORD_BYTES`].
    #[error("record {kind}/{id} encodes to {bytes} bytes, over the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge {
        /// Kind.
        kind: Kind,
        /// Id.
        id: String,
        /// Encoded size.
        bytes: usize,
    },
    /// The store on disk holds less than was committed to it, or its files do not decode:
    /// it cannot be trusted and must be rebuilt (see docs/OPERATIONS.md).
    #[error("the store is damaged: {0}")]
    Damaged(String),
    /// An earlier storage error poisoned this handle.
    #[error("store is unavailable after an earlier error ({0}); restart the node")]
    Poisoned(String),
}

/// Counts per owner and kind, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerCounts {
    /// Highest seq stored.
    pub last_seq: u64,
    /// Records per kind.
    pub by_kind: BTreeMap<Kind, u64>,
}

/// The storage a node needs. Implementations must make [`Store::commit`] atomic and
/// durable before returning Ok.
pub trait Store: Send + Sync {
    /// The identity marker of this store.
    fn identity(&self) -> &NodeIdentity;
    /// One record, if stored.
    fn get_record(&self, owner: NodeCode, key: RecordKey) -> Result<Option<Record>, StoreError>;
    /// Reconciliation buckets of `owner` at `depth` under `parents` (see
    /// [`OwnerSummary::children`]).
    fn buckets(
        &self,
        owner: NodeCode,
        depth: u32,
        parents: &[u16],
    ) -> Vec<crate::core::reconcile::Bucket>;
    /// The records of `owner` in one leaf bucket, in key order.
    fn leaf_items(&self, owner: NodeCode, leaf: u16) -> Result<Vec<LeafItem>, StoreError>;
    /// The records of `owner` in each of `leaves`, one list per leaf in the order asked,
    /// each in key order. A store that reads many leaves faster together overrides it.
    fn leaves_items(
        &self,
        owner: NodeCode,
        leaves: &[u16],
    ) -> Result<Vec<Vec<LeafItem>>, StoreError> {
        leaves
            .iter()
            .map(|leaf| self.leaf_items(owner, *leaf))
            .collect()
    }
    /// Verifies up to `max` records after the cursor; returns those whose data no longer
    /// matches their hash.
    fn scrub(&self, cursor: &mut ScrubCursor, max: usize) -> Result<Vec<Removal>, StoreError>;
    /// False only when `owner` certainly has no record under `key` (skips a read).
    fn may_contain(&self, owner: NodeCode, key: RecordKey) -> bool;
    /// Writes a batch atomically and durably.
    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError>;
    /// Digest of the stored records, optionally restricted to one owner and/or kind.
    fn digest(&self, owner: Option<NodeCode>, kind: Option<Kind>) -> Digest;
    /// Highest seq stored for `owner` (0 if none).
    fn last_seq(&self, owner: NodeCode) -> u64;
    /// Counts for every owner with records here.
    fn owner_counts(&self) -> BTreeMap<NodeCode, OwnerCounts>;
    /// One document, if stored.
    fn get_document(
        &self,
        kind: &str,
        issuer: NodeCode,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError>;
    /// Every stored document.
    fn documents(&self) -> Result<Vec<StoredDocument>, StoreError>;
    /// Quarantined records, of one owner or all, at most `limit` of them.
    fn quarantined(
        &self,
        owner: Option<NodeCode>,
        limit: usize,
    ) -> Result<Vec<QuarantinedRecord>, StoreError>;
    /// How many quarantined records each owner has here.
    fn quarantine_counts(&self) -> BTreeMap<NodeCode, u64>;
    /// When records of `owner` last arrived here from a peer (ms since the epoch).
    fn last_received(&self, owner: NodeCode) -> Result<Option<i64>, StoreError>;
    /// Every record of `owner`, in key order, read lazily (analysis, export).
    fn records_of(
        &self,
        owner: NodeCode,
    ) -> Box<dyn Iterator<Item = Result<Record, StoreError>> + '_>;
    /// The seq up to which `peer` has acknowledged `owner`'s records.
    fn watermark(&self, peer: NodeCode, owner: NodeCode) -> Result<u64, StoreError>;
    /// How far this node holds `owner`'s records without gaps: every record version with
    /// a seq up to this one is here (or superseded here). For the node's own records that
    /// is its last seq; for others, the last batch received in order.
    fn complete_through(&self, owner: NodeCode) -> Result<u64, StoreError> {
        if owner == self.identity().node {
            Ok(self.last_seq(owner))
        } else {
            self.watermark(self.identity().node, owner)
        }
    }
    /// The current records of `owner` whose seq lies after `after` and at most `upto`,
    /// at most `max` of them, and the last seq the answer covers (every current record
    /// with a seq in `after+1..=to` is in the answer).
    fn changes(
        &self,
        owner: NodeCode,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<(u64, Vec<Record>), StoreError>;
    /// Bytes on disk.
    fn size_on_disk(&self) -> u64;
    /// True while the node's own records are to be restored from its parent.
    fn restore_pending(&self) -> Result<bool, StoreError>;
    /// The store id `peer` presented last time, if it ever connected.
    fn peer_store_id(&self, peer: NodeCode) -> Result<Option<[u8; 16]>, StoreError>;
    /// The error that poisoned this store, if any.
    fn fault(&self) -> Option<String>;
    /// True when the store was poisoned by a full disk (it can reopen once space returns).
    fn full(&self) -> bool;
    /// Figures derived from the records, kept under `key` (see
    /// `crate::reporting::scan::figures`). A store that keeps none answers `None`, and the
    /// figures are computed afresh.
    fn figures(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = key;
        Ok(None)
    }
    /// Keeps derived figures under `key`. Not a commit of records: figures are checked
    /// against the records' digest whenever they are read, so losing them in a crash
    /// costs only the time to compute them again.
    fn put_figures(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let _ = (key, value);
        Ok(())
    }
    /// The key of every figure kept.
    fn figures_keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(Vec::new())
    }
}

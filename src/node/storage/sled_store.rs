//! The sled implementation of [`Store`]: one tree, prefix-keyed (see [`super::keys`]).
//!
//! Durability: sled 0.34's `flush` writes with `sync_file_range`, which survives a process
//! crash but not a power cut, so every commit also `fdatasync`s the data file before it
//! returns. Summaries live in memory and are rebuilt on open from the packed change log.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use super::seal::{LogExtent, Seal, SealCheck};
use super::{LogEntry, OwnerState, keys};
use crate::core::codec;
use crate::core::model::document::StoredDocument;
use crate::core::model::{Kind, NodeCode, Record, RecordKey};
use crate::core::reconcile::{Change, Digest};
use crate::core::store::{
    FORMAT_VERSION, MAX_RECORD_BYTES, NodeIdentity, OwnerCounts, QuarantinedRecord, Store,
    StoreError, WriteBatch,
};

/// Sled tuning an operator may set.
#[derive(Debug, Clone, Copy)]
pub struct SledOptions {
    /// Page-cache budget in bytes (RSS can reach several times this; see RELIABILITY).
    pub cache_capacity: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_capacity: 256 << 20,
        }
    }
}

/// A node's durable store on sled.
pub struct SledStore {
    db: sled::Db,
    data_file: File,
    /// sled's blob directory and the blob files already fsynced there.
    blobs: (PathBuf, Mutex<BTreeSet<std::ffi::OsString>>),
    identity: NodeIdentity,
    owners: RwLock<BTreeMap<NodeCode, OwnerState>>,
    /// Next change-log batch number; also serialises commits.
    /// Serialises commits: the next batch number and the seal that follows them.
    commits: Mutex<Commits>,
    fault: RwLock<Option<String>>,
    /// The fault was a full disk.
    full: std::sync::atomic::AtomicBool,
    /// Keys under quarantine (bounded per owner), so that a valid version can clear its
    /// entry without a read on every write.
    quarantined: RwLock<BTreeSet<(NodeCode, RecordKey)>>,
}

/// What one commit at a time updates.
#[derive(Debug)]
struct Commits {
    next_batch: u64,
    seal: Seal,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("identity", &self.identity)
            .finish()
    }
}

fn storage_error(e: impl std::fmt::Display) -> StoreError {
    let text = e.to_string();
    if text.contains("No space left") || text.contains("os error 28") {
        StoreError::Full(text)
    } else {
        StoreError::Storage(text)
    }
}

/// Frees what sled deferred while applying a batch. `apply_batch` rewrites every tree node
/// it touches under one epoch guard and defers freeing each old copy; crossbeam-epoch frees
/// deferred garbage only 8 bags (of 64 objects) per 128 pins of a thread, so a writer of
/// large batches, one pin per thousands of node copies, outpaces it and the garbage is
/// never freed: measured ~2.2 KB of memory kept per record written, for the life of the
/// process, whatever the cache size. Each flush of a fresh guard seals this thread's bag,
/// advances the epoch when no other thread holds it back, and frees up to 8 expired bags,
/// so a flush per 64 records (several times what a batch defers) keeps up.
fn reclaim_deferred(records: usize) {
    for _ in 0..records / 64 + 16 {
        crossbeam_epoch::pin().flush();
    }
}

fn open_db(path: &Path, options: SledOptions) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(options.cache_capacity)
        // We flush (and fsync) on every commit; sled's own timer would only add IO.
        .flush_every_ms(None);
    // A store closed a moment ago in this process may still hold its file lock while
    // sled's background threads let go of it; wait a bounded time for the lock only.
    let mut attempts = 0;
    loop {
        match open_catching_panics(&config)? {
            Err(e) if e.to_string().contains("could not acquire lock") && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(sled::Error::Corruption { at, .. }) => {
                return Err(StoreError::Damaged(format!(
                    "sled found corrupted data{}",
                    at.map_or(String::new(), |at| format!(" at {at}"))
                )));
            }
            other => return other.map_err(storage_error),
        }
    }
}

/// Opens sled, turning a panic in its recovery into [`StoreError::Damaged`]: sled 0.34
/// panics instead of returning an error on some damaged files (e.g. "tried to serialize
/// Uninitialized" while rebuilding its snapshot), and a node must be able to set such a
/// store aside rather than crash on every start. The panic is reported in the error, not
/// printed with a backtrace as if lmsync had crashed.
fn open_catching_panics(config: &sled::Config) -> Result<sled::Result<sled::Db>, StoreError> {
    quiet_panics::catch(|| config.open()).map_err(|what| {
        StoreError::Damaged(format!("sled failed while recovering its files: {what}"))
    })
}

/// A panic hook that stays silent for panics on a thread that is opening sled (they become
/// [`StoreError::Damaged`]) and hands every other panic to the hook that was there before.
/// The flag is per thread, so no other thread's panic is ever hidden.
mod quiet_panics {
    use std::cell::{Cell, RefCell};
    use std::sync::Once;

    thread_local! {
        static RECOVERING: Cell<bool> = const { Cell::new(false) };
        static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// Runs `f`; a panic in it comes back as its message and location, unprinted.
    pub(super) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
        install();
        let result = RECOVERING.with(|r| {
            r.set(true);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            r.set(false);
            result
        });
        result.map_err(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            match LOCATION.with(RefCell::take) {
                Some(at) => format!("{what} ({at})"),
                None => what,
            }
        })
    }

    fn install() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if RECOVERING.with(Cell::get) {
                    let at = info.location().map(ToString::to_string);
                    LOCATION.with(|l| *l.borrow_mut() = at);
                } else {
                    previous(info);
                }
            }));
        });
    }
}

/// fsyncs the file or directory at `path`.
fn fsync_path(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(storage_error)
}

impl SledStore {
    /// Creates a new store for `node` in `path`, which must not hold one already.
    pub fn create(
        path: &Path,
        node: NodeCode,
        store_id: [u8; 16],
        now_ms: i64,
        options: SledOptions,
    ) -> Result<Self, StoreError> {
        Self::create_marked(path, node, store_id, now_ms, options, false)
    }

    /// Like [`SledStore::create`]; with `restore`, the store is born marked to restore
    /// its own records from the parent (in the same write as its identity, so that no
    /// crash leaves an empty, unmarked store that would pass for the truth).
    pub fn create_marked(
        path: &Path,
        node: NodeCode,
        store_id: [u8; 16],
        now_ms: i64,
        options: SledOptions,
        restore: bool,
    ) -> Result<Self, StoreError> {
        if path.join("db").exists() || path.join("conf").exists() {
            return Err(StoreError::AlreadyInitialised(path.display().to_string()));
        }
        std::fs::create_dir_all(path).map_err(storage_error)?;
        let db = open_db(path, options)?;
        let identity = NodeIdentity {
            format: FORMAT_VERSION,
            node,
            store_id,
            created_at_ms: now_ms,
        };
        let mut first = sled::Batch::default();
        first.insert(keys::IDENTITY, codec::encode(&identity)?);
        if restore {
            first.insert(keys::RESTORE_PENDING, &[1u8][..]);
        }
        db.apply_batch(first).map_err(storage_error)?;
        db.flush().map_err(storage_error)?;
        fsync_path(&data_file_path(path))?;
        drop(db);
        fsync_path(path)?;
        Self::open(path, node, options)
    }

    /// Opens the store in `path`, refusing one that belongs to another node.
    pub fn open(path: &Path, expected: NodeCode, options: SledOptions) -> Result<Self, StoreError> {
        if !path.join("conf").exists() {
            return Err(StoreError::NotInitialised(path.display().to_string()));
        }
        let db = open_db(path, options)?;
        let identity = read_identity(&db, path).map_err(|e| match e {
            // `conf` says a store was here: sled coming back without our marker is damage.
            StoreError::NotInitialised(_) => {
                StoreError::Damaged("sled's files hold no store identity".into())
            }
            other => as_damage(other),
        })?;
        if identity.node != expected {
            return Err(StoreError::WrongNode {
                found: identity.node,
                expected,
            });
        }
        let data_file = File::open(data_file_path(path)).map_err(storage_error)?;
        let (owners, extent) = rebuild_summaries(&db).map_err(as_damage)?;
        let quarantined = quarantined_keys(&db).map_err(as_damage)?;
        let seal = open_seal(path, identity.store_id, extent)?;
        Ok(SledStore {
            db,
            data_file,
            blobs: (path.join("blobs"), Mutex::new(BTreeSet::new())),
            identity,
            owners: RwLock::new(owners),
            commits: Mutex::new(Commits {
                next_batch: extent.next_batch,
                seal,
            }),
            fault: RwLock::new(None),
            full: std::sync::atomic::AtomicBool::new(false),
            quarantined: RwLock::new(quarantined),
        })
    }

    /// Reads the identity marker of a data directory without opening it for a node.
    pub fn peek_identity(path: &Path) -> Result<NodeIdentity, StoreError> {
        if !path.join("conf").exists() {
            return Err(StoreError::NotInitialised(path.display().to_string()));
        }
        let db = open_db(path, SledOptions::default())?;
        read_identity(&db, path)
    }

    /// Every record of `owner`, in record-key order (tests, verification, export).
    pub fn scan_owner(
        &self,
        owner: NodeCode,
    ) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
        self.db.scan_prefix(keys::record_prefix(owner)).map(|item| {
            let (_, v) = item.map_err(storage_error)?;
            Ok(codec::decode::<Record>(&v)?)
        })
    }

    /// Overwrites a stored record's bytes without touching the log or summaries.
    /// Only for fault-injection tests of corruption detection.
    #[doc(hidden)]
    pub fn corrupt_record_for_test(
        &self,
        owner: NodeCode,
        record: &Record,
    ) -> Result<(), StoreError> {
        let k = keys::record(owner, record.envelope.key());
        self.db
            .insert(k, codec::encode(record)?)
            .map_err(storage_error)?;
        self.db.flush().map_err(storage_error)?;
        Ok(())
    }

    /// Change-log entries of `owner` with seq in `after+1..=upto`, in seq order.
    fn log_entries(
        &self,
        owner: NodeCode,
        after: u64,
        upto: u64,
    ) -> impl Iterator<Item = Result<LogEntry, StoreError>> + '_ {
        // Start at the batch that holds seq `after + 1`: the last one starting at or before it.
        let probe = keys::log(owner, after.saturating_add(1), u64::MAX);
        let start = self
            .db
            .range(keys::log(owner, 0, 0)..=probe)
            .next_back()
            .and_then(Result::ok)
            .map_or(keys::log(owner, after.saturating_add(1), 0), |(k, _)| {
                let mut key = [0u8; 21];
                key.copy_from_slice(&k);
                key
            });
        self.db
            .range(start..=keys::log(owner, upto, u64::MAX))
            .map(|item| {
                let (_, v) = item.map_err(storage_error)?;
                Ok(codec::decode::<Vec<LogEntry>>(&v)?)
            })
            .flat_map(|batch: Result<Vec<LogEntry>, StoreError>| match batch {
                Ok(entries) => entries.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
            .filter(move |e| e.as_ref().map_or(true, |e| e.seq > after && e.seq <= upto))
    }

    fn poison(&self, err: &StoreError) {
        let mut fault = self.fault.write().unwrap_or_else(|p| p.into_inner());
        if fault.is_none() {
            *fault = Some(err.to_string());
            let full = matches!(err, StoreError::Full(_));
            self.full.store(full, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Why a poisoned store refuses a commit. A full disk stays a full disk whichever
    /// write (a client's, a peer's, the scrub's) hit it first, so that clients keep
    /// seeing the cause they can act on and the node's restart-in-place applies.
    fn refusal(&self, fault: String) -> StoreError {
        if self.full() {
            StoreError::Full(format!(
                "an earlier write failed ({fault}); nothing more is acknowledged until space returns"
            ))
        } else {
            StoreError::Poisoned(fault)
        }
    }

    fn build_batch(&self, batch: &WriteBatch, batch_no: u64) -> Result<BuiltBatch, StoreError> {
        let mut sled_batch = sled::Batch::default();
        let quarantine = self.quarantine_changes(batch, &mut sled_batch)?;
        let mut logs: BTreeMap<NodeCode, Vec<LogEntry>> = BTreeMap::new();
        for w in &batch.records {
            let e = &w.record.envelope;
            let value = codec::encode(&w.record)?;
            if value.len() > MAX_RECORD_BYTES {
                return Err(StoreError::TooLarge {
                    kind: e.kind,
                    id: e.id.clone(),
                    bytes: value.len(),
                });
            }
            sled_batch.insert(&keys::record(e.owner, e.key())[..], value);
            logs.entry(e.owner).or_default().push(LogEntry {
                seq: e.seq,
                key: e.key(),
                kind: e.kind,
                version: e.version,
                fp: Some(e.fingerprint()),
                prev_fp: w.prev_fp,
            });
        }
        for r in &batch.removals {
            let e = &r.envelope;
            sled_batch.remove(&keys::record(e.owner, e.key())[..]);
            logs.entry(e.owner).or_default().push(LogEntry {
                seq: e.seq,
                key: e.key(),
                kind: e.kind,
                version: e.version,
                fp: None,
                prev_fp: Some(e.fingerprint()),
            });
        }
        let mut applied = Vec::with_capacity(batch.records.len());
        for (owner, mut entries) in logs {
            entries.sort_by_key(|x| x.seq);
            for chunk in log_chunks(&entries) {
                let first = chunk.first().map_or(0, |x| x.seq);
                sled_batch.insert(
                    &keys::log(owner, first, batch_no)[..],
                    codec::encode(&chunk)?,
                );
            }
            applied.extend(entries.into_iter().map(|x| (owner, x)));
        }
        for d in &batch.documents {
            sled_batch.insert(keys::document(&d.kind, &d.id), codec::encode(d)?);
        }
        for (peer, id) in &batch.peer_store_ids {
            sled_batch.insert(&keys::peer_store(*peer)[..], &id[..]);
        }
        match batch.restore_pending {
            Some(true) => sled_batch.insert(keys::RESTORE_PENDING, &[1u8][..]),
            Some(false) => sled_batch.remove(keys::RESTORE_PENDING),
            None => {}
        }
        if let Some(at) = batch.received_at_ms {
            let owners: BTreeSet<NodeCode> = batch
                .records
                .iter()
                .map(|w| w.record.envelope.owner)
                .collect();
            for owner in owners {
                sled_batch.insert(&keys::received(owner)[..], &at.to_be_bytes()[..]);
            }
        }
        for (peer, owner, seq) in &batch.watermarks {
            sled_batch.insert(&keys::watermark(*peer, *owner)[..], &seq.to_be_bytes()[..]);
        }
        Ok((sled_batch, applied, quarantine))
    }

    /// Adds new quarantine entries (within the per-owner cap) and removes those that a
    /// record in this batch supersedes. Returns the change to apply to the in-memory set
    /// once the batch is durable.
    fn quarantine_changes(
        &self,
        batch: &WriteBatch,
        sled_batch: &mut sled::Batch,
    ) -> Result<QuarantineChange, StoreError> {
        let held = self.quarantined.read().unwrap_or_else(|p| p.into_inner());
        let mut change = QuarantineChange::default();
        for w in &batch.records {
            let entry = (w.record.envelope.owner, w.record.envelope.key());
            if held.contains(&entry) {
                sled_batch.remove(&keys::quarantine(entry.0, entry.1)[..]);
                change.cleared.push(entry);
            }
        }
        let mut per_owner: BTreeMap<NodeCode, u64> = BTreeMap::new();
        for q in &batch.quarantine {
            let entry = (q.record.envelope.owner, q.record.envelope.key());
            let count = per_owner.entry(entry.0).or_insert_with(|| {
                let all = (entry.0, RecordKey([0; 16]))..=(entry.0, RecordKey([0xff; 16]));
                held.range(all).count() as u64
            });
            let known = held.contains(&entry) || change.added.contains(&entry);
            if !known && *count >= crate::core::store::MAX_QUARANTINED_PER_OWNER {
                continue;
            }
            if !known {
                *count += 1;
                change.added.insert(entry);
            }
            sled_batch.insert(&keys::quarantine(entry.0, entry.1)[..], codec::encode(q)?);
        }
        Ok(change)
    }

    fn write_durably(&self, sled_batch: sled::Batch, records: usize) -> Result<(), StoreError> {
        let applied = self.db.apply_batch(sled_batch);
        reclaim_deferred(records);
        applied.map_err(storage_error)?;
        self.db.flush().map_err(storage_error)?;
        self.data_file.sync_data().map_err(storage_error)?;
        self.sync_new_blobs()
    }

    /// fsyncs blob files sled wrote since the last commit. sled keeps pages larger than a
    /// quarter segment (a node holding large values) in files of their own and never
    /// fsyncs them; a power cut could otherwise lose an acknowledged batch.
    fn sync_new_blobs(&self) -> Result<(), StoreError> {
        let (dir, synced) = &self.blobs;
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        let mut synced = synced.lock().unwrap_or_else(|p| p.into_inner());
        let mut present = BTreeSet::new();
        let mut new = false;
        for entry in entries {
            let name = entry.map_err(storage_error)?.file_name();
            if !synced.contains(&name) {
                // A blob sled deleted meanwhile needs no sync.
                if let Ok(f) = File::open(dir.join(&name)) {
                    f.sync_all().map_err(storage_error)?;
                    new = true;
                }
            }
            present.insert(name);
        }
        if new {
            fsync_path(dir)?;
        }
        *synced = present;
        Ok(())
    }

    /// How many blob files are known fsynced (tests of the durability of large batches).
    #[doc(hidden)]
    pub fn synced_blob_files(&self) -> usize {
        self.blobs.1.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Undecodable bytes found while opening mean a damaged store.
fn as_damage(e: StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(c) => StoreError::Damaged(format!("undecodable store value: {c}")),
        other => other,
    }
}

/// Checks the store against its seal; see [`super::seal`].
fn open_seal(path: &Path, store_id: [u8; 16], found: LogExtent) -> Result<Seal, StoreError> {
    let (seal, check) = Seal::open(path, store_id, found).map_err(storage_error)?;
    match check {
        SealCheck::Intact => {}
        SealCheck::Missing if found == LogExtent::default() => {}
        SealCheck::Missing => tracing::warn!(
            path = %path.display(),
            "The store had no commit seal; damage detection on open starts from now"
        ),
        SealCheck::Unreadable => tracing::warn!(
            path = %path.display(),
            "The store's commit seal was unreadable and has been replaced"
        ),
        SealCheck::Damaged(detail) => return Err(StoreError::Damaged(detail)),
    }
    Ok(seal)
}

fn data_file_path(path: &Path) -> PathBuf {
    path.join("db")
}

fn read_identity(db: &sled::Db, path: &Path) -> Result<NodeIdentity, StoreError> {
    let bytes = db
        .get(keys::IDENTITY)
        .map_err(storage_error)?
        .ok_or_else(|| StoreError::NotInitialised(path.display().to_string()))?;
    let identity: NodeIdentity = codec::decode(&bytes)?;
    if identity.format != FORMAT_VERSION {
        return Err(StoreError::Format {
            found: identity.format,
        });
    }
    Ok(identity)
}

fn apply_entry(owners: &mut BTreeMap<NodeCode, OwnerState>, owner: NodeCode, e: &LogEntry) {
    let state = owners.entry(owner).or_default();
    state.last_seq = state.last_seq.max(e.seq);
    if e.prev_fp.is_none() && e.fp.is_some() {
        state.keys.insert(e.key);
    }
    state.summary.apply(&Change {
        key: e.key,
        kind: e.kind,
        fp: e.fp,
        prev_fp: e.prev_fp,
    });
}

/// Change-log entries packed under one key at most. About 40 bytes each, so a value stays
/// near 40 KiB: sled stores values over about 128 KiB as separate blob files, and does not
/// fsync those, which would leave an acknowledged batch's log at the mercy of a power cut.
const LOG_CHUNK: usize = 1000;

/// Splits one owner's entries of a batch (sorted by seq) into runs of at most
/// [`LOG_CHUNK`], each starting at a higher seq than the last so that their keys differ.
fn log_chunks(entries: &[LogEntry]) -> Vec<Vec<LogEntry>> {
    let mut chunks: Vec<Vec<LogEntry>> = Vec::new();
    for e in entries {
        let start_new = chunks
            .last()
            .is_none_or(|c| c.len() >= LOG_CHUNK && c.first().is_some_and(|f| e.seq > f.seq));
        if start_new {
            chunks.push(Vec::new());
        }
        if let Some(c) = chunks.last_mut() {
            c.push(e.clone());
        }
    }
    chunks
}

/// A sled batch ready to apply, the change-log entries it adds (to move the summaries)
/// and its change to the quarantine set, both applied once it is durable.
type BuiltBatch = (sled::Batch, Vec<(NodeCode, LogEntry)>, QuarantineChange);

/// How one batch changes the set of quarantined keys.
#[derive(Default)]
struct QuarantineChange {
    added: BTreeSet<(NodeCode, RecordKey)>,
    cleared: Vec<(NodeCode, RecordKey)>,
}

/// The keys under quarantine, read once at open.
fn quarantined_keys(db: &sled::Db) -> Result<BTreeSet<(NodeCode, RecordKey)>, StoreError> {
    let mut keys_held = BTreeSet::new();
    for item in db.scan_prefix([keys::QUARANTINE]) {
        let (k, _) = item.map_err(storage_error)?;
        let parsed =
            keys::parse_quarantine(&k).and_then(|(o, key)| Some((NodeCode::new(o).ok()?, key)));
        match parsed {
            Some(entry) => {
                keys_held.insert(entry);
            }
            None => return Err(StoreError::Storage(format!("bad quarantine key {k:?}"))),
        }
    }
    Ok(keys_held)
}

/// Rebuilds every owner's summary from the packed change log (no record reads).
fn rebuild_summaries(
    db: &sled::Db,
) -> Result<(BTreeMap<NodeCode, OwnerState>, LogExtent), StoreError> {
    let mut owners = BTreeMap::new();
    let mut extent = LogExtent::default();
    for item in db.scan_prefix([keys::LOG]) {
        let (k, v) = item.map_err(storage_error)?;
        let (owner, _, batch) = keys::parse_log(&k)
            .ok_or_else(|| StoreError::Storage(format!("malformed log key {k:?}")))?;
        let owner = NodeCode::new(owner)
            .map_err(|e| StoreError::Storage(format!("log key names bad owner: {e}")))?;
        extent.next_batch = extent.next_batch.max(batch + 1);
        for e in codec::decode::<Vec<LogEntry>>(&v)? {
            extent.entries += 1;
            apply_entry(&mut owners, owner, &e);
        }
    }
    Ok((owners, extent))
}

impl Store for SledStore {
    fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    fn get_record(&self, owner: NodeCode, key: RecordKey) -> Result<Option<Record>, StoreError> {
        let Some(bytes) = self
            .db
            .get(keys::record(owner, key))
            .map_err(storage_error)?
        else {
            return Ok(None);
        };
        Ok(Some(codec::decode(&bytes)?))
    }

    fn changes(
        &self,
        owner: NodeCode,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<(u64, Vec<Record>), StoreError> {
        let mut records = Vec::new();
        let mut covered = after;
        for entry in self.log_entries(owner, after, upto) {
            let entry = entry?;
            if records.len() >= max {
                break;
            }
            // A later version supersedes this seq: the range still counts as covered.
            if let Some(r) = self.get_record(owner, entry.key)?
                && r.envelope.seq == entry.seq
            {
                records.push(r);
            }
            covered = entry.seq;
        }
        if records.len() < max {
            covered = upto;
        }
        Ok((covered.max(after), records))
    }

    fn buckets(
        &self,
        owner: NodeCode,
        depth: u32,
        parents: &[u16],
    ) -> Vec<crate::core::reconcile::Bucket> {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        match owners.get(&owner) {
            Some(s) => s.summary.children(depth, parents),
            None => crate::core::reconcile::OwnerSummary::default().children(depth, parents),
        }
    }

    fn leaf_items(
        &self,
        owner: NodeCode,
        leaf: u16,
    ) -> Result<Vec<crate::core::store::LeafItem>, StoreError> {
        let prefix = keys::record_prefix(owner);
        let leaf_start = |leaf: u32| {
            let mut k = prefix.to_vec();
            // The first 12 bits of the record key are the leaf.
            k.extend_from_slice(&[
                u8::try_from(leaf >> 4).unwrap_or(u8::MAX),
                u8::try_from((leaf & 0xf) << 4).unwrap_or(0),
            ]);
            k
        };
        let start = leaf_start(u32::from(leaf));
        let items = if leaf == 4095 {
            self.db
                .range(start..)
                .take_while(|r| r.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
                .collect::<Vec<_>>()
        } else {
            self.db
                .range(start..leaf_start(u32::from(leaf) + 1))
                .collect::<Vec<_>>()
        };
        items
            .into_iter()
            .map(|item| {
                let (_, v) = item.map_err(storage_error)?;
                let r: Record = codec::decode(&v)?;
                let e = &r.envelope;
                #[allow(clippy::cast_possible_truncation)] // the low 64 bits are the point
                let fp = e.fingerprint() as u64;
                Ok((e.key(), e.version, fp))
            })
            .collect()
    }

    fn scrub(
        &self,
        cursor: &mut crate::core::store::ScrubCursor,
        max: usize,
    ) -> Result<Vec<crate::core::store::Removal>, StoreError> {
        let start = match &cursor.after {
            Some(k) => std::ops::Bound::Excluded(k.clone()),
            None => std::ops::Bound::Included(vec![keys::RECORD]),
        };
        let end = std::ops::Bound::Excluded(vec![keys::RECORD + 1]);
        let mut corrupt = Vec::new();
        let mut seen = 0;
        for item in self.db.range::<Vec<u8>, _>((start, end)).take(max) {
            let (k, v) = item.map_err(storage_error)?;
            seen += 1;
            cursor.after = Some(k.to_vec());
            match codec::decode::<Record>(&v) {
                Ok(r) if r.verify_hash()? => {}
                Ok(r) => corrupt.push(crate::core::store::Removal {
                    envelope: r.envelope,
                }),
                // Undecodable bytes name no envelope to remove; surface them loudly.
                Err(e) => tracing::error!(key = ?k, error = %e, "Undecodable record in the store"),
            }
        }
        cursor.verified += seen as u64;
        if seen < max {
            cursor.after = None;
            cursor.passes += 1;
        }
        Ok(corrupt)
    }

    fn may_contain(&self, owner: NodeCode, key: RecordKey) -> bool {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        owners.get(&owner).is_some_and(|s| s.keys.may_contain(key))
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        if let Some(f) = self.fault() {
            return Err(self.refusal(f));
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut commits = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        let batch_no = commits.next_batch;
        let (sled_batch, applied, quarantine) = self.build_batch(&batch, batch_no)?;
        if let Err(e) = self.write_durably(sled_batch, batch.records.len()) {
            self.poison(&e);
            return Err(e);
        }
        commits.next_batch += 1;
        if !applied.is_empty()
            && let Err(e) = commits.seal.advance(batch_no, applied.len() as u64)
        {
            // The commit is durable; a seal left behind only weakens the next check.
            tracing::warn!(error = %e, "Could not update the commit seal");
        }
        if !(quarantine.added.is_empty() && quarantine.cleared.is_empty()) {
            let mut held = self.quarantined.write().unwrap_or_else(|p| p.into_inner());
            quarantine.cleared.iter().for_each(|e| {
                held.remove(e);
            });
            held.extend(quarantine.added);
        }
        let mut owners = self.owners.write().unwrap_or_else(|p| p.into_inner());
        for (owner, e) in &applied {
            apply_entry(&mut owners, *owner, e);
        }
        Ok(())
    }

    fn digest(&self, owner: Option<NodeCode>, kind: Option<Kind>) -> Digest {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        let mut d = Digest::default();
        match owner {
            Some(o) => {
                if let Some(s) = owners.get(&o) {
                    d.merge(s.summary.digest(kind));
                }
            }
            None => owners
                .values()
                .for_each(|s| d.merge(s.summary.digest(kind))),
        }
        d
    }

    fn last_seq(&self, owner: NodeCode) -> u64 {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        owners.get(&owner).map_or(0, |s| s.last_seq)
    }

    fn owner_counts(&self) -> BTreeMap<NodeCode, OwnerCounts> {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        owners
            .iter()
            .map(|(o, s)| {
                let by_kind = s.summary.counts().filter(|(_, n)| *n > 0).collect();
                (
                    *o,
                    OwnerCounts {
                        last_seq: s.last_seq,
                        by_kind,
                    },
                )
            })
            .collect()
    }

    fn quarantined(
        &self,
        owner: Option<NodeCode>,
        limit: usize,
    ) -> Result<Vec<QuarantinedRecord>, StoreError> {
        let prefix = match owner {
            Some(o) => {
                let mut p = keys::record_prefix(o).to_vec();
                p[0] = keys::QUARANTINE;
                p
            }
            None => vec![keys::QUARANTINE],
        };
        self.db
            .scan_prefix(prefix)
            .take(limit)
            .map(|item| {
                let (_, v) = item.map_err(storage_error)?;
                Ok(codec::decode::<QuarantinedRecord>(&v)?)
            })
            .collect()
    }

    fn last_received(&self, owner: NodeCode) -> Result<Option<i64>, StoreError> {
        let Some(bytes) = self.db.get(keys::received(owner)).map_err(storage_error)? else {
            return Ok(None);
        };
        let raw: [u8; 8] = bytes
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Storage(format!("bad receipt time for {owner}")))?;
        Ok(Some(i64::from_be_bytes(raw)))
    }

    fn records_of(
        &self,
        owner: NodeCode,
    ) -> Box<dyn Iterator<Item = Result<Record, StoreError>> + '_> {
        Box::new(self.scan_owner(owner))
    }

    fn quarantine_counts(&self) -> BTreeMap<NodeCode, u64> {
        let held = self.quarantined.read().unwrap_or_else(|p| p.into_inner());
        let mut counts = BTreeMap::new();
        for (owner, _) in held.iter() {
            *counts.entry(*owner).or_insert(0) += 1;
        }
        counts
    }

    fn get_document(&self, kind: &str, id: &str) -> Result<Option<StoredDocument>, StoreError> {
        let Some(bytes) = self
            .db
            .get(keys::document(kind, id))
            .map_err(storage_error)?
        else {
            return Ok(None);
        };
        Ok(Some(codec::decode(&bytes)?))
    }

    fn documents(&self) -> Result<Vec<StoredDocument>, StoreError> {
        self.db
            .scan_prefix([keys::DOCUMENT])
            .map(|item| {
                let (_, v) = item.map_err(storage_error)?;
                Ok(codec::decode(&v)?)
            })
            .collect()
    }

    fn watermark(&self, peer: NodeCode, owner: NodeCode) -> Result<u64, StoreError> {
        let Some(bytes) = self
            .db
            .get(keys::watermark(peer, owner))
            .map_err(storage_error)?
        else {
            return Ok(0);
        };
        let arr: [u8; 8] = bytes
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Storage("watermark value is not 8 bytes".into()))?;
        Ok(u64::from_be_bytes(arr))
    }

    fn peer_store_id(&self, peer: NodeCode) -> Result<Option<[u8; 16]>, StoreError> {
        let Some(bytes) = self.db.get(keys::peer_store(peer)).map_err(storage_error)? else {
            return Ok(None);
        };
        let id: [u8; 16] = bytes
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Storage("a peer store id is not 16 bytes".into()))?;
        Ok(Some(id))
    }

    fn restore_pending(&self) -> Result<bool, StoreError> {
        self.db
            .contains_key(keys::RESTORE_PENDING)
            .map_err(storage_error)
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    fn fault(&self) -> Option<String> {
        self.fault.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn full(&self) -> bool {
        self.full.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::quiet_panics;

    #[test]
    fn a_panic_while_opening_comes_back_as_its_message_and_place() {
        let caught = quiet_panics::catch(|| -> u32 { panic!("tried to serialize Uninitialized") });
        let message = caught.unwrap_err();
        assert!(
            message.starts_with("tried to serialize Uninitialized ("),
            "{message}"
        );
        assert!(message.contains("sled_store.rs"), "{message}");
        assert_eq!(quiet_panics::catch(|| 7), Ok(7));
    }
}

//! Opening a sled store: creating a marked directory, recovering sled (a panic in its
//! recovery is a damaged store, not a crash), checking the commit seal and rebuilding the
//! in-memory summaries (from the checkpoint a clean close left, else from the change log)
//! and quarantine set from what is on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use super::super::leaf_index::MIN_TAIL;
use super::super::seal::{LogExtent, Seal, SealCheck, sealed_extent};
use super::super::{LogEntry, OwnerState, keys};
use super::checkpoint::read_checkpoint;
use super::durability::fsync_path;
use super::index::build_index;
use super::{Commits, SledOptions, SledStore, apply_entry, storage_error};
use crate::core::codec;
use crate::core::model::document::StoredDocument;
use crate::core::model::{NodeCode, RecordKey};
use crate::core::store::{FORMAT_VERSION, NodeIdentity, OLDEST_FORMAT, StoreError};

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
        Self::create_inner(path, (node, store_id, now_ms), options, restore, false)
    }

    /// Creates a new store to restore a backup into: born marked as a restore in progress
    /// (with `restore`, also marked to fetch its own records from the parent), in the same
    /// write as its identity, so that no crash leaves a store that opens before the
    /// restore has finished ([`SledStore::finish_restore`]).
    pub fn create_for_restore(
        path: &Path,
        node: NodeCode,
        store_id: [u8; 16],
        now_ms: i64,
        options: SledOptions,
        restore: bool,
    ) -> Result<Self, StoreError> {
        Self::create_inner(path, (node, store_id, now_ms), options, restore, true)
    }

    fn create_inner(
        path: &Path,
        (node, store_id, now_ms): (NodeCode, [u8; 16], i64),
        options: SledOptions,
        restore: bool,
        from_backup: bool,
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
        if from_backup {
            first.insert(keys::RESTORING_BACKUP, &[1u8][..]);
        }
        db.apply_batch(first).map_err(storage_error)?;
        db.flush().map_err(storage_error)?;
        fsync_path(&data_file_path(path))?;
        drop(db);
        fsync_path(path)?;
        Self::open_inner(path, node, options, from_backup)
    }

    /// Opens the store in `path`, refusing one that belongs to another node.
    pub fn open(path: &Path, expected: NodeCode, options: SledOptions) -> Result<Self, StoreError> {
        Self::open_inner(path, expected, options, false)
    }

    /// [`SledStore::open`]; with `restoring`, a store marked as a restore in progress
    /// opens too (the restore itself).
    fn open_inner(
        path: &Path,
        expected: NodeCode,
        options: SledOptions,
        restoring: bool,
    ) -> Result<Self, StoreError> {
        if !path.join("conf").exists() {
            return Err(StoreError::NotInitialised(path.display().to_string()));
        }
        let db = open_db(path, options)?;
        let mut identity = read_identity(&db, path).map_err(|e| match e {
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
        if !restoring
            && db
                .contains_key(keys::RESTORING_BACKUP)
                .map_err(storage_error)?
        {
            return Err(StoreError::Damaged(
                "a restore from a backup into this directory did not finish".into(),
            ));
        }
        SledStore::drop_backup_trees(&db)?;
        let data_file = File::open(data_file_path(path)).map_err(storage_error)?;
        migrate_legacy_documents(&db, &data_file)?;
        build_index(&db, &data_file, &mut identity).map_err(as_damage)?;
        // A checkpoint behind the seal was left by a release that did not remove it when
        // it committed (after a downgrade): the log is the truth then.
        let sealed = sealed_extent(path);
        let checkpoint = read_checkpoint(&db).map_err(as_damage)?;
        // Removed by the next commit whether it is used or not.
        let checkpointed = checkpoint.is_some();
        let checkpoint = checkpoint.filter(|(_, extent)| sealed.is_none_or(|s| extent.covers(&s)));
        let from_checkpoint = checkpoint.is_some();
        let (owners, extent) = match checkpoint {
            Some(read) => read,
            None => {
                let rebuilt = rebuild_summaries(&db).map_err(as_damage)?;
                if rebuilt.1.entries > 0 {
                    tracing::info!(
                        entries = rebuilt.1.entries,
                        "No checkpoint of a clean close: summaries rebuilt from the change log"
                    );
                }
                rebuilt
            }
        };
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
                backup: None,
                backups_started: 0,
            }),
            fault: RwLock::new(None),
            full: std::sync::atomic::AtomicBool::new(false),
            filled: tokio::sync::Notify::new(),
            quarantined: RwLock::new(quarantined),
            index_gate: RwLock::new(()),
            index_min_tail: std::sync::atomic::AtomicU64::new(MIN_TAIL),
            checkpointed: std::sync::atomic::AtomicBool::new(checkpointed),
            from_checkpoint,
            no_checkpoint_on_close: std::sync::atomic::AtomicBool::new(false),
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
}

pub(super) fn open_db(path: &Path, options: SledOptions) -> Result<sled::Db, StoreError> {
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
            Err(e) if e.to_string().contains("could not acquire lock") => {
                if attempts == 100 {
                    return Err(StoreError::InUse(path.display().to_string()));
                }
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
pub(super) fn open_catching_panics(
    config: &sled::Config,
) -> Result<sled::Result<sled::Db>, StoreError> {
    quiet_panics::catch(|| config.open()).map_err(|what| {
        StoreError::Damaged(format!("sled failed while recovering its files: {what}"))
    })
}

/// A panic hook that stays silent for panics on a thread that is opening sled (they become
/// [`StoreError::Damaged`]) and hands every other panic to the hook that was there before.
/// The flag is per thread, so no other thread's panic is ever hidden.
pub(super) mod quiet_panics {
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

    pub(super) fn install() {
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

/// Undecodable bytes found while opening mean a damaged store.
pub(super) fn as_damage(e: StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(c) => StoreError::Damaged(format!("undecodable store value: {c}")),
        other => other,
    }
}

/// Checks the store against its seal; see [`super::seal`].
pub(super) fn open_seal(
    path: &Path,
    store_id: [u8; 16],
    found: LogExtent,
) -> Result<Seal, StoreError> {
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

pub(super) fn data_file_path(path: &Path) -> PathBuf {
    path.join("db")
}

pub(super) fn read_identity(db: &sled::Db, path: &Path) -> Result<NodeIdentity, StoreError> {
    let bytes = db
        .get(keys::IDENTITY)
        .map_err(storage_error)?
        .ok_or_else(|| StoreError::NotInitialised(path.display().to_string()))?;
    let identity: NodeIdentity = codec::decode(&bytes)?;
    // An older format is brought up to date when the store opens (`build_index`).
    if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&identity.format) {
        return Err(StoreError::Format {
            found: identity.format,
        });
    }
    Ok(identity)
}

/// The keys under quarantine, read once at open.
pub(super) fn quarantined_keys(
    db: &sled::Db,
) -> Result<BTreeSet<(NodeCode, RecordKey)>, StoreError> {
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
pub(super) fn rebuild_summaries(
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

/// Moves documents stored under the key of an earlier release (kind and id) to their key
/// by kind, issuer and id, in one durable batch. A store holds few documents, so this is
/// cheap, and after it no key of the old form is left to be found.
pub(super) fn migrate_legacy_documents(db: &sled::Db, data_file: &File) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    let mut moved = 0usize;
    for item in db.scan_prefix([keys::LEGACY_DOCUMENT]) {
        let (key, value) = item.map_err(storage_error)?;
        let doc: StoredDocument = codec::decode(&value).map_err(as_damage_of_codec)?;
        batch.insert(keys::document(&doc.kind, doc.issuer, &doc.id), value);
        batch.remove(key);
        moved += 1;
    }
    if moved == 0 {
        return Ok(());
    }
    db.apply_batch(batch).map_err(storage_error)?;
    db.flush().map_err(storage_error)?;
    data_file.sync_data().map_err(storage_error)?;
    tracing::info!(
        documents = moved,
        "Documents now keyed by kind, issuer and id"
    );
    Ok(())
}

fn as_damage_of_codec(e: crate::core::codec::CodecError) -> StoreError {
    as_damage(StoreError::Corrupt(e))
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
        assert!(message.contains("sled_store"), "{message}");
        assert_eq!(quiet_panics::catch(|| 7), Ok(7));
    }
}

//! What makes a commit durable and a failure legible: `fdatasync` of the data file after
//! sled's flush, fsync of the blob files sled never syncs, freeing what sled defers per
//! batch, and turning IO failures into [`StoreError`]s (a full disk by its error kind).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use super::SledStore;

use crate::core::store::StoreError;

/// Free space a commit leaves untouched on the data directory's file system. sled must
/// never meet a full disk: once one of its writes fails it refuses every later write *and*
/// every read that would restructure a tree node, so some acknowledged records could not
/// be read until a restart. Refusing writes while less than this is free keeps sled away
/// from the edge, and reads keep working.
pub const FREE_SPACE_RESERVE: u64 = 8 << 20;

impl SledStore {
    /// Ok while more than [`FREE_SPACE_RESERVE`] is free where the store lives; otherwise
    /// [`StoreError::Full`], before sled is asked to write anything.
    pub(super) fn ensure_reserve(&self) -> Result<(), StoreError> {
        let dir = &self.blobs.0;
        let dir = dir.parent().unwrap_or(dir);
        let free = fs2::available_space(dir).map_err(storage_error)?;
        if free < FREE_SPACE_RESERVE {
            return Err(StoreError::Full(format!(
                "{} MiB free on the data directory's file system, below the {} MiB kept in \
                 reserve; nothing more is acknowledged until space returns",
                free >> 20,
                FREE_SPACE_RESERVE >> 20
            )));
        }
        Ok(())
    }

    pub(super) fn write_durably(
        &self,
        sled_batch: sled::Batch,
        records: usize,
    ) -> Result<(), StoreError> {
        let applied = {
            let _gate = self.index_gate.write().unwrap_or_else(|p| p.into_inner());
            self.db.apply_batch(sled_batch)
        };
        reclaim_deferred(records);
        applied.map_err(storage_error)?;
        self.db.flush().map_err(storage_error)?;
        self.data_file.sync_data().map_err(storage_error)?;
        self.sync_new_blobs()
    }

    /// fsyncs blob files sled wrote since the last commit. sled keeps pages larger than a
    /// quarter segment (a node holding large values) in files of their own and never
    /// fsyncs them; a power cut could otherwise lose an acknowledged batch.
    pub(super) fn sync_new_blobs(&self) -> Result<(), StoreError> {
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

/// A failure from sled or the file system, as a [`StoreError`].
pub(super) trait Failure {
    /// The error kind of the underlying IO error, if there is one.
    fn io_kind(&self) -> Option<std::io::ErrorKind>;
}

impl Failure for std::io::Error {
    fn io_kind(&self) -> Option<std::io::ErrorKind> {
        Some(self.kind())
    }
}

impl Failure for sled::Error {
    fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            sled::Error::Io(e) => Some(e.kind()),
            _ => None,
        }
    }
}

/// `e` as a [`StoreError`]: [`StoreError::Full`] when the disk or the quota is full (the
/// node reopens once space returns), [`StoreError::Storage`] otherwise.
pub(super) fn storage_error<E: Failure + std::fmt::Display>(e: E) -> StoreError {
    use std::io::ErrorKind::{QuotaExceeded, StorageFull};
    match e.io_kind() {
        Some(StorageFull | QuotaExceeded) => StoreError::Full(e.to_string()),
        _ => StoreError::Storage(e.to_string()),
    }
}

/// fsyncs the file or directory at `path`.
pub(super) fn fsync_path(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(storage_error)
}

/// Frees what sled deferred while applying a batch. `apply_batch` rewrites every tree node
/// it touches under one epoch guard and defers freeing each old copy; crossbeam-epoch frees
/// deferred garbage only 8 bags (of 64 objects) per 128 pins of a thread, so a writer of
/// large batches, one pin per thousands of node copies, outpaces it and the garbage is
/// never freed: measured ~2.2 KB of memory kept per record written, for the life of the
/// process, whatever the cache size. Each flush of a fresh guard seals this thread's bag,
/// advances the epoch when no other thread holds it back, and frees up to 8 expired bags,
/// so a flush per 64 records (several times what a batch defers) keeps up.
pub(super) fn reclaim_deferred(records: usize) {
    for _ in 0..records / 64 + 16 {
        crossbeam_epoch::pin().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_by_its_error_kind_not_its_text() {
        let enospc = std::io::Error::from_raw_os_error(28);
        assert!(matches!(storage_error(enospc), StoreError::Full(_)));
        let quota = std::io::Error::from_raw_os_error(122);
        assert!(matches!(storage_error(quota), StoreError::Full(_)));
        let through_sled = sled::Error::Io(std::io::Error::from_raw_os_error(28));
        assert!(matches!(storage_error(through_sled), StoreError::Full(_)));
        // A message that merely mentions a full disk is not one.
        let other = std::io::Error::other("No space left on device (os error 28)");
        assert!(matches!(storage_error(other), StoreError::Storage(_)));
    }
}

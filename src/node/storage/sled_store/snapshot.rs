//! A consistent cut of a running store for a backup, and the writes a restore from one
//! needs beyond ordinary commits.
//!
//! sled 0.34 has no snapshot a scan could read, so a backup keeps one itself: the cut is
//! taken under the commit lock (no commit is half done), and from then on every commit,
//! before it writes, copies the value at the cut of each key it touches that the backup
//! has yet to read (or the fact that the key was absent) into a tree of the backup's own.
//! The backup reads the store a chunk at a time, also under the commit lock, and where a
//! key has a kept value it takes that one. So it sees every key as it was at the cut,
//! while commits go on between chunks; a kept value is dropped once the backup has read
//! past its key. Only the first write of a key after the cut copies anything, and only
//! while a backup runs.

use std::collections::{BTreeMap, BTreeSet};

use super::super::keys;
use super::{SledStore, storage_error};
use crate::core::model::NodeCode;
use crate::core::reconcile::Digest;
use crate::core::store::{StoreError, WriteBatch};

/// A running backup, as the commits see it (inside the commit lock).
#[derive(Debug)]
pub(super) struct Cutting {
    id: u64,
    /// Every backed-up key at or above this one is still to be read.
    bound: Vec<u8>,
    /// Values at the cut of keys written since and not yet read: `[0]` absent, `[1, ..]`
    /// present.
    kept: sled::Tree,
    /// Why the backup cannot go on (the node is stopping, keeping a value failed).
    failed: Option<String>,
}

/// What the store held at a backup's cut.
#[derive(Debug, Clone)]
pub struct Cut {
    /// Commit batches before the cut (the cut follows batch `batch - 1`).
    pub batch: u64,
    /// Per owner: the highest seq stored and the digest of its records.
    pub owners: Vec<(NodeCode, u64, Digest)>,
}

/// A backup reading the store as it was at its cut; dropping it ends the backup.
#[derive(Debug)]
pub struct BackupRun<'a> {
    store: &'a SledStore,
    id: u64,
}

/// Keys a backup reads at most per chunk, and bytes of values.
const CHUNK_KEYS: usize = 1000;
const CHUNK_BYTES: usize = 1 << 20;

impl SledStore {
    /// Takes a backup's cut, or `None` when a backup is running already.
    pub fn begin_backup(&self) -> Result<Option<(BackupRun<'_>, Cut)>, StoreError> {
        let mut commits = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        if commits.backup.is_some() {
            return Ok(None);
        }
        commits.backups_started += 1;
        let id = commits.backups_started;
        let kept = self
            .db
            .open_tree(keys::backup_tree(id))
            .map_err(storage_error)?;
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        let cut = Cut {
            batch: commits.next_batch,
            owners: owners
                .iter()
                .map(|(o, s)| (*o, s.last_seq, s.summary.digest(None)))
                .collect(),
        };
        commits.backup = Some(Cutting {
            id,
            bound: Vec::new(),
            kept,
            failed: None,
        });
        Ok(Some((BackupRun { store: self, id }, cut)))
    }

    /// Stops a running backup: its next read fails with `why` (the node is stopping).
    pub fn cancel_backup(&self, why: &str) {
        let mut commits = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cutting) = commits.backup.as_mut() {
            cutting.failed.get_or_insert_with(|| why.to_string());
        }
    }

    /// Before a commit writes `batch`: keeps the value at the cut of every key it touches
    /// that the running backup has yet to read. A failure here stops the backup, not the
    /// commit.
    pub(super) fn keep_for_backup(&self, cutting: &mut Cutting, batch: &WriteBatch) {
        if cutting.failed.is_some() {
            return;
        }
        for key in touched_keys(batch) {
            if key < cutting.bound {
                continue;
            }
            let kept = self.db.get(&key).and_then(|value| {
                let mut v = Vec::with_capacity(value.as_ref().map_or(1, |v| v.len() + 1));
                match value {
                    Some(bytes) => {
                        v.push(1);
                        v.extend_from_slice(&bytes);
                    }
                    None => v.push(0),
                }
                // Only the first write after the cut keeps the value.
                cutting
                    .kept
                    .compare_and_swap(&key, None::<&[u8]>, Some(v))
                    .map(|_| ())
            });
            if let Err(e) = kept {
                tracing::error!(error = %e, "A backup could not keep a value; it stops");
                cutting.failed = Some(format!("keeping a value as it was at the cut: {e}"));
                return;
            }
        }
    }

    /// Drops what a backup interrupted by a crash left (its kept values).
    pub(super) fn drop_backup_trees(db: &sled::Db) -> Result<(), StoreError> {
        for name in db.tree_names() {
            if name.starts_with(keys::BACKUP_TREE_PREFIX) {
                db.drop_tree(&name).map_err(storage_error)?;
            }
        }
        Ok(())
    }

    /// Records when `owner`'s records were last received here, as a backup said (a
    /// restore; made durable by [`SledStore::finish_restore`]).
    pub fn restore_received(&self, owner: NodeCode, at_ms: i64) -> Result<(), StoreError> {
        self.db
            .insert(keys::received(owner), &at_ms.to_be_bytes()[..])
            .map_err(storage_error)?;
        Ok(())
    }

    /// Ends a restore: removes the mark and makes everything durable.
    pub fn finish_restore(&self) -> Result<(), StoreError> {
        self.db
            .remove(keys::RESTORING_BACKUP)
            .map_err(storage_error)?;
        self.sync_all()
    }

    fn sync_all(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(storage_error)?;
        self.data_file.sync_data().map_err(storage_error)?;
        self.sync_new_blobs()
    }
}

impl BackupRun<'_> {
    /// The next keys and values as they were at the cut, in key order; `None` once the
    /// backup has read everything. A chunk may be empty.
    #[allow(clippy::type_complexity)]
    pub fn next_chunk(&mut self) -> Result<Option<Vec<(Vec<u8>, Vec<u8>)>>, StoreError> {
        let store = self.store;
        let mut commits = store.commits.lock().unwrap_or_else(|p| p.into_inner());
        let cutting = match commits.backup.as_mut() {
            Some(c) if c.id == self.id => c,
            _ => return Err(StoreError::Storage("the backup was ended".into())),
        };
        if let Some(why) = &cutting.failed {
            return Err(StoreError::Storage(format!("the backup stopped: {why}")));
        }
        let Some(prefix) = keys::BACKED_UP
            .iter()
            .find(|p| vec![**p + 1] > cutting.bound)
        else {
            return Ok(None);
        };
        let start = cutting.bound.clone().max(vec![*prefix]);
        let end = vec![*prefix + 1];
        let mut read: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut bytes = 0;
        let mut full = false;
        for item in store.db.range(start..end.clone()) {
            let (k, v) = item.map_err(storage_error)?;
            bytes += k.len() + v.len();
            read.insert(k.to_vec(), Some(v.to_vec()));
            if read.len() >= CHUNK_KEYS || bytes >= CHUNK_BYTES {
                full = true;
                break;
            }
        }
        let bound = match read.keys().next_back() {
            Some(last) if full => {
                let mut b = last.clone();
                b.push(0);
                b
            }
            _ => end,
        };
        let mut kept = Vec::new();
        for item in cutting.kept.range(cutting.bound.clone()..bound.clone()) {
            kept.push(item.map_err(storage_error)?);
        }
        for (k, _) in &kept {
            cutting.kept.remove(k).map_err(storage_error)?;
        }
        cutting.bound = bound;
        drop(commits);
        for (k, v) in kept {
            let value = match v.split_first() {
                Some((1, bytes)) => Some(bytes.to_vec()),
                Some((0, [])) => None,
                _ => {
                    return Err(StoreError::Storage(
                        "a kept backup value is malformed".into(),
                    ));
                }
            };
            read.insert(k.to_vec(), value);
        }
        Ok(Some(
            read.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
        ))
    }
}

impl Drop for BackupRun<'_> {
    fn drop(&mut self) {
        let mut commits = self.store.commits.lock().unwrap_or_else(|p| p.into_inner());
        if commits.backup.as_ref().is_some_and(|c| c.id == self.id) {
            commits.backup = None;
        }
        drop(commits);
        if let Err(e) = self.store.db.drop_tree(keys::backup_tree(self.id)) {
            tracing::warn!(error = %e, "Could not drop a finished backup's kept values");
        }
    }
}

/// The backed-up keys a commit of `batch` may write or remove. A record's quarantine
/// entry is among them: a valid version clears it.
fn touched_keys(batch: &WriteBatch) -> BTreeSet<Vec<u8>> {
    let mut touched = BTreeSet::new();
    for w in &batch.records {
        let e = &w.record.envelope;
        touched.insert(keys::record(e.owner, e.key()).to_vec());
        touched.insert(keys::quarantine(e.owner, e.key()).to_vec());
        if batch.received_at_ms.is_some() {
            touched.insert(keys::received(e.owner).to_vec());
        }
    }
    for r in &batch.removals {
        touched.insert(keys::record(r.envelope.owner, r.envelope.key()).to_vec());
    }
    for d in &batch.documents {
        touched.insert(keys::document(&d.kind, d.issuer, &d.id));
    }
    for (peer, _) in &batch.peer_store_ids {
        touched.insert(keys::peer_store(*peer).to_vec());
    }
    if batch.restore_pending.is_some() {
        touched.insert(keys::RESTORE_PENDING.to_vec());
    }
    for (peer, owner, _) in &batch.watermarks {
        touched.insert(keys::watermark(*peer, *owner).to_vec());
    }
    for q in &batch.quarantine {
        let e = &q.record.envelope;
        touched.insert(keys::quarantine(e.owner, e.key()).to_vec());
    }
    touched
}

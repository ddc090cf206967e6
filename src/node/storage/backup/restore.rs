//! Restoring a store from a backup: verified whole first, then written into an empty data
//! directory through ordinary commits, a frame at a time, so that the change log, the leaf
//! index, the summaries and the seal are rebuilt as any commit builds them and the records
//! keep their versions and seqs (new writes continue after them). The new store is marked
//! as a restore in progress until the end; one that is not finished does not open.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::files::{Manifest, is_empty_dir, verify};
use super::{BackupError, DATA_FILE, Frame, Item, io_error, read_frame};
use crate::core::model::NodeCode;
use crate::core::reconcile::Digest;
use crate::core::store::{RecordWrite, Store, WriteBatch};
use crate::node::storage::{SledOptions, SledStore};

/// What a restore wrote.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Records restored.
    pub records: u64,
    /// Documents restored.
    pub documents: u64,
    /// The store is marked to fetch its own records from its parent before it takes
    /// writes (what was written after the backup).
    pub restore_pending: bool,
    /// Owners whose highest stored seq is below the cut's (the record that held it had
    /// been removed as corrupt): `(owner, restored, at the cut)`.
    pub lower_seqs: Vec<(NodeCode, u64, u64)>,
}

/// Where the restore goes and how.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The data directory: missing or empty.
    pub data: &'a Path,
    /// The node it is for: the backup must be of it.
    pub node: NodeCode,
    /// Sled options.
    pub options: SledOptions,
    /// Mark the store to fetch its own records from its parent (or, without one, to wait
    /// for its children's documents) before it accepts writes.
    pub restore_pending: bool,
    /// Now, ms since the epoch (the store's creation time).
    pub now_ms: i64,
}

/// Restores the backup in `from` into `target`, after verifying it whole. `progress` is
/// told the records restored so far.
pub fn restore(
    from: &Path,
    target: Target<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Restored, BackupError> {
    let (manifest, header) = verify(from)?;
    if header.node != target.node {
        return Err(BackupError::OtherNode {
            found: header.node,
            expected: target.node,
        });
    }
    if !is_empty_dir(target.data)? {
        return Err(BackupError::NotEmpty(target.data.display().to_string()));
    }
    let store = SledStore::create_for_restore(
        target.data,
        target.node,
        rand::random(),
        target.now_ms,
        target.options,
        target.restore_pending,
    )?;
    let mut restored = Restored {
        manifest,
        records: 0,
        documents: 0,
        restore_pending: target.restore_pending,
        lower_seqs: Vec::new(),
    };
    // Records before quarantine: a record written after its key's quarantine entry would
    // clear it, which the store did not.
    apply(from, &store, &mut restored, false, progress)?;
    apply(from, &store, &mut restored, true, progress)?;
    for o in &header.owners {
        let digest = store.digest(Some(o.owner), None);
        let want = Digest {
            records: o.records,
            sum: o.sum,
        };
        if digest != want {
            return Err(BackupError::Inconsistent(format!(
                "{}: the backup's cut held {} records, the restored store {}",
                o.owner, want.records, digest.records
            )));
        }
        let seq = store.last_seq(o.owner);
        if seq < o.last_seq {
            restored.lower_seqs.push((o.owner, seq, o.last_seq));
        }
    }
    store.finish_restore()?;
    Ok(restored)
}

/// One pass over the data file: every item but quarantine, or quarantine only.
fn apply(
    from: &Path,
    store: &SledStore,
    restored: &mut Restored,
    quarantine: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<(), BackupError> {
    let path = from.join(DATA_FILE);
    let file = File::open(&path).map_err(io_error(format!("reading {}", path.display())))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    while let Some((frame, _)) = read_frame(&mut input)? {
        let Frame::Items(items) = frame else {
            continue;
        };
        let mut batch = WriteBatch::default();
        for item in items {
            match (item, quarantine) {
                (Item::Quarantined(q), true) => batch.quarantine.push(q),
                (_, true) | (Item::Quarantined(_), false) => {}
                (Item::Record(record), false) => {
                    restored.records += 1;
                    batch.records.push(RecordWrite {
                        record,
                        prev_fp: None,
                    });
                }
                (Item::Document(d), false) => {
                    restored.documents += 1;
                    batch.documents.push(d);
                }
                (Item::PeerStore { peer, store_id }, false) => {
                    batch.peer_store_ids.push((peer, store_id));
                }
                (Item::Received { owner, at_ms }, false) => store.restore_received(owner, at_ms)?,
                (Item::Watermark { peer, owner, seq }, false) => {
                    batch.watermarks.push((peer, owner, seq));
                }
                (Item::RestorePending, false) => {
                    restored.restore_pending = true;
                    batch.restore_pending = Some(true);
                }
            }
        }
        store.commit(batch)?;
        progress(restored.records);
    }
    Ok(())
}

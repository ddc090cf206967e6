//! A backup directory: writing one from a stream ([`BackupWriter`]: the data file as the
//! bytes arrive, checked frame by frame, then the manifest, last and atomically) and
//! verifying one before it is used ([`verify`]: manifest, size, hash, frames).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    BACKUP_FORMAT, BackupError, DATA_FILE, End, Frame, Header, MANIFEST_FILE, StreamCheck,
    io_error, read_frame,
};
use crate::core::model::NodeCode;
use crate::node::clock::rfc3339;

/// Largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// What a backup directory holds, written last: a directory without it is incomplete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Backup format version.
    pub format: u32,
    /// The node backed up.
    pub node: NodeCode,
    /// Its store id (hex).
    pub store_id: String,
    /// The lmsync version that wrote the backup.
    pub lmsync_version: String,
    /// When the backup was completed (RFC 3339).
    pub completed_at: String,
    /// The cut the backup holds the store at.
    pub cut: ManifestCut,
    /// Records in the backup.
    pub records: u64,
    /// Documents in the backup.
    pub documents: u64,
    /// Items of every kind in the backup.
    pub items: u64,
    /// The data file.
    pub data: DataFile,
}

/// The cut, as the manifest states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestCut {
    /// When it was taken (RFC 3339).
    pub taken_at: String,
    /// Commit batches before it.
    pub batch: u64,
    /// Per owner: every record version with a seq up to `last_seq` committed before the
    /// cut is in the backup; none written after it is.
    pub owners: Vec<ManifestOwner>,
}

/// One owner at the cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestOwner {
    /// The owner.
    pub owner: NodeCode,
    /// Highest seq stored.
    pub last_seq: u64,
    /// Records stored.
    pub records: u64,
    /// Digest (sum of fingerprints), hex.
    pub digest: String,
}

/// The data file, as the manifest states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// Its name in the directory.
    pub file: String,
    /// Its length.
    pub bytes: u64,
    /// Its blake3, hex.
    pub blake3: String,
}

impl Manifest {
    fn of(header: &Header, end: &End, bytes: u64, hash: [u8; 32], now_ms: i64) -> Manifest {
        Manifest {
            format: BACKUP_FORMAT,
            node: header.node,
            store_id: hex::encode(header.store_id),
            lmsync_version: env!("CARGO_PKG_VERSION").to_string(),
            completed_at: rfc3339(now_ms),
            cut: ManifestCut {
                taken_at: rfc3339(header.taken_at_ms),
                batch: header.batch,
                owners: header
                    .owners
                    .iter()
                    .map(|o| ManifestOwner {
                        owner: o.owner,
                        last_seq: o.last_seq,
                        records: o.records,
                        digest: format!("{:032x}", o.sum),
                    })
                    .collect(),
            },
            records: end.records,
            documents: end.documents,
            items: end.items,
            data: DataFile {
                file: DATA_FILE.to_string(),
                bytes,
                blake3: hex::encode(hash),
            },
        }
    }
}

/// True when `dir` does not exist or holds nothing.
pub fn is_empty_dir(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io_error(format!("reading {}", dir.display()))(e)),
    }
}

/// Writes a backup stream into a new backup directory as it arrives.
#[derive(Debug)]
pub struct BackupWriter {
    dir: PathBuf,
    file: File,
    check: StreamCheck,
    /// Bytes received that do not yet make a whole frame.
    partial: Vec<u8>,
}

impl BackupWriter {
    /// Creates `dir` (which must be missing or empty) and its data file.
    pub fn create(dir: &Path) -> Result<Self, BackupError> {
        if !is_empty_dir(dir)? {
            return Err(BackupError::NotEmpty(dir.display().to_string()));
        }
        std::fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
        let path = dir.join(DATA_FILE);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(format!("creating {}", path.display())))?;
        Ok(BackupWriter {
            dir: dir.to_path_buf(),
            file,
            check: StreamCheck::default(),
            partial: Vec::new(),
        })
    }

    /// Appends `bytes` of the stream to the data file, checking each frame they complete.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.file
            .write_all(bytes)
            .map_err(io_error("writing the backup's data file"))?;
        self.partial.extend_from_slice(bytes);
        let mut used = 0;
        let mut rest = &self.partial[..];
        while let Some(len) = rest.get(..4) {
            let size = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if size > super::MAX_FRAME_BYTES {
                return Err(BackupError::Malformed(format!(
                    "a frame claims {size} bytes, over the limit"
                )));
            }
            if rest.len() < size + 4 {
                break;
            }
            let mut reader = &rest[..size + 4];
            if let Some((frame, raw)) = read_frame(&mut reader)? {
                self.check.take(&frame, &raw)?;
            }
            used += size + 4;
            rest = &rest[size + 4..];
        }
        self.partial.drain(..used);
        Ok(())
    }

    /// The header, once it has arrived.
    pub fn header(&self) -> Option<&Header> {
        self.check.header()
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    /// Ends a complete stream: syncs the data file, then writes the manifest (temporary
    /// file, fsync, rename, fsync of the directory). A stream that did not end refuses.
    pub fn finish(self, now_ms: i64) -> Result<Manifest, BackupError> {
        if !self.partial.is_empty() {
            return Err(BackupError::Malformed(
                "the stream ends inside a frame".into(),
            ));
        }
        let (header, end, bytes, hash) = self.check.finished()?;
        self.file
            .sync_all()
            .map_err(io_error("syncing the backup's data file"))?;
        let manifest = Manifest::of(&header, &end, bytes, hash, now_ms);
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BackupError::Malformed(e.to_string()))?;
        let temp = self.dir.join(format!("{MANIFEST_FILE}.tmp"));
        let written = File::create(&temp).and_then(|mut f| {
            f.write_all(&text)?;
            f.write_all(b"\n")?;
            f.sync_all()
        });
        written.map_err(io_error(format!("writing {}", temp.display())))?;
        std::fs::rename(&temp, self.dir.join(MANIFEST_FILE))
            .map_err(io_error("putting the manifest in place"))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(format!("syncing {}", self.dir.display())))?;
        Ok(manifest)
    }
}

/// Reads the manifest of the backup in `dir`, refusing an incomplete backup.
pub fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::Incomplete(dir.display().to_string()));
        }
        Err(e) => return Err(io_error(format!("reading {}", path.display()))(e)),
    };
    let mut text = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(io_error(format!("reading {}", path.display())))?;
    let altered = |detail: String| BackupError::Altered {
        dir: dir.display().to_string(),
        detail,
    };
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(altered(format!("{MANIFEST_FILE} is too large")));
    }
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| altered(format!("{MANIFEST_FILE} does not read: {e}")))?;
    if manifest.format != BACKUP_FORMAT {
        return Err(altered(format!(
            "backup format {} (this build reads {BACKUP_FORMAT})",
            manifest.format
        )));
    }
    if manifest.data.file != DATA_FILE {
        return Err(altered(format!(
            "the data file is named {:?}",
            manifest.data.file
        )));
    }
    Ok(manifest)
}

/// Verifies the backup in `dir` whole: its manifest, the data file's size and blake3, and
/// every frame (header first, the end's counts and hash, the manifest's cut and counts).
/// Reads the data file once, a frame at a time.
pub fn verify(dir: &Path) -> Result<(Manifest, Header), BackupError> {
    let manifest = read_manifest(dir)?;
    let altered = |detail: String| BackupError::Altered {
        dir: dir.display().to_string(),
        detail,
    };
    let path = dir.join(DATA_FILE);
    let file = File::open(&path).map_err(|e| altered(format!("{DATA_FILE}: {e}")))?;
    let size = file.metadata().map_or(0, |m| m.len());
    if size != manifest.data.bytes {
        return Err(altered(format!(
            "{DATA_FILE} is {size} bytes, the manifest says {}",
            manifest.data.bytes
        )));
    }
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut check = StreamCheck::default();
    loop {
        match read_frame(&mut input) {
            Ok(Some((frame, raw))) => {
                check
                    .take(&frame, &raw)
                    .map_err(|e| altered(e.to_string()))?;
                if matches!(frame, Frame::End(_)) {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return Err(altered(e.to_string())),
        }
    }
    let (header, end, bytes, hash) = check.finished().map_err(|e| altered(e.to_string()))?;
    if bytes != size {
        return Err(altered(format!(
            "bytes follow the end frame in {DATA_FILE}"
        )));
    }
    if hex::encode(hash) != manifest.data.blake3 {
        return Err(altered(format!(
            "{DATA_FILE} does not hash to the manifest's blake3"
        )));
    }
    let stated = Manifest::of(&header, &end, bytes, hash, 0);
    let agrees = stated.node == manifest.node
        && stated.store_id == manifest.store_id
        && stated.cut == manifest.cut
        && (stated.records, stated.documents, stated.items)
            == (manifest.records, manifest.documents, manifest.items);
    if !agrees {
        return Err(altered(
            "the manifest does not state what the data file holds".into(),
        ));
    }
    Ok((manifest, header))
}

//! Online backups: the stream a node writes of its store as it was at one cut, the backup
//! directory that holds it, and the restore of a store from one.
//!
//! A backup is a directory with two files. `backup.data` is a sequence of frames (a
//! big-endian `u32` length, then one [`Frame`] in the codec): a [`Header`] naming the node
//! and the cut, [`Frame::Items`] of what the store held at the cut (documents, children's
//! store ids, quarantine, records, receipt times, watermarks, the restore mark; never the
//! change log, leaf index or figures, which the restore's commits rebuild), and an [`End`]
//! with the counts and the blake3 of every byte before it. `manifest.json` is written last
//! (temporary file, fsync, rename, fsync of the directory): a directory without it is an
//! incomplete backup. [`produce`] streams a store, [`files`] writes and verifies a backup
//! directory, [`restore`] builds a store from one.

pub mod files;
pub mod produce;
pub mod restore;

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::core::codec::{self, CodecError};
use crate::core::model::document::StoredDocument;
use crate::core::model::{NodeCode, Record};
use crate::core::store::{QuarantinedRecord, StoreError};

/// Version of the backup format (frames and manifest).
pub const BACKUP_FORMAT: u32 = 1;
/// The data file of a backup directory.
pub const DATA_FILE: &str = "backup.data";
/// The manifest of a backup directory, written last.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Largest frame accepted: what the codec decodes at most.
pub const MAX_FRAME_BYTES: usize = codec::MAX_DECODE_BYTES;

/// One thing a store held at the cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Item {
    /// A document.
    Document(StoredDocument),
    /// The store id a child presented last.
    PeerStore {
        /// The child.
        peer: NodeCode,
        /// Its store id.
        store_id: [u8; 16],
    },
    /// A quarantined received record.
    Quarantined(QuarantinedRecord),
    /// A record, with its version and seq.
    Record(Record),
    /// When `owner`'s records last arrived here.
    Received {
        /// The owner.
        owner: NodeCode,
        /// When, ms since the epoch.
        at_ms: i64,
    },
    /// How far `peer` has `owner`'s records.
    Watermark {
        /// The peer (this node: how far it holds them itself).
        peer: NodeCode,
        /// The owner.
        owner: NodeCode,
        /// The seq.
        seq: u64,
    },
    /// The node was restoring its own records from its parent.
    RestorePending,
}

/// One owner at the cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerCut {
    /// The owner.
    pub owner: NodeCode,
    /// The highest seq of its records stored at the cut: versions with higher seqs were
    /// written after it.
    pub last_seq: u64,
    /// How many of its records were stored.
    pub records: u64,
    /// The sum of their fingerprints (the digest).
    pub sum: u128,
}

/// The store a backup copies and the cut it copies it at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`BACKUP_FORMAT`].
    pub format: u32,
    /// The node whose store this is.
    pub node: NodeCode,
    /// The store's id.
    pub store_id: [u8; 16],
    /// Commit batches before the cut.
    pub batch: u64,
    /// When the cut was taken, ms since the epoch.
    pub taken_at_ms: i64,
    /// Every owner with records at the cut.
    pub owners: Vec<OwnerCut>,
}

/// The last frame: what the stream held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Items sent.
    pub items: u64,
    /// Records among them.
    pub records: u64,
    /// Documents among them.
    pub documents: u64,
    /// blake3 of every byte of the stream before this frame.
    pub hash: [u8; 32],
}

/// One frame of a backup stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// The first frame.
    Header(Header),
    /// What the store held, in key order.
    Items(Vec<Item>),
    /// The last frame of a complete stream.
    End(End),
    /// The node could not finish the backup (sent instead of [`Frame::End`]).
    Failed(String),
}

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A backup is running on this store already.
    #[error("a backup of this node is running already; wait for it to finish")]
    Busy,
    /// The backup directory is not complete (no manifest): it was interrupted.
    #[error("{0} is an incomplete backup (no {MANIFEST_FILE}: it was interrupted); take a new one")]
    Incomplete(String),
    /// The backup's files do not agree with its manifest or with themselves.
    #[error("the backup in {dir} is damaged or altered: {detail}")]
    Altered {
        /// The backup directory.
        dir: String,
        /// What does not agree.
        detail: String,
    },
    /// The stream from the node broke its format.
    #[error("the backup stream is malformed: {0}")]
    Malformed(String),
    /// The node reported that it could not finish the backup.
    #[error("the node could not finish the backup: {0}")]
    Failed(String),
    /// The store changed under the backup (a bug: the cut was not kept).
    #[error("the backup does not match its cut: {0}")]
    Inconsistent(String),
    /// A directory that must be empty is not.
    #[error("{0} is not empty; refusing to write into it")]
    NotEmpty(String),
    /// The backup is of another node.
    #[error("the backup is of node {found}, not {expected}; refusing to restore it here")]
    OtherNode {
        /// Node in the backup.
        found: NodeCode,
        /// Node of the config.
        expected: NodeCode,
    },
}

impl From<CodecError> for BackupError {
    fn from(e: CodecError) -> Self {
        BackupError::Malformed(e.to_string())
    }
}

pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// The bytes of `frame` on the wire and in the data file: length, then the encoding.
pub fn frame_bytes(frame: &Frame) -> Result<Vec<u8>, BackupError> {
    let body = codec::encode(frame)?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(BackupError::Malformed(format!(
            "a frame of {} bytes is over the {MAX_FRAME_BYTES}-byte limit",
            body.len()
        )));
    }
    let len = u32::try_from(body.len())
        .map_err(|_| BackupError::Malformed("a frame too large to frame".into()))?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads the next frame from `input`: `None` at a clean end of input, an error for a
/// frame cut short, over the size limit, or with bytes it does not use. Returns the
/// frame's bytes too, for hashing.
pub fn read_frame(input: &mut impl Read) -> Result<Option<(Frame, Vec<u8>)>, BackupError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(BackupError::Malformed(
                    "the input ends inside a frame".into(),
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error("reading a backup frame")(e)),
        }
    }
    let size = u32::from_be_bytes(len) as usize;
    if size > MAX_FRAME_BYTES {
        return Err(BackupError::Malformed(format!(
            "a frame claims {size} bytes, over the {MAX_FRAME_BYTES}-byte limit"
        )));
    }
    let mut raw = Vec::with_capacity(size + 4);
    raw.extend_from_slice(&len);
    raw.resize(size + 4, 0);
    input.read_exact(&mut raw[4..]).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            BackupError::Malformed("the input ends inside a frame".into())
        } else {
            io_error("reading a backup frame")(e)
        }
    })?;
    let frame = codec::decode(&raw[4..])?;
    Ok(Some((frame, raw)))
}

/// Checks a stream frame by frame as it goes: a header first, items, then an end whose
/// counts and hash agree with what came before, and nothing after it.
#[derive(Debug, Default)]
pub struct StreamCheck {
    header: Option<Header>,
    end: Option<End>,
    hasher: blake3::Hasher,
    items: u64,
    records: u64,
    documents: u64,
    bytes: u64,
}

impl StreamCheck {
    /// Takes the next frame and its bytes; returns it when it holds items.
    pub fn take<'f>(&mut self, frame: &'f Frame, raw: &[u8]) -> Result<&'f [Item], BackupError> {
        let bad = |what: &str| Err(BackupError::Malformed(what.to_string()));
        if self.end.is_some() {
            return bad("bytes follow the end of the backup");
        }
        let mut items: &[Item] = &[];
        match frame {
            Frame::Header(h) if self.header.is_none() => {
                if h.format != BACKUP_FORMAT {
                    return Err(BackupError::Malformed(format!(
                        "backup format {} (this build reads {BACKUP_FORMAT})",
                        h.format
                    )));
                }
                self.header = Some(h.clone());
            }
            Frame::Header(_) => return bad("a second header"),
            _ if self.header.is_none() => return bad("the stream does not start with a header"),
            Frame::Items(list) => {
                self.items += list.len() as u64;
                for item in list {
                    match item {
                        Item::Record(_) => self.records += 1,
                        Item::Document(_) => self.documents += 1,
                        _ => {}
                    }
                }
                items = list;
            }
            Frame::End(end) => {
                let counted = (self.items, self.records, self.documents);
                if (end.items, end.records, end.documents) != counted {
                    return Err(BackupError::Malformed(format!(
                        "the end says {} items, {} records, {} documents; the stream held {}, {}, {}",
                        end.items, end.records, end.documents, counted.0, counted.1, counted.2
                    )));
                }
                if *self.hasher.finalize().as_bytes() != end.hash {
                    return bad("the stream's bytes do not hash to what its end says");
                }
                self.end = Some(end.clone());
            }
            Frame::Failed(why) => return Err(BackupError::Failed(why.clone())),
        }
        self.hasher.update(raw);
        self.bytes += raw.len() as u64;
        Ok(items)
    }

    /// The header, once read.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The header and end of a complete stream, its length and its blake3.
    pub fn finished(&self) -> Result<(Header, End, u64, [u8; 32]), BackupError> {
        match (&self.header, &self.end) {
            (Some(h), Some(e)) => Ok((
                h.clone(),
                e.clone(),
                self.bytes,
                *self.hasher.finalize().as_bytes(),
            )),
            _ => Err(BackupError::Malformed(
                "the stream ended before its end frame".into(),
            )),
        }
    }
}

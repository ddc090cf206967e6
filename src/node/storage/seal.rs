//! The commit seal: a small file beside sled that records how far the change log reached
//! at the last commit that wrote records, so that a store which comes back shorter is
//! detected on open instead of being served as healthy.
//!
//! Why: sled 0.34 recovers from a damaged log by stopping at the first bad message and
//! dropping everything after it, without an error. The change log is append-only (never
//! pruned), so a healthy store always holds at least the batches and log entries the seal
//! names; holding fewer means acknowledged commits were lost.
//!
//! The seal is rewritten in place after each durable commit and is not fsynced itself:
//! after a power cut it can only be *behind* sled (it is written after sled's fsync), which
//! weakens detection for the last moments but never raises a false alarm. A torn or
//! unreadable seal carries no information and is replaced.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// File name in the data directory.
pub const SEAL_FILE: &str = "seal";

const MAGIC: &[u8; 8] = b"LMSEAL01";
/// magic, store id, next batch, log entries, checksum.
const LEN: usize = 8 + 16 + 8 + 8 + 8;

/// How far a store's change log reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogExtent {
    /// One past the highest batch number in the change log.
    pub next_batch: u64,
    /// Change-log entries in total.
    pub entries: u64,
}

impl LogExtent {
    /// True when `self` holds everything `sealed` names.
    pub fn covers(&self, sealed: &LogExtent) -> bool {
        self.next_batch >= sealed.next_batch && self.entries >= sealed.entries
    }
}

/// What opening the seal found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealCheck {
    /// The store holds at least what the seal names.
    Intact,
    /// No seal yet (a store from before seals, or one removed): checking starts now.
    Missing,
    /// The seal file is torn or foreign bytes: it carries no information.
    Unreadable,
    /// The store holds less than was committed, or belongs to another store.
    Damaged(String),
}

/// The open seal of one store.
#[derive(Debug)]
pub struct Seal {
    file: File,
    store_id: [u8; 16],
    extent: LogExtent,
}

impl Seal {
    /// Opens (or creates) the seal in `dir` and checks it against what the store holds.
    pub fn open(
        dir: &Path,
        store_id: [u8; 16],
        found: LogExtent,
    ) -> std::io::Result<(Self, SealCheck)> {
        let path = dir.join(SEAL_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let check = if existed {
            check(&read(&file)?, store_id, found)
        } else {
            SealCheck::Missing
        };
        let seal = Seal {
            file,
            store_id,
            extent: found,
        };
        // Without a usable seal, start afresh from what is held. A damaged store's seal
        // stays as it was: it is the evidence, and the store is not opened.
        if matches!(check, SealCheck::Missing | SealCheck::Unreadable) {
            seal.write()?;
            seal.file.set_len(LEN as u64)?;
        }
        Ok((seal, check))
    }

    /// How far the change log reaches, by the commits recorded since the open.
    pub fn extent(&self) -> LogExtent {
        self.extent
    }

    /// Records that a commit wrote `entries` log entries in batch `batch`.
    pub fn advance(&mut self, batch: u64, entries: u64) -> std::io::Result<()> {
        self.extent.next_batch = self.extent.next_batch.max(batch + 1);
        self.extent.entries += entries;
        self.write()
    }

    /// Rewrites the seal in place. Its length is `LEN` from the open on (an intact seal
    /// is exactly that long; any other is rewritten and cut there), so a commit costs one
    /// write and no truncation.
    fn write(&self) -> std::io::Result<()> {
        self.file
            .write_all_at(&encode(self.store_id, self.extent), 0)
    }
}

/// The extent the seal in `dir` names, if there is a whole one (read only).
pub fn sealed_extent(dir: &Path) -> Option<LogExtent> {
    let file = File::open(dir.join(SEAL_FILE)).ok()?;
    decode(&read(&file).ok()?).map(|(_, extent)| extent)
}

fn read(file: &File) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; LEN + 1];
    let mut n = 0;
    // A seal is tiny; read at most one byte past its size to notice trailing bytes.
    while n < bytes.len() {
        match file.read_at(&mut bytes[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    bytes.truncate(n);
    Ok(bytes)
}

fn encode(store_id: [u8; 16], extent: LogExtent) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..24].copy_from_slice(&store_id);
    out[24..32].copy_from_slice(&extent.next_batch.to_be_bytes());
    out[32..40].copy_from_slice(&extent.entries.to_be_bytes());
    let sum = checksum(&out[..40]);
    out[40..].copy_from_slice(&sum);
    out
}

fn checksum(bytes: &[u8]) -> [u8; 8] {
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&blake3::hash(bytes).as_bytes()[..8]);
    sum
}

/// The store id and extent a seal names, if its bytes are a whole, untorn seal.
fn decode(bytes: &[u8]) -> Option<([u8; 16], LogExtent)> {
    if bytes.len() != LEN || &bytes[..8] != MAGIC || bytes[40..] != checksum(&bytes[..40]) {
        return None;
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[8..24]);
    let number = |r: std::ops::Range<usize>| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[r]);
        u64::from_be_bytes(b)
    };
    Some((
        id,
        LogExtent {
            next_batch: number(24..32),
            entries: number(32..40),
        },
    ))
}

fn check(bytes: &[u8], store_id: [u8; 16], found: LogExtent) -> SealCheck {
    let Some((sealed_id, sealed)) = decode(bytes) else {
        return SealCheck::Unreadable;
    };
    if sealed_id != store_id {
        return SealCheck::Damaged(format!(
            "the seal belongs to store {}, the directory holds store {}",
            hex::encode(sealed_id),
            hex::encode(store_id)
        ));
    }
    if found.covers(&sealed) {
        return SealCheck::Intact;
    }
    SealCheck::Damaged(format!(
        "its change log holds {} entries up to batch {}, but {} entries up to batch {} were \
         committed (sled dropped the log after a damaged part)",
        found.entries,
        found.next_batch.saturating_sub(1),
        sealed.entries,
        sealed.next_batch.saturating_sub(1)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 16] = [7; 16];

    fn extent(next_batch: u64, entries: u64) -> LogExtent {
        LogExtent {
            next_batch,
            entries,
        }
    }

    #[test]
    fn a_store_holding_what_was_sealed_or_more_is_intact() {
        let sealed = encode(ID, extent(5, 100));
        assert_eq!(check(&sealed, ID, extent(5, 100)), SealCheck::Intact);
        // A power cut may leave the seal behind the store, never ahead.
        assert_eq!(check(&sealed, ID, extent(6, 130)), SealCheck::Intact);
    }

    #[test]
    fn a_store_shorter_than_its_seal_is_damaged() {
        let sealed = encode(ID, extent(5, 100));
        assert!(matches!(
            check(&sealed, ID, extent(4, 100)),
            SealCheck::Damaged(_)
        ));
        assert!(matches!(
            check(&sealed, ID, extent(5, 99)),
            SealCheck::Damaged(_)
        ));
    }

    #[test]
    fn a_seal_of_another_store_is_damage() {
        let sealed = encode([8; 16], extent(1, 1));
        assert!(matches!(
            check(&sealed, ID, extent(9, 9)),
            SealCheck::Damaged(m) if m.contains("another") || m.contains("belongs")
        ));
    }

    #[test]
    fn torn_short_long_or_foreign_bytes_carry_no_information() {
        let sealed = encode(ID, extent(5, 100));
        let mut torn = sealed;
        torn[30] ^= 1;
        let mut long = sealed.to_vec();
        long.push(0);
        for bytes in [&torn[..], &sealed[..20], &long[..], b"not a seal"] {
            assert_eq!(
                check(bytes, ID, extent(0, 0)),
                SealCheck::Unreadable,
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn a_seal_follows_commits_and_is_checked_on_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seal, first) = Seal::open(dir.path(), ID, LogExtent::default()).unwrap();
        assert_eq!(first, SealCheck::Missing);
        seal.advance(0, 10).unwrap();
        seal.advance(3, 5).unwrap();
        drop(seal);
        let (_, again) = Seal::open(dir.path(), ID, extent(4, 15)).unwrap();
        assert_eq!(again, SealCheck::Intact);
        let (_, short) = Seal::open(dir.path(), ID, extent(1, 10)).unwrap();
        assert!(matches!(short, SealCheck::Damaged(_)), "{short:?}");
        // A damaged store's seal is left as evidence, not rewritten.
        let (_, still) = Seal::open(dir.path(), ID, extent(1, 10)).unwrap();
        assert!(matches!(still, SealCheck::Damaged(_)));
    }
}

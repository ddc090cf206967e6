//! Streaming a store as it was at one cut: the header, the items a chunk at a time (the
//! store goes on committing between chunks), and the end. Before the end, every owner's
//! records as streamed are checked against the count and digest the store held at the
//! cut, so a stream that ends well is the store at its cut.

use std::collections::BTreeMap;

use super::super::keys;
use super::super::sled_store::{BackupRun, Cut, SledStore};
use super::{BACKUP_FORMAT, BackupError, End, Frame, Header, Item, OwnerCut, frame_bytes};
use crate::core::codec;
use crate::core::model::NodeCode;
use crate::core::reconcile::Digest;
use crate::core::store::{Store, StoreError};

/// Bytes of items gathered into one frame, about.
const FRAME_TARGET: usize = 1 << 20;

/// Takes the cut of a new backup of `store`; [`BackupError::Busy`] while one runs.
pub fn begin(store: &SledStore) -> Result<(BackupRun<'_>, Cut), BackupError> {
    store.begin_backup()?.ok_or(BackupError::Busy)
}

/// Streams the backup begun with [`begin`] to `send`, frame by frame, and returns its end.
/// On a failure after the header, a [`Frame::Failed`] naming it is sent (if `send` still
/// takes frames) before the error is returned.
pub fn stream(
    store: &SledStore,
    (mut run, cut): (BackupRun<'_>, Cut),
    now_ms: i64,
    send: &mut dyn FnMut(Vec<u8>) -> Result<(), BackupError>,
) -> Result<End, BackupError> {
    let identity = store.identity();
    let header = Header {
        format: BACKUP_FORMAT,
        node: identity.node,
        store_id: identity.store_id,
        batch: cut.batch,
        taken_at_ms: now_ms,
        owners: cut
            .owners
            .iter()
            .map(|(owner, last_seq, d)| OwnerCut {
                owner: *owner,
                last_seq: *last_seq,
                records: d.records,
                sum: d.sum,
            })
            .collect(),
    };
    let mut hasher = blake3::Hasher::new();
    let mut emit = |frame: &Frame, send: &mut dyn FnMut(Vec<u8>) -> Result<(), BackupError>| {
        let bytes = frame_bytes(frame)?;
        hasher.update(&bytes);
        send(bytes)
    };
    emit(&Frame::Header(header), send)?;
    let streamed = (|| {
        let mut tally = Tally::default();
        let mut pending = Vec::new();
        let mut pending_bytes = 0;
        while let Some(chunk) = run.next_chunk()? {
            for (key, value) in chunk {
                pending_bytes += key.len() + value.len();
                let item = item(&key, &value)?;
                tally.count(&item);
                pending.push(item);
                if pending_bytes >= FRAME_TARGET {
                    emit(&Frame::Items(std::mem::take(&mut pending)), send)?;
                    pending_bytes = 0;
                }
            }
        }
        if !pending.is_empty() {
            emit(&Frame::Items(pending), send)?;
        }
        tally.check(&cut)?;
        Ok::<_, BackupError>(tally)
    })();
    drop(run);
    match streamed {
        Ok(tally) => {
            let end = End {
                items: tally.items,
                records: tally.records,
                documents: tally.documents,
                hash: *hasher.finalize().as_bytes(),
            };
            send(frame_bytes(&Frame::End(end.clone()))?)?;
            Ok(end)
        }
        Err(e) => {
            if let Ok(bytes) = frame_bytes(&Frame::Failed(e.to_string())) {
                let _ = send(bytes);
            }
            Err(e)
        }
    }
}

/// What a stream held so far.
#[derive(Default)]
struct Tally {
    items: u64,
    records: u64,
    documents: u64,
    owners: BTreeMap<NodeCode, Digest>,
}

impl Tally {
    fn count(&mut self, item: &Item) {
        self.items += 1;
        match item {
            Item::Record(r) => {
                self.records += 1;
                self.owners
                    .entry(r.envelope.owner)
                    .or_default()
                    .merge(Digest {
                        records: 1,
                        sum: r.envelope.fingerprint(),
                    });
            }
            Item::Document(_) => self.documents += 1,
            _ => {}
        }
    }

    /// Every owner's records as streamed are those the store held at the cut.
    fn check(&self, cut: &Cut) -> Result<(), BackupError> {
        let at_cut: BTreeMap<NodeCode, Digest> = cut
            .owners
            .iter()
            .filter(|(_, _, d)| d.records > 0)
            .map(|(o, _, d)| (*o, *d))
            .collect();
        for owner in at_cut.keys().chain(self.owners.keys()) {
            let (want, got) = (at_cut.get(owner), self.owners.get(owner));
            if want != got {
                return Err(BackupError::Inconsistent(format!(
                    "{owner}: the cut held {} records, the backup read {}",
                    want.map_or(0, |d| d.records),
                    got.map_or(0, |d| d.records)
                )));
            }
        }
        Ok(())
    }
}

/// The item a backed-up key and value stand for.
fn item(key: &[u8], value: &[u8]) -> Result<Item, BackupError> {
    let corrupt = |what: &str| {
        BackupError::Store(StoreError::Storage(format!(
            "{what} under key {key:?} is malformed"
        )))
    };
    let code = |n: Option<u32>, what: &str| {
        n.and_then(|n| NodeCode::new(n).ok())
            .ok_or_else(|| corrupt(what))
    };
    let decoded = |e: codec::CodecError| BackupError::Store(StoreError::Corrupt(e));
    Ok(match key.first().copied() {
        Some(keys::DOCUMENT) => Item::Document(codec::decode(value).map_err(decoded)?),
        Some(keys::PEER_STORE) => Item::PeerStore {
            peer: code(keys::parse_peer_store(key), "a child's store id")?,
            store_id: value
                .try_into()
                .map_err(|_| corrupt("a child's store id"))?,
        },
        Some(keys::QUARANTINE) => Item::Quarantined(codec::decode(value).map_err(decoded)?),
        Some(keys::RECORD) => Item::Record(codec::decode(value).map_err(decoded)?),
        Some(keys::RECEIVED) => Item::Received {
            owner: code(keys::parse_received(key), "a receipt time")?,
            at_ms: i64::from_be_bytes(value.try_into().map_err(|_| corrupt("a receipt time"))?),
        },
        Some(keys::WATERMARK) => {
            let (peer, owner) = keys::parse_watermark(key).unzip();
            Item::Watermark {
                peer: code(peer, "a watermark")?,
                owner: code(owner, "a watermark")?,
                seq: u64::from_be_bytes(value.try_into().map_err(|_| corrupt("a watermark"))?),
            }
        }
        _ if key == keys::RESTORE_PENDING => Item::RestorePending,
        _ => return Err(corrupt("an unexpected entry")),
    })
}

//! Bounded messages: how many records and bytes one `Batch` or `Repair` carries.

use crate::core::model::Record;

/// Encoded record bytes one message carries at most: half the frame limit, so that the
/// envelope of the message never pushes a batch of large records over it.
pub const BATCH_BYTES: usize = crate::core::wire::MAX_FRAME / 2;

/// Splits `records` into runs of at most `max` records and [`BATCH_BYTES`] encoded bytes
/// (a run always holds at least one record), keeping their order.
pub fn split_by_size(records: Vec<Record>, max: usize) -> Vec<Vec<Record>> {
    let mut runs: Vec<Vec<Record>> = Vec::new();
    let mut bytes = 0;
    for r in records {
        // A record that cannot be encoded is counted at the largest a record may be.
        let size =
            crate::core::codec::encoded_len(&r).unwrap_or(crate::core::store::MAX_RECORD_BYTES);
        let full = runs
            .last()
            .is_none_or(|run| run.len() >= max.max(1) || bytes + size > BATCH_BYTES);
        if full {
            runs.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(run) = runs.last_mut() {
            run.push(r);
        }
    }
    runs
}

/// The records of one `Batch` within [`BATCH_BYTES`]: `records` (in seq order, covering
/// every current record through `to`) cut to the first run, and the seq it covers.
pub fn first_batch(to: u64, records: Vec<Record>) -> (u64, Vec<Record>) {
    let total = records.len();
    let Some(first) = split_by_size(records, total).into_iter().next() else {
        return (to, Vec::new());
    };
    if first.len() == total {
        return (to, first);
    }
    let last = first.last().map_or(to, |r| r.envelope.seq);
    (last, first)
}

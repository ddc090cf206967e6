//! Version and seq assignment for the owner's own writes (pure, given a store to read).
//!
//! The owner is the single writer of its records: identical content is a no-op that
//! reports the stored version; changed content becomes version + 1 with the next seq.

use std::collections::HashMap;

use crate::core::model::ingest::Draft;
use crate::core::model::record::{CodeRef, content_hash};
use crate::core::model::{Envelope, Kind, NodeCode, Record, RecordKey};
use crate::core::store::{RecordWrite, Store, StoreError};

/// What happened to one draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Kind of the record.
    pub kind: Kind,
    /// Its id.
    pub id: String,
    /// The version now stored.
    pub version: u64,
    /// The seq of that version.
    pub seq: u64,
    /// False when the content was identical to the stored version (nothing written).
    pub changed: bool,
}

/// Plans drafts for one owner against the store plus the writes planned but not yet
/// committed, so that writes to one record chain correctly within a group and across
/// groups still being committed. Writes are handed out per group ([`Planner::take_group`])
/// and forgotten once that group is durable ([`Planner::committed`]).
pub struct Planner<'a> {
    store: &'a dyn Store,
    owner: NodeCode,
    next_seq: u64,
    group: u64,
    pending: HashMap<RecordKey, (Envelope, u64)>,
    writes: Vec<RecordWrite>,
}

impl<'a> Planner<'a> {
    /// A planner for `owner`'s writes, continuing after the last stored seq.
    pub fn new(store: &'a dyn Store, owner: NodeCode) -> Self {
        Planner {
            store,
            owner,
            next_seq: store.last_seq(owner) + 1,
            group: 0,
            pending: HashMap::new(),
            writes: Vec::new(),
        }
    }

    /// The current envelope under `key`: this group's pending write, else the store's
    /// (read only when the store may hold the key).
    fn current(&self, key: RecordKey) -> Result<Option<Envelope>, StoreError> {
        if let Some((e, _)) = self.pending.get(&key) {
            return Ok(Some(e.clone()));
        }
        if !self.store.may_contain(self.owner, key) {
            return Ok(None);
        }
        Ok(self.store.get_record(self.owner, key)?.map(|r| r.envelope))
    }

    /// The version under `key` as planned so far (pending, else stored).
    pub fn version_of(&self, key: RecordKey) -> Result<Option<u64>, StoreError> {
        Ok(self.current(key)?.map(|e| e.version))
    }

    /// Plans one draft, recording the write if its content changed.
    pub fn plan(
        &mut self,
        draft: Draft,
        code_refs: &[CodeRef],
        now_ms: i64,
    ) -> Result<Outcome, StoreError> {
        let kind = draft.data.kind();
        let key = RecordKey::of(kind, &draft.id);
        let hash = content_hash(self.owner, &draft.id, draft.status, &draft.data)?;
        let current = self.current(key)?;
        if let Some(cur) = &current {
            // A stored record with another (kind, id) under this key is a 128-bit key
            // collision: refuse rather than overwrite it.
            if cur.kind != kind || cur.id != draft.id {
                return Err(StoreError::Storage(format!(
                    "record key collision for {kind}/{}",
                    draft.id
                )));
            }
            if cur.hash == hash {
                return Ok(outcome(cur, false));
            }
        }
        let envelope = Envelope {
            owner: self.owner,
            kind,
            id: draft.id,
            version: current.as_ref().map_or(1, |c| c.version + 1),
            seq: self.next_seq,
            status: draft.status,
            recorded_at_ms: now_ms,
            code_refs: code_refs.to_vec(),
            hash,
        };
        self.next_seq += 1;
        let done = outcome(&envelope, true);
        self.pending.insert(key, (envelope.clone(), self.group));
        self.writes.push(RecordWrite {
            prev_fp: current.map(|c| c.fingerprint()),
            record: Record {
                envelope,
                data: draft.data,
            },
        });
        Ok(done)
    }

    /// The writes planned so far.
    pub fn into_writes(self) -> Vec<RecordWrite> {
        self.writes
    }

    /// Catches up with seqs the store gained from elsewhere (records restored from the
    /// parent): the next seq is never at or below one already stored.
    pub fn catch_up(&mut self) {
        self.next_seq = self.next_seq.max(self.store.last_seq(self.owner) + 1);
    }

    /// Hands out the writes planned since the last call as group number N; the planner
    /// keeps treating them as current until [`Planner::committed`]`(N)`.
    pub fn take_group(&mut self) -> (u64, Vec<RecordWrite>) {
        let group = self.group;
        self.group += 1;
        (group, std::mem::take(&mut self.writes))
    }

    /// Group `group` (and every earlier one) is durable: the store now answers for it.
    pub fn committed(&mut self, group: u64) {
        self.pending.retain(|_, (_, g)| *g > group);
    }
}

/// What storing `drafts` would do to `owner`'s records as the store stands, in order,
/// without writing anything: the version and seq each would get, and whether it would
/// change anything (`POST /v1/records?dry_run=true`). Writes committed meanwhile by the
/// writer may make the real outcome differ.
pub fn preview(
    store: &dyn Store,
    owner: NodeCode,
    drafts: Vec<Draft>,
) -> Result<Vec<Outcome>, StoreError> {
    let mut planner = Planner::new(store, owner);
    // Neither the code refs nor the time enter an outcome; the planned writes are dropped.
    drafts
        .into_iter()
        .map(|d| planner.plan(d, &[], 0))
        .collect()
}

fn outcome(e: &Envelope, changed: bool) -> Outcome {
    Outcome {
        kind: e.kind,
        id: e.id.clone(),
        version: e.version,
        seq: e.seq,
        changed,
    }
}

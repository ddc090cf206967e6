//! Version and seq assignment for the owner's own writes (pure, given a store to read).
//!
//! The owner is the single writer of its records: identical content is a no-op that
//! reports the stored version; changed content becomes version + 1 with the next seq.

use std::collections::HashMap;

use crate::model::ingest::Draft;
use crate::model::record::{CodeRef, content_hash};
use crate::model::{Envelope, Kind, NodeCode, Record, RecordKey};
use crate::storage::{RecordWrite, Store, StoreError};

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

/// Plans a group of drafts for one owner against the store plus what the group itself
/// already wrote (so two requests in one group touching the same record chain correctly).
pub struct Planner<'a> {
    store: &'a dyn Store,
    owner: NodeCode,
    next_seq: u64,
    pending: HashMap<RecordKey, Record>,
    writes: Vec<RecordWrite>,
}

impl<'a> Planner<'a> {
    /// A planner for `owner`'s writes, continuing after the last stored seq.
    pub fn new(store: &'a dyn Store, owner: NodeCode) -> Self {
        Planner {
            store,
            owner,
            next_seq: store.last_seq(owner) + 1,
            pending: HashMap::new(),
            writes: Vec::new(),
        }
    }

    fn current(&self, key: RecordKey) -> Result<Option<Record>, StoreError> {
        match self.pending.get(&key) {
            Some(r) => Ok(Some(r.clone())),
            None => self.store.get_record(self.owner, key),
        }
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
            if cur.envelope.kind != kind || cur.envelope.id != draft.id {
                return Err(StoreError::Storage(format!(
                    "record key collision for {kind}/{}",
                    draft.id
                )));
            }
            if cur.envelope.hash == hash {
                return Ok(outcome(&cur.envelope, false));
            }
        }
        let envelope = Envelope {
            owner: self.owner,
            kind,
            id: draft.id,
            version: current.as_ref().map_or(1, |c| c.envelope.version + 1),
            seq: self.next_seq,
            status: draft.status,
            recorded_at_ms: now_ms,
            code_refs: code_refs.to_vec(),
            hash,
        };
        self.next_seq += 1;
        let record = Record {
            envelope,
            data: draft.data,
        };
        let done = outcome(&record.envelope, true);
        self.writes.push(RecordWrite {
            prev_fp: current.map(|c| c.envelope.fingerprint()),
            record: record.clone(),
        });
        self.pending.insert(key, record);
        Ok(done)
    }

    /// The writes planned so far.
    pub fn into_writes(self) -> Vec<RecordWrite> {
        self.writes
    }
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

//! Deciding what to do with records received from a child (pure, given a store to read).
//!
//! A replica never rewrites a record: it stores a received version if it is newer than the
//! one it holds, keeps its own if that is newer, and surfaces two different copies of the
//! same version as a conflict (corruption or a cloned node), never resolving it. A record
//! whose hash does not verify, whose fields fail validation here or whose own signature
//! (a submitted report's) does not verify is quarantined: not applied, kept aside for
//! inspection, reported, and the rest of the batch goes on.

use crate::core::model::kinds::verify_record;
use crate::core::model::signature::DocumentVerifier;
use crate::core::model::standards::Standards;
use crate::core::model::validate::Checker;
use crate::core::model::{NodeCode, Record, RecordKey};
use crate::core::store::{QuarantinedRecord, RecordWrite, Store, StoreError};

/// What to do with one received batch.
#[derive(Debug, Default)]
pub struct ReplicaPlan {
    /// Versions to store.
    pub writes: Vec<RecordWrite>,
    /// Records refused, with the reason.
    pub quarantined: Vec<(Record, String)>,
    /// Same version, different content: `(record id, description)`.
    pub conflicts: Vec<String>,
    /// Records already held at this or a newer version.
    pub unchanged: usize,
    /// The keys of the records held here in a newer version than received.
    pub held_newer: Vec<crate::core::model::RecordKey>,
}

impl ReplicaPlan {
    /// The events an operator should see about this batch (conflicts, quarantines).
    pub fn alerts(&mut self, owner: crate::core::model::NodeCode) -> Vec<super::Action> {
        let conflicts = std::mem::take(&mut self.conflicts)
            .into_iter()
            .map(|detail| super::Action::Event(super::Event::Conflict { detail }));
        let quarantined = self.quarantined.iter().map(|(r, reason)| {
            super::Action::Event(super::Event::Quarantined {
                owner,
                id: r.envelope.id.clone(),
                reason: reason.clone(),
            })
        });
        conflicts.chain(quarantined).collect()
    }

    /// The refused records, to keep for inspection. The receive time is left at zero for
    /// the shell to stamp: the sessions read no clock.
    pub fn take_quarantine(
        &mut self,
        from: crate::core::model::NodeCode,
    ) -> Vec<QuarantinedRecord> {
        std::mem::take(&mut self.quarantined)
            .into_iter()
            .map(|(record, reason)| QuarantinedRecord {
                record,
                reason,
                from,
                received_at_ms: 0,
            })
            .collect()
    }
}

/// Stores records of `owner` received from `from` outside the ordered upload (anti-entropy
/// repairs, a restore): the alerts, one commit that sends `then` once durable, and a
/// [`super::Event::Repaired`]. A message claiming to repair `owner` that holds another
/// owner's record closes the session with nothing stored.
pub fn commit_replica(
    store: &dyn Store,
    (standards, verifier): (&Standards, &DocumentVerifier),
    (owner, from): (crate::core::model::NodeCode, crate::core::model::NodeCode),
    records: Vec<Record>,
    then: Vec<crate::core::wire::Message>,
) -> Result<Vec<super::Action>, StoreError> {
    if records.iter().any(|r| r.envelope.owner != owner) {
        return Ok(super::close(
            crate::core::wire::RefusalCode::Protocol,
            format!("a repair of {owner} holds another owner's record"),
        ));
    }
    let plan = plan_replica(store, (standards, verifier), records)?;
    Ok(replica_actions(plan, (owner, from), then))
}

/// What the shell does with a planned replica batch of `owner` from `from`: the alerts, one
/// commit that sends `then` once durable, and a [`super::Event::Repaired`].
pub fn replica_actions(
    mut plan: ReplicaPlan,
    (owner, from): (crate::core::model::NodeCode, crate::core::model::NodeCode),
    then: Vec<crate::core::wire::Message>,
) -> Vec<super::Action> {
    let mut actions = plan.alerts(owner);
    let records = plan.writes.len();
    actions.push(super::Action::Commit {
        batch: crate::core::store::WriteBatch {
            quarantine: plan.take_quarantine(from),
            records: plan.writes,
            ..Default::default()
        },
        then,
    });
    actions.push(super::Action::Event(super::Event::Repaired {
        owner,
        records,
    }));
    actions
}

/// Two different copies of one version: surfaced, never resolved.
fn conflict(
    held: &crate::core::model::Envelope,
    received: &crate::core::model::Envelope,
) -> String {
    format!(
        "{}/{}/{} version {}: held hash {} differs from received {}",
        received.owner, received.kind, received.id, received.version, held.hash, received.hash
    )
}

/// Plans the writes for records received from a peer: validated against `standards`,
/// signed reports verified with `verifier`.
pub fn plan_replica(
    store: &dyn Store,
    (standards, verifier): (&Standards, &DocumentVerifier),
    records: Vec<Record>,
) -> Result<ReplicaPlan, StoreError> {
    let mut plan = ReplicaPlan::default();
    // Where each key planned so far sits in `plan.writes`.
    let mut planned: std::collections::HashMap<(NodeCode, RecordKey), usize> =
        std::collections::HashMap::new();
    for record in records {
        let e = &record.envelope;
        if !record.verify_hash()? {
            plan.quarantined
                .push((record, "content hash does not match the data".into()));
            continue;
        }
        let checker = Checker {
            owner: e.owner,
            standards,
        };
        if let Err(err) = record.data.validate(&checker) {
            let reason = format!("fails validation here: {err}");
            plan.quarantined.push((record, reason));
            continue;
        }
        if let Err(why) = verify_record(verifier, &record) {
            let reason = format!("the report's signature does not verify here: {why}");
            plan.quarantined.push((record, reason));
            continue;
        }
        let e = &record.envelope;
        let key = (e.owner, e.key());
        // The same record twice in one message (a peer's bug or an attack): its versions
        // are weighed against each other as against a held one, so that one write of the
        // key remains and the summaries count it once.
        if let Some(earlier) = planned.get(&key).and_then(|at| plan.writes.get_mut(*at)) {
            let held = &earlier.record.envelope;
            match held.version.cmp(&e.version) {
                std::cmp::Ordering::Less => earlier.record = record,
                std::cmp::Ordering::Equal if held.hash != e.hash => {
                    plan.conflicts.push(conflict(held, e));
                }
                _ => plan.unchanged += 1,
            }
            continue;
        }
        let held = if store.may_contain(key.0, key.1) {
            store.get_record(key.0, key.1)?
        } else {
            None
        };
        match held {
            Some(h) if h.envelope.version > e.version => {
                plan.unchanged += 1;
                plan.held_newer.push(key.1);
            }
            Some(h) if h.envelope.version == e.version => {
                if h.envelope.hash != e.hash {
                    plan.conflicts.push(conflict(&h.envelope, e));
                } else {
                    plan.unchanged += 1;
                }
            }
            held => {
                let prev_fp = held.map(|h| h.envelope.fingerprint());
                planned.insert(key, plan.writes.len());
                plan.writes.push(RecordWrite { record, prev_fp });
            }
        }
    }
    Ok(plan)
}

//! Pid links: one person's pids under two key epochs of the same city (`pid_link`).
//!
//! While a city keeps its previous pseudonym key beside the new one (the overlap after a
//! key rotation), ingest computes a person's pid under both keys and writes, in the same
//! commit as the record, a link from the old pid to the new one. Links carry no citizen
//! data and replicate up like every record; the metrics join pids through them so that a
//! person counts once across the change.

use serde::{Deserialize, Serialize};

use crate::core::model::validate::{Check, Checker};
use crate::core::model::values::Pid;

/// The same person's pid under an earlier and a later key epoch of the owning city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PidLink {
    /// The earlier epoch.
    pub from_epoch: u16,
    /// The person's pid under the earlier epoch's key.
    pub from_pid: Pid,
    /// The later epoch.
    pub to_epoch: u16,
    /// The person's pid under the later epoch's key.
    pub to_pid: Pid,
}

impl PidLink {
    /// The id a link is stored under: derived from both epochs and the new pid, so that
    /// ingesting the same person again writes the same record (a no-op).
    pub fn id_of(from_epoch: u16, to_epoch: u16, to_pid: Pid) -> String {
        format!("{from_epoch}-{to_epoch}-{to_pid}")
    }

    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.ensure(self.to_epoch > self.from_epoch, "to_epoch", || {
            format!(
                "a link goes from an earlier epoch to a later one; got {} to {}",
                self.from_epoch, self.to_epoch
            )
        })
    }
}

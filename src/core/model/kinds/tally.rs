//! The ingest tally (`ingest_tally`): how many records a city's node refused at ingest in
//! one quarter, by kind and by error, so that the rejection rate (F06) is known at the
//! province and the ministry as at the city.
//!
//! No client posts these records: the city node's writer adds each request's refusals to
//! the tally of the quarter (by the node's clock) in the same commit as the request's
//! accepted records. The record id is the quarter (`2024Q1`); each request that refuses
//! records writes its next version, and a quarter without refusals has none. The records
//! accepted are the city's records themselves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::model::validate::{Check, Checker};

/// Most keys in one of the tally's maps: every kind, every error code, with room.
const MAX_KEYS: usize = 64;
/// Longest key, in bytes.
const MAX_KEY_BYTES: usize = 64;

/// A quarter's ingest counts of one city.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestTally {
    /// The quarter counted (`2024Q1`, by the node's clock), also the record's id.
    pub quarter: String,
    /// Records offered and refused by validation.
    pub refused: u64,
    /// Refused records by the kind they named (`unknown` when they named none).
    pub refused_by_kind: BTreeMap<String, u64>,
    /// Refused records by error code (`invalid_code`, `missing_field` …).
    pub refused_by_error: BTreeMap<String, u64>,
}

impl IngestTally {
    /// No counts yet for `quarter`.
    pub fn new(quarter: String) -> Self {
        IngestTally {
            quarter,
            ..IngestTally::default()
        }
    }

    /// Adds another count to this one.
    pub fn add(&mut self, o: &IngestTally) {
        self.refused = self.refused.saturating_add(o.refused);
        for (into, from) in [
            (&mut self.refused_by_kind, &o.refused_by_kind),
            (&mut self.refused_by_error, &o.refused_by_error),
        ] {
            for (k, n) in from {
                let slot = into.entry(k.clone()).or_default();
                *slot = slot.saturating_add(*n);
            }
        }
    }

    /// True when nothing was refused.
    pub fn is_empty(&self) -> bool {
        self.refused == 0
    }

    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.ensure(
            super::quarter_days(&self.quarter).is_some(),
            "quarter",
            || format!("{:?} is no quarter (YYYYQn)", self.quarter),
        )?;
        for (field, map) in [
            ("refused_by_kind", &self.refused_by_kind),
            ("refused_by_error", &self.refused_by_error),
        ] {
            cx.ensure(map.len() <= MAX_KEYS, field, || {
                format!("at most {MAX_KEYS} keys, got {}", map.len())
            })?;
            let long = map.keys().find(|k| k.is_empty() || k.len() > MAX_KEY_BYTES);
            cx.ensure(long.is_none(), field, || {
                format!("keys are 1 to {MAX_KEY_BYTES} bytes")
            })?;
            let sum = map.values().fold(0u64, |a, n| a.saturating_add(*n));
            cx.ensure(sum == self.refused, field, || {
                format!("adds up to {sum}, not to refused ({})", self.refused)
            })?;
        }
        Ok(())
    }
}

//! Engine metrics F01 (lag), F02 (staleness), F04 (sequence gaps) and F06 (rejections at sync),
//! from facts the caller measured per city ([`EngineFacts`]); the time comes in as
//! [`EngineLimits::now_ms`].
//!
//! Percentiles do not add, so F01 over several cities is the largest city value; F02 is
//! the stalest city. Counts and the rejection ratio are summed.

use serde::{Deserialize, Serialize};

use super::{MetricValue, Status, Unit};
use crate::reporting::analysis::scope::Scope;
use crate::reporting::analysis::targets::{AppliesTo, Comparator, MetricId, Target, TargetOrigin};

/// What the receiving node measured about one city's records (caller-supplied).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineFacts {
    /// Local receive time of the city's latest record, ms since the Unix epoch.
    pub last_received_ms: Option<i64>,
    /// Median replication lag (received − recorded), ms.
    pub lag_p50_ms: Option<u64>,
    /// 95th-percentile replication lag, ms.
    pub lag_p95_ms: Option<u64>,
    /// `origin_seq` gaps outstanding.
    pub seq_gaps: u64,
    /// Records accepted from the city.
    pub accepted: u64,
    /// Records rejected by validation.
    pub rejected: u64,
    /// Records held back for inspection.
    pub quarantined: u64,
    /// The city is retired: nothing more is expected of it, so it is never stale.
    #[serde(default)]
    pub retired: bool,
}

/// The evaluation time and the configured staleness alert threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// Now, ms since the Unix epoch (from the caller's clock).
    pub now_ms: i64,
    /// F02 fails above this many seconds since the last record.
    pub staleness_threshold_s: u64,
}

impl EngineLimits {
    /// The F02 target the threshold stands for.
    pub fn staleness_target(self, scope: Scope) -> Target {
        Target {
            target_id: "config:staleness_threshold".to_string(),
            metric: MetricId::F02,
            comparator: Comparator::AtMost(self.staleness_threshold_s as f64),
            scope,
            applies_to: AppliesTo::All,
            unit: Some("seconds".to_string()),
            period: None,
            source_doc: None,
            origin: TargetOrigin::Config,
        }
    }

    /// Seconds since the city's last record, `None` if none was ever received.
    fn staleness_s(self, facts: &EngineFacts) -> Option<u64> {
        let last = facts.last_received_ms?;
        let ms = self.now_ms.saturating_sub(last).max(0);
        u64::try_from(ms / 1000).ok()
    }
}

fn no_facts(id: MetricId, variant: &'static str) -> MetricValue {
    MetricValue::unmeasured(id, variant, Status::NoData, "no engine facts supplied")
}

fn largest(
    id: MetricId,
    variant: &'static str,
    values: impl Iterator<Item = Option<u64>>,
    target: Option<&Target>,
    note: &str,
) -> MetricValue {
    match values.flatten().max() {
        Some(v) => MetricValue::measured(id, variant, Unit::Milliseconds, (v, 1), target, note),
        None => no_facts(id, variant),
    }
}

/// F01: the largest p50 and p95 lag of the cities.
pub(crate) fn lag(facts: &[&EngineFacts], target: Option<&Target>) -> Vec<MetricValue> {
    let note = "largest city value (percentiles do not add)";
    let p50 = facts.iter().map(|f| f.lag_p50_ms);
    let p95 = facts.iter().map(|f| f.lag_p95_ms);
    vec![
        largest(MetricId::F01, "lag_p50_ms", p50, target, note),
        largest(MetricId::F01, "lag_p95_ms", p95, target, note),
    ]
}

/// F02: seconds since the stalest city's last record, and how many cities are stale.
pub(crate) fn staleness(
    facts: &[&EngineFacts],
    limits: EngineLimits,
    scope: Scope,
) -> Vec<MetricValue> {
    // A retired city is expected to be silent.
    let facts: Vec<&EngineFacts> = facts.iter().copied().filter(|f| !f.retired).collect();
    if facts.is_empty() {
        return vec![
            no_facts(MetricId::F02, "staleness_s"),
            no_facts(MetricId::F02, "stale_cities"),
        ];
    }
    let ages: Vec<Option<u64>> = facts.iter().map(|f| limits.staleness_s(f)).collect();
    let never = ages.iter().filter(|a| a.is_none()).count();
    let stale = ages
        .iter()
        .filter(|a| a.is_none_or(|s| s > limits.staleness_threshold_s))
        .count();
    let target = limits.staleness_target(scope);
    let worst = match ages.iter().flatten().max() {
        Some(&s) => MetricValue::measured(
            MetricId::F02,
            "staleness_s",
            Unit::Seconds,
            (s, 1),
            Some(&target),
            format!("seconds since the stalest city's last record; {never} never received"),
        ),
        None => MetricValue::unmeasured(
            MetricId::F02,
            "staleness_s",
            Status::NoData,
            "no record ever received",
        ),
    };
    let stale = u64::try_from(stale).unwrap_or(u64::MAX);
    let count = MetricValue::measured(
        MetricId::F02,
        "stale_cities",
        Unit::Count,
        (stale, 1),
        None,
        "cities above the threshold or never received",
    );
    vec![worst, count]
}

/// F04: outstanding sequence gaps, summed.
pub(crate) fn gaps(facts: &[&EngineFacts], target: Option<&Target>) -> Vec<MetricValue> {
    if facts.is_empty() {
        return vec![no_facts(MetricId::F04, "seq_gaps")];
    }
    let n = facts
        .iter()
        .map(|f| f.seq_gaps)
        .fold(0u64, u64::saturating_add);
    let note = "origin_seq gaps outstanding (0 after catch-up)";
    vec![MetricValue::measured(
        MetricId::F04,
        "seq_gaps",
        Unit::Count,
        (n, 1),
        target,
        note,
    )]
}

/// F06 as measured here: records received from the cities and quarantined ÷ those
/// accepted and quarantined, and the count quarantined. (Refusals at a city's ingest are
/// counted from its replicated `ingest_tally` records, with the other record metrics.)
pub(crate) fn rejections(facts: &[&EngineFacts]) -> Vec<MetricValue> {
    if facts.is_empty() {
        return vec![
            no_facts(MetricId::F06, "sync_rejection_rate"),
            no_facts(MetricId::F06, "quarantined"),
        ];
    }
    let sum =
        |f: fn(&EngineFacts) -> u64| facts.iter().map(|x| f(x)).fold(0u64, u64::saturating_add);
    let rejected = sum(|f| f.rejected);
    let offered = rejected.saturating_add(sum(|f| f.accepted));
    let quarantined = sum(|f| f.quarantined);
    vec![
        MetricValue::measured(
            MetricId::F06,
            "sync_rejection_rate",
            Unit::Ratio,
            (rejected, offered),
            None,
            "records received here and held back, of records received",
        ),
        MetricValue::measured(
            MetricId::F06,
            "quarantined",
            Unit::Count,
            (quarantined, 1),
            None,
            "records held back for inspection",
        ),
    ]
}

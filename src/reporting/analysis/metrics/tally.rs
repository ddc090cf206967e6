//! Additive numerator/denominator pairs keyed by metric and variant.

use std::collections::BTreeMap;

use super::{catalogued_variant, is_catalogued};
use crate::reporting::analysis::targets::MetricId;

/// A numerator and a denominator; merging adds both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) num: u64,
    pub(crate) den: u64,
}

/// Tallies of every catalogued variant seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tallies(BTreeMap<(MetricId, &'static str), Tally>);

impl Tallies {
    /// Adds `num` and `den` to a variant.
    pub(crate) fn add(&mut self, metric: MetricId, variant: &'static str, num: u64, den: u64) {
        debug_assert!(is_catalogued(metric, variant), "{metric} {variant}");
        let t = self.0.entry((metric, variant)).or_default();
        t.num = t.num.saturating_add(num);
        t.den = t.den.saturating_add(den);
    }

    /// Counts one case of a variant, passing or not.
    pub(crate) fn hit(&mut self, metric: MetricId, variant: &'static str, pass: bool) {
        self.add(metric, variant, u64::from(pass), 1);
    }

    /// The tally of a variant (zero when never seen).
    pub(crate) fn get(&self, metric: MetricId, variant: &'static str) -> Tally {
        self.0.get(&(metric, variant)).copied().unwrap_or_default()
    }

    /// Adds every tally of `other`.
    pub(crate) fn merge(&mut self, other: &Tallies) {
        for (&(m, v), t) in &other.0 {
            self.add(m, v, t.num, t.den);
        }
    }

    /// Every tally as `(metric, variant, numerator, denominator)`.
    pub(crate) fn entries(&self) -> Vec<(MetricId, String, u64, u64)> {
        self.0
            .iter()
            .map(|(&(m, v), t)| (m, v.to_string(), t.num, t.den))
            .collect()
    }

    /// The tallies [`Tallies::entries`] gave; `None` if a variant is not in the catalogue
    /// (written by a release with another catalogue).
    pub(crate) fn from_entries(entries: &[(MetricId, String, u64, u64)]) -> Option<Tallies> {
        let mut tallies = Tallies::default();
        for (metric, variant, num, den) in entries {
            tallies.add(*metric, catalogued_variant(*metric, variant)?, *num, *den);
        }
        Some(tallies)
    }
}

//! Target trends for coverage: for each metric that has a target at a scope, its value
//! in each of the last [`TREND_QUARTERS`] quarters up to the one asked for (value,
//! numerator, denominator, met or not) and the direction it moves in.
//!
//! Direction compares the latest quarter with a value to the earliest one with a value
//! in the window, against what the target asks: for `>=` a higher value is better, for
//! `<=` a lower one, for `==` and `between` one nearer the threshold (or the interval).
//! Equal within 1e-9 is `steady`; fewer than two quarters with a value is `unknown`.

use serde::Serialize;

use super::metrics::{MetricSet, MetricValue, Status};
use super::period::Period;
use super::targets::{Comparator, MetricId, Target};

/// Quarters in a trend: the one asked for and the three before it.
pub const TREND_QUARTERS: usize = 4;

/// Values this close count as the same.
const EPSILON: f64 = 1e-9;

/// Which way a metric moves against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Towards the target (or further past it).
    Improving,
    /// Away from the target.
    Worsening,
    /// No change.
    Steady,
    /// Fewer than two quarters with a value.
    Unknown,
}

/// One quarter of a trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    /// The quarter.
    pub period: Period,
    /// numerator ÷ denominator; `None` when there was nothing to measure.
    pub value: Option<f64>,
    /// Summed numerator.
    pub numerator: u64,
    /// Summed denominator.
    pub denominator: u64,
    /// Whether the value met the target of that quarter (`None`: no value, or no
    /// target then).
    pub met: Option<bool>,
    /// The outcome, as in the quarter's metrics.
    pub status: Status,
}

/// The trend of one metric (variant) with a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetTrend {
    /// The metric.
    pub id: MetricId,
    /// Which reading.
    pub variant: &'static str,
    /// The target that applies in the latest quarter.
    pub target: Target,
    /// Oldest first, the latest quarter last.
    pub quarters: Vec<TrendPoint>,
    /// Which way it moves.
    pub direction: Direction,
}

/// How far `v` is from meeting `c` (0 when it does), larger is worse.
fn shortfall(c: Comparator, v: f64) -> f64 {
    match c {
        Comparator::AtLeast(t) => t - v,
        Comparator::AtMost(t) => v - t,
        Comparator::Equal(t) => (v - t).abs(),
        Comparator::Between(lo, hi) => (lo - v).max(v - hi).max(0.0),
    }
}

/// The direction from `first` to `last` against `c`.
pub fn direction(c: Comparator, first: f64, last: f64) -> Direction {
    let (before, after) = (shortfall(c, first), shortfall(c, last));
    match c {
        // One-sided targets: any move in the wanted direction counts, met or not.
        Comparator::AtLeast(_) | Comparator::AtMost(_) if (after - before).abs() <= EPSILON => {
            Direction::Steady
        }
        Comparator::AtLeast(_) | Comparator::AtMost(_) if after < before => Direction::Improving,
        Comparator::AtLeast(_) | Comparator::AtMost(_) => Direction::Worsening,
        _ if (after - before).abs() <= EPSILON => Direction::Steady,
        _ if after < before => Direction::Improving,
        _ => Direction::Worsening,
    }
}

fn point(period: Period, v: Option<&MetricValue>) -> TrendPoint {
    let Some(v) = v else {
        return TrendPoint {
            period,
            value: None,
            numerator: 0,
            denominator: 0,
            met: None,
            status: Status::NoData,
        };
    };
    let met = match v.status {
        Status::Pass => Some(true),
        Status::Fail => Some(false),
        _ => None,
    };
    TrendPoint {
        period,
        value: v.value,
        numerator: v.numerator,
        denominator: v.denominator,
        met,
        status: v.status,
    }
}

/// The trends of every metric with a target in `sets` (oldest quarter first, the
/// latest last): one per metric variant that has a target in the latest quarter.
pub fn target_trends(sets: &[MetricSet]) -> Vec<TargetTrend> {
    let Some(latest) = sets.last() else {
        return Vec::new();
    };
    latest
        .values
        .iter()
        .filter_map(|v| {
            let target = v.target.clone()?;
            let quarters: Vec<TrendPoint> = sets
                .iter()
                .map(|s| {
                    let same = s
                        .values
                        .iter()
                        .find(|x| x.id == v.id && x.variant == v.variant);
                    point(s.period, same)
                })
                .collect();
            let values: Vec<f64> = quarters.iter().filter_map(|p| p.value).collect();
            let direction = match (values.first(), values.last()) {
                (Some(&first), Some(&last)) if values.len() >= 2 => {
                    direction(target.comparator, first, last)
                }
                _ => Direction::Unknown,
            };
            Some(TargetTrend {
                id: v.id,
                variant: v.variant,
                target,
                quarters,
                direction,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_follows_what_the_target_asks() {
        // >= 0.9: 0.80 → 0.85 nears it; 0.85 → 0.80 leaves it; equal is steady.
        let at_least = Comparator::AtLeast(0.9);
        assert_eq!(direction(at_least, 0.80, 0.85), Direction::Improving);
        assert_eq!(direction(at_least, 0.85, 0.80), Direction::Worsening);
        assert_eq!(direction(at_least, 0.85, 0.85), Direction::Steady);
        // Past the threshold, higher is still better for >=.
        assert_eq!(direction(at_least, 0.95, 0.99), Direction::Improving);
        // <= 7 (days): 9 → 8 improves, 5 → 6 worsens.
        let at_most = Comparator::AtMost(7.0);
        assert_eq!(direction(at_most, 9.0, 8.0), Direction::Improving);
        assert_eq!(direction(at_most, 5.0, 6.0), Direction::Worsening);
        // between 0.4 and 0.6: 0.2 → 0.3 nears it (shortfall 0.2 → 0.1); inside both
        // times is steady (shortfall 0 → 0); 0.5 → 0.7 leaves it.
        let between = Comparator::Between(0.4, 0.6);
        assert_eq!(direction(between, 0.2, 0.3), Direction::Improving);
        assert_eq!(direction(between, 0.45, 0.55), Direction::Steady);
        assert_eq!(direction(between, 0.5, 0.7), Direction::Worsening);
        // == 1: 0.5 → 1.2 is nearer (0.5 → 0.2).
        assert_eq!(
            direction(Comparator::Equal(1.0), 0.5, 1.2),
            Direction::Improving
        );
    }
}

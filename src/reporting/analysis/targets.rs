//! Service-standard targets: the metric ids, the notice's default targets, targets
//! published as `service_standard_target` documents, and which target applies where.
//!
//! # Document body
//!
//! ```json
//! {
//!   "target_id": "M01-online-rate",      // optional; defaults to the document id
//!   "metric": "M01",                      // M01–M12 or F01–F06
//!   "comparator": ">=",                   // ">=", "<=", "==" or "between"
//!   "threshold": 0.6,                     // a number, or [lo, hi] for "between"
//!   "scope": "national",                  // "national", a province or a city code
//!   "applies_to": "pilots",               // "pilots" ("pilot cities") or "all"
//!   "unit": "share of reports",           // optional, informational
//!   "period": "quarter",                  // optional, informational
//!   "source_doc": "劳社部发〔1999〕…"       // optional
//! }
//! ```
//!
//! Unknown fields are rejected. The ministry may set targets for any scope; a province
//! only for itself or its cities.
//!
//! # Resolution
//!
//! The most specific scope wins: city, then its province, then national
//! ([`resolve_target`]). A published target replaces the built-in one of the same metric
//! and scope; of two published ones, the later in the input wins ([`effective_targets`]).
//! A target applies to a metric's primary variants; informational variants are shown
//! without one.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::scope::Scope;
use crate::core::model::tables::PROVINCES;
use crate::core::model::{MINISTRY, NodeCode, Tier};

/// Where the notice's defaults come from.
const NOTICE: &str = "关于开展劳动力市场\"三化\"建设试点工作的通知 (劳社部发[1999])";

/// Tolerance of comparisons, so that 3/5 meets 0.6.
const EPSILON: f64 = 1e-9;

macro_rules! metric_ids {
    ($($id:ident => $en:expr, $zh:expr;)*) => {
        /// A metric of `docs/reference/metrics.md` (M01–M12 or F01–F06).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum MetricId {
            $(
                #[doc = $en]
                $id,
            )*
        }

        impl MetricId {
            /// Every metric, in report order.
            pub const ALL: &'static [MetricId] = &[$(MetricId::$id),*];

            /// The id as written in documents, e.g. `M01`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(MetricId::$id => stringify!($id),)*
                }
            }

            /// English title.
            pub fn title_en(self) -> &'static str {
                match self {
                    $(MetricId::$id => $en,)*
                }
            }

            /// Chinese title.
            pub fn title_zh(self) -> &'static str {
                match self {
                    $(MetricId::$id => $zh,)*
                }
            }
        }
    };
}

metric_ids! {
    M01 => "Vacancy online rate", "上网率";
    M02 => "Guidance coverage", "职业指导覆盖率";
    M03 => "Job-information coverage", "职业信息提供覆盖率";
    M04 => "Training-offer coverage", "培训机会提供覆盖率";
    M05 => "All-three compliance", "三项服务全部达标率";
    M06 => "Hardship tracking", "困难人员跟踪服务率";
    M07 => "City networking completeness", "城市联网完整性";
    M08 => "Offices networked", "服务机构联网率";
    M09 => "Public release channels", "信息发布渠道";
    M10 => "Analysis report produced", "供求分析报告";
    M11 => "Pilot-count compliance", "试点城市数量";
    M12 => "Free-service compliance", "免费服务率";
    F01 => "Replication lag", "复制延迟";
    F02 => "Staleness", "数据陈旧度";
    F03 => "Report timeliness", "报告及时性";
    F04 => "Completeness (sequence gaps)", "完整性";
    F05 => "Classification currency", "分类标准现行率";
    F06 => "Rejection rate", "拒收率";
}

impl fmt::Display for MetricId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison with its threshold(s).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "op", content = "threshold")]
pub enum Comparator {
    /// Value ≥ threshold.
    #[serde(rename = ">=")]
    AtLeast(f64),
    /// Value ≤ threshold.
    #[serde(rename = "<=")]
    AtMost(f64),
    /// Value = threshold (within 1e-9).
    #[serde(rename = "==")]
    Equal(f64),
    /// lo ≤ value ≤ hi.
    #[serde(rename = "between")]
    Between(f64, f64),
}

impl Comparator {
    /// True when `value` meets the comparison.
    pub fn holds(self, value: f64) -> bool {
        match self {
            Comparator::AtLeast(t) => value >= t - EPSILON,
            Comparator::AtMost(t) => value <= t + EPSILON,
            Comparator::Equal(t) => (value - t).abs() <= EPSILON,
            Comparator::Between(lo, hi) => value >= lo - EPSILON && value <= hi + EPSILON,
        }
    }
}

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comparator::AtLeast(t) => write!(f, ">= {t}"),
            Comparator::AtMost(t) => write!(f, "<= {t}"),
            Comparator::Equal(t) => write!(f, "== {t}"),
            Comparator::Between(lo, hi) => write!(f, "in [{lo}, {hi}]"),
        }
    }
}

/// Which cities a target applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppliesTo {
    /// Active pilot cities only.
    #[serde(alias = "pilot cities", alias = "pilot_cities")]
    Pilots,
    /// Every city.
    #[serde(alias = "all cities")]
    All,
}

/// Where a target came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "origin", content = "issuer")]
pub enum TargetOrigin {
    /// The notice's defaults ([`builtin_targets`]).
    Builtin,
    /// A `service_standard_target` document of this issuer.
    Published(NodeCode),
    /// The node's configuration (the staleness threshold).
    Config,
}

/// A service-standard target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// Identifier (the document id unless the body names one).
    pub target_id: String,
    /// The metric it sets.
    pub metric: MetricId,
    /// The comparison and threshold(s).
    pub comparator: Comparator,
    /// Where it applies.
    pub scope: Scope,
    /// Pilot cities only, or all.
    pub applies_to: AppliesTo,
    /// Unit as written in the document (informational).
    pub unit: Option<String>,
    /// Period as written in the document (informational).
    pub period: Option<String>,
    /// The document that set it.
    pub source_doc: Option<String>,
    /// Built in, published or configured.
    pub origin: TargetOrigin,
}

/// Why a target document is rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// The body is not JSON of the documented shape (path and reason given).
    #[error("target body: {0}")]
    Body(String),
    /// The comparator is not one of `>=`, `<=`, `==`, `between`.
    #[error("comparator must be >=, <=, == or between, got {0:?}")]
    Comparator(String),
    /// The threshold does not fit the comparator.
    #[error("comparator {comparator} needs {expected}")]
    Threshold {
        /// The comparator given.
        comparator: String,
        /// What it needs.
        expected: &'static str,
    },
    /// A threshold is not a finite number, or `between` has lo > hi.
    #[error("threshold must be finite with lo <= hi")]
    Range,
    /// The issuer may not set targets for this scope.
    #[error("{issuer} may not set a target for scope {scope}")]
    OutOfScope {
        /// The document's issuer.
        issuer: NodeCode,
        /// The scope it named.
        scope: Scope,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Threshold {
    One(f64),
    Two([f64; 2]),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    #[serde(default)]
    target_id: Option<String>,
    metric: MetricId,
    comparator: String,
    threshold: Threshold,
    scope: Scope,
    applies_to: AppliesTo,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    source_doc: Option<String>,
}

fn comparator(op: &str, threshold: Threshold) -> Result<Comparator, TargetError> {
    let wrong = |expected| TargetError::Threshold {
        comparator: op.to_string(),
        expected,
    };
    let c = match (op, threshold) {
        (">=", Threshold::One(t)) => Comparator::AtLeast(t),
        ("<=", Threshold::One(t)) => Comparator::AtMost(t),
        ("==", Threshold::One(t)) => Comparator::Equal(t),
        ("between", Threshold::Two([lo, hi])) => Comparator::Between(lo, hi),
        (">=" | "<=" | "==", Threshold::Two(_)) => return Err(wrong("a single number")),
        ("between", Threshold::One(_)) => return Err(wrong("[lo, hi]")),
        _ => return Err(TargetError::Comparator(op.to_string())),
    };
    let ok = match c {
        Comparator::AtLeast(t) | Comparator::AtMost(t) | Comparator::Equal(t) => t.is_finite(),
        Comparator::Between(lo, hi) => lo.is_finite() && hi.is_finite() && lo <= hi,
    };
    if ok { Ok(c) } else { Err(TargetError::Range) }
}

/// True when `issuer` may set targets for `scope`: the ministry anywhere, a province for
/// itself and its cities.
fn may_target(issuer: NodeCode, scope: Scope) -> bool {
    issuer == MINISTRY || (issuer.tier() == Tier::Province && Scope::of(issuer).covers(scope))
}

/// Parses the body of `service_standard_target` document `doc_id` issued by `issuer`.
pub fn parse_target(doc_id: &str, issuer: NodeCode, body: &str) -> Result<Target, TargetError> {
    let de = &mut serde_json::Deserializer::from_str(body);
    let b: TargetBody =
        serde_path_to_error::deserialize(de).map_err(|e| TargetError::Body(e.to_string()))?;
    if !may_target(issuer, b.scope) {
        return Err(TargetError::OutOfScope {
            issuer,
            scope: b.scope,
        });
    }
    Ok(Target {
        target_id: b.target_id.unwrap_or_else(|| doc_id.to_string()),
        metric: b.metric,
        comparator: comparator(&b.comparator, b.threshold)?,
        scope: b.scope,
        applies_to: b.applies_to,
        unit: b.unit,
        period: b.period,
        source_doc: b.source_doc,
        origin: TargetOrigin::Published(issuer),
    })
}

fn builtin(metric: MetricId, comparator: Comparator, scope: Scope, to: AppliesTo) -> Target {
    let target_id = match scope {
        Scope::National => format!("builtin:{metric}"),
        s => format!("builtin:{metric}:{s}"),
    };
    Target {
        target_id,
        metric,
        comparator,
        scope,
        applies_to: to,
        unit: None,
        period: Some("quarter".to_string()),
        source_doc: Some(NOTICE.to_string()),
        origin: TargetOrigin::Builtin,
    }
}

/// The notice's default targets: M01 ≥ 0.60; M02–M05 ≥ 1.0 (every person); M07 == 1.0
/// (all four categories); M10 ≥ 1.0 (every quarter's report); M12 ≥ 1.0 — for pilot
/// cities. M11: per province in [1, 5], for a municipality (直辖市, voluntary) ≥ 0, and
/// nationally in [80, 100]. F03 ≥ 1.0 (every report due on time), for every city.
pub fn builtin_targets() -> Vec<Target> {
    use AppliesTo::{All, Pilots};
    use Comparator::{AtLeast, Between, Equal};
    use MetricId as M;
    let n = Scope::National;
    let mut out = vec![
        builtin(M::M01, AtLeast(0.60), n, Pilots),
        builtin(M::M02, AtLeast(1.0), n, Pilots),
        builtin(M::M03, AtLeast(1.0), n, Pilots),
        builtin(M::M04, AtLeast(1.0), n, Pilots),
        builtin(M::M05, AtLeast(1.0), n, Pilots),
        builtin(M::M07, Equal(1.0), n, Pilots),
        builtin(M::M10, AtLeast(1.0), n, Pilots),
        builtin(M::M11, Between(80.0, 100.0), n, All),
        builtin(M::M12, AtLeast(1.0), n, Pilots),
        Target {
            // The schedules set the due days; the notice sets no timeliness target.
            source_doc: None,
            ..builtin(M::F03, AtLeast(1.0), n, All)
        },
    ];
    for &(code, _, municipality) in PROVINCES {
        let Ok(p) = NodeCode::new(code) else { continue };
        let c = if municipality {
            AtLeast(0.0)
        } else {
            Between(1.0, 5.0)
        };
        out.push(builtin(M::M11, c, Scope::Province(p), All));
    }
    out
}

/// The built-in targets with `published` ones applied: a published target replaces any
/// target of the same metric and scope (the later wins). Sorted by metric, then scope.
pub fn effective_targets(published: impl IntoIterator<Item = Target>) -> Vec<Target> {
    let mut out = builtin_targets();
    for t in published {
        out.retain(|o| (o.metric, o.scope) != (t.metric, t.scope));
        out.push(t);
    }
    out.sort_by_key(|t| (t.metric, t.scope));
    out
}

/// The target for `metric` at `scope`: the most specific of city, province, national.
pub fn resolve_target(targets: &[Target], metric: MetricId, scope: Scope) -> Option<&Target> {
    scope.chain().find_map(|s| {
        targets
            .iter()
            .rev()
            .find(|t| t.metric == metric && t.scope == s)
    })
}

//! Pilot evaluations: a province's `pilot_evaluation` of one of its pilot cities for a
//! quarter (its verdict, the target figures it saw, notes), and the ministry's
//! confirmation, a `pilot_evaluation` document of its own that names the evaluation it
//! confirms — the pattern of pilot designations and their confirmations.
//!
//! # Document bodies
//!
//! A province evaluates one of its cities:
//!
//! ```json
//! {
//!   "city": "440100",
//!   "period": "2024Q1",
//!   "verdict": "meets",            // "meets", "partly_meets" or "does_not_meet"
//!   "evaluated_on": "2024-05-20",
//!   "figures": [                   // optional: the target figures the province saw
//!     {"metric": "M01", "variant": "by_reports", "numerator": 61, "denominator": 80,
//!      "value": 0.7625, "status": "pass"}
//!   ],
//!   "notes": "…"                   // optional, at most 2,000 characters
//! }
//! ```
//!
//! The ministry confirms it:
//!
//! ```json
//! {
//!   "confirms": {"issuer": "440000", "id": "eval-440100-2024Q1", "version": 1},
//!   "confirmed_on": "2024-06-10",
//!   "notes": "…"                   // optional
//! }
//! ```
//!
//! Only a province evaluates (its own cities), only the ministry confirms. A confirmation
//! confirms one version: when the province revises its evaluation, the confirmation is of
//! an earlier version until the ministry confirms again. Unknown fields are rejected.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::period::Period;
use super::scope::Scope;
use super::targets::MetricId;
use crate::core::model::{MINISTRY, NodeCode, Tier};

/// Longest notes, in characters.
const MAX_NOTES_CHARS: usize = 2000;
/// Most figures an evaluation may list.
const MAX_FIGURES: usize = 64;
/// Longest variant name, in characters.
const MAX_VARIANT_CHARS: usize = 64;
/// The statuses a figure may give, as metric values write them.
const STATUSES: [&str; 5] = ["pass", "fail", "no_data", "not_applicable", "no_target"];

/// The province's verdict on a pilot city.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Meets the targets.
    Meets,
    /// Meets some of them.
    PartlyMeets,
    /// Does not meet them.
    DoesNotMeet,
}

/// A target figure as the province saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenFigure {
    /// The metric.
    pub metric: MetricId,
    /// Its variant, e.g. `by_reports`.
    pub variant: String,
    /// Numerator seen.
    #[serde(default)]
    pub numerator: Option<u64>,
    /// Denominator seen.
    #[serde(default)]
    pub denominator: Option<u64>,
    /// Value seen.
    #[serde(default)]
    pub value: Option<f64>,
    /// Status seen (`pass`, `fail`, `no_data`, `not_applicable`, `no_target`).
    #[serde(default)]
    pub status: Option<String>,
}

/// A province's evaluation body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationBody {
    /// The pilot city.
    pub city: NodeCode,
    /// The quarter evaluated.
    pub period: Period,
    /// The verdict.
    pub verdict: Verdict,
    /// When the province evaluated.
    pub evaluated_on: NaiveDate,
    /// The target figures it saw.
    #[serde(default)]
    pub figures: Vec<SeenFigure>,
    /// Notes.
    #[serde(default)]
    pub notes: Option<String>,
}

/// Which evaluation a confirmation confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRef {
    /// The evaluating province.
    pub issuer: NodeCode,
    /// The evaluation's document id.
    pub id: String,
    /// The version confirmed.
    pub version: u64,
}

/// The ministry's confirmation body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationBody {
    /// The evaluation confirmed.
    pub confirms: EvaluationRef,
    /// When the ministry confirmed.
    pub confirmed_on: NaiveDate,
    /// Notes.
    #[serde(default)]
    pub notes: Option<String>,
}

/// A parsed `pilot_evaluation` document.
#[derive(Debug, Clone, PartialEq)]
pub enum EvaluationDoc {
    /// A province's evaluation.
    Evaluation(EvaluationBody),
    /// The ministry's confirmation.
    Confirmation(ConfirmationBody),
}

/// Why a `pilot_evaluation` document is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    /// Not JSON of the documented shape (path and reason given).
    #[error("pilot evaluation body: {0}")]
    Body(String),
    /// A rule is broken; the sentence says which.
    #[error("pilot evaluation: {0}")]
    Invalid(String),
}

fn body<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, EvaluationError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| EvaluationError::Body(e.to_string()))
}

fn check_notes(notes: Option<&String>) -> Result<(), EvaluationError> {
    match notes {
        Some(n) if n.chars().count() > MAX_NOTES_CHARS => Err(EvaluationError::Invalid(format!(
            "notes are longer than {MAX_NOTES_CHARS} characters"
        ))),
        _ => Ok(()),
    }
}

/// Parses and checks a `pilot_evaluation` body issued by `issuer`: an evaluation from a
/// province of its own city, a confirmation from the ministry.
pub fn parse_evaluation(issuer: NodeCode, text: &str) -> Result<EvaluationDoc, EvaluationError> {
    let invalid = |s: String| Err(EvaluationError::Invalid(s));
    if issuer == MINISTRY {
        let c: ConfirmationBody = body(text)?;
        check_notes(c.notes.as_ref())?;
        if c.confirms.issuer.tier() != Tier::Province || c.confirms.version == 0 {
            return invalid("confirms names a province's evaluation and a version from 1".into());
        }
        return Ok(EvaluationDoc::Confirmation(c));
    }
    if issuer.tier() != Tier::Province {
        return invalid(format!("{issuer} may not issue pilot evaluations"));
    }
    let e: EvaluationBody = body(text)?;
    check_notes(e.notes.as_ref())?;
    if e.city.tier() != Tier::City || e.city.province() != Some(issuer) {
        return invalid(format!(
            "{} is not a city of {issuer}: a province evaluates its own cities (the ministry confirms)",
            e.city
        ));
    }
    if e.figures.len() > MAX_FIGURES {
        return invalid(format!("at most {MAX_FIGURES} figures"));
    }
    for f in &e.figures {
        let bad_variant = f.variant.is_empty() || f.variant.chars().count() > MAX_VARIANT_CHARS;
        let bad_value = f.value.is_some_and(|v| !v.is_finite());
        let bad_status = f.status.as_deref().is_some_and(|s| !STATUSES.contains(&s));
        if bad_variant || bad_value || bad_status {
            return invalid(format!(
                "figure {} {:?}: a variant of 1 to {MAX_VARIANT_CHARS} characters, a finite value and a status of {}",
                f.metric,
                f.variant,
                STATUSES.join(", ")
            ));
        }
    }
    Ok(EvaluationDoc::Evaluation(e))
}

/// The ministry's confirmation of an evaluation, as shown with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfirmationView {
    /// The confirmation's document id.
    pub id: String,
    /// The version of the evaluation confirmed.
    pub confirms_version: u64,
    /// True when that is the evaluation's current version.
    pub current: bool,
    /// When the ministry confirmed.
    pub confirmed_on: NaiveDate,
    /// Its notes.
    pub notes: Option<String>,
}

/// An evaluation and its confirmation, if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationView {
    /// The evaluating province.
    pub issuer: NodeCode,
    /// The evaluation's document id.
    pub id: String,
    /// Its version.
    pub version: u64,
    /// What it says.
    #[serde(flatten)]
    pub body: EvaluationBody,
    /// The ministry's confirmation of it (of this or an earlier version), if any.
    pub confirmation: Option<ConfirmationView>,
}

impl EvaluationView {
    /// True when the ministry confirmed this very version.
    pub fn confirmed(&self) -> bool {
        self.confirmation.as_ref().is_some_and(|c| c.current)
    }
}

/// One `pilot_evaluation` document as held: issuer, id, version and body text.
pub type EvaluationInput<'a> = (NodeCode, &'a str, u64, &'a str);

/// The evaluations of cities in `scope` for `period` (every quarter when `None`), each
/// with the latest confirmation naming it; documents that do not parse are skipped.
pub fn evaluations<'a>(
    docs: impl IntoIterator<Item = EvaluationInput<'a>>,
    scope: Scope,
    period: Option<Period>,
) -> Vec<EvaluationView> {
    let mut found = Vec::new();
    let mut confirmations: BTreeMap<(NodeCode, String), ConfirmationView> = BTreeMap::new();
    for (issuer, id, version, text) in docs {
        match parse_evaluation(issuer, text) {
            Ok(EvaluationDoc::Evaluation(body)) => {
                if scope.contains(body.city) && period.is_none_or(|p| p == body.period) {
                    found.push(EvaluationView {
                        issuer,
                        id: id.to_string(),
                        version,
                        body,
                        confirmation: None,
                    });
                }
            }
            Ok(EvaluationDoc::Confirmation(c)) => {
                let key = (c.confirms.issuer, c.confirms.id.clone());
                let view = ConfirmationView {
                    id: id.to_string(),
                    confirms_version: c.confirms.version,
                    current: false,
                    confirmed_on: c.confirmed_on,
                    notes: c.notes,
                };
                let later = confirmations
                    .get(&key)
                    .is_none_or(|held| held.confirms_version <= view.confirms_version);
                if later {
                    confirmations.insert(key, view);
                }
            }
            Err(_) => {}
        }
    }
    for e in &mut found {
        if let Some(c) = confirmations.get(&(e.issuer, e.id.clone())) {
            e.confirmation = Some(ConfirmationView {
                current: c.confirms_version == e.version,
                ..c.clone()
            });
        }
    }
    found.sort_by(|a, b| {
        (a.body.city, a.body.period, a.issuer, &a.id).cmp(&(
            b.body.city,
            b.body.period,
            b.issuer,
            &b.id,
        ))
    });
    found
}

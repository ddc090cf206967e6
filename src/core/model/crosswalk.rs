//! The `crosswalk` document: how the codes of one edition of a classification (CN-OCC,
//! CN-DIV) become the codes of the next, and the chain of crosswalks in force.
//!
//! Records keep the codes they were written with; a crosswalk never rewrites one. Reports
//! and coverage asked for "the edition in force" map counts through the chain instead.
//!
//! Rules (also in `docs/reference/documents.md`):
//! - An entry maps one `from` code to one `to` code with a SKOS-style or GB/T 2260-style
//!   relation. Each `from` appears once, except a split: several `splitInto` entries for
//!   one `from`.
//! - A split's counts go wholly to its **primary target**: the entry with the largest
//!   `share`, the first listed on a tie or when no entry gives a share. Counts are never
//!   apportioned, so every mapped figure stays a whole count of records.
//! - Codes of an occupation entry are at the same level (`M`, `M-mm`, `M-mm-nn` or
//!   `M-mm-nn-dd`); codes of a division entry are six-digit GB/T 2260 codes in the same
//!   province.
//! - The chain starts at the oldest edition named (a `from_version` no crosswalk leads
//!   to) and follows, edition by edition, the crosswalks whose `effective_date` has
//!   passed; a code no step names passes unchanged.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::standards::{DIVISION, OCCUPATION, occupation_level};
use super::tree::{NodeCode, Tier};

/// Most entries one crosswalk may hold (the occupation editions have about 2,000 codes).
pub const MAX_ENTRIES: usize = 20_000;
/// Longest version id, in characters.
const MAX_VERSION_CHARS: usize = 32;
/// Longest name an entry may give its target, in characters.
const MAX_NAME_CHARS: usize = 100;

/// How a code of the old edition relates to the code of the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Relation {
    /// The same concept.
    Exact,
    /// Close enough to use in its place.
    Close,
    /// The new code is broader.
    Broad,
    /// The new code is narrower.
    Narrow,
    /// Related, neither broader nor narrower.
    Related,
    /// The old code was replaced by the new one (a division's new code).
    ReplacedBy,
    /// The old code was split; one entry per part.
    SplitInto,
    /// The old code was merged, with others, into the new one.
    MergedInto,
}

impl Relation {
    /// The name as documents write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Exact => "exact",
            Relation::Close => "close",
            Relation::Broad => "broad",
            Relation::Narrow => "narrow",
            Relation::Related => "related",
            Relation::ReplacedBy => "replacedBy",
            Relation::SplitInto => "splitInto",
            Relation::MergedInto => "mergedInto",
        }
    }
}

/// One row of a crosswalk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrosswalkEntry {
    /// The code in `from_version`.
    pub from: String,
    /// The code in `to_version`.
    pub to: String,
    /// How they relate.
    pub relation: Relation,
    /// For a split: the part of the old code this target takes, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// The target's name in the new edition (shown by reports in the edition in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The body of a `crosswalk` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrosswalkBody {
    /// `CN-DIV` or `CN-OCC`.
    pub scheme: String,
    /// The edition the `from` codes belong to.
    pub from_version: String,
    /// The edition the `to` codes belong to.
    pub to_version: String,
    /// From this day the crosswalk is in force.
    pub effective_date: NaiveDate,
    /// The rows.
    pub entries: Vec<CrosswalkEntry>,
}

/// Why a crosswalk body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("crosswalk: {0}")]
pub struct CrosswalkError(pub String);

fn fail<T>(msg: String) -> Result<T, CrosswalkError> {
    Err(CrosswalkError(msg))
}

/// True for an occupation code `M`, `M-mm`, `M-mm-nn` or `M-mm-nn-dd` (digits).
fn occupation_code(code: &str) -> bool {
    let parts: Vec<&str> = code.split('-').collect();
    parts.len() <= 4
        && parts.iter().enumerate().all(|(i, p)| {
            p.len() == if i == 0 { 1 } else { 2 } && p.bytes().all(|b| b.is_ascii_digit())
        })
}

fn check_code(scheme: &str, code: &str, at: usize) -> Result<(), CrosswalkError> {
    match scheme {
        DIVISION => match code.parse::<NodeCode>() {
            Ok(c) if c.tier() != Tier::Ministry => Ok(()),
            Ok(_) => fail(format!(
                "entry {at}: {code} is the national level, not a division"
            )),
            Err(e) => fail(format!("entry {at}: {e}")),
        },
        _ if occupation_code(code) => Ok(()),
        _ => fail(format!(
            "entry {at}: {code:?} is not an occupation code (M, M-mm, M-mm-nn or M-mm-nn-dd)"
        )),
    }
}

fn check_version(what: &str, v: &str) -> Result<(), CrosswalkError> {
    if v.is_empty() || v.chars().count() > MAX_VERSION_CHARS || v.chars().any(char::is_control) {
        return fail(format!(
            "{what} must be 1 to {MAX_VERSION_CHARS} printable characters, got {v:?}"
        ));
    }
    Ok(())
}

fn check_entry(scheme: &str, e: &CrosswalkEntry, at: usize) -> Result<(), CrosswalkError> {
    check_code(scheme, &e.from, at)?;
    check_code(scheme, &e.to, at)?;
    if scheme == OCCUPATION && occupation_level(&e.from) != occupation_level(&e.to) {
        return fail(format!(
            "entry {at}: {} and {} are at different levels of the classification",
            e.from, e.to
        ));
    }
    if scheme == DIVISION && e.from.get(..2) != e.to.get(..2) {
        return fail(format!(
            "entry {at}: {} and {} lie in different provinces; a division keeps its province",
            e.from, e.to
        ));
    }
    if let Some(share) = e.share {
        if e.relation != Relation::SplitInto {
            return fail(format!("entry {at}: only a splitInto entry takes a share"));
        }
        if !(share > 0.0 && share <= 1.0) {
            return fail(format!("entry {at}: share {share} is not in (0, 1]"));
        }
    }
    if let Some(name) = &e.name
        && (name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS)
    {
        return fail(format!(
            "entry {at}: a name is 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    Ok(())
}

/// The body in `text`, checked: known scheme, versions, codes of the scheme, relations,
/// splits (several `splitInto` entries, shares summing to at most 1) and no duplicates.
pub fn parse_crosswalk(text: &str) -> Result<CrosswalkBody, CrosswalkError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let body: CrosswalkBody = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| CrosswalkError(format!("a crosswalk body: {e}")))?;
    de.end()
        .map_err(|e| CrosswalkError(format!("a crosswalk body: {e}")))?;
    check_body(&body)?;
    Ok(body)
}

/// Checks a parsed body (see [`parse_crosswalk`]).
pub fn check_body(body: &CrosswalkBody) -> Result<(), CrosswalkError> {
    if ![DIVISION, OCCUPATION].contains(&body.scheme.as_str()) {
        return fail(format!(
            "scheme {:?}: expected {DIVISION} or {OCCUPATION}",
            body.scheme
        ));
    }
    check_version("from_version", &body.from_version)?;
    check_version("to_version", &body.to_version)?;
    if body.from_version == body.to_version {
        return fail("from_version and to_version are the same edition".into());
    }
    if body.entries.is_empty() || body.entries.len() > MAX_ENTRIES {
        return fail(format!(
            "a crosswalk has 1 to {MAX_ENTRIES} entries, got {}",
            body.entries.len()
        ));
    }
    let mut by_from: BTreeMap<&str, Vec<&CrosswalkEntry>> = BTreeMap::new();
    let mut pairs = BTreeSet::new();
    for (at, e) in body.entries.iter().enumerate() {
        check_entry(&body.scheme, e, at)?;
        if !pairs.insert((e.from.as_str(), e.to.as_str())) {
            return fail(format!("entry {at}: {} → {} is listed twice", e.from, e.to));
        }
        by_from.entry(&e.from).or_default().push(e);
    }
    for (from, entries) in by_from {
        let splits = entries
            .iter()
            .filter(|e| e.relation == Relation::SplitInto)
            .count();
        if entries.len() > 1 && splits != entries.len() {
            return fail(format!(
                "{from} has {} entries; only a split (every entry splitInto) may list a code more than once",
                entries.len()
            ));
        }
        if entries.len() == 1 && splits == 1 {
            return fail(format!(
                "{from} is split into one code; a split lists two or more"
            ));
        }
        let shares: f64 = entries.iter().filter_map(|e| e.share).sum();
        if shares > 1.0 + 1e-9 {
            return fail(format!(
                "the shares of {from}'s split add up to {shares} > 1"
            ));
        }
    }
    Ok(())
}

/// Where one code goes: its (primary) target, how it relates, the target's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The code in the edition in force.
    pub to: String,
    /// The relation (the first non-`exact` one along the chain, else `exact`).
    pub relation: Relation,
    /// The target's name, when a crosswalk gives one.
    pub name: Option<String>,
}

/// One crosswalk of the chain: each `from` code's primary target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    to_version: String,
    map: BTreeMap<String, Target>,
}

impl Step {
    fn of(body: &CrosswalkBody) -> Step {
        let mut best: BTreeMap<&str, &CrosswalkEntry> = BTreeMap::new();
        for e in &body.entries {
            // Largest share wins; the first listed on a tie or without shares.
            let better = best
                .get(e.from.as_str())
                .is_none_or(|b| e.share.unwrap_or(0.0) > b.share.unwrap_or(0.0));
            if better {
                best.insert(&e.from, e);
            }
        }
        Step {
            to_version: body.to_version.clone(),
            map: best
                .into_iter()
                .map(|(from, e)| {
                    let target = Target {
                        to: e.to.clone(),
                        relation: e.relation,
                        name: e.name.clone(),
                    };
                    (from.to_string(), target)
                })
                .collect(),
        }
    }
}

/// The crosswalks in force for one scheme, oldest edition first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    start: Option<String>,
    steps: Vec<Step>,
}

impl Chain {
    /// The chain of `scheme` among `bodies` in force on `as_of` (see the module doc).
    pub fn of(scheme: &str, bodies: &[CrosswalkBody], as_of: NaiveDate) -> Chain {
        let mut usable: Vec<&CrosswalkBody> = bodies
            .iter()
            .filter(|b| b.scheme == scheme && b.effective_date <= as_of)
            .collect();
        usable.sort_by(|a, b| {
            (a.effective_date, &a.to_version).cmp(&(b.effective_date, &b.to_version))
        });
        let targets: BTreeSet<&str> = usable.iter().map(|b| b.to_version.as_str()).collect();
        let Some(start) = usable
            .iter()
            .map(|b| b.from_version.as_str())
            .filter(|v| !targets.contains(v))
            .min()
        else {
            return Chain::default();
        };
        let mut visited = BTreeSet::from([start]);
        let mut current = start;
        let mut steps = Vec::new();
        while let Some(next) = usable.iter().find(|b| b.from_version == current) {
            if !visited.insert(next.to_version.as_str()) {
                break;
            }
            steps.push(Step::of(next));
            current = &next.to_version;
        }
        Chain {
            start: Some(start.to_string()),
            steps,
        }
    }

    /// True when no crosswalk is in force.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The edition the chain ends at (the edition in force), if any step is in force.
    pub fn edition(&self) -> Option<&str> {
        self.steps.last().map(|s| s.to_version.as_str())
    }

    /// Where `code` goes in the edition in force, or `None` when no step names it.
    pub fn map(&self, code: &str) -> Option<Target> {
        let mut current: Option<Target> = None;
        for step in &self.steps {
            let at = current.as_ref().map_or(code, |t| t.to.as_str());
            if let Some(t) = step.map.get(at) {
                let relation = match current.as_ref().map(|c| c.relation) {
                    Some(r) if r != Relation::Exact => r,
                    _ => t.relation,
                };
                let name = t.name.clone().or_else(|| {
                    current
                        .as_ref()
                        .and_then(|c| c.name.clone())
                        .filter(|_| t.to == at)
                });
                current = Some(Target {
                    to: t.to.clone(),
                    relation,
                    name,
                });
            }
        }
        current
    }

    /// The name a crosswalk of the chain gives the target `code`, the newest first.
    pub fn map_name(&self, code: &str) -> Option<String> {
        self.steps
            .iter()
            .rev()
            .flat_map(|s| s.map.values())
            .find(|t| t.to == code && t.name.is_some())
            .and_then(|t| t.name.clone())
    }

    /// The codes that map to `code` in the edition in force (other than itself).
    pub fn sources_of(
        &self,
        code: &str,
        candidates: impl IntoIterator<Item = String>,
    ) -> Vec<String> {
        candidates
            .into_iter()
            .filter(|c| c != code && self.map(c).is_some_and(|t| t.to == code))
            .collect()
    }
}

/// The chains of both schemes a crosswalk may name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Editions {
    /// CN-OCC.
    pub occupation: Chain,
    /// CN-DIV.
    pub division: Chain,
}

impl Editions {
    /// The chains of the crosswalk bodies among `bodies` in force on `as_of`; a body that
    /// does not parse or check is skipped (it was refused when published).
    pub fn of<'a>(bodies: impl IntoIterator<Item = &'a str>, as_of: NaiveDate) -> Editions {
        let parsed: Vec<CrosswalkBody> = bodies
            .into_iter()
            .filter_map(|b| parse_crosswalk(b).ok())
            .collect();
        Editions {
            occupation: Chain::of(OCCUPATION, &parsed, as_of),
            division: Chain::of(DIVISION, &parsed, as_of),
        }
    }

    /// The division code a node's code is shown as in the edition in force.
    pub fn division_of(&self, node: NodeCode) -> Option<(NodeCode, Target)> {
        let t = self.division.map(&node.to_string())?;
        let code = t.to.parse().ok()?;
        Some((code, t))
    }
}

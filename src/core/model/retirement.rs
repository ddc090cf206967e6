//! Retiring a node: a signed document by which a province (one of its cities) or the
//! ministry (a city or a province) records that a node no longer serves, from a date on,
//! or that it serves again. Its records stay everywhere; coverage stops expecting it
//! (no pilot, never stale) and its parent stops treating its silent link as a fault.
//!
//! Pure: what a retirement says, whether its issuer may say it, and which nodes are
//! retired on a given date.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::document::{RETIREMENT, StoredDocument};
use super::tree::{NodeCode, Tier};

/// Whether the node stops or starts serving on the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetirementStatus {
    /// It no longer serves from `on`.
    Retired,
    /// It serves again from `on`.
    Reinstated,
}

/// What a retirement document's body holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetirementBody {
    /// The node.
    pub node: NodeCode,
    /// Retired or reinstated.
    pub status: RetirementStatus,
    /// From when.
    pub on: NaiveDate,
    /// Why, for operators (e.g. "merged into 440100").
    #[serde(default)]
    pub reason: String,
}

/// A node retired on a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retirement {
    /// The node.
    pub node: NodeCode,
    /// Since when.
    pub on: NaiveDate,
    /// Why.
    pub reason: String,
    /// Who retired it.
    pub issuer: NodeCode,
}

/// Ok when `issuer` may retire `node`: a province its own cities, the ministry any city or
/// province.
pub fn may_retire(issuer: NodeCode, node: NodeCode) -> Result<(), String> {
    let allowed = match (issuer.tier(), node.tier()) {
        (Tier::Ministry, Tier::City | Tier::Province) => true,
        (Tier::Province, Tier::City) => node.is_within(issuer),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "{issuer} ({}) may not retire {node} ({}): a province retires its own cities, \
             the ministry any city or province",
            issuer.tier(),
            node.tier()
        ))
    }
}

/// Checks a retirement body as a publisher posts it, under document id `id` (the node's
/// code: one document per node, its versions the node's history).
pub fn check_body(issuer: NodeCode, id: &str, body: &RetirementBody) -> Result<(), String> {
    if id != body.node.to_string() {
        return Err(format!(
            "a retirement's id is the node's code ({}), not {id:?}",
            body.node
        ));
    }
    super::document::check_reason(&body.reason)?;
    may_retire(issuer, body.node)
}

/// The nodes retired on `as_of` according to `docs`: for each node the latest effective
/// statement on or before that date decides. Documents that state nothing valid are
/// skipped.
pub fn retired_on(docs: &[StoredDocument], as_of: NaiveDate) -> BTreeMap<NodeCode, Retirement> {
    let mut latest: BTreeMap<NodeCode, (RetirementBody, NodeCode)> = BTreeMap::new();
    let statements = docs
        .iter()
        .filter(|d| d.kind == RETIREMENT)
        .filter_map(|d| {
            let body: RetirementBody = serde_json::from_str(&d.body).ok()?;
            check_body(d.issuer, &d.id, &body).ok()?;
            Some((body, d.issuer))
        })
        .filter(|(b, _)| b.on <= as_of);
    for (body, issuer) in statements {
        let newer = latest.get(&body.node).is_none_or(|(b, _)| b.on <= body.on);
        if newer {
            latest.insert(body.node, (body, issuer));
        }
    }
    latest
        .into_values()
        .filter(|(b, _)| b.status == RetirementStatus::Retired)
        .map(|(b, issuer)| {
            let r = Retirement {
                node: b.node,
                on: b.on,
                reason: b.reason,
                issuer,
            };
            (r.node, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::MINISTRY;

    fn code(s: &str) -> NodeCode {
        s.parse().unwrap()
    }

    fn doc(issuer: NodeCode, node: &str, status: &str, on: &str) -> StoredDocument {
        StoredDocument {
            kind: RETIREMENT.into(),
            id: node.into(),
            issuer,
            version: 1,
            body: format!(
                r#"{{"node":"{node}","status":"{status}","on":"{on}","reason":"merged"}}"#
            ),
            certificate: Vec::new(),
            signature: Vec::new(),
        }
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn provinces_retire_their_cities_the_ministry_any_node_below_it() {
        assert!(may_retire(code("440000"), code("440100")).is_ok());
        assert!(may_retire(code("440000"), code("210100")).is_err());
        assert!(may_retire(code("440000"), code("440000")).is_err());
        assert!(may_retire(MINISTRY, code("440000")).is_ok());
        assert!(may_retire(MINISTRY, MINISTRY).is_err());
        assert!(may_retire(code("440100"), code("440300")).is_err());
    }

    #[test]
    fn the_latest_statement_on_or_before_the_date_decides() {
        let p = code("440000");
        let docs = [
            doc(p, "440300", "retired", "2000-03-01"),
            doc(p, "440500", "retired", "2000-06-01"),
            doc(code("210000"), "440100", "retired", "1999-01-01"),
            doc(p, "440600", "bogus", "1999-01-01"),
        ];
        let on = retired_on(&docs, date("2000-04-01"));
        assert_eq!(on.keys().copied().collect::<Vec<_>>(), [code("440300")]);
        assert_eq!(on[&code("440300")].on, date("2000-03-01"));
        assert!(retired_on(&docs, date("2000-02-28")).is_empty());
        let mut history = docs.to_vec();
        history[0] = doc(p, "440300", "reinstated", "2000-09-01");
        history.push(doc(p, "440300", "retired", "2000-03-01"));
        assert!(retired_on(&history, date("2000-04-01")).contains_key(&code("440300")));
        assert!(!retired_on(&history, date("2000-10-01")).contains_key(&code("440300")));
    }
}

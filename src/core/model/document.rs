//! Documents that flow down the tree: their kinds and who may issue them.
//!
//! Issuers are the ministry (national documents) and provinces (their own subtree). A node
//! accepts a document only from an ancestor's signature: the ministry, or its own province.
//! A province also reports its own pilot designations, targets, certificate revocations,
//! node retirements, reporting schedules and pilot evaluations up to the ministry, which
//! monitors them nationally; a city issues one kind, its own key epoch notices, which
//! travel up to its province and on to the ministry; nothing else flows up.

use serde::{Deserialize, Serialize};

use super::tree::{MINISTRY, NodeCode, Tier};

/// A signed document flowing down the tree (classification versions, policies, targets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDocument {
    /// Document kind, e.g. `classification_version`.
    pub kind: String,
    /// Issuer's id for it.
    pub id: String,
    /// The issuing node.
    pub issuer: NodeCode,
    /// Issuer's version counter.
    pub version: u64,
    /// The document body, canonical JSON text.
    pub body: String,
    /// The issuer's certificate (DER), so every hop can verify without a directory.
    pub certificate: Vec<u8>,
    /// The issuer's signature over kind, id, issuer, version and body.
    pub signature: Vec<u8>,
}

/// A new version of a classification scheme; takes effect for validation.
pub const CLASSIFICATION: &str = "classification_version";
/// A policy document (notice, regulation, norm).
pub const POLICY: &str = "policy";
/// A service-standard target (metric, comparator, threshold, scope).
pub const TARGET: &str = "service_standard_target";
/// A pilot-city designation (by a province, confirmed by the ministry).
pub const PILOT: &str = "pilot_designation";
/// A node certificate withdrawn (by the ministry, or a province for its subtree).
pub const REVOCATION: &str = "revocation";
/// A node retired from service, or reinstated (by its province, or the ministry).
pub const RETIREMENT: &str = "node_retirement";
/// When cities' quarterly reports are due (by the ministry, or a province for its cities).
pub const SCHEDULE: &str = "reporting_schedule";
/// A province's evaluation of a pilot city for a quarter, or the ministry's confirmation.
pub const EVALUATION: &str = "pilot_evaluation";

/// How the codes of one edition of a classification map to the next (ministry only).
pub const CROSSWALK: &str = "crosswalk";
/// A city's announcement of its pseudonym key epoch (never the key), reported up.
pub const KEY_EPOCH: &str = "key_epoch_notice";

/// Every document kind.
pub const KINDS: [&str; 10] = [
    CLASSIFICATION,
    POLICY,
    TARGET,
    PILOT,
    REVOCATION,
    RETIREMENT,
    SCHEDULE,
    EVALUATION,
    CROSSWALK,
    KEY_EPOCH,
];

/// The tiers that may issue documents of `kind`, or none for an unknown kind.
///
/// Classification versions and crosswalks are the ministry's alone: a province cannot
/// extend a national scheme, so a city, its province and the ministry judge every record
/// by the same codes, a record valid at one tier is valid at all of them, and every tier
/// maps old codes to the edition in force the same way.
pub fn issuers_of(kind: &str) -> &'static [Tier] {
    match kind {
        CLASSIFICATION | CROSSWALK => &[Tier::Ministry],
        KEY_EPOCH => &[Tier::City],
        POLICY | TARGET | PILOT | REVOCATION | RETIREMENT | SCHEDULE | EVALUATION => {
            &[Tier::Ministry, Tier::Province]
        }
        _ => &[],
    }
}

/// Ok when `issuer` may issue documents of `kind`; otherwise why not, in a sentence. The
/// rule is checked at every hop: when a node publishes, when it receives from above and
/// when it receives from below.
pub fn authority(kind: &str, issuer: NodeCode) -> Result<(), String> {
    let tiers = issuers_of(kind);
    if tiers.is_empty() {
        return Err(format!(
            "unknown document kind {kind:?}; expected one of {}",
            KINDS.join(", ")
        ));
    }
    if tiers.contains(&issuer.tier()) {
        return Ok(());
    }
    let who: Vec<String> = tiers.iter().map(ToString::to_string).collect();
    Err(format!(
        "{issuer} ({}) may not issue {kind}; only the {} may",
        issuer.tier(),
        who.join(" and the ")
    ))
}

/// A document as peers list what they hold: its identity (kind, issuer, id) and version.
/// Two issuers may use the same id for the same kind: they are two documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldDocument {
    /// Document kind.
    pub kind: String,
    /// The issuing node.
    pub issuer: NodeCode,
    /// The issuer's id for it.
    pub id: String,
    /// The version held.
    pub version: u64,
}

impl HeldDocument {
    /// How `doc` is listed.
    pub fn of(doc: &StoredDocument) -> HeldDocument {
        HeldDocument {
            kind: doc.kind.clone(),
            issuer: doc.issuer,
            id: doc.id.clone(),
            version: doc.version,
        }
    }
}

/// True when documents of `kind` issued by a province also travel up to the ministry:
/// designations, targets, retirements, reporting schedules and pilot evaluations, which
/// the ministry's coverage follows (and confirms), and revocations, so that the
/// ministry's status names every certificate withdrawn.
pub fn reported_up(kind: &str) -> bool {
    [PILOT, TARGET, REVOCATION, RETIREMENT, SCHEDULE, EVALUATION].contains(&kind)
}

/// True when `doc`, held by a node, travels up from `from` to its parent: a province's
/// own documents of a [`reported_up`] kind, and the key epoch notices of the cities at or
/// under `from` (a city's own; a province forwards its cities').
pub fn travels_up(doc: &StoredDocument, from: NodeCode) -> bool {
    if doc.kind == KEY_EPOCH {
        return doc.issuer.tier() == Tier::City
            && (doc.issuer == from || (from.tier() != Tier::City && doc.issuer.is_within(from)));
    }
    doc.issuer == from && may_publish(from) && reported_up(&doc.kind)
}

/// Longest reason a revocation or retirement may give, in characters.
const MAX_REASON_CHARS: usize = 200;

/// Ok when a document's free-text reason is short enough to show an operator whole.
pub fn check_reason(reason: &str) -> Result<(), String> {
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        ));
    }
    Ok(())
}

/// True when `node` may publish documents (the ministry and provinces).
pub fn may_publish(node: NodeCode) -> bool {
    node.tier() != Tier::City
}

/// True when `node` must accept documents issued by `issuer`: issued above it, by the
/// ministry or by its own province.
pub fn issued_above(issuer: NodeCode, node: NodeCode) -> bool {
    issuer != node
        && (issuer == MINISTRY || (issuer.tier() == Tier::Province && node.is_within(issuer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> NodeCode {
        s.parse().unwrap()
    }

    #[test]
    fn only_ancestors_issue_to_a_node() {
        assert!(issued_above(MINISTRY, code("440100")));
        assert!(issued_above(code("440000"), code("440100")));
        assert!(
            !issued_above(code("210000"), code("440100")),
            "another province"
        );
        assert!(
            !issued_above(code("440300"), code("440100")),
            "a sibling city"
        );
        assert!(!issued_above(code("440000"), code("440000")), "itself");
        assert!(!may_publish(code("440100")));
        assert!(may_publish(code("440000")) && may_publish(MINISTRY));
    }

    #[test]
    fn only_the_ministry_issues_classifications() {
        assert!(authority(CLASSIFICATION, MINISTRY).is_ok());
        let refused = authority(CLASSIFICATION, code("440000")).unwrap_err();
        assert!(refused.contains("only the ministry"), "{refused}");
        assert!(authority(CROSSWALK, MINISTRY).is_ok());
        assert!(authority(CROSSWALK, code("140000")).is_err());
        assert!(authority(CROSSWALK, code("142200")).is_err());
        for kind in [POLICY, TARGET, PILOT] {
            assert!(authority(kind, MINISTRY).is_ok() && authority(kind, code("440000")).is_ok());
            assert!(
                authority(kind, code("440100")).is_err(),
                "cities issue nothing but key epoch notices"
            );
        }
        assert!(authority("memo", MINISTRY).is_err());
        assert!(authority(KEY_EPOCH, code("440100")).is_ok());
        assert!(authority(KEY_EPOCH, code("440000")).is_err());
        assert!(authority(KEY_EPOCH, MINISTRY).is_err());
    }
}

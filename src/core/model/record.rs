//! The replicated record: the common envelope every kind shares, and its hashes.
//!
//! A record is identified by `(owner, kind, id)`; its owner is its only writer, so a higher
//! `version` always wins and two copies with the same version but different hashes are
//! corruption, never a conflict to resolve. The content hash covers what the owner wrote
//! (kind, id, status, data), not the numbers the owner assigned (version, seq, time), so
//! re-posting identical data is recognisably a no-op.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::kinds::RecordData;
use super::tree::NodeCode;
use crate::core::codec::{self, CodecError};

/// Longest record id accepted, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// The upward record kinds (snake_case on the wire and in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An employment-service office (服务机构).
    Office,
    /// An employer (用人单位).
    Employer,
    /// A vacancy report (空岗报告).
    Vacancy,
    /// A job seeker's pseudonymous profile and registration (求职登记).
    JobSeeker,
    /// A laid-off worker's episode, including the re-employment service centre stay.
    LaidOffEpisode,
    /// An unemployment registration (失业登记).
    UnemploymentRegistration,
    /// A service delivered to a person (guidance, job information, training offer …).
    ServiceEvent,
    /// A person's placement into work.
    Placement,
    /// An unemployment-insurance benefit payment.
    UiBenefitPayment,
    /// An unemployment-insurance fund ledger entry (append-only).
    UiFundEntry,
    /// A training course.
    TrainingCourse,
    /// A person's enrolment in a training course.
    TrainingEnrolment,
    /// A city's submitted quarterly supply/demand report (written by the node, signed).
    SupplyDemandReport,
    /// A city's counts of records offered and refused at ingest in a quarter (written by
    /// the node).
    IngestTally,
    /// One person's pids under two key epochs of the city (written by the node at ingest
    /// while it keeps its previous pseudonym key).
    PidLink,
}

impl Kind {
    /// Every kind, in their stable numeric order.
    pub const ALL: [Kind; 15] = [
        Kind::Office,
        Kind::Employer,
        Kind::Vacancy,
        Kind::JobSeeker,
        Kind::LaidOffEpisode,
        Kind::UnemploymentRegistration,
        Kind::ServiceEvent,
        Kind::Placement,
        Kind::UiBenefitPayment,
        Kind::UiFundEntry,
        Kind::TrainingCourse,
        Kind::TrainingEnrolment,
        Kind::SupplyDemandReport,
        Kind::IngestTally,
        Kind::PidLink,
    ];

    /// A stable small number for keys and indexes (position in [`Kind::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name used in JSON and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Office => "office",
            Kind::Employer => "employer",
            Kind::Vacancy => "vacancy",
            Kind::JobSeeker => "job_seeker",
            Kind::LaidOffEpisode => "laid_off_episode",
            Kind::UnemploymentRegistration => "unemployment_registration",
            Kind::ServiceEvent => "service_event",
            Kind::Placement => "placement",
            Kind::UiBenefitPayment => "ui_benefit_payment",
            Kind::UiFundEntry => "ui_fund_entry",
            Kind::TrainingCourse => "training_course",
            Kind::TrainingEnrolment => "training_enrolment",
            Kind::SupplyDemandReport => "supply_demand_report",
            Kind::IngestTally => "ingest_tally",
            Kind::PidLink => "pid_link",
        }
    }

    /// True for the kinds clients post to `POST /v1/records`; a `supply_demand_report` is
    /// written by the city node itself when it submits a quarter, an `ingest_tally` as it
    /// refuses records, a `pid_link` when it ingests a person during a key overlap.
    pub fn posted(self) -> bool {
        !matches!(
            self,
            Kind::SupplyDemandReport | Kind::IngestTally | Kind::PidLink
        )
    }

    /// Parses a snake_case kind name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle status. Records are never deleted: closing one is a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In force.
    #[default]
    Active,
    /// Ended normally (a filled vacancy, a finished episode).
    Closed,
    /// Withdrawn by its originator.
    Withdrawn,
    /// Entered in error; kept for the audit trail.
    Voided,
}

/// A 32-byte blake3 digest, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hash32(pub [u8; 32]);

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The position of a record within its owner's key space: blake3 of `(kind, id)`, truncated.
///
/// Records are stored under this key, so each owner's records sit in hash order, which is
/// exactly the order the reconciliation buckets need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey(pub [u8; 16]);

impl RecordKey {
    /// The key of `(kind, id)`.
    pub fn of(kind: Kind, id: &str) -> RecordKey {
        let mut h = blake3::Hasher::new_derive_key("lmsync record key v1");
        h.update(&[kind as u8]);
        h.update(id.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        RecordKey(out)
    }

    /// The reconciliation leaf bucket (first 12 bits) this key falls in.
    pub fn bucket(self) -> usize {
        (usize::from(self.0[0]) << 4) | usize::from(self.0[1] >> 4)
    }
}

/// Why a record id is unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty or longer than [`MAX_ID_CHARS`].
    #[error("id must be 1 to {MAX_ID_CHARS} characters, got {0}")]
    Length(usize),
    /// Contains control characters or leading/trailing white space.
    #[error("id must be printable characters without surrounding spaces")]
    NotPrintable,
}

/// Checks a record or document id: 1–128 printable characters, no surrounding spaces.
pub fn validate_id(id: &str) -> Result<(), IdError> {
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_ID_CHARS {
        return Err(IdError::Length(chars));
    }
    if id.chars().any(char::is_control) || id.trim() != id {
        return Err(IdError::NotPrintable);
    }
    Ok(())
}

/// Which version of each classification scheme the record's codes were checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRef {
    /// Scheme id, e.g. `CN-OCC`.
    pub scheme: String,
    /// Version id, e.g. `1999`.
    pub version: String,
}

/// The envelope every replicated record carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The node that wrote the record and is its only writer.
    pub owner: NodeCode,
    /// What the record is.
    pub kind: Kind,
    /// The owner's local id.
    pub id: String,
    /// 1 for the first write, +1 for every change.
    pub version: u64,
    /// The owner's change counter when this version was written (for feeds and resume).
    pub seq: u64,
    /// Lifecycle status.
    pub status: Status,
    /// Owner's clock when this version was written, ms since the Unix epoch (freshness only).
    pub recorded_at_ms: i64,
    /// Classification versions the coded fields were validated against.
    pub code_refs: Vec<CodeRef>,
    /// blake3 of the canonical encoding of `(owner, kind, id, status, data)`.
    pub hash: Hash32,
}

/// A record as stored and replicated: envelope plus typed data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Identity, version and provenance.
    pub envelope: Envelope,
    /// The kind-specific fields.
    pub data: RecordData,
}

#[derive(Serialize)]
struct HashedContent<'a> {
    owner: NodeCode,
    kind: Kind,
    id: &'a str,
    status: Status,
    data: &'a RecordData,
}

/// The content hash of what an owner wrote.
pub fn content_hash(
    owner: NodeCode,
    id: &str,
    status: Status,
    data: &RecordData,
) -> Result<Hash32, CodecError> {
    let bytes = codec::encode(&HashedContent {
        owner,
        kind: data.kind(),
        id,
        status,
        data,
    })?;
    Ok(Hash32(*blake3::hash(&bytes).as_bytes()))
}

impl Envelope {
    /// This record's key within its owner's key space.
    pub fn key(&self) -> RecordKey {
        RecordKey::of(self.kind, &self.id)
    }

    /// The 128-bit fingerprint of `(owner, kind, id, version, hash)` that the digest and
    /// the reconciliation buckets add up. Additive, so a write updates a sum without
    /// reading its neighbours.
    pub fn fingerprint(&self) -> u128 {
        let mut h = blake3::Hasher::new_derive_key("lmsync record fingerprint v1");
        h.update(&self.owner.get().to_be_bytes());
        h.update(&[self.kind as u8]);
        h.update(&(self.id.len() as u64).to_be_bytes());
        h.update(self.id.as_bytes());
        h.update(&self.version.to_be_bytes());
        h.update(&self.hash.0);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        u128::from_le_bytes(out)
    }
}

impl Record {
    /// Recomputes the content hash and checks it against the envelope.
    pub fn verify_hash(&self) -> Result<bool, CodecError> {
        let e = &self.envelope;
        Ok(
            content_hash(e.owner, &e.id, e.status, &self.data)? == e.hash
                && e.kind == self.data.kind(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(Kind::ALL[k.index()], k);
        }
        assert_eq!(Kind::parse("vacancies"), None);
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("V-2024-000123").is_ok());
        assert!(validate_id("岗位-1").is_ok());
        assert_eq!(validate_id(""), Err(IdError::Length(0)));
        assert_eq!(validate_id(&"x".repeat(129)), Err(IdError::Length(129)));
        assert_eq!(validate_id("a\nb"), Err(IdError::NotPrintable));
        assert_eq!(validate_id(" a"), Err(IdError::NotPrintable));
    }

    #[test]
    fn record_keys_spread_over_buckets() {
        let a = RecordKey::of(Kind::Vacancy, "V-1");
        let b = RecordKey::of(Kind::Employer, "V-1");
        assert_ne!(a, b, "kind is part of the key");
        assert!(a.bucket() < 4096);
    }
}

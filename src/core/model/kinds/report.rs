//! The submitted quarterly supply/demand report (`supply_demand_report`): a city's report
//! for one quarter, frozen when the city submits it and signed with the city's node key.
//!
//! Unlike the other kinds, no client posts these records: the city node writes one when
//! its operator submits the quarter (`POST /v1/reports/{period}/submit`). The record id
//! is the quarter (`2024Q1`); submitting again writes the next version.
//!
//! The record carries its own signature because the envelope alone does not say who
//! wrote it: records reach the ministry through the province, which could rewrite a
//! record and its content hash without anyone noticing. A report is the city's statement
//! to those who evaluate it, so the city signs the report (owner, id, version, status and
//! every field but the signature) with the key of its node certificate, and every node
//! that receives it verifies the signature against the network CA before storing it
//! (`signature::DocumentVerifier::verify_signed`).

use std::fmt;

use chrono::{DateTime, Datelike, Months, NaiveDate};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::codec;
use crate::core::model::record::{Record, Status};
use crate::core::model::signature::{DocumentVerifier, SignatureError, sign_message};
use crate::core::model::tree::{NodeCode, Tier};
use crate::core::model::validate::{Check, Checker};

/// Longest frozen report, in bytes of JSON text: the store keeps a record within 60 KiB.
pub const MAX_TABLES_BYTES: usize = 48 * 1024;
/// Longest certificate carried, in bytes of DER.
const MAX_CERTIFICATE_BYTES: usize = 4096;
/// Longest signature carried, in bytes.
const MAX_SIGNATURE_BYTES: usize = 512;

/// Which records a report counts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CountBasis {
    /// Valid at any time in the quarter (本季度有效数; 2005+ reports).
    #[default]
    ValidInPeriod,
    /// Starting in the quarter (本季度新发生数; 2001 reports).
    NewInPeriod,
}

impl CountBasis {
    /// The snake_case name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            CountBasis::ValidInPeriod => "valid_in_period",
            CountBasis::NewInPeriod => "new_in_period",
        }
    }
}

/// Bytes shown as hex in JSON and kept raw in the codec's encoding.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(&self.0))
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            hex::decode(&text)
                .map(Bytes)
                .map_err(|e| D::Error::custom(format!("expected hex: {e}")))
        } else {
            Vec::<u8>::deserialize(d).map(Bytes)
        }
    }
}

/// A city's submitted quarterly report (`CitySupplyDemandReport`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyDemandReport {
    /// The quarter, `YYYYQn`; the same as the record id.
    pub period: String,
    /// Which records the tables count.
    pub count_basis: CountBasis,
    /// Counts from 1 to this minus 1 are withheld in the tables (0 or 1: none).
    pub suppress_below: u64,
    /// When this version was submitted, ms since the Unix epoch (the city's clock).
    pub submitted_at_ms: i64,
    /// When the first version was submitted: report timeliness counts from it.
    pub first_submitted_at_ms: i64,
    /// The report as `GET /v1/reports/{period}?format=json` gave it, without its change
    /// columns (the quarter's own tables), as JSON text.
    pub tables: String,
    /// The city's node certificate (DER) whose key signed the report.
    pub certificate: Bytes,
    /// The signature over [`signed_message`].
    pub signature: Bytes,
}

/// The first and last day of the quarter written `YYYYQn` (`Q` upper case), if it is one.
pub fn quarter_days(period: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (year, quarter) = period.split_once('Q')?;
    if year.len() != 4 || quarter.len() != 1 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = year.parse().ok()?;
    let quarter: u32 = quarter.parse().ok().filter(|q| (1..=4).contains(q))?;
    let first = NaiveDate::from_ymd_opt(year, 3 * quarter - 2, 1)?;
    let last = first.checked_add_months(Months::new(3))?.pred_opt()?;
    (first.year() >= 1000).then_some((first, last))
}

/// The first instant after the quarter `period` (midnight UTC), ms since the epoch.
pub fn quarter_end_ms(period: &str) -> Option<i64> {
    let (_, last) = quarter_days(period)?;
    let next = last.succ_opt()?.and_hms_opt(0, 0, 0)?;
    Some(next.and_utc().timestamp_millis())
}

impl SupplyDemandReport {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.ensure(cx.owner.tier() == Tier::City, "period", || {
            format!(
                "{} is a {}; only a city submits a supply/demand report",
                cx.owner,
                cx.owner.tier()
            )
        })?;
        let end = quarter_end_ms(&self.period);
        cx.ensure(end.is_some(), "period", || {
            format!("{:?} is not a quarter written like 2024Q1", self.period)
        })?;
        let end = end.unwrap_or(i64::MAX);
        cx.ensure(
            self.first_submitted_at_ms >= end,
            "first_submitted_at_ms",
            || format!("submitted before the end of {}", self.period),
        )?;
        cx.ensure(
            self.submitted_at_ms >= self.first_submitted_at_ms,
            "submitted_at_ms",
            || "before the first submission".into(),
        )?;
        cx.ensure(
            DateTime::from_timestamp_millis(self.submitted_at_ms).is_some(),
            "submitted_at_ms",
            || "out of range".into(),
        )?;
        cx.ensure(self.suppress_below <= 1_000_000, "suppress_below", || {
            "must be at most 1000000".into()
        })?;
        cx.ensure(self.tables.len() <= MAX_TABLES_BYTES, "tables", || {
            format!("longer than {MAX_TABLES_BYTES} bytes")
        })?;
        cx.ensure(
            serde_json::from_str::<serde_json::Value>(&self.tables).is_ok_and(|v| v.is_object()),
            "tables",
            || "must be the report as a JSON object".into(),
        )?;
        cx.ensure(
            (1..=MAX_CERTIFICATE_BYTES).contains(&self.certificate.0.len()),
            "certificate",
            || format!("must be 1 to {MAX_CERTIFICATE_BYTES} bytes"),
        )?;
        cx.ensure(
            (1..=MAX_SIGNATURE_BYTES).contains(&self.signature.0.len()),
            "signature",
            || format!("must be 1 to {MAX_SIGNATURE_BYTES} bytes"),
        )
    }
}

#[derive(Serialize)]
struct Signed<'a> {
    context: &'static str,
    owner: NodeCode,
    id: &'a str,
    version: u64,
    status: Status,
    period: &'a str,
    count_basis: CountBasis,
    suppress_below: u64,
    submitted_at_ms: i64,
    first_submitted_at_ms: i64,
    tables: &'a str,
}

/// The bytes a city signs: the report's owner, id, version and status and every field but
/// the certificate and the signature.
pub fn signed_message(
    owner: NodeCode,
    id: &str,
    version: u64,
    status: Status,
    r: &SupplyDemandReport,
) -> Vec<u8> {
    let signed = Signed {
        context: "lmsync supply_demand_report v1",
        owner,
        id,
        version,
        status,
        period: &r.period,
        count_basis: r.count_basis,
        suppress_below: r.suppress_below,
        submitted_at_ms: r.submitted_at_ms,
        first_submitted_at_ms: r.first_submitted_at_ms,
        tables: &r.tables,
    };
    // Encoding our own plain struct cannot fail; an empty message fails verification.
    codec::encode(&signed).unwrap_or_default()
}

/// Signs `report` as version `version` of `owner`'s record (its certificate and signature
/// are filled in) with the node's certificate and key.
pub fn sign_report(
    report: &mut SupplyDemandReport,
    owner: NodeCode,
    version: u64,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(), SignatureError> {
    let message = signed_message(owner, &report.period, version, Status::Active, report);
    let (certificate, signature) = sign_message(&message, cert_pem, key_pem)?;
    report.certificate = Bytes(certificate);
    report.signature = Bytes(signature);
    Ok(())
}

/// Ok unless `record` is a submitted report whose id is not its period or whose signature
/// does not verify (from the network CA, for the owner, over the report as it is); other
/// kinds carry no signature of their own.
pub fn verify_record(verifier: &DocumentVerifier, record: &Record) -> Result<(), String> {
    let super::RecordData::SupplyDemandReport(r) = &record.data else {
        return Ok(());
    };
    let e = &record.envelope;
    if e.id != r.period {
        return Err(format!(
            "report id {:?} is not its period {:?}",
            e.id, r.period
        ));
    }
    let message = signed_message(e.owner, &e.id, e.version, e.status, r);
    verifier.verify_signed(e.owner, &r.certificate.0, &message, &r.signature.0)
}

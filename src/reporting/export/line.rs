//! The lines of the export stream (`GET /v1/export`, `docs/reference/api.md`): NDJSON, one
//! record per line in the form of `GET /v1/records/{owner}/{kind}/{id}`, then one last
//! line, `{"end": {"records": N}}` when every record asked for was sent, or
//! `{"error": "<kind>", "message": "…"}` when the node could not finish. A stream without
//! its end line is incomplete, whatever it held.
//!
//! The node writes the lines; a client reads them back here into records, each checked
//! whole (size, shape, fields, content hash) before it is used.

use chrono::DateTime;
use serde_json::{Value, json};

use crate::core::model::kinds::RecordData;
use crate::core::model::record::{CodeRef, Envelope, Hash32, validate_id};
use crate::core::model::{Kind, NodeCode, Record, Status};

/// Longest line a client accepts. A stored record encodes to at most 60 KiB; its JSON,
/// escapes and envelope included, stays well under this.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One line of the stream, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A record.
    Record(Box<Record>),
    /// The end: this many records were sent.
    End {
        /// Records sent before it.
        records: u64,
    },
}

/// Why a line is not a valid line of the stream.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Longer than [`MAX_LINE_BYTES`].
    #[error("a line of {0} bytes is over the {MAX_LINE_BYTES}-byte limit")]
    TooLong(usize),
    /// Not a JSON object.
    #[error("a line is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A member is missing or wrong.
    #[error("record {id:?}: {field} {problem}")]
    Field {
        /// The record's id, if it had one.
        id: String,
        /// The member at fault.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The content hash does not match the record's data.
    #[error("record {owner}/{kind}/{id:?}: its content hash does not match its data")]
    Hash {
        /// Owner.
        owner: NodeCode,
        /// Kind.
        kind: Kind,
        /// Id.
        id: String,
    },
    /// The node ended the stream with an error.
    #[error("the node could not finish the export ({kind}): {message}")]
    Failed {
        /// The error kind.
        kind: String,
        /// Its sentence.
        message: String,
    },
}

/// The end line, without its newline.
pub fn end_line(records: u64) -> Value {
    json!({"end": {"records": records}})
}

/// The error line that ends an unfinished stream, without its newline.
pub fn error_line(kind: &str, message: &str) -> Value {
    json!({"error": kind, "message": message})
}

/// Reads one line (without its newline).
pub fn parse_line(bytes: &[u8]) -> Result<Line, LineError> {
    if bytes.len() > MAX_LINE_BYTES {
        return Err(LineError::TooLong(bytes.len()));
    }
    let mut value: Value = serde_json::from_slice(bytes)?;
    if let Some(end) = value.get("end") {
        let records = end["records"].as_u64().ok_or_else(|| LineError::Field {
            id: String::new(),
            field: "end.records",
            problem: "is not a count".into(),
        })?;
        return Ok(Line::End { records });
    }
    if let Some(kind) = value.get("error") {
        return Err(LineError::Failed {
            kind: kind.as_str().unwrap_or("unknown").to_string(),
            message: value["message"].as_str().unwrap_or("").to_string(),
        });
    }
    let data = value
        .get_mut("data")
        .map(Value::take)
        .unwrap_or(Value::Null);
    record(&value, data).map(|r| Line::Record(Box::new(r)))
}

fn record(v: &Value, data: Value) -> Result<Record, LineError> {
    let id = v["id"].as_str().unwrap_or_default().to_string();
    let bad = |field: &'static str, problem: String| LineError::Field {
        id: id.clone(),
        field,
        problem,
    };
    let text = |field: &'static str| {
        v[field]
            .as_str()
            .ok_or_else(|| bad(field, "is missing or not a string".into()))
    };
    let number = |field: &'static str| {
        v[field]
            .as_u64()
            .ok_or_else(|| bad(field, "is missing or not a count".into()))
    };
    validate_id(&id).map_err(|e| bad("id", e.to_string()))?;
    let owner: NodeCode = text("owner")?
        .parse()
        .map_err(|e| bad("owner", format!("{e}")))?;
    let kind = Kind::parse(text("kind")?).ok_or_else(|| bad("kind", "names no kind".into()))?;
    let status: Status =
        serde_json::from_value(v["status"].clone()).map_err(|e| bad("status", e.to_string()))?;
    let recorded_at_ms = DateTime::parse_from_rfc3339(text("recorded_at")?)
        .map_err(|e| bad("recorded_at", e.to_string()))?
        .timestamp_millis();
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text("hash")?, &mut hash)
        .map_err(|_| bad("hash", "is not 64 hex digits".into()))?;
    let code_refs = v["code_refs"]
        .as_array()
        .ok_or_else(|| bad("code_refs", "is not a list".into()))?
        .iter()
        .map(|c| {
            c.as_str()
                .and_then(|c| c.split_once('@'))
                .map(|(scheme, version)| CodeRef {
                    scheme: scheme.to_string(),
                    version: version.to_string(),
                })
                .ok_or_else(|| bad("code_refs", format!("holds {c}, not SCHEME@VERSION")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let data = RecordData::from_json(kind, data).map_err(|e| {
        bad(
            "data",
            format!("does not read as a {kind} ({}): {}", e.path(), e.inner()),
        )
    })?;
    let record = Record {
        envelope: Envelope {
            owner,
            kind,
            id: id.clone(),
            version: number("version")?,
            seq: number("seq")?,
            status,
            recorded_at_ms,
            code_refs,
            hash: Hash32(hash),
        },
        data,
    };
    match record.verify_hash() {
        Ok(true) => Ok(record),
        _ => Err(LineError::Hash { owner, kind, id }),
    }
}

//! The columnar form of records for analytics engines (`docs/ANALYTICS.md`): one schema
//! per record kind — the envelope, then the kind's fields, each typed — every record as a
//! row of cells, the partition a record goes to (kind, quarter, owning city), and the
//! NDJSON lines of the export stream (`GET /v1/export`, [`line`]).
//!
//! Pure: records in, columns and cells out. The Parquet files are written by
//! `tooling::export`. Only what a stored record holds can become a column, and a stored
//! record holds no citizen ID, name, phone or address of a person (they are dropped or
//! pseudonymised at ingest): persons appear as `pid` with its `pid_epoch`.

mod kinds;
pub mod line;

#[cfg(test)]
mod tests;

use chrono::{Datelike, NaiveDate};

use crate::core::model::{Kind, Record};
use crate::reporting::analysis::{Period, placed_on};

/// What a column holds. Every integer is a signed 64-bit integer, so that every engine
/// reads it the same (Trino and Spark have no unsigned types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text: ids, codes, enum values (snake_case), names.
    Text,
    /// A signed 64-bit integer.
    Int,
    /// True or false.
    Bool,
    /// A calendar date. Months (`benefit_month`, `period`) are their first day.
    Date,
    /// An instant, milliseconds, UTC.
    Timestamp,
    /// Money in yuan, a decimal with two places (exact: the unscaled value is the fen).
    Money,
    /// A list of texts (codes, enum values, ids); empty when the record has none.
    TextList,
    /// An office's public channels: a list of `{channel, since, url}`.
    Channels,
}

impl ColumnType {
    /// How the column reads in an engine, for the manifest and the docs.
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::Text => "VARCHAR",
            ColumnType::Int => "BIGINT",
            ColumnType::Bool => "BOOLEAN",
            ColumnType::Date => "DATE",
            ColumnType::Timestamp => "TIMESTAMP WITH TIME ZONE",
            ColumnType::Money => "DECIMAL(18,2)",
            ColumnType::TextList => "VARCHAR[]",
            ColumnType::Channels => "STRUCT(channel VARCHAR, since DATE, url VARCHAR)[]",
        }
    }
}

/// One column of a kind's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Its name: the record's field name (`_yuan` for money kept in fen, the members of
    /// a nested object prefixed with its name).
    pub name: &'static str,
    /// What it holds.
    pub ty: ColumnType,
    /// May be null (an optional field). Lists are never null, only empty.
    pub nullable: bool,
}

/// One public channel of an office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCell {
    /// The channel type (snake_case).
    pub channel: String,
    /// In use since.
    pub since: NaiveDate,
    /// Its address, if any.
    pub url: Option<String>,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// No value (an optional field left out).
    Null,
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A date.
    Date(NaiveDate),
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// An amount in fen (written as yuan with two decimals).
    Money(i64),
    /// A list of texts.
    TextList(Vec<String>),
    /// Public channels.
    Channels(Vec<ChannelCell>),
}

impl Cell {
    /// True when the cell may stand in a column of type `ty` (null only if `nullable`).
    pub fn fits(&self, ty: ColumnType, nullable: bool) -> bool {
        matches!(
            (self, ty),
            (Cell::Text(_), ColumnType::Text)
                | (Cell::Int(_), ColumnType::Int)
                | (Cell::Bool(_), ColumnType::Bool)
                | (Cell::Date(_), ColumnType::Date)
                | (Cell::Timestamp(_), ColumnType::Timestamp)
                | (Cell::Money(_), ColumnType::Money)
                | (Cell::TextList(_), ColumnType::TextList)
                | (Cell::Channels(_), ColumnType::Channels)
        ) || (*self == Cell::Null && nullable)
    }
}

/// The envelope's columns, first in every kind's schema. The kind, the quarter and the
/// owning city are the partition's and are not repeated in the files (engines add them
/// from the directory names); `owner` is the city's code as a column.
const ENVELOPE: &[Column] = &[
    kinds::text("owner"),
    kinds::text("id"),
    kinds::int("version"),
    kinds::int("seq"),
    kinds::text("status"),
    Column {
        name: "recorded_at",
        ty: ColumnType::Timestamp,
        nullable: false,
    },
    kinds::text("hash"),
    kinds::list("code_refs"),
];

/// The schema of `kind`'s files: the envelope, then the kind's fields.
pub fn columns(kind: Kind) -> Vec<Column> {
    ENVELOPE
        .iter()
        .chain(kinds::fields(kind))
        .copied()
        .collect()
}

/// `record` as a row of `columns(record.envelope.kind)`.
pub fn row(record: &Record) -> Vec<Cell> {
    let e = &record.envelope;
    let mut cells = vec![
        Cell::Text(e.owner.to_string()),
        Cell::Text(e.id.clone()),
        Cell::Int(i64::try_from(e.version).unwrap_or(i64::MAX)),
        Cell::Int(i64::try_from(e.seq).unwrap_or(i64::MAX)),
        Cell::Text(kinds::name(&e.status)),
        Cell::Timestamp(e.recorded_at_ms),
        Cell::Text(e.hash.to_string()),
        Cell::TextList(
            e.code_refs
                .iter()
                .map(|c| format!("{}@{}", c.scheme, c.version))
                .collect(),
        ),
    ];
    kinds::cells(&record.data, &mut cells);
    cells
}

/// The quarter partition of the directory kinds (offices, employers), which hold in
/// every quarter: they are exported whatever the period asked.
pub const ALL_QUARTERS: &str = "all";

/// The quarter partition `record` goes to: `YYYYQn` of the date that places it in a
/// quarter ([`placed_on`], the report's), or [`ALL_QUARTERS`].
pub fn quarter_label(record: &Record) -> String {
    match placed_on(&record.data) {
        Some(d) => format!("{}Q{}", d.year(), d.month0() / 3 + 1),
        None => ALL_QUARTERS.to_string(),
    }
}

/// True when `record` belongs in an export of `period` (every record without one): it
/// is placed in that quarter, or is of a directory kind.
pub fn in_period(record: &Record, period: Option<Period>) -> bool {
    match (period, placed_on(&record.data)) {
        (Some(p), Some(d)) => p.contains(d),
        _ => true,
    }
}

/// The directory of a partition, relative to the export's root:
/// `kind=K/quarter=Q/city=C` (hive style, which DuckDB, Spark and Trino discover).
pub fn partition_path(kind: Kind, quarter: &str, city: &str) -> String {
    format!("kind={kind}/quarter={quarter}/city={city}")
}

//! The mapping file (TOML, unknown keys refused): which record kind a sheet's rows become,
//! how the id is made, which column fills which field and how its text is read (value
//! maps, date formats, numbers), the constants every row gets, and where the rows are
//! (encoding, sheet, header row). Parsed into a [`Mapping`]; every error names its key
//! path, like the node's config. `docs/reference/cli.md` describes the format.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::format::{Item, StrftimeItems};
use serde::Deserialize;
use serde_json::Value;

use super::columns::{ColumnRef, Template};
use super::{MAX_COLUMNS, MAX_MAPPING_BYTES, OfficeError};
use crate::core::model::Kind;
use crate::core::model::ingest::{dropped_at_ingest, has_person};
use crate::node::config::located;

/// How the bytes of a CSV file are text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Encoding {
    /// UTF-8 (a byte-order mark is skipped).
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    /// GB18030, which contains the GBK and GB2312 that Chinese Windows wrote.
    #[serde(rename = "gb18030", alias = "gbk", alias = "gb2312")]
    Gb18030,
    /// A byte-order mark if there is one, else UTF-8 if the bytes are valid UTF-8,
    /// else GB18030.
    #[default]
    #[serde(rename = "auto")]
    Auto,
}

/// What JSON a cell becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A string, as written (trimmed).
    #[default]
    Text,
    /// A whole number.
    Integer,
    /// An amount in yuan (`12.5`) written as fen (`1250`).
    Fen,
    /// A date, `YYYY-MM-DD`, read with the field's formats.
    Date,
    /// The year of a date (a birth date becomes `birth_year`), or a year alone.
    Year,
    /// `true` or `false` (`是`/`否`, `1`/`0`, `true`/`false`, `y`/`n`, `√`/`×`).
    Bool,
    /// A list of strings, split at a separator, each element mapped.
    List,
}

/// Which end of a range such as `600-800` an integer field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeEnd {
    /// The first number.
    Low,
    /// The last number.
    High,
}

/// A way to read a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateFormat {
    /// A chrono/strftime pattern such as `%Y年%m月%d日`.
    Pattern(String),
    /// An Excel serial day number (`36526` is 2000-01-01), as a sheet saved to CSV writes
    /// an unformatted date cell.
    ExcelSerial,
}

/// The formats tried when neither the field nor the mapping lists any.
pub const DEFAULT_DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y年%m月%d日",
    "%Y%m%d",
    "excel",
];

/// Where the rows are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The text encoding of a CSV file.
    pub encoding: Encoding,
    /// The worksheet of an xlsx file (the first when `None`).
    pub sheet: Option<String>,
    /// The row holding the column names (1-based); 0 when there is none.
    pub header_row: u64,
    /// The first row of data.
    pub first_row: u64,
    /// The last row of data, if rows below it are not data (totals, signatures).
    pub last_row: Option<u64>,
    /// The field separator of a CSV file.
    pub delimiter: u8,
}

/// Where a field's text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One column's cell.
    Column(ColumnRef),
    /// A text built from several cells.
    Template(Template),
}

/// One mapped field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name in the record's `data`; dots nest (`hardship.basis`).
    pub name: String,
    /// Where its text comes from.
    pub input: Input,
    /// What JSON the text becomes.
    pub ty: FieldType,
    /// For dates and years: the formats tried in order.
    pub formats: Vec<DateFormat>,
    /// Cell text → value; an empty string value means "as if the cell were empty".
    pub values: Option<BTreeMap<String, Value>>,
    /// Where `values` is in the mapping file (`maps.sex`, `fields.sex.values`).
    pub values_from: String,
    /// Text not in `values` is read by `ty` instead of being an error.
    pub keep_unmapped: bool,
    /// For lists: the separators.
    pub separators: Vec<String>,
    /// For integers: the end of a range.
    pub range: Option<RangeEnd>,
    /// The value of an empty cell (else the field is left out).
    pub default: Option<Value>,
}

/// A parsed, checked mapping file.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The record kind every row becomes.
    pub kind: Kind,
    /// The record status, when not the node's default (`active`).
    pub status: Option<String>,
    /// How the record id is made.
    pub id: Template,
    /// Where the rows are.
    pub source: Source,
    /// Fields every row gets, with their values.
    pub constants: Vec<(String, Value)>,
    /// Fields read from the row.
    pub fields: Vec<Field>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    kind: String,
    #[serde(default)]
    status: Option<String>,
    id: String,
    #[serde(default)]
    source: RawSource,
    #[serde(default)]
    date_formats: Option<Vec<String>>,
    #[serde(default)]
    constants: BTreeMap<String, toml::Value>,
    #[serde(default)]
    fields: BTreeMap<String, RawField>,
    #[serde(default)]
    maps: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default)]
    header_row: Option<u64>,
    #[serde(default)]
    first_row: Option<u64>,
    #[serde(default)]
    last_row: Option<u64>,
    #[serde(default)]
    delimiter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    #[serde(default)]
    column: Option<String>,
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    template: Option<String>,
    #[serde(rename = "type", default)]
    ty: FieldType,
    #[serde(default)]
    formats: Option<Vec<String>>,
    #[serde(default)]
    map: Option<String>,
    #[serde(default)]
    values: Option<BTreeMap<String, toml::Value>>,
    #[serde(default)]
    keep_unmapped: bool,
    #[serde(default)]
    separator: Option<Separators>,
    #[serde(default)]
    range: Option<RangeEnd>,
    #[serde(default)]
    default: Option<toml::Value>,
}

/// `separator = "、"` or `separator = ["、", ","]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Separators {
    One(String),
    Many(Vec<String>),
}

impl Separators {
    fn list(&self) -> Vec<String> {
        match self {
            Separators::One(s) => vec![s.clone()],
            Separators::Many(v) => v.clone(),
        }
    }
}

fn err(key: impl Into<String>, message: impl Into<String>) -> OfficeError {
    OfficeError::Mapping {
        key: key.into(),
        message: message.into(),
    }
}

impl Mapping {
    /// Reads and checks the mapping file at `path`.
    pub fn load(path: &Path) -> Result<Mapping, OfficeError> {
        let file = path.display().to_string();
        let len = std::fs::metadata(path)
            .map_err(|e| err(&file, format!("cannot read: {e}")))?
            .len();
        if len > MAX_MAPPING_BYTES {
            return Err(err(
                &file,
                format!("{len} bytes; a mapping file is at most {MAX_MAPPING_BYTES}"),
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| err(&file, format!("cannot read: {e}")))?;
        Mapping::parse(&text)
    }

    /// Parses and checks mapping text.
    pub fn parse(text: &str) -> Result<Mapping, OfficeError> {
        let de = toml::Deserializer::parse(text).map_err(|e| err("(file)", located(text, &e)))?;
        let raw: RawMapping = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                "(file)".to_string()
            } else {
                key
            };
            err(key, located(text, e.inner()))
        })?;
        from_raw(raw)
    }

    /// The field reading the citizen ID, if the mapping has one.
    fn citizen_columns(&self) -> Vec<&ColumnRef> {
        self.fields
            .iter()
            .filter(|f| f.name == "citizen_id")
            .flat_map(|f| input_columns(&f.input))
            .collect()
    }
}

/// The columns an input reads.
pub fn input_columns(input: &Input) -> Vec<&ColumnRef> {
    match input {
        Input::Column(c) => vec![c],
        Input::Template(t) => t.columns().collect(),
    }
}

fn from_raw(raw: RawMapping) -> Result<Mapping, OfficeError> {
    let kind = Kind::parse(raw.kind.trim()).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        err(
            "kind",
            format!(
                "unknown record kind {:?}; one of {}",
                raw.kind,
                known.join(", ")
            ),
        )
    })?;
    if let Some(s) = &raw.status
        && !["active", "closed", "withdrawn", "voided"].contains(&s.as_str())
    {
        return Err(err(
            "status",
            format!("{s:?}: one of active, closed, withdrawn, voided"),
        ));
    }
    let id = Template::parse(&raw.id).map_err(|m| err("id", m))?;
    let source = source(&raw.source)?;
    let default_formats = match &raw.date_formats {
        Some(list) => formats("date_formats", list)?,
        None => DEFAULT_DATE_FORMATS
            .iter()
            .copied()
            .map(date_format)
            .collect(),
    };
    let mut constants = Vec::new();
    for (name, value) in &raw.constants {
        let key = format!("constants.{name}");
        check_name(kind, &key, name)?;
        constants.push((name.clone(), json(&key, value)?));
    }
    let mut fields = Vec::new();
    for (name, f) in &raw.fields {
        let key = format!("fields.{name}");
        check_name(kind, &key, name)?;
        if raw.constants.contains_key(name) {
            return Err(err(
                &key,
                format!("{name} is a constant already (constants.{name})"),
            ));
        }
        fields.push(field(&key, name, f, &raw.maps, &default_formats)?);
    }
    check_nesting(&constants, &fields)?;
    if fields.iter().any(|f| f.name == "citizen_id") && !has_person(kind) {
        return Err(err(
            "fields.citizen_id",
            format!("{kind} records name no person, so they take no citizen ID"),
        ));
    }
    let mapping = Mapping {
        kind,
        status: raw.status,
        id,
        source,
        constants,
        fields,
    };
    check_citizen_id_stays(&mapping)?;
    Ok(mapping)
}

/// A field name: not empty, not one that ingest drops (a name, a phone, an address are
/// not stored, so a mapping does not send them).
fn check_name(kind: Kind, key: &str, name: &str) -> Result<(), OfficeError> {
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return Err(err(key, "a field name must not be empty"));
    }
    let top = name.split('.').next().unwrap_or(name);
    if dropped_at_ingest(kind, top) {
        return Err(err(
            key,
            format!(
                "{kind} records do not keep {top:?}: a person's name, phone or address stays \
                 in the office; leave the column unmapped"
            ),
        ));
    }
    Ok(())
}

/// No field is set both as a whole and in part (`hardship` and `hardship.basis`).
fn check_nesting(constants: &[(String, Value)], fields: &[Field]) -> Result<(), OfficeError> {
    let names: Vec<(&str, &str)> = constants
        .iter()
        .map(|(n, _)| (n.as_str(), "constants"))
        .chain(fields.iter().map(|f| (f.name.as_str(), "fields")))
        .collect();
    for (a, table) in &names {
        for (b, _) in &names {
            if b.len() > a.len() && b.starts_with(a) && b.as_bytes().get(a.len()) == Some(&b'.') {
                return Err(err(
                    format!("{table}.{a}"),
                    format!("{a} is set as a whole and {b} within it; set one or the other"),
                ));
            }
        }
    }
    Ok(())
}

/// The id and every field but `citizen_id` stay off the columns `citizen_id` reads: a
/// record's id and fields travel up the tree, and a citizen ID must not leave the city.
fn check_citizen_id_stays(mapping: &Mapping) -> Result<(), OfficeError> {
    let citizen = mapping.citizen_columns();
    if citizen.is_empty() {
        return Ok(());
    }
    if let Some(c) = mapping.id.columns().find(|c| citizen.contains(c)) {
        return Err(err(
            "id",
            format!(
                "the id reads {c}, the citizen ID column; ids travel up the tree and a citizen \
                 ID must not leave the city (use a registration number)"
            ),
        ));
    }
    for f in mapping.fields.iter().filter(|f| f.name != "citizen_id") {
        if let Some(c) = input_columns(&f.input)
            .into_iter()
            .find(|c| citizen.contains(c))
        {
            return Err(err(
                format!("fields.{}", f.name),
                format!("reads {c}, the citizen ID column, which only citizen_id may read"),
            ));
        }
    }
    Ok(())
}

fn source(raw: &RawSource) -> Result<Source, OfficeError> {
    let header_row = raw.header_row.unwrap_or(1);
    let first_row = raw.first_row.unwrap_or(header_row + 1);
    if first_row == 0 {
        return Err(err("source.first_row", "rows are numbered from 1"));
    }
    if first_row <= header_row {
        return Err(err(
            "source.first_row",
            format!("row {first_row} is not below the header row {header_row}"),
        ));
    }
    if let Some(last) = raw.last_row
        && last < first_row
    {
        return Err(err(
            "source.last_row",
            format!("row {last} is above the first row of data, {first_row}"),
        ));
    }
    if let Some(sheet) = &raw.sheet
        && sheet.trim().is_empty()
    {
        return Err(err("source.sheet", "a sheet name must not be empty"));
    }
    let delimiter = match raw.delimiter.as_deref() {
        None => b',',
        Some("tab") => b'\t',
        Some(d) => match d.as_bytes() {
            [b] if b.is_ascii() && !b.is_ascii_alphanumeric() && *b != b'"' => *b,
            _ => {
                return Err(err(
                    "source.delimiter",
                    format!("{d:?}: one ASCII punctuation character, or \"tab\""),
                ));
            }
        },
    };
    Ok(Source {
        encoding: raw.encoding,
        sheet: raw.sheet.clone(),
        header_row,
        first_row,
        last_row: raw.last_row,
        delimiter,
    })
}

fn field(
    key: &str,
    name: &str,
    f: &RawField,
    maps: &BTreeMap<String, BTreeMap<String, toml::Value>>,
    default_formats: &[DateFormat],
) -> Result<Field, OfficeError> {
    let input = match (&f.column, f.index, &f.template) {
        (Some(c), None, None) if !c.trim().is_empty() => {
            Input::Column(ColumnRef::Named(c.trim().to_string()))
        }
        (None, Some(i), None) if (1..=MAX_COLUMNS).contains(&i) => {
            Input::Column(ColumnRef::Index(i - 1))
        }
        (None, Some(i), None) => {
            return Err(err(
                format!("{key}.index"),
                format!("{i}: columns are numbered 1 to {MAX_COLUMNS}"),
            ));
        }
        (None, None, Some(t)) => {
            if f.ty != FieldType::Text {
                return Err(err(format!("{key}.type"), "a template makes text only"));
            }
            Input::Template(Template::parse(t).map_err(|m| err(format!("{key}.template"), m))?)
        }
        _ => {
            return Err(err(
                key,
                "give exactly one of column (a header name or letter), index or template",
            ));
        }
    };
    let mut values_from = String::new();
    let values = match (&f.map, &f.values) {
        (Some(_), Some(_)) => {
            return Err(err(key, "give map or values, not both"));
        }
        (Some(m), None) => {
            let table = maps.get(m).ok_or_else(|| {
                let known: Vec<&str> = maps.keys().map(String::as_str).collect();
                err(
                    format!("{key}.map"),
                    format!(
                        "no [maps.{m}] in this file (it has: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
            values_from = format!("maps.{m}");
            Some(value_map(&values_from, table)?)
        }
        (None, Some(v)) => {
            values_from = format!("{key}.values");
            Some(value_map(&values_from, v)?)
        }
        (None, None) => None,
    };
    if f.keep_unmapped && values.is_none() {
        return Err(err(format!("{key}.keep_unmapped"), "needs map or values"));
    }
    let formats = match (&f.formats, f.ty) {
        (Some(list), FieldType::Date | FieldType::Year) => {
            formats(&format!("{key}.formats"), list)?
        }
        (Some(_), _) => {
            return Err(err(
                format!("{key}.formats"),
                "only date and year fields have formats",
            ));
        }
        (None, _) => default_formats.to_vec(),
    };
    let separators = match (f.separator.as_ref().map(Separators::list), f.ty) {
        (Some(list), FieldType::List) if !list.is_empty() && list.iter().all(|s| !s.is_empty()) => {
            list
        }
        (Some(_), FieldType::List) => {
            return Err(err(
                format!("{key}.separator"),
                "a list of non-empty separators",
            ));
        }
        (Some(_), _) => {
            return Err(err(
                format!("{key}.separator"),
                "only list fields have separators",
            ));
        }
        (None, _) => ["、", ",", "，", ";", "；", "/"]
            .iter()
            .map(|s| (*s).to_string())
            .collect(),
    };
    if f.range.is_some() && f.ty != FieldType::Integer {
        return Err(err(
            format!("{key}.range"),
            "only integer fields take an end of a range",
        ));
    }
    let default = f
        .default
        .as_ref()
        .map(|v| json(&format!("{key}.default"), v))
        .transpose()?;
    Ok(Field {
        name: name.to_string(),
        input,
        ty: f.ty,
        formats,
        values,
        values_from,
        keep_unmapped: f.keep_unmapped,
        separators,
        range: f.range,
        default,
    })
}

fn value_map(
    key: &str,
    table: &BTreeMap<String, toml::Value>,
) -> Result<BTreeMap<String, Value>, OfficeError> {
    let mut out = BTreeMap::new();
    for (from, to) in table {
        let k = from.trim().to_string();
        let v = json(&format!("{key}.{from}"), to)?;
        if out.insert(k.clone(), v).is_some() {
            return Err(err(
                format!("{key}.{from}"),
                format!("{k:?} is mapped twice (spaces around a key are ignored)"),
            ));
        }
    }
    Ok(out)
}

fn formats(key: &str, list: &[String]) -> Result<Vec<DateFormat>, OfficeError> {
    if list.is_empty() {
        return Err(err(key, "list at least one format"));
    }
    list.iter()
        .enumerate()
        .map(|(i, f)| {
            let parsed = date_format(f);
            if let DateFormat::Pattern(p) = &parsed {
                let items: Vec<Item<'_>> = StrftimeItems::new(p).collect();
                if items.iter().any(|it| matches!(it, Item::Error)) || items.is_empty() {
                    return Err(err(
                        format!("{key}[{i}]"),
                        format!("{f:?} is not a date format such as \"%Y年%m月%d日\" or \"excel\""),
                    ));
                }
            }
            Ok(parsed)
        })
        .collect()
}

fn date_format(text: &str) -> DateFormat {
    if text.eq_ignore_ascii_case("excel") {
        DateFormat::ExcelSerial
    } else {
        DateFormat::Pattern(text.to_string())
    }
}

/// A TOML value as the JSON a record takes; dates and times are refused (write a string).
fn json(key: &str, value: &toml::Value) -> Result<Value, OfficeError> {
    match value {
        toml::Value::String(s) => Ok(Value::String(s.clone())),
        toml::Value::Integer(i) => Ok(Value::from(*i)),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| err(key, "not a finite number")),
        toml::Value::Boolean(b) => Ok(Value::Bool(*b)),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| json(&format!("{key}[{i}]"), v))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| Ok((k.clone(), json(&format!("{key}.{k}"), v)?)))
            .collect::<Result<serde_json::Map<_, _>, OfficeError>>()
            .map(Value::Object),
        toml::Value::Datetime(_) => Err(err(
            key,
            "a TOML date; write it as a string, \"1999-09-14\"",
        )),
    }
}

//! A row as a record: the mapping's columns found in the header row, then each data row
//! made into `{"kind", "id", "status"?, "data"}` — the JSON a JSON Lines import posts — or
//! the list of what is wrong with it, one entry per column at fault. [`Mapper::locate`]
//! turns a field the node names in a rejection (`data.occupation`) back into its column.

use std::iter::Peekable;

use serde_json::{Map, Value};

use super::columns::{Column, Header, Part};
use super::convert::{self, Problem};
use super::mapping::{Field, Input, Mapping, Source};
use super::{Cell, OfficeError, Row};

/// What is wrong with one row: where, for which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The column as the office finds it (`F 人数`), the columns of a template joined by
    /// `+`, or where in the mapping (`mapping constants.work_location`); empty for the row
    /// as a whole.
    pub column: String,
    /// The record field it was for (`data.headcount`, `id`); empty for the row as a whole.
    pub field: String,
    /// A short snake_case code.
    pub error: String,
    /// A sentence for the office.
    pub message: String,
}

/// A mapping input with its columns found.
#[derive(Debug, Clone)]
enum Resolved {
    Column(Column),
    Template(Vec<Piece>),
}

#[derive(Debug, Clone)]
enum Piece {
    Literal(String),
    Column(Column),
}

impl Resolved {
    fn columns(&self) -> Vec<&Column> {
        match self {
            Resolved::Column(c) => vec![c],
            Resolved::Template(pieces) => pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Column(c) => Some(c),
                    Piece::Literal(_) => None,
                })
                .collect(),
        }
    }

    fn label(&self) -> String {
        match self {
            Resolved::Column(c) => c.to_string(),
            Resolved::Template(pieces) => pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Column(c) => Some(c.to_string()),
                    Piece::Literal(_) => None,
                })
                .collect::<Vec<_>>()
                .join(" + "),
        }
    }
}

/// Makes records of a file's rows by a mapping whose columns are found.
#[derive(Debug)]
pub struct Mapper<'m> {
    mapping: &'m Mapping,
    id: Resolved,
    fields: Vec<(&'m Field, Resolved)>,
}

/// Reads the rows up to the header row and returns its names (none when
/// `source.header_row` is 0, or the header row is empty).
pub fn read_header<I: Iterator<Item = Row>>(rows: &mut Peekable<I>, source: &Source) -> Header {
    if source.header_row == 0 {
        return Header::default();
    }
    let mut header = Header {
        names: Vec::new(),
        row: Some(source.header_row),
    };
    while let Some(row) = rows.next_if(|r| r.ordinal <= source.header_row) {
        if row.ordinal == source.header_row {
            header.names = row
                .cells
                .iter()
                .filter_map(|(i, c)| convert::cell_text(c).ok().map(|t| (*i, t)))
                .filter(|(_, t)| !t.is_empty())
                .collect();
        }
    }
    header
}

/// The data rows after the header: from `first_row` to `last_row`, blank rows skipped.
pub fn data_rows<I: Iterator<Item = Row>>(rows: I, source: &Source) -> impl Iterator<Item = Row> {
    let (first, last) = (source.first_row, source.last_row);
    rows.skip_while(move |r| r.ordinal < first)
        .take_while(move |r| last.is_none_or(|l| r.ordinal <= l))
        .filter(|r| r.fault.is_some() || !r.is_blank())
}

impl<'m> Mapper<'m> {
    /// Finds every column `mapping` names in `header`; the error names the mapping key.
    pub fn new(mapping: &'m Mapping, header: &Header) -> Result<Self, OfficeError> {
        let id = resolve(&Input::Template(mapping.id.clone()), header, "id")?;
        let mut fields = Vec::new();
        for f in &mapping.fields {
            let key = match &f.input {
                Input::Column(super::columns::ColumnRef::Named(_)) => {
                    format!("fields.{}.column", f.name)
                }
                Input::Column(super::columns::ColumnRef::Index(_)) => {
                    format!("fields.{}.index", f.name)
                }
                Input::Template(_) => format!("fields.{}.template", f.name),
            };
            fields.push((f, resolve(&f.input, header, &key)?));
        }
        let mapper = Mapper {
            mapping,
            id,
            fields,
        };
        mapper.check_citizen_id_stays()?;
        Ok(mapper)
    }

    /// The record of `row`, or everything wrong with it.
    pub fn map(&self, row: &Row) -> Result<Value, Vec<RowError>> {
        if let Some((column, why)) = &row.fault {
            return Err(vec![RowError {
                column: column.map(|i| self.column_label(i)).unwrap_or_default(),
                field: String::new(),
                error: "unreadable".into(),
                message: why.clone(),
            }]);
        }
        if let Some(width) = row.width {
            let mut missing: Vec<&Column> = self.columns().filter(|c| c.index >= width).collect();
            missing.sort_by_key(|c| c.index);
            missing.dedup_by_key(|c| c.index);
            if let Some(first) = missing.first() {
                let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
                return Err(vec![RowError {
                    column: first.to_string(),
                    field: String::new(),
                    error: "missing_column".into(),
                    message: format!(
                        "the line has {width} field{}, so no {}",
                        if width == 1 { "" } else { "s" },
                        names.join(", ")
                    ),
                }]);
            }
        }
        let mut errors = Vec::new();
        let id = match text_of(&self.id, row) {
            Ok(Some(id)) => Some(id),
            Ok(None) => {
                errors.push(RowError {
                    column: self.id.label(),
                    field: "id".into(),
                    error: "empty_id".into(),
                    message: "empty; the record id is made from it".into(),
                });
                None
            }
            Err((column, p)) => {
                errors.push(row_error(column, "id", p));
                None
            }
        };
        let mut data = Map::new();
        for (name, value) in &self.mapping.constants {
            insert(&mut data, name, value.clone());
        }
        for (field, input) in &self.fields {
            match field_value(field, input, row) {
                Ok(Some(v)) => insert(&mut data, &field.name, v),
                Ok(None) => {}
                Err((column, p)) => {
                    errors.push(row_error(column, &format!("data.{}", field.name), p))
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut record = Map::new();
        record.insert("kind".into(), Value::from(self.mapping.kind.as_str()));
        record.insert("id".into(), Value::from(id.unwrap_or_default()));
        if let Some(status) = &self.mapping.status {
            record.insert("status".into(), Value::from(status.as_str()));
        }
        record.insert("data".into(), Value::Object(data));
        Ok(Value::Object(record))
    }

    /// The column (or mapping entry) behind a field the node names in a rejection:
    /// `data.occupation`, `data.desired_occupations[2]`, `data.hardship.since`, `id`.
    /// A `pid` the node made from a citizen ID is that column's.
    pub fn locate(&self, field: &str) -> Option<String> {
        if field == "id" {
            return Some(self.id.label());
        }
        let mut path = field.strip_prefix("data.")?.to_string();
        if let Some(at) = path.find('[') {
            path.truncate(at);
        }
        if path == "pid" || path == "pid_epoch" {
            path = "citizen_id".into();
        }
        loop {
            if let Some((_, input)) = self.fields.iter().find(|(f, _)| f.name == path) {
                return Some(input.label());
            }
            if self.mapping.constants.iter().any(|(n, _)| *n == path) {
                return Some(format!("mapping constants.{path}"));
            }
            match path.rfind('.') {
                Some(at) => path.truncate(at),
                None => return None,
            }
        }
    }

    /// Every column the mapping reads.
    fn columns(&self) -> impl Iterator<Item = &Column> {
        self.fields
            .iter()
            .map(|(_, r)| r)
            .chain(std::iter::once(&self.id))
            .flat_map(Resolved::columns)
    }

    /// Only `citizen_id` reads the citizen ID's column, however the mapping names it: ids
    /// and fields travel up the tree, a citizen ID must not.
    fn check_citizen_id_stays(&self) -> Result<(), OfficeError> {
        let citizen: Vec<&Column> = self
            .fields
            .iter()
            .filter(|(f, _)| f.name == "citizen_id")
            .flat_map(|(_, r)| r.columns())
            .collect();
        let others = self
            .fields
            .iter()
            .filter(|(f, _)| f.name != "citizen_id")
            .map(|(f, r)| (format!("fields.{}", f.name), r))
            .chain(std::iter::once(("id".to_string(), &self.id)));
        for (key, input) in others {
            if let Some(c) = input
                .columns()
                .into_iter()
                .find(|c| citizen.iter().any(|z| z.index == c.index))
            {
                return Err(OfficeError::Mapping {
                    key,
                    message: format!(
                        "reads column {c}, the citizen ID's, which only citizen_id may read: \
                         ids and fields travel up the tree and a citizen ID must not leave the city"
                    ),
                });
            }
        }
        Ok(())
    }

    fn column_label(&self, index: u32) -> String {
        self.columns()
            .find(|c| c.index == index)
            .map_or_else(|| super::columns::letters(index), ToString::to_string)
    }
}

fn resolve(input: &Input, header: &Header, key: &str) -> Result<Resolved, OfficeError> {
    let find = |r| {
        header.find(r).map_err(|message| OfficeError::Mapping {
            key: key.to_string(),
            message,
        })
    };
    Ok(match input {
        Input::Column(r) => Resolved::Column(find(r)?),
        Input::Template(t) => Resolved::Template(
            t.parts
                .iter()
                .map(|p| match p {
                    Part::Literal(l) => Ok(Piece::Literal(l.clone())),
                    Part::Column(r) => find(r).map(Piece::Column),
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// The cell of `column` in `row`: `Err` when a CSV line stops before the column.
fn cell<'r>(row: &'r Row, column: &Column) -> Result<Option<&'r Cell>, Problem> {
    if let Some(width) = row.width
        && column.index >= width
    {
        return Err(Problem {
            error: "missing_column",
            message: format!(
                "the line has {width} field{}, so no column {}",
                if width == 1 { "" } else { "s" },
                super::columns::letters(column.index)
            ),
        });
    }
    Ok(row.get(column.index))
}

/// A template's (or a column's) text; `None` when a cell it needs is empty.
fn text_of(input: &Resolved, row: &Row) -> Result<Option<String>, (String, Problem)> {
    let pieces = match input {
        Resolved::Column(c) => return column_text(c, row),
        Resolved::Template(pieces) => pieces,
    };
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(l) => out.push_str(l),
            Piece::Column(c) => match column_text(c, row)? {
                Some(t) => out.push_str(&t),
                None => return Ok(None),
            },
        }
    }
    Ok(Some(out))
}

fn column_text(column: &Column, row: &Row) -> Result<Option<String>, (String, Problem)> {
    let at = |p| (column.to_string(), p);
    match cell(row, column).map_err(at)? {
        None => Ok(None),
        Some(c) => {
            let t = convert::cell_text(c).map_err(at)?;
            Ok((!t.is_empty()).then_some(t))
        }
    }
}

fn field_value(
    field: &Field,
    input: &Resolved,
    row: &Row,
) -> Result<Option<Value>, (String, Problem)> {
    match input {
        Resolved::Column(c) => {
            let found = cell(row, c).map_err(|p| (c.to_string(), p))?;
            convert::value(field, found).map_err(|p| (c.to_string(), p))
        }
        Resolved::Template(_) => {
            let text = text_of(input, row)?;
            let cell = text.map(Cell::Text);
            convert::value(field, cell.as_ref()).map_err(|p| (input.label(), p))
        }
    }
}

fn row_error(column: String, field: &str, p: Problem) -> RowError {
    RowError {
        column,
        field: field.to_string(),
        error: p.error.to_string(),
        message: p.message,
    }
}

/// Sets `value` at the dotted `path` of `data`, making the objects on the way.
fn insert(data: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut at = data;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            at.insert(part.to_string(), value);
            return;
        }
        let next = at
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(inner) = next else { return };
        at = inner;
    }
}

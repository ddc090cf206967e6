//! One Parquet file of one partition: the kind's schema as a Parquet message, rows buffered
//! column by column (values with their definition and repetition levels) and written a
//! row group at a time through the low-level column writers, snappy-compressed, with
//! statistics. The file is written under a hidden temporary name and renamed into place
//! only once it is complete and fsynced, so a reader never sees half a file.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use parquet::basic::Compression;
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::ExportError;
use crate::core::model::Kind;
use crate::reporting::export::{Cell, Column, ColumnType, columns};

/// The values of one leaf column of the row group being built.
enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bytes(Vec<ByteArray>),
}

/// One leaf column: its values and levels for the rows buffered.
struct Leaf {
    values: Values,
    def: Vec<i16>,
    rep: Vec<i16>,
    max_def: i16,
    max_rep: i16,
}

impl Leaf {
    fn new(values: Values, max_def: i16, max_rep: i16) -> Leaf {
        Leaf {
            values,
            def: Vec::new(),
            rep: Vec::new(),
            max_def,
            max_rep,
        }
    }

    fn levels(&mut self, def: i16, rep: i16) {
        self.def.push(def);
        self.rep.push(rep);
    }

    fn clear(&mut self) {
        self.def.clear();
        self.rep.clear();
        match &mut self.values {
            Values::Bool(v) => v.clear(),
            Values::I32(v) => v.clear(),
            Values::I64(v) => v.clear(),
            Values::Bytes(v) => v.clear(),
        }
    }
}

fn days(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    i32::try_from((date - epoch).num_days()).unwrap_or(i32::MIN)
}

fn bytes(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// The Parquet physical type and logical annotation of a scalar column.
fn scalar(ty: ColumnType) -> (&'static str, &'static str) {
    match ty {
        ColumnType::Text | ColumnType::TextList | ColumnType::Channels => ("binary", " (STRING)"),
        ColumnType::Int => ("int64", ""),
        ColumnType::Bool => ("boolean", ""),
        ColumnType::Date => ("int32", " (DATE)"),
        ColumnType::Timestamp => ("int64", " (TIMESTAMP(MILLIS,true))"),
        ColumnType::Money => ("int64", " (DECIMAL(18,2))"),
    }
}

/// The Parquet message of `kind`'s schema. Lists use the standard three-level form.
pub(super) fn message(kind: Kind) -> String {
    let mut m = format!("message {kind} {{\n");
    for c in columns(kind) {
        let repetition = if c.nullable { "optional" } else { "required" };
        let _ = match c.ty {
            ColumnType::TextList => writeln!(
                m,
                "  required group {} (LIST) {{ repeated group list {{ required binary element (STRING); }} }}",
                c.name
            ),
            ColumnType::Channels => writeln!(
                m,
                "  required group {} (LIST) {{ repeated group list {{ required group element {{ \
                 required binary channel (STRING); required int32 since (DATE); \
                 optional binary url (STRING); }} }} }}",
                c.name
            ),
            ty => {
                let (physical, logical) = scalar(ty);
                writeln!(m, "  {repetition} {physical} {}{logical};", c.name)
            }
        };
    }
    m.push('}');
    m
}

fn leaves_of(cols: &[Column]) -> Vec<Leaf> {
    let mut out = Vec::new();
    for c in cols {
        let def = i16::from(c.nullable);
        match c.ty {
            ColumnType::Text => out.push(Leaf::new(Values::Bytes(Vec::new()), def, 0)),
            ColumnType::Int | ColumnType::Timestamp | ColumnType::Money => {
                out.push(Leaf::new(Values::I64(Vec::new()), def, 0));
            }
            ColumnType::Bool => out.push(Leaf::new(Values::Bool(Vec::new()), def, 0)),
            ColumnType::Date => out.push(Leaf::new(Values::I32(Vec::new()), def, 0)),
            ColumnType::TextList => out.push(Leaf::new(Values::Bytes(Vec::new()), 1, 1)),
            ColumnType::Channels => {
                out.push(Leaf::new(Values::Bytes(Vec::new()), 1, 1));
                out.push(Leaf::new(Values::I32(Vec::new()), 1, 1));
                out.push(Leaf::new(Values::Bytes(Vec::new()), 2, 1));
            }
        }
    }
    out
}

fn push_bytes(leaf: &mut Leaf, s: &str) {
    if let Values::Bytes(v) = &mut leaf.values {
        v.push(bytes(s));
    }
}

fn push_i32(leaf: &mut Leaf, n: i32) {
    if let Values::I32(v) = &mut leaf.values {
        v.push(n);
    }
}

/// Buffers `cell` into `leaves`, the leaves of its column onwards (a cell checked against
/// its column); returns how many leaves the column has.
fn put(leaves: &mut [Leaf], nullable: bool, cell: Cell) -> usize {
    let present = i16::from(nullable);
    let [first, rest @ ..] = leaves else {
        return 1;
    };
    match cell {
        Cell::Null => first.levels(0, 0),
        Cell::Text(s) => {
            push_bytes(first, &s);
            first.levels(present, 0);
        }
        Cell::Int(n) | Cell::Timestamp(n) | Cell::Money(n) => {
            if let Values::I64(v) = &mut first.values {
                v.push(n);
            }
            first.levels(present, 0);
        }
        Cell::Bool(b) => {
            if let Values::Bool(v) = &mut first.values {
                v.push(b);
            }
            first.levels(present, 0);
        }
        Cell::Date(d) => {
            push_i32(first, days(d));
            first.levels(present, 0);
        }
        Cell::TextList(items) => {
            if items.is_empty() {
                first.levels(0, 0);
            }
            for (i, s) in items.iter().enumerate() {
                push_bytes(first, s);
                first.levels(1, i16::from(i > 0));
            }
        }
        Cell::Channels(items) => {
            let [since, url, ..] = rest else {
                return 3;
            };
            if items.is_empty() {
                for leaf in [&mut *first, &mut *since, &mut *url] {
                    leaf.levels(0, 0);
                }
            }
            for (i, c) in items.into_iter().enumerate() {
                let rep = i16::from(i > 0);
                push_bytes(first, &c.channel);
                first.levels(1, rep);
                push_i32(since, days(c.since));
                since.levels(1, rep);
                match c.url {
                    Some(u) => {
                        push_bytes(url, &u);
                        url.levels(2, rep);
                    }
                    None => url.levels(1, rep),
                }
            }
            return 3;
        }
    }
    1
}

/// A partition file being written.
pub(super) struct PartFile {
    kind: Kind,
    columns: Vec<Column>,
    leaves: Vec<Leaf>,
    /// Rows buffered for the next row group.
    pub(super) buffered: usize,
    /// Rows in the file, buffered ones included.
    pub(super) rows: u64,
    tmp: PathBuf,
    path: PathBuf,
    writer: Option<SerializedFileWriter<BufWriter<File>>>,
}

impl PartFile {
    /// Starts `path` (written as a hidden temporary beside it until finished).
    pub(super) fn create(
        kind: Kind,
        path: PathBuf,
        metadata: Vec<(String, String)>,
    ) -> Result<PartFile, ExportError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| ExportError::io(dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| ExportError::io(&tmp, e))?;
        let schema = Arc::new(parse_message_type(&message(kind))?);
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("lmsync {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(
                metadata
                    .into_iter()
                    .map(|(k, v)| KeyValue::new(k, v))
                    .collect(),
            ))
            .build();
        let writer = SerializedFileWriter::new(BufWriter::new(file), schema, Arc::new(properties))?;
        let columns = columns(kind);
        Ok(PartFile {
            kind,
            leaves: leaves_of(&columns),
            columns,
            buffered: 0,
            rows: 0,
            tmp,
            path,
            writer: Some(writer),
        })
    }

    /// Buffers one row of `columns(kind)`.
    pub(super) fn push(&mut self, cells: Vec<Cell>) -> Result<(), ExportError> {
        if cells.len() != self.columns.len() {
            return Err(ExportError::Schema {
                kind: self.kind,
                column: format!("{} cells for {} columns", cells.len(), self.columns.len()),
            });
        }
        for (c, cell) in self.columns.iter().zip(&cells) {
            if !cell.fits(c.ty, c.nullable) {
                return Err(ExportError::Schema {
                    kind: self.kind,
                    column: c.name.to_string(),
                });
            }
        }
        let mut leaf = 0;
        for (c, cell) in self.columns.iter().zip(cells) {
            leaf += put(&mut self.leaves[leaf..], c.nullable, cell);
        }
        self.buffered += 1;
        self.rows += 1;
        Ok(())
    }

    /// Writes the buffered rows as one row group.
    pub(super) fn flush(&mut self) -> Result<(), ExportError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        if self.buffered == 0 {
            return Ok(());
        }
        let mut group = writer.next_row_group()?;
        for leaf in &mut self.leaves {
            let Some(mut column) = group.next_column()? else {
                break;
            };
            let def = (leaf.max_def > 0).then_some(leaf.def.as_slice());
            let rep = (leaf.max_rep > 0).then_some(leaf.rep.as_slice());
            match (column.untyped(), &leaf.values) {
                (ColumnWriter::BoolColumnWriter(w), Values::Bool(v)) => w.write_batch(v, def, rep),
                (ColumnWriter::Int32ColumnWriter(w), Values::I32(v)) => w.write_batch(v, def, rep),
                (ColumnWriter::Int64ColumnWriter(w), Values::I64(v)) => w.write_batch(v, def, rep),
                (ColumnWriter::ByteArrayColumnWriter(w), Values::Bytes(v)) => {
                    w.write_batch(v, def, rep)
                }
                _ => {
                    return Err(ExportError::Schema {
                        kind: self.kind,
                        column: "a leaf of another physical type".into(),
                    });
                }
            }?;
            column.close()?;
            leaf.clear();
        }
        group.close()?;
        self.buffered = 0;
        Ok(())
    }

    /// Writes what is buffered, closes the file, fsyncs it and renames it into place.
    /// Returns the rows it holds.
    pub(super) fn finish(mut self) -> Result<u64, ExportError> {
        self.flush()?;
        let Some(writer) = self.writer.take() else {
            return Ok(self.rows);
        };
        let file = writer
            .into_inner()?
            .into_inner()
            .map_err(|e| ExportError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| ExportError::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| ExportError::io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| ExportError::io(dir, e))?;
        }
        Ok(self.rows)
    }
}

impl Drop for PartFile {
    /// An unfinished file leaves nothing behind.
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

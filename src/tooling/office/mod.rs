//! Office exports: a CSV file (UTF-8 or GB18030) or an Excel `.xlsx` sheet whose rows
//! become records through a mapping file (`lmsync import --mapping`).
//!
//! [`mapping`] parses the mapping file; [`text`] decodes a CSV file and [`xlsx`] reads a
//! sheet, both into [`Row`]s numbered as the office sees them (the CSV line, the sheet
//! row); [`columns`] finds the columns a mapping names in the header row; [`convert`]
//! reads one cell as a field's JSON (dates, numbers, value maps); [`mapper`] makes a
//! row's record JSON — the same JSON a JSON Lines import posts — or the list of what is
//! wrong with it, by column. Nothing here validates a record: the node does, at import
//! or in a dry run, and the CLI maps its rejections back to rows and columns.
//!
//! Bounds (hostile or simply wrong files): see the constants below. A file over a bound
//! is refused before any row is read; a cell or a row over one is that row's error.

pub mod columns;
pub mod convert;
pub mod mapper;
pub mod mapping;
pub mod text;
pub mod xlsx;

#[cfg(test)]
mod tests;

use std::path::Path;

use chrono::NaiveDate;

pub use mapper::{Mapper, RowError};
pub use mapping::Mapping;

/// Largest CSV file read, bytes. The file is decoded whole (GB18030 grows by about half
/// as UTF-8); its rows are then read one at a time.
pub const MAX_CSV_BYTES: u64 = 64 << 20;
/// Largest `.xlsx` file read, bytes.
pub const MAX_XLSX_BYTES: u64 = 16 << 20;
/// Most bytes an `.xlsx` file's parts may inflate to, together: measured by inflating
/// them before the workbook is opened, so a zip bomb is refused unread.
pub const MAX_XLSX_INFLATED: u64 = 128 << 20;
/// Most parts (zip entries) in an `.xlsx` file.
pub const MAX_XLSX_PARTS: usize = 10_000;
/// Most non-empty cells kept from one sheet (a sheet is read whole before its rows are
/// mapped).
pub const MAX_SHEET_CELLS: usize = 4_000_000;
/// Most rows of a sheet: Excel's own limit.
pub const MAX_ROWS: u64 = 1_048_576;
/// Columns read: a mapping names columns up to `AMJ`; cells to the right are ignored.
pub const MAX_COLUMNS: u32 = 1024;
/// Longest cell, in characters; a longer one is its row's error.
pub const MAX_CELL_CHARS: usize = 2000;
/// Longest CSV record, in bytes; a longer one is an error of its row.
pub const MAX_ROW_BYTES: usize = 256 << 10;
/// Largest mapping file, bytes.
pub const MAX_MAPPING_BYTES: u64 = 1 << 20;

/// Why a file (or its mapping) cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    /// The mapping file is wrong: the key path and what is wrong.
    #[error("{key}: {message}")]
    Mapping {
        /// Dotted key path, e.g. `fields.headcount.type`, or the file for read errors.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The data file cannot be read as rows.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl OfficeError {
    fn file(path: &Path, message: impl Into<String>) -> Self {
        OfficeError::File {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// One cell's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text (every CSV cell; a text cell of a sheet).
    Text(String),
    /// A whole number in a sheet.
    Int(i64),
    /// A number in a sheet.
    Float(f64),
    /// A sheet cell formatted as a date.
    Date(NaiveDate),
    /// A sheet's TRUE or FALSE.
    Bool(bool),
    /// A sheet's error value (`#N/A`, `#VALUE!` …).
    Error(String),
}

/// One row of a file: its non-empty cells by zero-based column, in column order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row's ordinal, as `source.header_row` and `first_row` count (the sheet row;
    /// for CSV the record).
    pub ordinal: u64,
    /// The number an office finds it by: the sheet row, or the CSV line it starts on.
    pub shown: u64,
    /// (column, cell), sorted by column; empty cells are absent.
    pub cells: Vec<(u32, Cell)>,
    /// For CSV: the fields the line has (a column past them is missing, not empty).
    pub width: Option<u32>,
    /// Why the row cannot be read (too long, bytes not in the encoding), and the column
    /// at fault when there is one.
    pub fault: Option<(Option<u32>, String)>,
}

impl Row {
    /// The cell in column `index`, if it is not empty.
    pub fn get(&self, index: u32) -> Option<&Cell> {
        self.cells
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .and_then(|at| self.cells.get(at))
            .map(|(_, c)| c)
    }

    /// True when no cell holds anything but white space.
    pub fn is_blank(&self) -> bool {
        self.cells
            .iter()
            .all(|(_, c)| matches!(c, Cell::Text(t) if t.trim().is_empty()))
    }
}

/// The kinds of office file read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma- (or otherwise) separated text.
    Csv,
    /// An Excel 2007+ workbook.
    Xlsx,
}

impl Format {
    /// The format of `path` by its extension (`.csv`, `.txt`, `.xlsx`), if it is one.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" | "tsv" => Some(Format::Csv),
            "xlsx" | "xlsm" => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// What the file calls a row: `line` for CSV, `row` for a sheet.
    pub fn unit(self) -> &'static str {
        match self {
            Format::Csv => "line",
            Format::Xlsx => "row",
        }
    }
}

/// The rows of an office file, in order.
pub enum Rows {
    /// A CSV file's records, read one at a time.
    Csv(text::CsvRows),
    /// A sheet's rows, read whole.
    Xlsx(std::vec::IntoIter<Row>),
}

impl Iterator for Rows {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        match self {
            Rows::Csv(r) => r.next(),
            Rows::Xlsx(r) => r.next(),
        }
    }
}

/// Opens `path` as `format` with the mapping's source settings. Refuses a file over its
/// bound, an xlsx that is no workbook or lacks the sheet, before any row is read.
pub fn open(path: &Path, format: Format, mapping: &Mapping) -> Result<Rows, OfficeError> {
    match format {
        Format::Csv => text::open(path, &mapping.source).map(Rows::Csv),
        Format::Xlsx => xlsx::read(path, &mapping.source).map(|rows| Rows::Xlsx(rows.into_iter())),
    }
}

//! Excel `.xlsx` sheets: the file's parts are inflated once to measure them (a zip bomb
//! is refused before calamine opens it), then the sheet's cells are read one at a time —
//! never calamine's dense range, which a single far cell (`XFD1048576`) would make
//! billions of cells wide — into sparse [`Row`]s numbered as the sheet shows them.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;

use calamine::{DataRef, Reader};

use super::convert::excel_date;
use super::mapping::Source;
use super::{
    Cell, MAX_COLUMNS, MAX_ROWS, MAX_SHEET_CELLS, MAX_XLSX_BYTES, MAX_XLSX_INFLATED,
    MAX_XLSX_PARTS, OfficeError, Row,
};

/// Reads the mapping's sheet of the workbook at `path`, whole.
pub fn read(path: &Path, source: &Source) -> Result<Vec<Row>, OfficeError> {
    let len = std::fs::metadata(path)
        .map_err(|e| OfficeError::file(path, format!("cannot read: {e}")))?
        .len();
    if len > MAX_XLSX_BYTES {
        return Err(OfficeError::file(
            path,
            format!(
                "{len} bytes; an .xlsx file is read up to {MAX_XLSX_BYTES} bytes (16 MiB): split it"
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| OfficeError::file(path, format!("cannot read: {e}")))?;
    read_bytes(path, bytes, source)
}

/// Reads the mapping's sheet of a workbook held in memory; `path` names it in errors.
pub fn read_bytes(path: &Path, bytes: Vec<u8>, source: &Source) -> Result<Vec<Row>, OfficeError> {
    inflated_size(&bytes).map_err(|m| OfficeError::file(path, m))?;
    let not_a_book = |e: calamine::XlsxError| {
        OfficeError::file(
            path,
            format!("not an .xlsx workbook Excel 2007 or later wrote: {e}"),
        )
    };
    let mut book = calamine::Xlsx::new(Cursor::new(bytes)).map_err(not_a_book)?;
    let names = book.sheet_names();
    let sheet = match &source.sheet {
        Some(wanted) => names
            .iter()
            .find(|n| n.trim() == wanted.trim())
            .cloned()
            .ok_or_else(|| {
                OfficeError::file(
                    path,
                    format!(
                        "no sheet {wanted:?} (source.sheet); the workbook has: {}",
                        names.join(", ")
                    ),
                )
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| OfficeError::file(path, "the workbook has no sheet"))?,
    };
    let is_1904 = book.has_1904_epoch();
    let mut cells = book
        .worksheet_cells_reader(&sheet)
        .map_err(|e| OfficeError::file(path, format!("sheet {sheet:?}: {e}")))?;
    let mut rows: BTreeMap<u32, Vec<(u32, Cell)>> = BTreeMap::new();
    let mut kept = 0usize;
    loop {
        let next = cells
            .next_cell()
            .map_err(|e| OfficeError::file(path, format!("sheet {sheet:?}: {e}")))?;
        let Some(cell) = next else { break };
        let (row, column) = cell.get_position();
        if column >= MAX_COLUMNS {
            continue;
        }
        if u64::from(row) >= MAX_ROWS {
            return Err(OfficeError::file(
                path,
                format!(
                    "sheet {sheet:?} has a cell in row {}; a sheet has at most {MAX_ROWS} rows",
                    u64::from(row) + 1
                ),
            ));
        }
        let Some(value) = cell_value(cell.get_value(), is_1904) else {
            continue;
        };
        kept += 1;
        if kept > MAX_SHEET_CELLS {
            return Err(OfficeError::file(
                path,
                format!("sheet {sheet:?} has more than {MAX_SHEET_CELLS} filled cells: split it"),
            ));
        }
        rows.entry(row).or_default().push((column, value));
    }
    Ok(rows
        .into_iter()
        .map(|(row, mut cells)| {
            // A well-formed sheet lists a row's cells once, left to right; keep the last
            // of any repeated one.
            cells.sort_by_key(|(c, _)| *c);
            cells.reverse();
            cells.dedup_by_key(|(c, _)| *c);
            cells.reverse();
            let number = u64::from(row) + 1;
            Row {
                ordinal: number,
                shown: number,
                cells,
                width: None,
                fault: None,
            }
        })
        .collect())
}

/// A sheet cell as a [`Cell`]; `None` for an empty one.
fn cell_value(value: &DataRef<'_>, is_1904: bool) -> Option<Cell> {
    Some(match value {
        DataRef::Empty => return None,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            Cell::Text(s.clone())
        }
        DataRef::SharedString(s) => Cell::Text((*s).to_string()),
        DataRef::Int(i) => Cell::Int(*i),
        DataRef::Float(f) => Cell::Float(*f),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(d) if d.is_datetime() => match excel_date(d.as_f64(), is_1904) {
            Some(date) => Cell::Date(date),
            None => Cell::Float(d.as_f64()),
        },
        DataRef::DateTime(d) => Cell::Float(d.as_f64()),
        DataRef::Error(e) => Cell::Error(e.to_string()),
    })
}

/// Inflates every part of the zip to count its bytes, refusing a file whose parts
/// inflate past [`MAX_XLSX_INFLATED`] together (stopping as soon as they do) or that has
/// more than [`MAX_XLSX_PARTS`] parts. Returns the inflated total.
pub fn inflated_size(bytes: &[u8]) -> Result<u64, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("not an .xlsx workbook (not a zip file: {e})"))?;
    if zip.len() > MAX_XLSX_PARTS {
        return Err(format!(
            "{} parts in the workbook; at most {MAX_XLSX_PARTS}",
            zip.len()
        ));
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let part = zip
            .by_index(i)
            .map_err(|e| format!("part {i} of the workbook cannot be read: {e}"))?;
        let room = MAX_XLSX_INFLATED - total;
        let read = std::io::copy(&mut part.take(room + 1), &mut std::io::sink())
            .map_err(|e| format!("part {i} of the workbook cannot be inflated: {e}"))?;
        total += read;
        if total > MAX_XLSX_INFLATED {
            return Err(format!(
                "the workbook inflates to more than {MAX_XLSX_INFLATED} bytes (128 MiB); \
                 refused unread"
            ));
        }
    }
    Ok(total)
}

//! CSV files as offices wrote them: the encoding (UTF-8, with or without a byte-order
//! mark, or GB18030 from a Chinese Windows), then the records one at a time as [`Row`]s
//! numbered by the line they start on.

use std::io::Cursor;
use std::path::Path;

use super::mapping::{Encoding, Source};
use super::{Cell, MAX_COLUMNS, MAX_CSV_BYTES, MAX_ROW_BYTES, OfficeError, Row};

/// Text decoded from a file's bytes.
#[derive(Debug)]
pub struct Decoded {
    /// The text, without its byte-order mark.
    pub text: String,
    /// The encoding read (`UTF-8`, `GB18030`, `UTF-16LE` …).
    pub encoding: &'static str,
    /// Some bytes were not valid in that encoding; they read as U+FFFD.
    pub malformed: bool,
}

/// Decodes `bytes`. A byte-order mark always wins (UTF-8, UTF-16); without one,
/// `auto` takes UTF-8 when the bytes are valid UTF-8 and GB18030 otherwise: a GB18030
/// text of any length is almost never valid UTF-8, while ASCII is both.
pub fn decode(bytes: &[u8], encoding: Encoding) -> Decoded {
    let (enc, body) = match encoding_rs::Encoding::for_bom(bytes) {
        Some((enc, bom)) => (enc, bytes.get(bom..).unwrap_or_default()),
        None => {
            let enc = match encoding {
                Encoding::Utf8 => encoding_rs::UTF_8,
                Encoding::Gb18030 => encoding_rs::GB18030,
                Encoding::Auto if std::str::from_utf8(bytes).is_ok() => encoding_rs::UTF_8,
                Encoding::Auto => encoding_rs::GB18030,
            };
            (enc, bytes)
        }
    };
    let (text, malformed) = enc.decode_without_bom_handling(body);
    Decoded {
        text: text.into_owned(),
        encoding: enc.name(),
        malformed,
    }
}

/// Opens a CSV file: reads it whole (at most [`MAX_CSV_BYTES`]) and decodes it.
pub fn open(path: &Path, source: &Source) -> Result<CsvRows, OfficeError> {
    let len = std::fs::metadata(path)
        .map_err(|e| OfficeError::file(path, format!("cannot read: {e}")))?
        .len();
    if len > MAX_CSV_BYTES {
        return Err(OfficeError::file(
            path,
            format!(
                "{len} bytes; a CSV file is read up to {MAX_CSV_BYTES} bytes (64 MiB): split it"
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| OfficeError::file(path, format!("cannot read: {e}")))?;
    Ok(CsvRows::new(
        decode(&bytes, source.encoding),
        source.delimiter,
    ))
}

/// The records of a decoded CSV text, as rows.
pub struct CsvRows {
    reader: csv::Reader<Cursor<Vec<u8>>>,
    record: csv::ByteRecord,
    ordinal: u64,
    encoding: &'static str,
    malformed: bool,
    done: bool,
}

impl CsvRows {
    /// Rows of `decoded`, fields separated by `delimiter`.
    pub fn new(decoded: Decoded, delimiter: u8) -> Self {
        // Line ends as `\n` only: the CSV reader ends a record at a `\r` and counts the
        // line at its `\n`, which would number every line after the first of a Windows
        // file one too low.
        let text = if decoded.text.contains('\r') {
            decoded.text.replace("\r\n", "\n").replace('\r', "\n")
        } else {
            decoded.text
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(Cursor::new(text.into_bytes()));
        CsvRows {
            reader,
            record: csv::ByteRecord::new(),
            ordinal: 0,
            encoding: decoded.encoding,
            malformed: decoded.malformed,
            done: false,
        }
    }

    /// The encoding the text was read in.
    pub fn encoding(&self) -> &'static str {
        self.encoding
    }

    fn row(&self, line: u64) -> Row {
        let record = &self.record;
        let mut row = Row {
            ordinal: self.ordinal,
            shown: line,
            cells: Vec::new(),
            width: Some(u32::try_from(record.len()).unwrap_or(u32::MAX)),
            fault: None,
        };
        if record.as_slice().len() > MAX_ROW_BYTES {
            row.fault = Some((
                None,
                format!(
                    "the line holds {} bytes; a row is at most {MAX_ROW_BYTES}",
                    record.as_slice().len()
                ),
            ));
            return row;
        }
        for (i, field) in record.iter().enumerate() {
            let Ok(index) = u32::try_from(i) else { break };
            if index >= MAX_COLUMNS {
                break;
            }
            if field.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(field).into_owned();
            if self.malformed && text.contains('\u{FFFD}') && row.fault.is_none() {
                row.fault = Some((
                    Some(index),
                    format!(
                        "bytes that are not {} (shown as \u{FFFD}); set source.encoding or \
                         save the file again",
                        self.encoding
                    ),
                ));
            }
            row.cells.push((index, Cell::Text(text)));
        }
        row
    }
}

impl Iterator for CsvRows {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {
                self.ordinal += 1;
                let line = self.record.position().map_or(0, csv::Position::line);
                Some(self.row(line))
            }
            Ok(false) => None,
            Err(e) => {
                // Reading from memory, with ragged lines allowed, leaves no error to meet;
                // should one come, it is the last row and says why.
                self.done = true;
                self.ordinal += 1;
                let line = e.position().map_or(0, csv::Position::line);
                Some(Row {
                    ordinal: self.ordinal,
                    shown: line,
                    cells: Vec::new(),
                    width: Some(0),
                    fault: Some((
                        None,
                        format!("unreadable CSV: {e}; the rows after it are not read"),
                    )),
                })
            }
        }
    }
}

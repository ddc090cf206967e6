//! Columns as a mapping names them (a header name, a letter, a 1-based index), id
//! templates over columns (`"V-{登记编号}"`), and resolving both against a header row.

use std::fmt;

use super::MAX_COLUMNS;

/// A column as the mapping file names it, before the header is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRef {
    /// `column = "人数"` or `column = "F"`: a header name, else a column letter.
    Named(String),
    /// `index = 6`: the sixth column (zero-based here).
    Index(u32),
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnRef::Named(n) => write!(f, "{n:?}"),
            ColumnRef::Index(i) => write!(f, "column {}", i + 1),
        }
    }
}

/// A column of the file, found: its zero-based index and, when the file has a header,
/// the name written there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Zero-based index.
    pub index: u32,
    /// The header cell's text, if any.
    pub header: Option<String>,
}

impl fmt::Display for Column {
    /// `F 人数`, or `F` without a header: how an office finds the column in its sheet.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&letters(self.index))?;
        match &self.header {
            Some(h) if !h.is_empty() => write!(f, " {h}"),
            _ => Ok(()),
        }
    }
}

/// The spreadsheet letters of a zero-based column index: 0 → `A`, 25 → `Z`, 26 → `AA`.
pub fn letters(index: u32) -> String {
    let mut n = u64::from(index) + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(b'A' + u8::try_from(rem).unwrap_or(0));
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The zero-based index of column letters (`A`, `iv`, `AB`), if `text` is letters only and
/// names a column below [`MAX_COLUMNS`].
pub fn from_letters(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let n = text.bytes().fold(0u32, |n, b| {
        n * 26 + u32::from(b.to_ascii_uppercase() - b'A') + 1
    });
    (n <= MAX_COLUMNS).then(|| n - 1)
}

/// A header text or a name in a mapping, compared without any white space: forms wrote
/// `月 工 资` and wrapped `月工资\n(元)` within a cell.
pub fn normalise_header(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text taken as written.
    Literal(String),
    /// A column's cell text.
    Column(ColumnRef),
}

/// A text built from literal parts and column cells: `"V-{登记编号}"`, `"{B}-{C}"`.
/// `{{` and `}}` stand for braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The parts in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Parses a template; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(format!(
                                    "{text:?}: a `{{` without its `}}` (write `{{{{` for a brace)"
                                ));
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    let name = name.trim();
                    if name.is_empty() {
                        return Err(format!("{text:?}: an empty `{{}}` names no column"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Column(ColumnRef::Named(name.to_string())));
                }
                '}' => {
                    return Err(format!(
                        "{text:?}: a `}}` without its `{{` (write `}}}}` for a brace)"
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if parts.is_empty() {
            return Err("the template is empty".into());
        }
        Ok(Template { parts })
    }

    /// The columns the template reads.
    pub fn columns(&self) -> impl Iterator<Item = &ColumnRef> {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(c) => Some(c),
            Part::Literal(_) => None,
        })
    }
}

/// The header row's names, to find the columns a mapping names.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// (zero-based index, text as written) of every non-empty header cell.
    pub names: Vec<(u32, String)>,
    /// The header's row number, for messages; `None` when the file has no header row.
    pub row: Option<u64>,
}

impl Header {
    /// The column `r` names. A name is looked up in the header first (white space
    /// ignored); only if no header cell has it is it read as column letters.
    pub fn find(&self, r: &ColumnRef) -> Result<Column, String> {
        match r {
            ColumnRef::Index(i) => {
                if *i >= MAX_COLUMNS {
                    return Err(format!(
                        "index {} is past the last column read, {MAX_COLUMNS}",
                        i + 1
                    ));
                }
                Ok(self.column(*i))
            }
            ColumnRef::Named(name) => {
                let wanted = normalise_header(name);
                let hits: Vec<u32> = self
                    .names
                    .iter()
                    .filter(|(_, h)| normalise_header(h) == wanted)
                    .map(|(i, _)| *i)
                    .collect();
                match hits.as_slice() {
                    [one] => Ok(self.column(*one)),
                    [first, second, ..] => Err(format!(
                        "two columns are headed {name:?} ({} and {}); name the one meant by its letter",
                        letters(*first),
                        letters(*second)
                    )),
                    [] => from_letters(name)
                        .map(|i| self.column(i))
                        .ok_or_else(|| self.not_found(name)),
                }
            }
        }
    }

    fn column(&self, index: u32) -> Column {
        Column {
            index,
            header: self
                .names
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, h)| h.trim().to_string()),
        }
    }

    fn not_found(&self, name: &str) -> String {
        match self.row {
            None => format!(
                "no column {name:?}: the file has no header row (source.header_row = 0), so \
                 columns are named by letter (\"F\") or index"
            ),
            Some(row) => {
                let found: Vec<&str> = self.names.iter().map(|(_, h)| h.trim()).collect();
                format!(
                    "no column headed {name:?} in header row {row}; it has: {}",
                    if found.is_empty() {
                        "nothing".to_string()
                    } else {
                        found.join(", ")
                    }
                )
            }
        }
    }
}

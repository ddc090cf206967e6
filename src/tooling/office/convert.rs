//! One cell as one field's JSON: value maps first, then the field's type — text, whole
//! numbers (and ranges such as `600-800`), yuan as fen, dates in the office's formats or
//! as Excel serial days, years, yes/no, lists. Full-width digits (`１９９９`) read as
//! digits. A problem is a [`Problem`] naming what is wrong; the mapper adds the column.

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::mapping::{DateFormat, Field, FieldType, RangeEnd};
use super::{Cell, MAX_CELL_CHARS};

/// What is wrong with one cell, before the column is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A short snake_case code (`bad_date`, `unmapped_value` …).
    pub error: &'static str,
    /// A sentence for the office.
    pub message: String,
}

fn problem(error: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        error,
        message: message.into(),
    }
}

/// The integer `f` holds exactly, if it is a whole number that an f64 keeps exactly.
#[allow(clippy::cast_possible_truncation)] // checked: whole and within ±2^53
fn whole(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64)
}

/// The date of an Excel serial day number: the 1900 system counts 1900-01-01 as 1 and
/// keeps Lotus's 1900-02-29 (60), which does not exist; the 1904 system counts from
/// 1904-01-01 as 0. A time of day (the fraction) is dropped.
pub fn excel_date(serial: f64, is_1904: bool) -> Option<NaiveDate> {
    if !serial.is_finite() || !(0.0..3_000_000.0).contains(&serial) {
        return None;
    }
    let days = whole(serial.floor())?;
    let (epoch, days) = if is_1904 {
        (NaiveDate::from_ymd_opt(1904, 1, 1)?, days)
    } else if days >= 61 {
        (NaiveDate::from_ymd_opt(1899, 12, 30)?, days)
    } else if (1..60).contains(&days) {
        (NaiveDate::from_ymd_opt(1899, 12, 31)?, days)
    } else {
        return None;
    };
    epoch.checked_add_days(chrono::Days::new(u64::try_from(days).ok()?))
}

/// Full-width digits and signs as ASCII (`１２００．５` → `1200.5`), trimmed.
pub fn halfwidth(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => {
                char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')).unwrap_or(c)
            }
            '．' => '.',
            '－' => '-',
            '／' => '/',
            '，' => ',',
            '：' => ':',
            c => c,
        })
        .collect()
}

/// A cell as text: what a template or a value map reads, and what a text field becomes.
pub fn cell_text(cell: &Cell) -> Result<String, Problem> {
    match cell {
        Cell::Text(t) => {
            let n = t.chars().count();
            if n > MAX_CELL_CHARS {
                return Err(problem(
                    "too_long",
                    format!("{n} characters; a cell is read up to {MAX_CELL_CHARS}"),
                ));
            }
            Ok(t.trim().to_string())
        }
        Cell::Int(i) => Ok(i.to_string()),
        Cell::Float(f) if f.abs() >= 1e15 => Err(problem(
            "number_precision",
            format!(
                "the cell holds the number {f:e}, which Excel keeps to 15 digits only; format \
                 the column as text and enter the value again"
            ),
        )),
        Cell::Float(f) => Ok(whole(*f).map_or_else(|| f.to_string(), |i| i.to_string())),
        Cell::Date(d) => Ok(d.format("%Y-%m-%d").to_string()),
        Cell::Bool(b) => Ok(b.to_string()),
        Cell::Error(e) => Err(problem(
            "cell_error",
            format!("the cell holds the error {e}"),
        )),
    }
}

/// The JSON of `field` from `cell` (`None`: an empty cell). `Ok(None)` leaves the field
/// out of the record.
pub fn value(field: &Field, cell: Option<&Cell>) -> Result<Option<Value>, Problem> {
    let empty = || Ok(field.default.clone());
    let Some(cell) = cell else { return empty() };
    let text = cell_text(cell)?;
    if text.is_empty() {
        return empty();
    }
    if field.ty == FieldType::List {
        return list(field, &text);
    }
    if let Some(values) = &field.values {
        match values.get(&text) {
            Some(Value::String(s)) if s.is_empty() => return empty(),
            Some(v) => return Ok(Some(v.clone())),
            None if field.keep_unmapped => {}
            None => return Err(unmapped(field, &text)),
        }
    }
    let v = match field.ty {
        FieldType::Text => Value::String(text),
        FieldType::Integer => Value::from(integer(cell, &text, field.range)?),
        FieldType::Fen => Value::from(fen(cell, &text)?),
        FieldType::Date => Value::String(
            date(cell, &text, &field.formats)?
                .format("%Y-%m-%d")
                .to_string(),
        ),
        FieldType::Year => Value::from(year(cell, &text, &field.formats)?),
        FieldType::Bool => Value::Bool(boolean(cell, &text)?),
        FieldType::List => return list(field, &text),
    };
    Ok(Some(v))
}

fn unmapped(field: &Field, text: &str) -> Problem {
    let known: Vec<&str> = field
        .values
        .iter()
        .flat_map(|v| v.keys())
        .map(String::as_str)
        .take(12)
        .collect();
    problem(
        "unmapped_value",
        format!(
            "{text:?} is not in {} (it has {}{})",
            field.values_from,
            known.join(", "),
            if field.values.as_ref().is_some_and(|v| v.len() > known.len()) {
                " …"
            } else {
                ""
            }
        ),
    )
}

fn list(field: &Field, text: &str) -> Result<Option<Value>, Problem> {
    let mut items = vec![text.to_string()];
    for sep in &field.separators {
        items = items
            .iter()
            .flat_map(|i| i.split(sep.as_str()).map(str::to_string))
            .collect();
    }
    let mut out = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        match field.values.as_ref().map(|v| v.get(item)) {
            Some(Some(Value::String(s))) if s.is_empty() => {}
            Some(Some(v)) => out.push(v.clone()),
            Some(None) if !field.keep_unmapped => return Err(unmapped(field, item)),
            _ => out.push(Value::String(item.to_string())),
        }
    }
    if out.is_empty() {
        return Ok(field.default.clone());
    }
    Ok(Some(Value::Array(out)))
}

fn integer(cell: &Cell, text: &str, range: Option<RangeEnd>) -> Result<i64, Problem> {
    let not = || problem("not_a_number", format!("{text:?} is not a whole number"));
    match cell {
        Cell::Int(i) => return Ok(*i),
        Cell::Float(f) => return whole(*f).ok_or_else(not),
        _ => {}
    }
    let plain = halfwidth(text).replace(',', "");
    let part = match range {
        None => plain.as_str(),
        Some(end) => {
            let pieces: Vec<&str> = plain
                .split(['-', '~', '～', '—', '至', '到'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            let pick = match end {
                RangeEnd::Low => pieces.first(),
                RangeEnd::High => pieces.last(),
            };
            pick.copied().unwrap_or("")
        }
    };
    part.parse::<i64>().map_err(|_| not())
}

/// Yuan (`1,234.5`) as fen (`123450`), exactly.
fn fen(cell: &Cell, text: &str) -> Result<i64, Problem> {
    let bad = || {
        problem(
            "not_an_amount",
            format!("{text:?} is not an amount in yuan such as 1234.50"),
        )
    };
    match cell {
        Cell::Int(i) => return i.checked_mul(100).ok_or_else(bad),
        Cell::Float(f) => {
            let cents = (f * 100.0).round();
            if ((f * 100.0) - cents).abs() > 1e-6 {
                return Err(bad());
            }
            return whole(cents).ok_or_else(bad);
        }
        _ => {}
    }
    let plain = halfwidth(text).replace(',', "");
    let (negative, digits) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain.as_str()),
    };
    let (yuan, cents) = digits.split_once('.').unwrap_or((digits, ""));
    if yuan.is_empty()
        || cents.len() > 2
        || !yuan.bytes().all(|b| b.is_ascii_digit())
        || !cents.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let yuan: i64 = yuan.parse().map_err(|_| bad())?;
    let cents: i64 = format!("{cents:0<2}").parse().map_err(|_| bad())?;
    let fen = yuan
        .checked_mul(100)
        .and_then(|y| y.checked_add(cents))
        .ok_or_else(bad)?;
    Ok(if negative { -fen } else { fen })
}

/// A date: a date cell as it is; text (or a number such as 19990914) by the formats in
/// order; a number or digits as an Excel serial day when the formats include `excel`.
pub fn date(cell: &Cell, text: &str, formats: &[DateFormat]) -> Result<NaiveDate, Problem> {
    if let Cell::Date(d) = cell {
        return Ok(*d);
    }
    let plain = halfwidth(text);
    for format in formats {
        let found = match format {
            DateFormat::Pattern(p) => pattern(&plain, p),
            DateFormat::ExcelSerial => match cell {
                Cell::Int(_) | Cell::Float(_) | Cell::Text(_) => plain
                    .parse::<f64>()
                    .ok()
                    .filter(|_| plain.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                    .and_then(|s| excel_date(s, false)),
                _ => None,
            },
        };
        if let Some(d) = found {
            return Ok(d);
        }
    }
    let tried: Vec<&str> = formats
        .iter()
        .map(|f| match f {
            DateFormat::Pattern(p) => p.as_str(),
            DateFormat::ExcelSerial => "excel",
        })
        .collect();
    Err(problem(
        "bad_date",
        format!(
            "{text:?} is not a date in any of the formats {}",
            tried.join(", ")
        ),
    ))
}

/// `text` read by one pattern; a time of day after the date is allowed.
fn pattern(text: &str, pattern: &str) -> Option<NaiveDate> {
    let (date, rest) = NaiveDate::parse_and_remainder(text, pattern).ok()?;
    let rest = rest.trim_start_matches([' ', 'T']);
    (rest.is_empty()
        || rest
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b':' || b == b'.'))
    .then_some(date)
}

fn year(cell: &Cell, text: &str, formats: &[DateFormat]) -> Result<i64, Problem> {
    let plain = halfwidth(text);
    let bare = plain.strip_suffix('年').unwrap_or(&plain);
    if bare.len() == 4 && bare.bytes().all(|b| b.is_ascii_digit()) {
        return bare
            .parse()
            .map_err(|_| problem("bad_date", format!("{text:?} is not a year")));
    }
    date(cell, text, formats).map(|d| i64::from(d.year()))
}

fn boolean(cell: &Cell, text: &str) -> Result<bool, Problem> {
    if let Cell::Bool(b) = cell {
        return Ok(*b);
    }
    match halfwidth(text).to_lowercase().as_str() {
        "是" | "有" | "true" | "1" | "y" | "yes" | "√" | "✓" => Ok(true),
        "否" | "无" | "false" | "0" | "n" | "no" | "×" | "✗" => Ok(false),
        _ => Err(problem(
            "not_yes_or_no",
            format!("{text:?} is neither yes (是, 1, true) nor no (否, 0, false)"),
        )),
    }
}

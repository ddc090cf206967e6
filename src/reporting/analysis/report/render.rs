//! Plain-text, CSV and JSON renderings of a [`PublishedReport`].
//!
//! CSV layout (stable, one section per table, sections separated by an empty line):
//!
//! ```text
//! report,scope,scope_label,period,count_basis,suppress_below,cities
//! report,440000,440000 广东省,2024Q3,valid_in_period,5,3
//!
//! table,table_1,总体供求状况,Overall supply and demand
//! key,label_zh,label_en,demand,seekers,ratio
//! carried_over,上期结转,Carried over,120,80,1.5
//! ```
//!
//! A withheld cell is written [`WITHHELD`], an empty one as nothing; JSON writes them
//! as `{"suppressed": true}` and `null`. The marker names no bound: a complementary
//! cell can be any size, and a bound would help work withheld counts out.

use std::fmt::Write;

use super::publish::{Cell, PublishedReport, PublishedTable};

/// How CSV, the text table and HTML write a withheld cell ([`Cell::Suppressed`]).
pub const WITHHELD: &str = "x";

/// The text of a cell as CSV and the text table write it (`empty` for [`Cell::Empty`]).
pub(super) fn cell_text(c: Cell, empty: &str) -> String {
    match c {
        Cell::Count(n) => n.to_string(),
        Cell::Number(x) => x.to_string(),
        Cell::Suppressed => WITHHELD.to_string(),
        Cell::Empty => empty.to_string(),
    }
}

/// One CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    let line: Vec<String> = fields.into_iter().map(|f| csv_field(&f)).collect();
    out.push_str(&line.join(","));
    out.push('\n');
}

fn csv_table(out: &mut String, t: &PublishedTable) {
    let en = |l: &Option<String>| l.clone().unwrap_or_default();
    out.push('\n');
    csv_line(
        out,
        [
            "table".into(),
            t.id.clone(),
            t.title.zh.clone(),
            en(&t.title.en),
        ],
    );
    let header = ["key", "label_zh", "label_en"]
        .into_iter()
        .chain(t.columns.iter().map(|c| c.key.as_str()));
    csv_line(out, header.map(String::from));
    for r in &t.rows {
        let head = [r.key.clone(), r.label.zh.clone(), en(&r.label.en)];
        let cells = r.cells.iter().map(|c| cell_text(*c, ""));
        csv_line(out, head.into_iter().chain(cells));
    }
}

/// The report as CSV (UTF-8, `\n` line ends).
pub fn render_csv(report: &PublishedReport) -> String {
    let mut out = String::new();
    let head = [
        "report",
        "scope",
        "scope_label",
        "period",
        "count_basis",
        "suppress_below",
        "cities",
    ];
    csv_line(&mut out, head.map(String::from));
    let basis = report.count_basis.as_str().to_string();
    csv_line(
        &mut out,
        [
            "report".to_string(),
            report.scope.clone(),
            report.scope_label.clone(),
            report.period.clone(),
            basis,
            report.suppress_below.to_string(),
            report.cities.to_string(),
        ],
    );
    for t in &report.tables {
        csv_table(&mut out, t);
    }
    out
}

/// The report as pretty-printed JSON.
pub fn render_json(report: &PublishedReport) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// Display width: East Asian wide characters take two columns.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

fn pad(s: &str, w: usize, right: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(width(s)));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

fn text_table(out: &mut String, t: &PublishedTable) {
    let en = t.title.en.as_deref().unwrap_or("");
    let _ = writeln!(out, "\n{} {} / {en}", t.id, t.title.zh);
    let mut grid: Vec<Vec<String>> = vec![
        ["key".to_string(), "名称".to_string()]
            .into_iter()
            .chain(t.columns.iter().map(|c| c.label.zh.clone()))
            .collect(),
    ];
    for r in &t.rows {
        let cells = r.cells.iter().map(|c| cell_text(*c, "-"));
        grid.push(
            [r.key.clone(), r.label.zh.clone()]
                .into_iter()
                .chain(cells)
                .collect(),
        );
    }
    let cols = grid.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            grid.iter()
                .filter_map(|r| r.get(i))
                .map(|s| width(s))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &grid {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (s, w))| pad(s, *w, i >= 2))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
}

/// The report as aligned plain-text tables.
pub fn render_text(report: &PublishedReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "职业供求状况分析报告 / Supply and demand report — {} {}",
        report.scope_label, report.period
    );
    let _ = writeln!(
        out,
        "count basis: {}; cities: {}; counts below {} withheld ({WITHHELD}), \
         with the cells that would give them away",
        report.count_basis.as_str(),
        report.cities,
        report.suppress_below
    );
    for t in &report.tables {
        text_table(&mut out, t);
    }
    for n in &report.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

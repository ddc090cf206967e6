//! A self-contained HTML rendering of a [`PublishedReport`]: inline style, every table,
//! and an inline SVG bar chart of the demand/supply ratio by occupation major group. All
//! text is escaped; nothing is loaded from elsewhere.

use std::fmt::Write;

use super::labels::Label;
use super::publish::{Cell, PublishedReport, PublishedTable};
use super::render::cell_text;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0 0 1.5em}\
th,td{border:1px solid #ccc;padding:.25em .6em}td.n{text-align:right}\
caption{text-align:left;font-weight:bold;padding:.3em 0}.en{color:#666;font-size:.85em}";

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn label_html(l: &Label) -> String {
    match &l.en {
        Some(en) => format!("{} <span class=\"en\">{}</span>", escape(&l.zh), escape(en)),
        None => escape(&l.zh),
    }
}

fn table_html(out: &mut String, t: &PublishedTable, below: u64) {
    let _ = write!(
        out,
        "<table id=\"{}\"><caption>{}</caption><thead><tr><th>{}</th>",
        escape(t.id),
        label_html(&t.title),
        label_html(&Label::new("项目", "Item"))
    );
    for c in &t.columns {
        let _ = write!(out, "<th>{}</th>", label_html(&c.label));
    }
    out.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        let _ = write!(out, "<tr><td>{}</td>", label_html(&r.label));
        for c in &r.cells {
            let _ = write!(
                out,
                "<td class=\"n\">{}</td>",
                escape(&cell_text(*c, below, "–"))
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

/// The inline SVG bar chart of table 5's ratio column, one bar per major group.
fn ratio_chart(t: &PublishedTable, below: u64) -> String {
    let Some(ratio_col) = t.columns.iter().position(|c| c.key == "ratio") else {
        return String::new();
    };
    let bars: Vec<(&Label, Cell)> = t
        .rows
        .iter()
        .filter(|r| r.key != "total" && r.key != "no_preference")
        .map(|r| {
            (
                &r.label,
                r.cells.get(ratio_col).copied().unwrap_or(Cell::Empty),
            )
        })
        .collect();
    let max = bars
        .iter()
        .filter_map(|(_, c)| match c {
            Cell::Number(x) => Some(*x),
            _ => None,
        })
        .fold(0.0_f64, f64::max);
    let (row_h, left, span) = (22.0, 260.0, 320.0);
    let height = row_h * bars.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"680\" height=\"{height:.0}\" role=\"img\" aria-label=\"demand/supply ratio by occupation major group\">"
    );
    for (i, (label, cell)) in bars.iter().enumerate() {
        let y = 10.0 + row_h * i as f64;
        let name: String = label.zh.chars().take(16).collect();
        let _ = write!(
            svg,
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{}</text>",
            left - 6.0,
            y + 14.0,
            escape(&name)
        );
        if let (Cell::Number(x), true) = (cell, max > 0.0) {
            let w = span * x / max;
            let _ = write!(
                svg,
                "<rect x=\"{left:.0}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.0}\" fill=\"#4a7ab0\"/>",
                row_h - 6.0
            );
        }
        let text = escape(&cell_text(*cell, below, "n/a"));
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{text}</text>",
            left + span + 8.0,
            y + 14.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The report as one self-contained HTML page.
pub fn render_html(report: &PublishedReport) -> String {
    let title = format!(
        "职业供求状况分析报告 {} {}",
        report.scope_label, report.period
    );
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let basis = report.count_basis.as_str().to_string();
    let _ = writeln!(
        out,
        "<p>Supply and demand report · count basis {} · {} cities · counts below {} suppressed</p>",
        escape(&basis),
        report.cities,
        report.suppress_below
    );
    for t in &report.tables {
        table_html(&mut out, t, report.suppress_below);
        if t.id == "table_5" {
            let _ = writeln!(
                out,
                "<figure>{}<figcaption>求人倍率 / Demand/supply ratio by occupation major group</figcaption></figure>",
                ratio_chart(t, report.suppress_below)
            );
        }
    }
    if !report.notes.is_empty() {
        out.push_str("<ul>");
        for n in &report.notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body></html>\n");
    out
}

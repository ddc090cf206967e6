//! A self-contained HTML rendering of a [`PublishedReport`]: inline style, every table,
//! an inline SVG bar chart of the demand/supply ratio by occupation major group, and
//! optionally a target-status table the caller supplies as plain text. Written as maud
//! templates, which escape every spliced value; nothing is loaded from elsewhere.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::labels::Label;
use super::publish::{Cell, PublishedReport, PublishedTable};
use super::render::{WITHHELD, cell_text};

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0 0 1.5em}\
th,td{border:1px solid #ccc;padding:.25em .6em}td.n{text-align:right}\
caption{text-align:left;font-weight:bold;padding:.3em 0}.en{color:#666;font-size:.85em}";

// Chart geometry, in SVG user units: one bar row's height, the bars' left edge (labels
// are right-aligned against it) and the length of the longest bar.
const ROW_H: f64 = 22.0;
const BARS_LEFT: f64 = 260.0;
const BARS_SPAN: f64 = 320.0;

/// The pilot target status of the report's scope, shown as a table after the report.
/// Cells are plain text; the renderer escapes them.
#[derive(Debug, Clone, Copy)]
pub struct TargetStatus<'a> {
    /// Column headings.
    pub head: &'a [&'a str],
    /// One row of cells per metric value, in the order of `head`.
    pub rows: &'a [Vec<String>],
}

/// `x` with `places` decimals, for SVG coordinates.
fn fixed(x: f64, places: usize) -> String {
    format!("{x:.places$}")
}

fn label(l: &Label) -> Markup {
    html! {
        (l.zh)
        @if let Some(en) = &l.en {
            " " span.en { (en) }
        }
    }
}

fn table(t: &PublishedTable) -> Markup {
    html! {
        table id=(t.id) {
            caption { (label(&t.title)) }
            thead {
                tr {
                    th { (label(&Label::new("项目", "Item"))) }
                    @for c in &t.columns { th { (label(&c.label)) } }
                }
            }
            tbody {
                @for r in &t.rows {
                    tr {
                        td { (label(&r.label)) }
                        @for c in &r.cells { td.n { (cell_text(*c, "–")) } }
                    }
                }
            }
        }
    }
}

/// The bars of the chart: each major group's label and ratio cell (totals left out).
fn ratio_bars(t: &PublishedTable) -> Option<Vec<(&Label, Cell)>> {
    let ratio_col = t.columns.iter().position(|c| c.key == "ratio")?;
    let bars = t
        .rows
        .iter()
        .filter(|r| r.key != "total" && r.key != "no_preference")
        .map(|r| {
            let cell = r.cells.get(ratio_col).copied().unwrap_or(Cell::Empty);
            (&r.label, cell)
        })
        .collect();
    Some(bars)
}

/// One row of the chart: the group's name, its bar (when it has a ratio) and the value.
fn ratio_bar(row: usize, name: &Label, cell: Cell, max: f64) -> Markup {
    let y = 10.0 + ROW_H * row as f64;
    // The chart leaves room for 16 characters of the Chinese name.
    let short: String = name.zh.chars().take(16).collect();
    let width = match (cell, max > 0.0) {
        (Cell::Number(x), true) => Some(BARS_SPAN * x / max),
        _ => None,
    };
    html! {
        text x=(fixed(BARS_LEFT - 6.0, 0)) y=(fixed(y + 14.0, 1)) text-anchor="end" font-size="12" {
            (short)
        }
        @if let Some(w) = width {
            // An explicit end tag: inside SVG a bare `<rect>` would swallow what follows.
            rect x=(fixed(BARS_LEFT, 0)) y=(fixed(y, 1)) width=(fixed(w, 1))
                height=(fixed(ROW_H - 6.0, 0)) fill="#4a7ab0" {}
        }
        text x=(fixed(BARS_LEFT + BARS_SPAN + 8.0, 1)) y=(fixed(y + 14.0, 1)) font-size="12" {
            (cell_text(cell, "n/a"))
        }
    }
}

/// The inline SVG bar chart of table 5's ratio column, one bar per major group.
fn ratio_chart(t: &PublishedTable) -> Markup {
    let Some(bars) = ratio_bars(t) else {
        return html! {};
    };
    let max = bars
        .iter()
        .filter_map(|(_, c)| match c {
            Cell::Number(x) => Some(*x),
            _ => None,
        })
        .fold(0.0_f64, f64::max);
    let height = ROW_H * bars.len() as f64 + 30.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width="680" height=(fixed(height, 0)) role="img"
            aria-label="demand/supply ratio by occupation major group" {
            @for (i, (name, cell)) in bars.iter().enumerate() {
                (ratio_bar(i, name, *cell, max))
            }
        }
    }
}

fn target_status(status: &TargetStatus<'_>) -> Markup {
    html! {
        section {
            h2 { "Target status" }
            table {
                thead { tr { @for h in status.head { th { (h) } } } }
                tbody {
                    @for row in status.rows {
                        tr { @for c in row { td { (c) } } }
                    }
                }
            }
        }
    }
}

/// The report as one self-contained HTML page.
pub fn render_html(report: &PublishedReport) -> String {
    render_html_with_status(report, None)
}

/// The report as one self-contained HTML page, with the target status (when given) as a
/// last section.
pub fn render_html_with_status(report: &PublishedReport, status: Option<&TargetStatus>) -> String {
    let heading = format!(
        "职业供求状况分析报告 {} {}",
        report.scope_label, report.period
    );
    let below = report.suppress_below;
    let page = html! {
        (DOCTYPE)
        html lang="zh" {
            head {
                meta charset="utf-8";
                title { (heading) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (heading) }
                p {
                    "Supply and demand report · count basis " (report.count_basis.as_str())
                    " · " (report.cities) " cities · counts below " (below) " withheld ("
                    (WITHHELD) "), with the cells that would give them away"
                }
                @for t in &report.tables {
                    (table(t))
                    @if t.id == "table_5" {
                        figure {
                            (ratio_chart(t))
                            figcaption { "求人倍率 / Demand/supply ratio by occupation major group" }
                        }
                    }
                }
                @if !report.notes.is_empty() {
                    ul { @for n in &report.notes { li { (n) } } }
                }
                @if let Some(status) = status {
                    (target_status(status))
                }
            }
        }
    };
    // Ends in a newline like the other renderings, so it prints cleanly.
    page.into_string() + "\n"
}

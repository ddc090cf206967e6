//! `lmsync report`: the quarterly supply/demand report and the pilot target status of a
//! scope, fetched from a running node and printed as a table, JSON, CSV or HTML; with
//! `--submit`, a city submits its report for an ended quarter as a signed record.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::http;
use crate::node::config::Config;
use crate::reporting::analysis::PublishedReport;
use crate::reporting::analysis::report::{TargetStatus, csv_field, render_html_with_status};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Plain-text tables.
    Table,
    /// One JSON document: `{"report", "target_status"}`.
    Json,
    /// CSV sections: the report's tables, then the target status.
    Csv,
    /// A self-contained HTML page with a chart of the ratio by occupation group.
    Html,
}

impl Format {
    /// The format asked of the node. HTML is rendered here, from the report's JSON, so the
    /// target status goes into the page as a section of its own.
    fn fetched_as(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json | Format::Html => "json",
            Format::Csv => "csv",
        }
    }
}

/// The quarterly supply/demand report and the pilot target status for a scope.
///
/// With `--submit` (a city, for a quarter that has ended) the node freezes its report
/// into a signed `supply_demand_report` record that replicates to the province and the
/// ministry; submitting again makes a new version.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lmsync report --config 100000.toml --period 1999Q4\n  lmsync report --config 440000.toml --period 1999Q4 --scope 440100 --format csv > 440100-1999Q4.csv\n  lmsync report --config 440100.toml --period 1999Q4 --submit"
)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    config: super::ConfigArg,
    /// The quarter, YYYYQn.
    #[arg(long, value_name = "YYYYQn")]
    period: String,
    /// A city or province within this node's subtree (default: the node's own).
    #[arg(long, value_name = "CODE")]
    scope: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table", conflicts_with = "submit")]
    format: Format,
    /// In the edition in force: occupation and division codes mapped through the
    /// ministry's crosswalks (rows merged, what was mapped listed), instead of the codes
    /// as recorded.
    #[arg(long, conflicts_with = "submit")]
    current_edition: bool,
    /// Submit this city's report for the (ended) quarter instead of printing it.
    #[arg(long, conflicts_with = "scope")]
    submit: bool,
    /// With --submit: the counting basis, valid_in_period or new_in_period.
    #[arg(
        long,
        value_name = "BASIS",
        requires = "submit",
        default_value = "valid_in_period"
    )]
    basis: String,
    /// With --submit: withhold counts from 1 to N−1 in the frozen tables (0: none).
    #[arg(long, value_name = "N", requires = "submit", default_value_t = 5)]
    suppress_below: u64,
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.submit {
        return submit(&args);
    }
    let config = Config::load(&args.config.config).context("invalid config")?;
    let base = http::api_url(&config);
    let mut scope = args
        .scope
        .as_deref()
        .map(|s| format!("&scope={s}"))
        .unwrap_or_default();
    if args.current_edition {
        scope.push_str("&edition=current");
    }
    let report_url = format!(
        "{base}/v1/reports/{}?format={}{scope}",
        args.period,
        args.format.fetched_as()
    );
    let coverage_url = format!("{base}/v1/coverage?period={}{scope}", args.period);
    let (report, coverage) = super::runtime()?.block_on(async {
        let client = http::client()?;
        let report = http::get_text(&client, &report_url).await?;
        let coverage = http::get_json(&client, &coverage_url).await?;
        anyhow::Ok((report, coverage))
    })?;
    let values = coverage["summary"]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let out = match args.format {
        Format::Table => format!(
            "{report}\n{}\n{}",
            status_table(&values),
            super::coverage::trends_table(&coverage)
        ),
        Format::Csv => format!("{report}\n{}", status_csv(&values)),
        Format::Html => {
            let report: PublishedReport =
                serde_json::from_str(&report).context("the report JSON")?;
            status_html(&report, &values)
        }
        Format::Json => {
            let report: Value = serde_json::from_str(&report).context("the report JSON")?;
            let trends = &coverage["target_trends"];
            let all = json!({"report": report, "target_status": values, "target_trends": trends});
            serde_json::to_string_pretty(&all)?
        }
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// One metric value's cells: id, variant, numerator, denominator, value, target, status.
fn cells(v: &Value) -> [String; 7] {
    let text = |x: &Value| match x {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let value = v["value"]
        .as_f64()
        .map_or_else(|| "-".to_string(), |x| format!("{x:.4}"));
    [
        text(&v["id"]),
        text(&v["variant"]),
        text(&v["numerator"]),
        text(&v["denominator"]),
        value,
        target_text(&v["target"]),
        text(&v["status"]),
    ]
}

/// A target's comparator as written: `>= 0.6`, `between [1, 5]`.
pub(super) fn target_text(t: &Value) -> String {
    let c = &t["comparator"];
    match (c["op"].as_str(), &c["threshold"]) {
        (Some(op), Value::Array(range)) => {
            let bounds: Vec<String> = range.iter().map(Value::to_string).collect();
            format!("{op} [{}]", bounds.join(", "))
        }
        (Some(op), threshold) => format!("{op} {threshold}"),
        (None, _) => "-".into(),
    }
}

const HEAD: [&str; 7] = [
    "metric",
    "variant",
    "numerator",
    "denominator",
    "value",
    "target",
    "status",
];

fn status_table(values: &[Value]) -> String {
    let mut out = String::from("Target status\n");
    let _ = writeln!(
        out,
        "{:<6} {:<28} {:>10} {:>11} {:>8} {:<24} {}",
        HEAD[0], HEAD[1], HEAD[2], HEAD[3], HEAD[4], HEAD[5], HEAD[6]
    );
    for v in values {
        let c = cells(v);
        let _ = writeln!(
            out,
            "{:<6} {:<28} {:>10} {:>11} {:>8} {:<24} {}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        );
    }
    out
}

fn status_csv(values: &[Value]) -> String {
    let mut out = format!("section,{}\n", HEAD.join(","));
    for v in values {
        let row: Vec<String> = cells(v).iter().map(|c| csv_field(c)).collect();
        let _ = writeln!(out, "target_status,{}", row.join(","));
    }
    out
}

/// The report's HTML page with the target status as its last section.
fn status_html(report: &PublishedReport, values: &[Value]) -> String {
    let rows: Vec<Vec<String>> = values.iter().map(|v| cells(v).to_vec()).collect();
    let status = TargetStatus {
        head: &HEAD,
        rows: &rows,
    };
    render_html_with_status(report, Some(&status))
}

/// `--submit`: asks the city node to freeze, sign and store its report for the quarter.
fn submit(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/v1/reports/{}/submit?basis={}&suppress_below={}",
        args.period, args.basis, args.suppress_below
    );
    let answer = http::post_to_node(&args.config.config, &path, &json!({}))
        .context("submitting the report failed")?;
    let status = &answer["status"];
    let standing = match (status["state"].as_str(), status["due_on"].as_str()) {
        (Some(state), Some(due)) => format!(
            "due {due} (reporting_schedule {}): {}",
            status["schedule"].as_str().unwrap_or("?"),
            state.replace('_', " ")
        ),
        _ => "no reporting_schedule applies to it here".to_string(),
    };
    println!(
        "{} submitted its report for {} as version {} ({}, counts under {} withheld), signed; \
         it goes up to the province and the ministry. {standing}",
        answer["city"].as_str().unwrap_or(""),
        answer["period"].as_str().unwrap_or(""),
        answer["version"],
        answer["count_basis"].as_str().unwrap_or(""),
        answer["suppress_below"],
    );
    Ok(ExitCode::SUCCESS)
}

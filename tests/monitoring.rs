//! The monitoring files against a running network: the Prometheus alerting rules
//! (`config/prometheus/lmsync-alerts.yml`) and the Grafana dashboard
//! (`config/grafana/lmsync-dashboard.json`).
//!
//! Both parse; every rule has an alert name, an expression, a `for:`, a severity and
//! annotations that say what to do and name a section of docs/OPERATIONS.md that exists;
//! every panel reads the dashboard's data source and has queries; and every metric name
//! any expression or query mentions is one that real nodes export on `/metrics` — a city
//! and its province (so that link metrics of both directions appear) and the ministry
//! above them, scraped after records have moved — with `rate`, `increase` and `irate`
//! only over counters and `deriv` only over gauges. Names come out of PromQL by the
//! simple tokeniser [`metric_names`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Http, converged, tree, vacancy};

const RULES: &str = "config/prometheus/lmsync-alerts.yml";
const DASHBOARD: &str = "config/grafana/lmsync-dashboard.json";
/// Series Prometheus makes itself for every target, not exported by a node.
const PROMETHEUS_SERIES: &[&str] = &["up"];

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

// ---- PromQL names

/// Keywords that are followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Keywords, aggregation operators (which may stand before `by (…)` rather than before
/// their parenthesis) and literals: not metric names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];

/// The index just after the bracket that closes the one opening at `i`, skipping
/// string literals.
fn closing(chars: &[char], i: usize) -> usize {
    let (open, close) = (
        chars[i],
        match chars[i] {
            '(' => ')',
            '[' => ']',
            _ => '}',
        },
    );
    let mut depth = 0;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '"' | '\'' | '`' => j = after_string(chars, j) - 1,
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    panic!(
        "unbalanced {open} in {:?}",
        chars.iter().collect::<String>()
    );
}

/// The index just after the string literal starting at `i`.
fn after_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() && chars[j] != quote {
        if chars[j] == '\\' && quote != '`' {
            j += 1;
        }
        j += 1;
    }
    assert!(
        j < chars.len(),
        "unterminated string in {:?}",
        chars.iter().collect::<String>()
    );
    j + 1
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The metric names a PromQL expression mentions, each with the function it is the
/// argument of, if any (the innermost call around it). The tokeniser: string literals,
/// label matchers `{…}` and ranges or subqueries `[…]` are skipped; a token starting
/// with a digit (a number or duration) or `$` (a Grafana variable) is skipped; an
/// identifier followed by `(` is a function or aggregation; `by`, `without`, `on`,
/// `ignoring`, `group_left` and `group_right` are followed by label names in
/// parentheses, which are skipped; [`KEYWORDS`] (`and`, `offset`, the aggregation
/// operators …) are not names. Every other identifier is a metric name. Brackets must
/// balance.
fn metric_names(expr: &str) -> Vec<(String, Option<String>)> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    // Calls open around the cursor: (function, index of its closing parenthesis).
    let mut calls: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        calls.retain(|(_, end)| *end > i);
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = after_string(&chars, i);
        } else if c == '{' || c == '[' {
            i = closing(&chars, i);
        } else if c == '(' || c == ')' {
            if c == '(' {
                closing(&chars, i);
            }
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_ascii_digit()
            || c == '$'
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            i += 1;
            while i < chars.len() && (is_name_char(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if is_name_char(c) {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if LABEL_LISTS.contains(&word.as_str()) {
                if call {
                    i = closing(&chars, next);
                }
            } else if call {
                calls.push((word, closing(&chars, next)));
                i = next + 1;
            } else if !KEYWORDS.contains(&word.to_lowercase().as_str()) {
                names.push((word, calls.last().map(|(f, _)| f.clone())));
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The metric names of a Grafana variable query: `label_values(EXPR, label)` names what
/// EXPR does, `label_values(label)` nothing; anything else is PromQL.
fn variable_names(query: &str) -> Vec<(String, Option<String>)> {
    let Some(inner) = query.trim().strip_prefix("label_values(") else {
        return metric_names(query);
    };
    let inner = inner.trim_end().strip_suffix(')').expect("label_values(…)");
    match inner.rfind(',') {
        Some(comma) => metric_names(&inner[..comma]),
        None => Vec::new(),
    }
}

#[test]
fn the_tokeniser_finds_metric_names_only() {
    let names = |e: &str| -> Vec<String> { metric_names(e).into_iter().map(|(n, _)| n).collect() };
    assert_eq!(
        names(
            r#"sum by (instance, node) (rate(ingest_records_total{result="rejected", job=~"a|b"}[5m] offset 1h)) / on(instance) group_left(node) lmsync_build_info > 0.1 and bool up"#
        ),
        ["ingest_records_total", "lmsync_build_info", "up"]
    );
    assert_eq!(
        names("cert_expiry_timestamp_seconds - time() < 7 * 86400"),
        ["cert_expiry_timestamp_seconds"]
    );
    assert_eq!(names("max(x) without (a) unless y[1h:5m]"), ["x", "y"]);
    assert_eq!(names("rate(a[$__rate_interval]) * 1e3"), ["a"]);
    let calls = metric_names("increase(a_total[1h]) + deriv(b[10m]) + c");
    assert_eq!(calls[0], ("a_total".into(), Some("increase".into())));
    assert_eq!(calls[1], ("b".into(), Some("deriv".into())));
    assert_eq!(calls[2], ("c".into(), None));
    assert_eq!(
        variable_names(r#"label_values(lmsync_build_info{tier=~"$tier"}, node)"#),
        [("lmsync_build_info".to_string(), None)]
    );
    assert!(variable_names("label_values(node)").is_empty());
}

// ---- the files

/// Every alerting rule of the rules file.
fn rules() -> Vec<Value> {
    let doc: Value = serde_yaml_ng::from_str(&read(RULES)).expect("the rules file is YAML");
    let groups = doc["groups"].as_array().expect("groups");
    assert!(!groups.is_empty());
    groups
        .iter()
        .flat_map(|g| {
            assert!(g["name"].is_string(), "a group's name");
            g["rules"].as_array().expect("a group's rules").clone()
        })
        .collect()
}

/// Every panel of the dashboard, those inside rows included (rows themselves left out).
fn panels(dashboard: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner.clone());
        }
        if p["type"] != "row" {
            out.push(p.clone());
        }
    }
    out
}

/// GitHub's anchor of a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn is_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest[digits..].starts_with(u));
        match unit {
            Some(u) if digits > 0 => rest = &rest[digits + u.len()..],
            _ => return false,
        }
    }
    true
}

#[test]
fn every_rule_is_complete_and_points_to_a_section_that_exists() {
    let sections: BTreeSet<String> = read("docs/OPERATIONS.md")
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let rules = rules();
    let mut names = BTreeSet::new();
    for rule in &rules {
        let name = rule["alert"]
            .as_str()
            .expect("every rule is an alert with a name");
        assert!(names.insert(name.to_string()), "{name} twice");
        let expr = rule["expr"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: expr"));
        assert!(!metric_names(expr).is_empty(), "{name}: names no metric");
        let wait = rule["for"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: for"));
        assert!(is_duration(wait), "{name}: for {wait:?}");
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for key in ["summary", "description", "runbook"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| s.len() > 10),
                "{name}: annotations.{key}"
            );
        }
        let runbook = rule["annotations"]["runbook"].as_str().unwrap();
        let section = runbook
            .strip_prefix("docs/OPERATIONS.md#")
            .unwrap_or_else(|| panic!("{name}: runbook {runbook:?} names no section"));
        assert!(
            sections.contains(section),
            "{name}: docs/OPERATIONS.md has no section #{section}"
        );
    }
}

#[test]
fn the_dashboard_is_templated_on_its_data_source_node_and_tier() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON");
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    for name in ["node", "tier"] {
        assert_eq!(variable(name)["type"], "query");
        assert_eq!(variable(name)["datasource"]["uid"], "${datasource}");
    }
    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().expect("a panel's title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("a panel's id")),
            "{title}: id twice"
        );
        let grid = &panel["gridPos"];
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{title}: gridPos"
        );
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{title}: data source"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert!(t["refId"].is_string(), "{title}: refId");
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: expr"));
            assert!(!metric_names(expr).is_empty(), "{title}: names no metric");
        }
    }
}

/// Every metric name the rules, panels and variables use, with the function around it.
fn used_names() -> BTreeMap<String, BTreeSet<String>> {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut found = Vec::new();
    for rule in rules() {
        found.extend(metric_names(rule["expr"].as_str().unwrap()));
    }
    for panel in panels(&dashboard) {
        for t in panel["targets"].as_array().unwrap() {
            found.extend(metric_names(t["expr"].as_str().unwrap()));
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap();
            found.extend(variable_names(q));
        }
    }
    let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, call) in found {
        by_name.entry(name).or_default().extend(call);
    }
    by_name
}

// ---- against a running network

/// The sample names of a Prometheus text scrape, each with its family's type.
fn exported(text: &str, into: &mut BTreeMap<String, String>) {
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            types.insert(
                words.next().unwrap().to_string(),
                words.next().unwrap().to_string(),
            );
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let name: String = line.chars().take_while(|c| is_name_char(*c)).collect();
            let family = types
                .iter()
                .filter(|(f, _)| {
                    name == **f
                        || name
                            .strip_prefix(f.as_str())
                            .is_some_and(|s| s.starts_with('_'))
                })
                .max_by_key(|(f, _)| f.len())
                .unwrap_or_else(|| panic!("{name}: no # TYPE line"));
            into.insert(name, family.1.clone());
        }
    }
}

#[test]
fn every_metric_the_rules_and_dashboard_use_is_exported_by_real_nodes() {
    let used = used_names();
    // What the operator needs watched is there.
    for needed in [
        "up",
        "ingest_records_total",
        "store_commits_total",
        "store_commit_microseconds_total",
        "store_bytes",
        "store_healthy",
        "store_full",
        "peer_connected",
        "sync_seconds_since_last",
        "sync_child_lag_records",
        "sync_records_pending",
        "sync_records_quarantined_total",
        "sync_alerts",
        "cert_expiry_timestamp_seconds",
        "cert_needs_renewal",
        "revoked_certificates",
        "api_refused_total",
    ] {
        assert!(
            used.contains_key(needed),
            "no rule or panel watches {needed}"
        );
    }

    let t = tree(&["440100"]);
    let http = Http::new();
    let (files, city) = &t.cities[0];
    let records: Vec<Value> = (0..20).map(|i| vacancy(&format!("V-MON-{i}"), 2)).collect();
    let (status, _) = http.post(
        &city.url("/v1/records"),
        &files.token,
        &Value::from(records),
    );
    assert_eq!(status, 200);
    converged(&http, &t);
    let nodes = [city, &t.province.1, &t.ministry.1];
    let mut names = BTreeMap::new();
    let missing = |names: &BTreeMap<String, String>| -> Vec<String> {
        used.keys()
            .filter(|n| !names.contains_key(*n) && !PROMETHEUS_SERIES.contains(&n.as_str()))
            .cloned()
            .collect()
    };
    // Link series appear once the links have carried records and acks: scrape until
    // they are there (bounded), then name what is missing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for node in nodes {
            exported(&http.get_text(&node.url("/metrics")).1, &mut names);
        }
        if missing(&names).is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        missing(&names).is_empty(),
        "not exported by any node: {:?}",
        missing(&names)
    );
    for (name, calls) in &used {
        let Some(kind) = names.get(name) else {
            continue;
        };
        for call in calls {
            match call.as_str() {
                "rate" | "irate" | "increase" => {
                    assert_eq!(kind, "counter", "{call}({name}): {name} is a {kind}");
                }
                "deriv" | "delta" | "predict_linear" => {
                    assert_eq!(kind, "gauge", "{call}({name}): {name} is a {kind}");
                }
                _ => {}
            }
        }
    }
}

//! `GET /`: the dashboard, one server-rendered page per node with no external assets.
//!
//! It answers "is this node in sync?" first: its own health, what needs an operator
//! (`dashboard_alerts`) and its parent link, then, at
//! a province or the ministry, the tree below it — each child link with its state in
//! colour and words, and under each child the owners whose records are held here; then
//! the coverage of the subtree (`dashboard_coverage`) and where its quarterly reports
//! stand (`dashboard_reports`). The page refreshes itself every 5 seconds and reads the
//! same state as `/v1/status`, `/v1/coverage` and `/v1/reports/{period}/submitted`.

use axum::extract::State;
use axum::response::Html;
use maud::{DOCTYPE, Markup, PreEscaped, display, html};

use super::AppState;
use super::dashboard_charts as charts;
use super::error::ApiError;
use super::extract::Query;
use crate::core::model::{NodeCode, Tier};
use crate::core::store::Store;
use crate::node::clock::rfc3339;
use crate::node::links::LinkInfo;

/// A link is stale when nothing moved on it for twice the longest an idle link waits
/// between its ticks (an offer and its answer), and at least a minute: 160 s at the
/// default 5 s sync interval. A healthy idle link is never stale.
fn stale_after_ms(app: &AppState) -> i64 {
    stale_after(app.config.sync_interval)
}

fn stale_after(sync_interval: std::time::Duration) -> i64 {
    let longest = crate::core::protocol::ChildSession::longest_tick_delay(sync_interval);
    i64::try_from(longest.saturating_mul(2).as_millis())
        .unwrap_or(i64::MAX)
        .max(60_000)
}

/// A node as the page names it: its code and built-in name.
fn named(code: NodeCode) -> String {
    format!("{code} {}", code.builtin_name().unwrap_or(""))
}

/// `(css class, words)` for a link's state.
fn health(info: Option<&LinkInfo>, now_ms: i64, stale_ms: i64) -> (&'static str, String) {
    match info {
        None => ("bad", "never connected".into()),
        Some(LinkInfo {
            connected: false,
            refusal: Some(r),
            ..
        }) => {
            let next = (r.next_attempt_ms - now_ms).max(0) / 1000;
            (
                "bad",
                format!(
                    "refused ({} attempts): {}. {}; next attempt in {next} s",
                    r.attempts, r.reason, r.advice
                ),
            )
        }
        Some(l) if !l.connected => (
            "bad",
            match &l.last_error {
                Some(e) => format!("disconnected: {e}"),
                None => "disconnected".into(),
            },
        ),
        Some(l) if !l.alerts.is_empty() => {
            ("warn", format!("connected, {} alert(s)", l.alerts.len()))
        }
        Some(l) if l.last_sync_ms.is_some_and(|t| now_ms - t > stale_ms) => {
            ("warn", "connected, stale".into())
        }
        Some(_) => ("ok", "connected, in sync".into()),
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
h1{margin:0 0 .2em}h1 small{color:#666;font-weight:normal}h2{margin-top:1.4em}\
table{border-collapse:collapse;min-width:40em}td,th{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:left}\
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}\
.ok{color:#176c2c}.warn{color:#8a5a00}.bad{color:#b00020}.dot::before{content:'● '}\
tr.owner td:first-child{padding-left:2em}footer{margin-top:2em;color:#777}\
svg.chart{display:block;margin:.3em 0 1em}svg.chart text{font-size:11px;fill:#444}\
rect.cell{fill:#1f5fa8}rect.bar.pass{fill:#2e8b45}rect.bar.fail{fill:#c0392b}\
line.threshold{stroke:#222;stroke-width:2;stroke-dasharray:4 2}line.axis-line{stroke:#999}\
polyline.series{fill:none;stroke-width:1.5}circle.dot-point{fill:currentColor}.s0{stroke:#1f5fa8;color:#1f5fa8}.s1{stroke:#c0392b;color:#c0392b}\
.s2{stroke:#2e8b45;color:#2e8b45}.s3{stroke:#8a5a00;color:#8a5a00}.s4{stroke:#6a3d9a;color:#6a3d9a}.s5{stroke:#555;color:#555}\
#legend dl{display:grid;grid-template-columns:4em auto;gap:.1em .5em}#legend dt{font-weight:bold}\
@media (max-width:700px){table{min-width:0}svg.chart{max-width:100%;height:auto}}";

type Links = std::collections::BTreeMap<NodeCode, LinkInfo>;
type Retired = std::collections::BTreeMap<NodeCode, crate::core::model::retirement::Retirement>;

/// Query of `GET /`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DashboardQuery {
    period: Option<String>,
}

/// `GET /[?period=YYYYQn]`.
pub(super) async fn dashboard(
    State(app): State<AppState>,
    Query(q): Query<DashboardQuery>,
) -> Result<Html<String>, ApiError> {
    let period = super::coverage::period_or_now(&app, q.period.as_deref())?;
    let now = app.clock.now_ms();
    let links = app.links.snapshot();
    // A city sees its own standing; a province or the ministry its subtree.
    let scope = crate::reporting::analysis::Scope::of(app.node);
    let (coverage, targets) = match super::coverage::cached_coverage(&app, period, scope).await {
        Ok(coverage) => (
            super::dashboard_coverage::coverage_section(&coverage),
            charts::targets_per_city(&coverage),
        ),
        Err(e) => (unreadable("Coverage", &e.message), html! {}),
    };
    let reports = super::dashboard_reports::section(&app, now)
        .await
        .unwrap_or_else(|e| unreadable("Quarterly reports", &e.message));
    Ok(Html(
        page(&app, &links, now, (coverage, reports), targets).into_string(),
    ))
}

/// The whole page around the coverage and reports sections, which are read
/// asynchronously beforehand.
fn page(
    app: &AppState,
    links: &Links,
    now: i64,
    (coverage, reports): (Markup, Markup),
    targets: Markup,
) -> Markup {
    // Read once per page: the alerts and the tree both leave retired children alone.
    let retired = app.retired_nodes();
    let tier = app.node.tier();
    let (class, words) = match app.store.fault() {
        None => ("ok", "store healthy".to_string()),
        Some(f) => ("bad", format!("store fault: {f}")),
    };
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="5";
                title { "lmsync " (display(app.node)) " " (app.config.name) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (app.config.name) " " small { (display(app.node)) " · " (display(tier)) } }
                p id="health" class={ "dot " (class) } { (words) }
                p id="store" {
                    "store: " (app.store.owner_counts().values().map(|c| c.by_kind.values().sum::<u64>()).sum::<u64>()) " records, "
                    (charts::human_bytes(app.store.size_on_disk())) " on disk"
                }
                @if let Some(c) = app.certificate.get() {
                    p id="certificate" {
                        "certificate " (c.serial) ", expires " (rfc3339(c.not_after * 1000))
                        " (" ((c.not_after - now / 1000) / 86_400) " days)"
                    }
                }
                (super::dashboard_alerts::alerts_section(&super::dashboard_alerts::alerts(app, links, &retired, now)))
                (parent_section(app, links, now))
                @if tier != Tier::City {
                    (tree_section(app, links, &retired, now))
                }
                (coverage)
                (reports)
                (charts::legend())
                (charts_section(app, now, targets))
                (records_section(app.store.as_ref()))
                (documents_section(app.store.as_ref()))
                footer {
                    "Refreshes every 5 s · " (rfc3339(now)) " · JSON: "
                    a href="/v1/status" { "/v1/status" }
                }
            }
        }
    }
}

/// A figure read from the store, or a dash when the store cannot be read: after an IO
/// error (a full disk) sled refuses reads too, and the page must still say what it can;
/// the fault itself is named at the top.
fn figure<T: std::fmt::Display, E>(read: Result<T, E>) -> String {
    read.map_or_else(|_| "—".into(), |v| v.to_string())
}

/// A section that could not be read, in place of its table.
fn unreadable(title: &str, why: &str) -> Markup {
    html! {
        h2 { (title) }
        p class="dot bad" { "unreadable: " (why) }
    }
}

/// When a link last synced, in words ("12 s ago"), the time itself on hover.
fn last_sync(info: Option<&LinkInfo>, now: i64) -> Markup {
    match info.and_then(|l| l.last_sync_ms) {
        Some(t) => html! { span title=(rfc3339(t)) { (charts::ago(now, t)) } },
        None => html! { "never" },
    }
}

/// The charts: records per day, lag over time (where records arrive from below) and
/// the targets per city.
fn charts_section(app: &AppState, now: i64, targets: Markup) -> Markup {
    let history = app.links.history();
    html! {
        h2 { "Charts" }
        (charts::records_per_day(&history, now.div_euclid(86_400_000)))
        @if app.node.tier() != Tier::City {
            (charts::lag_over_time(&history, now.div_euclid(60_000)))
        }
        (targets)
    }
}

fn parent_section(app: &AppState, links: &Links, now: i64) -> Markup {
    let Some(parent) = &app.config.parent else {
        return html! {
            @if app.node.tier() != Tier::Ministry {
                p class="dot warn" { "No parent configured: records stay here." }
            }
        };
    };
    let info = links.get(&parent.code);
    let (class, words) = health(info, now, stale_after_ms(app));
    let own = app.store.last_seq(app.node);
    let at_parent = app.store.watermark(parent.code, app.node);
    let pending = figure(at_parent.as_ref().map(|acked| own.saturating_sub(*acked)));
    let at_parent = figure(at_parent);
    let at_ministry = figure(app.store.watermark(crate::core::model::MINISTRY, app.node));
    html! {
        h2 { "Parent" }
        table id="parent" {
            tr {
                th { "node" } th { "state" } th { "last sync" }
                th class="num" { "own records pending" }
                th class="num" { "acked by parent" }
                th class="num" { "acked by ministry" }
            }
            tr data-node=(display(parent.code)) {
                td { (named(parent.code)) }
                td class={ "dot " (class) } { (words) }
                td { (last_sync(info, now)) }
                td class="num" { (pending) }
                td class="num" { (at_parent) }
                td class="num" { (at_ministry) }
            }
        }
    }
}

/// The children shown in the tree: linked now, or holding records here.
fn children(
    app: &AppState,
    links: &Links,
    owners: impl Iterator<Item = NodeCode>,
) -> Vec<NodeCode> {
    let parent = app.config.parent.as_ref().map(|p| p.code);
    let mut children: Vec<NodeCode> = links
        .keys()
        .copied()
        .filter(|c| Some(*c) != parent)
        .collect();
    for owner in owners {
        // A child whose records are here but which is not connected now still belongs in the tree.
        let child = if owner.parent() == Some(app.node) {
            Some(owner)
        } else {
            owner.province().filter(|p| p.parent() == Some(app.node))
        };
        if let Some(c) = child.filter(|c| !children.contains(c)) {
            children.push(c);
        }
    }
    children.sort();
    children
}

fn tree_section(app: &AppState, links: &Links, retired: &Retired, now: i64) -> Markup {
    let stale_ms = stale_after_ms(app);
    let owners = app.store.owner_counts();
    let children = children(app, links, owners.keys().copied());
    let held = |child: NodeCode| -> u64 {
        owners
            .iter()
            .filter(|(o, _)| o.is_within(child))
            .map(|(_, c)| c.by_kind.values().sum::<u64>())
            .sum()
    };
    html! {
        h2 { "Subtree" }
        table id="tree" {
            tr {
                th { "node" } th { "state" } th { "last sync" }
                th class="num" { "records here" }
                th class="num" { "complete through seq" }
                th class="num" { "quarantined" }
            }
            @for child in children {
                @let info = links.get(&child);
                @let (class, words) = match retired.get(&child) {
                    Some(r) => ("ok", format!("retired since {}", r.on)),
                    None => health(info, now, stale_ms),
                };
                tr class="child" data-node=(display(child)) {
                    td { b { (named(child)) } }
                    td class={ "dot " (class) } { (words) }
                    td { (last_sync(info, now)) }
                    td class="num" { (held(child)) }
                    td {}
                    td class="num" { (info.map_or(0, |l| l.quarantined)) }
                }
                @for (owner, counts) in owners.iter().filter(|(o, _)| o.is_within(child)) {
                    tr class="owner" data-node=(display(owner)) data-parent=(display(child)) {
                        td { (named(*owner)) }
                        td {}
                        td {}
                        td class="num" { (counts.by_kind.values().sum::<u64>()) }
                        td class="num" { (figure(app.store.complete_through(*owner))) }
                        td {}
                    }
                }
            }
        }
    }
}

fn records_section(store: &dyn Store) -> Markup {
    let mut by_kind = std::collections::BTreeMap::new();
    for counts in store.owner_counts().values() {
        for (k, n) in &counts.by_kind {
            *by_kind.entry(*k).or_insert(0u64) += n;
        }
    }
    html! {
        h2 { "Records held here" }
        table id="records" {
            tr { th { "kind" } th class="num" { "records" } }
            @for (k, n) in by_kind {
                tr { td { (display(k)) } td class="num" { (n) } }
            }
        }
    }
}

fn documents_section(store: &dyn Store) -> Markup {
    let documents = match store.documents() {
        Ok(d) => d,
        Err(e) => return unreadable("Documents in force", &e.to_string()),
    };
    html! {
        h2 { "Documents in force" }
        table id="documents" {
            tr {
                th { "kind" } th { "id" } th { "issuer" }
                th class="num" { "version" }
            }
            @for d in documents {
                tr {
                    td { (d.kind) }
                    td { (d.id) }
                    td { (named(d.issuer)) }
                    td class="num" { (display(d.version)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{health, stale_after};
    use crate::node::links::LinkInfo;

    /// An idle link ticks at most every 16 intervals (80 s at 5 s): at twice that it is
    /// stale, before it is not.
    #[test]
    fn a_healthy_idle_link_is_not_stale() {
        let stale_ms = stale_after(std::time::Duration::from_secs(5));
        assert_eq!(stale_ms, 160_000);
        let now = 1_000_000;
        let link = |ago: i64| LinkInfo {
            connected: true,
            last_sync_ms: Some(now - ago),
            ..LinkInfo::default()
        };
        assert_eq!(health(Some(&link(80_000)), now, stale_ms).0, "ok");
        assert_eq!(health(Some(&link(161_000)), now, stale_ms).0, "warn");
        assert_eq!(stale_after(std::time::Duration::from_millis(100)), 60_000);
    }
}

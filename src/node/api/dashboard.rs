//! `GET /`: the dashboard, one server-rendered page per node with no external assets.
//!
//! It answers "is this node in sync?" first: its own health and its parent link, then, at
//! a province or the ministry, the tree below it — each child link with its state in
//! colour and words, and under each child the owners whose records are held here; then
//! the coverage of the subtree (`dashboard_coverage`). The page refreshes itself every
//! 5 seconds and reads the same state as `/v1/status` and `/v1/coverage`.

use std::fmt::Write;

use axum::extract::State;

use super::extract::Query;
use axum::response::Html;

use super::AppState;
use super::error::ApiError;
use crate::core::model::NodeCode;
use crate::core::store::Store;
use crate::node::clock::rfc3339;
use crate::node::links::LinkInfo;

/// A link is stale when nothing moved on it for this long.
const STALE_MS: i64 = 60_000;

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn name(code: NodeCode) -> String {
    esc(code.builtin_name().unwrap_or(""))
}

/// `(css class, words)` for a link's state.
fn health(info: Option<&LinkInfo>, now_ms: i64) -> (&'static str, String) {
    match info {
        None => ("bad", "never connected".into()),
        Some(l) if !l.connected => (
            "bad",
            format!(
                "disconnected{}",
                l.last_error
                    .as_ref()
                    .map_or_else(String::new, |e| format!(": {}", esc(e)))
            ),
        ),
        Some(l) if !l.alerts.is_empty() => {
            ("warn", format!("connected, {} alert(s)", l.alerts.len()))
        }
        Some(l) if l.last_sync_ms.is_some_and(|t| now_ms - t > STALE_MS) => {
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
tr.owner td:first-child{padding-left:2em}footer{margin-top:2em;color:#777}";

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
    let mut html = String::new();
    let tier = app.node.tier();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>lmsync {code} {name}</title><style>{STYLE}</style></head><body>\
         <h1>{name} <small>{code} · {tier}</small></h1>",
        code = app.node,
        name = esc(&app.config.name),
    );
    let (class, words) = match app.store.fault() {
        None => ("ok", "store healthy".to_string()),
        Some(f) => ("bad", format!("store fault: {}", esc(&f))),
    };
    let _ = write!(html, "<p id=\"health\" class=\"dot {class}\">{words}</p>");
    parent_section(&mut html, &app, &links, now);
    if tier != crate::core::model::Tier::City {
        tree_section(&mut html, &app, &links, now);
    }
    // A city sees its own standing; a province or the ministry its subtree.
    let scope = crate::reporting::analysis::Scope::of(app.node);
    match super::coverage::cached_coverage(&app, period, scope).await {
        Ok(coverage) => super::dashboard_coverage::coverage_section(&mut html, &coverage),
        Err(e) => unreadable(&mut html, "Coverage", &e.message),
    }
    records_section(&mut html, app.store.as_ref());
    documents_section(&mut html, app.store.as_ref());
    let _ = write!(
        html,
        "<footer>Refreshes every 5 s · {} · JSON: <a href=\"/v1/status\">/v1/status</a></footer></body></html>",
        rfc3339(now)
    );
    Ok(Html(html))
}

/// A figure read from the store, or a dash when the store cannot be read: after an IO
/// error (a full disk) sled refuses reads too, and the page must still say what it can;
/// the fault itself is named at the top.
fn figure<T: std::fmt::Display, E>(read: Result<T, E>) -> String {
    read.map_or_else(|_| "—".into(), |v| v.to_string())
}

/// A section that could not be read, in place of its table.
fn unreadable(html: &mut String, title: &str, why: &str) {
    let _ = write!(
        html,
        "<h2>{title}</h2><p class=\"dot bad\">unreadable: {}</p>",
        esc(why)
    );
}

fn parent_section(
    html: &mut String,
    app: &AppState,
    links: &std::collections::BTreeMap<NodeCode, LinkInfo>,
    now: i64,
) {
    let Some(parent) = &app.config.parent else {
        if app.node.tier() != crate::core::model::Tier::Ministry {
            let _ = write!(
                html,
                "<p class=\"dot warn\">No parent configured: records stay here.</p>"
            );
        }
        return;
    };
    let info = links.get(&parent.code);
    let (class, words) = health(info, now);
    let own = app.store.last_seq(app.node);
    let at_parent = app.store.watermark(parent.code, app.node);
    let pending = figure(at_parent.as_ref().map(|acked| own.saturating_sub(*acked)));
    let at_parent = figure(at_parent);
    let at_ministry = figure(app.store.watermark(crate::core::model::MINISTRY, app.node));
    let last = info
        .and_then(|l| l.last_sync_ms)
        .map_or_else(|| "never".into(), rfc3339);
    let _ = write!(
        html,
        "<h2>Parent</h2><table id=\"parent\"><tr><th>node</th><th>state</th><th>last sync</th>\
         <th class=\"num\">own records pending</th><th class=\"num\">acked by parent</th><th class=\"num\">acked by ministry</th></tr>\
         <tr data-node=\"{code}\"><td>{code} {name}</td><td class=\"dot {class}\">{words}</td><td>{last}</td>\
         <td class=\"num\">{pending}</td><td class=\"num\">{at_parent}</td><td class=\"num\">{at_ministry}</td></tr></table>",
        code = parent.code,
        name = name(parent.code),
    );
}

fn tree_section(
    html: &mut String,
    app: &AppState,
    links: &std::collections::BTreeMap<NodeCode, LinkInfo>,
    now: i64,
) {
    let parent = app.config.parent.as_ref().map(|p| p.code);
    let owners = app.store.owner_counts();
    let mut children: Vec<NodeCode> = links
        .keys()
        .copied()
        .filter(|c| Some(*c) != parent)
        .collect();
    for owner in owners.keys() {
        // A child whose records are here but which is not connected now still belongs in the tree.
        let child = if owner.parent() == Some(app.node) {
            Some(*owner)
        } else {
            owner.province().filter(|p| p.parent() == Some(app.node))
        };
        if let Some(c) = child.filter(|c| !children.contains(c)) {
            children.push(c);
        }
    }
    children.sort();
    let _ = write!(
        html,
        "<h2>Subtree</h2><table id=\"tree\"><tr><th>node</th><th>state</th><th>last sync</th>\
         <th class=\"num\">records here</th><th class=\"num\">complete through seq</th><th class=\"num\">quarantined</th></tr>"
    );
    for child in children {
        let info = links.get(&child);
        let (class, words) = health(info, now);
        let last = info
            .and_then(|l| l.last_sync_ms)
            .map_or_else(|| "never".into(), rfc3339);
        let held: u64 = owners
            .iter()
            .filter(|(o, _)| o.is_within(child))
            .map(|(_, c)| c.by_kind.values().sum::<u64>())
            .sum();
        let _ = write!(
            html,
            "<tr class=\"child\" data-node=\"{child}\"><td><b>{child} {name}</b></td><td class=\"dot {class}\">{words}</td>\
             <td>{last}</td><td class=\"num\">{held}</td><td></td><td class=\"num\">{q}</td></tr>",
            name = name(child),
            q = info.map_or(0, |l| l.quarantined),
        );
        for (owner, counts) in owners.iter().filter(|(o, _)| o.is_within(child)) {
            let n: u64 = counts.by_kind.values().sum();
            let complete = figure(app.store.complete_through(*owner));
            let _ = write!(
                html,
                "<tr class=\"owner\" data-node=\"{owner}\" data-parent=\"{child}\"><td>{owner} {name}</td><td></td><td></td>\
                 <td class=\"num\">{n}</td><td class=\"num\">{complete}</td><td></td></tr>",
                name = name(*owner),
            );
        }
    }
    html.push_str("</table>");
}

fn records_section(html: &mut String, store: &dyn Store) {
    let mut by_kind = std::collections::BTreeMap::new();
    for counts in store.owner_counts().values() {
        for (k, n) in &counts.by_kind {
            *by_kind.entry(*k).or_insert(0u64) += n;
        }
    }
    html.push_str("<h2>Records held here</h2><table id=\"records\"><tr><th>kind</th><th class=\"num\">records</th></tr>");
    for (k, n) in by_kind {
        let _ = write!(html, "<tr><td>{k}</td><td class=\"num\">{n}</td></tr>");
    }
    html.push_str("</table>");
}

fn documents_section(html: &mut String, store: &dyn Store) {
    let documents = match store.documents() {
        Ok(d) => d,
        Err(e) => return unreadable(html, "Documents in force", &e.to_string()),
    };
    html.push_str("<h2>Documents in force</h2><table id=\"documents\"><tr><th>kind</th><th>id</th><th>issuer</th><th class=\"num\">version</th></tr>");
    for d in documents {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td class=\"num\">{}</td></tr>",
            esc(&d.kind),
            esc(&d.id),
            d.issuer,
            name(d.issuer),
            d.version
        );
    }
    html.push_str("</table>");
}

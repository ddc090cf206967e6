//! The dashboard's alerts list: everything an operator must act on, in one place at the
//! top of the page — a store fault, a certificate near or past its expiry, a refused or
//! broken link, a link's alerts (a conflict, quarantined records), and the certificates
//! revoked in the network. Each alert is a severity in colour and in words.

use maud::{Markup, html};

use super::AppState;
use crate::core::model::NodeCode;
use crate::node::links::LinkInfo;

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Severity {
    /// Something is wrong now: data does not move or is at risk.
    Bad,
    /// Something will go wrong, or needs a look.
    Warn,
    /// Worth knowing.
    Info,
}

impl Severity {
    fn class(self) -> &'static str {
        match self {
            Severity::Bad => "bad",
            Severity::Warn => "warn",
            Severity::Info => "ok",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Severity::Bad => "action needed",
            Severity::Warn => "warning",
            Severity::Info => "note",
        }
    }
}

/// One alert: how bad, about what, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Alert {
    pub severity: Severity,
    pub subject: String,
    pub text: String,
}

fn alert(severity: Severity, subject: impl Into<String>, text: impl Into<String>) -> Alert {
    Alert {
        severity,
        subject: subject.into(),
        text: text.into(),
    }
}

/// What a link's state asks of an operator.
fn link_alerts(
    peer: NodeCode,
    info: &LinkInfo,
    is_parent: bool,
    now_ms: i64,
    out: &mut Vec<Alert>,
) {
    let role = if is_parent { "parent" } else { "child" };
    let subject = format!("{role} {peer}");
    if let Some(r) = info.refusal.as_ref().filter(|_| !info.connected) {
        out.push(alert(
            Severity::Bad,
            &subject,
            format!("refused: {}. {}", r.reason, r.advice),
        ));
    } else if !info.connected && is_parent {
        let why = info.last_error.as_deref().unwrap_or("no session");
        out.push(alert(
            Severity::Bad,
            &subject,
            format!("disconnected: {why}"),
        ));
    } else if !info.connected
        && let Some(e) = &info.last_error
    {
        out.push(alert(
            Severity::Warn,
            &subject,
            format!("disconnected: {e}"),
        ));
    }
    for a in &info.alerts {
        out.push(alert(Severity::Warn, &subject, a.clone()));
    }
    if let Some(warning) = info
        .peer_certificate
        .as_ref()
        .and_then(|c| c.validity_warning(now_ms / 1000))
    {
        out.push(alert(
            Severity::Warn,
            &subject,
            format!("its {}", warning.trim_start_matches("the ")),
        ));
    }
}

/// Every alert of this node, worst first.
pub(super) fn alerts(
    app: &AppState,
    links: &std::collections::BTreeMap<NodeCode, LinkInfo>,
    retired: &std::collections::BTreeMap<NodeCode, crate::core::model::retirement::Retirement>,
    now_ms: i64,
) -> Vec<Alert> {
    let mut out = Vec::new();
    if let Some(fault) = app.store.fault() {
        out.push(alert(Severity::Bad, "store", fault));
    }
    if let Some(c) = app.certificate.get()
        && let Some(warning) = c.validity_warning(now_ms / 1000)
    {
        let severity = if now_ms / 1000 > c.not_after || now_ms / 1000 < c.not_before {
            Severity::Bad
        } else {
            Severity::Warn
        };
        out.push(alert(severity, "certificate", warning));
    }
    let parent = app.config.parent.as_ref().map(|p| p.code);
    // A retired child's silent link is expected, not a fault.
    for (peer, info) in links.iter().filter(|(p, _)| !retired.contains_key(p)) {
        link_alerts(*peer, info, Some(*peer) == parent, now_ms, &mut out);
    }
    for r in app.trust.revocations() {
        out.push(alert(
            Severity::Info,
            format!("node {}", r.node),
            format!(
                "certificate {} revoked by {}: {}; refused by this node",
                r.serial, r.issuer, r.reason
            ),
        ));
    }
    out.sort_by_key(|a| a.severity);
    out
}

/// The alerts list.
pub(super) fn alerts_section(alerts: &[Alert]) -> Markup {
    html! {
        h2 { "Alerts" }
        @if alerts.is_empty() {
            p id="alerts" class="dot ok" { "No alerts: nothing needs an operator." }
        } @else {
            table id="alerts" {
                tr { th { "severity" } th { "about" } th { "what" } }
                @for a in alerts {
                    tr class={ "alert " (a.severity.class()) } {
                        td class={ "dot " (a.severity.class()) } { (a.severity.word()) }
                        td { (a.subject) }
                        td { (a.text) }
                    }
                }
            }
        }
    }
}

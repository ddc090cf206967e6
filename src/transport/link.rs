//! What status shows about each link: connected, last sync, errors, receipts.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::model::NodeCode;
use crate::protocol::Event;

/// One link's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// A session is established.
    pub connected: bool,
    /// Last time records moved or were acknowledged, ms since the epoch.
    pub last_sync_ms: Option<i64>,
    /// Why the last session ended.
    pub last_error: Option<String>,
    /// Records received over this link since start.
    pub records_received: u64,
    /// Records anti-entropy repaired from this link since start.
    pub records_repaired: u64,
    /// Records quarantined from this link since start.
    pub quarantined: u64,
    /// Conflicts and regressions seen on this link since start.
    pub alerts: Vec<String>,
    /// A child's last offer: how far it holds each owner's records.
    pub offered: BTreeMap<NodeCode, u64>,
}

/// All links of a node.
#[derive(Debug, Default)]
pub struct Links {
    peers: Mutex<BTreeMap<NodeCode, LinkInfo>>,
}

impl Links {
    fn with(&self, peer: NodeCode, f: impl FnOnce(&mut LinkInfo)) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        f(peers.entry(peer).or_default());
    }

    /// Applies a session event.
    pub fn record(&self, peer: NodeCode, event: &Event, now_ms: i64) {
        self.with(peer, |l| match event {
            Event::Connected { .. } => {
                l.connected = true;
                l.last_error = None;
                l.last_sync_ms.get_or_insert(now_ms);
            }
            Event::Acknowledged { .. } => l.last_sync_ms = Some(now_ms),
            Event::Offered { owners } => l.offered.extend(owners.iter().copied()),
            Event::Received { records, .. } => {
                l.last_sync_ms = Some(now_ms);
                l.records_received += *records as u64;
            }
            Event::DocumentStored { kind, id, issuer, version } => {
                l.last_sync_ms = Some(now_ms);
                tracing::info!(%peer, %kind, %id, %issuer, version, "Stored a document from above");
            }
            Event::IdentityChanged { old, new, .. } => {
                let (old, new) = (hex::encode(old), hex::encode(new));
                tracing::error!(%peer, %old, %new, "Child's store identity changed; refusing its records");
                push_alert(l, format!("store identity changed from {old} to {new}"));
            }
            Event::Repaired { owner, records } => {
                l.last_sync_ms = Some(now_ms);
                l.records_repaired += *records as u64;
                tracing::info!(%peer, %owner, records, "Anti-entropy repaired records");
            }
            Event::Quarantined { owner, id, reason } => {
                l.quarantined += 1;
                tracing::warn!(%peer, %owner, %id, %reason, "Quarantined a received record");
            }
            Event::Conflict { detail } => {
                tracing::error!(%peer, %detail, "Two copies of one record version differ");
                push_alert(l, format!("conflict: {detail}"));
            }
            Event::Regression { owner, offered, held } => {
                tracing::error!(%peer, %owner, offered, held, "Peer's records went back; nothing overwritten");
                push_alert(l, format!("{owner} offered through seq {offered}, {held} held here"));
            }
        });
    }

    /// The session with `peer` ended.
    pub fn disconnected(&self, peer: NodeCode, error: Option<String>) {
        self.with(peer, |l| {
            l.connected = false;
            if error.is_some() {
                l.last_error = error;
            }
        });
    }

    /// A snapshot of every link.
    pub fn snapshot(&self) -> BTreeMap<NodeCode, LinkInfo> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Keeps the last few alerts.
fn push_alert(l: &mut LinkInfo, alert: String) {
    if l.alerts.len() >= 8 {
        l.alerts.remove(0);
    }
    l.alerts.push(alert);
}

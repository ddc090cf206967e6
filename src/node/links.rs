//! What the node knows of each of its links: connected, last sync, errors, receipts, and
//! recent replication lags. Transport writes it; status, the dashboard and the coverage
//! scan read it (the scan through [`LinkFacts`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::core::model::NodeCode;
use crate::core::protocol::Event;
use crate::reporting::scan::LinkFacts;

/// One link's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// A session is established.
    pub connected: bool,
    /// Last time records moved or were acknowledged, ms since the epoch.
    pub last_sync_ms: Option<i64>,
    /// Why the last session ended, until the next one is established.
    pub last_error: Option<String>,
    /// Sessions that ended with an error since start.
    pub sessions_broken: u64,
    /// Why the most recent of them ended (kept after reconnecting).
    pub last_break: Option<String>,
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
    /// The parent refuses this node (until a session is established again).
    pub refusal: Option<LinkRefusal>,
    /// The certificate the peer presented on its last session.
    pub peer_certificate: Option<crate::node::pki::CertInfo>,
    /// The sync protocol version of the last session.
    pub protocol: Option<u16>,
}

/// A refusal by the parent: why, what to do, and when the next attempt is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRefusal {
    /// Why, as the last attempt was refused.
    pub reason: String,
    /// What an operator should do.
    pub advice: String,
    /// When the refusals began, ms since the epoch.
    pub since_ms: i64,
    /// Attempts refused since then.
    pub attempts: u64,
    /// When the next attempt is due, ms since the epoch.
    pub next_attempt_ms: i64,
}

/// All links of a node.
#[derive(Debug, Default)]
pub struct Links {
    peers: Mutex<BTreeMap<NodeCode, LinkInfo>>,
    lags: Mutex<BTreeMap<NodeCode, LagSamples>>,
    history: Mutex<History>,
}

/// Days of records per owner kept for the dashboard's chart.
const HISTORY_DAYS: i64 = 14;
/// Minutes of replication lag per owner kept for the dashboard's chart.
const HISTORY_MINUTES: i64 = 60;

/// What the dashboard charts, since the node started: records committed here per owner
/// and UTC day, and the largest replication lag per owner and minute.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Records per owner per day (days since the epoch).
    pub records_per_day: BTreeMap<NodeCode, BTreeMap<i64, u64>>,
    /// Largest lag (ms) per owner per minute (minutes since the epoch).
    pub lag_per_minute: BTreeMap<NodeCode, BTreeMap<i64, u64>>,
}

impl History {
    fn count(&mut self, owner: NodeCode, records: u64, now_ms: i64) {
        let day = now_ms.div_euclid(86_400_000);
        let days = self.records_per_day.entry(owner).or_default();
        *days.entry(day).or_default() += records;
        days.retain(|d, _| *d > day - HISTORY_DAYS);
    }

    fn lag(&mut self, owner: NodeCode, lag_ms: u64, now_ms: i64) {
        let minute = now_ms.div_euclid(60_000);
        let minutes = self.lag_per_minute.entry(owner).or_default();
        let worst = minutes.entry(minute).or_default();
        *worst = (*worst).max(lag_ms);
        minutes.retain(|m, _| *m > minute - HISTORY_MINUTES);
    }
}

/// Replication lags kept per owner: the most recent this many records.
const LAG_SAMPLES: usize = 1024;

/// Recent replication lags of one owner's records (received here − recorded by the
/// owner, ms), kept in memory: a restart starts the window afresh.
#[derive(Debug, Default, Clone)]
struct LagSamples {
    ring: Vec<u64>,
    next: usize,
}

impl LagSamples {
    fn push(&mut self, lag_ms: u64) {
        if self.ring.len() < LAG_SAMPLES {
            self.ring.push(lag_ms);
        } else {
            self.ring[self.next] = lag_ms;
        }
        self.next = (self.next + 1) % LAG_SAMPLES;
    }

    /// The `q`-quantile (0..=1) by nearest rank.
    fn quantile(&self, q: f64) -> Option<u64> {
        let mut sorted = self.ring.clone();
        sorted.sort_unstable();
        let last = sorted.len().checked_sub(1)?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = ((last as f64) * q).round() as usize;
        sorted.get(rank.min(last)).copied()
    }
}

impl Links {
    fn with(&self, peer: NodeCode, f: impl FnOnce(&mut LinkInfo)) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        f(peers.entry(peer).or_default());
    }

    /// Applies a session event.
    pub fn record(&self, peer: NodeCode, event: &Event, now_ms: i64) {
        self.with(peer, |l| match event {
            Event::Connected { protocol, .. } => {
                l.connected = true;
                l.protocol = Some(*protocol);
                l.last_error = None;
                l.refusal = None;
                l.last_sync_ms.get_or_insert(now_ms);
            }
            Event::Acknowledged { .. } => l.last_sync_ms = Some(now_ms),
            Event::Offered { owners } => l.offered.extend(owners.iter().copied()),
            Event::UploadRestarted { owners } => {
                let owners: Vec<String> = owners.iter().map(ToString::to_string).collect();
                let owners = owners.join(", ");
                tracing::warn!(%peer, %owners, "The parent stopped answering an upload; offering again");
                push_alert(l, format!("upload of {owners} unanswered; restarted"));
            }
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
                // WARN, not ERROR: after a documented recovery (`lmsync init --restore`) this
                // is expected and the restore that follows is accepted; a clone is refused
                // (and alerted in status) all the same.
                tracing::warn!(%peer, %old, %new, "Child's store identity changed (restored, re-initialised or cloned node); accepting only a restore of its records until it rebuilds");
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
                tracing::error!(%peer, %detail, "Copies here and at the peer conflict");
                push_alert(l, format!("conflict: {detail}"));
            }
            Event::BehindParent { here, at_parent } => {
                tracing::error!(%peer, here, at_parent, "The parent holds more of this node's records than its store: restoring them");
                push_alert(l, format!("own records complete through {here}, {at_parent} at the parent; restored from it"));
            }
            Event::DocumentsReturned { count, .. } => {
                if *count > 0 {
                    tracing::info!(%peer, count, "The child sent documents that were missing or older here");
                }
            }
            Event::DocumentRefused { kind, id, issuer, reason } => {
                tracing::error!(%peer, %kind, %id, %issuer, %reason, "Refused a document outside its issuer's authority");
                push_alert(l, format!("document {kind}/{id} by {issuer} refused: {reason}"));
            }
            Event::RebuiltFromChildren { .. } => {
                tracing::info!(%peer, "Rebuilt from the children: own documents returned; publishing resumes");
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
                l.sessions_broken += 1;
                l.last_break.clone_from(&error);
                l.last_error = error;
            }
        });
    }

    /// The parent refused this node; the next attempt is `retry_in` from `now_ms`.
    pub fn refused(
        &self,
        peer: NodeCode,
        reason: String,
        advice: String,
        retry_in: std::time::Duration,
        now_ms: i64,
    ) {
        let next_attempt_ms =
            now_ms.saturating_add(i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX));
        self.with(peer, |l| {
            let r = l.refusal.get_or_insert_with(|| LinkRefusal {
                reason: String::new(),
                advice: String::new(),
                since_ms: now_ms,
                attempts: 0,
                next_attempt_ms,
            });
            r.reason = reason;
            r.advice = advice;
            r.attempts += 1;
            r.next_attempt_ms = next_attempt_ms;
        });
    }

    /// The certificate `peer` presented on the session just established.
    pub fn presented(&self, peer: NodeCode, certificate: crate::node::pki::CertInfo) {
        self.with(peer, |l| l.peer_certificate = Some(certificate));
    }

    /// A connection presenting `peer`'s certificate failed the handshake (its `Hello` did
    /// not match, or it broke before one). A live session of `peer` is left as it is; the
    /// failure is kept as an alert, and as the last error while no session is live.
    pub fn handshake_failed(&self, peer: NodeCode, error: String) {
        self.with(peer, |l| {
            if !l.connected {
                l.last_error = Some(error.clone());
            }
            push_alert(
                l,
                format!("a connection with this node's certificate failed the handshake: {error}"),
            );
        });
    }

    /// Notes the replication lag of records just received.
    pub fn record_lags(&self, records: &[crate::core::store::RecordWrite], now_ms: i64) {
        let mut lags = self.lags.lock().unwrap_or_else(|p| p.into_inner());
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        for w in records {
            let e = &w.record.envelope;
            let lag = u64::try_from(now_ms - e.recorded_at_ms).unwrap_or(0);
            lags.entry(e.owner).or_default().push(lag);
            history.count(e.owner, 1, now_ms);
            history.lag(e.owner, lag, now_ms);
        }
    }

    /// Notes records of `owner` written here through the API.
    pub fn record_written(&self, owner: NodeCode, records: u64, now_ms: i64) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.count(owner, records, now_ms);
    }

    /// The charts' history.
    pub fn history(&self) -> History {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The median and 95th-percentile replication lag (ms) of `owner`'s recent records.
    pub fn lag_quantiles(&self, owner: NodeCode) -> (Option<u64>, Option<u64>) {
        let lags = self.lags.lock().unwrap_or_else(|p| p.into_inner());
        lags.get(&owner)
            .map_or((None, None), |s| (s.quantile(0.5), s.quantile(0.95)))
    }

    /// True while a session with `peer` is up.
    pub fn is_connected(&self, peer: NodeCode) -> bool {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.get(&peer).is_some_and(|l| l.connected)
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

impl LinkFacts for Links {
    fn lag_quantiles(&self, owner: NodeCode) -> (Option<u64>, Option<u64>) {
        Links::lag_quantiles(self, owner)
    }

    fn offered(&self, owner: NodeCode) -> Option<u64> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .values()
            .filter_map(|l| l.offered.get(&owner))
            .copied()
            .max()
    }
}

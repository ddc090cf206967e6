//! `GET /metrics`: Prometheus text, built fresh from the store and counters at each scrape
//! (an explicit registry per scrape, no global recorder).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::AppState;
use super::error::ApiError;

type Labels = Vec<(&'static str, String)>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge<i64, AtomicI64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter<u64, AtomicU64> = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn store_metrics(registry: &mut Registry, app: &AppState) {
    let records: Family<Labels, Gauge> = Family::default();
    for (owner, counts) in app.store.owner_counts() {
        for (kind, n) in counts.by_kind {
            records
                .get_or_create(&vec![
                    ("owner", owner.to_string()),
                    ("kind", kind.to_string()),
                ])
                .set(as_i64(n));
        }
    }
    registry.register(
        "store_records",
        "Records stored, by owner and kind",
        records,
    );
    gauge(
        registry,
        "store_bytes",
        "Bytes the store occupies on disk",
        as_i64(app.store.size_on_disk()),
    );
    gauge(
        registry,
        "store_healthy",
        "1 while the store accepts writes, 0 after a storage fault",
        i64::from(app.store.fault().is_none()),
    );
    let full = app.store.full();
    gauge(
        registry,
        "store_full",
        "1 when the last storage fault was a full disk",
        i64::from(full),
    );
}

fn ingest_metrics(registry: &mut Registry, app: &AppState) {
    let w = app.writer.stats();
    counter(
        registry,
        "store_commits",
        "Durable group commits",
        w.commits.load(Relaxed),
    );
    counter(
        registry,
        "store_commit_microseconds",
        "Time spent in group commits",
        w.commit_micros.load(Relaxed),
    );
    let ingest: Family<Labels, Counter> = Family::default();
    ingest
        .get_or_create(&vec![("result", "stored".into())])
        .inc_by(w.records_written.load(Relaxed));
    ingest
        .get_or_create(&vec![("result", "unchanged".into())])
        .inc_by(w.records_unchanged.load(Relaxed));
    ingest
        .get_or_create(&vec![("result", "rejected".into())])
        .inc_by(app.stats.rejected.load(Relaxed));
    registry.register(
        "ingest_records",
        "Records received through the API, by result",
        ingest,
    );
    counter(
        registry,
        "ingest_requests",
        "Ingest requests acknowledged",
        w.requests.load(Relaxed),
    );
}

fn api_metrics(registry: &mut Registry, app: &AppState) {
    let refused: Family<Labels, Counter> = Family::default();
    for (reason, n) in [
        ("max_connections", &app.stats.refused_connections),
        ("max_in_flight", &app.stats.overloaded),
        ("header_read_timeout", &app.stats.head_timeouts),
    ] {
        refused
            .get_or_create(&vec![("reason", reason.into())])
            .inc_by(n.load(Relaxed));
    }
    registry.register(
        "api_refused",
        "Connections and requests the API refused or cut off at one of its limits, by limit",
        refused,
    );
    gauge(
        registry,
        "api_changes_streams",
        "Change-feed answers (GET /v1/changes) being sent",
        as_i64(app.stats.changes_streams.load(Relaxed)),
    );
    gauge(
        registry,
        "api_changes_waiting",
        "Change-feed answers caught up and waiting for a commit",
        as_i64(app.stats.changes_waiting.load(Relaxed)),
    );
    counter(
        registry,
        "api_changes_records",
        "Record lines the change feed has sent",
        app.stats.changes_records.load(Relaxed),
    );
}

fn link_metrics(registry: &mut Registry, app: &AppState) {
    let now_ms = app.clock.now_ms();
    let connected: Family<Labels, Gauge> = Family::default();
    let since_sync: Family<Labels, Gauge> = Family::default();
    let received: Family<Labels, Counter> = Family::default();
    let repaired: Family<Labels, Counter> = Family::default();
    let quarantined: Family<Labels, Counter> = Family::default();
    let alerts: Family<Labels, Gauge> = Family::default();
    let lag: Family<Labels, Gauge> = Family::default();
    for (peer, info) in app.links.snapshot() {
        let labels = vec![
            ("peer", peer.to_string()),
            ("tier", peer.tier().to_string()),
        ];
        connected
            .get_or_create(&labels)
            .set(i64::from(info.connected));
        if let Some(t) = info.last_sync_ms {
            since_sync.get_or_create(&labels).set((now_ms - t) / 1000);
        }
        received
            .get_or_create(&labels)
            .inc_by(info.records_received);
        repaired
            .get_or_create(&labels)
            .inc_by(info.records_repaired);
        quarantined.get_or_create(&labels).inc_by(info.quarantined);
        alerts
            .get_or_create(&labels)
            .set(i64::try_from(info.alerts.len()).unwrap_or(i64::MAX));
        if !info.offered.is_empty()
            && let Ok(by_owner) = super::status::child_lag(app.store.as_ref(), &info)
        {
            lag.get_or_create(&labels)
                .set(as_i64(by_owner.values().sum::<u64>()));
        }
    }
    registry.register(
        "sync_child_lag_records",
        "Record versions a child holds (by its last offer) that are not here yet",
        lag,
    );
    registry.register(
        "peer_connected",
        "1 while a sync session with the peer is up",
        connected,
    );
    registry.register(
        "sync_seconds_since_last",
        "Seconds since records or acks last moved on the link",
        since_sync,
    );
    registry.register(
        "sync_records_received",
        "Records received from the peer",
        received,
    );
    registry.register(
        "sync_records_repaired",
        "Records anti-entropy repaired from the peer",
        repaired,
    );
    registry.register(
        "sync_records_quarantined",
        "Received records refused by validation or hash",
        quarantined,
    );
    registry.register(
        "sync_alerts",
        "Conflicts and regressions seen on the link (recent)",
        alerts,
    );
    if let Some(parent) = &app.config.parent {
        let mut pending = 0u64;
        for owner in app.store.owner_counts().into_keys() {
            let here = app.store.complete_through(owner).unwrap_or(0);
            pending += here.saturating_sub(app.store.watermark(parent.code, owner).unwrap_or(0));
        }
        gauge(
            registry,
            "sync_records_pending",
            "Record versions held here and not yet acknowledged by the parent",
            as_i64(pending),
        );
    }
}

fn node_metrics(registry: &mut Registry, app: &AppState) {
    let info: Family<Labels, Gauge> = Family::default();
    info.get_or_create(&vec![
        ("node", app.node.to_string()),
        ("tier", app.node.tier().to_string()),
        ("version", env!("CARGO_PKG_VERSION").to_string()),
    ])
    .set(1);
    registry.register(
        "lmsync_build_info",
        "Node code, tier and version of this process",
        info,
    );
    if let Some(c) = app.certificate.get() {
        gauge(
            registry,
            "cert_expiry_timestamp_seconds",
            "When this node's certificate expires",
            c.not_after,
        );
        let soon = c.validity_warning(app.clock.now_ms() / 1000).is_some();
        gauge(
            registry,
            "cert_needs_renewal",
            "1 when this node's certificate expires within 30 days, has expired or is not yet valid",
            i64::from(soon),
        );
    }
    gauge(
        registry,
        "revoked_certificates",
        "Node certificates revoked in this node's view of the network",
        i64::try_from(app.trust.revocations().len()).unwrap_or(i64::MAX),
    );
    gauge(
        registry,
        "process_start_time_seconds",
        "When the node started",
        app.started_at_ms / 1000,
    );
}

/// `GET /metrics`.
pub(super) async fn metrics(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut registry = Registry::default();
    node_metrics(&mut registry, &app);
    store_metrics(&mut registry, &app);
    ingest_metrics(&mut registry, &app);
    api_metrics(&mut registry, &app);
    link_metrics(&mut registry, &app);
    let mut text = String::new();
    encode(&mut text, &registry).map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

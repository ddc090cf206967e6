//! What the national bench reads from outside the nodes: digests over HTTP, when each
//! city's seqs become visible at the ministry, CPU and memory from `/proc`, and, once
//! every node has stopped, the stores themselves for the nothing-lost check.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lmsync::core::model::NodeCode;
use serde_json::Value;

use super::feed::{Ack, Ledger};

/// `(records, root)` of an owner's digest.
pub type Digest = (u64, String);

/// `owner`'s digest at the node whose API is `api`; None while it does not answer.
pub async fn digest(client: &reqwest::Client, api: &str, owner: NodeCode) -> Option<Digest> {
    let url = format!("{api}/v1/digest?owner={owner}");
    let d: Value = client.get(url).send().await.ok()?.json().await.ok()?;
    Some((d["records"].as_u64()?, d["root"].as_str()?.to_string()))
}

/// When each owner's highest seq at the ministry grew, polled from its `/v1/status`
/// (`owners[].last_seq`) every `every` until `stop`, then once more; the times are those
/// the answers arrived.
pub async fn watch_ministry(
    client: reqwest::Client,
    api: String,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> BTreeMap<NodeCode, Vec<(Instant, u64)>> {
    let mut seen: BTreeMap<NodeCode, Vec<(Instant, u64)>> = BTreeMap::new();
    loop {
        let last = stop.load(Ordering::Relaxed);
        if let Some(owners) = status_owners(&client, &api).await {
            let at = Instant::now();
            for (owner, seq) in owners {
                let steps = seen.entry(owner).or_default();
                if steps.last().is_none_or(|(_, s)| seq > *s) {
                    steps.push((at, seq));
                }
            }
        }
        if last {
            return seen;
        }
        tokio::time::sleep(every).await;
    }
}

async fn status_owners(client: &reqwest::Client, api: &str) -> Option<Vec<(NodeCode, u64)>> {
    let s: Value = client
        .get(format!("{api}/v1/status"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    s["owners"]
        .as_array()?
        .iter()
        .map(|o| Some((o["owner"].as_str()?.parse().ok()?, o["last_seq"].as_u64()?)))
        .collect()
}

/// Per record the city changed: ms from the POST's return to the first ministry answer
/// holding its seq (0 if the ministry held it before the POST returned). None for a seq
/// never seen.
pub fn lags_ms(acks: &[Ack], steps: &[(Instant, u64)]) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for ack in acks {
        for seq in &ack.seqs {
            let i = steps.partition_point(|(_, s)| s < seq);
            out.push(
                steps
                    .get(i)
                    .map(|(at, _)| at.saturating_duration_since(ack.at).as_secs_f64() * 1000.0),
            );
        }
    }
    out
}

/// The `q`-quantile of `v` by nearest rank (v is sorted here).
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((v.len() - 1) as f64 * q).round() as usize;
    v[rank.min(v.len() - 1)]
}

/// Clock ticks per second of `/proc/PID/stat` times.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Resident memory of a process, in bytes: the total and its two parts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// VmRSS.
    pub total: u64,
    /// RssAnon: heap, stacks, the copies of relocated data; the node's own memory.
    pub anon: u64,
    /// RssFile: pages of the mapped `lmsync` binary (and libraries), which every node
    /// started from the same binary shares through the page cache.
    pub file: u64,
}

/// [`Rss`] of `pid`, from `/proc/PID/status`.
pub fn rss(pid: u32) -> Option<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some(Rss {
        total: field("VmRSS:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

/// id → version of every record of `owner` in `store`, each hash verified.
fn stored(
    store: &lmsync::node::storage::SledStore,
    node: NodeCode,
    owner: NodeCode,
) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for r in store.scan_owner(owner) {
        let r = r.unwrap_or_else(|e| panic!("{node}: reading {owner}'s records: {e}"));
        assert!(
            r.verify_hash().unwrap(),
            "{node}: bad hash for {owner}'s {}",
            r.envelope.id
        );
        out.insert(
            (r.envelope.kind.to_string(), r.envelope.id.clone()),
            r.envelope.version,
        );
    }
    out
}

/// Checks on the stopped stores under `dir` that every city's store, its province's and
/// the ministry's hold every record its ledger acknowledged, at the acknowledged version
/// or later. Each store is opened once. Returns the acknowledged records checked.
pub fn nothing_lost(dir: &Path, ledgers: &BTreeMap<NodeCode, Ledger>) -> usize {
    let mut holders: BTreeMap<NodeCode, Vec<NodeCode>> = BTreeMap::new();
    for city in ledgers.keys() {
        let province = city.province().expect("a city has a province");
        for node in [*city, province, lmsync::core::model::MINISTRY] {
            holders.entry(node).or_default().push(*city);
        }
    }
    for (node, owners) in holders {
        let store = lmsync::node::storage::SledStore::open(
            &dir.join(node.to_string()).join("data"),
            node,
            lmsync::node::storage::sled_options(64 << 20),
        )
        .unwrap_or_else(|e| panic!("{node}'s store does not open: {e}"));
        for owner in owners {
            let held = stored(&store, node, owner);
            let missing: Vec<_> = ledgers[&owner]
                .acked
                .iter()
                .filter(|(key, v)| held.get(*key).is_none_or(|h| h < *v))
                .take(5)
                .collect();
            assert!(
                missing.is_empty(),
                "{node} lacks acknowledged records of {owner}, e.g. {missing:?}"
            );
        }
    }
    ledgers.values().map(|l| l.acked.len()).sum()
}

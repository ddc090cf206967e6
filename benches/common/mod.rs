//! What the benchmarks share: generated city records, their stored encoding, and the raw
//! sled limit every ratio is measured against in the same run.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use lmsync::core::codec;
use lmsync::core::model::ingest::{Draft, IngestContext};
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::record::content_hash;
use lmsync::core::model::standards::Standards;
use lmsync::core::model::{Envelope, NodeCode, Record};
use lmsync::node::storage::keys;
use serde_json::Value;

/// Records per durable batch, everywhere.
pub const BATCH: usize = 1000;

/// An environment variable as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The city every benchmark feeds.
pub fn city() -> NodeCode {
    "440100".parse().unwrap()
}

/// Generated records as validated drafts, pseudonymised with `key`.
pub fn drafts(json: &[Value], key: &Pseudonymiser) -> Vec<Draft> {
    let standards = Standards::builtin();
    let cx = IngestContext::new(city(), &standards, Some(key));
    json.iter()
        .map(|v| cx.draft(v.clone()).expect("generated records are valid"))
        .collect()
}

/// The records as the store would hold them (key and value), for the raw sled baseline.
pub fn encoded(drafts: &[Draft]) -> Vec<([u8; 21], Vec<u8>)> {
    let refs = Standards::builtin().code_refs();
    drafts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let envelope = Envelope {
                owner: city(),
                kind: d.data.kind(),
                id: d.id.clone(),
                version: 1,
                seq: i as u64 + 1,
                status: d.status,
                recorded_at_ms: 0,
                code_refs: refs.clone(),
                hash: content_hash(city(), &d.id, d.status, &d.data).unwrap(),
            };
            let key = keys::record(city(), envelope.key());
            (
                key,
                codec::encode(&Record {
                    envelope,
                    data: d.data.clone(),
                })
                .unwrap(),
            )
        })
        .collect()
}

/// The limit: the same records and keys, `apply_batch` of [`BATCH`] + flush + fdatasync of
/// the data file, in records per second.
pub fn raw_sled(dir: &Path, records: &[([u8; 21], Vec<u8>)], cache: u64) -> f64 {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache)
        .flush_every_ms(None)
        .open()
        .unwrap();
    let file = File::open(dir.join("db")).unwrap();
    let start = Instant::now();
    for chunk in records.chunks(BATCH) {
        let mut batch = sled::Batch::default();
        for (k, v) in chunk {
            batch.insert(&k[..], v.as_slice());
        }
        db.apply_batch(batch).unwrap();
        db.flush().unwrap();
        file.sync_data().unwrap();
    }
    records.len() as f64 / start.elapsed().as_secs_f64()
}

/// Bytes of the files under `path`.
pub fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

/// What a closed store holds, by kind of key: bytes of keys and values together, as the
/// store writes them, before sled's own overhead (node headers, versions not yet
/// reclaimed, free space in segments).
pub struct Held {
    /// (kind, bytes), in the order first met.
    pub by_kind: Vec<(&'static str, u64)>,
    /// Records held and the bytes of their encoded values.
    pub records: u64,
    pub record_bytes: u64,
}

/// [`Held`] of the closed store in `dir`.
pub fn held(dir: &Path) -> Held {
    let db = sled::Config::new().path(dir).open().unwrap();
    let mut held = Held {
        by_kind: Vec::new(),
        records: 0,
        record_bytes: 0,
    };
    for item in db.iter() {
        let (k, v) = item.unwrap();
        let kind = match k.first() {
            Some(&keys::RECORD) => {
                held.records += 1;
                held.record_bytes += v.len() as u64;
                "records"
            }
            Some(&keys::LOG) => "change log",
            Some(&keys::INDEX) => "leaf index",
            Some(&keys::FIGURES) => "kept figures",
            _ => "other",
        };
        let bytes = (k.len() + v.len()) as u64;
        match held.by_kind.iter_mut().find(|(name, _)| *name == kind) {
            Some((_, total)) => *total += bytes,
            None => held.by_kind.push((kind, bytes)),
        }
    }
    held
}

/// One line saying where the disk of the closed store in `dir` goes, per record held:
/// its files against the encoded record, what it holds by kind, and the rest (sled's own
/// overhead).
pub fn where_the_bytes_go(dir: &Path) -> String {
    let held = held(dir);
    let n = held.records.max(1) as f64;
    let disk = dir_bytes(dir) as f64 / n;
    let record = held.record_bytes as f64 / n;
    let total: u64 = held.by_kind.iter().map(|(_, b)| b).sum();
    let parts: Vec<String> = held
        .by_kind
        .iter()
        .map(|(kind, b)| format!("{kind} {:.0}", *b as f64 / n))
        .collect();
    format!(
        "{disk:.0} B per record on disk, {:.2}x the {record:.0} B encoded record; the store \
         holds {:.0} ({}, keys included), sled's own overhead is the other {:.0}",
        disk / record,
        total as f64 / n,
        parts.join(", "),
        disk - total as f64 / n
    )
}

/// Posts `bodies` to `url` with the bearer `token` from `clients` concurrent clients, each
/// taking the next body as it finishes one, as `lmsync import` does; any refusal fails
/// the benchmark.
pub async fn post_all(url: &str, token: &str, bodies: Vec<Vec<u8>>, clients: usize) {
    let client = reqwest::Client::new();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, token, queue) = (
            client.clone(),
            url.to_string(),
            token.to_string(),
            queue.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap().next();
                let Some(body) = next else { break };
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A city node's files in `dir` (a fresh CA and certificate, the API token `token`, a
/// pseudonym key, an empty store with a `cache`-byte page cache) and its config, as
/// `lmsync run` would load it; `api_extra` goes on at the end of its `[api]` section,
/// so it may add `[api]` keys and then further sections.
pub fn city_config(
    dir: &Path,
    token: &str,
    cache: u64,
    api_extra: &str,
) -> lmsync::node::config::Config {
    use lmsync::node::config::{self, Config};
    use lmsync::node::storage::{SledStore, sled_options};
    let pki = dir.join("pki");
    lmsync::node::pki::init_ca(&dir.join("ca")).unwrap();
    lmsync::node::pki::issue(&dir.join("ca"), city(), &pki, 1).unwrap();
    std::fs::write(dir.join("token"), token).unwrap();
    std::fs::write(dir.join("pidkey"), "a".repeat(64)).unwrap();
    SledStore::create(&dir.join("data"), city(), [2; 16], 0, sled_options(cache)).unwrap();
    let text = format!(
        "[node]\ncode = \"440100\"\ndata_dir = \"data\"\n[network]\nlisten = \"127.0.0.1:0\"\n\
         [tls]\nca = \"pki/ca.crt\"\ncert = \"pki/node.crt\"\nkey = \"pki/node.key\"\n\
         [privacy]\npid_key_file = \"pidkey\"\n[log]\nlevel = \"error\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"token\"\nbody_limit = \"64MiB\"\n{api_extra}"
    );
    Config::from_raw(config::parse(&text).unwrap(), dir).unwrap()
}

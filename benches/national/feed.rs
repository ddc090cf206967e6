//! Feeding the national bench's cities through their APIs, as offices would: each city's
//! batches in order (later versions follow earlier ones), every acknowledgement noted in
//! a ledger (the ground truth of the nothing-lost check) with the time the POST returned
//! (the city's commit, the start of the lag measurement) and the seqs it assigned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lmsync::core::model::NodeCode;
use serde_json::Value;
use tokio::sync::oneshot;

const RETRY: Duration = Duration::from_millis(200);

/// Where a city's API is and the token it wants.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub api: String,
    pub token: String,
}

/// One acknowledged batch: when the POST returned and the seqs of the records it changed.
#[derive(Debug, Clone)]
pub struct Ack {
    pub at: Instant,
    pub seqs: Vec<u64>,
}

/// What one city acknowledged.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Highest version acknowledged per `(kind, id)`.
    pub acked: BTreeMap<(String, String), u64>,
    /// Acknowledged batches, in order.
    pub acks: Vec<Ack>,
    /// Records posted and accepted (acknowledged entries, unchanged ones included).
    pub accepted: u64,
}

impl Ledger {
    fn note(&mut self, city: NodeCode, answer: &Value, at: Instant) {
        let accepted = answer["accepted"]
            .as_array()
            .unwrap_or_else(|| panic!("{city}: no `accepted` in {answer}"));
        let mut seqs = Vec::new();
        for a in accepted {
            let key = (
                a["kind"].as_str().unwrap().to_string(),
                a["id"].as_str().unwrap().to_string(),
            );
            let version = a["version"].as_u64().unwrap();
            let held = self.acked.entry(key).or_insert(version);
            *held = (*held).max(version);
            if a["changed"] == true {
                seqs.push(a["seq"].as_u64().unwrap());
            }
            self.accepted += 1;
        }
        self.acks.push(Ack { at, seqs });
    }
}

/// A planned stop in a city's feed: after `after` batches it says so on `paused` and
/// waits on `resume` for where its API is now.
pub struct Pause {
    pub after: usize,
    pub paused: oneshot::Sender<()>,
    pub resume: oneshot::Receiver<Endpoint>,
}

/// One city's feed.
pub struct Feed {
    pub city: NodeCode,
    pub endpoint: Endpoint,
    /// JSON array bodies, in order.
    pub batches: Vec<Vec<u8>>,
    /// Batch `i` is sent no earlier than `offset + i × spacing` after the start (None: at
    /// once). Cities get different offsets so that together they post evenly.
    pub spacing: Option<Duration>,
    pub offset: Duration,
    pub pause: Option<Pause>,
    /// Batches acknowledged across every city of the phase.
    pub progress: Arc<AtomicU64>,
    /// Nothing may still be unanswered by then.
    pub deadline: Instant,
}

/// Posts every batch of `feed`, retrying while the node is unreachable, restarting,
/// restoring or overloaded; panics on any other refusal or at the deadline.
pub async fn run(client: reqwest::Client, mut feed: Feed, mut ledger: Ledger) -> Ledger {
    let start = Instant::now();
    let batches = std::mem::take(&mut feed.batches);
    for (i, body) in batches.into_iter().enumerate() {
        if let Some(pause) = feed.pause.take_if(|p| p.after == i) {
            let _ = pause.paused.send(());
            feed.endpoint = pause
                .resume
                .await
                .expect("the fault driver resumes the feed");
        }
        if let Some(spacing) = feed.spacing {
            let due = start + feed.offset + spacing * u32::try_from(i).unwrap_or(u32::MAX);
            tokio::time::sleep_until(due.into()).await;
        }
        let (answer, at) = post(&client, &feed, body).await;
        ledger.note(feed.city, &answer, at);
        feed.progress.fetch_add(1, Ordering::Relaxed);
    }
    ledger
}

async fn post(client: &reqwest::Client, feed: &Feed, body: Vec<u8>) -> (Value, Instant) {
    let url = format!("{}/v1/records", feed.endpoint.api);
    loop {
        assert!(
            Instant::now() < feed.deadline,
            "{}: a batch still unacknowledged at the deadline",
            feed.city
        );
        let sent = client
            .post(&url)
            .bearer_auth(&feed.endpoint.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // Refused or reset: the node is restarting. The batch may or may not have
            // been stored; posting it again is idempotent.
            Err(_) => {
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let at = Instant::now();
        match status {
            200 => return (serde_json::from_str(&text).expect("an ingest answer"), at),
            503 => tokio::time::sleep(RETRY).await,
            _ => panic!("{}: POST answered {status}: {text}", feed.city),
        }
    }
}

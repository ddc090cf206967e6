//! The local demo network: real nodes on loopback, each with its own certificate from a
//! fresh network CA, its own sled store and its own HTTP API, fed seeded synthetic office
//! records through that API.
//!
//! This module builds and drives the network; `cli::demo_cmd` shows it. Nodes run in this
//! process (one tokio runtime), each exactly as `lmsync run` would run it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{self, Config};
use crate::daemon::{self, DaemonError, RunningNode};
use crate::model::{CityKind, NodeCode, tables::PILOT_CITIES};
use crate::pki;
use crate::storage::{SledStore, sled_options};
use crate::synth::Generator;

/// Cities the demo starts first: two provinces, prefecture-level and county-level cities,
/// then an autonomous prefecture, then more pilots.
const PREFERRED: [u32; 8] = [
    440100, 440300, 320200, 320581, 210100, 222400, 420100, 429005,
];

/// Records per API request.
const BATCH: usize = 1000;

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Setting up a node's files failed.
    #[error("setting up node {node}: {message}")]
    Setup {
        /// The node.
        node: NodeCode,
        /// What went wrong.
        message: String,
    },
    /// A node failed to start.
    #[error(transparent)]
    Node(#[from] DaemonError),
    /// Feeding a city failed.
    #[error("feeding city {node}: {message}")]
    Feed {
        /// The city.
        node: NodeCode,
        /// What went wrong.
        message: String,
    },
}

fn setup_error(node: NodeCode) -> impl Fn(String) -> DemoError {
    move |message| DemoError::Setup { node, message }
}

/// The first `n` demo cities, always spanning at least two provinces when n ≥ 3 and
/// including a county-level city once n ≥ 4.
pub fn choose_cities(n: usize) -> Vec<NodeCode> {
    let preferred = PREFERRED.iter().copied();
    let rest = PILOT_CITIES
        .iter()
        .filter(|(c, _, kind, _)| !PREFERRED.contains(c) && *kind != CityKind::CountyLevel)
        .map(|(c, _, _, _)| *c);
    preferred
        .chain(rest)
        .filter_map(|c| NodeCode::new(c).ok())
        .take(n)
        .collect()
}

/// Writes a node's certificate, token, pseudonym key, store and config under `dir`.
pub fn prepare_node(dir: &Path, ca: &Path, node: NodeCode) -> Result<Config, DemoError> {
    let err = setup_error(node);
    let home = dir.join(node.to_string());
    pki::issue(ca, node, &home.join("pki"), 1).map_err(|e| err(e.to_string()))?;
    std::fs::write(home.join("token"), hex::encode(rand::random::<[u8; 32]>()))
        .map_err(|e| err(e.to_string()))?;
    std::fs::write(home.join("pidkey"), hex::encode(rand::random::<[u8; 32]>()))
        .map_err(|e| err(e.to_string()))?;
    SledStore::create(
        &home.join("data"),
        node,
        rand::random(),
        0,
        sled_options(64 << 20),
    )
    .map_err(|e| err(e.to_string()))?;
    let text = format!(
        "[node]\ncode = \"{node}\"\ndata_dir = \"data\"\n[network]\nlisten = \"127.0.0.1:0\"\n\
         [tls]\nca = \"pki/ca.crt\"\ncert = \"pki/node.crt\"\nkey = \"pki/node.key\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"token\"\nbody_limit = \"64MiB\"\n\
         [storage]\ncache_capacity = \"64MiB\"\n[privacy]\npid_key_file = \"pidkey\"\n[log]\nlevel = \"warn\"\n"
    );
    std::fs::write(home.join("lmsync.toml"), &text).map_err(|e| err(e.to_string()))?;
    let raw = config::parse(&text).map_err(|e| err(e.to_string()))?;
    Config::from_raw(raw, &home).map_err(|e| err(e.to_string()))
}

/// One city of the running demo.
pub struct DemoCity {
    /// Its code.
    pub code: NodeCode,
    /// Its name.
    pub name: String,
    /// Its API.
    pub api: SocketAddr,
    /// Its API token.
    pub token: String,
    /// Records acknowledged by its API so far.
    pub stored: Arc<AtomicU64>,
    node: RunningNode,
}

/// A running demo network.
pub struct Demo {
    /// Where its files live.
    pub dir: PathBuf,
    /// The cities.
    pub cities: Vec<DemoCity>,
    /// Records to feed each city.
    pub records: usize,
    /// Seed of the synthetic records.
    pub seed: u64,
}

impl Demo {
    /// Creates the CA and starts `cities` city nodes under `dir`.
    pub async fn start(
        dir: &Path,
        cities: usize,
        records: usize,
        seed: u64,
    ) -> Result<Demo, DemoError> {
        let ca = dir.join("ca");
        pki::init_ca(&ca).map_err(|e| setup_error(crate::model::MINISTRY)(e.to_string()))?;
        let mut started = Vec::new();
        for code in choose_cities(cities) {
            let config = prepare_node(dir, &ca, code)?;
            let token = daemon::read_token(&config.token_file)?;
            let name = config.name.clone();
            let node = daemon::start(config).await?;
            started.push(DemoCity {
                code,
                name,
                api: node.api_addr,
                token,
                stored: Arc::default(),
                node,
            });
        }
        Ok(Demo {
            dir: dir.to_path_buf(),
            cities: started,
            records,
            seed,
        })
    }

    /// Feeds every city its synthetic records through its API, cities in parallel and
    /// each city's batches in order (so later versions follow earlier ones).
    pub async fn feed(&self) -> Result<(), DemoError> {
        let client = reqwest::Client::new();
        let mut tasks = tokio::task::JoinSet::new();
        for city in &self.cities {
            let (client, code, seed, n) = (client.clone(), city.code, self.seed, self.records);
            let url = format!("http://{}/v1/records", city.api);
            let (token, stored) = (city.token.clone(), city.stored.clone());
            tasks.spawn(
                async move { feed_city(&client, &url, &token, code, seed, n, &stored).await },
            );
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| DemoError::Feed {
                node: crate::model::MINISTRY,
                message: e.to_string(),
            })??;
        }
        Ok(())
    }

    /// Stops every node in order.
    pub async fn stop(self) -> Result<(), DemoError> {
        for city in self.cities {
            city.node.stop().await?;
        }
        Ok(())
    }
}

async fn feed_city(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    code: NodeCode,
    seed: u64,
    records: usize,
    stored: &AtomicU64,
) -> Result<(), DemoError> {
    let err = |message: String| DemoError::Feed {
        node: code,
        message,
    };
    let mut generator = Generator::new(code, seed);
    let mut left = records;
    while left > 0 {
        let batch: Vec<serde_json::Value> = generator.by_ref().take(left.min(BATCH)).collect();
        let response = client
            .post(url)
            .bearer_auth(token)
            .json(&batch)
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        if response.status() != reqwest::StatusCode::OK {
            let text = response.text().await.unwrap_or_default();
            return Err(err(format!("the API refused a batch: {text}")));
        }
        left -= batch.len();
        stored.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

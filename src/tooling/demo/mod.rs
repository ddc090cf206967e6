//! The local demo network: the ministry, the provinces of the chosen pilot cities and the
//! cities themselves, each a real node on loopback with its own certificate from a fresh
//! network CA, its own sled store, its own HTTP API, and real QUIC between tiers. Cities
//! are fed seeded synthetic office records through their APIs while sync runs; the
//! ministry then publishes a classification version that flows down and takes effect.
//!
//! This module builds and drives the network; `cli::demo` shows it. Nodes run in this
//! process (one tokio runtime), each exactly as `lmsync run` would run it. [`national`]
//! holds the national tree (`lmsync demo --national`, `benches/national.rs`).

pub mod national;

pub use national::{Branch, national_tree, scaled_tree};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::core::model::{CityKind, MINISTRY, NodeCode, tables::PILOT_CITIES};
use crate::node::config::{self, Config};
use crate::node::daemon::{self, DaemonError, RunningNode};
use crate::node::pki;
use crate::node::storage::{SledStore, sled_options};
use crate::tooling::synth::Generator;

/// Cities the demo starts first: two provinces, prefecture-level and county-level cities,
/// then an autonomous prefecture, then more pilots.
const PREFERRED: [u32; 8] = [
    440100, 440300, 320200, 320581, 210100, 222400, 420100, 429005,
];

/// Records per API request.
const BATCH: usize = 1000;

/// The classification version the ministry publishes during the demo (a 增补本-style
/// delta adding two occupations).
pub const DEMO_CLASSIFICATION: &str = "CN-OCC@1999+2005";

/// The service-standard target the ministry publishes during the demo (M01 ≥ 0.60).
pub const DEMO_TARGET: &str = "M01-online-rate";

/// How many cities meet the demo's target, as the ministry's coverage judges them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetStanding {
    /// Cities whose value meets the target.
    pub met: usize,
    /// Cities whose value misses it.
    pub missed: usize,
    /// Cities it does not judge (no data, not a pilot).
    pub not_judged: usize,
}

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
    /// Talking to a node's API failed.
    #[error("node {node}: {message}")]
    Api {
        /// The node.
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
pub fn prepare_node(
    dir: &Path,
    ca: &Path,
    node: NodeCode,
    parent: Option<&str>,
) -> Result<Config, DemoError> {
    let err = setup_error(node);
    let io = |e: std::io::Error| err(e.to_string());
    let home = dir.join(node.to_string());
    pki::issue(ca, node, &home.join("pki"), 1).map_err(|e| err(e.to_string()))?;
    std::fs::write(home.join("token"), hex::encode(rand::random::<[u8; 32]>())).map_err(io)?;
    std::fs::write(home.join("pidkey"), hex::encode(rand::random::<[u8; 32]>())).map_err(io)?;
    SledStore::create(
        &home.join("data"),
        node,
        rand::random(),
        0,
        sled_options(64 << 20),
    )
    .map_err(|e| err(e.to_string()))?;
    let parent = parent.map_or_else(String::new, |p| format!("parent = \"{p}\"\n"));
    // The national tree's filler cities have no built-in name.
    let name = national::display_name(node);
    let text = format!(
        "[node]\ncode = \"{node}\"\nname = \"{name}\"\ndata_dir = \"data\"\n[network]\nlisten = \"127.0.0.1:0\"\n{parent}\
         [tls]\nca = \"pki/ca.crt\"\ncert = \"pki/node.crt\"\nkey = \"pki/node.key\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"token\"\nbody_limit = \"64MiB\"\n\
         [sync]\ninterval = \"200ms\"\nanti_entropy_interval = \"10s\"\n\
         [storage]\ncache_capacity = \"64MiB\"\n[privacy]\npid_key_file = \"pidkey\"\n[log]\nlevel = \"warn\"\n"
    );
    std::fs::write(home.join("lmsync.toml"), &text).map_err(io)?;
    let raw = config::parse(&text).map_err(|e| err(e.to_string()))?;
    Config::from_raw(raw, &home).map_err(|e| err(e.to_string()))
}

/// One node of the running demo.
pub struct DemoNode {
    /// Its code.
    pub code: NodeCode,
    /// Its name.
    pub name: String,
    /// Its API.
    pub api: SocketAddr,
    /// Its API token.
    pub token: String,
    /// Records acknowledged by its API so far (cities).
    pub stored: Arc<AtomicU64>,
    node: RunningNode,
}

impl DemoNode {
    async fn start(config: Config) -> Result<DemoNode, DemoError> {
        let token = daemon::read_token(&config.token_file)?;
        let (code, name) = (config.node, config.name.clone());
        let node = daemon::start(config).await?;
        Ok(DemoNode {
            code,
            name,
            api: node.api_addr,
            token,
            stored: Arc::default(),
            node,
        })
    }

    /// Where its public information service listens, if it runs one.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.node.public.as_ref().map(|p| p.addr)
    }

    fn quic(&self) -> String {
        self.node
            .sync
            .quic_addr
            .map_or_else(String::new, |a| a.to_string())
    }

    async fn get(&self, client: &reqwest::Client, path: &str) -> Result<Value, DemoError> {
        let err = |e: reqwest::Error| DemoError::Api {
            node: self.code,
            message: e.to_string(),
        };
        client
            .get(format!("http://{}{path}", self.api))
            .send()
            .await
            .map_err(err)?
            .json()
            .await
            .map_err(err)
    }

    /// The digest of `owner`'s records here.
    pub async fn digest(
        &self,
        client: &reqwest::Client,
        owner: NodeCode,
    ) -> Result<Value, DemoError> {
        self.get(client, &format!("/v1/digest?owner={owner}")).await
    }
}

/// A running demo network.
pub struct Demo {
    /// Where its files live.
    pub dir: PathBuf,
    /// The ministry.
    pub ministry: DemoNode,
    /// The provinces of the cities.
    pub provinces: Vec<DemoNode>,
    /// The cities.
    pub cities: Vec<DemoNode>,
    /// Records to feed each city.
    pub records: usize,
    /// Seed of the synthetic records.
    pub seed: u64,
}

/// One owner's digest at each tier.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerDigests {
    /// The city.
    pub city: NodeCode,
    /// Its name.
    pub name: String,
    /// `(records, root)` at the city, its province and the ministry.
    pub tiers: [(u64, String); 3],
}

impl OwnerDigests {
    /// True when all three tiers hold the same records.
    pub fn matches(&self) -> bool {
        self.tiers[0].0 > 0 && self.tiers.iter().all(|t| *t == self.tiers[0])
    }
}

impl Demo {
    /// Creates the CA and starts the ministry, the provinces and `cities` city nodes.
    pub async fn start(
        dir: &Path,
        cities: usize,
        records: usize,
        seed: u64,
    ) -> Result<Demo, DemoError> {
        Demo::start_cities(dir, choose_cities(cities), records, seed).await
    }

    /// Creates the CA and starts the ministry, the provinces of `chosen` and the cities
    /// `chosen` (e.g. those of [`national_tree`]).
    pub async fn start_cities(
        dir: &Path,
        chosen: Vec<NodeCode>,
        records: usize,
        seed: u64,
    ) -> Result<Demo, DemoError> {
        let ca = dir.join("ca");
        pki::init_ca(&ca).map_err(|e| setup_error(MINISTRY)(e.to_string()))?;
        // The ministry also serves the public information service: the national board.
        let mut ministry_config = prepare_node(dir, &ca, MINISTRY, None)?;
        ministry_config.public = Some(crate::node::config::PublicConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            requests_per_second: 100,
            burst: 300,
        });
        let ministry = DemoNode::start(ministry_config).await?;
        let mut provinces: Vec<DemoNode> = Vec::new();
        for province in chosen.iter().filter_map(|c| c.province()) {
            if provinces.iter().all(|p| p.code != province) {
                let parent = format!("{MINISTRY}@{}", ministry.quic());
                provinces
                    .push(DemoNode::start(prepare_node(dir, &ca, province, Some(&parent))?).await?);
            }
        }
        let mut started = Vec::new();
        for code in chosen {
            let province = provinces.iter().find(|p| Some(p.code) == code.province());
            let parent = province.map(|p| format!("{}@{}", p.code, p.quic()));
            started.push(DemoNode::start(prepare_node(dir, &ca, code, parent.as_deref())?).await?);
        }
        Ok(Demo {
            dir: dir.to_path_buf(),
            ministry,
            provinces,
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
            done.map_err(|e| DemoError::Api {
                node: MINISTRY,
                message: e.to_string(),
            })??;
        }
        Ok(())
    }

    /// How the demo's target stands at the ministry for `period`, city by city, as the
    /// ministry's coverage (and its dashboard) judge it.
    pub async fn target_standing(
        &self,
        client: &reqwest::Client,
        period: &str,
    ) -> Result<TargetStanding, DemoError> {
        let coverage = self
            .ministry
            .get(client, &format!("/v1/coverage?period={period}"))
            .await?;
        let mut standing = TargetStanding::default();
        for city in coverage["cities"].as_array().into_iter().flatten() {
            let judged = city["metrics"]["values"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["target"]["target_id"] == DEMO_TARGET);
            match judged.and_then(|v| v["status"].as_str()) {
                Some("pass") => standing.met += 1,
                Some("fail") => standing.missed += 1,
                _ => standing.not_judged += 1,
            }
        }
        Ok(standing)
    }

    /// Every city's digest at the city, its province and the ministry.
    pub async fn digests(&self, client: &reqwest::Client) -> Result<Vec<OwnerDigests>, DemoError> {
        let mut out = Vec::new();
        for city in &self.cities {
            let province = self
                .provinces
                .iter()
                .find(|p| Some(p.code) == city.code.province());
            let mut tiers: [(u64, String); 3] = Default::default();
            let nodes = [Some(city), province, Some(&self.ministry)];
            for (slot, node) in tiers.iter_mut().zip(nodes) {
                if let Some(node) = node {
                    let d = node.digest(client, city.code).await?;
                    *slot = (
                        d["records"].as_u64().unwrap_or(0),
                        d["root"].as_str().unwrap_or("").to_string(),
                    );
                }
            }
            out.push(OwnerDigests {
                city: city.code,
                name: city.name.clone(),
                tiers,
            });
        }
        Ok(out)
    }

    /// The ministry publishes the demo's documents: a classification version (two added
    /// occupations) and the notice's online-rate target.
    pub async fn publish_standard(&self, client: &reqwest::Client) -> Result<(), DemoError> {
        let classification = json!({"kind": "classification_version", "id": DEMO_CLASSIFICATION, "body": {
            "scheme": "CN-OCC", "version": "1999+2005", "supersedes": "1999",
            "add": [["4-07-99", "养老护理员"], ["6-24-99", "快递员"]]}});
        let target = json!({"kind": "service_standard_target", "id": DEMO_TARGET, "body": {
            "metric": "M01", "comparator": ">=", "threshold": 0.6, "unit": "share of reports",
            "period": "quarter", "scope": "national", "applies_to": "pilot cities",
            "source_doc": "劳社部发〔1999〕1号"}});
        for body in [classification, target] {
            publish(client, &self.ministry, &body).await?;
        }
        Ok(())
    }

    /// Each province designates its demo cities as pilots (the designations flow down to
    /// the cities and up to the ministry, where the coverage pages use them).
    pub async fn designate_pilots(&self, client: &reqwest::Client) -> Result<(), DemoError> {
        for province in &self.provinces {
            for city in self
                .cities
                .iter()
                .filter(|c| c.code.is_within(province.code))
            {
                let body = json!({"kind": "pilot_designation", "id": format!("P-{}", city.code), "body": {
                    "city": city.code, "province": province.code, "designated_on": "1999-07-01",
                    "batch": 1, "status": "active"}});
                publish(client, province, &body).await?;
            }
        }
        Ok(())
    }

    /// How many cities hold both demo documents, with the classification version in force.
    pub async fn cities_with_standard(&self, client: &reqwest::Client) -> Result<usize, DemoError> {
        let mut n = 0;
        for city in &self.cities {
            let status = city.get(client, "/v1/status").await?;
            let in_force = status["standards"]
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v == "CN-OCC@1999+2005"));
            let target = city
                .get(
                    client,
                    &format!("/v1/documents/service_standard_target/{DEMO_TARGET}"),
                )
                .await?;
            n += usize::from(in_force && target["issuer"] == "100000");
        }
        Ok(n)
    }

    /// Stops every node, cities first.
    pub async fn stop(self) -> Result<(), DemoError> {
        for n in self
            .cities
            .into_iter()
            .chain(self.provinces)
            .chain([self.ministry])
        {
            n.node.stop().await?;
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
    let err = |message: String| DemoError::Api {
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

/// Publishes a document at `node` through its API.
async fn publish(client: &reqwest::Client, node: &DemoNode, body: &Value) -> Result<(), DemoError> {
    let err = |e: reqwest::Error| DemoError::Api {
        node: node.code,
        message: e.to_string(),
    };
    let response = client
        .post(format!("http://{}/v1/documents", node.api))
        .bearer_auth(&node.token)
        .json(body)
        .send()
        .await
        .map_err(err)?;
    if !response.status().is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(DemoError::Api {
            node: node.code,
            message: format!("publishing refused: {text}"),
        });
    }
    Ok(())
}

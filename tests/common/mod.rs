//! Shared helpers for integration tests: a network CA, initialised nodes, real `lmsync run`
//! processes, and an HTTP client.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

pub mod sessions;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `lmsync` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lmsync"))
}

/// Runs `lmsync ARGS` to completion.
pub fn lmsync(args: &[&str]) -> Output {
    bin().args(args).output().expect("running lmsync")
}

/// Runs `lmsync ARGS` and insists on success, returning stdout.
pub fn lmsync_ok(args: &[&str]) -> String {
    let out = lmsync(args);
    assert!(
        out.status.success(),
        "lmsync {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A directory with a network CA and initialised nodes.
pub struct Network {
    pub dir: tempfile::TempDir,
}

/// One initialised node's files.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    pub code: String,
    pub config: PathBuf,
    pub data: PathBuf,
    pub token: String,
}

impl Network {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        lmsync_ok(&["pki", "init", "--dir", ca.to_str().unwrap()]);
        Network { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Issues a certificate and runs `lmsync init` for `code`, API and QUIC on ephemeral
    /// ports.
    pub fn init(&self, code: &str, parent: Option<&str>) -> NodeFiles {
        self.init_at(code, parent, "127.0.0.1:0")
    }

    /// Like [`Network::init`] with QUIC on `listen` (a fixed port survives restarts).
    pub fn init_at(&self, code: &str, parent: Option<&str>, listen: &str) -> NodeFiles {
        self.init_full(code, parent, listen, "127.0.0.1:0")
    }

    /// Like [`Network::init_at`] with the API on `api`.
    pub fn init_full(
        &self,
        code: &str,
        parent: Option<&str>,
        listen: &str,
        api: &str,
    ) -> NodeFiles {
        let p = self.path();
        let pki = p.join(format!("pki-{code}"));
        lmsync_ok(&[
            "pki",
            "issue",
            "--dir",
            p.join("ca").to_str().unwrap(),
            "--node",
            code,
            "--out",
            pki.to_str().unwrap(),
        ]);
        let config = p.join(format!("{code}.toml"));
        let data = p.join(format!("data-{code}"));
        let mut args = vec![
            "init",
            "--node",
            code,
            "--pki",
            pki.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--api",
            api,
            "--listen",
            listen,
            "--config",
            config.to_str().unwrap(),
        ];
        if let Some(parent) = parent {
            args.extend(["--parent", parent]);
        }
        lmsync_ok(&args);
        // Sync often, so tests see records move within a fraction of a second.
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("interval = \"5s\"", "interval = \"100ms\"")
            .replace(
                "anti_entropy_interval = \"5m\"",
                "anti_entropy_interval = \"1s\"",
            );
        std::fs::write(&config, text).unwrap();
        let token = std::fs::read_to_string(p.join(format!("{code}.token")))
            .unwrap()
            .trim()
            .to_string();
        NodeFiles {
            code: code.into(),
            config,
            data,
            token,
        }
    }
}

/// A UDP port free at the moment of asking, for a node that must keep its port across
/// restarts.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP port free at the moment of asking (an API that must keep its port).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `lmsync run` process.
pub struct RunningNode {
    pub child: Child,
    pub api: String,
    /// `host:port` of the QUIC listener (provinces and the ministry).
    pub quic: Option<String>,
    /// The public information service's base URL, when `[public]` is set.
    pub public: Option<String>,
}

impl RunningNode {
    /// Starts the node and waits for its "ready" line on stdout (the event, not a sleep).
    pub fn start(files: &NodeFiles) -> Self {
        Self::start_with(files, bin())
    }

    /// Like [`RunningNode::start`], running `lmsync` through `command` (e.g. `ip netns
    /// exec NS lmsync`), which must already name the binary.
    pub fn start_with(files: &NodeFiles, mut command: Command) -> Self {
        let child = command
            .args(["run", "--config", files.config.to_str().unwrap()])
            .env(
                "RUST_LOG",
                std::env::var("LMSYNC_TEST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning lmsync run");
        Self::when_ready(child)
    }

    /// Waits for a spawned `lmsync run` (stdout piped) to print its "ready" line.
    pub fn when_ready(mut child: Child) -> Self {
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let after = |label: &str| {
            line.split(label)
                .nth(1)
                .and_then(|r| r.split(';').next())
                .map(|v| v.trim().to_string())
        };
        let api =
            after("API ").unwrap_or_else(|| panic!("node did not report ready; got {line:?}"));
        let (quic, public) = (after("QUIC "), after("public "));
        RunningNode {
            child,
            api,
            quic,
            public,
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends the signal `name` (`HUP`, `TERM`, …) without waiting.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([format!("-{name}"), pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name}");
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn terminate(mut self) -> Option<i32> {
        self.signal("TERM");
        self.child.wait().unwrap().code()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking-style HTTP helper on a small runtime.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Self {
        Self::build(reqwest::Client::builder())
    }

    /// Requests give up after `limit`: a writer never hangs on a node that stopped
    /// answering (the fault and soak writers).
    pub fn with_timeout(limit: Duration) -> Self {
        Self::build(reqwest::Client::builder().timeout(limit))
    }

    fn build(client: reqwest::ClientBuilder) -> Self {
        Http {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            // No pooling: a connection the server closed after a 413 must not be reused,
            // and a restarted node is reached at once.
            client: client.pool_max_idle_per_host(0).build().unwrap(),
        }
    }

    pub fn get(&self, url: &str) -> (u16, Value) {
        self.rt.block_on(async {
            let r = self.client.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        })
    }

    /// GET that reports a refused connection instead of panicking (a node restarting).
    pub fn try_get(&self, url: &str) -> Option<(u16, Value)> {
        self.rt.block_on(async {
            let r = self.client.get(url).send().await.ok()?;
            let status = r.status().as_u16();
            Some((status, r.json().await.unwrap_or(Value::Null)))
        })
    }

    /// GET with a bearer token (reads from outside loopback need one).
    pub fn get_as(&self, url: &str, token: &str) -> (u16, Value) {
        self.rt.block_on(async {
            let r = self
                .client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        })
    }

    pub fn get_text(&self, url: &str) -> (u16, String) {
        self.rt.block_on(async {
            let r = self.client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }

    /// POSTs raw bytes with an optional bearer token.
    /// GET with an optional `If-None-Match`: status, headers and body text.
    pub fn get_with(
        &self,
        url: &str,
        if_none_match: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        self.rt.block_on(async {
            let mut req = self.client.get(url);
            if let Some(tag) = if_none_match {
                req = req.header("if-none-match", tag);
            }
            let r = req.send().await.unwrap();
            let (status, headers) = (r.status().as_u16(), r.headers().clone());
            (status, headers, r.text().await.unwrap_or_default())
        })
    }

    pub fn post_raw(
        &self,
        url: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, Value), reqwest::Error> {
        self.rt.block_on(async {
            let mut req = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await?;
            let status = r.status().as_u16();
            Ok((status, r.json().await.unwrap_or(Value::Null)))
        })
    }

    pub fn post(&self, url: &str, token: &str, body: &Value) -> (u16, Value) {
        self.post_raw(url, Some(token), serde_json::to_vec(body).unwrap())
            .unwrap()
    }
}

/// A valid 18-digit citizen ID from 17 digits (computes the GB 11643 check character).
pub fn citizen_id(first17: &str) -> String {
    format!(
        "{first17}{}",
        lmsync::core::model::person::check_char(first17.as_bytes())
    )
}

/// A valid vacancy record for city 440100.
pub fn vacancy(id: &str, headcount: u32) -> Value {
    serde_json::json!({
        "kind": "vacancy",
        "id": id,
        "data": {
            "receiving_office_id": "O-1",
            "employer_id": "E-1",
            "reported_on": "1999-08-02",
            "report_channel": "on_site",
            "title": "车工",
            "occupation": "6-04",
            "industry": "C",
            "headcount": headcount,
            "contract_term": "one_year_or_more",
            "term_months": 12,
            "employment_type": "full_time",
            "work_location": "440104",
            "valid_from": "1999-08-02",
            "valid_until": "1999-10-31",
            "publish_allowed": true,
            "published_online_on": "1999-08-03",
            "fill_state": "open"
        }
    })
}

/// A ministry, province 440000 and some of its cities, running.
pub struct Tree {
    pub net: Network,
    pub ministry: (NodeFiles, RunningNode),
    pub province: (NodeFiles, RunningNode),
    pub cities: Vec<(NodeFiles, RunningNode)>,
}

/// Starts a ministry, province 440000 and `cities` (in Guangdong) over loopback QUIC.
pub fn tree(cities: &[&str]) -> Tree {
    tree_with(cities, |_, config| config)
}

/// Like [`tree`], with each node's config text passed through `edit(code, text)` first.
pub fn tree_with(cities: &[&str], edit: impl Fn(&str, String) -> String) -> Tree {
    let net = Network::new();
    let start = |f: &NodeFiles| {
        let text = std::fs::read_to_string(&f.config).unwrap();
        std::fs::write(&f.config, edit(&f.code, text)).unwrap();
        RunningNode::start(f)
    };
    // Fixed ports, so that a restarted ministry or province is found where it was.
    let m = net.init_at("100000", None, &format!("127.0.0.1:{}", free_udp_port()));
    let mr = start(&m);
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let p = net.init_at(
        "440000",
        Some(&format!("100000@{}", mr.quic.clone().unwrap())),
        &listen,
    );
    let pr = start(&p);
    let cities = cities
        .iter()
        .map(|c| {
            let f = net.init(c, Some(&format!("440000@{}", pr.quic.clone().unwrap())));
            let r = start(&f);
            (f, r)
        })
        .collect();
    Tree {
        net,
        ministry: (m, mr),
        province: (p, pr),
        cities,
    }
}

/// Waits until every city's records are at the province and the ministry.
pub fn converged(http: &Http, t: &Tree) {
    for (files, city) in &t.cities {
        eventually(
            "the city's records at every tier",
            Duration::from_secs(60),
            || {
                let at_city = digest(http, city, &files.code);
                digest(http, &t.province.1, &files.code) == at_city
                    && digest(http, &t.ministry.1, &files.code) == at_city
            },
        );
    }
}

pub fn digest(http: &Http, node: &RunningNode, owner: &str) -> Value {
    http.get(&node.url(&format!("/v1/digest?owner={owner}"))).1
}

/// Waits (bounded) until `check` holds, polling the nodes' APIs.
pub fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// VmRSS of process `pid` in bytes, or `None` once it has exited.
pub fn try_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// VmRSS of a running process, in bytes.
pub fn rss(pid: u32) -> u64 {
    try_rss(pid).unwrap_or_else(|| panic!("no VmRSS for process {pid}"))
}

/// A number from the environment (long modes of the fault tests), or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A vacancy owned by `owner` (its work location inside the owner's area).
pub fn owned_vacancy(owner: &str, id: &str, headcount: u32) -> Value {
    let mut v = vacancy(id, headcount);
    v["data"]["work_location"] = Value::from(owner);
    v
}

/// What one writer sent and had acknowledged: the ground truth of the lost and phantom
/// checks in the fault and soak tests.
#[derive(Default)]
pub struct Ledger {
    /// Highest version acknowledged per id (a 200 answer naming it in `accepted`).
    pub acked: BTreeMap<String, u64>,
    /// Every id ever sent, acknowledged or not.
    pub sent: BTreeSet<String>,
    /// Entries in `accepted` of 200 answers.
    pub acks: u64,
    /// Ids numbered so far.
    next: u64,
}

impl Ledger {
    /// `size` vacancies of `owner`, noted as sent: new ids, except that once more than
    /// `earliest` exist, a share `updates` of them are new versions of earlier ids.
    pub fn batch(
        &mut self,
        rng: &mut impl rand::Rng,
        owner: &str,
        size: u64,
        (earliest, updates): (u64, f64),
    ) -> Vec<Value> {
        (0..size)
            .map(|_| {
                let n = if self.next > earliest && rng.random_bool(updates) {
                    rng.random_range(0..self.next)
                } else {
                    self.next += 1;
                    self.next
                };
                let id = format!("V-{owner}-{n}");
                self.sent.insert(id.clone());
                owned_vacancy(owner, &id, rng.random_range(1..200))
            })
            .collect()
    }

    /// Notes what a 200 answer accepted; returns the highest seq it assigned.
    pub fn acknowledged(&mut self, answer: &Value) -> u64 {
        let mut top = 0;
        for a in answer["accepted"].as_array().unwrap() {
            let version = a["version"].as_u64().unwrap();
            let held = self
                .acked
                .entry(a["id"].as_str().unwrap().to_string())
                .or_insert(version);
            *held = (*held).max(version);
            top = top.max(a["seq"].as_u64().unwrap());
            self.acks += 1;
        }
        top
    }
}

/// What a stopped node's store holds of `owner`: id → version (every hash verified), and
/// the bytes the records encode to. `context` (e.g. the seed) goes into failure messages.
pub fn stored_records(
    files: &NodeFiles,
    owner: &str,
    context: &str,
) -> (BTreeMap<String, u64>, u64) {
    let store = lmsync::node::storage::SledStore::open(
        &files.data,
        files.code.parse().unwrap(),
        lmsync::node::storage::sled_options(32 << 20),
    )
    .unwrap_or_else(|e| panic!("{} does not open: {e} ({context})", files.code));
    let owner: lmsync::core::model::NodeCode = owner.parse().unwrap();
    let mut out = BTreeMap::new();
    let mut bytes = 0;
    for r in store.scan_owner(owner) {
        let r = r.unwrap();
        assert!(
            r.verify_hash().unwrap(),
            "{}: bad hash for {} ({context})",
            files.code,
            r.envelope.id
        );
        bytes += lmsync::core::codec::encode(&r).unwrap().len() as u64;
        out.insert(r.envelope.id.clone(), r.envelope.version);
    }
    (out, bytes)
}

/// Copies a stopped store's data directory (sled files and seal alike) to `to`, as
/// `cp -a` does.
pub fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success(), "cp -a {} {}", from.display(), to.display());
}

/// Opens a store's sled files directly, as an earlier release would have left them.
/// sled's background threads may hold the file lock of a store closed a moment ago in this
/// process (after its last flush), so a lock conflict is retried for a bounded time, as
/// the store's own open does.
pub fn open_raw_sled(path: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if e.to_string().contains("could not acquire lock") => {
                assert!(
                    Instant::now() < deadline,
                    "{} stays locked: {e}",
                    path.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("opening {}: {e}", path.display()),
        }
    }
}

/// The Chromium binary, if installed.
pub fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs headless Chromium (bounded by `timeout`) with the flags this machine needs.
pub fn headless(
    browser: &PathBuf,
    profile: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("60").arg(browser).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]);
    cmd.arg(format!("--user-data-dir={}", profile.display()));
    cmd.args(args).output().unwrap()
}

/// The cell of `table`, `row`, `column` in a report's JSON (`GET /v1/reports/{P}`), or
/// `None` when the table has no such row. Panics on a missing table or column.
pub fn report_cell<'a>(
    report: &'a serde_json::Value,
    table: &str,
    row: &str,
    column: &str,
) -> Option<&'a serde_json::Value> {
    let t = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == table)
        .unwrap_or_else(|| panic!("no {table} in {report}"));
    let col = t["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["key"] == column)
        .unwrap_or_else(|| panic!("no {table}/{column}"));
    t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == row)
        .map(|r| &r["cells"][col])
}

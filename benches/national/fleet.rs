//! The national bench's processes: every node set up through the CLI (`lmsync pki`,
//! `lmsync init`) and run as a real `lmsync run`, logging to `DIR/CODE/run.log`; started,
//! killed, stopped, wiped and restored here. Dropping the [`Fleet`] kills every process
//! still running, so no node outlives the bench, also when it panics.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lmsync::core::model::{MINISTRY, NodeCode, Tier};

/// How long a node may take to print its "ready" line.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// How long a node may take to exit after SIGTERM.
const EXIT_WITHIN: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(25);

/// One node's files and, while it runs, its process.
pub struct Node {
    pub code: NodeCode,
    /// `DIR/CODE`: config, token, pseudonym key, `pki/`, `data/`, `run.log`.
    pub home: PathBuf,
    /// `http://127.0.0.1:PORT` of the running API (a new port after every start).
    pub api: String,
    pub token: String,
    /// QUIC listen address: a fixed port for parents, so a restarted one is found again.
    listen: String,
    /// `CODE@ADDR` of the parent.
    parent: Option<String>,
    child: Option<Child>,
}

impl Node {
    fn config(&self) -> PathBuf {
        self.home.join("lmsync.toml")
    }

    fn log(&self) -> PathBuf {
        self.home.join("run.log")
    }

    fn read_token(&mut self) {
        let path = self.home.join("lmsync.token");
        self.token = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string();
    }
}

/// Every node of the bench.
pub struct Fleet {
    dir: PathBuf,
    nodes: BTreeMap<NodeCode, Node>,
}

/// Runs `lmsync ARGS` to completion and insists on success.
fn cli(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_lmsync"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running lmsync");
    assert!(
        out.status.success(),
        "lmsync {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 paths")
}

/// The arguments of `lmsync init` for `node`.
fn init_args(node: &Node, restore: bool) -> Vec<String> {
    let home = &node.home;
    let mut args: Vec<String> = [
        "init",
        "--node",
        &node.code.to_string(),
        "--pki",
        s(&home.join("pki")),
        "--data",
        s(&home.join("data")),
        "--listen",
        &node.listen,
        "--api",
        "127.0.0.1:0",
        "--config",
        s(&node.config()),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    if let Some(parent) = &node.parent {
        args.extend(["--parent".to_string(), parent.clone()]);
    }
    if restore {
        args.push("--restore".into());
    }
    args
}

impl Fleet {
    /// A network CA in `DIR/ca` and, for each node of `tree` (ministry, provinces,
    /// cities), a certificate and `lmsync init` with the defaults an operator gets; QUIC on
    /// a fixed loopback port for the ministry and provinces, APIs on ephemeral ports.
    pub fn set_up(dir: &Path, tree: &[lmsync::tooling::demo::Branch]) -> Fleet {
        cli(&["pki", "init", "--dir", s(&dir.join("ca"))]);
        let mut codes = vec![MINISTRY];
        codes.extend(tree.iter().map(|b| b.province));
        codes.extend(lmsync::tooling::demo::national::cities_of(tree));
        let listen = parent_ports(&codes);
        let nodes: BTreeMap<NodeCode, Node> = codes
            .iter()
            .map(|&code| {
                let parent = code.parent().map(|p| format!("{p}@{}", listen[&p]));
                let node = Node {
                    code,
                    home: dir.join(code.to_string()),
                    api: String::new(),
                    token: String::new(),
                    listen: listen
                        .get(&code)
                        .cloned()
                        .unwrap_or_else(|| "127.0.0.1:0".into()),
                    parent,
                    child: None,
                };
                (code, node)
            })
            .collect();
        let ca = dir.join("ca");
        // Two workers: certificate and store creation are CPU-bound, and there are 2 cores.
        let list: Vec<&Node> = nodes.values().collect();
        std::thread::scope(|scope| {
            for part in list.chunks(list.len().div_ceil(2).max(1)) {
                let ca = &ca;
                scope.spawn(move || part.iter().for_each(|n| init_node(ca, n)));
            }
        });
        let mut fleet = Fleet {
            dir: dir.to_path_buf(),
            nodes,
        };
        fleet.nodes.values_mut().for_each(Node::read_token);
        fleet
    }

    pub fn node(&self, code: NodeCode) -> &Node {
        &self.nodes[&code]
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts `codes` together and waits until each has printed its "ready" line.
    pub async fn start(&mut self, codes: &[NodeCode]) {
        let mut waiting = Vec::new();
        for code in codes {
            let node = self.nodes.get_mut(code).expect("a node of the tree");
            assert!(node.child.is_none(), "{code} is already running");
            let from = std::fs::metadata(node.log()).map_or(0, |m| m.len());
            let log = File::options()
                .create(true)
                .append(true)
                .open(node.log())
                .expect("the node's log file");
            let child = Command::new(env!("CARGO_BIN_EXE_lmsync"))
                .args(["run", "--config", s(&node.config())])
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("the log file"))
                .stderr(log)
                .spawn()
                .expect("spawning lmsync run");
            node.child = Some(child);
            waiting.push((*code, from));
        }
        let deadline = Instant::now() + READY_WITHIN;
        while !waiting.is_empty() {
            waiting.retain(|(code, from)| !self.check_ready(*code, *from));
            assert!(
                Instant::now() < deadline,
                "not ready within {READY_WITHIN:?}: {:?}",
                waiting.iter().map(|w| w.0.to_string()).collect::<Vec<_>>()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// True once `code`'s log shows its ready line after byte `from`; panics with the log's
    /// end if the process exited instead.
    fn check_ready(&mut self, code: NodeCode, from: u64) -> bool {
        let node = self.nodes.get_mut(&code).expect("a node of the tree");
        let text = std::fs::read(node.log()).unwrap_or_default();
        let text = String::from_utf8_lossy(
            text.get(usize::try_from(from).unwrap_or(0)..)
                .unwrap_or(&[]),
        );
        if let Some(api) = ready_api(&text, code) {
            node.api = api;
            return true;
        }
        let child = node.child.as_mut().expect("started");
        if let Ok(Some(status)) = child.try_wait() {
            let tail: String = text
                .chars()
                .rev()
                .take(2000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!("{code} exited ({status}) before it was ready:\n{tail}");
        }
        false
    }

    /// SIGKILL: the node gets no chance to flush or say goodbye.
    pub fn kill(&mut self, code: NodeCode) {
        let node = self.nodes.get_mut(&code).expect("a node of the tree");
        let mut child = node.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping the killed node");
    }

    /// SIGTERM, and waits for the node to drain and exit (SIGKILL after [`EXIT_WITHIN`]).
    /// True if it exited 0.
    pub async fn stop(&mut self, code: NodeCode) -> bool {
        let node = self.nodes.get_mut(&code).expect("a node of the tree");
        let Some(mut child) = node.child.take() else {
            return true;
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + EXIT_WITHIN;
        while sent && Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            tokio::time::sleep(POLL).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Stops every running node, cities first; the codes of those that did not exit 0.
    pub async fn stop_all(&mut self) -> Vec<NodeCode> {
        let mut order: Vec<NodeCode> = self.nodes.keys().copied().collect();
        order.sort_by_key(|c| std::cmp::Reverse(c.tier()));
        let mut bad = Vec::new();
        for code in order {
            if !self.stop(code).await {
                bad.push(code);
            }
        }
        bad
    }

    /// The documented recovery of a city that lost its disk, on a stopped node: its data
    /// directory is deleted, `lmsync init --restore` writes a new config, token and data
    /// directory marked for restore, and the backed-up pseudonym key replaces the new one
    /// (docs/SYNC.md, "Rebuilding a node that lost its disk"). The next start restores.
    pub fn wipe_and_reinit(&mut self, code: NodeCode) {
        let node = self.nodes.get_mut(&code).expect("a node of the tree");
        assert!(node.child.is_none(), "stop {code} first");
        let home = node.home.clone();
        let backup = home.join("pidkey.backup");
        std::fs::rename(home.join("lmsync.pidkey"), &backup).expect("backing up the pid key");
        std::fs::remove_file(node.config()).expect("removing the config");
        std::fs::remove_file(home.join("lmsync.token")).expect("removing the token");
        std::fs::remove_dir_all(home.join("data")).expect("wiping the data directory");
        let args = init_args(node, true);
        cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
        std::fs::copy(&backup, home.join("lmsync.pidkey")).expect("restoring the pid key");
        node.read_token();
    }

    /// `(code, pid)` of every running node.
    pub fn pids(&self) -> Vec<(NodeCode, u32)> {
        self.nodes
            .values()
            .filter_map(|n| n.child.as_ref().map(|c| (n.code, c.id())))
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Certificate and `lmsync init` of one node.
fn init_node(ca: &Path, node: &Node) {
    std::fs::create_dir_all(&node.home).expect("the node's directory");
    let code = node.code.to_string();
    cli(&[
        "pki",
        "issue",
        "--dir",
        s(ca),
        "--node",
        &code,
        "--out",
        s(&node.home.join("pki")),
    ]);
    let args = init_args(node, false);
    cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// A fixed loopback UDP port for every node with children. All are held at once so they
/// differ; they are released before any node starts (another program could take one in
/// between, which the node's start would then report).
fn parent_ports(codes: &[NodeCode]) -> BTreeMap<NodeCode, String> {
    let held: Vec<(NodeCode, UdpSocket)> = codes
        .iter()
        .filter(|c| c.tier() != Tier::City)
        .map(|c| (*c, UdpSocket::bind("127.0.0.1:0").expect("a free UDP port")))
        .collect();
    held.iter()
        .map(|(c, s)| (*c, s.local_addr().expect("bound").to_string()))
        .collect()
}

/// The API URL from `lmsync run`'s ready line for `code` in `log`, if there is one:
/// `lmsync node CODE (NAME) ready[; QUIC ADDR]; API http://ADDR`.
fn ready_api(log: &str, code: NodeCode) -> Option<String> {
    let prefix = format!("lmsync node {code} (");
    log.lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(") ready"))
        .find_map(|l| l.split("API ").nth(1))
        .map(|api| api.trim().to_string())
}

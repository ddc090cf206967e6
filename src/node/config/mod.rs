//! Node configuration: the TOML file an operator edits (`config/node.example.toml`).
//!
//! Parse, don't validate: [`RawConfig`] mirrors the file (serde, unknown keys rejected) and
//! [`Config::from_raw`] turns it into typed values, naming the key path of anything wrong.
//! Relative paths are resolved against the directory holding the config file.

mod privacy;
mod units;

pub use privacy::{Privacy, RawPrivacy};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::core::model::{NodeCode, Tier};

pub use units::{parse_duration, parse_size};

/// A problem with a config file, pointing at the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// Dotted key path, e.g. `network.parent` (or the file for read errors).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn at(key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawConfig {
    pub node: RawNode,
    #[serde(default)]
    pub network: RawNetwork,
    pub tls: RawTls,
    pub api: RawApi,
    #[serde(default)]
    pub sync: RawSync,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub privacy: Option<RawPrivacy>,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub public: Option<RawPublic>,
}

/// `[public]`: the public information service's listener and its per-client limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawPublic {
    pub listen: String,
    #[serde(default = "default_public_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_public_burst")]
    pub burst: u32,
}

fn default_public_rate() -> u32 {
    20
}

fn default_public_burst() -> u32 {
    60
}

/// The public information service: where it listens and how much one client may ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicConfig {
    /// Its own listener, apart from the API.
    pub listen: SocketAddr,
    /// Requests one client (IP address) may make per second, sustained.
    pub requests_per_second: u32,
    /// And in a burst.
    pub burst: u32,
}

/// `[node]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawNode {
    pub code: String,
    #[serde(default)]
    pub name: Option<String>,
    pub data_dir: PathBuf,
}

/// `[network]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawNetwork {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub children: Option<Vec<String>>,
    #[serde(default)]
    pub max_protocol: Option<u16>,
}

impl Default for RawNetwork {
    fn default() -> Self {
        RawNetwork {
            listen: default_listen(),
            parent: None,
            children: None,
            max_protocol: None,
        }
    }
}

/// `[public]`, checked.
fn public(raw: &RawPublic) -> Result<PublicConfig, ConfigError> {
    if raw.requests_per_second == 0 || raw.burst == 0 {
        return Err(ConfigError::at(
            "public.requests_per_second",
            "the per-client limits must be at least 1",
        ));
    }
    Ok(PublicConfig {
        listen: socket("public.listen", &raw.listen)?,
        requests_per_second: raw.requests_per_second,
        burst: raw.burst,
    })
}

/// `network.max_protocol`: a version this release speaks, default its newest.
fn max_protocol(raw: Option<u16>) -> Result<u16, ConfigError> {
    use crate::core::wire::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
    match raw {
        None => Ok(PROTOCOL_VERSION),
        Some(v) if (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&v) => Ok(v),
        Some(v) => Err(ConfigError::at(
            "network.max_protocol",
            format!(
                "{v} is not a protocol version this release speaks \
                 ({MIN_PROTOCOL_VERSION}..={PROTOCOL_VERSION})"
            ),
        )),
    }
}

fn default_listen() -> String {
    "0.0.0.0:7400".into()
}

/// `[tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawApi {
    #[serde(default = "default_api_listen")]
    pub listen: String,
    pub token_file: PathBuf,
    #[serde(default = "default_body_limit")]
    pub body_limit: String,
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: String,
    #[serde(default = "default_keep_alive_timeout")]
    pub keep_alive_timeout: String,
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
}

fn default_api_listen() -> String {
    "127.0.0.1:7401".into()
}

fn default_body_limit() -> String {
    "16MiB".into()
}

fn default_header_read_timeout() -> String {
    "10s".into()
}

fn default_keep_alive_timeout() -> String {
    "60s".into()
}

fn default_body_read_timeout() -> String {
    "60s".into()
}

fn default_max_connections() -> u32 {
    512
}

fn default_max_in_flight() -> u32 {
    64
}

/// `[sync]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawSync {
    #[serde(default = "default_interval")]
    pub interval: String,
    #[serde(default = "default_anti_entropy")]
    pub anti_entropy_interval: String,
    #[serde(default = "default_batch")]
    pub batch_records: u32,
    #[serde(default = "default_stale_after")]
    pub stale_after: String,
}

impl Default for RawSync {
    fn default() -> Self {
        RawSync {
            interval: default_interval(),
            anti_entropy_interval: default_anti_entropy(),
            batch_records: default_batch(),
            stale_after: default_stale_after(),
        }
    }
}

fn default_stale_after() -> String {
    "1d".into()
}

fn default_interval() -> String {
    "5s".into()
}

fn default_anti_entropy() -> String {
    "5m".into()
}

fn default_batch() -> u32 {
    1000
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawStorage {
    #[serde(default = "default_cache")]
    pub cache_capacity: String,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            cache_capacity: default_cache(),
        }
    }
}

fn default_cache() -> String {
    "256MiB".into()
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawLog {
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(default = "default_format")]
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: default_level(),
            format: default_format(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

fn default_format() -> String {
    "auto".into()
}

/// Where the parent listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLink {
    /// The parent's node code.
    pub code: NodeCode,
    /// `host:port` of its QUIC listener.
    pub address: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
    /// Pretty on a terminal, JSON otherwise.
    Auto,
}

/// How much of the node one HTTP client may hold (`[api]`, `docs/reference/api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// A request head must be complete this long after the connection was accepted, or
    /// after its first byte on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    pub keep_alive_timeout: Duration,
    /// A request body must have arrived whole this long after its handler began reading.
    pub body_read_timeout: Duration,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Requests being handled at once; one more is answered 503.
    pub max_in_flight: usize,
}

/// A validated node configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's code.
    pub node: NodeCode,
    /// Display name.
    pub name: String,
    /// sled data directory.
    pub data_dir: PathBuf,
    /// QUIC listen address.
    pub listen: SocketAddr,
    /// The parent link (none at the ministry).
    pub parent: Option<ParentLink>,
    /// Children allowed to connect (`None`: every node one tier below in the subtree).
    pub children: Option<Vec<NodeCode>>,
    /// The highest sync protocol version this node speaks: this release's, unless pinned
    /// lower for a staged upgrade.
    pub max_protocol: u16,
    /// Network CA certificate.
    pub tls_ca: PathBuf,
    /// This node's certificate.
    pub tls_cert: PathBuf,
    /// This node's private key.
    pub tls_key: PathBuf,
    /// HTTP API listen address.
    pub api_listen: SocketAddr,
    /// File holding the API bearer token.
    pub token_file: PathBuf,
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
    /// Timeouts and caps of the HTTP server.
    pub api_limits: ApiLimits,
    /// Fast-path sync interval.
    pub sync_interval: Duration,
    /// Anti-entropy interval.
    pub anti_entropy_interval: Duration,
    /// A city whose newest record arrived longer ago than this is stale (coverage, F02).
    pub stale_after: Duration,
    /// Records per sync batch.
    pub batch_records: u32,
    /// sled cache budget, bytes.
    pub cache_capacity: u64,
    /// Pseudonym key file and epoch, and the previous key during an overlap (cities).
    pub privacy: Option<Privacy>,
    /// The file this config was read from, if any: a reload (SIGHUP) reads its
    /// `[privacy]` again.
    pub source: Option<PathBuf>,
    /// Log filter (`RUST_LOG` syntax).
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// The public information service, when `[public]` is set.
    pub public: Option<PublicConfig>,
}

impl Config {
    /// The node's tier.
    pub fn tier(&self) -> Tier {
        self.node.tier()
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::at(&path.display().to_string(), format!("cannot read: {e}"))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Config::from_raw(parse(&text)?, base)?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Validates a parsed file; relative paths are resolved against `base`.
    pub fn from_raw(raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
        let node: NodeCode = raw
            .node
            .code
            .parse()
            .map_err(|e| ConfigError::at("node.code", format!("{e}")))?;
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        Ok(Config {
            node,
            name: raw
                .node
                .name
                .clone()
                .or_else(|| node.builtin_name().map(String::from))
                .unwrap_or_else(|| node.to_string()),
            data_dir: resolve(&raw.node.data_dir),
            listen: socket("network.listen", &raw.network.listen)?,
            parent: parent_link(node, raw.network.parent.as_deref())?,
            children: children(node, raw.network.children.as_deref())?,
            max_protocol: max_protocol(raw.network.max_protocol)?,
            tls_ca: resolve(&raw.tls.ca),
            tls_cert: resolve(&raw.tls.cert),
            tls_key: resolve(&raw.tls.key),
            api_listen: socket("api.listen", &raw.api.listen)?,
            token_file: resolve(&raw.api.token_file),
            body_limit: size_usize("api.body_limit", &raw.api.body_limit)?,
            api_limits: api_limits(&raw.api)?,
            sync_interval: duration("sync.interval", &raw.sync.interval)?,
            anti_entropy_interval: duration(
                "sync.anti_entropy_interval",
                &raw.sync.anti_entropy_interval,
            )?,
            stale_after: duration("sync.stale_after", &raw.sync.stale_after)?,
            batch_records: batch(raw.sync.batch_records)?,
            cache_capacity: parse_size(&raw.storage.cache_capacity)
                .map_err(|m| ConfigError::at("storage.cache_capacity", m))?,
            privacy: raw
                .privacy
                .as_ref()
                .map(|p| privacy::privacy(p, resolve))
                .transpose()?,
            source: None,
            log_level: raw.log.level.clone(),
            log_format: log_format(&raw.log.format)?,
            public: raw.public.as_ref().map(public).transpose()?,
        })
    }

    /// Advice that does not stop the node (shown by `config check` and logged at start).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.parent.is_none() && self.tier() != Tier::Ministry {
            w.push(format!(
                "network.parent: not set; this node's records will not leave it (its parent is {})",
                self.node
                    .parent()
                    .map_or_else(String::new, |p| p.to_string())
            ));
        }
        if self.privacy.is_none() && self.tier() == Tier::City {
            w.push("privacy: not set; records naming persons must carry a pid, citizen IDs will be refused".into());
        }
        if !self.api_listen.ip().is_loopback() {
            w.push(format!(
                "api.listen: {} is not loopback; the API is reachable from the network",
                self.api_listen
            ));
        }
        w
    }
}

/// Parses TOML text into a [`RawConfig`], reporting the key path of any error.
pub fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    let de = toml::Deserializer::parse(text)
        .map_err(|e| ConfigError::at("(file)", located(text, &e)))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." {
            "(file)".to_string()
        } else {
            key
        };
        ConfigError::at(&key, located(text, e.inner()))
    })
}

/// A TOML error's message, with the line and column where it is when TOML says (the
/// node's config and the office import's mapping files report their errors so).
pub fn located(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

fn socket(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::at(
            key,
            format!("{value:?} is not an address like 127.0.0.1:7401"),
        )
    })
}

fn duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    parse_duration(value).map_err(|m| ConfigError::at(key, m))
}

fn size_usize(key: &str, value: &str) -> Result<usize, ConfigError> {
    let n = parse_size(value).map_err(|m| ConfigError::at(key, m))?;
    usize::try_from(n).map_err(|_| ConfigError::at(key, "too large for this machine"))
}

/// Most connections or requests a cap may allow: far above what one node serves, and low
/// enough that every slot fits a `u32` semaphore count.
const MAX_API_CAP: u32 = 65_536;

fn api_limits(api: &RawApi) -> Result<ApiLimits, ConfigError> {
    Ok(ApiLimits {
        header_read_timeout: duration("api.header_read_timeout", &api.header_read_timeout)?,
        keep_alive_timeout: duration("api.keep_alive_timeout", &api.keep_alive_timeout)?,
        body_read_timeout: duration("api.body_read_timeout", &api.body_read_timeout)?,
        max_connections: api_cap("api.max_connections", api.max_connections)?,
        max_in_flight: api_cap("api.max_in_flight", api.max_in_flight)?,
    })
}

fn api_cap(key: &str, n: u32) -> Result<usize, ConfigError> {
    if (1..=MAX_API_CAP).contains(&n) {
        usize::try_from(n).map_err(|_| ConfigError::at(key, "too large for this machine"))
    } else {
        Err(ConfigError::at(
            key,
            format!("must be 1 to {MAX_API_CAP}, got {n}"),
        ))
    }
}

fn batch(n: u32) -> Result<u32, ConfigError> {
    if (1..=10_000).contains(&n) {
        Ok(n)
    } else {
        Err(ConfigError::at(
            "sync.batch_records",
            format!("must be 1 to 10000, got {n}"),
        ))
    }
}

fn log_format(value: &str) -> Result<LogFormat, ConfigError> {
    match value {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        "auto" => Ok(LogFormat::Auto),
        other => Err(ConfigError::at(
            "log.format",
            format!("{other:?} is not one of pretty, json, auto"),
        )),
    }
}

/// Parses `CODE@HOST:PORT` and checks that CODE is this node's parent.
pub fn parent_link(node: NodeCode, value: Option<&str>) -> Result<Option<ParentLink>, ConfigError> {
    let key = "network.parent";
    let Some(value) = value else { return Ok(None) };
    let (code, address) = value
        .split_once('@')
        .ok_or_else(|| ConfigError::at(key, format!("{value:?} is not CODE@HOST:PORT")))?;
    let code: NodeCode = code
        .parse()
        .map_err(|e| ConfigError::at(key, format!("{e}")))?;
    if node.parent() != Some(code) {
        let expected = node.parent().map_or_else(
            || "none (the ministry has no parent)".to_string(),
            |p| p.to_string(),
        );
        return Err(ConfigError::at(
            key,
            format!("{code} is not the parent of {node}; expected {expected}"),
        ));
    }
    if address
        .rsplit_once(':')
        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(ConfigError::at(
            key,
            format!("{address:?} is not HOST:PORT"),
        ));
    }
    Ok(Some(ParentLink {
        code,
        address: address.to_string(),
    }))
}

fn children(node: NodeCode, list: Option<&[String]>) -> Result<Option<Vec<NodeCode>>, ConfigError> {
    let Some(list) = list else { return Ok(None) };
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let key = format!("network.children[{i}]");
            let code: NodeCode = c
                .parse()
                .map_err(|e| ConfigError::at(&key, format!("{e}")))?;
            if code.parent() == Some(node) {
                Ok(code)
            } else {
                Err(ConfigError::at(
                    &key,
                    format!("{code} is not a child of {node}"),
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests;

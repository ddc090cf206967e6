//! lmsync: the replication engine of a three-tier labour-market information network.
//!
//! Every node (city, province, ministry) keeps a durable local store of office records
//! and standards; records flow up the tree, standards and policies flow down. The crate
//! is four layers and the command line; each uses only the layers listed before it
//! (`tests/tidy.rs` enforces it, `docs/ARCHITECTURE.md` maps it):
//!
//! - [`core`]: the pure core — record model, codec and messages, reconciliation,
//!   the store interface and the sans-IO sync sessions;
//! - [`reporting`]: coverage metrics and the quarterly report, and the store scan that
//!   feeds them;
//! - [`node`]: the node shell — storage on sled, the write path, QUIC transport, PKI,
//!   config, the HTTP API and the daemon that assembles them;
//! - [`tooling`]: synthetic data and the local demo network;
//! - [`cli`]: the `lmsync` verbs, the only place that prints.

pub mod cli;
pub mod core;
pub mod node;
pub mod reporting;
pub mod tooling;

//! The node shell: everything a running node does that touches the outside world, built
//! around the pure [`crate::core`].
//!
//! Its rooms, lowest first (a room uses only rooms listed before it, and `tests/tidy.rs`
//! holds it to that order):
//!
//! - [`clock`], [`config`]: the wall clock and the typed node configuration;
//! - [`telemetry`], [`pki`]: logging setup; the network CA and node certificates;
//! - [`storage`]: the sled implementation of the core's store interface;
//! - [`write`]: the write path (group commit of validated records);
//! - [`links`]: what the node knows of its peers' links, shared by sync, API and reports;
//! - [`transport`]: QUIC with mutual TLS, driving the core's protocol sessions;
//! - [`api`]: the HTTP API and the dashboard;
//! - [`public`]: the public information service on its own listener;
//! - [`daemon`]: assembles and stops a running node.

pub mod api;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod links;
pub mod pki;
pub mod public;
pub mod storage;
pub mod telemetry;
pub mod transport;
pub mod write;

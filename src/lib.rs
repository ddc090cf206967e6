//! lmsync: the replication engine of a three-tier labour-market information network.
//!
//! Every node (city, province, ministry) keeps a durable local store of office records
//! and standards. Data flows top to bottom through these modules:
//!
//! - [`model`]: node codes, record kinds, the envelope, validation (no IO);
//! - [`wire`]: the one binary codec;
//! - [`recon`]: additive fingerprints behind the digest and the reconciliation buckets;
//! - [`storage`]: the `Store` trait and its sled implementation;
//! - [`protocol`], [`transport`]: the sans-IO sync sessions and the QUIC shell;
//! - [`node`]: the write path (group commit of validated records);
//! - [`analysis`]: coverage metrics and the quarterly report (no IO);
//! - [`monitor`]: feeds [`analysis`] from the store and the links;
//! - [`api`]: the HTTP API;
//! - [`pki`], [`config`], [`daemon`], [`demo`], [`synth`], [`cli`], [`clock`], [`telemetry`]: the edge.

pub mod analysis;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod model;
pub mod monitor;
pub mod node;
pub mod pki;
pub mod protocol;
pub mod recon;
pub mod storage;
pub mod synth;
pub mod telemetry;
pub mod transport;
pub mod wire;

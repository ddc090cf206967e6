//! Tooling around the engine: seeded synthetic office records ([`synth`], `lmsync gen`),
//! the local demo network ([`demo`], `lmsync demo`) and the partitioned Parquet files of
//! `lmsync export` ([`export`]). Nothing in the engine uses it.

pub mod demo;
pub mod export;
pub mod synth;

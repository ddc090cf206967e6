//! Tooling around the engine: office exports read through a mapping ([`office`], `lmsync
//! import --mapping`), seeded synthetic office records ([`synth`], `lmsync gen`), the local
//! demo network ([`demo`], `lmsync demo`) and the partitioned Parquet files of `lmsync
//! export` ([`export`]). Nothing in the engine uses it.

pub mod demo;
pub mod export;
pub mod office;
pub mod synth;

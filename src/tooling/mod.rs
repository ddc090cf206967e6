//! Tooling around the engine: office exports read through a mapping ([`office`], `lmsync
//! import --mapping`), seeded synthetic office records ([`synth`], `lmsync gen`) and the
//! local demo network ([`demo`], `lmsync demo`). Nothing in the engine uses it.

pub mod demo;
pub mod office;
pub mod synth;

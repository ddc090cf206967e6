//! Tooling around the engine: seeded synthetic office records ([`synth`], `lmsync gen`)
//! and the local demo network ([`demo`], `lmsync demo`). Nothing in the engine uses it.

pub mod demo;
pub mod synth;

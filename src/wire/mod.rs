//! Bytes that leave a node or reach its disk: the one binary codec.
//!
//! Everything encoded with bincode goes through [`codec`], so the size limit, the exact-length
//! rule and the pinned format live in one place. Versioned protocol messages join this
//! module when nodes start talking to each other.

pub mod codec;
pub mod messages;

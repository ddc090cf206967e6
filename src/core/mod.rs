//! The pure core: the record model, the one binary codec and the sync messages, the
//! reconciliation algebra, the storage interface and the sans-IO protocol sessions.
//!
//! Nothing here does IO: no files, sockets, threads, runtimes or clocks. Time and
//! randomness arrive as arguments; storage is reached only through the synchronous
//! [`store::Store`] trait, which the node shell implements on sled. Everything above
//! (`reporting`, `node`, `tooling`, `cli`) may use this layer; it uses none of them.

pub mod codec;
pub mod model;
pub mod protocol;
pub mod reconcile;
pub mod store;
pub mod wire;

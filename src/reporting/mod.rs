//! Reporting: what the ministry, provinces and cities read off the records.
//!
//! [`analysis`] is pure (coverage metrics, targets, pilot designations, the quarterly
//! supply/demand report: records in, figures out); [`scan`] feeds it from a store, one
//! city at a time, through the core's store interface; [`public`] is what the public
//! information service may show, indexed for search; [`export`] is the columnar form of
//! records that `lmsync export` writes as Parquet. This layer uses only
//! [`crate::core`]; the node's API and the CLI call it.

pub mod analysis;
pub mod export;
pub mod public;
pub mod scan;

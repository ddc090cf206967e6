//! The domain: node codes and tiers, record kinds and their fields, the envelope, and
//! validation against the standards in force. Plain data and pure functions, no IO.

mod builtin;
pub mod crosswalk;
#[cfg(test)]
mod crosswalk_tests;
pub mod document;
pub mod ingest;
pub mod key_epoch;
pub mod kinds;
pub mod person;
pub mod record;
pub mod retirement;
pub mod revocation;
pub mod signature;
pub mod standards;
pub mod tree;
pub mod validate;
pub mod values;

pub use builtin::{CityKind, Region, Sector};
pub use record::{Envelope, Hash32, Kind, Record, RecordKey, Status};
pub use tree::{MINISTRY, NodeCode, Tier};

/// Built-in reference tables, exposed read-only for the generator and reports.
pub mod tables {
    pub use super::builtin::{
        EMPLOYER_TYPES, INDUSTRIES_1994, OCCUPATIONS_1999, PILOT_CITIES, PROVINCE_REGIONS,
        PROVINCES,
    };
}

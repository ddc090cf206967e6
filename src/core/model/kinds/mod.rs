//! The fields of every upward record kind (`docs/reference/records.md`) and their validation.
//!
//! Every kind but `supply_demand_report` (the city's signed quarterly report, `report`)
//! is posted by clients.
//!
//! Structs here are what is stored and replicated. They carry pseudonyms (`pid`), never
//! citizen IDs, names, phones or addresses: the ingest path ([`super::ingest`]) replaces or
//! drops those before a record is built. JSON uses snake_case names; unknown fields are
//! rejected so that a typo is an error rather than silently lost data.

mod insurance;
mod layout;
mod office;
mod persons;
mod report;
mod services;
mod tally;
mod training;
mod vacancy;

use super::record::Kind;
use super::validate::{Check, Checker};

pub use insurance::*;
pub use office::*;
pub use persons::*;
pub use report::*;
pub use services::*;
pub use tally::*;
pub use training::*;
pub use vacancy::*;

macro_rules! record_data {
    ($($variant:ident($ty:ident)),* $(,)?) => {
        /// The typed fields of a record, one variant per [`Kind`].
        /// A record's content, by kind. Its binary layouts are in `layout`.
        #[derive(Debug, Clone, PartialEq)]
        pub enum RecordData {
            $(
                #[allow(missing_docs)]
                $variant($ty),
            )*
        }

        impl RecordData {
            /// The kind these fields belong to.
            pub fn kind(&self) -> Kind {
                match self {
                    $(RecordData::$variant(_) => Kind::$variant,)*
                }
            }

            /// Checks every field against the node and the standards in force.
            pub fn validate(&self, cx: &Checker<'_>) -> Check {
                match self {
                    $(RecordData::$variant(d) => d.validate(cx),)*
                }
            }

            /// Parses the `data` object of a record of `kind`.
            pub fn from_json(kind: Kind, data: serde_json::Value)
                -> Result<Self, serde_path_to_error::Error<serde_json::Error>> {
                match kind {
                    $(Kind::$variant => serde_path_to_error::deserialize(data)
                        .map(RecordData::$variant),)*
                }
            }

            /// The `data` object as JSON.
            pub fn to_json(&self) -> serde_json::Value {
                let value = match self {
                    $(RecordData::$variant(d) => serde_json::to_value(d),)*
                };
                // Our own types always serialise to JSON: they hold no maps with
                // non-string keys and no non-finite floats.
                value.unwrap_or(serde_json::Value::Null)
            }
        }
    };
}

record_data! {
    Office(Office),
    Employer(Employer),
    Vacancy(Vacancy),
    JobSeeker(JobSeeker),
    LaidOffEpisode(LaidOffEpisode),
    UnemploymentRegistration(UnemploymentRegistration),
    ServiceEvent(ServiceEvent),
    Placement(Placement),
    UiBenefitPayment(UiBenefitPayment),
    UiFundEntry(UiFundEntry),
    TrainingCourse(TrainingCourse),
    TrainingEnrolment(TrainingEnrolment),
    SupplyDemandReport(SupplyDemandReport),
    IngestTally(IngestTally),
}

/// Longest free-text field, in characters.
const MAX_TEXT: usize = 200;
/// Longest list field, in items.
const MAX_LIST: usize = 64;

//! The fields of every upward record kind (`docs/reference/records.md`) and their validation.
//!
//! Every kind is posted by clients but three the city node writes itself:
//! `supply_demand_report` (its signed quarterly report, `report`), `ingest_tally` (its
//! refusals at ingest, `tally`) and `pid_link` (a person across key epochs, `links`).
//!
//! Structs here are what is stored and replicated. They carry pseudonyms (`pid`), never
//! citizen IDs, names, phones or addresses: the ingest path ([`super::ingest`]) replaces or
//! drops those before a record is built. JSON uses snake_case names; unknown fields are
//! rejected so that a typo is an error rather than silently lost data.

mod insurance;
mod layout;
mod links;
mod office;
mod persons;
mod report;
mod services;
mod tally;
mod training;
mod vacancy;

use serde::de::{self, EnumAccess, VariantAccess};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::record::Kind;
use super::validate::{Check, Checker};
use super::values::{Pid, PidEpoch};

pub use insurance::*;
pub use links::*;
pub use office::*;
pub use persons::*;
pub use report::*;
pub use services::*;
pub use tally::*;
pub use training::*;
pub use vacancy::*;

macro_rules! record_data {
    ($($variant:ident($ty:ident)),* $(,)?) => {
        /// The typed fields of a record, one variant per [`Kind`], in [`Kind`]'s order.
        ///
        /// Binary encoding: a tag, then the fields. The tag of most kinds is their position;
        /// a kind that gained fields keeps its earlier layout under its position and takes
        /// a later tag for the new one (`layout`); a person record whose pid is of another
        /// epoch than the default one is written under its position plus
        /// [`EPOCH_TAGGED`], followed by the epoch and the fields.
        #[derive(Debug, Clone, PartialEq)]
        pub enum RecordData {
            $(
                #[allow(missing_docs)]
                $variant($ty),
            )*
        }

        /// The variants' names, in order.
        const VARIANTS: &[&str] = &[$(stringify!($variant)),*];

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

        impl Serialize for RecordData {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if !s.is_human_readable() {
                    match self {
                        RecordData::Vacancy(v) => return layout::write_vacancy(v, s),
                        RecordData::JobSeeker(j) => return layout::write_job_seeker(j, s),
                        _ => {}
                    }
                }
                let index = layout::first_tag(self.kind());
                let name = VARIANTS.get(self.kind().index()).copied().unwrap_or("");
                let tagged = self.epoch_slot().filter(|e| !e.is_default());
                match (self, tagged) {
                    $(
                        (RecordData::$variant(d), Some(e)) if !s.is_human_readable() => s
                            .serialize_newtype_variant(
                                "RecordData", EPOCH_TAGGED + index, name, &(e.0, d)),
                        (RecordData::$variant(d), _) =>
                            s.serialize_newtype_variant("RecordData", index, name, d),
                    )*
                }
            }
        }

        struct DataVisitor;

        impl<'de> de::Visitor<'de> for DataVisitor {
            type Value = RecordData;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("record data")
            }

            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<RecordData, A::Error> {
                let (Tag(tag), v) = data.variant::<Tag>()?;
                let v = match layout::read_layout(tag, v)? {
                    Ok(data) => return Ok(data),
                    Err(v) => v,
                };
                let (index, tagged) = match tag.checked_sub(EPOCH_TAGGED) {
                    Some(i) => (i, true),
                    None => (tag, false),
                };
                let kind = layout::kind_of_tag(index)
                    .ok_or_else(|| de::Error::custom(format!("unknown record kind tag {tag}")))?;
                if !tagged {
                    return match kind {
                        $(Kind::$variant => v.newtype_variant().map(RecordData::$variant),)*
                    };
                }
                let (epoch, mut data): (u16, RecordData) = match kind {
                    $(Kind::$variant => {
                        let (e, d): (u16, $ty) = v.newtype_variant()?;
                        (e, RecordData::$variant(d))
                    })*
                };
                // One encoding per value: the default epoch is never tagged, and only the
                // kinds with an epoch slot are.
                match data.epoch_slot_mut() {
                    Some(slot) if epoch != PidEpoch::default().0 => *slot = PidEpoch(epoch),
                    _ => {
                        return Err(de::Error::custom(format!(
                            "{kind} record with a needless epoch tag ({epoch})"
                        )));
                    }
                }
                Ok(data)
            }
        }
    };
}

/// Added to a variant's position in the binary encoding when the record carries a pid of
/// a non-default key epoch, which then follows as a `u16` before the fields. A record at
/// the default epoch keeps the encoding (and so the content hash) it had before epochs
/// were stamped on every person record; one at another epoch cannot be mistaken for it.
pub const EPOCH_TAGGED: u32 = 64;

/// A variant identifier: its position (binary) or its name (JSON).
struct Tag(u32);

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Tag;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a record kind tag")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tag, E> {
                u32::try_from(v)
                    .map(Tag)
                    .map_err(|_| E::custom(format!("unknown record kind tag {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
                VARIANTS
                    .iter()
                    .position(|n| *n == v)
                    .and_then(|i| Kind::ALL.get(i).copied())
                    .map(|k| Tag(layout::newest_tag(k)))
                    .ok_or_else(|| E::unknown_variant(v, VARIANTS))
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for RecordData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_enum("RecordData", VARIANTS, DataVisitor)
    }
}

impl RecordData {
    /// The epoch field of the kinds that carry a [`PidEpoch`] (every person kind but
    /// `job_seeker`, whose `pid_epoch` is a plain number).
    fn epoch_slot(&self) -> Option<PidEpoch> {
        match self {
            RecordData::LaidOffEpisode(d) => Some(d.pid_epoch),
            RecordData::UnemploymentRegistration(d) => Some(d.pid_epoch),
            RecordData::ServiceEvent(d) => Some(d.pid_epoch),
            RecordData::Placement(d) => Some(d.pid_epoch),
            RecordData::UiBenefitPayment(d) => Some(d.pid_epoch),
            RecordData::TrainingEnrolment(d) => Some(d.pid_epoch),
            _ => None,
        }
    }

    fn epoch_slot_mut(&mut self) -> Option<&mut PidEpoch> {
        match self {
            RecordData::LaidOffEpisode(d) => Some(&mut d.pid_epoch),
            RecordData::UnemploymentRegistration(d) => Some(&mut d.pid_epoch),
            RecordData::ServiceEvent(d) => Some(&mut d.pid_epoch),
            RecordData::Placement(d) => Some(&mut d.pid_epoch),
            RecordData::UiBenefitPayment(d) => Some(&mut d.pid_epoch),
            RecordData::TrainingEnrolment(d) => Some(&mut d.pid_epoch),
            _ => None,
        }
    }

    /// The person this record names and the key epoch of its pid, for the kinds that name
    /// one.
    pub fn person(&self) -> Option<(Pid, u16)> {
        match self {
            RecordData::JobSeeker(d) => Some((d.pid, d.pid_epoch)),
            RecordData::LaidOffEpisode(d) => Some((d.pid, d.pid_epoch.0)),
            RecordData::UnemploymentRegistration(d) => Some((d.pid, d.pid_epoch.0)),
            RecordData::ServiceEvent(d) => Some((d.pid, d.pid_epoch.0)),
            RecordData::Placement(d) => Some((d.pid, d.pid_epoch.0)),
            RecordData::UiBenefitPayment(d) => Some((d.pid, d.pid_epoch.0)),
            RecordData::TrainingEnrolment(d) => Some((d.pid, d.pid_epoch.0)),
            _ => None,
        }
    }
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
    PidLink(PidLink),
}

/// Longest free-text field, in characters.
const MAX_TEXT: usize = 200;
/// Longest list field, in items.
const MAX_LIST: usize = 64;

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::core::codec;

    fn event(epoch: u16) -> RecordData {
        RecordData::ServiceEvent(ServiceEvent {
            pid: Pid([7; 16]),
            pid_epoch: PidEpoch(epoch),
            office_id: "O-1".into(),
            occurred_on: NaiveDate::from_ymd_opt(1999, 10, 6).unwrap(),
            event_type: ServiceType::CareerGuidance,
            vacancy_refs: Vec::new(),
            course_ref: None,
            fee: Fee::Free,
            mode: ServiceMode::InPerson,
            outcome: None,
        })
    }

    #[test]
    fn the_default_epoch_encodes_as_before_epochs_were_stamped() {
        let RecordData::ServiceEvent(inner) = event(1) else {
            unreachable!()
        };
        // The variant's position (6, one varint byte), then the fields, the epoch taking
        // no bytes: the layout of the struct without the field.
        let mut legacy = vec![6u8];
        legacy.extend(codec::encode(&inner).unwrap());
        assert_eq!(codec::encode(&event(1)).unwrap(), legacy);
        assert_eq!(codec::decode::<RecordData>(&legacy).unwrap(), event(1));
    }

    #[test]
    fn another_epoch_is_tagged_and_round_trips() {
        let bytes = codec::encode(&event(2)).unwrap();
        assert_eq!(bytes[0], 64 + 6);
        assert_eq!(codec::decode::<RecordData>(&bytes).unwrap(), event(2));
        assert_ne!(bytes, codec::encode(&event(1)).unwrap());
        // JSON shows the epoch as a number either way.
        assert_eq!(event(2).to_json()["pid_epoch"], 2);
        assert_eq!(event(1).to_json()["pid_epoch"], 1);
    }

    #[test]
    fn needless_or_unknown_tags_are_refused() {
        // The default epoch tagged: a second encoding of the same value.
        let mut bytes = codec::encode(&event(2)).unwrap();
        bytes[1] = 1;
        assert!(codec::decode::<RecordData>(&bytes).is_err());
        // A kind without an epoch slot (office, position 0) tagged.
        let mut tagged = vec![64u8, 2];
        tagged.extend(&codec::encode(&event(1)).unwrap()[1..]);
        assert!(codec::decode::<RecordData>(&tagged).is_err());
        assert!(codec::decode::<RecordData>(&[63u8]).is_err());
    }
}

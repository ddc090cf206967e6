//! The binary layouts of record contents, and how a kind gains fields without changing
//! the bytes (and so the content hash) of records written before it had them.
//!
//! The codec is positional: a record's bytes are its fields in order, so a field added
//! to a struct would make every stored and replicated record of that kind undecodable
//! and change its content hash, which peers compare. Instead a kind that gains fields
//! keeps its earlier layout under its old variant number, and a record whose added
//! fields are all absent is encoded in that layout — the very bytes an earlier release
//! wrote. A record that uses an added field is encoded under a new variant number,
//! appended after every earlier one; an earlier release cannot decode it (upgrade before
//! using the new fields, as for a new kind).

use serde::{Deserialize, Serialize, Serializer};

use super::*;

/// Declares the layout of a kind before some fields were added: `$old` (decoding) and
/// `$view` (a borrowed view encoding a record in it), the fields it had, and the fields
/// added since, whose default means "absent".
macro_rules! earlier_layout {
    (
        $ty:ident as $old:ident, $view:ident {
            $($field:ident: $fty:ty),* $(,)?
        }
        added { $($new:ident),* $(,)? }
    ) => {
        #[derive(Deserialize)]
        pub(super) struct $old {
            $($field: $fty,)*
        }

        #[derive(Serialize)]
        pub(super) struct $view<'a> {
            $($field: &'a $fty,)*
        }

        impl From<$old> for $ty {
            fn from(old: $old) -> $ty {
                $ty {
                    $($field: old.$field,)*
                    $($new: Default::default(),)*
                }
            }
        }

        impl $ty {
            /// The earlier layout, when every added field is absent.
            pub(super) fn earlier(&self) -> Option<$view<'_>> {
                let absent = true $(&& self.$new == Default::default())*;
                absent.then(|| $view { $($field: &self.$field,)* })
            }
        }
    };
}

earlier_layout! {
    Vacancy as VacancyV1, VacancyV1View {
        receiving_office_id: String,
        employer_id: String,
        reported_on: chrono::NaiveDate,
        report_channel: ReportChannel,
        title: String,
        occupation: String,
        industry: String,
        headcount: u32,
        contract_term: ContractTerm,
        term_months: Option<u16>,
        employment_type: EmploymentType,
        wage_min: Option<u32>,
        wage_max: Option<u32>,
        education_min: Option<String>,
        experience_years: Option<u8>,
        work_location: String,
        valid_from: chrono::NaiveDate,
        valid_until: chrono::NaiveDate,
        publish_allowed: bool,
        published_online_on: Option<chrono::NaiveDate>,
        published_channels: Vec<ChannelType>,
        fill_state: FillState,
        filled_count: u32,
    }
    added { skill_level_min, sex_requirement, age_min, age_max }
}

earlier_layout! {
    JobSeeker as JobSeekerV1, JobSeekerV1View {
        pid: crate::core::model::values::Pid,
        pid_epoch: u16,
        sex: Sex,
        birth_year: u16,
        residence_division: String,
        hukou_class: HukouClass,
        education: Option<String>,
        desired_occupations: Vec<String>,
        desired_wage_min: Option<u32>,
        category: SeekerCategory,
        registered_on: chrono::NaiveDate,
        valid_until: chrono::NaiveDate,
        hardship: Option<Hardship>,
        consent_publish_profile: bool,
    }
    added { skill_level, tech_title }
}

/// Every layout, by variant number: the first thirteen kinds of [`Kind::ALL`] in order
/// (a kind that gained fields in its earliest layout), then each later layout or kind in
/// the order it was added. Never reorder or remove a variant.
#[derive(Deserialize)]
enum Layout {
    Office(Office),
    Employer(Employer),
    Vacancy(VacancyV1),
    JobSeeker(JobSeekerV1),
    LaidOffEpisode(LaidOffEpisode),
    UnemploymentRegistration(UnemploymentRegistration),
    ServiceEvent(ServiceEvent),
    Placement(Placement),
    UiBenefitPayment(UiBenefitPayment),
    UiFundEntry(UiFundEntry),
    TrainingCourse(TrainingCourse),
    TrainingEnrolment(TrainingEnrolment),
    SupplyDemandReport(SupplyDemandReport),
    /// Vacancies with skill, sex or age requirements.
    Vacancy2(Vacancy),
    /// Job seekers with a skill level or technical title.
    JobSeeker2(JobSeeker),
    IngestTally(IngestTally),
}

/// Variant numbers of the later layouts and kinds (their position in [`Layout`]).
const VACANCY_2: u32 = 13;
const JOB_SEEKER_2: u32 = 14;
const INGEST_TALLY: u32 = 15;

impl From<Layout> for RecordData {
    fn from(l: Layout) -> RecordData {
        match l {
            Layout::Office(d) => RecordData::Office(d),
            Layout::Employer(d) => RecordData::Employer(d),
            Layout::Vacancy(d) => RecordData::Vacancy(d.into()),
            Layout::JobSeeker(d) => RecordData::JobSeeker(d.into()),
            Layout::LaidOffEpisode(d) => RecordData::LaidOffEpisode(d),
            Layout::UnemploymentRegistration(d) => RecordData::UnemploymentRegistration(d),
            Layout::ServiceEvent(d) => RecordData::ServiceEvent(d),
            Layout::Placement(d) => RecordData::Placement(d),
            Layout::UiBenefitPayment(d) => RecordData::UiBenefitPayment(d),
            Layout::UiFundEntry(d) => RecordData::UiFundEntry(d),
            Layout::TrainingCourse(d) => RecordData::TrainingCourse(d),
            Layout::TrainingEnrolment(d) => RecordData::TrainingEnrolment(d),
            Layout::SupplyDemandReport(d) => RecordData::SupplyDemandReport(d),
            Layout::Vacancy2(d) => RecordData::Vacancy(d),
            Layout::JobSeeker2(d) => RecordData::JobSeeker(d),
            Layout::IngestTally(d) => RecordData::IngestTally(d),
        }
    }
}

impl<'de> Deserialize<'de> for RecordData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Layout::deserialize(d).map(RecordData::from)
    }
}

impl Serialize for RecordData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The first thirteen layouts' numbers are the kinds' (`Kind::ALL` order).
        let first = |kind: Kind| u32::try_from(kind.index()).unwrap_or(u32::MAX);
        const NAME: &str = "RecordData";
        match self {
            RecordData::Vacancy(v) => match v.earlier() {
                Some(view) => {
                    s.serialize_newtype_variant(NAME, first(Kind::Vacancy), "Vacancy", &view)
                }
                None => s.serialize_newtype_variant(NAME, VACANCY_2, "Vacancy2", v),
            },
            RecordData::JobSeeker(j) => match j.earlier() {
                Some(view) => {
                    s.serialize_newtype_variant(NAME, first(Kind::JobSeeker), "JobSeeker", &view)
                }
                None => s.serialize_newtype_variant(NAME, JOB_SEEKER_2, "JobSeeker2", j),
            },
            RecordData::Office(d) => {
                s.serialize_newtype_variant(NAME, first(Kind::Office), "Office", d)
            }
            RecordData::Employer(d) => {
                s.serialize_newtype_variant(NAME, first(Kind::Employer), "Employer", d)
            }
            RecordData::LaidOffEpisode(d) => {
                s.serialize_newtype_variant(NAME, first(Kind::LaidOffEpisode), "LaidOffEpisode", d)
            }
            RecordData::UnemploymentRegistration(d) => s.serialize_newtype_variant(
                NAME,
                first(Kind::UnemploymentRegistration),
                "UnemploymentRegistration",
                d,
            ),
            RecordData::ServiceEvent(d) => {
                s.serialize_newtype_variant(NAME, first(Kind::ServiceEvent), "ServiceEvent", d)
            }
            RecordData::Placement(d) => {
                s.serialize_newtype_variant(NAME, first(Kind::Placement), "Placement", d)
            }
            RecordData::UiBenefitPayment(d) => s.serialize_newtype_variant(
                NAME,
                first(Kind::UiBenefitPayment),
                "UiBenefitPayment",
                d,
            ),
            RecordData::UiFundEntry(d) => {
                s.serialize_newtype_variant(NAME, first(Kind::UiFundEntry), "UiFundEntry", d)
            }
            RecordData::TrainingCourse(d) => {
                s.serialize_newtype_variant(NAME, first(Kind::TrainingCourse), "TrainingCourse", d)
            }
            RecordData::TrainingEnrolment(d) => s.serialize_newtype_variant(
                NAME,
                first(Kind::TrainingEnrolment),
                "TrainingEnrolment",
                d,
            ),
            RecordData::SupplyDemandReport(d) => s.serialize_newtype_variant(
                NAME,
                first(Kind::SupplyDemandReport),
                "SupplyDemandReport",
                d,
            ),
            RecordData::IngestTally(d) => {
                s.serialize_newtype_variant(NAME, INGEST_TALLY, "IngestTally", d)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::codec;

    fn vacancy() -> Vacancy {
        let json = serde_json::json!({
            "receiving_office_id": "o1", "employer_id": "e1", "reported_on": "1999-07-01",
            "report_channel": "on_site", "title": "车工", "occupation": "6-04",
            "industry": "C", "headcount": 3, "contract_term": "one_year_or_more",
            "employment_type": "full_time", "work_location": "440103",
            "valid_from": "1999-07-01", "valid_until": "1999-09-30",
            "publish_allowed": true, "fill_state": "open"
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_record_without_added_fields_keeps_the_earlier_bytes() {
        let v = vacancy();
        let bytes = codec::encode(&RecordData::Vacancy(v.clone())).unwrap();
        // Variant 2 (the kind's number), then the fields of the earlier layout only.
        let earlier = codec::encode(&(2u8, v.earlier().unwrap())).unwrap();
        assert_eq!(bytes, earlier);
        let back: RecordData = codec::decode(&bytes).unwrap();
        assert_eq!(back, RecordData::Vacancy(v));
    }

    #[test]
    fn a_record_with_an_added_field_takes_the_later_layout_and_round_trips() {
        let mut v = vacancy();
        v.skill_level_min = Some(SkillLevel::Senior);
        v.age_max = Some(35);
        assert!(v.earlier().is_none());
        let bytes = codec::encode(&RecordData::Vacancy(v.clone())).unwrap();
        assert_eq!(bytes[0], u8::try_from(VACANCY_2).unwrap());
        let back: RecordData = codec::decode(&bytes).unwrap();
        assert_eq!(back, RecordData::Vacancy(v));
    }

    #[test]
    fn job_seekers_choose_their_layout_by_the_added_fields() {
        let json = serde_json::json!({
            "pid": "00112233445566778899aabbccddeeff", "pid_epoch": 1, "sex": "female",
            "birth_year": 1970, "residence_division": "440103", "hukou_class": "local_urban",
            "category": "laid_off", "registered_on": "1999-07-01", "valid_until": "1999-12-31"
        });
        let mut j: JobSeeker = serde_json::from_value(json).unwrap();
        let plain = codec::encode(&RecordData::JobSeeker(j.clone())).unwrap();
        assert_eq!(plain[0], 3);
        j.tech_title = Some(TechTitle::Intermediate);
        let later = codec::encode(&RecordData::JobSeeker(j.clone())).unwrap();
        assert_eq!(later[0], u8::try_from(JOB_SEEKER_2).unwrap());
        assert_eq!(
            codec::decode::<RecordData>(&later).unwrap(),
            RecordData::JobSeeker(j)
        );
    }
}

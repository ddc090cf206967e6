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

use super::super::record::Kind;

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

/// Tags of the layouts that are not a kind's position in [`Kind::ALL`]: the later
/// layouts of kinds that gained fields, and the first layout of kinds added after those.
/// Tags are never reused or renumbered.
pub(super) const VACANCY_2: u32 = 13;
pub(super) const JOB_SEEKER_2: u32 = 14;
pub(super) const INGEST_TALLY: u32 = 15;
pub(super) const PID_LINK: u32 = 16;

/// The tag a record of `kind` is written under when it needs no later layout: its
/// position for the first thirteen kinds, its own tag for kinds added since.
pub(super) fn first_tag(kind: Kind) -> u32 {
    match kind {
        Kind::IngestTally => INGEST_TALLY,
        Kind::PidLink => PID_LINK,
        k => u32::try_from(k.index()).unwrap_or(u32::MAX),
    }
}

/// The tag a kind's newest layout has (what a record read by name in JSON, which carries
/// every field, decodes as).
pub(super) fn newest_tag(kind: Kind) -> u32 {
    match kind {
        Kind::Vacancy => VACANCY_2,
        Kind::JobSeeker => JOB_SEEKER_2,
        k => first_tag(k),
    }
}

/// The kind written under a tag other than a later layout's, if any.
pub(super) fn kind_of_tag(tag: u32) -> Option<Kind> {
    match tag {
        INGEST_TALLY => Some(Kind::IngestTally),
        PID_LINK => Some(Kind::PidLink),
        VACANCY_2 | JOB_SEEKER_2 => None,
        t => usize::try_from(t)
            .ok()
            .and_then(|i| Kind::ALL.get(i).copied()),
    }
}

const NAME: &str = "RecordData";

/// Writes a vacancy in its earlier layout when its added fields are absent.
pub(super) fn write_vacancy<S: Serializer>(v: &Vacancy, s: S) -> Result<S::Ok, S::Error> {
    match v.earlier() {
        Some(view) => s.serialize_newtype_variant(NAME, first_tag(Kind::Vacancy), "Vacancy", &view),
        None => s.serialize_newtype_variant(NAME, VACANCY_2, "Vacancy", v),
    }
}

/// Writes a job seeker in its earlier layout when its added fields are absent.
pub(super) fn write_job_seeker<S: Serializer>(j: &JobSeeker, s: S) -> Result<S::Ok, S::Error> {
    match j.earlier() {
        Some(view) => {
            s.serialize_newtype_variant(NAME, first_tag(Kind::JobSeeker), "JobSeeker", &view)
        }
        None => s.serialize_newtype_variant(NAME, JOB_SEEKER_2, "JobSeeker", j),
    }
}

/// Reads the record under a tag of a kind that gained fields, if `tag` is one.
pub(super) fn read_layout<'de, A: serde::de::VariantAccess<'de>>(
    tag: u32,
    v: A,
) -> Result<Result<RecordData, A>, A::Error> {
    let vacancy_1 = first_tag(Kind::Vacancy);
    let seeker_1 = first_tag(Kind::JobSeeker);
    Ok(Ok(match tag {
        t if t == vacancy_1 => RecordData::Vacancy(v.newtype_variant::<VacancyV1>()?.into()),
        t if t == seeker_1 => RecordData::JobSeeker(v.newtype_variant::<JobSeekerV1>()?.into()),
        VACANCY_2 => RecordData::Vacancy(v.newtype_variant()?),
        JOB_SEEKER_2 => RecordData::JobSeeker(v.newtype_variant()?),
        _ => return Ok(Err(v)),
    }))
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

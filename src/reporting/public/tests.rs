//! Nothing private, ever: over random histories of vacancies (publishable or not, open,
//! filled, withdrawn, voided, updated), employers with registration codes and job
//! seekers with pseudonyms, every answer the board gives — searches of every kind, the
//! newest list, each vacancy looked up, the offices — serialised as the public JSON is,
//! holds no pseudonym, no registration code and no vacancy that may not be shown, and
//! every vacancy it lists is, in its latest version, publishable and open.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::Board;
use super::search::{Query, Sort};
use crate::core::model::kinds::{
    FillState, RecordData, SeekerCategory, SexRequirement, SkillLevel,
};
use crate::core::model::{NodeCode, Record, Status};
use crate::reporting::analysis::tests::{day, employer, record_as, seeker, vacancy};

fn city() -> NodeCode {
    "440100".parse().unwrap()
}

const FILL: [FillState; 5] = [
    FillState::Open,
    FillState::PartlyFilled,
    FillState::Filled,
    FillState::Withdrawn,
    FillState::Expired,
];
const STATUS: [Status; 4] = [
    Status::Active,
    Status::Closed,
    Status::Withdrawn,
    Status::Voided,
];

/// One write of the history.
#[derive(Debug, Clone)]
enum Write {
    Vacancy {
        n: u8,
        publish: bool,
        fill: usize,
        status: usize,
        wage: u32,
        occupation: u8,
    },
    Employer {
        n: u8,
        org: u32,
    },
    Seeker {
        n: u16,
    },
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        (
            0u8..12,
            any::<bool>(),
            0usize..5,
            0usize..4,
            500u32..5000,
            0u8..3
        )
            .prop_map(
                |(n, publish, fill, status, wage, occupation)| Write::Vacancy {
                    n,
                    publish,
                    fill,
                    status,
                    wage,
                    occupation
                }
            ),
        (0u8..4, 10_000_000u32..99_999_999).prop_map(|(n, org)| Write::Employer { n, org }),
        (0u16..500).prop_map(|n| Write::Seeker { n }),
    ]
}

const OCCUPATIONS: [&str; 3] = ["6-04-01", "4-07-99", "2-02-10"];

fn record_of(w: &Write) -> Record {
    match w {
        Write::Vacancy {
            n,
            publish,
            fill,
            status,
            wage,
            occupation,
        } => {
            let mut v = vacancy();
            v.publish_allowed = *publish;
            v.fill_state = FILL[*fill];
            v.wage_min = Some(*wage);
            v.wage_max = Some(wage + 500);
            v.employer_id = format!("E-{}", n % 4);
            v.occupation = OCCUPATIONS[usize::from(*occupation)].into();
            v.valid_from = day("2024-06-01");
            v.valid_until = day("2024-12-31");
            // The sensitive fields of the forms of the time, never public.
            v.sex_requirement = Some(SexRequirement::Female);
            v.age_min = Some(18);
            v.age_max = Some(35);
            v.skill_level_min = Some(SkillLevel::Senior);
            record_as(
                city(),
                &format!("V-{n}"),
                STATUS[*status],
                RecordData::Vacancy(v),
            )
        }
        Write::Employer { n, org } => {
            let mut e = employer("110");
            e.org_code = Some(format!("ORG{org}"));
            e.uscc = Some(format!("USCC{org}"));
            e.name = format!("单位{n}");
            record_as(
                city(),
                &format!("E-{n}"),
                Status::Active,
                RecordData::Employer(e),
            )
        }
        Write::Seeker { n } => {
            let s = seeker(*n, &["6-04-01"], SeekerCategory::LaidOff);
            record_as(
                city(),
                &format!("S-{n}"),
                Status::Active,
                RecordData::JobSeeker(s),
            )
        }
    }
}

fn queries() -> Vec<Query> {
    let mut all = vec![Query::default()];
    for occupation in ["6", "4-07", "2-02-10", "护理"] {
        all.push(Query {
            occupation: Some(occupation.into()),
            ..Query::default()
        });
    }
    all.push(Query {
        area: Some("4401".into()),
        wage_min: Some(2000),
        ..Query::default()
    });
    all.push(Query {
        q: Some("钳工".into()),
        sort: Sort::Wage,
        per_page: Some(50),
        ..Query::default()
    });
    all.push(Query {
        employer: Some("单位1".into()),
        ..Query::default()
    });
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_answer_shows_anything_private(history in prop::collection::vec(write(), 1..80)) {
        let mut board = Board::default();
        let mut latest: BTreeMap<String, Record> = BTreeMap::new();
        let mut secrets: Vec<String> = Vec::new();
        for w in &history {
            let r = record_of(w);
            match &r.data {
                RecordData::Employer(e) => secrets.extend([e.org_code.clone(), e.uscc.clone()].into_iter().flatten()),
                RecordData::JobSeeker(s) => secrets.push(s.pid.to_string()),
                _ => {}
            }
            board.apply(&r);
            latest.insert(r.envelope.id.clone(), r);
        }
        let names: BTreeMap<String, String> = [("6-04-01", "钳工"), ("4-07-99", "养老护理员"), ("2-02-10", "工程师")]
            .iter().map(|(c, n)| ((*c).to_string(), (*n).to_string())).collect();
        let date = day("2024-09-30");
        let mut answers = Vec::new();
        for q in queries() {
            let page = board.search(&q, date, &names).unwrap();
            for v in &page.items {
                let r = &latest[&v.id];
                let RecordData::Vacancy(d) = &r.data else { panic!("{} is no vacancy", v.id) };
                prop_assert!(d.publish_allowed && r.envelope.status == Status::Active
                    && matches!(d.fill_state, FillState::Open | FillState::PartlyFilled),
                    "{} listed: {:?}", v.id, d);
            }
            answers.push(serde_json::to_string(&page).unwrap());
        }
        answers.push(serde_json::to_string(&board.newest(date, 100)).unwrap());
        for id in latest.keys() {
            answers.push(serde_json::to_string(&board.vacancy(city(), id)).unwrap());
        }
        answers.push(serde_json::to_string(&board.offices().collect::<Vec<_>>()).unwrap());
        for answer in &answers {
            for s in &secrets {
                prop_assert!(!answer.contains(s.as_str()), "{s} shown in {answer}");
            }
            prop_assert!(!answer.contains("S-"), "a job seeker's record in {answer}");
            for field in ["\"sex_requirement\"", "\"age_min\"", "\"age_max\"", "\"female\""] {
                prop_assert!(!answer.contains(field), "{field} shown in {answer}");
            }
        }
    }
}

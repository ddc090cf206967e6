//! The indexed search answers exactly what a walk over every listed vacancy would: over
//! random boards (vacancies added, updated, withdrawn and voided; employers renamed) and
//! random queries of every term, the total, the members and the order of each answer
//! equal those of a plain filter and sort of the listed vacancies, and pages put
//! together give the whole answer.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use chrono::NaiveDate;
use proptest::prelude::*;

use super::search::{Query, Sort};
use super::{Board, PublicVacancy};
use crate::core::model::kinds::RecordData;
use crate::core::model::{NodeCode, Status};
use crate::reporting::analysis::tests::{day, employer, record_as, vacancy};

fn city() -> NodeCode {
    "440100".parse().unwrap()
}

const TITLES: [&str; 5] = ["钳工", "高级钳工", "养老护理员", "Senior Fitter", "厨师"];
const OCCUPATIONS: [&str; 4] = ["6-04-01", "4-07-99", "2-02-10", "4-03-01"];
const AREAS: [&str; 3] = ["440103", "440104", "440201"];
const EMPLOYERS: [&str; 3] = ["广州单位一", "单位二厂", "fitters ltd"];

fn start() -> NaiveDate {
    day("2024-06-01")
}

#[derive(Debug, Clone)]
enum Write {
    Vacancy {
        n: u8,
        shown: bool,
        title: usize,
        occupation: usize,
        area: usize,
        wage: Option<(u32, u32)>,
        posted: u16,
        valid: (u16, u16),
        employer: u8,
    },
    Employer {
        n: u8,
        name: usize,
    },
}

fn write() -> impl Strategy<Value = Write> {
    let vacancy = (
        (0u8..16, prop::bool::weighted(0.85), 0usize..5, 0usize..4),
        (0usize..3, prop::option::of((0u32..4, 0u32..4)), 0u16..60),
        ((0u16..40), (0u16..120), 0u8..3),
    )
        .prop_map(
            |((n, shown, title, occupation), (area, wage, posted), (from, len, employer))| {
                Write::Vacancy {
                    n,
                    shown,
                    title,
                    occupation,
                    area,
                    wage: wage.map(|(low, span)| (low * 500, low * 500 + span * 250)),
                    posted,
                    valid: (from, len),
                    employer,
                }
            },
        );
    let employer = (0u8..3, 0usize..3).prop_map(|(n, name)| Write::Employer { n, name });
    prop_oneof![4 => vacancy, 1 => employer]
}

fn apply(board: &mut Board, w: &Write) {
    let record = match w {
        Write::Vacancy {
            n,
            shown,
            title,
            occupation,
            area,
            wage,
            posted,
            valid,
            employer,
        } => {
            let mut v = vacancy();
            v.title = TITLES[*title].into();
            v.occupation = OCCUPATIONS[*occupation].into();
            v.work_location = AREAS[*area].into();
            v.wage_min = wage.map(|(low, _)| low);
            v.wage_max = wage.map(|(_, top)| top);
            v.reported_on = start() + chrono::Days::new(u64::from(*posted));
            v.valid_from = start() + chrono::Days::new(u64::from(valid.0));
            v.valid_until = v.valid_from + chrono::Days::new(u64::from(valid.1));
            v.employer_id = format!("E-{employer}");
            let status = if *shown {
                Status::Active
            } else {
                Status::Withdrawn
            };
            record_as(city(), &format!("V-{n}"), status, RecordData::Vacancy(v))
        }
        Write::Employer { n, name } => {
            let mut e = employer("110");
            e.name = EMPLOYERS[*name].into();
            record_as(
                city(),
                &format!("E-{n}"),
                Status::Active,
                RecordData::Employer(e),
            )
        }
    };
    board.apply(&record);
}

fn query() -> impl Strategy<Value = Query> {
    let text = |options: &'static [&'static str]| {
        prop::option::of(prop::sample::select(options)).prop_map(|t| t.map(String::from))
    };
    (
        (
            text(&[
                "钳工",
                "工",
                "护理员",
                "高级钳工",
                "二厂",
                "FITTER",
                "senior fitter",
            ]),
            text(&["6", "4", "4-07", "2-02-10", "护理", "钳"]),
            text(&["4401", "440104", "4402"]),
        ),
        (
            prop::option::of(0u32..2_500),
            prop::option::of(0u32..2_500),
            prop::option::of(0u16..60),
        ),
        (text(&["单位", "一", "LTD"]), any::<bool>()),
    )
        .prop_map(
            |((q, occupation, area), (wage_min, wage_max, posted), (employer, wage))| Query {
                q,
                occupation,
                area,
                wage_min,
                wage_max,
                posted_from: posted.map(|d| start() + chrono::Days::new(u64::from(d))),
                employer,
                sort: if wage { Sort::Wage } else { Sort::Newest },
                page: None,
                per_page: Some(50),
            },
        )
}

fn lower_words(text: Option<&String>) -> Vec<String> {
    text.map(|t| t.split_whitespace().map(str::to_lowercase).collect())
        .unwrap_or_default()
}

fn holds_all(text: &str, words: &[String]) -> bool {
    let text = text.to_lowercase();
    words.iter().all(|w| text.contains(w.as_str()))
}

/// The plain reading of a query: every listed vacancy, filtered one by one.
fn matches(
    v: &PublicVacancy,
    q: &Query,
    date: NaiveDate,
    names: &BTreeMap<String, String>,
) -> bool {
    let top = v.wage_max.or(v.wage_min);
    let low = v.wage_min.or(v.wage_max);
    let employer = v.employer.clone().unwrap_or_default();
    let occupation_name = names.get(&v.occupation).cloned().unwrap_or_default();
    let occupation_ok = q.occupation.as_deref().is_none_or(|term| {
        if term.starts_with(|c: char| c.is_ascii_digit()) {
            return v.occupation.starts_with(term);
        }
        let wanted = lower_words(Some(&term.to_string()));
        names
            .iter()
            .any(|(code, name)| holds_all(name, &wanted) && v.occupation.starts_with(code.as_str()))
    });
    v.open_on(date)
        && occupation_ok
        && q.area.as_deref().is_none_or(|a| v.area.starts_with(a))
        && q.wage_min.is_none_or(|w| top.is_some_and(|t| t >= w))
        && q.wage_max.is_none_or(|w| low.is_some_and(|l| l <= w))
        && q.posted_from.is_none_or(|d| v.posted_on >= d)
        && (q.employer.is_none() || holds_all(&employer, &lower_words(q.employer.as_ref())))
        && holds_all(
            &format!("{} {} {}", v.title, employer, occupation_name),
            &lower_words(q.q.as_ref()),
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_indexes_answer_what_a_walk_would(
        history in prop::collection::vec(write(), 1..60),
        queries in prop::collection::vec(query(), 1..8),
        date_offset in 0u16..120,
    ) {
        let mut board = Board::default();
        for w in &history {
            apply(&mut board, w);
        }
        let names: BTreeMap<String, String> = [
            ("6-04-01", "钳工"), ("4-07-99", "养老护理员"), ("2-02-10", "工程师"), ("4-03-01", "中式烹调师"),
        ].iter().map(|(c, n)| ((*c).to_string(), (*n).to_string())).collect();
        let date = start() + chrono::Days::new(u64::from(date_offset));
        let listed: Vec<PublicVacancy> = (0u8..16)
            .filter_map(|n| board.vacancy(city(), &format!("V-{n}")))
            .collect();
        for q in &queries {
            let mut expected: Vec<&PublicVacancy> =
                listed.iter().filter(|v| matches(v, q, date, &names)).collect();
            let answer = board.search(q, date, &names).unwrap();
            prop_assert_eq!(answer.total, expected.len(), "total of {:?}", q);
            let got: Vec<(Reverse<NaiveDate>, u32, String)> = answer.items.iter()
                .map(|v| (Reverse(v.posted_on), v.wage_max.or(v.wage_min).unwrap_or(0), v.id.clone()))
                .collect();
            match q.sort {
                Sort::Newest => {
                    let mut ids: Vec<&str> = got.iter().map(|(_, _, id)| id.as_str()).collect();
                    let mut want: Vec<&str> = expected.iter().map(|v| v.id.as_str()).collect();
                    ids.sort_unstable();
                    want.sort_unstable();
                    prop_assert_eq!(ids, want, "members of {:?}", q);
                    prop_assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "newest first: {:?}", got);
                }
                Sort::Wage => {
                    let pay = |v: &PublicVacancy| v.wage_max.or(v.wage_min).unwrap_or(0);
                    expected.sort_by(|a, b| pay(b).cmp(&pay(a)).then_with(|| a.id.cmp(&b.id)));
                    let want: Vec<&str> = expected.iter().map(|v| v.id.as_str()).collect();
                    let ids: Vec<&str> = got.iter().map(|(_, _, id)| id.as_str()).collect();
                    prop_assert_eq!(ids, want, "order of {:?}", q);
                }
            }
            // Pages of three, put together, are the whole answer in the same order.
            let whole: Vec<String> = answer.items.iter().map(|v| v.id.clone()).collect();
            let mut paged = Vec::new();
            for page in 1..=whole.len().div_ceil(3).max(1) {
                let q = Query { page: Some(page), per_page: Some(3), ..q.clone() };
                let part = board.search(&q, date, &names).unwrap();
                prop_assert_eq!(part.total, answer.total);
                paged.extend(part.items.into_iter().map(|v| v.id));
            }
            prop_assert_eq!(paged, whole, "pages of {:?}", q);
        }
        let newest: Vec<String> = board.newest(date, 100).into_iter().map(|v| v.id).collect();
        let everything = board.search(&Query { per_page: Some(50), ..Query::default() }, date, &names).unwrap();
        prop_assert_eq!(newest, everything.items.into_iter().map(|v| v.id).collect::<Vec<_>>());
    }
}

//! Tests of the export schemas: no personal field, names unique, rows that fit them, and
//! the quarter a record is placed in.

use std::collections::BTreeSet;

use super::*;
use crate::core::model::kinds::{Hardship, HardshipBasis, RecordData, SeekerCategory};
use crate::core::model::{Kind, NodeCode};
use crate::reporting::analysis::tests::{code, day, employer, episode, record, seeker, vacancy};

/// What never leaves a city: the ingest path drops these and replaces `citizen_id`.
fn personal() -> BTreeSet<&'static str> {
    crate::core::model::ingest::DROPPED_IDENTIFYING
        .iter()
        .copied()
        .chain(["citizen_id"])
        .collect()
}

/// The kinds that name a person.
const PERSON_KINDS: [Kind; 7] = [
    Kind::JobSeeker,
    Kind::LaidOffEpisode,
    Kind::UnemploymentRegistration,
    Kind::ServiceEvent,
    Kind::Placement,
    Kind::UiBenefitPayment,
    Kind::TrainingEnrolment,
];

#[test]
fn schemas_hold_no_personal_field_and_key_persons_by_pid() {
    for kind in Kind::ALL {
        let cols = columns(kind);
        let names: BTreeSet<&str> = cols.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), cols.len(), "{kind}: a column name repeats");
        assert!(
            names.is_disjoint(&personal()),
            "{kind}: {:?}",
            names.intersection(&personal()).collect::<Vec<_>>()
        );
        for partition in ["kind", "quarter", "city"] {
            assert!(!names.contains(partition), "{kind} repeats {partition}");
        }
        if PERSON_KINDS.contains(&kind) {
            assert!(names.contains("pid"), "{kind} has no pid");
            assert!(!names.contains("name"), "{kind} names a person");
        } else {
            assert!(!names.contains("pid"), "{kind} has a pid");
        }
        assert_eq!(
            names.contains("pid_epoch"),
            PERSON_KINDS.contains(&kind),
            "{kind}: the key epoch goes with every pid"
        );
    }
}

fn assert_fits(r: &Record) {
    let cols = columns(r.envelope.kind);
    let cells = row(r);
    assert_eq!(cols.len(), cells.len(), "{}", r.envelope.kind);
    for (c, cell) in cols.iter().zip(&cells) {
        assert!(cell.fits(c.ty, c.nullable), "{}: {cell:?}", c.name);
    }
}

#[test]
fn rows_fit_their_schema() {
    let city = code("440100");
    let mut s = seeker(1, &["6-04-01"], SeekerCategory::LaidOff);
    s.hardship = Some(Hardship {
        basis: HardshipBasis::Disability,
        since: day("2024-07-01"),
    });
    for data in [
        RecordData::Vacancy(vacancy()),
        RecordData::JobSeeker(s),
        RecordData::Employer(employer("110")),
        RecordData::LaidOffEpisode(episode(2, "2024-01-05", None)),
    ] {
        assert_fits(&record(city, "X-1", data));
    }
    let r = record(
        city,
        "S-1",
        RecordData::JobSeeker(seeker(3, &[], SeekerCategory::NewYouth)),
    );
    let cells = row(&r);
    let at = |name: &str| {
        let i = columns(Kind::JobSeeker)
            .iter()
            .position(|c| c.name == name)
            .unwrap();
        cells[i].clone()
    };
    assert_eq!(at("category"), Cell::Text("new_youth".into()));
    assert_eq!(at("desired_occupations"), Cell::TextList(vec![]));
    assert_eq!(at("hardship_basis"), Cell::Null);
    assert_eq!(at("owner"), Cell::Text("440100".into()));
    assert_eq!(at("status"), Cell::Text("active".into()));
}

#[test]
fn wages_are_money_in_yuan() {
    let mut v = vacancy();
    v.wage_min = Some(800);
    let r = record(code("440100"), "V-1", RecordData::Vacancy(v));
    let i = columns(Kind::Vacancy)
        .iter()
        .position(|c| c.name == "wage_min")
        .unwrap();
    assert_eq!(row(&r)[i], Cell::Money(80_000), "800 yuan is 80,000 fen");
}

#[test]
fn records_are_placed_where_the_report_counts_them_new() {
    let city: NodeCode = code("440100");
    let mut v = vacancy();
    v.valid_from = day("1999-06-30");
    v.valid_until = day("1999-12-31");
    let r = record(city, "V-1", RecordData::Vacancy(v));
    assert_eq!(quarter_label(&r), "1999Q2", "valid_from, not the span");
    let q2: Period = "1999Q2".parse().unwrap();
    let q3: Period = "1999Q3".parse().unwrap();
    assert!(in_period(&r, Some(q2)));
    assert!(
        !in_period(&r, Some(q3)),
        "carried over into Q3, placed in Q2"
    );
    assert!(in_period(&r, None));
    let s = record(
        city,
        "S-1",
        RecordData::JobSeeker(seeker(1, &[], SeekerCategory::Employed)),
    );
    assert_eq!(quarter_label(&s), "2024Q3", "registered_on 2024-07-10");
    let e = record(city, "E-1", RecordData::Employer(employer("110")));
    assert_eq!(quarter_label(&e), ALL_QUARTERS);
    assert!(
        in_period(&e, Some(q3)),
        "the directory goes with every period"
    );
    assert_eq!(
        partition_path(Kind::Vacancy, "1999Q2", "440100"),
        "kind=vacancy/quarter=1999Q2/city=440100"
    );
}

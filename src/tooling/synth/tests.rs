//! Tests of the synthetic generator: determinism, validity against the ingest path, and
//! the mix of kinds.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Generator, generate};
use crate::core::model::ingest::IngestContext;
use crate::core::model::person::Pseudonymiser;
use crate::core::model::standards::Standards;
use crate::core::model::validate::Checker;
use crate::core::model::{Kind, NodeCode};

fn code(s: &str) -> NodeCode {
    s.parse().unwrap()
}

#[test]
fn same_city_and_seed_give_the_same_records() {
    let a = generate(code("440100"), 5_000, 42);
    let b = generate(code("440100"), 5_000, 42);
    assert_eq!(a, b);
    let c = generate(code("440100"), 5_000, 43);
    assert_ne!(a, c, "another seed gives other records");
    let d = generate(code("320581"), 5_000, 42);
    assert_ne!(a, d, "another city gives other records");
}

#[test]
fn records_pass_ingest_validation() {
    let seed = 7;
    let standards = Standards::builtin();
    let key = Pseudonymiser::new([7; 32], 1);
    for city in ["440100", "320581", "222400"] {
        let owner = code(city);
        let cx = IngestContext::new(owner, &standards, Some(&key));
        for (n, record) in Generator::new(owner, seed).take(20_000).enumerate() {
            if let Err(e) = cx.draft(record.clone()) {
                panic!("city {city} seed {seed} record {n} rejected: {e}\n{record:#}");
            }
        }
    }
}

#[test]
fn every_pilot_city_and_a_municipality_produce_valid_records() {
    let standards = Standards::builtin();
    let key = Pseudonymiser::new([7; 32], 1);
    let cities = crate::core::model::tables::PILOT_CITIES.iter().map(|c| c.0);
    for (seed, city) in cities.chain([110_000, 500_000]).enumerate() {
        let owner = NodeCode::new(city).unwrap();
        let checker = Checker {
            owner,
            standards: &standards,
        };
        let cx = IngestContext {
            checker,
            pseudonymiser: Some(&key),
            previous: None,
        };
        let seed = u64::try_from(seed).unwrap();
        for record in Generator::new(owner, seed).take(2_000) {
            if let Err(e) = cx.draft(record.clone()) {
                panic!("city {city} seed {seed} rejected: {e}\n{record:#}");
            }
        }
    }
}

#[test]
fn job_information_names_vacancies() {
    let records = generate(code("320581"), 20_000, 5);
    let info = records
        .iter()
        .filter(|r| r["data"]["event_type"] == "job_info_provision");
    for record in info {
        assert!(
            record["data"]["vacancy_refs"]
                .as_array()
                .is_some_and(|v| !v.is_empty()),
            "{record}"
        );
    }
}

#[test]
fn the_mix_covers_every_kind_and_ids_repeat_only_as_new_versions() {
    let records = generate(code("440100"), 50_000, 1);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen: BTreeMap<(String, String), Value> = BTreeMap::new();
    for record in &records {
        let kind = record["kind"].as_str().unwrap();
        *counts
            .entry(Kind::parse(kind).unwrap().as_str())
            .or_default() += 1;
        let key = (kind.to_string(), record["id"].as_str().unwrap().to_string());
        if let Some(earlier) = seen.insert(key.clone(), record.clone()) {
            assert_ne!(earlier, *record, "{key:?} repeated without a change");
        }
    }
    println!("kinds in the first 50,000 records of 440100: {counts:#?}");
    let kinds: BTreeSet<&str> = counts.keys().copied().collect();
    for kind in Kind::ALL.into_iter().filter(|k| k.posted()) {
        assert!(
            kinds.contains(kind.as_str()),
            "no {kind} records: {counts:?}"
        );
    }
    let top = counts.iter().max_by_key(|(_, n)| **n).map(|(k, _)| *k);
    assert_eq!(top, Some("service_event"), "{counts:?}");
}

#[test]
fn person_records_after_a_seeker_reuse_its_citizen_id() {
    let records = generate(code("440100"), 20_000, 3);
    let seekers: BTreeSet<&str> = records
        .iter()
        .filter(|r| r["kind"] == "job_seeker")
        .filter_map(|r| r["data"]["citizen_id"].as_str())
        .collect();
    let episodes: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "laid_off_episode")
        .filter_map(|r| r["data"]["citizen_id"].as_str())
        .collect();
    assert!(!episodes.is_empty());
    assert!(episodes.iter().all(|id| seekers.contains(id)));
    let empty_wishes = records
        .iter()
        .filter(|r| r["kind"] == "job_seeker")
        .filter(|r| {
            r["data"]["desired_occupations"]
                .as_array()
                .is_some_and(Vec::is_empty)
        })
        .count();
    assert!(
        empty_wishes > 0,
        "some seekers have no occupational preference"
    );
}

/// The third simulated year of a city of one million (stocks have built up), against
/// `docs/reference/synthetic-data.md`; run with `--ignored --nocapture`.
#[test]
#[ignore = "slow; prints the yearly mix"]
fn one_year_mix() {
    let from = chrono::NaiveDate::from_ymd_opt(2001, 7, 1).unwrap();
    let end = chrono::NaiveDate::from_ymd_opt(2002, 7, 1).unwrap();
    let mut generator = Generator::new(code("130400"), 1);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut rsc_entrants = 0;
    while generator.today < end {
        let record = generator.next().unwrap();
        if generator.today < from {
            continue;
        }
        let kind = record["kind"].as_str().unwrap().to_string();
        if kind == "laid_off_episode"
            && record.get("status").is_none()
            && record["data"].get("rsc_entry_on").is_some()
        {
            rsc_entrants += 1;
        }
        *counts.entry(kind).or_default() += 1;
    }
    println!("records by kind in the third year: {counts:#?}\nRSC entrants: {rsc_entrants}");
}

//! The figures a store keeps (each city's coverage and report counts per quarter) against
//! a scan of the records: equal after any history of new records, updates, voids and
//! records of several cities held together, pseudonym key rotations with their pid links,
//! kept across a reopen, and computed again when the records change.

#![allow(clippy::unwrap_used)]

use lmsync::core::model::NodeCode;
use lmsync::core::model::ingest::IngestContext;
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::standards::Standards;
use lmsync::core::store::{Store, WriteBatch};
use lmsync::node::clock::{Clock, ManualClock};
use lmsync::node::storage::{SledStore, sled_options};
use lmsync::node::write::Planner;
use lmsync::reporting::analysis::{CityMetrics, CityReport, CountBasis, Period, run_two_passes};
use lmsync::reporting::scan::figures::{self, Source};
use lmsync::tooling::synth::Generator;
use proptest::prelude::*;
use serde_json::{Value, json};

const CITIES: [&str; 2] = ["440100", "440300"];

fn code(s: &str) -> NodeCode {
    s.parse().unwrap()
}

fn periods() -> Vec<Period> {
    (1..=4)
        .map(|q| Period::new(1999, q).unwrap())
        .chain([Period::new(2000, 1).unwrap()])
        .collect()
}

/// A province's store holding its cities' records, written as each city's write path
/// would (the figures do not care how records arrived).
struct Held {
    _dir: tempfile::TempDir,
    store: SledStore,
    standards: Standards,
    /// Per city: its generator and every record written, as sent.
    cities: Vec<(Generator, Vec<Value>)>,
    /// Per city: its pseudonym key epoch (from 1; after a rotation the previous key is
    /// kept, so persons ingested again are linked).
    epochs: Vec<u16>,
    clock: ManualClock,
}

impl Held {
    fn new(seed: u64) -> Held {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::create(
            dir.path(),
            code("440000"),
            [7; 16],
            0,
            sled_options(16 << 20),
        )
        .unwrap();
        let cities = CITIES
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    Generator::new(code(c), seed.wrapping_add(i as u64)),
                    Vec::new(),
                )
            })
            .collect();
        Held {
            _dir: dir,
            store,
            standards: Standards::builtin(),
            epochs: vec![1; CITIES.len()],
            cities,
            clock: ManualClock::new(1_000),
        }
    }

    /// Writes `values` as city `city`'s records, in one commit.
    fn write(&mut self, city: usize, values: Vec<Value>) {
        let owner = code(CITIES[city]);
        let epoch = self.epochs[city];
        let key_of = |epoch: u16| {
            let byte = u8::try_from(city * 16 + usize::from(epoch)).unwrap();
            Pseudonymiser::new([byte; 32], epoch)
        };
        let (key, previous) = (key_of(epoch), (epoch > 1).then(|| key_of(epoch - 1)));
        let cx =
            IngestContext::new(owner, &self.standards, Some(&key)).with_previous(previous.as_ref());
        let refs = self.standards.code_refs();
        let mut planner = Planner::new(&self.store, owner);
        for v in values {
            // A generated record is valid; an edited one may not be, and is left out as
            // the API would refuse it.
            if let Ok((draft, link)) = cx.drafts(v) {
                for d in std::iter::once(draft).chain(link) {
                    self.clock.advance(1);
                    planner.plan(d, &refs, self.clock.now_ms()).unwrap();
                }
            }
        }
        self.store
            .commit(WriteBatch {
                records: planner.into_writes(),
                ..WriteBatch::default()
            })
            .unwrap();
    }

    fn add_new(&mut self, city: usize, n: usize) {
        let (generator, written) = &mut self.cities[city];
        let values: Vec<Value> = generator.take(n).collect();
        written.extend(values.iter().cloned());
        self.write(city, values);
    }

    /// Writes later versions of `count` records written before, from the `pick`th on:
    /// closed, withdrawn or voided.
    fn change(&mut self, city: usize, pick: usize, count: usize, status: &str) {
        let written = &self.cities[city].1;
        if written.is_empty() {
            return;
        }
        let changed = (0..count)
            .map(|i| {
                let mut v = written[(pick + i * 7) % written.len()].clone();
                v["status"] = json!(status);
                v
            })
            .collect();
        self.write(city, changed);
    }

    /// The counts from a scan of the records, by the same accumulators, not through the
    /// figures.
    fn scanned_coverage(
        &self,
        city: NodeCode,
        period: Period,
    ) -> lmsync::reporting::analysis::CityCounts {
        let mut acc = CityMetrics::new(city, period, &self.standards);
        run_two_passes(&mut acc, || self.store.records_of(city).map(Result::unwrap));
        acc.finish()
    }

    fn scanned_report(
        &self,
        city: NodeCode,
        period: Period,
        basis: CountBasis,
    ) -> lmsync::reporting::analysis::ReportCounts {
        let mut acc = CityReport::new(city, period, basis);
        run_two_passes(&mut acc, || self.store.records_of(city).map(Result::unwrap));
        acc.finish()
    }

    /// Asks the figures for one city and quarter and checks them against a scan.
    fn check(&self, city: NodeCode, period: Period) {
        let (counts, _) = figures::city_counts(&self.store, &self.standards, city, period).unwrap();
        assert_eq!(
            counts,
            self.scanned_coverage(city, period),
            "coverage {city} {period}"
        );
        for basis in [CountBasis::ValidInPeriod, CountBasis::NewInPeriod] {
            let (counts, _) = figures::city_report(&self.store, city, period, basis).unwrap();
            assert_eq!(
                counts,
                self.scanned_report(city, period, basis),
                "report {city} {period} {basis:?}"
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    New {
        city: usize,
        n: usize,
    },
    Change {
        city: usize,
        pick: usize,
        count: usize,
        status: &'static str,
    },
    Ask {
        city: usize,
    },
    /// The city moves to its next pseudonym key, keeping the previous one.
    Rotate {
        city: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..CITIES.len(), 1..600usize).prop_map(|(city, n)| Step::New { city, n }),
        2 => (
            0..CITIES.len(),
            any::<usize>(),
            1..40usize,
            prop::sample::select(vec!["closed", "withdrawn", "voided"]),
        )
            .prop_map(|(city, pick, count, status)| Step::Change {
                city,
                pick,
                count,
                status
            }),
        2 => (0..CITIES.len()).prop_map(|city| Step::Ask { city }),
        1 => (0..CITIES.len()).prop_map(|city| Step::Rotate { city }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Figures asked for at any point of a history equal a scan of the records at that
    /// point, whether they were stored before or computed now; at the end every figure
    /// does, and the verifier finds nothing to correct.
    #[test]
    fn kept_figures_equal_a_scan_after_any_history(
        seed in any::<u64>(),
        steps in prop::collection::vec(step(), 1..14),
    ) {
        let mut held = Held::new(seed);
        let periods = periods();
        for s in steps {
            match s {
                Step::New { city, n } => held.add_new(city, n),
                Step::Change { city, pick, count, status } => {
                    held.change(city, pick, count, status);
                }
                Step::Ask { city } => {
                    for &period in &periods {
                        held.check(code(CITIES[city]), period);
                    }
                }
                Step::Rotate { city } => held.epochs[city] += 1,
            }
        }
        for city in CITIES {
            for &period in &periods {
                held.check(code(city), period);
            }
        }
        let found = figures::verify(&held.store, &held.standards).unwrap();
        prop_assert!(found.differences.is_empty(), "{found:?}");
        prop_assert_eq!(found.stale, 0);
        prop_assert_eq!(found.checked, CITIES.len() * periods.len() * 3);
    }
}

#[test]
fn figures_are_kept_across_a_reopen_and_computed_again_when_records_change() {
    let mut held = Held::new(42);
    held.add_new(0, 300);
    let (city, period) = (code(CITIES[0]), Period::new(1999, 3).unwrap());
    let ask = |store: &SledStore, standards: &Standards| {
        figures::city_counts(store, standards, city, period).unwrap()
    };
    let (first, source) = ask(&held.store, &held.standards);
    assert_eq!(source, Source::Scanned, "nothing kept yet");
    assert_eq!(
        ask(&held.store, &held.standards),
        (first.clone(), Source::Stored)
    );

    let dir = held._dir.path().to_path_buf();
    drop(std::mem::replace(
        &mut held.store,
        SledStore::create(
            &dir.join("elsewhere"),
            code("440000"),
            [8; 16],
            0,
            sled_options(1 << 20),
        )
        .unwrap(),
    ));
    held.store = SledStore::open(&dir, code("440000"), sled_options(16 << 20)).unwrap();
    assert_eq!(
        ask(&held.store, &held.standards),
        (first.clone(), Source::Stored),
        "kept across the reopen"
    );

    held.add_new(0, 50);
    let (after, source) = ask(&held.store, &held.standards);
    assert_eq!(source, Source::Scanned, "the city's records changed");
    assert_eq!(after, held.scanned_coverage(city, period));
    // Another city's records do not touch this city's figures.
    held.add_new(1, 50);
    assert_eq!(ask(&held.store, &held.standards).1, Source::Stored);
}

/// Without anything asked for, a refresh keeps each city's coverage and report of its
/// quarters of activity; it computes again only a city whose records changed, and gives
/// way between cities when told.
#[test]
fn refresh_keeps_the_quarters_of_activity_and_gives_way_between_cities() {
    // Enough records to reach vacancies, seekers and services after the offices and
    // employers a generated city starts with.
    let mut held = Held::new(7);
    held.add_new(0, 600);
    held.add_new(1, 600);
    let q3 = Period::new(1999, 3).unwrap();
    let sources = |held: &Held, city: usize| {
        let city = code(CITIES[city]);
        (
            figures::city_counts(&held.store, &held.standards, city, q3)
                .unwrap()
                .1,
            figures::city_report(&held.store, city, q3, CountBasis::ValidInPeriod)
                .unwrap()
                .1,
        )
    };
    assert!(figures::refresh(&held.store, &held.standards, |_| false).unwrap() >= 4);
    for city in 0..CITIES.len() {
        assert_eq!(
            sources(&held, city),
            (Source::Stored, Source::Stored),
            "never asked, kept"
        );
    }
    assert_eq!(
        figures::refresh(&held.store, &held.standards, |_| false).unwrap(),
        0,
        "nothing changed"
    );

    held.add_new(0, 20);
    assert!(figures::refresh(&held.store, &held.standards, |_| false).unwrap() >= 2);
    assert_eq!(sources(&held, 0), (Source::Stored, Source::Stored));

    held.add_new(0, 20);
    held.add_new(1, 20);
    assert!(figures::refresh(&held.store, &held.standards, |done| done > 0).unwrap() >= 2);
    assert_eq!(
        sources(&held, 0).0,
        Source::Stored,
        "the first city was refreshed"
    );
    assert_eq!(sources(&held, 1).0, Source::Scanned, "then it gave way");
}

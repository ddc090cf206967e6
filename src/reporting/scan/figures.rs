//! Figures kept in the store: each city's coverage counts and report counts per quarter
//! (and counting basis), so that coverage and reports over a whole store are merges of
//! stored counts rather than a scan of every record.
//!
//! A city's counts come from two passes over all of its records (cohorts and employers
//! are joins: one new record can change what another counts for), so they are not kept
//! up to date record by record. Each entry is instead **stamped** with what it was
//! computed from: the city's digest (the number of its records and the sum of their
//! fingerprints, which changes with any record added, changed, voided or removed) and, for
//! coverage, the classifications in force. An entry whose stamp is not the current one
//! is never used: the city is scanned again and the entry replaced. So a stored figure is
//! either exactly what a scan gives now, or ignored.
//!
//! Entries are written after the scan that computed them, read whenever a figure is
//! asked for, and refreshed after commits by [`refresh`] (the node runs it when its
//! records have settled), so that a node restarted after syncing answers from them at
//! once. [`verify`] recomputes every current entry from the records and reports any that
//! differ: the operator's check that the stored figures are the records' figures.

use serde::{Deserialize, Serialize};

use crate::core::codec;
use crate::core::model::standards::Standards;
use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::core::model::kinds::RecordData;
use crate::core::model::{NodeCode, Record, Status, Tier};
use crate::core::reconcile::Digest;
use crate::core::store::{Store, StoreError};
use crate::reporting::analysis::{
    CityCounts, CityMetrics, CityReport, CountBasis, Period, ReportCounts, StoredCityCounts,
    TwoPass,
};

/// Which computation a figure holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Computation {
    /// The city's coverage counts (M01–M12, F01–F06, the cohort).
    Coverage,
    /// The city's report counts (tables 1–9) on a counting basis.
    Report(CountBasis),
}

impl Computation {
    fn tag(self) -> u8 {
        match self {
            Computation::Coverage => b'c',
            Computation::Report(CountBasis::ValidInPeriod) => b'v',
            Computation::Report(CountBasis::NewInPeriod) => b'n',
        }
    }

    /// `coverage`, `report_valid_in_period` or `report_new_in_period`.
    fn name(self) -> String {
        match self {
            Computation::Coverage => "coverage".into(),
            Computation::Report(basis) => format!("report_{}", basis.as_str()),
        }
    }

    fn of_tag(tag: u8) -> Option<Computation> {
        match tag {
            b'c' => Some(Computation::Coverage),
            b'v' => Some(Computation::Report(CountBasis::ValidInPeriod)),
            b'n' => Some(Computation::Report(CountBasis::NewInPeriod)),
            _ => None,
        }
    }
}

/// Where a figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A stored entry whose stamp is current.
    Stored,
    /// A scan of the city's records (and now stored).
    Scanned,
}

/// What a figure was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    records: u64,
    sum: u128,
    /// The classifications in force, for coverage (F05); empty for reports.
    standards: String,
}

/// One stored figure.
#[derive(Debug, Serialize, Deserialize)]
struct Entry<T> {
    stamp: Stamp,
    counts: T,
}

/// One figure's key: computation, city and quarter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FigureKey {
    /// The computation.
    pub computation: Computation,
    /// The city.
    pub city: NodeCode,
    /// The quarter.
    pub period: Period,
}

impl FigureKey {
    fn bytes(self) -> Vec<u8> {
        let mut k = vec![self.computation.tag()];
        k.extend_from_slice(&self.city.get().to_be_bytes());
        k.extend_from_slice(self.period.to_string().as_bytes());
        k
    }

    fn parse(bytes: &[u8]) -> Option<FigureKey> {
        let (&tag, rest) = bytes.split_first()?;
        let (city, period) = rest.split_first_chunk::<4>()?;
        Some(FigureKey {
            computation: Computation::of_tag(tag)?,
            city: NodeCode::new(u32::from_be_bytes(*city)).ok()?,
            period: std::str::from_utf8(period).ok()?.parse().ok()?,
        })
    }
}

/// The stamp of `city`'s figures now; `standards` only for coverage, which counts codes
/// against the classifications in force (reports do not depend on them).
fn stamp(store: &dyn Store, city: NodeCode, standards: Option<&Standards>) -> Stamp {
    let Digest { records, sum } = store.digest(Some(city), None);
    let standards = standards.map_or_else(String::new, |s| {
        s.code_refs()
            .iter()
            .map(|c| format!("{}:{}", c.scheme, c.version))
            .collect::<Vec<_>>()
            .join(",")
    });
    Stamp {
        records,
        sum,
        standards,
    }
}

/// The stored entry under `key`, if it decodes; an entry another release wrote in another
/// shape is as good as none.
fn stored<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    key: &[u8],
) -> Result<Option<Entry<T>>, StoreError> {
    Ok(store
        .figures(key)?
        .and_then(|bytes| codec::decode::<Entry<T>>(&bytes).ok()))
}

/// Runs both passes of `acc` over `city`'s records.
fn scan<A: TwoPass>(store: &dyn Store, city: NodeCode, mut acc: A) -> Result<A, StoreError> {
    for record in store.records_of(city) {
        acc.first_pass(&record?);
    }
    for record in store.records_of(city) {
        acc.second_pass(&record?);
    }
    Ok(acc)
}

/// Computes a figure of `city` by a scan, and stores it under `key` when the city's records
/// did not change during the scan (a figure is stored only with the stamp it was computed
/// from).
fn scan_and_keep<T: Serialize>(
    store: &dyn Store,
    key: &[u8],
    city: NodeCode,
    standards: Option<&Standards>,
    compute: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let before = stamp(store, city, standards);
    let counts = compute()?;
    if stamp(store, city, standards) == before {
        let entry = Entry {
            stamp: before,
            counts: &counts,
        };
        store.put_figures(key, &codec::encode(&entry)?)?;
    }
    Ok(counts)
}

/// `city`'s coverage counts for `period`: stored, or scanned and stored.
pub fn city_counts(
    store: &dyn Store,
    standards: &Standards,
    city: NodeCode,
    period: Period,
) -> Result<(CityCounts, Source), StoreError> {
    let key = FigureKey {
        computation: Computation::Coverage,
        city,
        period,
    };
    if let Some(entry) = stored::<StoredCityCounts>(store, &key.bytes())?
        && entry.stamp == stamp(store, city, Some(standards))
        && let Some(counts) = entry.counts.counts()
    {
        return Ok((counts, Source::Stored));
    }
    let counts = scan_and_keep(store, &key.bytes(), city, Some(standards), || {
        let acc = scan(store, city, CityMetrics::new(city, period, standards))?;
        Ok(StoredCityCounts::from(&acc.finish()))
    })?;
    let counts = counts
        .counts()
        .ok_or_else(|| StoreError::Storage("counts outside the metric catalogue".into()))?;
    Ok((counts, Source::Scanned))
}

/// `city`'s report counts for `period` on `basis`: stored, or scanned and stored.
pub fn city_report(
    store: &dyn Store,
    city: NodeCode,
    period: Period,
    basis: CountBasis,
) -> Result<(ReportCounts, Source), StoreError> {
    let key = FigureKey {
        computation: Computation::Report(basis),
        city,
        period,
    };
    if let Some(entry) = stored::<ReportCounts>(store, &key.bytes())?
        && entry.stamp == stamp(store, city, None)
    {
        return Ok((entry.counts, Source::Stored));
    }
    let counts = scan_and_keep(store, &key.bytes(), city, None, || {
        Ok(scan(store, city, CityReport::new(city, period, basis))?.finish())
    })?;
    Ok((counts, Source::Scanned))
}

/// Computes (if stale) the figure of `key`, through the same path a query takes.
fn figure(store: &dyn Store, standards: &Standards, key: FigureKey) -> Result<Source, StoreError> {
    Ok(match key.computation {
        Computation::Coverage => city_counts(store, standards, key.city, key.period)?.1,
        Computation::Report(basis) => city_report(store, key.city, key.period, basis)?.1,
    })
}

/// Quarters of activity per city kept warm without being asked for: the latest ones.
const WARM_QUARTERS: usize = 8;

/// Key of a city's quarters of activity (not a [`FigureKey`]: tag `q`, no quarter).
fn quarters_key(city: NodeCode) -> Vec<u8> {
    let mut k = vec![b'q'];
    k.extend_from_slice(&city.get().to_be_bytes());
    k
}

/// When a record is activity: a vacancy reported, a seeker registered, a service given.
fn activity_date(record: &Record) -> Option<NaiveDate> {
    match &record.data {
        RecordData::Vacancy(v) => Some(v.reported_on),
        RecordData::JobSeeker(s) => Some(s.registered_on),
        RecordData::ServiceEvent(e) => Some(e.occurred_on),
        _ => None,
    }
}

/// The latest [`WARM_QUARTERS`] quarters in which `city` has activity, kept stamped like
/// a figure (one pass over its records when they changed).
fn activity_quarters(store: &dyn Store, city: NodeCode) -> Result<Vec<Period>, StoreError> {
    let key = quarters_key(city);
    if let Some(entry) = stored::<Vec<Period>>(store, &key)?
        && entry.stamp == stamp(store, city, None)
    {
        return Ok(entry.counts);
    }
    scan_and_keep(store, &key, city, None, || {
        let mut quarters = BTreeSet::new();
        for record in store.records_of(city) {
            let record = record?;
            if record.envelope.status == Status::Voided {
                continue;
            }
            if let Some(period) = activity_date(&record).and_then(|d| Period::of_date(d).ok()) {
                quarters.insert(period);
            }
        }
        Ok(quarters.into_iter().rev().take(WARM_QUARTERS).collect())
    })
}

/// True when the figure of `key` is stored with the current stamp.
fn is_current(
    store: &dyn Store,
    standards: &Standards,
    key: FigureKey,
) -> Result<bool, StoreError> {
    let coverage = key.computation == Computation::Coverage;
    let now = stamp(store, key.city, coverage.then_some(standards));
    let kept = match key.computation {
        Computation::Coverage => stored::<StoredCityCounts>(store, &key.bytes())?.map(|e| e.stamp),
        Computation::Report(_) => stored::<ReportCounts>(store, &key.bytes())?.map(|e| e.stamp),
    };
    Ok(kept.is_some_and(|s| s == now))
}

/// One accumulator of a city's figures.
enum Accumulator<'a> {
    Coverage(CityMetrics<'a>),
    Report(CityReport),
}

/// Every figure due for one city, fed by one pair of passes.
struct Due<'a>(Vec<Accumulator<'a>>);

impl TwoPass for Due<'_> {
    fn first_pass(&mut self, record: &Record) {
        for acc in &mut self.0 {
            match acc {
                Accumulator::Coverage(a) => a.first_pass(record),
                Accumulator::Report(a) => a.first_pass(record),
            }
        }
    }

    fn second_pass(&mut self, record: &Record) {
        for acc in &mut self.0 {
            match acc {
                Accumulator::Coverage(a) => a.second_pass(record),
                Accumulator::Report(a) => a.second_pass(record),
            }
        }
    }
}

/// Computes the figures of `due` (all of one city) in one pair of passes and keeps them
/// if the city's records did not change meanwhile.
fn compute_city(
    store: &dyn Store,
    standards: &Standards,
    city: NodeCode,
    due: &[FigureKey],
) -> Result<(), StoreError> {
    let accumulators = due
        .iter()
        .map(|k| match k.computation {
            Computation::Coverage => {
                Accumulator::Coverage(CityMetrics::new(city, k.period, standards))
            }
            Computation::Report(basis) => {
                Accumulator::Report(CityReport::new(city, k.period, basis))
            }
        })
        .collect();
    let (coverage_stamp, report_stamp) = (
        stamp(store, city, Some(standards)),
        stamp(store, city, None),
    );
    let Due(done) = scan(store, city, Due(accumulators))?;
    if stamp(store, city, Some(standards)) != coverage_stamp {
        return Ok(());
    }
    for (key, acc) in due.iter().zip(done) {
        let bytes = match acc {
            Accumulator::Coverage(a) => codec::encode(&Entry {
                stamp: coverage_stamp.clone(),
                counts: StoredCityCounts::from(&a.finish()),
            })?,
            Accumulator::Report(a) => codec::encode(&Entry {
                stamp: report_stamp.clone(),
                counts: a.finish(),
            })?,
        };
        store.put_figures(&key.bytes(), &bytes)?;
    }
    Ok(())
}

/// Every computation and quarter asked for before.
fn asked(store: &dyn Store) -> Result<BTreeSet<(Computation, Period)>, StoreError> {
    Ok(store
        .figures_keys()?
        .iter()
        .filter_map(|k| FigureKey::parse(k))
        .map(|k| (k.computation, k.period))
        .collect())
}

/// Brings every figure worth keeping up to date with the records, city by city, until
/// `stop` (asked before each city, with how many figures were computed so far) says so.
/// Worth keeping: each computation and quarter asked for before, and, at a province or
/// the ministry, coverage and the report (valid in the period) of each city's latest
/// quarters of activity, so that a node that only synced answers a first question about
/// them at once. Returns how many
/// figures were computed again.
pub fn refresh(
    store: &dyn Store,
    standards: &Standards,
    stop: impl Fn(usize) -> bool,
) -> Result<usize, StoreError> {
    let asked = asked(store)?;
    // A city's own figures take a scan of one city to compute when asked; the figures of
    // provinces and the ministry span many, so those are kept before anyone asks.
    let warm: &[Computation] = if store.identity().node.tier() == Tier::City {
        &[]
    } else {
        &[
            Computation::Coverage,
            Computation::Report(CountBasis::ValidInPeriod),
        ]
    };
    let cities: Vec<NodeCode> = store
        .owner_counts()
        .into_keys()
        .filter(|c| c.tier() == Tier::City)
        .collect();
    let mut scanned = 0;
    for city in cities {
        if stop(scanned) {
            break;
        }
        let mut wanted = asked.clone();
        if !warm.is_empty() {
            for period in activity_quarters(store, city)? {
                wanted.extend(warm.iter().map(|&c| (c, period)));
            }
        }
        let mut due = Vec::new();
        for (computation, period) in wanted {
            let key = FigureKey {
                computation,
                city,
                period,
            };
            if !is_current(store, standards, key)? {
                due.push(key);
            }
        }
        if !due.is_empty() {
            compute_city(store, standards, city, &due)?;
            scanned += due.len();
        }
    }
    Ok(scanned)
}

/// Forgets every stored figure: each is computed again, from a scan, when next asked
/// for. (An empty value is no figure; the key stays, so the figure is still kept once
/// computed.) Returns how many were forgotten.
pub fn forget(store: &dyn Store) -> Result<usize, StoreError> {
    let keys = store.figures_keys()?;
    for key in &keys {
        store.put_figures(key, &[])?;
    }
    Ok(keys.len())
}

/// A stored figure that is not what its records give.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// `coverage`, `report_valid_in_period` or `report_new_in_period`.
    pub computation: String,
    /// The city.
    pub city: NodeCode,
    /// The quarter.
    pub period: Period,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// Current figures recomputed from the records and compared.
    pub checked: usize,
    /// Figures stored for records that have changed since (recomputed when next asked).
    pub stale: usize,
    /// Current figures that differ from the records' (stored wrongly: each is replaced).
    pub differences: Vec<Difference>,
}

/// Recomputes every current stored figure from the records and compares; a figure that
/// differs is replaced by the recomputed one.
pub fn verify(store: &dyn Store, standards: &Standards) -> Result<Verification, StoreError> {
    let mut found = Verification::default();
    for key in store
        .figures_keys()?
        .iter()
        .filter_map(|k| FigureKey::parse(k))
    {
        let coverage = key.computation == Computation::Coverage;
        let now = stamp(store, key.city, coverage.then_some(standards));
        let standing = match key.computation {
            Computation::Coverage => standing(store, key, &now, |kept: StoredCityCounts| {
                let acc = CityMetrics::new(key.city, key.period, standards);
                Ok(kept.counts() == Some(scan(store, key.city, acc)?.finish()))
            })?,
            Computation::Report(basis) => standing(store, key, &now, |kept: ReportCounts| {
                let acc = CityReport::new(key.city, key.period, basis);
                Ok(kept == scan(store, key.city, acc)?.finish())
            })?,
        };
        match standing {
            Standing::Absent => {}
            Standing::Stale => found.stale += 1,
            Standing::Checked(same) => {
                found.checked += 1;
                if !same {
                    store.put_figures(&key.bytes(), &[])?;
                    figure(store, standards, key)?;
                    found.differences.push(Difference {
                        computation: key.computation.name(),
                        city: key.city,
                        period: key.period,
                    });
                }
            }
        }
    }
    Ok(found)
}

/// A stored figure against the records now.
enum Standing {
    /// None is stored (or another release's, unreadable).
    Absent,
    /// Stored for records that have changed since.
    Stale,
    /// Current, and equal to a scan or not.
    Checked(bool),
}

/// How the figure under `key` stands, given the records' stamp `now`; `equals_scan`
/// compares a current one with a scan.
fn standing<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    key: FigureKey,
    now: &Stamp,
    equals_scan: impl FnOnce(T) -> Result<bool, StoreError>,
) -> Result<Standing, StoreError> {
    let Some(entry) = stored::<T>(store, &key.bytes())? else {
        return Ok(Standing::Absent);
    };
    if entry.stamp != *now {
        return Ok(Standing::Stale);
    }
    Ok(Standing::Checked(equals_scan(entry.counts)?))
}

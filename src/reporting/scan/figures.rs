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
use crate::core::model::{NodeCode, Tier};
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
    /// The city's report counts (tables 1–8) on a counting basis.
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
    key: FigureKey,
) -> Result<Option<Entry<T>>, StoreError> {
    Ok(store
        .figures(&key.bytes())?
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

/// Computes a figure by a scan, and stores it when the city's records did not change
/// during the scan (a figure is stored only with the stamp it was computed from).
fn scan_and_keep<T: Serialize>(
    store: &dyn Store,
    key: FigureKey,
    standards: Option<&Standards>,
    compute: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let before = stamp(store, key.city, standards);
    let counts = compute()?;
    if stamp(store, key.city, standards) == before {
        let entry = Entry {
            stamp: before,
            counts: &counts,
        };
        store.put_figures(&key.bytes(), &codec::encode(&entry)?)?;
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
    if let Some(entry) = stored::<StoredCityCounts>(store, key)?
        && entry.stamp == stamp(store, city, Some(standards))
        && let Some(counts) = entry.counts.counts()
    {
        return Ok((counts, Source::Stored));
    }
    let counts = scan_and_keep(store, key, Some(standards), || {
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
    if let Some(entry) = stored::<ReportCounts>(store, key)?
        && entry.stamp == stamp(store, city, None)
    {
        return Ok((entry.counts, Source::Stored));
    }
    let counts = scan_and_keep(store, key, None, || {
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

/// Every figure that should be kept: each computation and quarter asked for before, for
/// every city held here.
fn wanted(store: &dyn Store) -> Result<Vec<FigureKey>, StoreError> {
    let asked: std::collections::BTreeSet<(Computation, Period)> = store
        .figures_keys()?
        .iter()
        .filter_map(|k| FigureKey::parse(k))
        .map(|k| (k.computation, k.period))
        .collect();
    let cities: Vec<NodeCode> = store
        .owner_counts()
        .into_keys()
        .filter(|c| c.tier() == Tier::City)
        .collect();
    Ok(asked
        .into_iter()
        .flat_map(|(computation, period)| {
            cities.iter().map(move |&city| FigureKey {
                computation,
                city,
                period,
            })
        })
        .collect())
}

/// Brings every kept figure up to date with the records, city by city, until `stop`
/// (asked before each city, with how many were computed so far) says so. Returns how many
/// were computed again.
pub fn refresh(
    store: &dyn Store,
    standards: &Standards,
    stop: impl Fn(usize) -> bool,
) -> Result<usize, StoreError> {
    let mut scanned = 0;
    for key in wanted(store)? {
        if stop(scanned) {
            break;
        }
        if figure(store, standards, key)? == Source::Scanned {
            scanned += 1;
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
    let Some(entry) = stored::<T>(store, key)? else {
        return Ok(Standing::Absent);
    };
    if entry.stamp != *now {
        return Ok(Standing::Stale);
    }
    Ok(Standing::Checked(equals_scan(entry.counts)?))
}

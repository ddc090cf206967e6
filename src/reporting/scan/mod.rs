//! Coverage and quarterly reports over this node's store: the shell that streams each
//! city's records from storage through [`crate::reporting::analysis`] and adds what only a running
//! node knows (when records arrived, link lag, quarantine).
//!
//! One city at a time, two passes each (see [`crate::reporting::analysis`]): memory follows the
//! largest city's cohort and classification groups, never the number of records held.
//! Targets and pilot designations come from the documents stored here, over the notice's
//! defaults.

mod edition;
pub mod figures;

pub use edition::{editions, in_edition, resolve_alias};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::core::model::crosswalk::Editions;
use crate::core::model::document::{EVALUATION, PILOT, SCHEDULE, StoredDocument, TARGET};
use crate::core::model::standards::Standards;
use crate::core::model::{Kind, NodeCode, RecordKey, Tier};
use crate::core::store::{Store, StoreError};
use crate::reporting::analysis::evaluations::EvaluationView;
use crate::reporting::analysis::schedule::today_of;
use crate::reporting::analysis::{
    self, CityCounts, CountBasis, EngineFacts, EngineLimits, EvalContext, MetricAggregate,
    MetricSet, Period, PilotOverview, PublishedReport, QuarterlyReport, ReportCounts,
    ReportingSchedule, Scope, Submission, SubmissionStatus, Target,
};

/// Why coverage or a report could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// City counts did not fit the scope (a bug: scopes are built here).
    #[error(transparent)]
    Merge(#[from] analysis::MergeError),
}

/// What a scan needs to know of the node's links to its children. The node shell's link
/// table provides it; a scan never reaches into transport state itself.
pub trait LinkFacts: Sync {
    /// The median and 95th-percentile replication lag (ms) of `owner`'s recent records.
    fn lag_quantiles(&self, owner: NodeCode) -> (Option<u64>, Option<u64>);
    /// The highest seq of `owner`'s records any child link has offered.
    fn offered(&self, owner: NodeCode) -> Option<u64>;
}

/// What a coverage computation reads besides the store.
pub struct Context<'a> {
    /// This node's store.
    pub store: &'a dyn Store,
    /// The standards in force (F05).
    pub standards: &'a Standards,
    /// Link state: lag per hop and replication-lag samples.
    pub links: &'a dyn LinkFacts,
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// A city whose newest record arrived longer ago is stale.
    pub stale_after: Duration,
}

/// The targets in force and the pilot cities as of `as_of`, from the stored documents.
pub fn targets_and_pilots(
    store: &dyn Store,
    as_of: chrono::NaiveDate,
) -> Result<(Vec<Target>, PilotOverview), StoreError> {
    let documents = store.documents()?;
    let published = documents
        .iter()
        .filter(|d| d.kind == TARGET)
        .filter_map(|d| {
            analysis::parse_target(&d.id, d.issuer, &d.body)
                .map_err(|e| tracing::warn!(id = %d.id, error = %e, "Ignoring a target document"))
                .ok()
        });
    let targets =
        analysis::effective_targets(analysis::builtin_targets().into_iter().chain(published));
    let designations = documents
        .iter()
        .filter(|d| d.kind == PILOT)
        .map(|d| (d.issuer, d.body.as_str()));
    let retired = crate::core::model::retirement::retired_on(&documents, as_of)
        .into_values()
        .map(|r| (r.node, r.on))
        .collect();
    let pilots = analysis::pilot_overview(designations, as_of, &targets, retired);
    Ok((targets, pilots))
}

/// The reporting schedules among `documents` (a schedule that does not parse is logged
/// and left out).
pub fn schedules_of(documents: &[StoredDocument]) -> Vec<ReportingSchedule> {
    documents
        .iter()
        .filter(|d| d.kind == SCHEDULE)
        .filter_map(|d| {
            analysis::parse_schedule(d.issuer, &d.id, &d.body)
                .map_err(
                    |e| tracing::warn!(id = %d.id, error = %e, "Ignoring a reporting schedule"),
                )
                .ok()
        })
        .collect()
}

/// The pilot evaluations held here of cities in `scope` for `period` (every quarter when
/// `None`), with the ministry's confirmations.
pub fn evaluations_of(
    documents: &[StoredDocument],
    scope: Scope,
    period: Option<Period>,
) -> Vec<EvaluationView> {
    let docs = documents
        .iter()
        .filter(|d| d.kind == EVALUATION)
        .map(|d| (d.issuer, d.id.as_str(), d.version, d.body.as_str()));
    analysis::evaluations::evaluations(docs, scope, period)
}

/// The cities a scope covers here: those with records stored, and active pilots (which
/// must show even when nothing of theirs has arrived).
pub fn cities_in_scope(store: &dyn Store, scope: Scope, pilots: &PilotOverview) -> Vec<NodeCode> {
    let held = store.owner_counts().into_keys();
    let cities: BTreeSet<NodeCode> = held
        .chain(pilots.active_cities())
        .filter(|c| c.tier() == Tier::City && scope.contains(*c))
        .collect();
    cities.into_iter().collect()
}

/// One city as this node sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CityCoverage {
    /// The city.
    pub city: NodeCode,
    /// Its name: built in, or (in the edition in force) the crosswalk's.
    pub name: Option<String>,
    /// In the edition in force, when the city's division code changed: the code its node
    /// and records carry (`city` is then the code in force).
    pub recorded_as: Option<NodeCode>,
    /// An active pilot.
    pub pilot: bool,
    /// Its designation is confirmed by the ministry.
    pub confirmed: bool,
    /// Records held here, by kind.
    pub records_by_kind: BTreeMap<Kind, u64>,
    /// Records held here.
    pub records: u64,
    /// Held without gaps through this seq.
    pub complete_through: u64,
    /// Seconds since its newest record arrived here (`None`: never, or this is the city).
    pub seconds_since_received: Option<i64>,
    /// No record arrived within the threshold (a city node is never stale to itself, a
    /// retired city never stale).
    pub stale: bool,
    /// Retired from service since this date (its records stay; nothing more is expected).
    pub retired: Option<chrono::NaiveDate>,
    /// Record versions held one hop below (by the child's last offer) and not yet here.
    pub lag_records_last_hop: u64,
    /// Replication lag of recent records (received here − recorded at the city), ms.
    pub lag_p50_ms: Option<u64>,
    /// 95th percentile of the same.
    pub lag_p95_ms: Option<u64>,
    /// Received records of this city refused here, kept for inspection.
    pub quarantined: u64,
    /// Its quarterly report for the period: submitted (on time or late), missing, not yet
    /// due.
    pub report: SubmissionStatus,
    /// The city's metrics and target status.
    pub metrics: MetricSet,
    /// The pseudonym key epoch the city announced last (its newest `key_epoch_notice`
    /// held here), 1 when it announced none.
    pub key_epoch: u16,
    /// When that epoch took effect, by its notice (`None` without one).
    pub key_epoch_valid_from: Option<chrono::NaiveDate>,
}

/// Coverage of a scope for a quarter.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// The node computing it.
    pub node: NodeCode,
    /// The quarter.
    pub period: Period,
    /// The scope.
    pub scope: Scope,
    /// The staleness threshold, seconds.
    pub stale_after_seconds: u64,
    /// Per city.
    pub cities: Vec<CityCoverage>,
    /// The scope's metrics (sums over its cities).
    pub summary: MetricSet,
    /// Pilot cities and M11 per province in scope.
    pub provinces: Vec<analysis::ProvincePilots>,
    /// M11 nationally (at the ministry's scope).
    pub national_pilots: Option<analysis::MetricValue>,
    /// The provinces' evaluations of cities in scope for the period, with the ministry's
    /// confirmations.
    pub evaluations: Vec<EvaluationView>,
    /// The editions in force the answer was put in (`?edition=current`); `None`: codes as
    /// recorded.
    pub edition: Option<analysis::report::Edition>,
    /// Division codes mapped to the edition in force.
    pub mapped: Vec<analysis::report::PublishedMapping>,
    /// Each metric with a target: its values over the last four quarters up to the
    /// period, and which way it moves.
    pub target_trends: Vec<analysis::TargetTrend>,
}

/// What the engine measured about `city` here.
fn engine_facts(cx: &Context<'_>, city: NodeCode) -> Result<EngineFacts, StoreError> {
    let (lag_p50_ms, lag_p95_ms) = cx.links.lag_quantiles(city);
    let complete = cx.store.complete_through(city)?;
    let quarantined = cx
        .store
        .quarantine_counts()
        .get(&city)
        .copied()
        .unwrap_or(0);
    let accepted = cx
        .store
        .owner_counts()
        .get(&city)
        .map_or(0, |c| c.by_kind.values().sum());
    Ok(EngineFacts {
        last_received_ms: cx.store.last_received(city)?,
        lag_p50_ms,
        lag_p95_ms,
        seq_gaps: cx.store.last_seq(city).saturating_sub(complete),
        accepted,
        rejected: quarantined,
        quarantined,
        retired: false,
    })
}

/// Record versions of `city` a child link offered and this node does not hold yet.
fn last_hop_lag(cx: &Context<'_>, city: NodeCode) -> Result<u64, StoreError> {
    let complete = cx.store.complete_through(city)?;
    Ok(cx
        .links
        .offered(city)
        .map_or(0, |offered| offered.saturating_sub(complete)))
}

/// The expensive part of coverage: every city's counts for a quarter, from a full scan
/// of its records. Worth keeping for a while; everything else is cheap to recompute.
#[derive(Debug, Clone)]
pub struct ScopeCounts {
    /// The quarter.
    pub period: Period,
    /// The scope.
    pub scope: Scope,
    cities: BTreeMap<NodeCode, CityCounts>,
}

/// `city`'s counts for `period`, from the store's figures when they are current.
fn count_city(cx: &Context<'_>, city: NodeCode, period: Period) -> Result<CityCounts, StoreError> {
    Ok(figures::city_counts(cx.store, cx.standards, city, period)?.0)
}

/// Scans every city of `scope` for `period`.
pub fn scan_counts(
    cx: &Context<'_>,
    period: Period,
    scope: Scope,
) -> Result<ScopeCounts, ScanError> {
    let (_, pilots) = targets_and_pilots(cx.store, period.last_day())?;
    let mut cities = BTreeMap::new();
    for city in cities_in_scope(cx.store, scope, &pilots) {
        cities.insert(city, count_city(cx, city, period)?);
    }
    Ok(ScopeCounts {
        period,
        scope,
        cities,
    })
}

/// Per-city coverage, the scope's metrics and the pilot check for `period`.
pub fn coverage(cx: &Context<'_>, period: Period, scope: Scope) -> Result<Coverage, ScanError> {
    coverage_from(cx, &scan_counts(cx, period, scope)?)
}

/// Coverage from counts scanned earlier: freshness, lag, quarantine, targets and pilots
/// are read now; a city that appeared since the scan is scanned now.
pub fn coverage_from(cx: &Context<'_>, counts: &ScopeCounts) -> Result<Coverage, ScanError> {
    let (period, scope) = (counts.period, counts.scope);
    let me = cx.store.identity().node;
    let (targets, pilots) = targets_and_pilots(cx.store, period.last_day())?;
    let documents = cx.store.documents()?;
    let schedules = schedules_of(&documents);
    let limits = EngineLimits {
        now_ms: cx.now_ms,
        staleness_threshold_s: cx.stale_after.as_secs(),
    };
    let eval = EvalContext {
        targets: &targets,
        pilots: Some(&pilots),
        limits,
        schedules: &schedules,
    };
    let today = today_of(cx.now_ms);
    let mut total = MetricAggregate::new(scope, period);
    let mut cities = Vec::new();
    for city in cities_in_scope(cx.store, scope, &pilots) {
        let counts = match counts.cities.get(&city) {
            Some(c) => c.clone(),
            None => count_city(cx, city, period)?,
        };
        let pilot = pilots.is_active(city);
        // A city is the origin of its own records: freshness does not apply to itself.
        let facts = (city != me)
            .then(|| engine_facts(cx, city))
            .transpose()?
            .map(|f| EngineFacts {
                retired: pilots.retired_since(city).is_some(),
                ..f
            });
        total.add_city(&counts, pilot, facts.as_ref())?;
        let metrics = MetricAggregate::for_city(&counts, pilot, facts.as_ref()).evaluate(&eval);
        let report = analysis::classify(city, period, counts.submission(), &schedules, today);
        let epoch = crate::core::model::key_epoch::newest(&documents, city);
        cities.push(city_coverage(
            cx,
            city,
            &pilots,
            facts.as_ref(),
            (report, metrics, epoch),
        )?);
    }
    let provinces = pilots
        .provinces
        .values()
        .filter(|p| match scope {
            Scope::National => true,
            Scope::Province(code) => code == p.province,
            Scope::City(_) => false,
        })
        .cloned()
        .collect();
    let summary = total.evaluate(&eval);
    let mut sets = Vec::with_capacity(analysis::TREND_QUARTERS);
    let mut earlier = period.previous();
    for _ in 1..analysis::TREND_QUARTERS {
        let Some(p) = earlier else { break };
        sets.push(scope_summary(cx, p, scope)?);
        earlier = p.previous();
    }
    sets.reverse();
    sets.push(summary.clone());
    Ok(Coverage {
        node: me,
        period,
        scope,
        stale_after_seconds: cx.stale_after.as_secs(),
        cities,
        summary,
        target_trends: analysis::target_trends(&sets),
        provinces,
        national_pilots: (scope == Scope::National).then(|| pilots.national.clone()),
        evaluations: evaluations_of(&documents, scope, Some(period)),
        edition: None,
        mapped: Vec::new(),
    })
}

/// The metrics of `scope` in `period`, judged against that quarter's targets (for the
/// target trends: no per-city detail).
fn scope_summary(cx: &Context<'_>, period: Period, scope: Scope) -> Result<MetricSet, ScanError> {
    let me = cx.store.identity().node;
    let (targets, pilots) = targets_and_pilots(cx.store, period.last_day())?;
    let schedules = schedules_of(&cx.store.documents()?);
    let limits = EngineLimits {
        now_ms: cx.now_ms,
        staleness_threshold_s: cx.stale_after.as_secs(),
    };
    let eval = EvalContext {
        targets: &targets,
        pilots: Some(&pilots),
        limits,
        schedules: &schedules,
    };
    let mut total = MetricAggregate::new(scope, period);
    for city in cities_in_scope(cx.store, scope, &pilots) {
        let counts = count_city(cx, city, period)?;
        let facts = (city != me)
            .then(|| engine_facts(cx, city))
            .transpose()?
            .map(|f| EngineFacts {
                retired: pilots.retired_since(city).is_some(),
                ..f
            });
        total.add_city(&counts, pilots.is_active(city), facts.as_ref())?;
    }
    Ok(total.evaluate(&eval))
}

fn city_coverage(
    cx: &Context<'_>,
    city: NodeCode,
    pilots: &PilotOverview,
    facts: Option<&EngineFacts>,
    (report, metrics, epoch): (
        SubmissionStatus,
        MetricSet,
        Option<crate::core::model::key_epoch::KeyEpochBody>,
    ),
) -> Result<CityCoverage, StoreError> {
    let counts = cx.store.owner_counts().remove(&city).unwrap_or_default();
    let seconds_since_received = facts
        .and_then(|f| f.last_received_ms)
        .map(|t| (cx.now_ms - t).max(0) / 1000);
    let stale_after = i64::try_from(cx.stale_after.as_secs()).unwrap_or(i64::MAX);
    let retired = pilots.retired_since(city);
    let stale = retired.is_none()
        && facts.is_some()
        && seconds_since_received.is_none_or(|s| s > stale_after);
    let confirmed = city
        .province()
        .and_then(|p| pilots.provinces.get(&p))
        .is_some_and(|p| p.confirmed.contains(&city));
    Ok(CityCoverage {
        city,
        name: city.builtin_name().map(String::from),
        recorded_as: None,
        pilot: pilots.is_active(city),
        confirmed,
        records: counts.by_kind.values().sum(),
        records_by_kind: counts.by_kind,
        complete_through: cx.store.complete_through(city)?,
        seconds_since_received,
        stale,
        retired,
        lag_records_last_hop: last_hop_lag(cx, city)?,
        lag_p50_ms: facts.and_then(|f| f.lag_p50_ms),
        lag_p95_ms: facts.and_then(|f| f.lag_p95_ms),
        quarantined: facts.map_or(0, |f| f.quarantined),
        report,
        metrics,
        key_epoch: epoch
            .as_ref()
            .map_or(crate::core::model::values::DEFAULT_PID_EPOCH, |e| e.epoch),
        key_epoch_valid_from: epoch.map(|e| e.valid_from),
    })
}

/// One city's reports for a run of quarters.
#[derive(Debug, Clone, Serialize)]
pub struct SubmissionRow {
    /// The city.
    pub city: NodeCode,
    /// Its name, when built in.
    pub name: Option<&'static str>,
    /// An active pilot (as of today).
    pub pilot: bool,
    /// Where its report stands, per quarter asked for.
    pub periods: Vec<SubmissionStatus>,
}

/// The submission held here of `city`'s report for `period`, if any: one read by key.
pub fn submission_of(
    store: &dyn Store,
    city: NodeCode,
    period: Period,
) -> Result<Option<Submission>, StoreError> {
    let key = RecordKey::of(Kind::SupplyDemandReport, &period.to_string());
    if !store.may_contain(city, key) {
        return Ok(None);
    }
    Ok(store
        .get_record(city, key)?
        .and_then(|r| Submission::of(&r, city, period)))
}

/// Where the reports of every city in `scope` stand for each of `periods`, at `now_ms`:
/// one read by key per city and quarter, no scan.
pub fn submissions(
    store: &dyn Store,
    scope: Scope,
    periods: &[Period],
    now_ms: i64,
) -> Result<Vec<SubmissionRow>, StoreError> {
    let today = today_of(now_ms);
    let (_, pilots) = targets_and_pilots(store, today)?;
    let schedules = schedules_of(&store.documents()?);
    let mut rows = Vec::new();
    for city in cities_in_scope(store, scope, &pilots) {
        let mut statuses = Vec::with_capacity(periods.len());
        for &period in periods {
            let submitted = submission_of(store, city, period)?;
            statuses.push(analysis::classify(
                city,
                period,
                submitted.as_ref(),
                &schedules,
                today,
            ));
        }
        rows.push(SubmissionRow {
            city,
            name: city.builtin_name(),
            pilot: pilots.is_active(city),
            periods: statuses,
        });
    }
    Ok(rows)
}

/// The quarterly supply/demand report of `scope` from the records held here.
pub fn report(
    store: &dyn Store,
    period: Period,
    scope: Scope,
    basis: CountBasis,
) -> Result<QuarterlyReport, ScanError> {
    Ok(report_counts(store, period, scope, basis)?.build())
}

/// The counts behind the quarterly report of `scope` (merged over its cities).
pub fn report_counts(
    store: &dyn Store,
    period: Period,
    scope: Scope,
    basis: CountBasis,
) -> Result<ReportCounts, ScanError> {
    let (_, pilots) = targets_and_pilots(store, period.last_day())?;
    let mut counts = ReportCounts::new(scope, period, basis);
    for city in cities_in_scope(store, scope, &pilots) {
        counts.merge(&figures::city_report(store, city, period, basis)?.0)?;
    }
    Ok(counts)
}

/// The published report of `scope` for `period` with its change columns against the
/// previous quarter and the same quarter of the previous year, each published with the
/// same threshold (a change shows only where both cells do); a quarter with no data
/// (nothing counted) gives empty changes.
pub fn published_report(
    store: &dyn Store,
    (period, scope, basis): (Period, Scope, CountBasis),
    suppress_below: u64,
    editions: Option<&Editions>,
) -> Result<PublishedReport, ScanError> {
    // Every quarter compared is put in the same edition, so that rows match.
    let build = |p: Period| -> Result<QuarterlyReport, ScanError> {
        let counts = report_counts(store, p, scope, basis)?;
        Ok(match editions {
            Some(e) => counts.build_in_edition(e),
            None => counts.build(),
        })
    };
    let earlier = |p: Option<Period>| -> Result<Option<PublishedReport>, ScanError> {
        let Some(p) = p else {
            return Ok(None);
        };
        let r = build(p)?;
        Ok(r.has_data().then(|| r.publish(suppress_below)))
    };
    let previous = earlier(period.previous())?;
    let year_ago = earlier(Period::new(period.year() - 1, period.quarter()).ok())?;
    let mut out = build(period)?.publish(suppress_below);
    out.compare(previous.as_ref(), year_ago.as_ref());
    Ok(out)
}

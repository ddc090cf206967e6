//! Submitted quarterly reports: `POST /v1/reports/{period}/submit` (a city freezes its
//! report for an ended quarter into a signed `supply_demand_report` record, which
//! replicates upward like every record) and `GET /v1/reports/{period}/submitted` (where
//! the reports of the cities in scope stand, or one city's submitted report with its
//! signature checked).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::coverage::{basis_of, period_or_now, scope_of};
use super::error::ApiError;
use super::extract::{Path, Query, off_thread};
use super::{AppState, require_token};
use crate::core::model::ingest::Draft;
use crate::core::model::kinds::{
    Bytes, MAX_TABLES_BYTES, RecordData, SupplyDemandReport, sign_report, verify_record,
};
use crate::core::model::validate::Checker;
use crate::core::model::{Kind, NodeCode, Record, RecordKey, Status, Tier};
use crate::node::clock::rfc3339;
use crate::reporting::analysis::schedule::today_of;
use crate::reporting::analysis::{Period, Scope, Submission, classify};
use crate::reporting::scan;

/// One submission at a time: the version a report is signed as must be the version the
/// writer gives it.
static SUBMITTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Query of `POST /v1/reports/{period}/submit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitQuery {
    basis: Option<String>,
    suppress_below: Option<u64>,
}

/// This city's report for `period` as it stands now: the schedule, due day and state.
fn standing(app: &AppState, period: Period, submitted: &Submission) -> Result<Value, ApiError> {
    let schedules = scan::schedules_of(&app.store.documents()?);
    let today = today_of(app.clock.now_ms());
    let status = classify(app.node, period, Some(submitted), &schedules, today);
    serde_json::to_value(&status).map_err(ApiError::internal)
}

/// The city's own report record for `period`, if it submitted one.
fn held_report(app: &AppState, period: Period) -> Result<Option<Record>, ApiError> {
    let key = RecordKey::of(Kind::SupplyDemandReport, &period.to_string());
    Ok(app
        .store
        .get_record(app.node, key)?
        .filter(|r| r.envelope.kind == Kind::SupplyDemandReport))
}

/// `POST /v1/reports/{period}/submit[?basis=…][&suppress_below=N]`: at a city, freezes
/// its report for the ended quarter `period` (as `GET /v1/reports/{period}` gives it with
/// the same parameters), signs it with the node's key and stores it durably as the next
/// version of the city's `supply_demand_report` record `period`.
pub(super) async fn submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(period): Path<String>,
    Query(q): Query<SubmitQuery>,
) -> Result<Json<Value>, ApiError> {
    require_token(&app, &headers)?;
    if app.node.tier() != Tier::City {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} is a {}; only a city submits its quarterly report",
                app.node,
                app.node.tier()
            ),
        ));
    }
    let period = period_or_now(&app, Some(&period))?;
    let today = today_of(app.clock.now_ms());
    if today <= period.last_day() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "period_not_ended",
            format!(
                "{period} ends on {}; its report can be submitted from the day after",
                period.last_day()
            ),
        ));
    }
    let basis = basis_of(q.basis.as_deref())?;
    let suppress_below = q.suppress_below.unwrap_or(5);
    super::records::refuse_while_rebuilding(&app)?;
    let _one_at_a_time = SUBMITTING.lock().await;
    let store = app.store.clone();
    let node = app.node;
    let built =
        off_thread(move || scan::report(store.as_ref(), period, Scope::City(node), basis)).await?;
    // The JSON `GET /v1/reports/{period}` gives, without its indentation.
    let tables =
        serde_json::to_string(&built.publish(suppress_below)).map_err(ApiError::internal)?;
    if tables.len() > MAX_TABLES_BYTES {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_large",
            format!(
                "the report is {} bytes of JSON; a submitted report holds at most {MAX_TABLES_BYTES}",
                tables.len()
            ),
        ));
    }
    let held = held_report(&app, period)?;
    let now = app.clock.now_ms();
    let first = held.as_ref().and_then(|r| match &r.data {
        RecordData::SupplyDemandReport(h) => Some(h.first_submitted_at_ms),
        _ => None,
    });
    let version = held.as_ref().map_or(1, |r| r.envelope.version + 1);
    let mut report = SupplyDemandReport {
        period: period.to_string(),
        count_basis: basis,
        suppress_below,
        submitted_at_ms: now,
        first_submitted_at_ms: first.unwrap_or(now),
        tables,
        certificate: Bytes::default(),
        signature: Bytes::default(),
    };
    let cert = std::fs::read_to_string(&app.config.tls_cert).map_err(ApiError::internal)?;
    let key = std::fs::read_to_string(&app.config.tls_key).map_err(ApiError::internal)?;
    sign_report(&mut report, app.node, version, &cert, &key).map_err(ApiError::internal)?;
    let data = RecordData::SupplyDemandReport(report);
    let standards = app.standards.current();
    let checker = Checker {
        owner: app.node,
        standards: &standards,
    };
    data.validate(&checker)
        .map_err(|e| ApiError::internal(format!("the frozen report fails validation: {e}")))?;
    let draft = Draft {
        id: period.to_string(),
        status: Status::Active,
        data,
    };
    let outcomes = app
        .writer
        .submit(vec![draft], standards.code_refs())
        .await?;
    let Some(outcome) = outcomes.into_iter().next() else {
        return Err(ApiError::internal("the writer answered nothing"));
    };
    if outcome.version != version {
        return Err(ApiError::internal(format!(
            "the report was signed as version {version} and stored as version {}",
            outcome.version
        )));
    }
    app.links.record_written(app.node, 1, app.clock.now_ms());
    let submitted = Submission {
        version,
        count_basis: basis,
        submitted_at_ms: now,
        first_submitted_at_ms: first.unwrap_or(now),
    };
    tracing::info!(%period, version, "Quarterly report submitted");
    Ok(Json(json!({
        "city": app.node,
        "period": period,
        "version": outcome.version,
        "seq": outcome.seq,
        "count_basis": basis,
        "suppress_below": suppress_below,
        "submitted_at": rfc3339(now),
        "first_submitted_at": rfc3339(first.unwrap_or(now)),
        "status": standing(&app, period, &submitted)?,
    })))
}

/// Query of `GET /v1/reports/{period}/submitted`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmittedQuery {
    city: Option<String>,
    scope: Option<String>,
}

/// `GET /v1/reports/{period}/submitted[?scope=CODE]`: where the report of every city in
/// scope stands for `period`; with `?city=CODE`, that city's submitted report: the frozen
/// tables, when and how it was submitted, and its signature checked here.
pub(super) async fn submitted(
    State(app): State<AppState>,
    Path(period): Path<String>,
    Query(q): Query<SubmittedQuery>,
) -> Result<Json<Value>, ApiError> {
    let period = period_or_now(&app, Some(&period))?;
    if let Some(city) = q.city.as_deref() {
        let city: NodeCode = city
            .parse()
            .map_err(|e| ApiError::bad_request("bad_city", format!("{e}")))?;
        if city.tier() != Tier::City || !(city == app.node || city.is_within(app.node)) {
            return Err(ApiError::bad_request(
                "bad_city",
                format!("{city} is not a city of this node's subtree ({})", app.node),
            ));
        }
        return one_report(&app, city, period).await;
    }
    let scope = scope_of(&app, q.scope.as_deref())?;
    let (store, now) = (app.store.clone(), app.clock.now_ms());
    let rows = off_thread(move || scan::submissions(store.as_ref(), scope, &[period], now)).await?;
    let cities: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            let status = row.periods.into_iter().next();
            json!({"city": row.city, "name": row.name, "pilot": row.pilot, "report": status})
        })
        .collect();
    Ok(Json(json!({
        "node": app.node,
        "period": period,
        "scope": scope,
        "cities": cities,
    })))
}

async fn one_report(
    app: &AppState,
    city: NodeCode,
    period: Period,
) -> Result<Json<Value>, ApiError> {
    let store = app.store.clone();
    let key = RecordKey::of(Kind::SupplyDemandReport, &period.to_string());
    let found = off_thread(move || store.get_record(city, key)).await?;
    let Some(record) = found.filter(|r| r.envelope.kind == Kind::SupplyDemandReport) else {
        return Err(ApiError::not_found(format!(
            "no report of {city} for {period} here"
        )));
    };
    let RecordData::SupplyDemandReport(r) = &record.data else {
        return Err(ApiError::internal("a report key holds another kind"));
    };
    let serial = crate::core::model::revocation::serial_of_der(&r.certificate.0);
    let signature = match verify_record(&app.trust, &record) {
        Ok(()) => json!({"verified": true, "certificate_serial": serial}),
        Err(why) => json!({"verified": false, "reason": why, "certificate_serial": serial}),
    };
    let schedules = scan::schedules_of(&app.store.documents()?);
    let status = classify(
        city,
        period,
        Submission::of(&record, city, period).as_ref(),
        &schedules,
        today_of(app.clock.now_ms()),
    );
    Ok(Json(json!({
        "city": city,
        "period": period,
        "version": record.envelope.version,
        "status": record.envelope.status,
        "recorded_at": rfc3339(record.envelope.recorded_at_ms),
        "count_basis": r.count_basis,
        "suppress_below": r.suppress_below,
        "submitted_at": rfc3339(r.submitted_at_ms),
        "first_submitted_at": rfc3339(r.first_submitted_at_ms),
        "signature": signature,
        "standing": status,
        "report": serde_json::from_str::<Value>(&r.tables).unwrap_or(Value::Null),
    })))
}

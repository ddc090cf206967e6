//! `GET /v1/coverage` (which cities report, how fresh, against which targets) and
//! `GET /v1/reports/{period}` (the quarterly supply/demand report), both computed from
//! the records held here by [`crate::reporting::scan`] on the blocking pool.

use axum::Json;
use axum::extract::State;

use super::extract::{Path, Query, off_thread};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use crate::core::model::NodeCode;
use crate::core::model::crosswalk::Editions;
use crate::reporting::analysis::report as render;
use crate::reporting::analysis::{CountBasis, Period, Scope};
use crate::reporting::scan::{self, Context, Coverage, ScanError, ScopeCounts};

impl From<ScanError> for ApiError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Store(s) => s.into(),
            ScanError::Merge(m) => ApiError::internal(m),
        }
    }
}

/// The quarter `text` names, or the current one by this node's clock.
pub(crate) fn period_or_now(app: &AppState, text: Option<&str>) -> Result<Period, ApiError> {
    match text {
        Some(t) => t
            .parse()
            .map_err(|e| ApiError::bad_request("bad_period", format!("{e}"))),
        None => {
            let today = chrono::DateTime::from_timestamp_millis(app.clock.now_ms())
                .map(|t| t.date_naive())
                .ok_or_else(|| ApiError::internal("the clock is out of range"))?;
            Period::of_date(today).map_err(ApiError::internal)
        }
    }
}

/// The scope `text` names (a code within this node's subtree), or this node's own.
pub(super) fn scope_of(app: &AppState, text: Option<&str>) -> Result<Scope, ApiError> {
    let code = match text {
        None => app.node,
        Some(t) => t
            .parse()
            .map_err(|e| ApiError::bad_request("bad_scope", format!("{e}")))?,
    };
    within_subtree(app, code)
}

fn within_subtree(app: &AppState, code: NodeCode) -> Result<Scope, ApiError> {
    if !(code == app.node || code.is_within(app.node)) {
        return Err(ApiError::bad_request(
            "bad_scope",
            format!("{code} is outside this node's subtree ({})", app.node),
        ));
    }
    Ok(Scope::of(code))
}

/// Today by this node's clock.
fn today(app: &AppState) -> Result<chrono::NaiveDate, ApiError> {
    chrono::DateTime::from_timestamp_millis(app.clock.now_ms())
        .map(|t| t.date_naive())
        .ok_or_else(|| ApiError::internal("the clock is out of range"))
}

/// Whether an answer is in the codes as recorded or in the edition in force.
pub(super) fn current_edition(text: Option<&str>) -> Result<bool, ApiError> {
    match text {
        None | Some("recorded") => Ok(false),
        Some("current") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "bad_edition",
            format!("edition {other:?}: expected recorded or current"),
        )),
    }
}

/// The crosswalk chains in force today, and the scope `text` names: like [`scope_of`],
/// and a division code in force (`140900`) names the node whose records carry the
/// recorded code it replaced (`142200`).
async fn scope_and_editions(
    app: &AppState,
    text: Option<&str>,
) -> Result<(Scope, Editions), ApiError> {
    let code: NodeCode = match text {
        None => app.node,
        Some(t) => t
            .parse()
            .map_err(|e| ApiError::bad_request("bad_scope", format!("{e}")))?,
    };
    let today = today(app)?;
    let (store, node) = (app.store.clone(), app.node);
    let (editions, resolved) = off_thread(move || {
        let editions = scan::editions(store.as_ref(), today)?;
        let resolved = scan::resolve_alias(store.as_ref(), &editions, code, node);
        Ok::<_, ScanError>((editions, resolved))
    })
    .await?;
    let code = resolved.map_err(|several| {
        let list: Vec<String> = several.iter().map(ToString::to_string).collect();
        ApiError::bad_request(
            "bad_scope",
            format!(
                "{code} is the code in force of several cities ({}); ask for each by its recorded code",
                list.join(", ")
            ),
        )
    })?;
    Ok((within_subtree(app, code)?, editions))
}

/// The dashboard's last scan of the records, so that a page refreshing every few seconds
/// does not rescan the store each time: reused while younger than ten times what it took
/// to compute, and at least 30 s. Freshness, lag and targets are always read afresh.
#[derive(Debug, Default)]
pub struct CoverageCache(std::sync::Mutex<Option<CachedCounts>>);

#[derive(Debug)]
struct CachedCounts {
    computed_at_ms: i64,
    took_ms: i64,
    counts: std::sync::Arc<ScopeCounts>,
}

/// Runs `f` with a scan context on the blocking pool.
async fn with_context<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&Context<'_>) -> Result<T, ScanError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    off_thread(move || {
        let standards = app.standards.current();
        let cx = Context {
            store: app.store.as_ref(),
            standards: &standards,
            links: app.links.as_ref(),
            now_ms: app.clock.now_ms(),
            stale_after: app.config.stale_after,
        };
        f(&cx)
    })
    .await
}

/// Coverage for the dashboard: record counts cached (see [`CoverageCache`]).
pub(crate) async fn cached_coverage(
    app: &AppState,
    period: Period,
    scope: Scope,
) -> Result<Coverage, ApiError> {
    let now = app.clock.now_ms();
    let cached = {
        let cache = app
            .coverage_cache
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache
            .as_ref()
            .filter(|c| {
                c.counts.period == period
                    && c.counts.scope == scope
                    && now - c.computed_at_ms < (10 * c.took_ms).max(30_000)
            })
            .map(|c| c.counts.clone())
    };
    let counts = match cached {
        Some(c) => c,
        None => {
            let counts = std::sync::Arc::new(
                with_context(app, move |cx| scan::scan_counts(cx, period, scope)).await?,
            );
            let mut cache = app
                .coverage_cache
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *cache = Some(CachedCounts {
                computed_at_ms: now,
                took_ms: app.clock.now_ms() - now,
                counts: counts.clone(),
            });
            counts
        }
    };
    with_context(app, move |cx| scan::coverage_from(cx, &counts)).await
}

/// Query of `GET /v1/coverage`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CoverageQuery {
    period: Option<String>,
    scope: Option<String>,
    edition: Option<String>,
}

/// `GET /v1/coverage[?period=YYYYQn][&scope=CODE][&edition=recorded|current]`.
pub(super) async fn coverage(
    State(app): State<AppState>,
    Query(q): Query<CoverageQuery>,
) -> Result<Json<Coverage>, ApiError> {
    let period = period_or_now(&app, q.period.as_deref())?;
    let current = current_edition(q.edition.as_deref())?;
    let (scope, editions) = scope_and_editions(&app, q.scope.as_deref()).await?;
    let mut coverage = with_context(&app, move |cx| scan::coverage(cx, period, scope)).await?;
    if current {
        scan::in_edition(&mut coverage, &editions);
    }
    Ok(Json(coverage))
}

/// `POST /v1/figures/verify`: recomputes every stored figure whose records have not
/// changed since, from the records, and answers how many were checked and which differed
/// (each replaced by the recomputed one). Token required: it scans the whole store.
pub(super) async fn verify_figures(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<scan::figures::Verification>, ApiError> {
    super::require_token(&app, &headers)?;
    let found = with_context(&app, |cx| {
        Ok(scan::figures::verify(cx.store, cx.standards)?)
    })
    .await?;
    if !found.differences.is_empty() {
        tracing::error!(
            differences = found.differences.len(),
            "Stored figures differed from the records' and were replaced"
        );
    }
    Ok(Json(found))
}

/// Query of `GET /v1/reports/{period}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    scope: Option<String>,
    format: Option<String>,
    basis: Option<String>,
    suppress_below: Option<u64>,
    edition: Option<String>,
}

pub(super) fn basis_of(text: Option<&str>) -> Result<CountBasis, ApiError> {
    match text {
        None | Some("valid_in_period") => Ok(CountBasis::ValidInPeriod),
        Some("new_in_period") => Ok(CountBasis::NewInPeriod),
        Some(other) => Err(ApiError::bad_request(
            "bad_basis",
            format!("basis {other:?}: expected valid_in_period or new_in_period"),
        )),
    }
}

/// `GET /v1/reports/{period}[?scope=CODE][&format=json|csv|html|table][&basis=…]
/// [&edition=recorded|current]`.
pub(super) async fn report(
    State(app): State<AppState>,
    Path(period): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let period = period_or_now(&app, Some(&period))?;
    let current = current_edition(q.edition.as_deref())?;
    let (scope, editions) = scope_and_editions(&app, q.scope.as_deref()).await?;
    let basis = basis_of(q.basis.as_deref())?;
    let suppress_below = q.suppress_below.unwrap_or(5);
    let store = app.store.clone();
    let editions = current.then_some(editions);
    let published = off_thread(move || {
        scan::published_report(
            store.as_ref(),
            (period, scope, basis),
            suppress_below,
            editions.as_ref(),
        )
    })
    .await?;
    let (content_type, body) = match q.format.as_deref().unwrap_or("json") {
        "json" => (
            "application/json",
            render::render_json(&published).map_err(ApiError::internal)?,
        ),
        "csv" => ("text/csv; charset=utf-8", render::render_csv(&published)),
        "html" => ("text/html; charset=utf-8", render::render_html(&published)),
        "table" => ("text/plain; charset=utf-8", render::render_text(&published)),
        other => {
            return Err(ApiError::bad_request(
                "bad_format",
                format!("format {other:?}: expected json, csv, html or table"),
            ));
        }
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

//! The public listener's routes, and what makes it safe in public: GET only (no write
//! path exists here), a token bucket per client address (429 with `Retry-After`),
//! bounded queries and pages, and caching headers — every answer carries an `ETag` (the
//! hash of its body) and `Cache-Control`, and a matching `If-None-Match` gets 304.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Public, pages};
use crate::core::model::NodeCode;
use crate::node::api::{Endpoint, Verb, router_of};
use crate::reporting::analysis::{CountBasis, Period, PublishedReport, Scope};
use crate::reporting::public::search::{Page, Query as Search};

/// Largest answer body the caching layer hashes; larger ones go out without an ETag.
const MAX_HASHED_BODY: usize = 4 << 20;
/// How long a client (or a proxy) may reuse an answer without asking again.
const CACHE_CONTROL: &str = "public, max-age=15";
/// Clients tracked at most; beyond, the longest idle are forgotten.
const MAX_CLIENTS: usize = 10_000;

/// A token bucket per client address.
pub(super) struct Limiter {
    rate: f64,
    burst: f64,
    clients: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl Limiter {
    pub(super) fn new(per_second: u32, burst: u32) -> Self {
        Limiter {
            rate: f64::from(per_second),
            burst: f64::from(burst),
            clients: Mutex::default(),
        }
    }

    /// True when `client` may make a request now (and takes its token).
    fn admit(&self, client: IpAddr, now: Instant) -> bool {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            // Forget clients whose bucket has refilled: they lose nothing by it.
            let full_after = self.burst / self.rate;
            clients.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < full_after);
            if clients.len() >= MAX_CLIENTS {
                return false;
            }
        }
        let (tokens, at) = clients.entry(client).or_insert((self.burst, now));
        let refilled =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            true
        } else {
            *tokens = refilled;
            false
        }
    }
}

/// The OpenAPI 3.1 document of the JSON under `/api/`, kept by hand in
/// `docs/reference/openapi-public.json` and compiled in (`tests/openapi.rs` holds it to
/// [`endpoints`] and to real answers).
const OPENAPI_DOCUMENT: &str = include_str!("../../../docs/reference/openapi-public.json");

/// Every endpoint of the public listener: the pages, and the JSON under `/api/` that
/// `docs/reference/openapi-public.json` describes. To add one: a line here and, for JSON,
/// its description there.
pub(super) fn endpoints() -> Vec<Endpoint<Public>> {
    use Verb::Get;
    vec![
        Endpoint::new(Get, "/", search_page),
        Endpoint::new(Get, "/vacancies/{owner}/{id}", vacancy_page),
        Endpoint::new(Get, "/report", report_page_latest),
        Endpoint::new(Get, "/report/{period}", report_page),
        Endpoint::new(Get, "/offices", offices_page),
        Endpoint::new(Get, "/screen", screen_page),
        Endpoint::new(Get, "/api/openapi.json", openapi_json),
        Endpoint::new(Get, "/api/vacancies", search_json),
        Endpoint::new(Get, "/api/vacancies/{owner}/{id}", vacancy_json),
        Endpoint::new(Get, "/api/report/{period}", report_json),
        Endpoint::new(Get, "/api/offices", offices_json),
    ]
}

/// Every route of the public listener.
pub(super) fn router(public: Public) -> Router {
    router_of(endpoints())
        .fallback(not_found)
        .layer(middleware::from_fn(cache))
        .layer(middleware::from_fn_with_state(public.clone(), limit))
        .with_state(public)
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
        .into_response()
}

/// Refuses what is not a read, and clients over their rate.
async fn limit(State(public): State<Public>, request: Request, next: Next) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "this service only reads",
        )
            .into_response();
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(client) = client
        && !public.limiter.admit(client, Instant::now())
    {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "too many requests from this address; try again in a second",
        )
            .into_response();
    }
    next.run(request).await
}

/// Adds `ETag` and `Cache-Control` to a successful answer; 304 when the client has it.
async fn cache(request: Request, next: Next) -> Response {
    let asked = request.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_HASHED_BODY).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "answer too large").into_response();
    };
    let tag = format!("\"{}\"", &blake3::hash(&bytes).to_hex()[..32]);
    let Ok(etag) = HeaderValue::from_str(&tag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    parts.headers.insert(header::ETAG, etag.clone());
    if asked.is_some_and(|a| a.as_bytes() == etag.as_bytes()) {
        parts.status = StatusCode::NOT_MODIFIED;
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::not_found().into_string()),
    )
        .into_response()
}

/// A refusal of the JSON API: `{"error", "message"}`.
fn json_error(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "message": message.into()})),
    )
        .into_response()
}

/// Runs `query` on the board at its date, or takes the answer of the last second.
async fn run_search(public: &Public, query: &Search, key: &str) -> Arc<Result<Page, String>> {
    let (board, query_owned) = (public.clone(), query.clone());
    public
        .answers
        .get(key.to_string(), move || {
            let today = board.today();
            let standards = board.standards.current();
            let board = board.board();
            let date = board.board_date(today);
            board
                .search(&query_owned, date, &standards.occupation.codes)
                .map_err(|e| e.to_string())
        })
        .await
}

/// The query part of the request, as the answers are keyed.
fn query_key(request_query: Option<&str>) -> String {
    request_query.unwrap_or("").to_string()
}

async fn search_page(
    State(public): State<Public>,
    uri: axum::http::Uri,
    query: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let page = match &query {
        Ok(Query(q)) => (*run_search(&public, q, &query_key(uri.query())).await).clone(),
        Err(e) => Err(format!("the query does not read: {e}")),
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    Html(pages::search(&public, &query, page).into_string()).into_response()
}

async fn search_json(
    State(public): State<Public>,
    uri: axum::http::Uri,
    query: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "unknown or malformed parameter",
        );
    };
    let answer = run_search(&public, &query, &query_key(uri.query())).await;
    match answer.as_ref() {
        Ok(page) => {
            let (page_number, per_page) = query.paging().unwrap_or((1, 0));
            // Serialised straight from the shared answer: many readers ask the same query.
            axum::Json(SearchAnswer {
                total: page.total,
                date: page.date,
                page: page_number,
                per_page,
                items: &page.items,
                ready: public.is_ready(),
            })
            .into_response()
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, "bad_query", e.clone()),
    }
}

/// The JSON of one page of a search.
#[derive(serde::Serialize)]
struct SearchAnswer<'a> {
    total: usize,
    date: chrono::NaiveDate,
    page: usize,
    per_page: usize,
    items: &'a [crate::reporting::public::PublicVacancy],
    ready: bool,
}

fn owner_of(text: &str) -> Option<NodeCode> {
    text.parse().ok()
}

async fn vacancy_page(
    State(public): State<Public>,
    Path((owner, id)): Path<(String, String)>,
) -> Response {
    let found = owner_of(&owner).and_then(|o| public.board().vacancy(o, &id));
    match found {
        Some(v) => Html(pages::vacancy(&public, &v).into_string()).into_response(),
        None => not_found().await,
    }
}

async fn vacancy_json(
    State(public): State<Public>,
    Path((owner, id)): Path<(String, String)>,
) -> Response {
    match owner_of(&owner).and_then(|o| public.board().vacancy(o, &id)) {
        Some(v) => axum::Json(json!(v)).into_response(),
        None => json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such vacancy is listed",
        ),
    }
}

/// Small counts are withheld in public as in the published report.
const SUPPRESS_BELOW: u64 = 5;

/// The published report of this node's scope for `period`.
async fn report_of(public: &Public, period: Period) -> Result<PublishedReport, String> {
    let (store, scope) = (public.store.clone(), Scope::of(public.node));
    tokio::task::spawn_blocking(move || {
        let basis = CountBasis::ValidInPeriod;
        crate::reporting::scan::published_report(
            store.as_ref(),
            (period, scope, basis),
            SUPPRESS_BELOW,
            None,
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// The latest quarter: the one of the board's date.
fn latest_period(public: &Public) -> Option<Period> {
    let date = public.board().board_date(public.today());
    Period::of_date(date).ok()
}

async fn report_page_latest(State(public): State<Public>) -> Response {
    match latest_period(&public) {
        Some(p) => render_report(&public, p).await,
        None => not_found().await,
    }
}

async fn report_page(State(public): State<Public>, Path(period): Path<String>) -> Response {
    match period.parse::<Period>() {
        Ok(p) => render_report(&public, p).await,
        Err(_) => not_found().await,
    }
}

async fn render_report(public: &Public, period: Period) -> Response {
    let report = report_of(public, period).await;
    Html(pages::report(public, period, report).into_string()).into_response()
}

async fn report_json(State(public): State<Public>, Path(period): Path<String>) -> Response {
    let Ok(period) = period.parse::<Period>() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_period",
            "a quarter reads YYYYQn",
        );
    };
    match report_of(&public, period).await {
        Ok(r) => axum::Json(json!(r)).into_response(),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    }
}

async fn offices_page(State(public): State<Public>) -> Response {
    Html(pages::offices(&public).into_string()).into_response()
}

async fn offices_json(State(public): State<Public>) -> Response {
    let offices: Vec<_> = public.board().offices().cloned().collect();
    axum::Json(json!({"total": offices.len(), "items": offices})).into_response()
}

/// Query of `/screen`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Screen {
    #[serde(default)]
    page: usize,
}

async fn screen_page(State(public): State<Public>, Query(screen): Query<Screen>) -> Response {
    Html(pages::screen(&public, screen.page).into_string()).into_response()
}

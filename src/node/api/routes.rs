//! The one list of the API's endpoints: method, path and handler. The router is built
//! from it, and the OpenAPI document served at `GET /v1/openapi.json`
//! (`docs/reference/openapi.json`) is held to it by `tests/openapi.rs`: an endpoint
//! listed here and not described there, or described there and not listed here, fails
//! that test. The public listener lists its routes the same way (`node::public`).
//!
//! To add an endpoint: one line in [`endpoints`], and its path and method, parameters
//! and answers in `docs/reference/openapi.json` (and its prose in
//! `docs/reference/api.md`).

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodRouter, get, post};

use super::{
    AppState, backup, changes, coverage, dashboard, documents, export, metrics, openapi, records,
    status, submitted,
};

/// An HTTP method an endpoint serves (a GET endpoint answers HEAD too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    /// GET (and HEAD).
    Get,
    /// POST.
    Post,
}

impl Verb {
    /// The method's name, upper case, as in HTTP.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }
}

/// One endpoint: a method, a path in axum's syntax (`{name}` for a parameter, as in
/// OpenAPI) and its handler.
pub struct Endpoint<S> {
    /// The method.
    pub verb: Verb,
    /// The path.
    pub path: &'static str,
    handler: MethodRouter<S>,
}

impl<S: Clone + Send + Sync + 'static> Endpoint<S> {
    /// `handler` serving `verb` at `path`.
    pub fn new<H: Handler<T, S>, T: 'static>(verb: Verb, path: &'static str, handler: H) -> Self {
        let handler = match verb {
            Verb::Get => get(handler),
            Verb::Post => post(handler),
        };
        Endpoint {
            verb,
            path,
            handler,
        }
    }
}

/// A router serving every endpoint of `list` (a path listed with several methods serves
/// each of them).
pub fn router_of<S: Clone + Send + Sync + 'static>(list: Vec<Endpoint<S>>) -> Router<S> {
    list.into_iter()
        .fold(Router::new(), |router, e| router.route(e.path, e.handler))
}

/// Method and path of every endpoint of `list`.
pub fn routes_of<S>(list: &[Endpoint<S>]) -> Vec<(Verb, &'static str)> {
    list.iter().map(|e| (e.verb, e.path)).collect()
}

/// Every endpoint of the node's API.
pub(super) fn endpoints() -> Vec<Endpoint<AppState>> {
    use Verb::{Get, Post};
    vec![
        Endpoint::new(Get, "/", dashboard::dashboard),
        Endpoint::new(Post, "/v1/records", records::post_records),
        Endpoint::new(Get, "/v1/records/{owner}/{kind}/{id}", records::get_record),
        Endpoint::new(Get, "/v1/quarantine", records::quarantine),
        Endpoint::new(Get, "/v1/coverage", coverage::coverage),
        Endpoint::new(Get, "/v1/reports/{period}", coverage::report),
        Endpoint::new(Post, "/v1/reports/{period}/submit", submitted::submit),
        Endpoint::new(Get, "/v1/reports/{period}/submitted", submitted::submitted),
        Endpoint::new(Post, "/v1/figures/verify", coverage::verify_figures),
        Endpoint::new(Get, "/v1/digest", status::digest),
        Endpoint::new(Get, "/v1/changes", changes::changes),
        Endpoint::new(Get, "/v1/status", status::status),
        Endpoint::new(Get, "/v1/documents", status::documents),
        Endpoint::new(Post, "/v1/documents", documents::publish),
        Endpoint::new(Post, "/v1/documents/resign", documents::resign),
        Endpoint::new(Get, "/v1/documents/{kind}/{id}", documents::get_document),
        Endpoint::new(Get, "/v1/openapi.json", openapi::document),
        Endpoint::new(Get, "/metrics", metrics::metrics),
        Endpoint::new(Post, "/v1/backup", backup::backup),
        Endpoint::new(Get, "/v1/export", export::export),
    ]
}

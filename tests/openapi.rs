//! The OpenAPI documents against the real thing: `docs/reference/openapi.json` (served at
//! `GET /v1/openapi.json`) and `docs/reference/openapi-public.json` (`/api/openapi.json`
//! on the public listener).
//!
//! - Each is a sound OpenAPI 3.1 document: the required members, every `$ref` resolves,
//!   path parameters match their templates, every schema is valid JSON Schema 2020-12
//!   (checked against the meta-schema as it compiles), writes name the bearer scheme.
//! - Its operations are exactly the routes the router is built from
//!   (`lmsync::node::api::routes()`, and the `/api/` routes of
//!   `lmsync::node::public::routes()`): an endpoint added to one and not the other fails.
//! - Real answers of a running tree (ministry, province, a city with a public listener)
//!   have a documented status and content type, and every JSON answer, errors included,
//!   validates against the documented schema. Every documented operation must have been
//!   answered with a 2xx here at least once, so the walk below grows with the document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use common::{Tree, eventually, lmsync_ok, tree_with, vacancy};

const NODE_DOC: &str = "docs/reference/openapi.json";
const PUBLIC_DOC: &str = "docs/reference/openapi-public.json";

fn read_doc(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// `value` resolved through `$ref`s in `doc`, with the pointer where it was found.
fn resolve(doc: &Value, value: &Value, mut pointer: String) -> (Value, String) {
    let mut value = value;
    while let Some(r) = value.get("$ref").and_then(Value::as_str) {
        pointer = r.strip_prefix('#').unwrap().to_string();
        value = doc.pointer(&pointer).unwrap();
    }
    (value.clone(), pointer)
}

/// A JSON pointer token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A document, its compiled schemas, and the operations real answers have exercised.
struct Described {
    name: &'static str,
    doc: Value,
    base: String,
    compiler: boon::Compiler,
    schemas: boon::Schemas,
    compiled: BTreeMap<String, boon::SchemaIndex>,
    exercised: BTreeSet<(String, String)>,
}

impl Described {
    fn load(name: &'static str, path: &str) -> Self {
        let doc = read_doc(path);
        let base = format!("http://lmsync.invalid/{name}.json");
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.enable_format_assertions();
        compiler.add_resource(&base, doc.clone()).unwrap();
        Described {
            name,
            doc,
            base,
            compiler,
            schemas: boon::Schemas::new(),
            compiled: BTreeMap::new(),
            exercised: BTreeSet::new(),
        }
    }

    /// The schema at `pointer` in the document, compiled (and so checked against the
    /// JSON Schema 2020-12 meta-schema).
    fn schema(&mut self, pointer: &str) -> boon::SchemaIndex {
        if let Some(i) = self.compiled.get(pointer) {
            return *i;
        }
        let at = format!("{}#{pointer}", self.base);
        let index = self
            .compiler
            .compile(&at, &mut self.schemas)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: the schema at {pointer} does not compile: {e:#}",
                    self.name
                )
            });
        self.compiled.insert(pointer.to_string(), index);
        index
    }

    /// `value` resolved through `$ref`s, with the pointer where it was found.
    fn resolve(&self, value: &Value, pointer: String) -> (Value, String) {
        resolve(&self.doc, value, pointer)
    }

    /// Every (METHOD, path) the document describes.
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
        out
    }

    /// Checks one real answer of `METHOD template` against the document.
    fn check(&mut self, method: &str, template: &str, answer: &Answer) {
        let what = format!("{} {method} {template} → {}", self.name, answer.status);
        let op_pointer = format!("/paths/{}/{}", escape(template), method.to_lowercase());
        let operation = self
            .doc
            .pointer(&op_pointer)
            .unwrap_or_else(|| panic!("{what}: the operation is not documented"))
            .clone();
        let status = answer.status.to_string();
        let response = operation["responses"]
            .get(&status)
            .unwrap_or_else(|| panic!("{what}: status not documented; body: {}", answer.text()));
        let (response, pointer) = self.resolve(
            &response.clone(),
            format!("{op_pointer}/responses/{status}"),
        );
        let media = answer.media_type();
        match response.get("content") {
            None => assert!(
                answer.body.is_empty(),
                "{what}: documented without a body, got {media}"
            ),
            Some(content) => {
                assert!(
                    content.get(&media).is_some(),
                    "{what}: content type {media} not documented (documented: {:?})",
                    content.as_object().unwrap().keys().collect::<Vec<_>>()
                );
                // JSON is one value; NDJSON is lines, each one value of the schema.
                let values: Vec<Value> = match media.as_str() {
                    "application/json" => vec![
                        serde_json::from_slice(&answer.body)
                            .unwrap_or_else(|e| panic!("{what}: not JSON: {e}")),
                    ],
                    "application/x-ndjson" => answer
                        .text()
                        .lines()
                        .map(|l| {
                            serde_json::from_str(l)
                                .unwrap_or_else(|e| panic!("{what}: a line is not JSON: {e}"))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let schema = format!("{pointer}/content/{}/schema", escape(&media));
                for body in values {
                    let index = self.schema(&schema);
                    if let Err(e) = self.schemas.validate(&body, index) {
                        panic!("{what}: the answer does not match {schema}:\n{e:#}\n{body:#}");
                    }
                }
            }
        }
        if (200..300).contains(&answer.status) {
            self.exercised
                .insert((method.to_uppercase(), template.to_string()));
        }
    }
}

/// One HTTP answer.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn media_type(&self) -> String {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request to send.
#[derive(Clone, Default)]
struct Ask {
    method: &'static str,
    url: String,
    token: Option<String>,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
}

/// Sends requests and checks each answer against a document.
struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Client {
    fn new() -> Self {
        Client {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    fn request(&self, ask: &Ask) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(ask.method.as_bytes()).unwrap();
        let mut req = self.http.request(method, &ask.url);
        if let Some(t) = &ask.token {
            req = req.bearer_auth(t);
        }
        if let Some(c) = ask.content_type {
            req = req.header("content-type", c);
        }
        for (k, v) in &ask.headers {
            req = req.header(k, v);
        }
        if let Some(b) = &ask.body {
            req = req.body(b.clone());
        }
        req
    }

    fn send(&self, ask: &Ask) -> Answer {
        self.rt.block_on(async {
            let r = self.request(ask).send().await.unwrap();
            let (status, headers) = (r.status().as_u16(), r.headers().clone());
            let body = r.bytes().await.unwrap().to_vec();
            Answer {
                status,
                headers,
                body,
            }
        })
    }
}

/// A GET.
fn get(url: String) -> Ask {
    Ask {
        method: "GET",
        url,
        ..Ask::default()
    }
}

/// A POST of JSON with the token.
fn post(url: String, token: &str, body: &Value) -> Ask {
    Ask {
        method: "POST",
        url,
        token: Some(token.to_string()),
        content_type: Some("application/json"),
        body: Some(serde_json::to_vec(body).unwrap()),
        ..Ask::default()
    }
}

/// Sends `ask`, insists on `status`, checks the answer against `doc` as `template`.
fn expect(client: &Client, doc: &mut Described, template: &str, ask: &Ask, status: u16) -> Answer {
    let answer = client.send(ask);
    assert_eq!(
        answer.status,
        status,
        "{} {}: {}",
        ask.method,
        ask.url,
        answer.text()
    );
    doc.check(ask.method, template, &answer);
    answer
}

// ---- the documents themselves

/// Every `$ref` in `value`, with where it is.
fn refs(value: &Value, at: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push((at.clone(), v.as_str().unwrap_or("").to_string()));
                } else {
                    refs(v, format!("{at}/{}", escape(k)), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The structural rules of OpenAPI 3.1 this project's documents rely on.
fn check_document(d: &mut Described) {
    let doc = d.doc.clone();
    let name = d.name;
    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(
        version.starts_with("3.1."),
        "{name}: openapi is {version:?}"
    );
    for key in ["title", "version"] {
        assert!(
            doc["info"][key].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: info.{key}"
        );
    }
    assert!(doc["paths"].is_object(), "{name}: paths");
    let mut all = Vec::new();
    refs(&doc, String::new(), &mut all);
    assert!(!all.is_empty());
    for (at, r) in &all {
        let target = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{name}: {at}: only local references, got {r:?}"));
        assert!(
            doc.pointer(target).is_some(),
            "{name}: {at}: $ref {r:?} resolves to nothing"
        );
    }
    let schemes: BTreeSet<&String> = doc["components"]["securitySchemes"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{name}: path {path:?}");
        let in_template: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .map(|s| s.split('}').next().unwrap().to_string())
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{name}: {method} {path}");
            assert!(
                ["get", "post", "put", "delete", "patch", "head"].contains(&method.as_str()),
                "{what}: method"
            );
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: operationId"));
            assert!(
                operation_ids.insert(id.to_string()),
                "{what}: operationId {id} twice"
            );
            let mut in_path = BTreeSet::new();
            for (i, p) in op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let at = format!("/paths/{}/{method}/parameters/{i}", escape(path));
                let (p, p_at) = d.resolve(p, at);
                assert!(
                    p["name"].is_string() && p["schema"].is_object(),
                    "{what}: {p_at}"
                );
                assert!(p.get("example").is_some(), "{what}: {p_at} has no example");
                if p["in"] == "path" {
                    assert_eq!(p["required"], true, "{what}: {p_at} must be required");
                    in_path.insert(p["name"].as_str().unwrap().to_string());
                }
                d.schema(&format!("{p_at}/schema"));
            }
            assert_eq!(in_path, in_template, "{what}: path parameters");
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{what}: responses");
            for (status, r) in responses {
                assert!(
                    status.len() == 3 && status.parse::<u16>().is_ok(),
                    "{what}: status {status}"
                );
                let at = format!("/paths/{}/{method}/responses/{status}", escape(path));
                let (r, r_at) = d.resolve(r, at);
                assert!(r["description"].is_string(), "{what}: {r_at} description");
                for media in r["content"].as_object().into_iter().flat_map(|m| m.keys()) {
                    d.schema(&format!("{r_at}/content/{}/schema", escape(media)));
                }
            }
            let required = op.get("security").unwrap_or(&doc["security"]);
            for requirement in required.as_array().into_iter().flatten() {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains(scheme), "{what}: unknown scheme {scheme}");
                }
            }
        }
    }
    for schema in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
    {
        d.schema(&format!("/components/schemas/{}", escape(schema)));
    }
}

#[test]
fn the_documents_are_sound_openapi_3_1() {
    let mut node = Described::load("node", NODE_DOC);
    check_document(&mut node);
    let mut public = Described::load("public", PUBLIC_DOC);
    check_document(&mut public);
    // The node's writes need the token, always, and so does the export, which hands out
    // every pseudonymous record of a scope; its other reads follow the loopback rule (the
    // document's default: no token, or the token).
    assert_eq!(
        node.doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(node.doc["security"], json!([{}, {"bearerAuth": []}]));
    for (method, path) in node.operations() {
        let op = &node.doc["paths"][&path][method.to_lowercase()];
        if method == "POST" || path == "/v1/export" {
            assert_eq!(
                op["security"],
                json!([{"bearerAuth": []}]),
                "{method} {path}"
            );
        } else {
            assert!(op.get("security").is_none(), "{method} {path}");
        }
        assert!(op["responses"].get("401").is_some(), "{method} {path}: 401");
    }
}

#[test]
fn the_documents_describe_exactly_the_routes_served() {
    let served: BTreeSet<(String, String)> = lmsync::node::api::routes()
        .into_iter()
        .map(|(verb, path)| (verb.as_str().to_string(), path.to_string()))
        .collect();
    let node = Described::load("node", NODE_DOC);
    assert_eq!(
        node.operations(),
        served,
        "{NODE_DOC} must describe every route of src/node/api/routes.rs, and only those"
    );
    let served: BTreeSet<(String, String)> = lmsync::node::public::routes()
        .into_iter()
        .filter(|(_, path)| path.starts_with("/api/"))
        .map(|(verb, path)| (verb.as_str().to_string(), path.to_string()))
        .collect();
    let public = Described::load("public", PUBLIC_DOC);
    assert_eq!(
        public.operations(),
        served,
        "{PUBLIC_DOC} must describe every /api/ route of src/node/public/server.rs, and only those"
    );
    // The routers are built from those lists and nothing else: no route is added beside
    // them (`routes.rs` and `server.rs` build with `router_of`).
    let src = format!("{}/src/node", env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![std::path::PathBuf::from(src)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.ends_with("api/routes.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    !text.contains(".route(") && !text.contains(".nest("),
                    "{}: add endpoints to the route lists, not to a router",
                    path.display()
                );
            }
        }
    }
}

// ---- real answers

/// A tree whose city 440100 also serves the public listener, fed with generated records
/// (offices, employers, vacancies …) of the third quarter of 1999.
fn fed_tree() -> Tree {
    let t = tree_with(&["440100"], |code, text| {
        if code == "440100" {
            format!(
                "{text}\n[public]\nlisten = \"127.0.0.1:0\"\nrequests_per_second = 1000\nburst = 1000\n"
            )
        } else {
            text
        }
    });
    let (files, _) = &t.cities[0];
    let records = lmsync_ok(&[
        "gen",
        "--node",
        "440100",
        "--records",
        "300",
        "--seed",
        "11",
    ]);
    let path = t.net.path().join("440100.jsonl");
    std::fs::write(&path, records).unwrap();
    lmsync_ok(&[
        "import",
        "--config",
        files.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    t
}

#[test]
fn real_answers_match_the_documents() {
    let t = fed_tree();
    let client = Client::new();
    let mut node = Described::load("node", NODE_DOC);
    let (city_files, city) = &t.cities[0];
    let (prov_files, province) = &t.province;
    let (min_files, ministry) = &t.ministry;
    let (ct, pt, mt) = (&city_files.token, &prov_files.token, &min_files.token);
    let c = |p: &str| city.url(p);
    let d = &mut node;

    // The document served is the one in docs/.
    let served = expect(
        &client,
        d,
        "/v1/openapi.json",
        &get(c("/v1/openapi.json")),
        200,
    );
    assert_eq!(served.json(), read_doc(NODE_DOC));

    // Ingest: accepted, partly rejected, refused.
    let records = "/v1/records";
    let two = json!([vacancy("V-OA-1", 3), vacancy("V-OA-2", 4)]);
    let ok = expect(&client, d, records, &post(c(records), ct, &two), 200);
    assert_eq!(ok.json()["accepted"].as_array().unwrap().len(), 2);
    let mixed = json!([vacancy("V-OA-3", 5), vacancy("V-OA-4", 0), {"kind": "nothing"}]);
    let partly = expect(&client, d, records, &post(c(records), ct, &mixed), 422);
    assert_eq!(partly.json()["rejected"].as_array().unwrap().len(), 2);
    let dry = json!([vacancy("V-OA-DRY", 1), vacancy("V-OA-DRY-0", 0)]);
    let preview = expect(
        &client,
        d,
        records,
        &post(c("/v1/records?dry_run=true"), ct, &dry),
        422,
    );
    assert_eq!(preview.json()["dry_run"], json!(true));
    expect(
        &client,
        d,
        records,
        &post(c("/v1/records?dry_run=maybe"), ct, &dry),
        400,
    );
    let mut no_token = post(c(records), ct, &two);
    no_token.token = None;
    expect(&client, d, records, &no_token, 401);
    let mut wrong_token = post(c(records), ct, &two);
    wrong_token.token = Some("x".repeat(40));
    expect(&client, d, records, &wrong_token, 401);
    let mut as_text = post(c(records), ct, &two);
    as_text.content_type = Some("text/plain");
    expect(&client, d, records, &as_text, 415);
    expect(&client, d, records, &post(c(records), ct, &json!({})), 400);
    let mut broken = post(c(records), ct, &two);
    broken.body = Some(b"[{".to_vec());
    expect(&client, d, records, &broken, 400);
    let mut too_many = post(c(records), ct, &two);
    too_many.body = Some(format!("[{}]", vec!["{}"; 10_001].join(",")).into_bytes());
    expect(&client, d, records, &too_many, 413);

    // The change feed: what was just ingested, then refusals.
    let feed = "/v1/changes";
    let lines = expect(
        &client,
        d,
        feed,
        &get(c("/v1/changes?since=0&wait=0&limit=2")),
        200,
    );
    assert_eq!(
        lines.text().lines().count(),
        3,
        "two records and the last line"
    );
    expect(&client, d, feed, &get(c("/v1/changes?since=AAAA")), 400);
    expect(&client, d, feed, &get(c("/v1/changes?kind=nothing")), 400);

    // The export stream: with the token only.
    let export = "/v1/export";
    let mut with_token = get(c("/v1/export?kind=vacancy"));
    with_token.token = Some(ct.to_string());
    let streamed = expect(&client, d, export, &with_token, 200);
    assert!(streamed.text().lines().last().unwrap().contains("\"end\""));
    expect(&client, d, export, &get(c("/v1/export")), 401);
    let mut bad_kind = get(c("/v1/export?kind=nothing"));
    bad_kind.token = Some(ct.to_string());
    expect(&client, d, export, &bad_kind, 400);

    // Record reads.
    let one = "/v1/records/{owner}/{kind}/{id}";
    let record = expect(
        &client,
        d,
        one,
        &get(c("/v1/records/440100/vacancy/V-OA-1")),
        200,
    );
    assert_eq!(record.json()["id"], "V-OA-1");
    expect(
        &client,
        d,
        one,
        &get(c("/v1/records/440100/vacancy/V-none")),
        404,
    );
    expect(
        &client,
        d,
        one,
        &get(c("/v1/records/4401/vacancy/V-OA-1")),
        400,
    );
    expect(
        &client,
        d,
        one,
        &get(c("/v1/records/440100/nothing/V-OA-1")),
        400,
    );
    let q = "/v1/quarantine";
    expect(&client, d, q, &get(c(q)), 200);
    expect(
        &client,
        d,
        q,
        &get(c("/v1/quarantine?owner=440100&limit=5")),
        200,
    );
    expect(&client, d, q, &get(c("/v1/quarantine?owner=44")), 400);
    expect(&client, d, q, &get(c("/v1/quarantine?other=1")), 400);
    let dg = "/v1/digest";
    expect(&client, d, dg, &get(c(dg)), 200);
    expect(
        &client,
        d,
        dg,
        &get(c("/v1/digest?owner=440100&kind=vacancy")),
        200,
    );
    expect(&client, d, dg, &get(c("/v1/digest?kind=nothing")), 400);

    // Every tier's status, once the city's records are everywhere.
    common::converged(&common::Http::new(), &t);
    for node_ in [city, province, ministry] {
        let status = expect(&client, d, "/v1/status", &get(node_.url("/v1/status")), 200);
        assert!(status.json()["store"]["healthy"].as_bool().unwrap());
    }

    // Coverage and reports, at each tier.
    let cov = "/v1/coverage";
    expect(&client, d, cov, &get(c("/v1/coverage?period=1999Q3")), 200);
    let at_province = get(province.url("/v1/coverage?period=1999Q3&scope=440100"));
    let covered = expect(&client, d, cov, &at_province, 200);
    assert_eq!(covered.json()["cities"].as_array().unwrap().len(), 1);
    expect(
        &client,
        d,
        cov,
        &get(ministry.url("/v1/coverage?period=1999Q3&scope=100000")),
        200,
    );
    expect(
        &client,
        d,
        cov,
        &get(province.url("/v1/coverage?scope=110000")),
        400,
    );
    expect(&client, d, cov, &get(c("/v1/coverage?period=1999Q5")), 400);
    let current = get(province.url("/v1/coverage?period=1999Q3&edition=current"));
    expect(&client, d, cov, &current, 200);
    expect(&client, d, cov, &get(c("/v1/coverage?edition=next")), 400);
    let rep = "/v1/reports/{period}";
    expect(&client, d, rep, &get(c("/v1/reports/1999Q3")), 200);
    let current = get(ministry.url("/v1/reports/1999Q3?edition=current"));
    expect(&client, d, rep, &current, 200);
    expect(
        &client,
        d,
        rep,
        &get(c("/v1/reports/1999Q3?edition=next")),
        400,
    );
    for format in ["json", "csv", "html", "table"] {
        let url =
            format!("/v1/reports/1999Q3?format={format}&basis=new_in_period&suppress_below=0");
        expect(&client, d, rep, &get(province.url(&url)), 200);
    }
    expect(
        &client,
        d,
        rep,
        &get(c("/v1/reports/1999Q3?format=pdf")),
        400,
    );
    expect(&client, d, rep, &get(c("/v1/reports/1999Q9")), 400);
    // A city submits its report for an ended quarter; where the reports stand.
    let submit = "/v1/reports/{period}/submit";
    let url = "/v1/reports/1999Q3/submit";
    let sent = expect(&client, d, submit, &post(c(url), ct, &Value::Null), 200);
    assert_eq!(sent.json()["version"], json!(1));
    expect(
        &client,
        d,
        submit,
        &post(province.url(url), pt, &Value::Null),
        403,
    );
    expect(
        &client,
        d,
        submit,
        &post(c("/v1/reports/2999Q1/submit"), ct, &Value::Null),
        409,
    );
    let submitted = "/v1/reports/{period}/submitted";
    expect(
        &client,
        d,
        submitted,
        &get(c("/v1/reports/1999Q3/submitted")),
        200,
    );
    let own = expect(
        &client,
        d,
        submitted,
        &get(c("/v1/reports/1999Q3/submitted?city=440100")),
        200,
    );
    assert_eq!(own.json()["signature"]["verified"], json!(true));
    expect(
        &client,
        d,
        submitted,
        &get(c("/v1/reports/1999Q4/submitted?city=440100")),
        404,
    );
    let verify = "/v1/figures/verify";
    expect(&client, d, verify, &post(c(verify), ct, &Value::Null), 200);
    let mut anonymous = post(c(verify), ct, &Value::Null);
    anonymous.token = None;
    expect(&client, d, verify, &anonymous, 401);
    let dash = "/";
    let page = expect(&client, d, dash, &get(province.url("/")), 200);
    assert!(page.text().contains("440100"));
    expect(&client, d, dash, &get(c("/?period=1999Q3")), 200);
    expect(&client, d, dash, &get(c("/?period=soon")), 400);

    // Documents: publish at the province and the ministry under one id, read them back.
    let docs = "/v1/documents";
    let policy = json!({"kind": "policy", "id": "P-OA", "body": {"title": "open data"}});
    let published = expect(
        &client,
        d,
        docs,
        &post(province.url(docs), pt, &policy),
        200,
    );
    assert_eq!(published.json()["changed"], true);
    let again = expect(
        &client,
        d,
        docs,
        &post(province.url(docs), pt, &policy),
        200,
    );
    assert_eq!(again.json()["changed"], false);
    expect(
        &client,
        d,
        docs,
        &post(ministry.url(docs), mt, &policy),
        200,
    );
    expect(&client, d, docs, &post(c(docs), ct, &policy), 403);
    let national = json!({"kind": "classification_version", "id": "CN-OCC@1999+X", "body": {}});
    expect(
        &client,
        d,
        docs,
        &post(province.url(docs), pt, &national),
        403,
    );
    let unknown = json!({"kind": "decree", "id": "D-1", "body": {}});
    expect(
        &client,
        d,
        docs,
        &post(province.url(docs), pt, &unknown),
        422,
    );
    let shapeless = json!({"kind": "policy", "id": "P-2"});
    expect(
        &client,
        d,
        docs,
        &post(province.url(docs), pt, &shapeless),
        400,
    );
    eventually("both policies at the city", Duration::from_secs(30), || {
        let list = client.send(&get(c("/v1/documents?kind=policy"))).json();
        list["documents"].as_array().is_some_and(|l| l.len() == 2)
    });
    expect(&client, d, docs, &get(c(docs)), 200);
    expect(&client, d, docs, &get(c("/v1/documents?kind=policy")), 200);
    expect(&client, d, docs, &get(c("/v1/documents?issuer=1")), 400);
    let doc = "/v1/documents/{kind}/{id}";
    expect(&client, d, doc, &get(c("/v1/documents/policy/P-OA")), 409);
    let read = expect(
        &client,
        d,
        doc,
        &get(c("/v1/documents/policy/P-OA?issuer=440000")),
        200,
    );
    assert_eq!(read.json()["issuer"], "440000");
    expect(&client, d, doc, &get(c("/v1/documents/policy/P-none")), 404);
    expect(
        &client,
        d,
        doc,
        &get(c("/v1/documents/policy/P-OA?issuer=4")),
        400,
    );
    let resign = "/v1/documents/resign";
    let resigned = expect(
        &client,
        d,
        resign,
        &post(province.url(resign), pt, &Value::Null),
        200,
    );
    assert_eq!(resigned.json()["resigned"], 1);
    expect(&client, d, resign, &post(c(resign), ct, &Value::Null), 403);

    // Metrics and a backup (and a second one while the first is held unread).
    let metrics = expect(&client, d, "/metrics", &get(c("/metrics")), 200);
    assert!(metrics.text().contains("store_records"));
    let bk = "/v1/backup";
    let backup = expect(&client, d, bk, &post(c(bk), ct, &Value::Null), 200);
    assert!(backup.body.len() > 1000, "a backup of a fed store");
    let first = post(c(bk), ct, &Value::Null);
    let held = client
        .rt
        .block_on(async { client.request(&first).send().await })
        .unwrap();
    assert_eq!(held.status().as_u16(), 200);
    // Usually 409 `backup_running`; but a small store's whole stream may already sit in
    // the socket buffers, its backup done. Either answer must be as documented.
    let second = client.send(&post(c(bk), ct, &Value::Null));
    assert!([200, 409].contains(&second.status), "{}", second.text());
    d.check("POST", bk, &second);
    drop(held);
    let mut unsigned = post(c(bk), ct, &Value::Null);
    unsigned.token = None;
    expect(&client, d, bk, &unsigned, 401);

    // The limits every endpoint shares.
    expect(
        &client,
        d,
        "/v1/status",
        &get(c(&format!("/v1/status?{}", "x".repeat(20_000)))),
        414,
    );
    let mut crowded = get(c("/v1/status"));
    crowded.headers = (0..80).map(|i| (format!("x-h{i}"), "1".into())).collect();
    expect(&client, d, "/v1/status", &crowded, 431);

    let missing: Vec<_> = node
        .operations()
        .difference(&node.exercised)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "documented but never answered here: {missing:?}"
    );

    // The public listener.
    let mut public = Described::load("public", PUBLIC_DOC);
    let p = &mut public;
    let base = city.public.clone().expect("the city's public listener");
    let u = |path: &str| format!("{base}{path}");
    let spec = expect(
        &client,
        p,
        "/api/openapi.json",
        &get(u("/api/openapi.json")),
        200,
    );
    assert_eq!(spec.json(), read_doc(PUBLIC_DOC));
    let search = "/api/vacancies";
    eventually("the public board is built", Duration::from_secs(30), || {
        client.send(&get(u(search))).json()["ready"] == true
    });
    let page = expect(&client, p, search, &get(u(search)), 200);
    let first = page.json()["items"][0].clone();
    assert!(first.is_object(), "a listed vacancy: {}", page.text());
    let query = "/api/vacancies?q=&occupation=&area=4401&wage_min=100&sort=wage&page=1&per_page=5";
    expect(&client, p, search, &get(u(query)), 200);
    expect(
        &client,
        p,
        search,
        &get(u("/api/vacancies?per_page=51")),
        400,
    );
    expect(&client, p, search, &get(u("/api/vacancies?color=red")), 400);
    let one = "/api/vacancies/{owner}/{id}";
    let path = format!(
        "/api/vacancies/{}/{}",
        first["owner"].as_str().unwrap(),
        first["id"].as_str().unwrap()
    );
    let listed = expect(&client, p, one, &get(u(&path)), 200);
    assert_eq!(listed.json(), first);
    expect(
        &client,
        p,
        one,
        &get(u("/api/vacancies/440100/V-none")),
        404,
    );
    let report = "/api/report/{period}";
    expect(&client, p, report, &get(u("/api/report/1999Q3")), 200);
    expect(&client, p, report, &get(u("/api/report/soon")), 400);
    let offices = expect(&client, p, "/api/offices", &get(u("/api/offices")), 200);
    assert!(offices.json()["total"].as_u64().unwrap() > 0);
    let etag = offices.headers["etag"].to_str().unwrap().to_string();
    let mut cached = get(u("/api/offices"));
    cached.headers = vec![("if-none-match".into(), etag)];
    expect(&client, p, "/api/offices", &cached, 304);
    let missing: Vec<_> = public
        .operations()
        .difference(&public.exercised)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "documented but never answered here: {missing:?}"
    );
}

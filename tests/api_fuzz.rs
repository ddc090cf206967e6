//! The HTTP API of a real `lmsync run` process under hostile input (RELIABILITY.md,
//! "hostile input"): malformed JSON from a seeded set of mutations (truncated, wrong types,
//! deep nesting, invalid UTF-8, huge strings, unknown fields), a body over the node's
//! limit, missing, wrong and almost-right tokens, wrong content types, bad query strings
//! (change-feed cursors included) and paths, and raw garbage on the socket.
//!
//! Every case must answer a 4xx (a JSON `{"error", "message"}` where the endpoint speaks
//! JSON; per-record rejections as `{"accepted": [], "rejected": [...]}`), never a 5xx,
//! never kill the node; afterwards the store's digest is what it was and `/v1/status`
//! reports a healthy store. The seed is fixed; `LMSYNC_TEST_SEED` replays another.
//!
//! A few answers are known to break the JSON-error contract today; they are listed in
//! [`KNOWN_DEVIATIONS`], still held to "4xx, nothing stored, node healthy", and reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use common::{Network, RunningNode, vacancy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Seed unless `LMSYNC_TEST_SEED` says otherwise.
const SEED: u64 = 20_240_917;

/// The node's body limit in this test (set in its config), and a body over it.
const BODY_LIMIT: usize = 256 * 1024;

/// Cases whose answer is known to break the JSON-error contract, by name prefix and why
/// (none today: query and path rejections, unknown routes and methods, and POST bodies
/// that are not JSON all answer a JSON error). Each would still be required to store
/// nothing and to leave the node healthy.
const KNOWN_DEVIATIONS: &[(&str, &str)] = &[];

fn known_deviation(name: &str) -> Option<&'static str> {
    KNOWN_DEVIATIONS
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, why)| *why)
}

/// What a case must answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// A 4xx `{"error", "message"}` (with this status, when given).
    Error(Option<u16>),
    /// Per-record rejection (422, nothing accepted) or a 4xx error.
    Rejected,
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    expect: Expect,
}

impl Case {
    fn get(name: impl Into<String>, path: impl Into<String>, expect: Expect) -> Case {
        Case {
            name: name.into(),
            method: reqwest::Method::GET,
            path: path.into(),
            headers: Vec::new(),
            body: None,
            expect,
        }
    }

    /// A JSON POST with the right token.
    fn post(
        name: impl Into<String>,
        path: &str,
        token: &str,
        body: Vec<u8>,
        expect: Expect,
    ) -> Case {
        Case {
            name: name.into(),
            method: reqwest::Method::POST,
            path: path.into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), format!("Bearer {token}")),
            ],
            body: Some(body),
            expect,
        }
    }
}

/// The answer to one request.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn send(&self, case: &Case) -> Result<Answer, reqwest::Error> {
        self.rt.block_on(async {
            let mut req = self
                .http
                .request(case.method.clone(), format!("{}{}", self.base, case.path));
            for (k, v) in &case.headers {
                req = req.header(k, v);
            }
            if let Some(b) = &case.body {
                req = req.body(b.clone());
            }
            let r = req.send().await?;
            let status = r.status().as_u16();
            let content_type = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = r.bytes().await?.to_vec();
            Ok(Answer {
                status,
                content_type,
                body,
            })
        })
    }

    fn json(&self, path: &str) -> (u16, Value) {
        let a = self
            .send(&Case::get("probe", path, Expect::Error(None)))
            .unwrap();
        (
            a.status,
            serde_json::from_slice(&a.body).unwrap_or(Value::Null),
        )
    }
}

/// Checks one answer; `Err` says what is wrong with it.
fn judge(case: &Case, a: &Answer) -> Result<(), String> {
    if !(400..500).contains(&a.status) {
        return Err(format!("status {} (want a 4xx)", a.status));
    }
    let body: Option<Value> = serde_json::from_slice(&a.body).ok();
    let is_error = |v: &Value| v["error"].is_string() && v["message"].is_string();
    let json_type = a.content_type.starts_with("application/json");
    match (case.expect, &body) {
        (Expect::Error(want), Some(v)) if json_type && is_error(v) => match want {
            Some(w) if w != a.status => Err(format!("status {} (want {w})", a.status)),
            _ => Ok(()),
        },
        (Expect::Rejected, Some(v)) if json_type && is_error(v) => Ok(()),
        (Expect::Rejected, Some(v)) if json_type && a.status == 422 => {
            if v["accepted"].as_array().is_some_and(Vec::is_empty)
                && v["rejected"].as_array().is_some_and(|r| !r.is_empty())
            {
                Ok(())
            } else {
                Err(format!("422 that accepted something: {v}"))
            }
        }
        _ => Err(format!(
            "not a JSON error: status {} content-type {:?} body {:?}",
            a.status,
            a.content_type,
            String::from_utf8_lossy(&a.body[..a.body.len().min(200)])
        )),
    }
}

/// Records that are valid as they stand (the bases of the mutations).
fn valid_bodies() -> Vec<Value> {
    let seeker = json!({"kind": "job_seeker", "id": "S-1", "data": {
        "citizen_id": common::citizen_id("44010619650317123"), "name": "张三",
        "sex": "male", "birth_year": 1965, "residence_division": "440104",
        "hukou_class": "local_urban", "desired_occupations": ["6-04"],
        "category": "laid_off", "registered_on": "1999-08-01", "valid_until": "1999-10-31"
    }});
    vec![
        json!([vacancy("M-1", 1)]),
        json!([seeker]),
        json!([vacancy("M-2", 2), vacancy("M-3", 3)]),
    ]
}

/// A JSON value of another type than `v`, never `null` (which an optional field takes).
fn wrong_type(v: &Value, rng: &mut ChaCha8Rng) -> Value {
    let choices: Vec<Value> = vec![
        json!("not-this"),
        json!(12345),
        json!(-1.5),
        json!(true),
        json!([1, 2]),
        json!({"x": 1}),
    ];
    loop {
        let c = choices[rng.random_range(0..choices.len())].clone();
        let same = matches!(
            (v, &c),
            (Value::String(_), Value::String(_))
                | (Value::Number(_), Value::Number(_))
                | (Value::Bool(_), Value::Bool(_))
                | (Value::Array(_), Value::Array(_))
                | (Value::Object(_), Value::Object(_))
        );
        if !same {
            return c;
        }
    }
}

/// Applies `f` to every record of an array body.
fn each_record(body: &Value, mut f: impl FnMut(&mut serde_json::Map<String, Value>)) -> Value {
    let mut body = body.clone();
    for r in body.as_array_mut().unwrap() {
        f(r.as_object_mut().unwrap());
    }
    body
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// One seeded mutation of a valid body that must make every record in it unacceptable.
fn mutated(rng: &mut ChaCha8Rng, base: &Value, token: &str) -> Case {
    let text = bytes(base);
    let post =
        |name: String, body: Vec<u8>, expect| Case::post(name, "/v1/records", token, body, expect);
    match rng.random_range(0..10) {
        0 => {
            // Any proper prefix of an array is not JSON.
            let cut = rng.random_range(0..text.len());
            post(
                format!("truncated at {cut}"),
                text[..cut].to_vec(),
                Expect::Error(Some(400)),
            )
        }
        1 => {
            let body = each_record(base, |r| {
                let data = r["data"].as_object_mut().unwrap();
                // Identifying fields are dropped at ingest whatever their type.
                let keys: Vec<String> = data
                    .keys()
                    .filter(|k| !["name", "phone", "address"].contains(&k.as_str()))
                    .cloned()
                    .collect();
                let k = &keys[rng.random_range(0..keys.len())];
                let v = wrong_type(&data[k], rng);
                data.insert(k.clone(), v);
            });
            post("wrong type in data".into(), bytes(&body), Expect::Rejected)
        }
        2 => {
            let field = ["kind", "id", "data"][rng.random_range(0..3)];
            let body = each_record(base, |r| {
                let v = wrong_type(&r[field], rng);
                r.insert(field.into(), v);
            });
            post(
                format!("wrong type of {field}"),
                bytes(&body),
                Expect::Rejected,
            )
        }
        3 => {
            let depth = rng.random_range(1_000..100_000);
            let (open, name) = match rng.random_range(0..3) {
                0 => ("[", "array"),
                1 => ("{\"a\":", "object"),
                _ => (
                    "[{\"kind\":\"vacancy\",\"id\":\"D\",\"data\":",
                    "record data",
                ),
            };
            let mut body = Vec::new();
            for _ in 0..depth {
                if body.len() + open.len() > BODY_LIMIT - 16 {
                    break;
                }
                body.extend_from_slice(open.as_bytes());
            }
            post(
                format!("{depth} nested {name}"),
                body,
                Expect::Error(Some(400)),
            )
        }
        4 => {
            let bad: &[&[u8]] = &[
                b"\xff",
                b"\xc3\x28",
                b"\xc0\xaf",
                b"\xed\xa0\x80",
                b"\xf4\x90\x80\x80",
                b"\xe2\x82",
            ];
            let insert = bad[rng.random_range(0..bad.len())];
            let at = rng.random_range(0..=text.len());
            let mut body = text.clone();
            body.splice(at..at, insert.iter().copied());
            post(
                format!("invalid UTF-8 {insert:02x?} at {at}"),
                body,
                Expect::Error(Some(400)),
            )
        }
        5 => {
            let n = rng.random_range(129..BODY_LIMIT / 2);
            let field = ["id", "title"][rng.random_range(0..2)];
            let body = each_record(base, |r| {
                let s = "长".repeat(n / 3);
                if field == "id" || r["kind"] != "vacancy" {
                    r.insert("id".into(), json!(s));
                } else {
                    r["data"]["title"] = json!(s);
                }
            });
            let expect = if bytes(&body).len() > BODY_LIMIT {
                Expect::Error(Some(413))
            } else {
                Expect::Rejected
            };
            post(format!("huge {field} of {n} bytes"), bytes(&body), expect)
        }
        6 => {
            let in_data = rng.random_bool(0.5);
            let body = each_record(base, |r| {
                if in_data {
                    r["data"]["surprise_field"] = json!(1);
                } else {
                    r.insert("surprise_field".into(), json!("x"));
                }
            });
            let where_ = if in_data { "data" } else { "record" };
            post(
                format!("unknown field in {where_}"),
                bytes(&body),
                Expect::Rejected,
            )
        }
        7 => {
            let top: &[(&str, Value)] = &[
                ("object", json!({"kind": "vacancy"})),
                ("string", json!("[]")),
                ("number", json!(1e300)),
                ("null", Value::Null),
                ("bool", json!(true)),
            ];
            let (name, v) = &top[rng.random_range(0..top.len())];
            post(
                format!("top-level {name}"),
                bytes(v),
                Expect::Error(Some(400)),
            )
        }
        8 => {
            // Escapes that do not make a valid id: a lone surrogate, NUL, a control.
            let esc = ["\\ud800", "\\u0000", "\\u001b", "\\udfff\\ud800"][rng.random_range(0..4)];
            let body = each_record(base, |r| {
                r.insert("id".into(), json!("ESCAPE"));
            });
            let body = String::from_utf8(bytes(&body))
                .unwrap()
                .replace("ESCAPE", &format!("X{esc}Y"));
            post(
                format!("escape {esc} in id"),
                body.into_bytes(),
                Expect::Rejected,
            )
        }
        _ => {
            let big = [
                "1e400",
                "-1",
                "18446744073709551616",
                "4294967296",
                "1.5",
                "-0",
            ];
            let pick = big[rng.random_range(0..big.len())];
            let body = each_record(base, |r| {
                r["data"]["birth_year"] = json!("NUMBER");
                r["data"]["headcount"] = json!("NUMBER");
            });
            let body = String::from_utf8(bytes(&body))
                .unwrap()
                .replace("\"NUMBER\"", pick);
            post(
                format!("number {pick}"),
                body.into_bytes(),
                Expect::Rejected,
            )
        }
    }
}

/// Requests that must be refused for their token: a valid body, so that a token check
/// that failed open would store it.
fn token_cases(token: &str, rng: &mut ChaCha8Rng) -> Vec<Case> {
    let body = bytes(&json!([vacancy("T-1", 1)]));
    let mut last = token.to_string();
    let c = last.pop().unwrap();
    let near_last = format!("{last}{}", if c == '0' { '1' } else { '0' });
    let mut first = token.to_string();
    first.replace_range(0..1, if token.starts_with('a') { "b" } else { "a" });
    let auth: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty", Some(String::new())),
        ("bearer only", Some("Bearer".into())),
        ("bearer space", Some("Bearer ".into())),
        ("wrong", Some("Bearer wrong-token".into())),
        ("last char changed", Some(format!("Bearer {near_last}"))),
        ("first char changed", Some(format!("Bearer {first}"))),
        (
            "prefix",
            Some(format!("Bearer {}", &token[..token.len() - 1])),
        ),
        ("extended", Some(format!("Bearer {token}0"))),
        (
            "upper case",
            Some(format!("Bearer {}", token.to_uppercase())),
        ),
        ("lower-case scheme", Some(format!("bearer {token}"))),
        ("two spaces", Some(format!("Bearer  {token}"))),
        // (A trailing space is optional white space in HTTP, not part of the value.)
        ("no scheme", Some(token.to_string())),
        ("basic", Some(format!("Basic {token}"))),
        ("quoted", Some(format!("Bearer \"{token}\""))),
        ("twice", Some(format!("Bearer {token}, Bearer {token}"))),
    ];
    let mut cases: Vec<Case> = auth
        .into_iter()
        .map(|(name, value)| {
            let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
            if let Some(v) = value {
                headers.push(("authorization".into(), v));
            }
            Case {
                name: format!("token: {name}"),
                method: reqwest::Method::POST,
                path: "/v1/records".into(),
                headers,
                body: Some(body.clone()),
                expect: Expect::Error(Some(401)),
            }
        })
        .collect();
    // The token in another header, and random garbage tokens.
    let mut other = cases[0].clone();
    other.name = "token: in X-Api-Token".into();
    other.headers.push(("x-api-token".into(), token.into()));
    cases.push(other);
    for i in 0..8 {
        let len = rng.random_range(1..100);
        let garbage: String = (0..len)
            .map(|_| char::from(rng.random_range(0x21u8..0x7f)))
            .collect();
        let mut c = cases[0].clone();
        c.name = format!("token: random {i}");
        c.headers
            .push(("authorization".into(), format!("Bearer {garbage}")));
        cases.push(c);
    }
    // Documents need the token too.
    let mut doc = cases[4].clone();
    doc.name = "token: wrong on /v1/documents".into();
    doc.path = "/v1/documents".into();
    doc.body = Some(bytes(&json!({"kind": "policy", "id": "P-1", "body": {}})));
    cases.push(doc);
    cases
}

/// Random byte edits of a valid body, sent without a token: refused before parsing.
fn unauthenticated_garbage(rng: &mut ChaCha8Rng, n: usize) -> Vec<Case> {
    let bases = valid_bodies();
    (0..n)
        .map(|i| {
            let mut body = bytes(&bases[rng.random_range(0..bases.len())]);
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..body.len());
                body[at] = rng.random();
            }
            Case {
                name: format!("token: none, flipped body {i}"),
                method: reqwest::Method::POST,
                path: "/v1/records".into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: Some(body),
                expect: Expect::Error(Some(401)),
            }
        })
        .collect()
}

fn fixed_cases(token: &str) -> Vec<Case> {
    let e = |s| Expect::Error(Some(s));
    let any = Expect::Error(None);
    let mut cases = vec![
        Case::get("digest: bad owner", "/v1/digest?owner=x", e(400)),
        Case::get("digest: owner too long", "/v1/digest?owner=4401000", e(400)),
        Case::get(
            "digest: unknown province",
            "/v1/digest?owner=990100",
            e(400),
        ),
        Case::get("digest: bad kind", "/v1/digest?kind=vacancies", e(400)),
        Case::get("digest: owner not UTF-8", "/v1/digest?owner=%FF%FE", e(400)),
        Case::get("query: digest unknown field", "/v1/digest?bogus=1", e(400)),
        Case::get("coverage: quarter 9", "/v1/coverage?period=2024Q9", e(400)),
        Case::get(
            "coverage: garbage period",
            "/v1/coverage?period=garbage",
            e(400),
        ),
        Case::get("coverage: year 0", "/v1/coverage?period=0000Q1", any),
        Case::get("coverage: bad scope", "/v1/coverage?scope=zz", e(400)),
        Case::get("coverage: scope outside", "/v1/coverage?scope=320200", any),
        Case::get("query: coverage unknown field", "/v1/coverage?x=1", e(400)),
        Case::get("reports: garbage period", "/v1/reports/garbage", e(400)),
        Case::get("reports: quarter 0", "/v1/reports/2024Q0", e(400)),
        Case::get("reports: huge year", "/v1/reports/99999999999Q1", e(400)),
        Case::get(
            "reports: bad format",
            "/v1/reports/2024Q1?format=pdf",
            e(400),
        ),
        Case::get("reports: bad basis", "/v1/reports/2024Q1?basis=x", e(400)),
        Case::get(
            "query: reports negative suppress",
            "/v1/reports/2024Q1?suppress_below=-1",
            e(400),
        ),
        Case::get("quarantine: bad owner", "/v1/quarantine?owner=44", e(400)),
        Case::get(
            "quarantine: owner not UTF-8",
            "/v1/quarantine?owner=%FF",
            e(400),
        ),
        Case::get(
            "query: quarantine limit -1",
            "/v1/quarantine?limit=-1",
            e(400),
        ),
        Case::get(
            "query: quarantine limit 2^70",
            "/v1/quarantine?limit=1180591620717411303424",
            e(400),
        ),
        Case::get(
            "query: quarantine limit text",
            "/v1/quarantine?limit=all",
            e(400),
        ),
        Case::get("records: bad owner", "/v1/records/x/vacancy/V-1", e(400)),
        Case::get(
            "records: bad kind",
            "/v1/records/440100/nonsense/V-1",
            e(400),
        ),
        Case::get(
            "records: missing",
            "/v1/records/440100/vacancy/NOPE",
            e(404),
        ),
        Case::get(
            "records: huge id",
            format!("/v1/records/440100/vacancy/{}", "x".repeat(8000)),
            e(404),
        ),
        Case::get(
            "path:invalid-utf8 record id",
            "/v1/records/440100/vacancy/%FF",
            e(400),
        ),
        Case::get("documents: missing", "/v1/documents/policy/none", e(404)),
        Case::get(
            "changes: garbage cursor",
            "/v1/changes?since=%FF%00",
            e(400),
        ),
        Case::get(
            "changes: cursor not base64",
            "/v1/changes?since=a.b",
            e(400),
        ),
        Case::get(
            "changes: huge cursor",
            format!("/v1/changes?since={}", "A".repeat(15_000)),
            e(400),
        ),
        Case::get("changes: bad owner", "/v1/changes?owner=44", e(400)),
        Case::get("changes: bad kind", "/v1/changes?kind=x", e(400)),
        Case::get(
            "changes: limit over",
            "/v1/changes?limit=99999999999999999999",
            e(400),
        ),
        Case::get("changes: wait negative", "/v1/changes?wait=-5", e(400)),
        Case::get(
            "query: changes unknown field",
            "/v1/changes?after=0",
            e(400),
        ),
        Case {
            method: reqwest::Method::POST,
            ..Case::get("route: POST changes", "/v1/changes", e(405))
        },
        Case::get("route: unknown", "/v1/nope", e(404)),
        Case {
            method: reqwest::Method::PUT,
            ..Case::get("route: PUT records", "/v1/records", e(405))
        },
        Case {
            method: reqwest::Method::DELETE,
            ..Case::get("route: DELETE digest", "/v1/digest", e(405))
        },
    ];
    // Documents: malformed bodies (a city may not publish at all, so anything is refused).
    for (name, body) in [
        ("junk", b"junk".to_vec()),
        (
            "wrong types",
            bytes(&json!({"kind": 5, "id": [], "body": "x"})),
        ),
        (
            "unknown field",
            bytes(&json!({"kind": "policy", "id": "P", "body": {}, "x": 1})),
        ),
        ("deep", "[".repeat(50_000).into_bytes()),
        ("array", bytes(&json!([]))),
    ] {
        cases.push(Case::post(
            format!("documents: {name}"),
            "/v1/documents",
            token,
            body,
            Expect::Error(None),
        ));
    }
    // Over the body limit: 413, and the node lives on.
    for (path, n) in [("/v1/records", 2), ("/v1/records", 1), ("/v1/documents", 1)] {
        let mut body = b"[".to_vec();
        body.resize(BODY_LIMIT * n + 1, b' ');
        cases.push(Case::post(
            format!("over limit: {} bytes to {path}", body.len()),
            path,
            token,
            body,
            Expect::Error(Some(413)),
        ));
    }
    // Content types other than JSON, on a body that stores nothing either way.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin1",
        "",
    ] {
        let mut c = Case::post(
            format!("content-type: {ct:?}"),
            "/v1/records",
            token,
            b"[]".to_vec(),
            e(415),
        );
        c.headers.retain(|(k, _)| k != "content-type");
        if !ct.is_empty() {
            c.headers.push(("content-type".into(), ct.into()));
        }
        cases.push(c);
    }
    cases
}

/// Raw bytes on the API socket: whatever comes back must be a 4xx status line (or the
/// connection closes); the node must live on.
fn raw_socket(addr: &str) -> Vec<(String, Option<u16>)> {
    let big_header = format!(
        "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("garbage line", b"GARBAGE\r\n\r\n".to_vec()),
        ("binary", (0..=255u8).cycle().take(4096).collect()),
        ("1 MiB header", big_header.into_bytes()),
        (
            "negative length",
            b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n[]".to_vec(),
        ),
        (
            "bad chunk",
            b"POST /v1/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n[]\r\n0\r\n\r\n"
                .to_vec(),
        ),
        (
            "both lengths",
            b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n"
                .to_vec(),
        ),
        ("HTTP/9", b"GET /v1/status HTTP/9.9\r\nHost: x\r\n\r\n".to_vec()),
        ("half request", b"GET /v1/sta".to_vec()),
    ];
    inputs
        .into_iter()
        .map(|(name, bytes)| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // The server may close before reading it all.
            let _ = s.write_all(&bytes);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            let status = std::str::from_utf8(&answer[..answer.len().min(12)])
                .ok()
                .and_then(|l| l.strip_prefix("HTTP/1.1 "))
                .and_then(|c| c.get(..3))
                .and_then(|c| c.parse().ok());
            (format!("raw: {name}"), status)
        })
        .collect()
}

#[test]
fn api_answers_hostile_requests_with_4xx_and_stores_nothing() {
    let seed = std::env::var("LMSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net = Network::new();
    let files = net.init("440100", None);
    let text = std::fs::read_to_string(&files.config)
        .unwrap()
        .replace("body_limit = \"16MiB\"", "body_limit = \"256KiB\"");
    assert!(text.contains("256KiB"), "the config names api.body_limit");
    std::fs::write(&files.config, text).unwrap();
    let mut node = RunningNode::start(&files);
    let client = Client {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        // No pooling: a connection the server closed after a 413 must not be reused.
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: node.api.clone(),
    };

    // One real record first, so that "unchanged" is not merely "empty".
    let ok = client
        .send(&Case::post(
            "setup",
            "/v1/records",
            &files.token,
            bytes(&json!([vacancy("V-1", 2)])),
            Expect::Error(None),
        ))
        .unwrap();
    assert_eq!(ok.status, 200, "{:?}", String::from_utf8_lossy(&ok.body));
    let (_, digest_before) = client.json("/v1/digest");
    assert_eq!(digest_before["records"], 1);

    let mut cases = fixed_cases(&files.token);
    cases.extend(token_cases(&files.token, &mut rng));
    cases.extend(unauthenticated_garbage(&mut rng, 40));
    let bases = valid_bodies();
    for _ in 0..600 {
        let base = &bases[rng.random_range(0..bases.len())];
        cases.push(mutated(&mut rng, base, &files.token));
    }

    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut deviations: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for case in &cases {
        let answer = match client.send(case) {
            Ok(a) => a,
            // The server may close the connection before reading a body over the limit.
            Err(e) if case.name.starts_with("over limit") && (e.is_request() || e.is_body()) => {
                *statuses.entry(0).or_default() += 1;
                continue;
            }
            Err(e) => {
                failures.push(format!("{}: request failed: {e}", case.name));
                continue;
            }
        };
        *statuses.entry(answer.status).or_default() += 1;
        let verdict = judge(case, &answer);
        match (verdict, known_deviation(&case.name)) {
            (Ok(()), _) => {}
            (Err(why), Some(known)) if (400..500).contains(&answer.status) => {
                deviations.push(format!("{}: {why} [known: {known}]", case.name));
            }
            (Err(why), Some(_))
                if case.name.starts_with("content-type") && answer.status == 200 =>
            {
                // Accepted `[]`: nothing stored, but no 415 either.
                deviations.push(format!("{}: {why}", case.name));
            }
            (Err(why), _) => failures.push(format!("{}: {why}", case.name)),
        }
        if node.child.try_wait().unwrap().is_some() {
            failures.push(format!("{}: the node died", case.name));
            break;
        }
    }
    let raw = raw_socket(node.api.trim_start_matches("http://"));
    for (name, status) in &raw {
        match status {
            Some(s) if !(400..500).contains(s) => failures.push(format!("{name}: status {s}")),
            _ => {}
        }
    }

    assert!(
        node.child.try_wait().unwrap().is_none(),
        "the node is alive"
    );
    let (status, digest_after) = client.json("/v1/digest");
    assert_eq!(status, 200);
    let (status, health) = client.json("/v1/status");
    println!(
        "api_fuzz: seed={seed} cases={} raw={} statuses={statuses:?} raw_statuses={:?} known_deviations={} failures={}",
        cases.len(),
        raw.len(),
        raw.iter()
            .map(|(_, s)| s.unwrap_or(0))
            .collect::<Vec<u16>>(),
        deviations.len(),
        failures.len()
    );
    for d in &deviations {
        println!("  known deviation: {d}");
    }
    assert!(
        failures.is_empty(),
        "seed {seed} (LMSYNC_TEST_SEED replays it):\n{}",
        failures.join("\n")
    );
    assert_eq!(
        digest_after, digest_before,
        "seed {seed}: the store changed under refused requests"
    );
    assert_eq!((status, &health["store"]["healthy"]), (200, &json!(true)));
}

//! The HTTP server's bounds against a real `lmsync run` process (RELIABILITY.md, "hostile
//! HTTP clients"): a slow or silent request head is cut off at `header_read_timeout`, an
//! idle kept-alive connection at `keep_alive_timeout`, a slow body at
//! `body_read_timeout`; connections over `max_connections` and requests over
//! `max_in_flight` get a JSON 503 at once; a body of millions of tiny JSON values gets a
//! JSON 413 without the node's memory growing; URIs and headers over the limits get a
//! JSON 414 and 431.
//!
//! Every wait is bounded; timeouts are set short in the node's config to keep this fast.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::{Http, Network, NodeFiles, RunningNode, vacancy};
use serde_json::{Value, json};

/// Longest any single read in these tests waits: far past every timeout they configure.
const READ_LIMIT: Duration = Duration::from_secs(15);

/// A city node with `keys` (TOML lines) added to its `[api]` section.
fn node_with(keys: &[&str]) -> (Network, NodeFiles, RunningNode) {
    let net = Network::new();
    let files = net.init("440100", None);
    let text = std::fs::read_to_string(&files.config).unwrap();
    let lines: String = keys.iter().map(|k| format!("{k}\n")).collect();
    let edited = text.replace("[api]\n", &format!("[api]\n{lines}"));
    assert!(
        keys.is_empty() || edited != text,
        "the config has an [api] section"
    );
    std::fs::write(&files.config, edited).unwrap();
    let node = RunningNode::start(&files);
    (net, files, node)
}

fn connect(node: &RunningNode) -> TcpStream {
    let s = TcpStream::connect(node.api.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(READ_LIMIT)).unwrap();
    s
}

/// One HTTP answer read off a raw socket.
struct Answer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let shown: String = body.chars().take(300).collect();
        write!(f, "{} {:?} {shown:?}", self.status, self.headers)
    }
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A JSON error of `kind`: the documented `{"error", "message"}` shape.
    fn assert_error(&self, status: u16, kind: &str) {
        let v = self.json();
        assert_eq!(
            (self.status, v["error"].as_str()),
            (status, Some(kind)),
            "{self:?}"
        );
        assert!(v["message"].is_string(), "{v}");
        assert!(
            self.headers.contains("content-type: application/json"),
            "{}",
            self.headers
        );
    }
}

/// Reads one answer (head, then a `content-length` body).
fn read_answer(s: &mut TcpStream) -> Answer {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("reading an answer");
        assert_eq!(
            n,
            1,
            "closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let headers = String::from_utf8(head).unwrap().to_ascii_lowercase();
    let status = headers[9..12].parse().unwrap();
    let length: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0; length];
    s.read_exact(&mut body).unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// Waits for the server to close `s`, returning how long that took; fails if it is still
/// open after `limit`. Anything the server sends meanwhile is discarded.
fn wait_closed(s: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut sink = [0u8; 4096];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
        }
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: lmsync\r\n\r\n").into_bytes()
}

/// Holds the node's one in-flight slot (`max_in_flight = 1`) with an ingest whose body is
/// still coming, and returns that connection and the 503 a `probe` got while it was held.
/// The held request and a probe race for the slot: when the probe wins, the held request
/// is the one refused, so it is sent again on a new connection. Bounded: 20 holds of 40
/// probes each.
fn hold_the_slot(
    node: &RunningNode,
    files: &NodeFiles,
    body: &[u8],
    mut probe: impl FnMut() -> Answer,
) -> (TcpStream, Answer) {
    let head = format!(
        "POST /v1/records HTTP/1.1\r\nHost: lmsync\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        files.token,
        body.len()
    );
    for _ in 0..20 {
        let mut held = connect(node);
        held.write_all(head.as_bytes()).unwrap();
        held.write_all(&body[..10]).unwrap();
        for _ in 0..40 {
            let started = Instant::now();
            let answer = probe();
            assert!(started.elapsed() < Duration::from_secs(5), "a probe hung");
            if answer.status == 503 {
                return (held, answer);
            }
            if answered(&held) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("no request was refused while an ingest held the slot");
}

/// True when the server has answered or closed `s` (without consuming anything).
fn answered(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let got = s.peek(&mut byte);
    s.set_nonblocking(false).unwrap();
    got.is_ok()
}

#[test]
fn a_slow_or_silent_head_is_cut_off_at_the_header_timeout() {
    let (_net, _files, node) = node_with(&["header_read_timeout = \"1s\""]);
    let mut silent = connect(&node);
    let mut slow = connect(&node);
    let started = Instant::now();
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nHost: lmsync\r\nX-Slow: ")
        .unwrap();
    // A slowloris: one more header byte every 100 ms (at most 15 s of them), which must
    // not extend the deadline.
    let mut writer = slow.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..150 {
            if writer.write_all(b"a").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    wait_closed(&mut slow, READ_LIMIT);
    let slow_closed = started.elapsed();
    let silent_closed = started.elapsed() + wait_closed(&mut silent, READ_LIMIT);
    trickle.join().unwrap();
    assert_refused(&node, "header_read_timeout");
    println!("api_limits: slowloris closed after {slow_closed:?}, silent after {silent_closed:?}");
    for (what, after) in [("slowloris", slow_closed), ("silent", silent_closed)] {
        assert!(
            after >= Duration::from_millis(700) && after < Duration::from_secs(4),
            "{what} connection closed after {after:?}; header_read_timeout is 1 s"
        );
    }
    // The node still serves.
    let mut s = connect(&node);
    s.write_all(&get("/v1/status")).unwrap();
    assert_eq!(read_answer(&mut s).status, 200);
}

#[test]
fn an_idle_kept_alive_connection_is_closed_at_the_keep_alive_timeout() {
    let (_net, _files, node) = node_with(&[
        "header_read_timeout = \"1s\"",
        "keep_alive_timeout = \"2s\"",
    ]);
    let mut s = connect(&node);
    s.write_all(&get("/v1/status")).unwrap();
    assert_eq!(read_answer(&mut s).status, 200);
    // Idle for longer than the header timeout but within the keep-alive timeout: the
    // connection still serves the next request.
    std::thread::sleep(Duration::from_millis(1500));
    s.write_all(&get("/v1/digest")).unwrap();
    assert_eq!(read_answer(&mut s).status, 200);
    let closed = wait_closed(&mut s, READ_LIMIT);
    println!("api_limits: idle keep-alive connection closed after {closed:?}");
    assert!(
        closed >= Duration::from_millis(1500) && closed < Duration::from_secs(6),
        "idle connection closed after {closed:?}; keep_alive_timeout is 2 s"
    );
}

#[test]
fn a_body_that_stops_coming_gets_408() {
    let (_net, files, node) = node_with(&["body_read_timeout = \"1s\""]);
    let mut s = connect(&node);
    let head = format!(
        "POST /v1/records HTTP/1.1\r\nHost: lmsync\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[",
        files.token
    );
    let started = Instant::now();
    s.write_all(head.as_bytes()).unwrap();
    let answer = read_answer(&mut s);
    answer.assert_error(408, "body_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn connections_over_the_cap_get_503_and_the_others_are_served() {
    let (_net, _files, node) = node_with(&["max_connections = 4", "header_read_timeout = \"60s\""]);
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect(&node)).collect();
    // Accepted in order, so the fifth finds every slot taken.
    let mut fifth = connect(&node);
    let answer = read_answer(&mut fifth);
    answer.assert_error(503, "overloaded");
    assert!(
        answer.headers.contains("retry-after: 1"),
        "{}",
        answer.headers
    );
    wait_closed(&mut fifth, READ_LIMIT);
    // The held connections are served as usual.
    held[0].write_all(&get("/v1/status")).unwrap();
    assert_eq!(read_answer(&mut held[0]).status, 200);
    // Once one of them closes, a new client gets in.
    drop(held.pop());
    let started = Instant::now();
    let status = loop {
        let mut s = connect(&node);
        s.write_all(&get("/v1/status")).unwrap();
        let status = read_answer(&mut s).status;
        if status != 503 || started.elapsed() > Duration::from_secs(10) {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 200);
    // Asked on a held connection: new ones may still find every slot taken.
    held[0].write_all(&get("/metrics")).unwrap();
    let metrics = read_answer(&mut held[0]);
    assert_counted(&String::from_utf8_lossy(&metrics.body), "max_connections");
}

#[test]
fn requests_over_the_in_flight_cap_get_503_at_once() {
    let (_net, files, node) = node_with(&["max_in_flight = 1"]);
    let body = serde_json::to_vec(&json!([vacancy("V-1", 1)])).unwrap();
    // Hold the one slot: an ingest whose body is still coming. Every probe is then
    // refused at once.
    let (mut held, refused) = hold_the_slot(&node, &files, &body, || {
        let mut s = connect(&node);
        s.write_all(&get("/v1/status")).unwrap();
        read_answer(&mut s)
    });
    refused.assert_error(503, "overloaded");
    assert!(
        refused.headers.contains("retry-after: 1"),
        "{}",
        refused.headers
    );
    // The held request completes undisturbed, and then requests pass again.
    held.write_all(&body[10..]).unwrap();
    let answer = read_answer(&mut held);
    assert_eq!(answer.status, 200, "{:?}", answer.json());
    assert_eq!(answer.json()["accepted"][0]["id"], "V-1");
    let (status, _) = Http::new().get(&node.url("/v1/status"));
    assert_eq!(status, 200);
    assert_refused(&node, "max_in_flight");
}

/// `/metrics` counts at least one refusal for `reason`.
fn assert_refused(node: &RunningNode, reason: &str) {
    let (_, text) = Http::new().get_text(&node.url("/metrics"));
    assert_counted(&text, reason);
}

fn assert_counted(text: &str, reason: &str) {
    let line = format!("api_refused_total{{reason=\"{reason}\"}} ");
    let count: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line:?} in /metrics"))
        .trim()
        .parse()
        .unwrap();
    assert!(count >= 1, "{line}{count}");
}

/// `[0,0,…]` of `values` tiny values, or the same inside one record when `nested`.
fn tiny_values(values: usize, nested: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(values * 2 + 4);
    body.extend_from_slice(if nested { b"[[" } else { b"[" });
    for _ in 0..values - 1 {
        body.extend_from_slice(b"0,");
    }
    body.extend_from_slice(if nested { b"0]]" } else { b"0]" });
    body
}

/// Runs `work` while sampling process `pid`'s RSS every 5 ms; returns its result and the
/// highest RSS seen.
fn peak_rss<T: Send>(pid: u32, work: impl FnOnce() -> T + Send) -> (T, u64) {
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut top = 0;
            while !done.load(Relaxed) {
                top = top.max(common::try_rss(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            top
        });
        let out = work();
        done.store(true, Relaxed);
        let top = sampler.join().unwrap();
        (out, top.max(common::try_rss(pid).unwrap_or(0)))
    })
}

#[test]
fn a_body_of_millions_of_tiny_values_gets_413_without_growing_memory() {
    let (_net, files, node) = node_with(&[]);
    let pid = node.child.id();
    let url = node.url("/v1/records");
    let http = Http::new();
    // Warm up the paths a request takes before the baseline.
    let (status, _) = http.post(&url, &files.token, &json!([vacancy("V-1", 1)]));
    assert_eq!(status, 200);
    let flat = tiny_values(8_000_000, false);
    let nested = tiny_values(8_000_000, true);
    assert!(flat.len() < 16 << 20, "under the default body limit");
    let post = |body: &Vec<u8>| {
        Http::with_timeout(Duration::from_secs(120))
            .post_raw(&url, Some(&files.token), body.clone())
            .unwrap()
    };
    let baseline = common::rss(pid);
    // One at a time: all values in one array, then all in one record.
    let (answers, one) = peak_rss(pid, || [post(&flat), post(&nested)]);
    for ((status, answer), kind) in answers
        .iter()
        .zip(["too_many_records", "too_many_elements"])
    {
        assert_eq!(
            (*status, answer["error"].as_str()),
            (413, Some(kind)),
            "{answer}"
        );
    }
    // Eight at once.
    let (flat, nested, post) = (&flat, &nested, &post);
    let (answers, eight) = peak_rss(pid, || {
        std::thread::scope(|scope| {
            let posts: Vec<_> = (0..8)
                .map(|i| scope.spawn(move || post(if i % 2 == 0 { flat } else { nested })))
                .collect();
            posts
                .into_iter()
                .map(|p| p.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    for (status, answer) in &answers {
        assert_eq!(*status, 413, "{answer}");
    }
    let (one, eight) = (one.saturating_sub(baseline), eight.saturating_sub(baseline));
    println!(
        "api_limits: 8 M tiny values: RSS {} KiB before; peak +{} KiB one body at a time, +{} KiB eight at once",
        baseline >> 10,
        one >> 10,
        eight >> 10
    );
    // Before the fix one such body took 280 MB and eight 882 MB. Now each is refused
    // after its first 10,001 values (20 KB), its rest read and dropped chunk by chunk;
    // 8 MiB is room for tokio's and the allocator's per-thread buffers, a thirtieth of one
    // unbounded body.
    for grown in [one, eight] {
        assert!(grown < 8 << 20, "RSS grew {} KiB", grown >> 10);
    }
    let digest = http.get(&node.url("/v1/digest")).1;
    assert_eq!(
        digest["records"], 1,
        "nothing of the refused bodies was stored"
    );
}

#[test]
fn uris_and_headers_over_the_limits_get_json_414_and_431() {
    let (_net, _files, node) = node_with(&[]);
    let mut s = connect(&node);
    s.write_all(&get(&format!(
        "/v1/records/440100/vacancy/{}",
        "x".repeat(20_000)
    )))
    .unwrap();
    read_answer(&mut s).assert_error(414, "uri_too_long");

    let mut s = connect(&node);
    let big = format!(
        "GET /v1/status HTTP/1.1\r\nHost: lmsync\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    s.write_all(big.as_bytes()).unwrap();
    read_answer(&mut s).assert_error(431, "headers_too_large");

    let mut s = connect(&node);
    let many: String = (0..80).map(|i| format!("X-H{i}: v\r\n")).collect();
    s.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: lmsync\r\n{many}\r\n").as_bytes())
        .unwrap();
    read_answer(&mut s).assert_error(431, "headers_too_large");

    // A head that fills hyper's 64 KiB buffer unfinished never reaches the API: hyper
    // answers a bare 431 and closes (documented in api.md). One read can overshoot the
    // buffer, so a head of 64-128 KiB may still get the JSON 431 above; 1 MiB cannot.
    let mut s = connect(&node);
    let huge = format!(
        "GET /v1/status HTTP/1.1\r\nHost: lmsync\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let _ = s.write_all(huge.as_bytes());
    let answer = read_answer(&mut s);
    assert_eq!((answer.status, answer.body.len()), (431, 0), "{answer:?}");
}

#[test]
fn shutdown_finishes_the_request_in_flight_and_closes_idle_connections() {
    let (_net, files, mut node) = node_with(&["max_in_flight = 1"]);
    let body = serde_json::to_vec(&json!([vacancy("V-1", 1)])).unwrap();
    let mut idle = connect(&node);
    idle.write_all(&get("/v1/status")).unwrap();
    assert_eq!(read_answer(&mut idle).status, 200);
    let mut silent = connect(&node);
    // The held request is in progress once other requests are refused.
    let (mut held, _) = hold_the_slot(&node, &files, &body, || {
        idle.write_all(&get("/v1/digest")).unwrap();
        read_answer(&mut idle)
    });
    let pid = node.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(killed.unwrap().success());
    // Idle and silent connections are closed at once, not at their timeouts.
    assert!(wait_closed(&mut idle, READ_LIMIT) < Duration::from_secs(5));
    assert!(wait_closed(&mut silent, READ_LIMIT) < Duration::from_secs(5));
    // The request in flight completes, durably, and then the node exits cleanly.
    held.write_all(&body[10..]).unwrap();
    let answer = read_answer(&mut held);
    assert_eq!(answer.status, 200, "{answer:?}");
    let started = Instant::now();
    let code = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(started.elapsed() < READ_LIMIT, "the node did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}

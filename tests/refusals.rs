//! A child whose certificate its parent refuses (expired, not yet valid, from a foreign
//! CA) backs off to minutes instead of retrying several times a second forever, logs one
//! ERROR naming the reason and what to do, and shows the refusal in its status and on its
//! dashboard; `config check` warns about the certificate before anything runs. A parent
//! that cannot be reached at all is logged once at WARN, not on every retry.
//!
//! Real processes: a province and a city `lmsync run`, the city's certificate swapped for
//! a bad one after `lmsync init`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Days, Utc};
use common::{Http, Network, NodeFiles, RunningNode, bin, eventually, lmsync};

const PROVINCE: &str = "440000";
const CITY: &str = "440100";

/// Attempts observed before the checks: the waits before them add up to 3.75 s.
const ATTEMPTS: u64 = 5;
/// The longest a test waits for those attempts.
const BOUND: Duration = Duration::from_secs(60);

/// Replaces `files`' certificate and key with ones issued by the CA in `ca_dir` for the
/// given validity.
fn swap_certificate(
    net: &Network,
    ca_dir: &Path,
    from: chrono::NaiveDate,
    until: chrono::NaiveDate,
) {
    let fresh = net.path().join("fresh-cert");
    lmsync::node::pki::issue_between(ca_dir, CITY.parse().unwrap(), &fresh, from, until).unwrap();
    let pki = net.path().join(format!("pki-{CITY}"));
    for name in ["node.crt", "node.key"] {
        std::fs::copy(fresh.join(name), pki.join(name)).unwrap();
    }
}

/// Starts the city with its log (JSON lines at info) in `log`.
fn start_logged(files: &NodeFiles, log: &Path) -> RunningNode {
    let mut command = bin();
    command
        .args(["run", "--config", files.config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    RunningNode::when_ready(command.spawn().unwrap())
}

/// The city's view of its parent link once it has been refused [`ATTEMPTS`] times.
fn refused_link(http: &Http, city: &RunningNode) -> serde_json::Value {
    let mut link = serde_json::Value::Null;
    eventually("the city is refused enough times", BOUND, || {
        link = http.get(&city.url("/v1/status")).1["parent"].clone();
        link["refused"]["attempts"].as_u64() >= Some(ATTEMPTS)
    });
    link
}

fn timestamp(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Runs one case: the city with a certificate the province refuses.
fn refused_case(case: &str, bad_cert: impl FnOnce(&Network), advice: &str, check_warning: &str) {
    let net = Network::new();
    let province_files = net.init(PROVINCE, None);
    let province = RunningNode::start(&province_files);
    let quic = province.quic.clone().unwrap();
    let city_files = net.init(CITY, Some(&format!("{PROVINCE}@{quic}")));
    bad_cert(&net);

    let check = lmsync(&[
        "config",
        "check",
        "--config",
        city_files.config.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        said.contains(check_warning),
        "{case}: config check says {said}"
    );

    let log = net.path().join("city.log");
    let city = start_logged(&city_files, &log);
    let http = Http::new();
    let link = refused_link(&http, &city);
    let refused = &link["refused"];
    assert_eq!(
        link["connected"],
        serde_json::json!(false),
        "{case}: {link}"
    );
    assert!(
        refused["advice"].as_str().unwrap().contains(advice),
        "{case}: {refused}"
    );
    // Backing off: the next attempt lies at least as far ahead as the wait before the
    // fifth attempt (2 s) minus the time it took to read the status.
    let now = Utc::now();
    let ahead = timestamp(&refused["next_attempt"]) - now;
    assert!(
        ahead.num_milliseconds() > 1_000,
        "{case}: the next attempt is only {ahead} away: {refused}"
    );
    let attempts = refused["attempts"].as_u64().unwrap();
    let since = timestamp(&refused["since"]);
    let per_second = attempts as f64 / (now - since).num_milliseconds().max(1) as f64 * 1000.0;
    assert!(
        per_second < 2.0,
        "{case}: {attempts} attempts since {since}: {per_second:.1}/s"
    );

    let (_, page) = http.get_text(&city.url("/"));
    assert!(
        page.contains("refused ("),
        "{case}: the dashboard shows the refusal"
    );

    let errors = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("The parent refused this node"))
        .count();
    if errors != 1 {
        eprintln!("{}", std::fs::read_to_string(&log).unwrap());
    }
    assert_eq!(errors, 1, "{case}: one ERROR for one refusal, then quiet");
    println!(
        "refusals case={case} attempts={attempts} rate_per_s={per_second:.2} next_attempt_in_ms={} errors_logged={errors}",
        ahead.num_milliseconds()
    );
    drop(city);
    drop(province);
}

#[test]
fn an_expired_certificate_backs_off_and_says_so() {
    let today = Utc::now().date_naive();
    refused_case(
        "expired",
        |net| {
            let ca = net.path().join("ca");
            swap_certificate(net, &ca, today - Days::new(400), today - Days::new(35));
        },
        "expired or not yet valid",
        "the certificate expired on",
    );
}

#[test]
fn a_certificate_not_yet_valid_backs_off_and_says_so() {
    let today = Utc::now().date_naive();
    refused_case(
        "not_yet_valid",
        |net| {
            let ca = net.path().join("ca");
            swap_certificate(net, &ca, today + Days::new(30), today + Days::new(400));
        },
        "expired or not yet valid",
        "the certificate is not valid until",
    );
}

#[test]
fn a_certificate_from_a_foreign_ca_backs_off_and_says_so() {
    let today = Utc::now().date_naive();
    refused_case(
        "foreign_ca",
        |net| {
            let foreign = net.path().join("foreign-ca");
            let out = Command::new(env!("CARGO_BIN_EXE_lmsync"))
                .args(["pki", "init", "--dir", foreign.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(out.status.success());
            swap_certificate(net, &foreign, today - Days::new(1), today + Days::new(365));
        },
        "CA",
        "was not issued by the CA in tls.ca",
    );
}

#[test]
fn config_check_warns_of_a_certificate_expiring_within_thirty_days() {
    let net = Network::new();
    let files = net.init(CITY, None);
    let today = Utc::now().date_naive();
    swap_certificate(
        &net,
        &net.path().join("ca"),
        today - Days::new(300),
        today + Days::new(10),
    );
    let out = lmsync(&[
        "config",
        "check",
        "--config",
        files.config.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("! tls.cert: the certificate expires on"),
        "{said}"
    );

    // `init` warns as well, before the node ever runs.
    let pki = net.path().join("pki-440300");
    let until = today + Days::new(10);
    lmsync::node::pki::issue_between(
        &net.path().join("ca"),
        "440300".parse().unwrap(),
        &pki,
        today,
        until,
    )
    .unwrap();
    let p = |name: &str| net.path().join(name).to_str().unwrap().to_string();
    let out = lmsync(&[
        "init",
        "--node",
        "440300",
        "--pki",
        &p("pki-440300"),
        "--data",
        &p("data-440300"),
        "--config",
        &p("440300.toml"),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("! tls.cert: the certificate expires on"),
        "{said}"
    );
}

/// A parent that cannot be reached (its name does not resolve) is logged once at WARN,
/// with its address and the reason, however many times the city retries; the retries
/// show in the link's status.
#[test]
fn an_unreachable_parent_is_logged_once_per_state_change() {
    let net = Network::new();
    let files = net.init(CITY, Some(&format!("{PROVINCE}@nowhere.invalid:7400")));
    let log = net.path().join("city.log");
    let city = start_logged(&files, &log);
    let http = Http::new();
    eventually("several failed attempts", BOUND, || {
        let link = http.get(&city.url("/v1/status")).1["parent"].clone();
        link["sessions_broken"].as_u64() >= Some(3)
    });
    drop(city);
    let text = std::fs::read_to_string(&log).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("No session with the parent"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one WARN for one state, then quiet:\n{text}"
    );
    assert!(
        warnings[0].contains("nowhere.invalid:7400"),
        "{}",
        warnings[0]
    );
}

//! The dashboard: served at `/` by every node, showing the tree below a province or the
//! ministry; loaded in a real headless Chromium, which also takes a screenshot.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Http, Network, RunningNode, chromium, headless, lmsync_ok};

#[test]
fn the_ministry_dashboard_shows_every_city_under_its_province() {
    let net = Network::new();
    let m = net.init("100000", None);
    let mr = RunningNode::start(&m);
    let mut provinces = Vec::new();
    for p in ["440000", "320000"] {
        let files = net.init(p, Some(&format!("100000@{}", mr.quic.clone().unwrap())));
        provinces.push(RunningNode::start(&files));
    }
    let mut cities = Vec::new();
    for (c, p) in [("440100", 0), ("440300", 0), ("320581", 1)] {
        let files = net.init(
            c,
            Some(&format!(
                "{}@{}",
                ["440000", "320000"][p],
                provinces[p].quic.clone().unwrap()
            )),
        );
        let run = RunningNode::start(&files);
        let text = lmsync_ok(&["gen", "--node", c, "--records", "100", "--seed", "1"]);
        let path = net.path().join(format!("{c}.jsonl"));
        std::fs::write(&path, text).unwrap();
        lmsync_ok(&[
            "import",
            "--config",
            files.config.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        cities.push((c, run));
    }
    let http = Http::new();
    let start = Instant::now();
    for (c, run) in &cities {
        let want = http.get(&run.url(&format!("/v1/digest?owner={c}"))).1;
        while http.get(&mr.url(&format!("/v1/digest?owner={c}"))).1 != want {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{c} never reached the ministry"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let (status, page) = http.get_text(&mr.url("/"));
    assert_eq!(status, 200);
    for (c, p) in [
        ("440100", "440000"),
        ("440300", "440000"),
        ("320581", "320000"),
    ] {
        assert!(
            page.contains(&format!("data-node=\"{c}\" data-parent=\"{p}\"")),
            "{c} under {p}:\n{page}"
        );
    }
    assert!(
        page.contains("connected, in sync") && page.contains("广东省"),
        "{page}"
    );
    let (_, city_page) = http.get_text(&cities[0].1.url("/"));
    assert!(
        city_page.contains("id=\"parent\"") && city_page.contains("acked by ministry"),
        "{city_page}"
    );

    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install Chromium (.ci/run does)"
        );
        println!("SKIPPED the browser part: no Chromium here (apt-get install chromium)");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let dom = headless(&browser, profile.path(), &["--dump-dom", &mr.url("/")]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for c in ["440100", "440300", "320581"] {
        assert!(
            dom.contains(&format!("data-node=\"{c}\"")),
            "the browser shows {c}:\n{dom}"
        );
    }
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ministry-dashboard.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &browser,
        profile.path(),
        &[
            "--window-size=1280,1000",
            &format!("--screenshot={}", shot.display()),
            &mr.url("/"),
        ],
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "no screenshot at {}", shot.display());
    println!("dashboard screenshot: {}", shot.display());
}

/// A configured name is text the operator typed: the page shows it, never runs it.
#[test]
fn the_dashboard_escapes_the_text_it_shows() {
    let net = Network::new();
    let files = net.init("440100", None);
    let config = std::fs::read_to_string(&files.config).unwrap();
    let line = config.lines().find(|l| l.starts_with("name = ")).unwrap();
    let hostile = r#"name = "<script>alert('x')</script> & \"quoted\"""#;
    std::fs::write(&files.config, config.replace(line, hostile)).unwrap();
    let node = RunningNode::start(&files);
    let (status, page) = Http::new().get_text(&node.url("/"));
    assert_eq!(status, 200);
    // maud escapes `&`, `<`, `>` and `"`; a `'` stays, harmless outside attributes.
    let escaped = "&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;quoted&quot;";
    assert!(
        page.contains(&format!("<title>lmsync 440100 {escaped}</title>")),
        "{page}"
    );
    assert!(page.contains(&format!("<h1>{escaped} <small>")), "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
    assert_eq!(page.matches("<script>").count(), 1, "only the sort script");
}

#[test]
fn the_demo_converges_and_exits_zero() {
    let out = common::lmsync(&[
        "demo",
        "--cities",
        "4",
        "--records",
        "300",
        "--exit-when-converged",
        "--timeout",
        "120s",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("converged: every owner's digest is equal"),
        "{stdout}"
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.ends_with("市") || l.contains(" yes "))
        .collect();
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" yes ")).count(),
        4,
        "{stdout}"
    );
    assert!(!stdout.contains(" NO "), "{rows:?}");
    assert!(stdout.contains("320581"), "a county-level city takes part");
    // Not on a terminal, the demo says how far it is in plain lines.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("progress: ") && stderr.contains("records stored at the cities"),
        "{stderr}"
    );
    // The summary says how the target stands, not only that it was published.
    assert!(
        stdout.contains("target M01-online-rate")
            && stdout.contains(" is published at all 4 cities"),
        "{stdout}"
    );
}

#[test]
fn the_running_demo_serves_a_ministry_dashboard_with_every_city() {
    use std::io::{BufRead, BufReader};
    let mut child = common::bin()
        .args(["demo", "--cities", "4", "--records", "200"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Read until the dashboard list; the ministry's comes first.
    let (mut ministry, mut target) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("target M01-online-rate") {
            target = Some(line.clone());
        }
        if line.trim_start().starts_with("100000 http://") {
            ministry = line.split_whitespace().nth(1).map(String::from);
            break;
        }
    }
    let url = ministry.expect("the demo printed the ministry's dashboard");
    let (status, page) = Http::new().get_text(&url);
    assert_eq!(status, 200);
    // The demo's summary of the target agrees with the ministry's dashboard.
    let target = target.expect("the demo printed how its target stands");
    let count = |after: &str| -> usize {
        target
            .split(after)
            .nth(1)
            .and_then(|r| r.split([' ', ',']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{target}"))
    };
    let (met, missed) = (count("met at "), count("missed at "));
    let chart_title = page
        .split("<b>M01</b>")
        .nth(1)
        .and_then(|r| r.split("</p>").next())
        .unwrap_or_else(|| panic!("the dashboard charts M01 per city:\n{page}"));
    assert!(
        chart_title.contains(&format!("met at {met} of {} cities", met + missed)),
        "demo: {target}\ndashboard: {chart_title}"
    );
    for id in [
        "id=\"alerts\"",
        "id=\"legend\"",
        "id=\"records-per-day\"",
        "id=\"lag-over-time\"",
        "data-metric=\"M01\"",
    ] {
        assert!(page.contains(id), "the dashboard has {id}:\n{page}");
    }
    for (c, p) in [
        ("440100", "440000"),
        ("440300", "440000"),
        ("320200", "320000"),
        ("320581", "320000"),
    ] {
        assert!(
            page.contains(&format!("data-node=\"{c}\" data-parent=\"{p}\"")),
            "{c} under {p}"
        );
    }
    if let Some(browser) = chromium() {
        let profile = tempfile::tempdir().unwrap();
        let dom = headless(&browser, profile.path(), &["--dump-dom", &url]);
        let dom = String::from_utf8_lossy(&dom.stdout);
        for id in [
            "id=\"alerts\"",
            "id=\"records-per-day\"",
            "data-metric=\"M01\"",
        ] {
            assert!(dom.contains(id), "the browser shows {id}");
        }
        // A phone, a wall display, and the whole page down to the charts.
        for (name, size) in [
            ("phone", "390,844"),
            ("wall", "1920,1080"),
            ("full", "1280,4200"),
        ] {
            let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("demo-ministry-dashboard-{name}.png"));
            let _ = std::fs::remove_file(&shot);
            headless(
                &browser,
                profile.path(),
                &[
                    &format!("--window-size={size}"),
                    &format!("--screenshot={}", shot.display()),
                    &url,
                ],
            );
            assert!(std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) > 10_000);
            println!("demo dashboard screenshot ({name}): {}", shot.display());
        }
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "Ctrl-C stops the demo cleanly"
    );
}

//! The public information service with real processes: a city fed with generated office
//! records serves its vacancy board, the market report, its offices and the display
//! screen on its own listener; searches by occupation, area and wage return only what
//! matches; the board follows new records; nothing private is ever shown; only reads are
//! served, a client over its rate gets 429, and answers carry ETags. At the ministry the
//! board spans every city below it.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Http, Network, NodeFiles, RunningNode, eventually, lmsync_ok};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

/// Gives `files` a public listener on an ephemeral port, with a generous rate limit.
fn with_public(files: &NodeFiles, per_second: u32, burst: u32) {
    let text = std::fs::read_to_string(&files.config).unwrap();
    std::fs::write(
        &files.config,
        format!(
            "{text}\n[public]\nlisten = \"127.0.0.1:0\"\nrequests_per_second = {per_second}\nburst = {burst}\n"
        ),
    )
    .unwrap();
}

/// Feeds generated records to a city; returns the records posted.
fn feed(net: &Network, files: &NodeFiles, records: u32, seed: u32) -> Vec<Value> {
    let text = lmsync_ok(&[
        "gen",
        "--node",
        &files.code,
        "--records",
        &records.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    let path = net.path().join(format!("{}-{seed}.jsonl", files.code));
    std::fs::write(&path, &text).unwrap();
    lmsync_ok(&[
        "import",
        "--config",
        files.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn public_url(node: &RunningNode, path: &str) -> String {
    format!("{}{path}", node.public.clone().expect("a public listener"))
}

fn search(http: &Http, node: &RunningNode, query: &str) -> Value {
    let (code, answer) = http.get(&public_url(node, &format!("/api/vacancies?{query}")));
    assert_eq!(code, 200, "{query}: {answer}");
    answer
}

fn vacancies(records: &[Value]) -> impl Iterator<Item = &Value> {
    records.iter().filter(|r| r["kind"] == "vacancy")
}

#[test]
fn a_city_serves_its_board_report_offices_and_screen_and_nothing_private() {
    let net = Network::new();
    let files = net.init("440100", None);
    with_public(&files, 1000, 1000);
    let node = RunningNode::start(&files);
    let records = feed(&net, &files, 3000, 7);
    let http = Http::new();
    eventually("the board built and following", LIMIT, || {
        search(&http, &node, "per_page=1")["total"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });

    // Search by occupation prefix, area and wage: every item matches.
    let all = search(&http, &node, "per_page=50");
    let sample = &all["items"][0];
    let occupation = sample["occupation"].as_str().unwrap();
    let major = occupation.split('-').next().unwrap();
    let by_occupation = search(&http, &node, &format!("occupation={major}&per_page=50"));
    assert!(by_occupation["total"].as_u64().unwrap() > 0);
    for v in by_occupation["items"].as_array().unwrap() {
        assert!(v["occupation"].as_str().unwrap().starts_with(major), "{v}");
    }
    let area = sample["area"].as_str().unwrap();
    let by_area = search(&http, &node, &format!("area={area}&per_page=50"));
    for v in by_area["items"].as_array().unwrap() {
        assert_eq!(v["area"], area, "{v}");
    }
    let by_wage = search(&http, &node, "wage_min=2000&per_page=50");
    for v in by_wage["items"].as_array().unwrap() {
        let top = v["wage_max"].as_u64().or(v["wage_min"].as_u64()).unwrap();
        assert!(top >= 2000, "{v}");
    }
    assert_eq!(
        http.get(&public_url(&node, "/api/vacancies?per_page=51")).0,
        400,
        "pages are bounded"
    );
    // A search form sends its empty fields too: they ask for nothing.
    let blank = "q=&occupation=&area=&wage_min=&wage_max=&posted_from=&employer=&sort=newest";
    assert_eq!(
        search(&http, &node, &format!("{blank}&per_page=50"))["total"],
        all["total"]
    );
    let (_, page) = http.get_text(&public_url(&node, &format!("/?{blank}")));
    assert!(
        page.contains("id=\"total\"") && !page.contains("Cannot search"),
        "{page}"
    );

    // A vacancy's detail, as a page and as JSON, names the office to contact.
    let (owner, id) = (
        sample["owner"].as_str().unwrap(),
        sample["id"].as_str().unwrap(),
    );
    let (code, page) = http.get_text(&public_url(&node, &format!("/vacancies/{owner}/{id}")));
    assert_eq!(code, 200);
    assert!(page.contains("联系 Contact"), "{page}");
    assert_eq!(
        http.get(&public_url(&node, &format!("/api/vacancies/{owner}/{id}")))
            .1["id"],
        id
    );

    // Only vacancies whose employer allowed publication, and only while open.
    let listed: BTreeSet<String> = (1..=50)
        .map(|page| search(&http, &node, &format!("per_page=50&page={page}")))
        .take_while(|p| !p["items"].as_array().unwrap().is_empty())
        .flat_map(|p| {
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for v in vacancies(&records) {
        let id = v["id"].as_str().unwrap();
        let publishable = v["data"]["publish_allowed"] == true
            && ["open", "partly_filled"].contains(&v["data"]["fill_state"].as_str().unwrap());
        if !publishable {
            assert!(!listed.contains(id), "{id} may not be public: {v}");
            let (code, _) = http.get(&public_url(&node, &format!("/api/vacancies/440100/{id}")));
            assert_eq!(code, 404, "{id}");
        }
    }

    // Nothing of a person, nor an employer's registration, on any page or answer.
    let mut secrets: Vec<String> = Vec::new();
    for r in &records {
        for field in [
            "citizen_id",
            "pid",
            "name",
            "phone",
            "org_code",
            "uscc",
            "contact_phone",
        ] {
            let public = r["kind"] == "office" || (r["kind"] == "employer" && field == "name");
            if let Some(s) = r["data"][field].as_str().filter(|s| s.len() >= 6)
                && !public
            {
                secrets.push(s.to_string());
            }
        }
    }
    let period = all["date"].as_str().unwrap();
    let quarter = format!(
        "{}Q{}",
        &period[..4],
        (period[5..7].parse::<u32>().unwrap() - 1) / 3 + 1
    );
    let mut pages = vec![
        "/".to_string(),
        "/?per_page=50".into(),
        format!("/?occupation={major}"),
        "/report".into(),
        format!("/report/{quarter}"),
        "/offices".into(),
        "/screen".into(),
        "/screen?page=1".into(),
        format!("/vacancies/{owner}/{id}"),
        "/api/vacancies?per_page=50".into(),
        "/api/offices".into(),
        format!("/api/report/{quarter}"),
    ];
    pages.extend(
        listed
            .iter()
            .take(40)
            .map(|id| format!("/api/vacancies/440100/{id}")),
    );
    for path in &pages {
        let (code, body) = http.get_text(&public_url(&node, path));
        assert_eq!(code, 200, "{path}");
        for s in &secrets {
            assert!(!body.contains(s.as_str()), "{path} shows {s}");
        }
    }

    // The report: 求人倍率 with its chart, small counts withheld.
    let (_, report) = http.get_text(&public_url(&node, &format!("/report/{quarter}")));
    assert!(
        report.contains("求人倍率") && report.contains("id=\"ratio-chart\""),
        "{report}"
    );
    for cell in report.split("<td class=\"num\">").skip(1) {
        let text = cell.split('<').next().unwrap();
        if let Ok(n) = text.parse::<u64>() {
            assert!(
                n == 0 || n >= 5,
                "an unsuppressed small count {n} in the public report"
            );
        }
    }
    let (_, screen) = http.get_text(&public_url(&node, "/screen"));
    assert!(screen.contains("http-equiv=\"refresh\"") && screen.contains("id=\"screen\""));
    let (_, offices) = http.get_text(&public_url(&node, "/offices"));
    assert!(offices.contains("id=\"offices\""));

    in_the_browser(&node, major, area, owner, id, &quarter);
}

/// Search flows, a detail page, the report with its chart and the display screen in a
/// real Chromium, with screenshots on a phone-sized and a wall-sized viewport.
fn in_the_browser(
    node: &RunningNode,
    major: &str,
    area: &str,
    owner: &str,
    id: &str,
    quarter: &str,
) {
    let Some(browser) = common::chromium() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install Chromium (.ci/run does)"
        );
        println!("SKIPPED the browser part: no Chromium here");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let flows = [
        (format!("/?occupation={major}"), "data-vacancy="),
        (format!("/?area={area}"), "data-vacancy="),
        ("/?wage_min=1500&sort=wage".to_string(), "data-vacancy="),
        (format!("/vacancies/{owner}/{id}"), "联系 Contact"),
        (format!("/report/{quarter}"), "id=\"ratio-chart\""),
        ("/screen".to_string(), "id=\"screen\""),
        ("/offices".to_string(), "id=\"offices\""),
    ];
    for (path, expect) in &flows {
        let dom = common::headless(
            &browser,
            profile.path(),
            &["--dump-dom", &public_url(node, path)],
        );
        let dom = String::from_utf8_lossy(&dom.stdout);
        assert!(
            dom.contains(expect),
            "the browser shows {expect} at {path}:\n{dom}"
        );
    }
    for (page, path) in [
        ("board", "/"),
        ("report", &*format!("/report/{quarter}")),
        ("screen", "/screen"),
    ] {
        for (name, size) in [("phone", "390,844"), ("wall", "1920,1080")] {
            let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("public-{page}-{name}.png"));
            let _ = std::fs::remove_file(&shot);
            common::headless(
                &browser,
                profile.path(),
                &[
                    &format!("--window-size={size}"),
                    &format!("--screenshot={}", shot.display()),
                    &public_url(node, path),
                ],
            );
            assert!(
                std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) > 5_000,
                "{}",
                shot.display()
            );
            println!("public {page} ({name}): {}", shot.display());
        }
    }
}

#[test]
fn the_board_follows_commits_and_the_listener_only_reads_within_limits() {
    let net = Network::new();
    let files = net.init("440100", None);
    with_public(&files, 1000, 1000);
    let node = RunningNode::start(&files);
    let http = Http::new();
    // A new publishable vacancy appears; withdrawn, it goes.
    let mut v = common::vacancy("V-public", 3);
    v["data"]["publish_allowed"] = json!(true);
    v["data"]["title"] = json!("养老护理员 夜班");
    let (code, answer) = http.post(&node.url("/v1/records"), &files.token, &json!([v.clone()]));
    assert_eq!(code, 200, "{answer}");
    let url = public_url(&node, "/api/vacancies/440100/V-public");
    eventually("the new vacancy on the board", LIMIT, || {
        http.try_get(&url).is_some_and(|(c, _)| c == 200)
    });
    v["data"]["fill_state"] = json!("withdrawn");
    let (code, answer) = http.post(&node.url("/v1/records"), &files.token, &json!([v]));
    assert_eq!(code, 200, "{answer}");
    eventually("the withdrawn vacancy off the board", LIMIT, || {
        http.try_get(&url).is_some_and(|(c, _)| c == 404)
    });

    // No write path.
    let (code, _) = http
        .post_raw(&public_url(&node, "/api/vacancies"), None, b"{}".to_vec())
        .unwrap();
    assert_eq!(code, 405);
    // ETag and 304.
    let (status, headers, _) = http.get_with(&public_url(&node, "/offices"), None);
    assert_eq!(status, 200);
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let (status, _, _) = http.get_with(&public_url(&node, "/offices"), Some(&etag));
    assert_eq!(status, 304);
}

#[test]
fn a_client_over_its_rate_is_told_to_wait() {
    let net = Network::new();
    let files = net.init("440100", None);
    with_public(&files, 2, 5);
    let node = RunningNode::start(&files);
    let http = Http::new();
    let codes: Vec<u16> = (0..12)
        .map(|_| http.get_with(&public_url(&node, "/screen"), None).0)
        .collect();
    assert_eq!(&codes[..5], &[200; 5], "the burst is served: {codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
}

#[test]
fn the_ministry_board_spans_every_city_below_it() {
    let t = common::tree_with(&["440100", "440300"], |code, text| {
        if code == "100000" {
            format!(
                "{text}\n[public]\nlisten = \"127.0.0.1:0\"\nrequests_per_second = 1000\nburst = 1000\n"
            )
        } else {
            text
        }
    });
    let http = Http::new();
    for (i, (files, node)) in t.cities.iter().enumerate() {
        let mut v = common::vacancy(&format!("V-{i}"), 2);
        v["data"]["publish_allowed"] = json!(true);
        v["data"]["work_location"] = json!(format!("{}04", &files.code[..4]));
        let (code, answer) = http.post(&node.url("/v1/records"), &files.token, &json!([v]));
        assert_eq!(code, 200, "{answer}");
    }
    let ministry = &t.ministry.1;
    eventually(
        "both cities' vacancies on the national board",
        LIMIT,
        || {
            let owners: BTreeSet<String> = search(&http, ministry, "per_page=50")["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["owner"].as_str().unwrap().to_string())
                .collect();
            owners.len() == 2
        },
    );
}

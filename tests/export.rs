//! `lmsync export` on a running three-tier network: generated records of 1999Q3 at two
//! cities (and a few hand-made ones at a third, carried over from 1999Q2 and small
//! enough to be withheld), synced to the ministry, exported there as Parquet and read back
//! with DuckDB (Python): table 1 of the quarterly report, computed by the query that
//! docs/ANALYTICS.md gives, equals the node's own `GET /v1/reports/1999Q3` at four
//! scopes; no personal field or value is in any file; the partitions are those of the
//! records; `--kind`, `--period` and `--scope` restrict what is written.
//!
//! Needs DuckDB for Python (`pip install duckdb`, which `.ci/run` does); without it the
//! test fails and says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{Value, json};

/// The seed of the generated records (the same on every run; printed on failure).
const SEED: &str = "5";
/// Generated records of the first city (enough for every kind) and of the second.
const RECORDS: [&str; 2] = ["20000", "3000"];

/// What DuckDB reads of an export: each kind's columns, rows per partition, table 1
/// per scope by the documented query, and how many text cells hold a forbidden value.
const READ_BACK: &str = r#"
import json, os, sys
try:
    import duckdb
except ImportError:
    print("NO_DUCKDB")
    sys.exit(3)
root, sql, scopes, bad = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.load(open(sys.argv[4]))
examples = json.loads(sys.argv[5])
os.chdir(root)
con = duckdb.connect()
con.execute("CREATE TABLE bad (v VARCHAR)")
con.executemany("INSERT INTO bad VALUES (?)", [[b] for b in bad])
out = {"schemas": {}, "partitions": [], "personal_hits": 0, "table1": {}, "examples": []}
for k in sorted(d[len("kind="):] for d in os.listdir(".") if d.startswith("kind=")):
    files = f"kind={k}/*/*/*.parquet"
    cols = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{files}', hive_partitioning = false)").fetchall()
    out["schemas"][k] = [[c[0], c[1]] for c in cols]
    texts = [c[0] for c in cols if c[1] == "VARCHAR"]
    cond = " OR ".join(f'"{c}" IN (SELECT v FROM bad)' for c in texts)
    out["personal_hits"] += con.execute(f"SELECT count(*) FROM read_parquet('{files}') WHERE {cond}").fetchone()[0]
    for q, c, n in con.execute(
        f"SELECT quarter, city, count(*) FROM read_parquet('{files}', hive_partitioning = true, "
        "hive_types_autocast = false) GROUP BY ALL"
    ).fetchall():
        out["partitions"].append([k, q, c, n])
for scope in scopes:
    out["table1"][scope] = [list(r) for r in con.execute(sql.replace("'100000' AS scope", f"'{scope}' AS scope")).fetchall()]
for block in examples:
    for statement in [q for q in block.split(";\n") if q.strip()]:
        out["examples"].append(len(con.sql(statement).fetchall()))
print(json.dumps(out))
"#;

/// The table-1 query of docs/ANALYTICS.md (the block after its marker).
fn table1_query() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ANALYTICS.md"))
            .unwrap();
    let after = doc
        .split("<!-- table-1 query")
        .nth(1)
        .expect("docs/ANALYTICS.md has the table-1 query marker");
    let block = after.split("```sql\n").nth(1).unwrap();
    block.split("\n```").next().unwrap().to_string()
}

/// The other DuckDB queries of docs/ANALYTICS.md and of an export's README: every SQL
/// block that reads the files.
fn example_queries(readme: &str) -> Vec<String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ANALYTICS.md"))
            .unwrap();
    let blocks: Vec<String> = [doc.as_str(), readme]
        .iter()
        .flat_map(|text| text.split("```sql\n").skip(1))
        .filter_map(|b| b.split("\n```").next())
        .filter(|b| b.contains("read_parquet(") && !b.contains("WITH params"))
        .map(str::to_string)
        .collect();
    assert!(
        blocks.len() >= 2,
        "the docs hold DuckDB queries: {blocks:?}"
    );
    blocks
}

/// Runs [`READ_BACK`] on the export in `dir`.
fn duckdb(dir: &Path, scopes: &[&str], bad: &[String]) -> Value {
    let readme = std::fs::read_to_string(dir.join("_README.md")).unwrap();
    let bad_file = dir.with_extension("bad.json");
    std::fs::write(&bad_file, serde_json::to_vec(bad).unwrap()).unwrap();
    let out = Command::new("python3")
        .args(["-c", READ_BACK])
        .arg(dir)
        .arg(table1_query())
        .arg(serde_json::to_string(scopes).unwrap())
        .arg(&bad_file)
        .arg(serde_json::to_string(&example_queries(&readme)).unwrap())
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("NO_DUCKDB"),
        "DuckDB for Python is not installed: run `pip install duckdb` (.ci/run does) and \
         run this test again"
    );
    assert!(
        out.status.success(),
        "the DuckDB read-back failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

/// `lmsync export` at `config` into `out` with `extra` flags; returns the manifest.
fn export(config: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "export",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend(extra);
    let summary = lmsync_ok(&args);
    assert!(summary.starts_with("Exported "), "{summary}");
    let text = std::fs::read_to_string(out.join("_manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every file under `dir`, relative to it.
fn files_in(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap();
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// `(kind, quarter, city) → rows` of a manifest.
fn partitions(manifest: &Value) -> BTreeMap<(String, String, String), u64> {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let key = (
                f["kind"].as_str().unwrap().to_string(),
                f["quarter"].as_str().unwrap().to_string(),
                f["city"].as_str().unwrap().to_string(),
            );
            (key, f["rows"].as_u64().unwrap())
        })
        .collect()
}

/// The hand-made records of city 440200: two one-person vacancies carried over from
/// 1999Q2, ten new in 1999Q3, a voided one, and four job seekers new in 1999Q3.
fn small_city_records() -> Vec<Value> {
    let mut records = Vec::new();
    let mut vacancy = |id: String, from: &str, status: &str| {
        let mut v = owned_vacancy("440200", &id, 1);
        v["data"]["valid_from"] = json!(from);
        v["data"]["reported_on"] = json!(from);
        v["data"]["valid_until"] = json!("1999-12-31");
        v["data"]["published_online_on"] = json!(from);
        if status == "voided" {
            v["status"] = json!("voided");
            v["data"]["headcount"] = json!(7);
        }
        records.push(v);
    };
    for n in 0..2 {
        vacancy(format!("V-Q2-{n}"), "1999-06-01", "active");
    }
    for n in 0..10 {
        vacancy(format!("V-Q3-{n}"), "1999-08-02", "active");
    }
    vacancy("V-VOID".into(), "1999-08-02", "voided");
    for n in 0..4 {
        records.push(
            json!({"kind": "job_seeker", "id": format!("S-{n}"), "data": {
                "citizen_id": citizen_id(&format!("4402031970031512{n}")),
                "name": "李四", "phone": "13900000000",
                "sex": "female", "birth_year": 1970, "residence_division": "440203",
                "hukou_class": "local_urban", "desired_occupations": ["6-04"],
                "category": "laid_off", "registered_on": "1999-08-01", "valid_until": "1999-10-31"
            }}),
        );
    }
    records
}

/// Citizen IDs and phone numbers the generated and hand-made records carried: none may
/// be in an export.
fn identifying_values(jsonl: &[String], hand_made: &[Value]) -> Vec<String> {
    let mut out = BTreeSet::new();
    let lines = jsonl
        .iter()
        .flat_map(|text| text.lines())
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    for r in lines.chain(hand_made.iter().cloned()) {
        for field in ["citizen_id", "phone", "contact_phone"] {
            if let Some(v) = r["data"][field].as_str() {
                out.insert(v.to_string());
            }
        }
    }
    assert!(
        out.len() > 100,
        "the sample names persons ({} values)",
        out.len()
    );
    out.into_iter().collect()
}

/// A published table 1 row as the query's row gives it: `[demand, seekers, ratio]`,
/// a withheld cell as `{"suppressed": true}`.
fn cells_of(row: &Value) -> (String, Value) {
    let r = row.as_array().unwrap();
    let withheld = json!({"suppressed": true});
    let cell = |value: &Value, flag: &Value| {
        if flag.as_bool().unwrap() {
            withheld.clone()
        } else {
            value.clone()
        }
    };
    let cells = json!([cell(&r[1], &r[4]), cell(&r[2], &r[5]), cell(&r[3], &r[6])]);
    (r[0].as_str().unwrap().to_string(), cells)
}

#[test]
fn an_export_reproduces_table_1_and_holds_nothing_personal() {
    let t = tree(&["440100", "440300", "440200"]);
    let http = Http::new();
    let context = format!("seed {SEED}, {RECORDS:?} records at 440100 and 440300");
    let mut generated = Vec::new();
    for ((files, _), records) in t.cities.iter().zip(RECORDS) {
        let text = lmsync_ok(&[
            "gen",
            "--node",
            &files.code,
            "--records",
            records,
            "--seed",
            SEED,
        ]);
        let path = t.net.path().join(format!("{}.jsonl", files.code));
        std::fs::write(&path, &text).unwrap();
        lmsync_ok(&[
            "import",
            "--config",
            files.config.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        generated.push(text);
    }
    let small = small_city_records();
    let (files, city) = &t.cities[2];
    let (status, answer) = http.post(&city.url("/v1/records"), &files.token, &json!(small));
    assert_eq!(status, 200, "{answer}");
    converged(&http, &t);

    let ministry = &t.ministry.0;
    let root = t.net.path().join("export-all");
    let manifest = export(&ministry.config, &root, &[]);
    assert_eq!(manifest["node"], "100000");
    assert_eq!(manifest["scope"], "national");
    assert_eq!(manifest["period"], Value::Null);

    // Every record the ministry holds, each kind's rows, every file listed and on disk.
    let held = http.get(&t.ministry.1.url("/v1/status")).1;
    assert_eq!(manifest["records"], held["records"]["total"], "{context}");
    for (kind, n) in held["records"]["by_kind"].as_object().unwrap() {
        assert_eq!(manifest["rows_by_kind"][kind], *n, "{kind} ({context})");
    }
    let on_disk = files_in(&root);
    let listed: BTreeSet<String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_string())
        .chain(["_manifest.json".into(), "_README.md".into()])
        .collect();
    assert_eq!(on_disk, listed, "the files are those the manifest lists");
    for city in ["440100", "440300"] {
        for (kind, quarter) in [
            ("vacancy", "1999Q3"),
            ("job_seeker", "1999Q3"),
            ("office", "all"),
            ("employer", "all"),
        ] {
            let part = format!("kind={kind}/quarter={quarter}/city={city}/part-0.parquet");
            assert!(on_disk.contains(&part), "{part} ({context})");
        }
    }
    assert!(on_disk.contains("kind=vacancy/quarter=1999Q2/city=440200/part-0.parquet"));

    // DuckDB reads it back.
    let bad = identifying_values(&generated, &small);
    let scopes = ["100000", "440000", "440100", "440200"];
    let read = duckdb(&root, &scopes, &bad);
    assert_eq!(
        read["personal_hits"], 0,
        "a citizen ID or phone is in a file"
    );
    let personal = [
        "citizen_id",
        "name_of_person",
        "person_name",
        "phone",
        "address",
        "hukou_address",
        "contact_name",
        "contact_phone",
        "bank_account",
    ];
    let person_kinds = [
        "job_seeker",
        "laid_off_episode",
        "unemployment_registration",
        "service_event",
        "placement",
        "ui_benefit_payment",
        "training_enrolment",
    ];
    let schemas = read["schemas"].as_object().unwrap();
    assert_eq!(
        schemas.len(),
        12,
        "every kind has files: {:?}",
        schemas.keys()
    );
    for (kind, cols) in schemas {
        let cols: BTreeMap<&str, &str> = cols
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_str().unwrap(), c[1].as_str().unwrap()))
            .collect();
        for p in personal {
            assert!(!cols.contains_key(p), "{kind} has a column {p}");
        }
        if person_kinds.contains(&kind.as_str()) {
            assert_eq!(
                cols.get("pid"),
                Some(&"VARCHAR"),
                "{kind} keys persons by pid"
            );
            assert!(!cols.contains_key("name"), "{kind} names a person");
        }
        assert_eq!(cols["recorded_at"], "TIMESTAMP WITH TIME ZONE", "{kind}");
        assert_eq!(cols["version"], "BIGINT", "{kind}");
    }
    let vacancy = &schemas["vacancy"];
    let typed = |kind: &Value, name: &str| {
        kind.as_array()
            .unwrap()
            .iter()
            .find(|c| c[0] == name)
            .map(|c| c[1].as_str().unwrap().to_string())
    };
    assert_eq!(typed(vacancy, "valid_from").as_deref(), Some("DATE"));
    assert_eq!(typed(vacancy, "headcount").as_deref(), Some("BIGINT"));
    assert_eq!(typed(vacancy, "wage_min").as_deref(), Some("DECIMAL(18,2)"));
    assert_eq!(
        typed(vacancy, "publish_allowed").as_deref(),
        Some("BOOLEAN")
    );
    assert_eq!(
        typed(vacancy, "published_channels").as_deref(),
        Some("VARCHAR[]")
    );
    assert_eq!(
        typed(&schemas["job_seeker"], "pid_epoch").as_deref(),
        Some("BIGINT")
    );
    assert_eq!(
        typed(&schemas["ui_benefit_payment"], "amount_yuan").as_deref(),
        Some("DECIMAL(18,2)")
    );

    // The partitions DuckDB discovers hold the rows the manifest says.
    let discovered: BTreeMap<(String, String, String), u64> = read["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |i: usize| p[i].as_str().unwrap().to_string();
            ((s(0), s(1), s(2)), p[3].as_u64().unwrap())
        })
        .collect();
    assert_eq!(discovered, partitions(&manifest));

    // Table 1 by the documented query is the node's published table 1.
    for scope in scopes {
        let url = t
            .ministry
            .1
            .url(&format!("/v1/reports/1999Q3?scope={scope}"));
        let (status, report) = http.get(&url);
        assert_eq!(status, 200, "{report}");
        let published = &report["tables"][0];
        assert_eq!(published["id"], "table_1");
        // The quarter's own columns; its changes against earlier quarters come after
        // each of them.
        let own: Vec<usize> = published["columns"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.get("change").is_none())
            .map(|(i, _)| i)
            .collect();
        let expected: Vec<(String, Value)> = published["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let cells: Vec<Value> = own.iter().map(|&i| r["cells"][i].clone()).collect();
                (r["key"].as_str().unwrap().to_string(), Value::from(cells))
            })
            .collect();
        let computed: Vec<(String, Value)> = read["table1"][scope]
            .as_array()
            .unwrap()
            .iter()
            .map(cells_of)
            .collect();
        assert_eq!(computed, expected, "table 1 of {scope} ({context})");
    }
    let withheld = |scope: &str| read["table1"][scope].to_string().contains("true");
    assert!(
        withheld("440200"),
        "the small city's table 1 withholds cells"
    );
    assert!(
        !withheld("440100"),
        "a generated city's table 1 withholds nothing"
    );

    // --kind and --scope: one kind of one city.
    let one = t.net.path().join("export-vacancy-440100");
    let m = export(
        &ministry.config,
        &one,
        &["--kind", "vacancy", "--scope", "440100"],
    );
    let digest = http
        .get(&t.ministry.1.url("/v1/digest?owner=440100&kind=vacancy"))
        .1;
    assert_eq!(m["records"], digest["records"]);
    assert_eq!(m["rows_by_kind"], json!({"vacancy": digest["records"]}));
    for f in files_in(&one).iter().filter(|f| !f.starts_with('_')) {
        assert!(
            f.starts_with("kind=vacancy/quarter=1999Q3/city=440100/"),
            "{f}"
        );
    }

    // --period: what is placed in 1999Q3, and the directory kinds.
    let q3 = t.net.path().join("export-1999Q3");
    let m = export(&ministry.config, &q3, &["--period", "1999Q3"]);
    assert_eq!(m["period"], "1999Q3");
    let expected: BTreeMap<_, _> = partitions(&manifest)
        .into_iter()
        .filter(|((_, q, _), _)| q == "1999Q3" || q == "all")
        .collect();
    assert_eq!(partitions(&m), expected);
    assert!(!files_in(&q3).iter().any(|f| f.contains("1999Q2")));
    let none = t.net.path().join("export-1998Q1");
    let m = export(
        &ministry.config,
        &none,
        &["--period", "1998Q1", "--kind", "vacancy"],
    );
    assert_eq!(m["records"], 0);
    assert_eq!(files_in(&none).len(), 2, "only the manifest and the README");

    // Refusals: a directory in use, a scope outside the node, an unknown kind.
    let out = lmsync(&[
        "export",
        "--config",
        ministry.config.to_str().unwrap(),
        "--format",
        "parquet",
        "--out",
        root.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let province = &t.province.0;
    let elsewhere = t.net.path().join("elsewhere");
    let out = lmsync(&[
        "export",
        "--config",
        province.config.to_str().unwrap(),
        "--out",
        elsewhere.to_str().unwrap(),
        "--scope",
        "450100",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("outside"),
        "{out:?}"
    );
    assert!(
        !elsewhere.exists(),
        "nothing is written for a refused export"
    );
    let out = lmsync(&[
        "export",
        "--config",
        province.config.to_str().unwrap(),
        "--out",
        elsewhere.to_str().unwrap(),
        "--kind",
        "vacancies",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("names no record kind"));

    // The endpoint: the token always, parameters checked.
    let url = t.ministry.1.url("/v1/export?kind=vacancy");
    let (status, body) = http.get(&url);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorised"))
    );
    let (status, body) = http.get_as(
        &t.ministry.1.url("/v1/export?period=1999Q5"),
        &ministry.token,
    );
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_period")));
    let (status, body) = http.get_as(&t.ministry.1.url("/v1/export?kind=nope"), &ministry.token);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unknown_kind"))
    );
}

/// Reads from `stream` until the connection closes (bounded by its read timeout).
fn read_to_close(stream: &mut std::net::TcpStream, into: &mut Vec<u8>) {
    use std::io::Read;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the export did not end: {e} after {} bytes", into.len()),
        }
    }
}

#[test]
fn a_node_that_stops_ends_its_export_with_an_error_line() {
    use std::io::{Read, Write};
    let net = Network::new();
    let files = net.init("440100", Some("440000@127.0.0.1:7400"));
    let node = RunningNode::start(&files);
    // Far more NDJSON (about 15 MB) than socket buffers and the node's chunks ahead hold.
    let text = lmsync_ok(&[
        "gen",
        "--node",
        "440100",
        "--records",
        RECORDS[0],
        "--seed",
        SEED,
    ]);
    let path = net.path().join("440100.jsonl");
    std::fs::write(&path, text).unwrap();
    lmsync_ok(&[
        "import",
        "--config",
        files.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);

    let addr = node.api.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET /v1/export HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        files.token
    )
    .unwrap();
    // The answer has begun; the client then stops reading while the node stops.
    let mut got = vec![0u8; 64 * 1024];
    let n = stream.read(&mut got).unwrap();
    got.truncate(n);
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    node.signal("TERM");
    read_to_close(&mut stream, &mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains(r#"{"error":"shutting_down""#),
        "the stream ends with the error line ({} bytes; ends {:?})",
        got.len(),
        &text[text.len().saturating_sub(300)..]
    );
    assert!(
        !text.contains(r#"{"end":"#),
        "an unfinished export has no end line"
    );
    let mut node = node;
    assert_eq!(
        node.child.wait().unwrap().code(),
        Some(0),
        "the node stopped cleanly"
    );
}

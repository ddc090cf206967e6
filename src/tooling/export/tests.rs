//! Tests of the export writer on generated records of every kind: each record survives
//! the stream's JSON line, fits its schema, and the files read back with the rows and
//! values written, under the partitions they belong to.

use std::collections::{BTreeMap, BTreeSet};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use super::*;
use crate::core::model::ingest::IngestContext;
use crate::core::model::person::Pseudonymiser;
use crate::core::model::record::{Envelope, content_hash};
use crate::core::model::standards::Standards;
use crate::core::model::{Kind, MINISTRY, NodeCode, Record};
use crate::node::api::record_json;
use crate::reporting::export::line::{Line, parse_line};
use crate::reporting::export::{columns, quarter_label};
use crate::tooling::synth::Generator;

fn code(s: &str) -> NodeCode {
    s.parse().unwrap()
}

/// `n` generated records of `city` as stored (ingested, version 1, seq in order).
fn records(city: &str, n: usize, seed: u64) -> Vec<Record> {
    let owner = code(city);
    let standards = Standards::builtin();
    let key = Pseudonymiser::new([9; 32], 3);
    let cx = IngestContext::new(owner, &standards, Some(&key));
    Generator::new(owner, seed)
        .take(n)
        .enumerate()
        .map(|(i, json)| {
            let d = cx.draft(json).unwrap();
            let hash = content_hash(owner, &d.id, d.status, &d.data).unwrap();
            Record {
                envelope: Envelope {
                    owner,
                    kind: d.data.kind(),
                    id: d.id,
                    version: 1,
                    seq: i as u64 + 1,
                    status: d.status,
                    recorded_at_ms: 1_700_000_000_123,
                    code_refs: standards.code_refs(),
                    hash,
                },
                data: d.data,
            }
        })
        .collect()
}

/// How many kinds offices post (and the generator writes): all but the city's submitted
/// report, which the node writes itself.
fn posted_kinds() -> usize {
    Kind::ALL.iter().filter(|k| k.posted()).count()
}

#[test]
fn every_kind_survives_the_stream_line() {
    let all = records("440100", 20_000, 5);
    let kinds: BTreeSet<Kind> = all.iter().map(|r| r.envelope.kind).collect();
    assert_eq!(
        kinds.len(),
        posted_kinds(),
        "the sample holds every kind offices post"
    );
    for r in &all {
        let line = serde_json::to_vec(&record_json(r)).unwrap();
        match parse_line(&line).unwrap() {
            Line::Record(back) => assert_eq!(*back, *r),
            other => panic!("{other:?}"),
        }
    }
    let mut tampered = record_json(&all[0]);
    tampered["id"] = "other".into();
    let err = parse_line(&serde_json::to_vec(&tampered).unwrap()).unwrap_err();
    assert!(err.to_string().contains("content hash"), "{err}");
    assert!(parse_line(&vec![b' '; (1 << 20) + 1]).is_err());
    let failed = br#"{"error": "shutting_down", "message": "the node is stopping"}"#;
    assert!(
        parse_line(failed)
            .unwrap_err()
            .to_string()
            .contains("stopping")
    );
}

fn plan(kinds: Vec<Kind>) -> Plan {
    Plan {
        node: MINISTRY,
        scope: MINISTRY,
        period: None,
        kinds,
        started_at_ms: 1_700_000_000_000,
    }
}

/// Every row of a file, each column by name.
fn read_rows(path: &std::path::Path) -> Vec<BTreeMap<String, Field>> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(name, field)| (name.clone(), field.clone()))
                .collect()
        })
        .collect()
}

#[test]
fn files_hold_each_partition_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let mut all = records("440100", 20_000, 5);
    all.extend(records("440300", 3_000, 6));
    let mut exporter = Exporter::create(&out, plan(Kind::ALL.to_vec())).unwrap();
    for r in &all {
        exporter.push(r).unwrap();
    }
    let manifest = exporter
        .finish_all(all.len() as u64, 1_700_000_001_000)
        .unwrap();
    assert!(out.join(MANIFEST_FILE).exists() && out.join(README_FILE).exists());
    let mut expected: BTreeMap<(Kind, String, NodeCode), u64> = BTreeMap::new();
    for r in &all {
        *expected
            .entry((r.envelope.kind, quarter_label(r), r.envelope.owner))
            .or_default() += 1;
    }
    let found: BTreeMap<(Kind, String, NodeCode), u64> = manifest
        .files
        .iter()
        .map(|f| ((f.kind, f.quarter.clone(), f.city), f.rows))
        .collect();
    assert_eq!(
        found, expected,
        "one file per partition, every record in it"
    );
    let kinds: BTreeSet<Kind> = manifest.files.iter().map(|f| f.kind).collect();
    assert_eq!(kinds.len(), posted_kinds(), "every kind is written");
    for f in &manifest.files {
        let rows = read_rows(&out.join(&f.file));
        assert_eq!(rows.len() as u64, f.rows, "{}", f.file);
        let names: Vec<&str> = rows[0].keys().map(String::as_str).collect();
        let mut schema: Vec<&str> = columns(f.kind).iter().map(|c| c.name).collect();
        schema.sort_unstable();
        assert_eq!(names, schema, "{}", f.file);
        assert_eq!(rows[0]["owner"], Field::Str(f.city.to_string()));
    }
    // One vacancy read back field by field.
    let v = all
        .iter()
        .find(|r| r.envelope.kind == Kind::Vacancy)
        .unwrap();
    let file = manifest
        .files
        .iter()
        .find(|f| {
            f.kind == Kind::Vacancy && f.city == v.envelope.owner && f.quarter == quarter_label(v)
        })
        .unwrap();
    let rows = read_rows(&out.join(&file.file));
    let back = rows
        .iter()
        .find(|r| r["id"] == Field::Str(v.envelope.id.clone()))
        .unwrap();
    let crate::core::model::kinds::RecordData::Vacancy(data) = &v.data else {
        unreachable!()
    };
    assert_eq!(back["headcount"], Field::Long(i64::from(data.headcount)));
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let days = i32::try_from((data.valid_from - epoch).num_days()).unwrap();
    assert_eq!(back["valid_from"], Field::Date(days));
    assert_eq!(back["version"], Field::Long(1));
    assert!(matches!(
        back["recorded_at"],
        Field::TimestampMillis(1_700_000_000_123)
    ));
    // No stray temporary file anywhere.
    let mut stack = vec![out.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            assert!(!p.to_string_lossy().ends_with(".tmp"), "{}", p.display());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
}

#[test]
fn an_export_refuses_a_full_directory_and_records_not_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), b"x").unwrap();
    assert!(matches!(
        Exporter::create(dir.path(), plan(vec![Kind::Vacancy])),
        Err(ExportError::NotEmpty(_))
    ));
    let out = dir.path().join("out");
    let mut exporter = Exporter::create(&out, plan(vec![Kind::Vacancy])).unwrap();
    let all = records("440100", 500, 1);
    let office = all
        .iter()
        .find(|r| r.envelope.kind == Kind::Office)
        .unwrap();
    assert!(matches!(
        exporter.push(office),
        Err(ExportError::Unasked(_))
    ));
    let vacancy = all
        .iter()
        .find(|r| r.envelope.kind == Kind::Vacancy)
        .unwrap();
    exporter.push(vacancy).unwrap();
    assert!(matches!(
        exporter.finish_all(2, 0),
        Err(ExportError::Count { said: 2, got: 1 })
    ));
    assert!(
        !out.join(MANIFEST_FILE).exists(),
        "no manifest for a short stream"
    );
}

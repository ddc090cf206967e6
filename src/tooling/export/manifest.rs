//! What names an export: `_manifest.json` (node, scope, period, kinds, row counts per
//! kind and per file, the schema of each kind, times) and a short `_README.md` for the
//! person who finds the directory. Both start with `_`, which Spark, Hive and Trino
//! skip when they list a table's files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use super::{ExportError, Plan};
use crate::core::model::{Kind, MINISTRY, NodeCode};
use crate::node::clock::rfc3339;
use crate::reporting::export::{ALL_QUARTERS, columns};

/// The manifest's file name, written last.
pub const MANIFEST_FILE: &str = "_manifest.json";
/// The README's file name.
pub const README_FILE: &str = "_README.md";

/// One Parquet file of the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionEntry {
    /// Record kind.
    pub kind: Kind,
    /// `YYYYQn`, or `all` for the directory kinds.
    pub quarter: String,
    /// The owning city (or province, for its own records).
    pub city: NodeCode,
    /// Path relative to the export directory.
    pub file: String,
    /// Rows in it.
    pub rows: u64,
}

/// One column as the manifest lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnEntry {
    /// Name.
    pub name: &'static str,
    /// Type as an engine reads it (DuckDB's names).
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// May be null.
    pub nullable: bool,
}

/// `_manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Always `parquet`.
    pub format: &'static str,
    /// The directory layout.
    pub layout: &'static str,
    /// The node the records came from.
    pub node: NodeCode,
    /// `national` or a node code.
    pub scope: String,
    /// The quarter asked for, or `null` for every record.
    pub period: Option<String>,
    /// The kinds asked for.
    pub kinds: Vec<Kind>,
    /// When the export started and finished (RFC 3339).
    pub started_at: String,
    /// When the manifest was written.
    pub finished_at: String,
    /// The lmsync that wrote it.
    pub lmsync_version: &'static str,
    /// Records (rows) in all.
    pub records: u64,
    /// Rows per kind (every kind asked for, zero included).
    pub rows_by_kind: BTreeMap<Kind, u64>,
    /// Every file, by path.
    pub files: Vec<PartitionEntry>,
    /// Each kind's columns, partition columns (kind, quarter, city) not included.
    pub schemas: BTreeMap<Kind, Vec<ColumnEntry>>,
}

impl Manifest {
    pub(super) fn of(
        plan: &Plan,
        mut files: Vec<PartitionEntry>,
        records: u64,
        finished_at_ms: i64,
    ) -> Manifest {
        files.sort_by(|a, b| a.file.cmp(&b.file));
        let mut rows_by_kind: BTreeMap<Kind, u64> = plan.kinds.iter().map(|k| (*k, 0)).collect();
        for f in &files {
            *rows_by_kind.entry(f.kind).or_default() += f.rows;
        }
        let schemas = plan
            .kinds
            .iter()
            .map(|k| {
                let cols = columns(*k)
                    .into_iter()
                    .map(|c| ColumnEntry {
                        name: c.name,
                        ty: c.ty.sql(),
                        nullable: c.nullable,
                    })
                    .collect();
                (*k, cols)
            })
            .collect();
        Manifest {
            format: "parquet",
            layout: "kind=KIND/quarter=YYYYQn|all/city=CODE/part-N.parquet",
            node: plan.node,
            scope: if plan.scope == MINISTRY {
                "national".into()
            } else {
                plan.scope.to_string()
            },
            period: plan.period.map(|p| p.to_string()),
            kinds: plan.kinds.clone(),
            started_at: rfc3339(plan.started_at_ms),
            finished_at: rfc3339(finished_at_ms),
            lmsync_version: env!("CARGO_PKG_VERSION"),
            records,
            rows_by_kind,
            files,
            schemas,
        }
    }

    /// Writes the README, then the manifest (each to a temporary name, fsynced, renamed).
    pub(super) fn write(&self, dir: &Path) -> Result<(), ExportError> {
        write_atomically(dir, README_FILE, self.readme().as_bytes())?;
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        write_atomically(dir, MANIFEST_FILE, &json)
    }

    fn readme(&self) -> String {
        let mut r = String::new();
        let _ = writeln!(r, "# lmsync export\n");
        let _ = writeln!(
            r,
            "Records of scope {} held at node {}, {}, exported {} (lmsync {}).\n",
            self.scope,
            self.node,
            self.period
                .as_deref()
                .map_or("every quarter".to_string(), |p| format!("placed in {p}")),
            self.finished_at,
            self.lmsync_version
        );
        let _ = writeln!(
            r,
            "Hive-style partitions: `kind=K/quarter=Q/city=C/part-N.parquet`; `quarter={ALL_QUARTERS}` \
             holds the offices and employers, which belong to every quarter. `_manifest.json` \
             lists every file with its rows and each kind's columns.\n"
        );
        let _ = writeln!(r, "| kind | rows |\n| --- | ---: |");
        for (kind, rows) in &self.rows_by_kind {
            let _ = writeln!(r, "| {kind} | {rows} |");
        }
        let _ = writeln!(
            r,
            "\nWith DuckDB:\n\n```sql\nSELECT quarter, city, sum(headcount) AS demand\n\
             FROM read_parquet('kind=vacancy/*/*/*.parquet', hive_partitioning = true)\n\
             WHERE status <> 'voided' GROUP BY ALL ORDER BY ALL;\n```\n\n\
             docs/ANALYTICS.md in the lmsync sources explains the columns and the queries."
        );
        r
    }
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let mut file = std::fs::File::create(&tmp).map_err(|e| ExportError::io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| ExportError::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|e| ExportError::io(&path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ExportError::io(dir, e))
}

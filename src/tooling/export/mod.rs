//! `lmsync export`'s writer: records in (as a node streams them, one owner after another),
//! partitioned Parquet files out, `DIR/kind=K/quarter=Q/city=C/part-N.parquet`, then
//! `_manifest.json` and `_README.md` naming the export (`docs/ANALYTICS.md`).
//!
//! Memory is bounded whatever the store holds: rows are buffered per partition file and
//! written as row groups of at most [`ROW_GROUP_ROWS`], at most [`MAX_BUFFERED_ROWS`] are
//! held in all (beyond that the largest buffer is written out), and at most
//! [`MAX_OPEN_FILES`] files are open (beyond that the largest is finished and the
//! partition's next rows start `part-1`, …). A city's files are finished when the stream
//! moves on to the next owner. Each file appears only complete (temporary name, fsync,
//! rename); the manifest is written last, so a directory without one is an unfinished
//! export.

mod manifest;
mod part;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::core::model::{Kind, NodeCode, Record};
use crate::reporting::analysis::Period;
use crate::reporting::export::{in_period, partition_path, quarter_label, row};

pub use manifest::{MANIFEST_FILE, Manifest, PartitionEntry, README_FILE};

/// Most rows in one row group.
pub const ROW_GROUP_ROWS: usize = 32_768;
/// Most rows buffered over all open files.
pub const MAX_BUFFERED_ROWS: usize = 65_536;
/// Most partition files open at once.
pub const MAX_OPEN_FILES: usize = 64;

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The output directory holds something already.
    #[error("{0} is not empty; an export goes into a new or empty directory")]
    NotEmpty(PathBuf),
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The Parquet encoder failed.
    #[error("writing Parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    /// A row did not fit its kind's schema (a bug: both come from `reporting::export`).
    #[error("a {kind} row does not fit its schema: {column}")]
    Schema {
        /// The kind.
        kind: Kind,
        /// The column at fault.
        column: String,
    },
    /// The node sent a record the export did not ask for.
    #[error("the node sent {0}, which this export did not ask for")]
    Unasked(String),
    /// The node's end line counts other records than it sent.
    #[error("the node says it sent {said} records, {got} arrived")]
    Count {
        /// Records the end line counts.
        said: u64,
        /// Records received.
        got: u64,
    },
    /// The manifest could not be encoded.
    #[error("encoding the manifest: {0}")]
    Manifest(#[from] serde_json::Error),
}

impl ExportError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What an export asks for, as the manifest names it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The node the records come from.
    pub node: NodeCode,
    /// The scope (a code; the ministry's for the whole network).
    pub scope: NodeCode,
    /// Only records placed in this quarter (and the directory kinds); `None`: all.
    pub period: Option<Period>,
    /// The kinds asked for.
    pub kinds: Vec<Kind>,
    /// When the export started, ms since the Unix epoch.
    pub started_at_ms: i64,
}

/// A partition: kind, quarter label, owning city.
type PartKey = (Kind, String, NodeCode);

/// Writes an export directory from a stream of records.
pub struct Exporter {
    dir: PathBuf,
    plan: Plan,
    open: BTreeMap<PartKey, part::PartFile>,
    /// The next file number of each partition.
    next: BTreeMap<PartKey, u32>,
    done: Vec<PartitionEntry>,
    owner: Option<NodeCode>,
    records: u64,
}

/// Fails unless `dir` is missing or an empty directory (where an export may go).
pub fn check_out_dir(dir: &Path) -> Result<(), ExportError> {
    if missing_or_empty(dir)? {
        Ok(())
    } else {
        Err(ExportError::NotEmpty(dir.to_path_buf()))
    }
}

/// True when `dir` is missing or an empty directory.
fn missing_or_empty(dir: &Path) -> Result<bool, ExportError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(ExportError::io(dir, e)),
    }
}

impl Exporter {
    /// Starts an export into `dir`, which must be missing or empty (it is created).
    pub fn create(dir: &Path, plan: Plan) -> Result<Exporter, ExportError> {
        check_out_dir(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| ExportError::io(dir, e))?;
        Ok(Exporter {
            dir: dir.to_path_buf(),
            plan,
            open: BTreeMap::new(),
            next: BTreeMap::new(),
            done: Vec::new(),
            owner: None,
            records: 0,
        })
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Adds one record to its partition.
    pub fn push(&mut self, record: &Record) -> Result<(), ExportError> {
        let e = &record.envelope;
        let scope = self.plan.scope;
        let asked = (e.owner == scope || e.owner.is_within(scope))
            && self.plan.kinds.contains(&e.kind)
            && in_period(record, self.plan.period);
        if !asked {
            return Err(ExportError::Unasked(format!(
                "{}/{}/{:?}",
                e.owner, e.kind, e.id
            )));
        }
        if self.owner != Some(e.owner) {
            // The stream is one owner after another: the last one's files are complete.
            let ended: Vec<PartKey> = self.open.keys().cloned().collect();
            for key in ended {
                self.finish(&key)?;
            }
            self.owner = Some(e.owner);
        }
        let key: PartKey = (e.kind, quarter_label(record), e.owner);
        if !self.open.contains_key(&key) {
            if self.open.len() >= MAX_OPEN_FILES
                && let Some(largest) = self.largest(|f| f.rows)
            {
                self.finish(&largest)?;
            }
            let file = self.start(&key)?;
            self.open.insert(key.clone(), file);
        }
        let full = match self.open.get_mut(&key) {
            Some(file) => {
                file.push(row(record))?;
                file.buffered >= ROW_GROUP_ROWS
            }
            None => false,
        };
        if full && let Some(file) = self.open.get_mut(&key) {
            file.flush()?;
        }
        let buffered: usize = self.open.values().map(|f| f.buffered).sum();
        if buffered > MAX_BUFFERED_ROWS
            && let Some(largest) = self.largest(|f| f.buffered as u64)
            && let Some(file) = self.open.get_mut(&largest)
        {
            file.flush()?;
        }
        self.records += 1;
        Ok(())
    }

    /// The open partition with the most of `measure`.
    fn largest(&self, measure: impl Fn(&part::PartFile) -> u64) -> Option<PartKey> {
        self.open
            .iter()
            .max_by_key(|(_, f)| measure(f))
            .map(|(k, _)| k.clone())
    }

    fn start(&mut self, key: &PartKey) -> Result<part::PartFile, ExportError> {
        let (kind, quarter, city) = key;
        let n = self.next.entry(key.clone()).or_insert(0);
        let relative = format!(
            "{}/part-{n}.parquet",
            partition_path(*kind, quarter, &city.to_string())
        );
        *n += 1;
        let metadata = vec![
            ("lmsync.node".to_string(), self.plan.node.to_string()),
            ("lmsync.kind".to_string(), kind.to_string()),
            ("lmsync.quarter".to_string(), quarter.clone()),
            ("lmsync.city".to_string(), city.to_string()),
        ];
        part::PartFile::create(*kind, self.dir.join(&relative), metadata)
    }

    fn finish(&mut self, key: &PartKey) -> Result<(), ExportError> {
        let Some(file) = self.open.remove(key) else {
            return Ok(());
        };
        let part = self.next.get(key).map_or(0, |n| n.saturating_sub(1));
        let rows = file.finish()?;
        let (kind, quarter, city) = key;
        self.done.push(PartitionEntry {
            kind: *kind,
            quarter: quarter.clone(),
            city: *city,
            file: format!(
                "{}/part-{part}.parquet",
                partition_path(*kind, quarter, &city.to_string())
            ),
            rows,
        });
        Ok(())
    }

    /// Ends the export once the node's end line said it sent `said` records: finishes
    /// every file, then writes the README and, last, the manifest.
    pub fn finish_all(mut self, said: u64, finished_at_ms: i64) -> Result<Manifest, ExportError> {
        if said != self.records {
            return Err(ExportError::Count {
                said,
                got: self.records,
            });
        }
        let keys: Vec<PartKey> = self.open.keys().cloned().collect();
        for key in keys {
            self.finish(&key)?;
        }
        let manifest = Manifest::of(
            &self.plan,
            std::mem::take(&mut self.done),
            self.records,
            finished_at_ms,
        );
        manifest.write(&self.dir)?;
        Ok(manifest)
    }
}

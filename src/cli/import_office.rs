//! `lmsync import --mapping MAP FILE.csv|FILE.xlsx`: an office's export, row by row
//! through the mapping into records, sent like a JSON Lines import; each rejection —
//! the mapping's or the node's — reported by row (the CSV line, the sheet row) and column.

use std::process::ExitCode;

use anyhow::{Context, bail};

use super::import::{Entry, ImportArgs, Rejected, Sender, Style, import, progress, report};
use crate::node::config::Config;
use crate::tooling::office::mapper::{data_rows, read_header};
use crate::tooling::office::{self, Format, Mapper, Mapping, RowError};

pub(super) fn run(args: &ImportArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let path = &args.path;
    let Some(format) = Format::of(path) else {
        bail!(
            "{}: a mapping reads .csv (.txt, .tsv) or .xlsx files; a JSON Lines file needs no mapping",
            path.display()
        );
    };
    let Some(map_path) = &args.mapping else {
        bail!(
            "{}: an office export needs --mapping MAP, a mapping file such as config/mappings/vacancy.toml",
            path.display()
        );
    };
    let mapping = Mapping::load(map_path)
        .with_context(|| format!("invalid mapping {}", map_path.display()))?;
    let rows = office::open(path, format, &mapping)?;
    let mut rows = rows.peekable();
    let header = read_header(&mut rows, &mapping.source);
    let mapper = Mapper::new(&mapping, &header)
        .with_context(|| format!("mapping {} against {}", map_path.display(), path.display()))?;
    let sender = Sender::new(config, args.dry_run)?;
    let bar = progress(0, "{spinner} {pos} rows {msg}", args.quiet);
    let entries = data_rows(rows, &mapping.source).map(|row| {
        bar.inc(1);
        let line = usize::try_from(row.shown).unwrap_or(usize::MAX);
        anyhow::Ok(match mapper.map(&row) {
            Ok(record) => {
                let size = serde_json::to_vec(&record).map_or(0, |b| b.len());
                Entry::Record { line, record, size }
            }
            Err(errors) => Entry::Rejected(errors.into_iter().map(|e| rejected(line, e)).collect()),
        })
    });
    let mut tally = super::runtime()?.block_on(import(sender, entries, args, config.body_limit))?;
    bar.finish_and_clear();
    // The node names a field; the office looks for a column.
    for r in &mut tally.rejected {
        if r.column.is_empty()
            && let Some(column) = mapper.locate(&r.field)
        {
            r.column = column;
        }
    }
    Ok(report(
        path,
        &tally,
        &Style {
            unit: format.unit(),
            dry_run: args.dry_run,
        },
    ))
}

fn rejected(line: usize, e: RowError) -> Rejected {
    Rejected {
        line,
        column: e.column,
        field: e.field,
        error: e.error,
        message: e.message,
    }
}

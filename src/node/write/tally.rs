//! The city's ingest tallies: each group's counts of records refused at ingest, added to
//! the `ingest_tally` record of the quarter (by the node's clock) and planned in the same
//! group as the accepted records, so that the counts are exactly as durable as the
//! writes.
//!
//! A group that accepted nothing writes nothing: bad input leaves the store unchanged.
//! Its refusals wait in memory and go with the next group that stores records; a crash
//! or a failed commit before then loses them (a statistic, never an acknowledged
//! record).

use chrono::DateTime;

use super::plan::Planner;
use crate::core::model::ingest::Draft;
use crate::core::model::kinds::{IngestTally, RecordData};
use crate::core::model::{Kind, NodeCode, RecordKey, Status};
use crate::core::store::{Store, StoreError};
use crate::reporting::analysis::Period;

/// The quarter (`YYYYQn`) holding `now_ms`, UTC; `None` for a clock outside the years
/// a quarter can name.
fn quarter_of(now_ms: i64) -> Option<String> {
    let day = DateTime::from_timestamp_millis(now_ms)?.date_naive();
    Period::of_date(day).ok().map(|p| p.to_string())
}

/// The last tally this writer planned: its version and counts. Only the writer writes
/// tallies, so while the planner still answers that version the counts are current;
/// otherwise (a failed group, a restore) they are read again from the store.
#[derive(Debug, Default)]
pub(super) struct TallyKeeper {
    last: Option<(u64, IngestTally)>,
    /// Refusals of groups that stored nothing, not yet written.
    waiting: IngestTally,
}

impl TallyKeeper {
    /// Plans the next version of the quarter's tally with `counted` (and the refusals
    /// waiting) added, if anything was refused and the group `stores` records; otherwise
    /// keeps `counted` waiting.
    pub(super) fn plan(
        &mut self,
        planner: &mut Planner<'_>,
        (store, owner): (&dyn Store, NodeCode),
        counted: &IngestTally,
        stores: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.waiting.add(counted);
        if self.waiting.is_empty() || !stores {
            return Ok(());
        }
        let Some(quarter) = quarter_of(now_ms) else {
            // The refusals keep waiting for a clock that names a quarter.
            return Ok(());
        };
        let counted = std::mem::take(&mut self.waiting);
        let key = RecordKey::of(Kind::IngestTally, &quarter);
        let current = planner.version_of(key)?;
        let mut tally = match (&self.last, current) {
            (Some((v, t)), Some(c)) if *v == c && t.quarter == quarter => t.clone(),
            (_, None) => IngestTally::new(quarter.clone()),
            (_, Some(_)) => stored(store, owner, key)?.unwrap_or(IngestTally::new(quarter.clone())),
        };
        tally.add(&counted);
        let draft = Draft {
            id: quarter,
            status: Status::Active,
            data: RecordData::IngestTally(tally.clone()),
        };
        let outcome = planner.plan(draft, &[], now_ms)?;
        self.last = Some((outcome.version, tally));
        Ok(())
    }
}

fn stored(
    store: &dyn Store,
    owner: NodeCode,
    key: RecordKey,
) -> Result<Option<IngestTally>, StoreError> {
    Ok(store.get_record(owner, key)?.and_then(|r| match r.data {
        RecordData::IngestTally(t) => Some(t),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::quarter_of;

    #[test]
    fn quarters_follow_the_calendar_in_utc() {
        let q = |ms| quarter_of(ms).unwrap();
        assert_eq!(q(0), "1970Q1");
        // 2024-03-31T23:59:59.999Z and the next millisecond.
        assert_eq!(q(1_711_929_599_999), "2024Q1");
        assert_eq!(q(1_711_929_600_000), "2024Q2");
        assert_eq!(q(1_735_689_599_999), "2024Q4");
    }
}

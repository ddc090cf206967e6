//! The single writer thread and its group commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::plan::{Outcome, Planner};
use super::signal::CommitSignal;
use super::tally::TallyKeeper;
use crate::core::model::NodeCode;
use crate::core::model::ingest::Draft;
use crate::core::model::kinds::IngestTally;
use crate::core::model::record::CodeRef;
use crate::core::store::{RecordWrite, Store, StoreError, WriteBatch};
use crate::node::clock::Clock;

/// Why a write was not acknowledged. Nothing from the request is stored.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The store failed; the records are not durable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Closed,
}

/// Counters of the write path, read by metrics and status.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Durable commits made.
    pub commits: AtomicU64,
    /// Record versions written.
    pub records_written: AtomicU64,
    /// Drafts identical to the stored version.
    pub records_unchanged: AtomicU64,
    /// Requests acknowledged.
    pub requests: AtomicU64,
    /// Sum of commit durations, microseconds.
    pub commit_micros: AtomicU64,
}

type Reply = oneshot::Sender<Result<Vec<Outcome>, WriteError>>;

struct Job {
    drafts: Vec<Draft>,
    code_refs: Vec<CodeRef>,
    /// What the request had refused at ingest (empty for the node's own writes).
    counted: IngestTally,
    reply: Reply,
}

/// Handle to the writer thread. Cloning shares the thread; dropping every handle and
/// calling [`Writer::shutdown`] lets it finish the group in hand and stop.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

/// Largest number of records one group commit gathers.
const GROUP_RECORDS: usize = 20_000;

impl Writer {
    /// Starts the writer thread for `owner`'s writes into `store`; `signal` hears of
    /// every durable commit that wrote records.
    pub fn start(
        store: Arc<dyn Store>,
        owner: NodeCode,
        clock: Arc<dyn Clock>,
        signal: CommitSignal,
    ) -> std::io::Result<(Writer, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(64);
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("lmsync-writer".into())
            .spawn(move || {
                let sinks = Sinks {
                    stats: &thread_stats,
                    signal: &signal,
                };
                run(rx, store.as_ref(), owner, clock.as_ref(), sinks);
            })?;
        Ok((Writer { tx, stats }, handle))
    }

    /// Stores `drafts` durably; returns one outcome per draft once they are on disk.
    pub async fn submit(
        &self,
        drafts: Vec<Draft>,
        code_refs: Vec<CodeRef>,
    ) -> Result<Vec<Outcome>, WriteError> {
        self.submit_offered(drafts, code_refs, IngestTally::default())
            .await
    }

    /// Stores `drafts` durably as [`Writer::submit`], and adds `counted` (the records of a
    /// client's request refused at ingest) to the quarter's ingest tally in the same
    /// commit.
    pub async fn submit_offered(
        &self,
        drafts: Vec<Draft>,
        code_refs: Vec<CodeRef>,
        counted: IngestTally,
    ) -> Result<Vec<Outcome>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job {
                drafts,
                code_refs,
                counted,
                reply,
            })
            .await
            .map_err(|_| WriteError::Closed)?;
        answer.await.map_err(|_| WriteError::Closed)?
    }

    /// The write-path counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

/// One planned group on its way to the committer.
struct Planned {
    group: u64,
    /// Planner generation: a failure fails every group planned in the same epoch.
    epoch: u64,
    writes: Vec<RecordWrite>,
    replies: Vec<(Reply, Vec<Outcome>)>,
    failure: Option<StoreError>,
    started: Instant,
}

/// What the committer tells the planner after each group.
struct Done {
    group: u64,
    epoch: u64,
    ok: bool,
}

/// Where the committer reports each durable group.
#[derive(Clone, Copy)]
struct Sinks<'a> {
    stats: &'a WriterStats,
    signal: &'a CommitSignal,
}

/// The planner loop. Planning group N+1 overlaps the durable commit of group N on the
/// committer thread (IO wait on one side, CPU on the other); the planner treats groups in
/// flight as current state until the committer reports them durable.
fn run(
    mut rx: mpsc::Receiver<Job>,
    store: &dyn Store,
    owner: NodeCode,
    clock: &dyn Clock,
    sinks: Sinks<'_>,
) {
    let (to_commit, commits) = std::sync::mpsc::sync_channel::<Planned>(1);
    let (done_tx, done) = std::sync::mpsc::channel::<Done>();
    std::thread::scope(|scope| {
        scope.spawn(move || commit_loop(commits, store, sinks, done_tx));
        let mut planner = Planner::new(store, owner);
        let mut tallies = TallyKeeper::default();
        let mut epoch = 0;
        while let Some(jobs) = gather(&mut rx) {
            for d in done.try_iter() {
                if d.ok && d.epoch == epoch {
                    planner.committed(d.group);
                } else if d.epoch == epoch {
                    // Later groups may have built on the failed one: start again from what
                    // the store holds, in a new epoch.
                    epoch += 1;
                    planner = Planner::new(store, owner);
                    tallies = TallyKeeper::default();
                }
            }
            let group = Group {
                store,
                owner,
                clock,
                epoch,
            };
            let planned = plan_group(&mut planner, &mut tallies, jobs, group);
            if to_commit.send(planned).is_err() {
                break;
            }
        }
        drop(to_commit);
    });
}

/// Waits for one job, then takes whatever else is already waiting, up to a bound.
fn gather(rx: &mut mpsc::Receiver<Job>) -> Option<Vec<Job>> {
    let first = rx.blocking_recv()?;
    let mut records = first.drafts.len();
    let mut jobs = vec![first];
    while records < GROUP_RECORDS {
        match rx.try_recv() {
            Ok(job) => {
                records += job.drafts.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    Some(jobs)
}

/// What planning a group needs besides the planner and the jobs.
#[derive(Clone, Copy)]
struct Group<'a> {
    store: &'a dyn Store,
    owner: NodeCode,
    clock: &'a dyn Clock,
    epoch: u64,
}

fn plan_group(
    planner: &mut Planner<'_>,
    tallies: &mut TallyKeeper,
    jobs: Vec<Job>,
    g: Group<'_>,
) -> Planned {
    let (started, epoch) = (Instant::now(), g.epoch);
    let now = g.clock.now_ms();
    planner.catch_up();
    let mut replies = Vec::with_capacity(jobs.len());
    let mut failure = None;
    let mut counted = IngestTally::default();
    for job in jobs {
        counted.add(&job.counted);
        let mut outcomes = Vec::with_capacity(job.drafts.len());
        for draft in job.drafts {
            match planner.plan(draft, &job.code_refs, now) {
                Ok(o) => outcomes.push(o),
                Err(e) => failure = Some(e),
            }
        }
        replies.push((job.reply, outcomes));
    }
    let stores = replies.iter().any(|(_, outcomes)| !outcomes.is_empty());
    if let Err(e) = tallies.plan(planner, (g.store, g.owner), &counted, stores, now) {
        failure = Some(e);
    }
    let (group, writes) = planner.take_group();
    Planned {
        group,
        epoch,
        writes,
        replies,
        failure,
        started,
    }
}

fn commit_loop(
    commits: std::sync::mpsc::Receiver<Planned>,
    store: &dyn Store,
    sinks: Sinks<'_>,
    done: std::sync::mpsc::Sender<Done>,
) {
    let mut failed = FailedEpoch::default();
    for p in commits {
        let written = p.writes.len() as u64;
        let copy = sinks
            .signal
            .wants_records()
            .then(|| p.writes.iter().map(|w| w.record.clone()).collect());
        let result = match (p.failure, failed.refusal(p.epoch)) {
            (Some(e), _) | (None, Some(e)) => Err(e),
            (None, None) => store.commit(WriteBatch {
                records: p.writes,
                ..WriteBatch::default()
            }),
        };
        // The planner hears of the outcome before any client does, so a client's next
        // request is planned knowing that this group failed.
        let _ = done.send(Done {
            group: p.group,
            epoch: p.epoch,
            ok: result.is_ok(),
        });
        match result {
            Ok(()) => {
                if let Some(records) = copy {
                    sinks.signal.committed(records);
                }
                if written > 0 {
                    sinks.signal.notify();
                }
                record_stats(sinks.stats, &p.replies, written, p.started);
                for (reply, outcomes) in p.replies {
                    let _ = reply.send(Ok(outcomes));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "Commit failed; the group is not acknowledged");
                for (reply, _) in p.replies {
                    let _ = reply.send(Err(WriteError::Store(same_error(&e))));
                }
                failed.record(p.epoch, e);
            }
        }
    }
}

/// The last planner epoch a commit failed in, and why. Groups planned in that epoch may
/// build on the failed one, so they are refused without touching the store, with the
/// same kind of error: a client whose write followed a full disk's must hear "full"
/// (507, retry when space returns), not a generic storage failure.
#[derive(Default)]
struct FailedEpoch(Option<(u64, StoreError)>);

impl FailedEpoch {
    fn record(&mut self, epoch: u64, cause: StoreError) {
        if self.0.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.0 = Some((epoch, cause));
        }
    }

    fn refusal(&self, epoch: u64) -> Option<StoreError> {
        let (_, cause) = self.0.as_ref().filter(|(e, _)| *e == epoch)?;
        let why = format!("an earlier write in this group's sequence failed: {cause}");
        Some(match cause {
            StoreError::Full(_) => StoreError::Full(why),
            StoreError::Poisoned(first) => StoreError::Poisoned(first.clone()),
            _ => StoreError::Storage(why),
        })
    }
}

fn record_stats(
    stats: &WriterStats,
    planned: &[(Reply, Vec<Outcome>)],
    written: u64,
    started: Instant,
) {
    // Counted from the outcomes: the group may also write an ingest tally no request
    // asked for.
    let unchanged = planned
        .iter()
        .flat_map(|(_, o)| o)
        .filter(|o| !o.changed)
        .count() as u64;
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.records_written.fetch_add(written, Ordering::Relaxed);
    stats
        .records_unchanged
        .fetch_add(unchanged, Ordering::Relaxed);
    stats
        .requests
        .fetch_add(planned.len() as u64, Ordering::Relaxed);
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    stats.commit_micros.fetch_add(micros, Ordering::Relaxed);
}

/// The same failure for every request of a failed group (`StoreError` holds no clones of
/// its sources, so the text is carried over and the disk-full case kept recognisable).
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Full(t) => StoreError::Full(t.clone()),
        StoreError::Poisoned(t) => StoreError::Poisoned(t.clone()),
        other => StoreError::Storage(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_after_a_full_disk_failure_in_the_same_epoch_are_refused_as_full() {
        let mut failed = FailedEpoch::default();
        assert!(failed.refusal(0).is_none(), "nothing failed yet");
        failed.record(3, StoreError::Full("No space left on device".into()));
        let refusal = failed.refusal(3).expect("same epoch is refused");
        assert!(matches!(refusal, StoreError::Full(_)), "{refusal:?}");
        assert!(refusal.to_string().contains("No space left"), "{refusal}");
        assert!(failed.refusal(4).is_none(), "a new epoch goes to the store");
    }

    #[test]
    fn a_refused_group_keeps_the_first_cause_of_its_epoch() {
        let mut failed = FailedEpoch::default();
        failed.record(1, StoreError::Storage("io error".into()));
        failed.record(1, StoreError::Full("later".into()));
        assert!(matches!(failed.refusal(1), Some(StoreError::Storage(_))));
        failed.record(2, StoreError::Poisoned("stopped".into()));
        assert!(matches!(failed.refusal(2), Some(StoreError::Poisoned(_))));
        assert!(
            failed.refusal(1).is_none(),
            "only the latest failed epoch is remembered"
        );
    }
}

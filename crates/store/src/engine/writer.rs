//! The group-committing writer.
//!
//! All writes of a process go through one thread. It blocks for the first job, then
//! takes every job already queued (up to [`MAX_BATCH`]) into one transaction
//! (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `BEGIN` and the cluster-wide write lock,
//! see `PG_BEGIN_WRITE` in `super`). Each job
//! runs inside its own `SAVEPOINT`, so a job that fails rolls back alone and its
//! batch-mates still commit. Answers are sent only after `COMMIT` returned: a reply
//! means the change is durable. The queue is bounded; a full queue answers `503`.
//!
//! A second, small lane carries jobs that must not wait behind the queue (the
//! sweeper's expiries: a deadline's lag should not grow with the API's load): each
//! batch takes them first. It is bounded too ([`URGENT_DEPTH`]).

use super::{Announcer, Outcome, Session};
use crate::clock::Clock;
use crate::sql::{Conn, storage_unavailable};
use pocket_core::{Error, ErrorKind};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use tokio::sync::oneshot;

/// Most jobs in one transaction.
pub const MAX_BATCH: usize = 256;
/// Most jobs waiting in the urgent lane.
pub const URGENT_DEPTH: usize = 16;

/// What a job hands back after running: whether to keep its savepoint, and what to do
/// once the batch's fate is known.
type Finish = Box<dyn FnOnce(Outcome) + Send>;
type Job = Box<dyn FnOnce(&Conn<'_>, i64) -> (bool, Finish) + Send>;
/// Upkeep the engine runs on the writer's connection after a batch was answered (SQLite:
/// restarting the WAL when the checkpointer asks).
pub(crate) type Upkeep = Box<dyn FnMut(&mut Session) + Send>;

pub(crate) struct Writer {
    queue: SyncSender<Job>,
    urgent: SyncSender<Job>,
    /// Jobs waiting for the writer (the `pocket_writer_queue_depth` gauge).
    waiting: Arc<std::sync::atomic::AtomicI64>,
}

impl Writer {
    pub(crate) fn start(
        session: Session,
        clock: Arc<dyn Clock>,
        queue_depth: usize,
        announcer: Arc<Announcer>,
        upkeep: Option<Upkeep>,
    ) -> std::io::Result<Writer> {
        let (queue, jobs) = sync_channel::<Job>(queue_depth.max(1));
        let (urgent, urgent_jobs) = sync_channel::<Job>(URGENT_DEPTH);
        let waiting = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let taken = waiting.clone();
        let lanes = Lanes {
            jobs,
            urgent: urgent_jobs,
        };
        std::thread::Builder::new()
            .name("pocket-writer".into())
            .spawn(move || writer_loop(session, clock, lanes, announcer, taken, upkeep))?;
        Ok(Writer {
            queue,
            urgent,
            waiting,
        })
    }

    /// [`Writer::run`] in the urgent lane: the next batch takes it before anything
    /// queued.
    pub(crate) async fn run_first<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
    {
        self.submit(f, || {}, true).await
    }

    /// Runs `f` inside the next batch's transaction with the time read at execution.
    /// `Err` rolls back this job only. Resolves after the batch is durable.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
    {
        self.run_then(f, || {}).await
    }

    /// [`Writer::run`], and `after` on the writer's thread once the job's changes may
    /// have committed (committed, or the commit's fate unknown), before the answer is
    /// sent — also when nobody waits for the answer any more.
    pub(crate) async fn run_then<T, F, A>(&self, f: F, after: A) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
        A: FnOnce() + Send + 'static,
    {
        self.submit(f, after, false).await
    }

    async fn submit<T, F, A>(&self, f: F, after: A, urgent: bool) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
        A: FnOnce() + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, Error>>();
        let job: Job = Box::new(move |conn, now| {
            let result = match catch_unwind(AssertUnwindSafe(|| f(conn, now))) {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!("a write job panicked; its changes are rolled back");
                    Err(Error::internal())
                }
            };
            let keep = result.is_ok();
            let finish: Finish = Box::new(move |outcome| {
                if result.is_ok() && outcome != Outcome::RolledBack {
                    after();
                }
                let answer = if outcome == Outcome::Committed || result.is_err() {
                    // (A job that failed rolled back its own savepoint: nothing of it
                    // was written, whatever became of the batch.)
                    result
                } else if outcome == Outcome::Unknown {
                    Err(crate::sql::outcome_unknown())
                } else {
                    // The batch did not commit (a full disk, an I/O error): nothing
                    // of this job was written.
                    Err(storage_unavailable())
                };
                // The requester may have gone away (client disconnected): nothing to do.
                let _ = tx.send(answer);
            });
            (keep, finish)
        });
        let sent = if urgent {
            self.urgent.try_send(job).map(|()| {
                // A writer idle in `recv` on the main queue wakes for an empty job; a
                // full main queue means it is busy and takes the lane next anyway.
                let wake: Job = Box::new(|_, _| (true, Box::new(|_| {})));
                if self.queue.try_send(wake).is_ok() {
                    self.waiting
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        } else {
            self.queue.try_send(job).map(|()| {
                self.waiting
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
        };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "server_busy",
                    "Pocket is at capacity; retry after a moment.",
                ));
            }
            Err(TrySendError::Disconnected(_)) => return Err(storage_unavailable()),
        }
        // A job dropped unanswered never ran (its batch could not begin).
        rx.await.map_err(|_| storage_unavailable())?
    }
}

/// The writer's two queues: the urgent lane is emptied first into every batch.
struct Lanes {
    jobs: Receiver<Job>,
    urgent: Receiver<Job>,
}

fn writer_loop(
    mut session: Session,
    clock: Arc<dyn Clock>,
    lanes: Lanes,
    announcer: Arc<Announcer>,
    waiting: Arc<std::sync::atomic::AtomicI64>,
    mut upkeep: Option<Upkeep>,
) {
    let announce = session.announces_own_commits();
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut finishers: Vec<Finish> = Vec::with_capacity(MAX_BATCH);
    // Counted for the shutdown log line: how well commits were shared.
    let (mut batches, mut jobs_done) = (0u64, 0u64);
    loop {
        batch.extend(lanes.urgent.try_iter().take(MAX_BATCH));
        let mut urgent = batch.len();
        if urgent == 0 {
            match lanes.jobs.recv() {
                Ok(first) => {
                    // What woke an idle writer may be the urgent lane's empty job:
                    // its job goes first into this same batch, not the next.
                    batch.extend(lanes.urgent.try_iter().take(MAX_BATCH - 1));
                    urgent = batch.len();
                    batch.push(first);
                }
                Err(_) => break,
            }
        }
        while batch.len() < MAX_BATCH {
            match lanes.jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let queued = (batch.len() - urgent) as i64;
        let left = waiting.fetch_sub(queued, std::sync::atomic::Ordering::Relaxed) - queued;
        metrics::gauge!("pocket_writer_queue_depth").set(left.max(0) as f64);
        metrics::histogram!("pocket_writer_batch_jobs").record(batch.len() as f64);
        let started = std::time::Instant::now();
        let outcome = run_batch(&mut session, clock.as_ref(), &mut batch, &mut finishers);
        // From BEGIN to COMMIT returned (durable): what each of its jobs waited at least.
        metrics::histogram!("pocket_writer_batch_seconds").record(started.elapsed().as_secs_f64());
        if outcome != Outcome::Committed {
            metrics::counter!("pocket_writer_failed_batches_total").increment(1);
        }
        batches += 1;
        jobs_done += finishers.len() as u64;
        for finish in finishers.drain(..) {
            finish(outcome);
        }
        if outcome == Outcome::Committed
            && announce
            && let Some(conn) = session.conn()
            && let Err(e) = announcer.catch_up(&conn)
        {
            tracing::warn!(code = e.code, "could not announce committed events");
        }
        if let Some(upkeep) = upkeep.as_mut() {
            upkeep(&mut session);
        }
    }
    tracing::info!(
        batches,
        jobs = jobs_done,
        jobs_per_batch = jobs_done as f64 / batches.max(1) as f64,
        "writer stopped: every queued write was committed or answered"
    );
}

/// Commits without an answer, logged once per interval.
static OUTCOME_LOG: crate::throttle::Throttle =
    crate::throttle::Throttle::new(crate::throttle::LOG_EVERY_MS);

/// Failed batches, logged once per interval.
static BATCH_LOG: crate::throttle::Throttle =
    crate::throttle::Throttle::new(crate::throttle::LOG_EVERY_MS);

fn log_batch_error(what: &str, e: &dyn std::fmt::Display) {
    if let Some(times) = BATCH_LOG.hit(crate::throttle::wall_ms()) {
        tracing::error!(error = %e, times, "{what}");
    }
}

/// Runs one batch; returns what became of it. Fills `finishers` in job order.
fn run_batch(
    session: &mut Session,
    clock: &dyn Clock,
    batch: &mut Vec<Job>,
    finishers: &mut Vec<Finish>,
) -> Outcome {
    let begun = session.begin_write();
    let conn = match (begun, session.conn()) {
        (Ok(()), Some(conn)) => conn,
        (Err(e), _) => {
            log_batch_error("cannot begin a write transaction", &e);
            if let Some(conn) = session.conn() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            for job in batch.drain(..) {
                // Run nothing: answer every job as failed.
                finishers.push(Box::new(move |_| drop(job)));
            }
            return Outcome::RolledBack;
        }
        (Ok(()), None) => {
            for job in batch.drain(..) {
                finishers.push(Box::new(move |_| drop(job)));
            }
            return Outcome::RolledBack;
        }
    };
    // The batch began with the first job's savepoint open. Each job's end and the
    // next one's savepoint (or, after the last job, the COMMIT) go to the database in
    // one round trip: on PostgreSQL each round trip is most of a statement's cost.
    let mut ok = true;
    let mut committed = false;
    let mut at_commit = false;
    let jobs = batch.len();
    for (i, job) in batch.drain(..).enumerate() {
        if !ok {
            finishers.push(Box::new(move |_| drop(job)));
            continue;
        }
        let now = clock.now_ms();
        let (keep, finish) = job(&conn, now);
        let last = i + 1 == jobs;
        let end = match (keep, last) {
            (true, false) => "RELEASE SAVEPOINT job; SAVEPOINT job",
            (false, false) => "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job; SAVEPOINT job",
            (true, true) => "RELEASE SAVEPOINT job; COMMIT",
            (false, true) => "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job; COMMIT",
        };
        match conn.execute_batch(end) {
            Ok(()) => committed = last,
            Err(e) => {
                log_batch_error("cannot end a job or commit; the batch is rolled back", &e);
                ok = false;
                at_commit = last;
            }
        }
        finishers.push(finish);
    }
    if ok && committed {
        return Outcome::Committed;
    }
    let _ = conn.execute_batch("ROLLBACK");
    if at_commit {
        // The round trip that carried the COMMIT failed: on PostgreSQL a connection
        // lost in it leaves the outcome open; ask the server what became of it.
        let outcome = session.commit_outcome();
        if let Some(times) = OUTCOME_LOG.hit(crate::throttle::wall_ms()) {
            tracing::warn!(
                ?outcome,
                jobs,
                times,
                "a batch's commit got no answer; asked the database"
            );
        }
        metrics::counter!("pocket_writer_unanswered_commits_total", "outcome" => format!("{outcome:?}"))
            .increment(1);
        outcome
    } else {
        Outcome::RolledBack
    }
}

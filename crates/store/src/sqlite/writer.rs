//! The group-committing writer.
//!
//! All writes go through one thread. It blocks for the first job, then takes every job
//! already queued (up to [`MAX_BATCH`]) into one `BEGIN IMMEDIATE … COMMIT`. Each job
//! runs inside its own `SAVEPOINT`, so a job that fails rolls back alone and its
//! batch-mates still commit. Answers are sent only after `COMMIT` returned: a reply
//! means the change is durable. The queue is bounded; a full queue answers `503`.

use crate::clock::Clock;
use crate::model::EventNote;
use pocket_core::{Error, ErrorKind};
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use tokio::sync::{broadcast, oneshot};

/// Most jobs in one transaction.
pub const MAX_BATCH: usize = 256;

/// What a job hands back after running: whether to keep its savepoint, and what to do
/// once the batch's fate (committed or not) is known.
type Finish = Box<dyn FnOnce(bool) + Send>;
type Job = Box<dyn FnOnce(&Connection, i64) -> (bool, Finish) + Send>;

pub(super) struct Writer {
    queue: SyncSender<Job>,
    /// Jobs waiting for the writer (the `pocket_writer_queue_depth` gauge).
    waiting: Arc<std::sync::atomic::AtomicI64>,
}

impl Writer {
    pub(super) fn start(
        conn: Connection,
        clock: Arc<dyn Clock>,
        queue_depth: usize,
        notes: broadcast::Sender<EventNote>,
    ) -> std::io::Result<Writer> {
        let (queue, jobs) = sync_channel::<Job>(queue_depth.max(1));
        let waiting = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let taken = waiting.clone();
        std::thread::Builder::new()
            .name("pocket-writer".into())
            .spawn(move || writer_loop(conn, clock, jobs, notes, taken))?;
        Ok(Writer { queue, waiting })
    }

    /// Runs `f` inside the next batch's transaction with the time read at execution.
    /// `Err` rolls back this job only. Resolves after the batch is durable.
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
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
            let finish: Finish = Box::new(move |committed| {
                let answer = if committed || result.is_err() {
                    result
                } else {
                    // The batch did not commit (a full disk, an I/O error): nothing
                    // of this job was written.
                    Err(super::storage_unavailable())
                };
                // The requester may have gone away (client disconnected): nothing to do.
                let _ = tx.send(answer);
            });
            (keep, finish)
        });
        match self.queue.try_send(job) {
            Ok(()) => {
                self.waiting
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "server_busy",
                    "Pocket is at capacity; retry after a moment.",
                ));
            }
            Err(TrySendError::Disconnected(_)) => return Err(super::storage_unavailable()),
        }
        // A job dropped unanswered never ran (its batch could not begin).
        rx.await.map_err(|_| super::storage_unavailable())?
    }
}

fn writer_loop(
    conn: Connection,
    clock: Arc<dyn Clock>,
    jobs: Receiver<Job>,
    notes: broadcast::Sender<EventNote>,
    waiting: Arc<std::sync::atomic::AtomicI64>,
) {
    let mut last_seq = super::ops::events::last_seq(&conn).unwrap_or(0);
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut finishers: Vec<Finish> = Vec::with_capacity(MAX_BATCH);
    // Counted for the shutdown log line: how well commits were shared.
    let (mut batches, mut jobs_done) = (0u64, 0u64);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let left = waiting.fetch_sub(batch.len() as i64, std::sync::atomic::Ordering::Relaxed)
            - batch.len() as i64;
        metrics::gauge!("pocket_writer_queue_depth").set(left.max(0) as f64);
        metrics::histogram!("pocket_writer_batch_jobs").record(batch.len() as f64);
        let committed = run_batch(&conn, clock.as_ref(), &mut batch, &mut finishers);
        if !committed {
            metrics::counter!("pocket_writer_failed_batches_total").increment(1);
        }
        batches += 1;
        jobs_done += finishers.len() as u64;
        for finish in finishers.drain(..) {
            finish(committed);
        }
        if committed {
            announce(&conn, &mut last_seq, &notes);
        }
    }
    tracing::info!(
        batches,
        jobs = jobs_done,
        jobs_per_batch = jobs_done as f64 / batches.max(1) as f64,
        "writer stopped: every queued write was committed or answered"
    );
}

/// Tells in-process listeners about the events the last batch committed.
fn announce(conn: &Connection, last_seq: &mut i64, notes: &broadcast::Sender<EventNote>) {
    match super::ops::events::notes_since(conn, *last_seq) {
        Ok(new) => {
            for note in new {
                *last_seq = (*last_seq).max(note.seq);
                // No listener is fine: nobody is waiting.
                let _ = notes.send(note);
            }
        }
        Err(e) => tracing::warn!(code = e.code, "could not announce committed events"),
    }
}

/// Runs a transaction-control statement, prepared once.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Failed batches, logged once per interval.
static BATCH_LOG: crate::throttle::Throttle =
    crate::throttle::Throttle::new(crate::throttle::LOG_EVERY_MS);

/// Runs one batch; returns whether it committed. Fills `finishers` in job order.
fn run_batch(
    conn: &Connection,
    clock: &dyn Clock,
    batch: &mut Vec<Job>,
    finishers: &mut Vec<Finish>,
) -> bool {
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        if let Some(times) = BATCH_LOG.hit(crate::throttle::wall_ms()) {
            tracing::error!(error = %e, times, "cannot begin a write transaction");
        }
        for job in batch.drain(..) {
            // Run nothing: answer every job as failed.
            finishers.push(Box::new(move |_| drop(job)));
        }
        return false;
    }
    let mut ok = true;
    for job in batch.drain(..) {
        if !ok {
            finishers.push(Box::new(move |_| drop(job)));
            continue;
        }
        if run(conn, "SAVEPOINT job").is_err() {
            ok = false;
            finishers.push(Box::new(move |_| drop(job)));
            continue;
        }
        let now = clock.now_ms();
        let (keep, finish) = job(conn, now);
        let end = if keep {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = conn.execute_batch(end) {
            if let Some(times) = BATCH_LOG.hit(crate::throttle::wall_ms()) {
                tracing::error!(error = %e, times, "cannot end a savepoint");
            }
            ok = false;
        }
        finishers.push(finish);
    }
    if ok && let Err(e) = run(conn, "COMMIT") {
        if let Some(times) = BATCH_LOG.hit(crate::throttle::wall_ms()) {
            tracing::error!(error = %e, times, "commit failed; the batch is rolled back");
        }
        ok = false;
    }
    if !ok {
        let _ = conn.execute_batch("ROLLBACK");
    }
    ok
}

//! The group-committing writer.
//!
//! All writes of a process go through a few writer threads, each with its own queue
//! and connection (SQLite: one, which holds the database; PostgreSQL: several, whose
//! batches commit side by side — no lock is shared, every rule locks the rows it
//! reads; a job with a key, a customer, always goes to the same writer). A writer blocks for the first job, then takes every job already queued (up
//! to [`MAX_BATCH`]) into one transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL:
//! `BEGIN`, see `PG_BEGIN_WRITE` in `super`). A job that fails rolls back alone and
//! its batch-mates still commit: a batch runs without savepoints, and one whose job
//! failed after others were kept runs again with each job in its own `SAVEPOINT` (see
//! [`Guard`]).
//! A job that meets rows another transaction holds past the session's `lock_timeout`
//! (or a deadlock) is rolled back and runs again in a later batch, for up to
//! [`CONTENTION_PATIENCE`], then answers `503`. Answers are sent only after `COMMIT`
//! returned: a reply means the change is durable (PostgreSQL: and settled, by the
//! settler, see [`settler_loop`]). The queue is bounded; a full queue answers `503`.
//!
//! A second, small lane carries jobs that must not wait behind the queue (the
//! sweeper's expiries: a deadline's lag should not grow with the API's load): each
//! batch takes them first. It is bounded too ([`URGENT_DEPTH`]).

use super::{Announcer, Outcome, Session};
use crate::clock::{Clock, DatabaseClock};
use crate::sql::{Conn, storage_unavailable};
use pocket_core::{Error, ErrorKind};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Most jobs in one transaction.
pub const MAX_BATCH: usize = 256;
/// Most jobs waiting in the urgent lane.
pub const URGENT_DEPTH: usize = 16;
/// How long a job may keep meeting rows that other transactions hold (a lock not
/// granted within the session's `lock_timeout`, a deadlock) before it answers `503`:
/// until then it runs again in a later batch, so one held row never stalls a batch.
const CONTENTION_PATIENCE: Duration = Duration::from_secs(2);
/// The first wait before a contended job runs again (doubled each time, at most
/// [`RETRY_MAX_WAIT`]).
const RETRY_FIRST_WAIT: Duration = Duration::from_millis(5);
const RETRY_MAX_WAIT: Duration = Duration::from_millis(200);
/// How often an idle writer of several looks at the urgent lane (whose wake-up goes
/// to the first writer only).
const IDLE_TICK: Duration = Duration::from_millis(50);
/// Writers that take jobs before any round trip was measured, and at least ever after
/// (fewer when fewer sessions were given).
pub const WRITERS_AT_LEAST: usize = 4;
/// One writer more per this much of the database's least round trip (see [`Width`]).
const ROUND_TRIP_US_PER_WRITER: u64 = 64;
/// How long a least round trip is remembered: a window, and the one before it.
const ROUND_TRIP_WINDOW: Duration = Duration::from_secs(2);

/// What a job hands back after running: whether to keep its savepoint, and what to do
/// once the batch's fate is known — or that it met contention and must run again.
type Finish = Box<dyn FnOnce(Outcome) + Send>;
enum Ran {
    Done(bool, Finish),
    Again,
}
type Job = Box<dyn FnMut(&Conn<'_>, i64) -> Ran + Send>;
/// Upkeep the engine runs on the writer's connection after a batch was answered (SQLite:
/// restarting the WAL when the checkpointer asks).
pub(crate) type Upkeep = Box<dyn FnMut(&mut Session) + Send>;

pub(crate) struct Writer {
    /// One queue per writer thread: jobs with the same key (a customer) go to the
    /// same writer, so they share its transactions instead of waiting for each
    /// other's row locks; jobs without one are spread in turn.
    queues: Vec<SyncSender<Job>>,
    next: std::sync::atomic::AtomicUsize,
    width: Arc<Width>,
    urgent: SyncSender<Job>,
    /// Jobs waiting for the writer (the `pocket_writer_queue_depth` gauge).
    waiting: Arc<std::sync::atomic::AtomicI64>,
}

/// What every writer thread of one store shares.
struct Shared {
    /// The urgent lane, which every writer empties into its next batch.
    urgent: Mutex<Receiver<Job>>,
    clock: Arc<dyn Clock>,
    /// PostgreSQL on the wall clock: the database's clock, read by every batch.
    database_clock: Option<Arc<DatabaseClock>>,
    announcer: Arc<Announcer>,
    waiting: Arc<std::sync::atomic::AtomicI64>,
    width: Arc<Width>,
    /// PostgreSQL: where committed batches go to be settled and answered.
    settler: Option<SyncSender<Handoff>>,
}

/// Most committed batches waiting for the settler before their writers wait too.
const SETTLER_DEPTH: usize = 64;

/// How often the settler also settles everything still pending, whoever wrote it (a
/// node that crashed between a commit and its settlement, a settlement that failed).
const SETTLE_ALL_EVERY: Duration = Duration::from_secs(1);

/// A committed batch handed to the settler: what it revoked, its events' pending seqs
/// and its answers.
struct Handoff {
    revoked: Vec<String>,
    events: Vec<i64>,
    finishers: Vec<Finish>,
}

impl Handoff {
    fn finish(self) {
        for finish in self.finishers {
            finish(Outcome::Committed);
        }
    }
}

/// The settler (PostgreSQL): after their commits, the batches of every writer of the
/// node are settled (credits applied, events numbered, see `PG_SETTLE`) on a
/// connection of its own, several at once, and only then answered. Writers do not wait
/// for it, and one settlement a node at a time meets the other nodes' on the merchant
/// rows and the event clock instead of four.
fn settler_loop(mut session: Session, handoffs: &Receiver<Handoff>) {
    let mut all_settled = Instant::now();
    loop {
        let first = match handoffs.recv_timeout(SETTLE_ALL_EVERY) {
            Ok(first) => Some(first),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if (first.is_none() || all_settled.elapsed() >= SETTLE_ALL_EVERY)
            && session.settle(&[], None)
        {
            all_settled = Instant::now();
        }
        let Some(first) = first else { continue };
        let mut settled = vec![first];
        settled.extend(handoffs.try_iter().take(SETTLER_DEPTH));
        let (mut revoked, mut events) = (Vec::new(), Vec::new());
        for h in &mut settled {
            revoked.append(&mut h.revoked);
            events.append(&mut h.events);
        }
        session.settle(&revoked, Some(&events));
        for handoff in settled {
            handoff.finish();
        }
    }
}

/// How many of the writers take jobs. A batch's jobs run one after another, each
/// statement a round trip, so a writer does at most one round trip at a time: with the
/// database on its own host (~1 ms a round trip) four writers leave it idle, while
/// next to it (~50 µs) more writers only contend for the same cores. The writers in use
/// follow the least round trip seen lately (its floor is the network, not the
/// database's load, which would otherwise add writers exactly when they hurt): one per
/// [`ROUND_TRIP_US_PER_WRITER`], never fewer than [`WRITERS_AT_LEAST`] nor more than
/// the sessions given. A writer not yet used has not connected.
struct Width {
    at_least: usize,
    at_most: usize,
    in_use: std::sync::atomic::AtomicUsize,
    /// When this window began, its least round trip and the last window's (µs).
    window: Mutex<(Instant, u64, u64)>,
}

impl Width {
    fn new(at_most: usize) -> Width {
        let at_least = WRITERS_AT_LEAST.min(at_most).max(1);
        Width {
            at_least,
            at_most: at_most.max(1),
            in_use: std::sync::atomic::AtomicUsize::new(at_least),
            window: Mutex::new((Instant::now(), u64::MAX, u64::MAX)),
        }
    }

    fn in_use(&self) -> usize {
        self.in_use.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A round trip that carried nothing but the batch's first statement.
    fn observe(&self, round_trip: Duration) {
        let us = u64::try_from(round_trip.as_micros()).unwrap_or(u64::MAX);
        let least = {
            let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
            if w.0.elapsed() >= ROUND_TRIP_WINDOW {
                *w = (Instant::now(), u64::MAX, w.1);
            }
            w.1 = w.1.min(us);
            w.1.min(w.2)
        };
        let n = writers_for(least, self.at_least, self.at_most);
        if self.in_use.swap(n, std::sync::atomic::Ordering::Relaxed) != n {
            metrics::gauge!("pocket_writers_in_use").set(n as f64);
        }
    }
}

/// The writers a least round trip of `least_us` asks for, within `at_least..=at_most`.
fn writers_for(least_us: u64, at_least: usize, at_most: usize) -> usize {
    let wanted = usize::try_from(least_us.div_ceil(ROUND_TRIP_US_PER_WRITER)).unwrap_or(usize::MAX);
    wanted.clamp(at_least, at_most.max(at_least))
}

impl Writer {
    /// Starts one writer thread per session (SQLite: one; PostgreSQL: several, whose
    /// batches commit side by side), each with its own queue; all share the urgent lane.
    pub(crate) fn start(
        sessions: Vec<Session>,
        clock: Arc<dyn Clock>,
        database_clock: Option<Arc<DatabaseClock>>,
        queue_depth: usize,
        announcer: Arc<Announcer>,
        upkeep: Option<Upkeep>,
        settle: Option<Session>,
    ) -> std::io::Result<Writer> {
        let (urgent, urgent_jobs) = sync_channel::<Job>(URGENT_DEPTH);
        let settler = match settle {
            Some(session) => {
                let (settler, handoffs) = sync_channel::<Handoff>(SETTLER_DEPTH);
                std::thread::Builder::new()
                    .name("pocket-settler".into())
                    .spawn(move || settler_loop(session, &handoffs))?;
                Some(settler)
            }
            None => None,
        };
        let waiting = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let several = sessions.len() > 1;
        let width = Arc::new(Width::new(sessions.len()));
        let shared = Arc::new(Shared {
            urgent: Mutex::new(urgent_jobs),
            clock,
            database_clock,
            announcer,
            waiting: waiting.clone(),
            width: width.clone(),
            settler,
        });
        let mut upkeep = upkeep;
        let mut queues = Vec::with_capacity(sessions.len());
        for (i, session) in sessions.into_iter().enumerate() {
            let (queue, jobs) = sync_channel::<Job>(queue_depth.max(1));
            queues.push(queue);
            let (shared, upkeep) = (shared.clone(), upkeep.take());
            let own = Own {
                jobs,
                retries: Retries(Vec::new()),
                tick: several.then_some(IDLE_TICK),
            };
            std::thread::Builder::new()
                .name(format!("pocket-writer-{i}"))
                .spawn(move || writer_loop(session, &shared, own, upkeep))?;
        }
        Ok(Writer {
            queues,
            next: std::sync::atomic::AtomicUsize::new(0),
            width,
            urgent,
            waiting,
        })
    }

    /// The queue for a job with `key` (or, without one, the next in turn), among the
    /// writers in use.
    fn queue(&self, key: Option<&str>) -> &SyncSender<Job> {
        let n = self.width.in_use().min(self.queues.len()).max(1);
        let i = match key {
            Some(k) if n > 1 => {
                use std::hash::{BuildHasher, BuildHasherDefault};
                let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                    .hash_one(k);
                (h % n as u64) as usize
            }
            _ => self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n,
        };
        &self.queues[i]
    }

    /// [`Writer::run`] in the urgent lane: the next batch takes it before anything
    /// queued.
    pub(crate) async fn run_first<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnMut(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
    {
        self.submit(f, || {}, None, true).await
    }

    /// [`Writer::run`] for a job about `key` (a customer id): it runs on the writer
    /// that runs that key's other jobs.
    pub(crate) async fn run_keyed<T, F>(&self, key: &str, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnMut(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
    {
        self.submit(f, || {}, Some(key), false).await
    }

    /// Runs `f` inside the next batch's transaction with the time read at execution.
    /// `Err` rolls back this job only. Resolves after the batch is durable. `f` may
    /// run more than once: a run that met rows held by another transaction is rolled
    /// back and run again in a later batch, so it must not act outside the database.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnMut(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
    {
        self.run_then(f, || {}).await
    }

    /// [`Writer::run`], and `after` on the writer's thread once the job's changes may
    /// have committed (committed, or the commit's fate unknown), before the answer is
    /// sent — also when nobody waits for the answer any more.
    pub(crate) async fn run_then<T, F, A>(&self, f: F, after: A) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnMut(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
        A: FnOnce() + Send + 'static,
    {
        self.submit(f, after, None, false).await
    }

    async fn submit<T, F, A>(
        &self,
        mut f: F,
        after: A,
        key: Option<&str>,
        urgent: bool,
    ) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnMut(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
        A: FnOnce() + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, Error>>();
        // Shared with the finisher of each run: a run whose batch is run again (see
        // `run_batch`) drops its finisher unused, and the next run answers.
        let reply = Arc::new(Mutex::new(Some((tx, after))));
        let first_run = Instant::now();
        let job: Job = Box::new(move |conn, now| {
            crate::sql::take_contention();
            let result = match catch_unwind(AssertUnwindSafe(|| f(conn, now))) {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!("a write job panicked; its changes are rolled back");
                    Err(Error::internal())
                }
            };
            let contended = crate::sql::take_contention();
            if result.is_err() && contended {
                if first_run.elapsed() < CONTENTION_PATIENCE {
                    metrics::counter!("pocket_writer_contended_runs_total").increment(1);
                    return Ran::Again;
                }
                metrics::counter!("pocket_writer_contended_jobs_total").increment(1);
                tracing::warn!("a write job could not get its rows in time; answering 503");
            }
            if reply.lock().map_or(true, |r| r.is_none()) {
                return Ran::Done(false, Box::new(|_| {}));
            }
            let keep = result.is_ok();
            let reply = reply.clone();
            let finish: Finish = Box::new(move |outcome| {
                let taken = reply.lock().ok().and_then(|mut r| r.take());
                let Some((tx, after)) = taken else {
                    return;
                };
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
            Ran::Done(keep, finish)
        });
        let sent = if urgent {
            self.urgent.try_send(job).map(|()| {
                // A writer idle in `recv` on the main queue wakes for an empty job; a
                // full main queue means it is busy and takes the lane next anyway.
                let wake: Job = Box::new(|_, _| Ran::Done(true, Box::new(|_| {})));
                if self.queues[0].try_send(wake).is_ok() {
                    self.waiting
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        } else {
            self.queue(key).try_send(job).map(|()| {
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

/// What one writer thread has to itself: its queue, the jobs of its that met
/// contention, and how often it looks at the urgent lane while idle (one writer: it
/// gets the lane's wake-up, so never).
struct Own {
    jobs: Receiver<Job>,
    retries: Retries,
    tick: Option<Duration>,
}

/// Jobs that met contention, each with when it may run again and how long it waits
/// next time.
struct Retries(Vec<(Instant, Duration, Job)>);

impl Retries {
    fn add(&mut self, job: Job, waited: Option<Duration>) {
        let wait = waited.map_or(RETRY_FIRST_WAIT, |w| (w * 2).min(RETRY_MAX_WAIT));
        self.0.push((Instant::now() + wait, wait, job));
    }

    /// The jobs whose time came, with the wait they had.
    fn due(&mut self, out: &mut Vec<(Option<Duration>, Job)>) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.0.len() && out.len() < MAX_BATCH {
            if self.0[i].0 <= now {
                let (_, wait, job) = self.0.swap_remove(i);
                out.push((Some(wait), job));
            } else {
                i += 1;
            }
        }
    }

    /// How long until the first job is due (none: `None`).
    fn next_in(&self) -> Option<Duration> {
        let now = Instant::now();
        self.0
            .iter()
            .map(|(at, _, _)| at.saturating_duration_since(now))
            .min()
    }
}

/// Takes the next batch: this writer's contended jobs whose time came, the urgent
/// lane, then what is queued for it, waiting for the first job. `None` once the queue
/// is closed and nothing is left.
fn take_batch(
    shared: &Shared,
    own: &mut Own,
    batch: &mut Vec<(Option<Duration>, Job)>,
) -> Option<usize> {
    loop {
        own.retries.due(batch);
        if let Ok(urgent) = shared.urgent.lock() {
            batch.extend(urgent.try_iter().take(MAX_BATCH).map(|j| (None, j)));
        }
        if !batch.is_empty() {
            let queued = take_queued(&own.jobs, batch);
            return Some(account_taken(shared, queued, batch));
        }
        let wait = match (own.retries.next_in(), own.tick) {
            (Some(r), Some(t)) => Some(r.min(t)),
            (r, t) => r.or(t),
        };
        let first = match wait {
            Some(wait) => match own.jobs.recv_timeout(wait) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) if own.retries.0.is_empty() => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(wait);
                    continue;
                }
            },
            None => match own.jobs.recv() {
                Ok(job) => job,
                Err(_) => return None,
            },
        };
        // What woke an idle writer may be the urgent lane's empty job: its job goes
        // first into this same batch, not the next.
        if let Ok(urgent) = shared.urgent.lock() {
            batch.extend(urgent.try_iter().take(MAX_BATCH - 1).map(|j| (None, j)));
        }
        batch.push((None, first));
        let queued = 1 + take_queued(&own.jobs, batch);
        return Some(account_taken(shared, queued, batch));
    }
}

fn take_queued(jobs: &Receiver<Job>, batch: &mut Vec<(Option<Duration>, Job)>) -> usize {
    let mut queued = 0;
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => {
                batch.push((None, job));
                queued += 1;
            }
            Err(_) => break,
        }
    }
    queued
}

/// Counts the jobs taken from the queue off the gauge; the batch's size.
fn account_taken(shared: &Shared, queued: usize, batch: &[(Option<Duration>, Job)]) -> usize {
    let queued = queued as i64;
    let left = shared
        .waiting
        .fetch_sub(queued, std::sync::atomic::Ordering::Relaxed)
        - queued;
    metrics::gauge!("pocket_writer_queue_depth").set(left.max(0) as f64);
    metrics::histogram!("pocket_writer_batch_jobs").record(batch.len() as f64);
    batch.len()
}

fn writer_loop(mut session: Session, shared: &Shared, mut own: Own, mut upkeep: Option<Upkeep>) {
    let announce = session.announces_own_commits();
    let mut batch: Vec<(Option<Duration>, Job)> = Vec::with_capacity(MAX_BATCH);
    let mut finishers: Vec<Finish> = Vec::with_capacity(MAX_BATCH);
    let mut guard = Guard { guarded_left: 0 };
    // Counted for the shutdown log line: how well commits were shared.
    let (mut batches, mut jobs_done) = (0u64, 0u64);
    while take_batch(shared, &mut own, &mut batch).is_some() {
        let started = Instant::now();
        let outcome = run_batch(
            &mut session,
            shared,
            &mut batch,
            &mut finishers,
            &mut own.retries,
            &mut guard,
        );
        // From BEGIN to COMMIT returned (durable): what each of its jobs waited at least.
        metrics::histogram!("pocket_writer_batch_seconds").record(started.elapsed().as_secs_f64());
        if outcome != Outcome::Committed {
            metrics::counter!("pocket_writer_failed_batches_total").increment(1);
        }
        batches += 1;
        jobs_done += finishers.len() as u64;
        match (&shared.settler, outcome) {
            // Credits applied and events numbered before anyone hears of the batch —
            // by the settler, while this writer goes on with its next batch.
            (Some(settler), Outcome::Committed) => {
                let (revoked, events) = session.take_unsettled();
                let handoff = Handoff {
                    revoked,
                    events,
                    finishers: std::mem::replace(&mut finishers, Vec::with_capacity(MAX_BATCH)),
                };
                if let Err(std::sync::mpsc::SendError(handoff)) = settler.send(handoff) {
                    session.settle(&handoff.revoked, Some(&handoff.events));
                    handoff.finish();
                }
            }
            _ => {
                for finish in finishers.drain(..) {
                    finish(outcome);
                }
            }
        }
        if outcome == Outcome::Committed
            && announce
            && let Some(conn) = session.conn()
            && let Err(e) = shared.announcer.catch_up(&conn)
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

/// What became of one job in a pass over its batch.
enum Step {
    NotRun,
    Done(Finish),
    Again,
}

/// How the jobs of a batch are kept apart. Most batches run **unguarded**: no
/// savepoints, whose cost (a round trip per job and, on PostgreSQL, a subtransaction
/// each) is paid only when a job fails — a failed job's writes can then be undone only
/// with everything since `BEGIN`, so the batch runs again **guarded**, each job in its
/// own savepoint, and so do the next [`GUARDED_AFTER_REPLAY`] batches of its writer
/// (failures come in runs: a refused card, a busy row).
struct Guard {
    guarded_left: u32,
}

/// Batches a writer runs guarded after one had to be run again.
const GUARDED_AFTER_REPLAY: u32 = 8;

/// Runs one batch; returns what became of it. Fills `finishers` in job order; jobs
/// that met contention go to `retries`.
fn run_batch(
    session: &mut Session,
    shared: &Shared,
    batch: &mut Vec<(Option<Duration>, Job)>,
    finishers: &mut Vec<Finish>,
    retries: &mut Retries,
    guard: &mut Guard,
) -> Outcome {
    let mut steps: Vec<Step> = Vec::with_capacity(batch.len());
    let mut outcome = None;
    if guard.guarded_left == 0 {
        outcome = run_unguarded(session, shared, batch, &mut steps);
        if outcome.is_none() {
            metrics::counter!("pocket_writer_replayed_batches_total").increment(1);
            guard.guarded_left = GUARDED_AFTER_REPLAY;
        }
    } else {
        guard.guarded_left -= 1;
    }
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => run_guarded(session, shared, batch, &mut steps),
    };
    for ((waited, job), step) in batch.drain(..).zip(steps.drain(..)) {
        match step {
            Step::Done(finish) => finishers.push(finish),
            Step::Again => retries.add(job, waited),
            // A job dropped unanswered never ran: its requester hears `503`.
            Step::NotRun => finishers.push(Box::new(move |_| drop(job))),
        }
    }
    outcome
}

/// Begins the batch's transaction (`guarded`: with the first job's savepoint open);
/// whether it began.
fn begin(session: &mut Session, shared: &Shared, guarded: bool) -> bool {
    let sent_ms = crate::clock::SystemClock.now_ms();
    let sent = Instant::now();
    let begun = session.begin_write(guarded);
    if let (Ok(Some(db_ms)), Some(clock)) = (&begun, &shared.database_clock) {
        clock.observe(*db_ms, sent_ms, crate::clock::SystemClock.now_ms());
    }
    match begun {
        Ok(_) => {
            shared.width.observe(sent.elapsed());
            session.conn().is_some()
        }
        Err(e) => {
            log_batch_error("cannot begin a write transaction", &e);
            if let Some(conn) = session.conn() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            false
        }
    }
}

/// Runs one job: whether to keep its changes, and its step.
fn run_job(job: &mut Job, conn: &Conn<'_>, shared: &Shared) -> (bool, Step) {
    match job(conn, shared.clock.now_ms()) {
        Ran::Done(keep, finish) => (keep, Step::Done(finish)),
        Ran::Again => (false, Step::Again),
    }
}

/// A pass without savepoints. `None`: a job failed after others had been kept; the
/// transaction was rolled back and the batch must run guarded. A job that fails
/// before any was kept is rolled back alone, by beginning again.
fn run_unguarded(
    session: &mut Session,
    shared: &Shared,
    batch: &mut [(Option<Duration>, Job)],
    steps: &mut Vec<Step>,
) -> Option<Outcome> {
    steps.clear();
    steps.resize_with(batch.len(), || Step::NotRun);
    let mut open = false;
    let mut kept = 0;
    for (i, (_, job)) in batch.iter_mut().enumerate() {
        if !open {
            if !begin(session, shared, false) {
                return Some(Outcome::RolledBack);
            }
            open = true;
        }
        let conn = session.conn()?;
        let (keep, step) = run_job(job, &conn, shared);
        steps[i] = step;
        if keep {
            kept += 1;
            continue;
        }
        let _ = conn.execute_batch("ROLLBACK");
        if kept > 0 {
            return None;
        }
        open = false;
    }
    if !open {
        // Every job failed and was rolled back: nothing to commit.
        return Some(Outcome::RolledBack);
    }
    Some(commit(session, None, batch.len()))
}

/// A pass with each job in its own savepoint: a job that fails rolls back alone.
fn run_guarded(
    session: &mut Session,
    shared: &Shared,
    batch: &mut [(Option<Duration>, Job)],
    steps: &mut Vec<Step>,
) -> Outcome {
    steps.clear();
    steps.resize_with(batch.len(), || Step::NotRun);
    if !begin(session, shared, true) {
        return Outcome::RolledBack;
    }
    let Some(conn) = session.conn() else {
        return Outcome::RolledBack;
    };
    // The batch began with the first job's savepoint open. Each job's end and the
    // next one's savepoint (or, after the last job, the COMMIT) go to the database in
    // one round trip: on PostgreSQL each round trip is most of a statement's cost.
    let jobs = batch.len();
    for (i, (_, job)) in batch.iter_mut().enumerate() {
        let (keep, step) = run_job(job, &conn, shared);
        steps[i] = step;
        if i + 1 == jobs {
            return commit(session, Some(keep), jobs);
        }
        let end = if keep {
            "RELEASE SAVEPOINT job; SAVEPOINT job"
        } else {
            "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job; SAVEPOINT job"
        };
        if let Err(e) = conn.execute_batch(end) {
            log_batch_error("cannot end a job; the batch is rolled back", &e);
            // The jobs after it never ran; the ones before are rolled back with it.
            break;
        }
    }
    let _ = conn.execute_batch("ROLLBACK");
    Outcome::RolledBack
}

/// Commits the open transaction (`last`: see [`Session::commit`]).
fn commit(session: &mut Session, last: Option<bool>, jobs: usize) -> Outcome {
    delay_for_tests();
    match session.commit(last) {
        Ok(()) => Outcome::Committed,
        Err(e) => {
            log_batch_error("cannot commit; the batch is rolled back", &e);
            commit_failed(session, jobs)
        }
    }
}

/// A test hook: `POCKET_TEST_DELAY_COMMITS=<every>:<ms>` holds every `every`-th batch
/// of the process `ms` milliseconds before its COMMIT round trip (its jobs have run,
/// its events are not numbered yet), so tests can make commits land out of the order
/// their jobs ran in. Unset in production; read once.
fn delay_for_tests() {
    static DELAY: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();
    static BATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let delay = DELAY.get_or_init(|| {
        let v = std::env::var("POCKET_TEST_DELAY_COMMITS").ok()?;
        let (every, ms) = v.split_once(':')?;
        Some((every.parse().ok()?, ms.parse().ok()?))
    });
    if let Some((every, ms)) = *delay {
        let n = BATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if every > 0 && n % every == every - 1 {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
}

/// The round trip that carried the COMMIT failed: on PostgreSQL a connection lost in
/// it leaves the outcome open; ask the server what became of it.
fn commit_failed(session: &mut Session, jobs: usize) -> Outcome {
    if let Some(conn) = session.conn() {
        let _ = conn.execute_batch("ROLLBACK");
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on a SQLite file with a table `t (n)`, held by a first job until
    /// `release` is sent, so that every job submitted meanwhile shares one batch.
    fn held_writer(dir: &std::path::Path) -> (Arc<Writer>, std::sync::mpsc::Sender<()>) {
        let conn = rusqlite::Connection::open(dir.join("w.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)")
            .unwrap();
        let writer = Arc::new(
            Writer::start(
                vec![Session::Sqlite(conn)],
                Arc::new(crate::clock::SystemClock),
                None,
                1024,
                Announcer::new(0),
                None,
                None,
            )
            .unwrap(),
        );
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Mutex::new(held);
        let w = writer.clone();
        tokio::spawn(async move {
            w.run(move |_, _| {
                let _ = held.lock().unwrap().recv();
                Ok(())
            })
            .await
        });
        (writer, release)
    }

    /// Job `n` inserts `n` and then fails when `n` is in `failing`.
    async fn insert(writer: Arc<Writer>, n: i64, failing: &'static [i64]) -> Result<(), Error> {
        writer
            .run(move |c, _| {
                c.prepare_cached("INSERT INTO t (n) VALUES (?1)")
                    .and_then(|mut s| s.execute([n]))
                    .map_err(|_| Error::internal())?;
                match failing.contains(&n) {
                    true => Err(Error::new(ErrorKind::Conflict, "refused", "refused")),
                    false => Ok(()),
                }
            })
            .await
    }

    async fn rows(writer: &Writer) -> Vec<i64> {
        writer
            .run(|c, _| {
                let mut s = c
                    .prepare_cached("SELECT n FROM t ORDER BY n")
                    .map_err(|_| Error::internal())?;
                let rows = s
                    .query_map([], |r| r.get(0))
                    .map_err(|_| Error::internal())?;
                rows.collect::<Result<Vec<i64>, _>>()
                    .map_err(|_| Error::internal())
            })
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_job_rolls_back_alone_whether_its_batch_was_guarded_or_not() {
        const FAILING: &[i64] = &[1, 5, 6, 19];
        let dir = tempfile::tempdir().unwrap();
        let (writer, release) = held_writer(dir.path());
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Queued behind the held job: one batch, unguarded first. Job 1 fails before
        // any job was kept (begun again), job 5 after (the batch runs again guarded).
        let jobs: Vec<_> = (1..=20)
            .map(|n| insert(writer.clone(), n, FAILING))
            .collect();
        let all = tokio::spawn(futures_util::future::join_all(jobs));
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(()).unwrap();
        let answers = all.await.unwrap();
        for (n, answer) in (1..=20).zip(&answers) {
            assert_eq!(answer.is_err(), FAILING.contains(&n), "job {n}: {answer:?}");
        }
        let kept: Vec<i64> = (1..=20).filter(|n| !FAILING.contains(n)).collect();
        assert_eq!(rows(&writer).await, kept);
        // The next batches run guarded, with the same result.
        let again: Vec<_> = (1..=20)
            .map(|n| insert(writer.clone(), n + 100, &[]))
            .collect();
        assert!(
            futures_util::future::join_all(again)
                .await
                .iter()
                .all(Result::is_ok)
        );
        assert_eq!(rows(&writer).await.len(), kept.len() + 20);
    }

    #[test]
    fn writers_follow_the_least_round_trip_within_their_bounds() {
        // A database next to the node: the floor.
        assert_eq!(writers_for(40, 4, 16), 4);
        assert_eq!(writers_for(256, 4, 16), 4);
        // One writer more per 64 µs beyond it.
        assert_eq!(writers_for(257, 4, 16), 5);
        assert_eq!(writers_for(512, 4, 16), 8);
        // On its own host: every session, never more.
        assert_eq!(writers_for(1_100, 4, 16), 16);
        assert_eq!(writers_for(u64::MAX, 4, 16), 16);
        // Fewer sessions than the floor: all of them.
        assert_eq!(writers_for(40, 1, 1), 1);
    }

    #[test]
    fn the_width_remembers_the_least_round_trip_of_two_windows() {
        let w = Width::new(16);
        assert_eq!(w.in_use(), 4);
        w.observe(Duration::from_micros(1_100));
        assert_eq!(w.in_use(), 16);
        // One quick round trip is the network's floor: a slow one after it (a busy
        // database) does not add writers back.
        w.observe(Duration::from_micros(60));
        w.observe(Duration::from_micros(5_000));
        assert_eq!(w.in_use(), 4);
        assert_eq!(Width::new(2).in_use(), 2);
    }
}

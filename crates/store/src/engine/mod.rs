//! What both engines share: connections ([`Session`]), the group-committing writer,
//! the read pool, the announcer of committed events and the one implementation of
//! [`crate::Store`] over them.
//!
//! What this module must not do: hold SQL of an operation (that is `crate::ops`) or
//! engine set-up (`crate::sqlite`, `crate::postgres`). Engine differences here are
//! transaction control only, each in one `match`.

mod credentials;
mod readers;
mod store;
pub(crate) mod writer;

pub(crate) use credentials::Credentials;
pub(crate) use readers::Readers;
pub use store::SqlStore;
pub use writer::MAX_BATCH;
pub(crate) use writer::{Upkeep, Writer};

use crate::model::EventNote;
use crate::sql::{Conn, Db, PgSession, Result, SqlError};
use pocket_core::Error;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

macro_rules! pg_begin_write {
    () => {
        "BEGIN; \
         SELECT pg_current_xact_id()::text, current_setting('transaction_read_only'), \
         (SELECT system_identifier FROM pg_control_system())::text || '@' || pg_postmaster_start_time()::text, \
         (extract(epoch FROM clock_timestamp()) * 1000)::bigint::text, \
         (SELECT version FROM risk_rules_version)::text;"
    };
}
/// A PostgreSQL write batch's first round trip: the transaction, with the batch's
/// transaction id, which server instance it runs on,
/// whether that server is read-only, and the database's clock (milliseconds since
/// the epoch, read in this transaction: the time every job of the batch decides by)
/// and the risk rules' version (which the batch's screenings need, see
/// `Conn::batch_rules_version`).
/// No lock is taken: each rule locks the rows it reads (see ARCHITECTURE.md, "The
/// write path on PostgreSQL"), so batches of every writer of every node commit side
/// by side.
const PG_BEGIN_WRITE: &str = pg_begin_write!();
/// [`PG_BEGIN_WRITE`] with the first job's savepoint open (a batch whose jobs are kept
/// apart, see `writer::run_batch`).
const PG_BEGIN_WRITE_GUARDED: &str = concat!(pg_begin_write!(), " SAVEPOINT job");

/// What a PostgreSQL writer runs right after each commit, before any of the batch's
/// answers is sent, in a small transaction of its own that does not wait for the disk
/// (lost in a crash, the next one does it: what it settles stays pending until then):
/// `pocket_settle()` applies the committed credits still pending and numbers the
/// committed events (schema v6), then notifies every node's listener.
const PG_SETTLE: &str =
    "BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL lock_timeout = '5s'; ";

/// Which server instance a session talks to: transaction ids are unique only within
/// one (a promoted standby hands out again the ids of transactions the old primary
/// never replicated).
const PG_INSTANCE: &str = "(SELECT system_identifier FROM pg_control_system())::text || '@' || pg_postmaster_start_time()::text";

/// How long the writer keeps asking what became of a commit that got no answer.
const OUTCOME_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// What became of a write batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Committed,
    RolledBack,
    /// The connection was lost while committing and the server could not say.
    Unknown,
}

/// How a PostgreSQL session connects again after losing its server.
pub(crate) struct PgLink {
    pub config: postgres::Config,
    pub session: Option<RefCell<PgSession>>,
    /// The id of the write transaction in progress and the server instance it runs on
    /// (to learn its fate if the connection is lost while it commits).
    pub xid: Option<(String, String)>,
}

impl PgLink {
    /// The open session, connecting first if there is none or it was lost.
    fn open(&mut self) -> Result<&RefCell<PgSession>> {
        let session = match self.session.take() {
            Some(s) if !s.borrow().client.is_closed() => s,
            _ => RefCell::new(PgSession::new(self.config.connect(postgres::NoTls)?)),
        };
        Ok(self.session.insert(session))
    }

    /// Begins a write batch (see [`PG_BEGIN_WRITE`]); the database's time. A server
    /// that turned out read-only (a standby, a demoted primary) is left: the next batch
    /// connects again, and `target_session_attrs=read-write` finds the writable host.
    fn begin_write(&mut self, guarded: bool) -> Result<Option<i64>> {
        self.xid = None;
        let session = self.open()?;
        let messages = {
            let mut s = session.borrow_mut();
            s.revoked.clear();
            s.pending_events.clear();
            s.rules_version = None;
            crate::sql::round_trip();
            s.client.simple_query(if guarded {
                PG_BEGIN_WRITE_GUARDED
            } else {
                PG_BEGIN_WRITE
            })?
        };
        let mut read_only = false;
        let mut db_ms = None;
        let mut rules_version = None;
        for m in &messages {
            if let postgres::SimpleQueryMessage::Row(r) = m
                && r.len() == 5
            {
                self.xid = r
                    .get(0)
                    .zip(r.get(2))
                    .map(|(x, i)| (x.to_owned(), i.to_owned()));
                read_only = r.get(1) == Some("on");
                db_ms = r.get(3).and_then(|t| t.parse().ok());
                rules_version = r.get(4).and_then(|t| t.parse().ok());
            }
        }
        if let Some(s) = &self.session {
            s.borrow_mut().rules_version = rules_version;
        }
        if read_only {
            if let Some(s) = self.session.take() {
                let _ = s.borrow_mut().client.batch_execute("ROLLBACK");
            }
            return Err(SqlError::ReadOnly);
        }
        Ok(db_ms)
    }

    /// After one or more commits (see [`PG_SETTLE`]): their credits applied, their
    /// events numbered (`events`: their pending seqs; `None`: every event still
    /// pending, whoever wrote it), the revocations their batches made told to every
    /// node. Whether it worked; a failure is logged, and what it would have settled
    /// stays pending for the next settlement of everything.
    fn settle(&mut self, revoked: &[String], events: Option<&[i64]>) -> bool {
        let Ok(session) = self.open() else {
            return false;
        };
        let mut s = session.borrow_mut();
        let mut sql = String::from(PG_SETTLE);
        match events {
            Some(seqs) => {
                let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
                sql.push_str(&format!(
                    "SELECT pocket_settle('{{{}}}'::bigint[]); ",
                    list.join(",")
                ));
            }
            None => sql.push_str("SELECT pocket_settle(); "),
        }
        for subject in revoked.iter().take(64) {
            // Subjects are `customer:<id>`/`merchant:<id>`; quoted all the same.
            let quoted = subject.replace('\'', "''");
            sql.push_str(&format!("SELECT pg_notify('pocket_revoked', '{quoted}'); "));
        }
        sql.push_str("COMMIT");
        crate::sql::round_trip();
        if let Err(e) = s.client.batch_execute(&sql) {
            let _ = s.client.batch_execute("ROLLBACK");
            tracing::warn!(error = %e, "could not settle after a commit; the next settlement will");
            return false;
        }
        true
    }

    /// What became of the batch whose COMMIT got no clear answer, asked of the same
    /// server instance (on a new connection if the old one is lost). Another instance
    /// (a promoted standby) cannot tell by the transaction id: unknown.
    /// During a failover no server may answer for a moment: asked again for up to
    /// [`OUTCOME_PATIENCE`] (this node's writes wait meanwhile; they could not commit
    /// anyway).
    fn commit_outcome(&mut self) -> Outcome {
        let Some((xid, instance)) = self.xid.take() else {
            return Outcome::Unknown;
        };
        let started = std::time::Instant::now();
        let sql = format!("SELECT {PG_INSTANCE}, pg_xact_status($1::text::xid8)::text");
        loop {
            let status = self.open().and_then(|s| {
                let row = s.borrow_mut().client.query_one(sql.as_str(), &[&xid])?;
                Ok((row.get::<_, String>(0), row.get::<_, Option<String>>(1)))
            });
            match status {
                Ok((now_on, _)) if now_on != instance => return Outcome::Unknown,
                Ok((_, Some(s))) if s == "committed" => return Outcome::Committed,
                Ok((_, Some(s))) if s == "aborted" => return Outcome::RolledBack,
                _ if started.elapsed() < OUTCOME_PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                _ => return Outcome::Unknown,
            }
        }
    }
}

/// The client library finishes a connection on its own small runtime, which must not
/// happen on one of tokio's threads (a store dropped by async code): finish it aside.
impl Drop for PgLink {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = std::thread::Builder::new()
                .name("pocket-pg-close".into())
                .spawn(move || drop(session));
        }
    }
}

/// One connection of either engine.
pub(crate) enum Session {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgLink>),
}

impl Session {
    /// Runs `f` on the connection (PostgreSQL: connecting again first if it was lost).
    pub(crate) fn with<T>(
        &mut self,
        f: impl FnOnce(&Conn<'_>) -> std::result::Result<T, Error>,
    ) -> std::result::Result<T, Error> {
        match self {
            Session::Sqlite(c) => f(&Conn::sqlite(c)),
            Session::Postgres(link) => {
                let session = link.open().db()?;
                f(&Conn::postgres(session))
            }
        }
    }

    /// Whether the connection was lost (PostgreSQL; it is opened again on next use).
    pub(crate) fn lost(&self) -> bool {
        match self {
            Session::Sqlite(_) => false,
            Session::Postgres(link) => link
                .session
                .as_ref()
                .is_none_or(|s| s.borrow().client.is_closed()),
        }
    }

    /// Begins a write transaction (`guarded`: with the first job's savepoint open), in
    /// one round trip; on PostgreSQL, the database's time read in it.
    fn begin_write(&mut self, guarded: bool) -> Result<Option<i64>> {
        match self {
            Session::Sqlite(c) => Conn::sqlite(c)
                .execute_batch(if guarded {
                    "BEGIN IMMEDIATE; SAVEPOINT job"
                } else {
                    "BEGIN IMMEDIATE"
                })
                .map(|()| None),
            Session::Postgres(link) => {
                let first = link.begin_write(guarded);
                if first.is_err() && self.lost() {
                    // The connection died while idle (a restarted or failed-over
                    // server): nothing ran yet, so begin once more on a new one.
                    if let Session::Postgres(link) = self {
                        return link.begin_write(guarded);
                    }
                }
                first
            }
        }
    }

    /// Commits, in one round trip; `last`: the batch's jobs were kept apart, and the
    /// last one's savepoint is ended first (`Some(true)` kept, `Some(false)` rolled back).
    fn commit(&self, last: Option<bool>) -> Result<()> {
        let sql = match last {
            None => "COMMIT",
            Some(true) => "RELEASE SAVEPOINT job; COMMIT",
            Some(false) => "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job; COMMIT",
        };
        match self.conn() {
            Some(conn) => conn.execute_batch(sql),
            None => Err(SqlError::NoRows),
        }
    }

    /// What the committed batch leaves to its settlement (PostgreSQL): the
    /// credentials it revoked, to be told to every node, and its events' pending
    /// seqs. SQLite's one process has nothing to settle.
    fn take_unsettled(&mut self) -> (Vec<String>, Vec<i64>) {
        match self {
            Session::Sqlite(_) => (Vec::new(), Vec::new()),
            Session::Postgres(link) => link
                .session
                .as_ref()
                .map(|s| {
                    let mut s = s.borrow_mut();
                    (
                        std::mem::take(&mut s.revoked),
                        std::mem::take(&mut s.pending_events),
                    )
                })
                .unwrap_or_default(),
        }
    }

    /// Settles what committed (PostgreSQL: see [`PgLink::settle`]; SQLite has nothing
    /// to). Whether it worked.
    fn settle(&mut self, revoked: &[String], events: Option<&[i64]>) -> bool {
        match self {
            Session::Sqlite(_) => true,
            Session::Postgres(link) => link.settle(revoked, events),
        }
    }

    /// What became of a batch whose COMMIT round trip failed.
    fn commit_outcome(&mut self) -> Outcome {
        match self {
            // SQLite's failed COMMIT is rolled back (the writer ran ROLLBACK).
            Session::Sqlite(_) => Outcome::RolledBack,
            Session::Postgres(link) => link.commit_outcome(),
        }
    }

    /// A connection for transaction control inside the writer, already open.
    fn conn(&self) -> Option<Conn<'_>> {
        match self {
            Session::Sqlite(c) => Some(Conn::sqlite(c)),
            Session::Postgres(link) => link.session.as_ref().map(Conn::postgres),
        }
    }

    /// Whether committed events are announced by whoever commits them (SQLite: one
    /// process writes) rather than by a listener on the database (PostgreSQL: every
    /// node hears every node's commits through `LISTEN`).
    fn announces_own_commits(&self) -> bool {
        matches!(self, Session::Sqlite(_))
    }
}

/// Raises its flag when dropped: a background thread that polls the flag ends with
/// the store that owns this.
pub(crate) struct StopOnDrop(pub Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Tells in-process listeners about committed events, each once and in order.
pub(crate) struct Announcer {
    notes: broadcast::Sender<EventNote>,
    last_seq: Mutex<i64>,
}

/// Announcements buffered per listener before a slow one starts missing them (it then
/// catches up from the database).
const NOTES_CAPACITY: usize = 4096;

impl Announcer {
    pub(crate) fn new(last_seq: i64) -> Arc<Announcer> {
        let (notes, _) = broadcast::channel(NOTES_CAPACITY);
        Arc::new(Announcer {
            notes,
            last_seq: Mutex::new(last_seq),
        })
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<EventNote> {
        self.notes.subscribe()
    }

    /// Announces that `subject` (`customer:<id>` or `merchant:<id>`) lost credentials.
    pub(crate) fn revoked(&self, subject: &str) {
        let (customer, merchant) = match subject.split_once(':') {
            Some(("customer", id)) => (Some(id.to_string()), String::new()),
            Some(("merchant", id)) => (None, id.to_string()),
            _ => return,
        };
        let _ = self.notes.send(EventNote {
            seq: 0,
            id: String::new(),
            kind: crate::model::REVOKED.to_string(),
            merchant_id: merchant,
            customer_id: customer,
            payment_id: None,
        });
    }

    /// Announces the events committed since the last announcement.
    pub(crate) fn catch_up(&self, conn: &Conn<'_>) -> std::result::Result<(), Error> {
        let Ok(mut last) = self.last_seq.lock() else {
            return Err(Error::internal());
        };
        loop {
            let new = crate::ops::events::notes_since(conn, *last)?;
            let more = new.len() >= crate::ops::events::NOTES_PAGE;
            for note in new {
                *last = (*last).max(note.seq);
                // No listener is fine: nobody is waiting.
                let _ = self.notes.send(note);
            }
            if !more {
                return Ok(());
            }
        }
    }
}

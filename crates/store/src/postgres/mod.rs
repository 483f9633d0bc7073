//! Pocket on PostgreSQL, for several nodes on one database: connecting (one URL, or
//! several hosts with `target_session_attrs=read-write` to follow a failover), the
//! migrations, and the `LISTEN` thread that announces every node's commits here.
//!
//! - Each node has a few **writer** sessions (`crate::engine`'s writer,
//!   `write_connections`) whose batches commit side by side with every node's: no lock
//!   is shared; each rule locks the rows it reads (ARCHITECTURE.md, "The write path on
//!   PostgreSQL"), and correctness stays in the database (row locks, conditional
//!   updates, constraints), never in a node.
//! - **Readers** are a small pool; a lost connection is opened again on next use.
//! - The **listener** holds `LISTEN pocket_events`; the settlement after each commit
//!   (`pocket_settle`, schema v6) notifies when it numbered events, and the listener
//!   announces what it has not yet seen, also every `LISTEN_TICK` without a word
//!   (after a reconnect too: it reads from the last seq it announced). It also holds
//!   `LISTEN pocket_revoked`: a sign-out or a key expired now, on any node, wakes the
//!   streams and long-polls holding it on every node.
//!
//! What this module must not do: hold the SQL of an operation (that is `crate::ops`).

pub mod copy;

use crate::clock::Clock;
use crate::engine::{Announcer, PgLink, Readers, Session, SqlStore, StopOnDrop, Writer};
use crate::sql::{Conn, PgSession};

pub use crate::ops::verify::Verification;
use postgres::fallible_iterator::FallibleIterator;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Settings of the PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// `postgres://user@host[:port][,host2[:port]]/db[?target_session_attrs=read-write]`.
    pub url: String,
    pub queue_depth: usize,
    pub read_connections: usize,
    /// Writer sessions of this node: batches of each commit side by side.
    pub write_connections: usize,
    /// `(name, digest)` of each key this node serves with. The first node records
    /// them; a node whose keys differ refuses to start (several nodes must share
    /// their keys, or each would reject what the others wrote).
    pub key_checks: Vec<(&'static str, String)>,
}

impl PostgresOptions {
    pub fn new(url: &str) -> PostgresOptions {
        PostgresOptions {
            url: url.to_owned(),
            queue_depth: crate::sqlite::DEFAULT_QUEUE_DEPTH,
            read_connections: 8,
            write_connections: DEFAULT_WRITE_CONNECTIONS,
            key_checks: Vec::new(),
        }
    }
}

/// Writer sessions per node unless configured: the most that take jobs when the
/// database is far (each beyond [`crate::engine::writer::WRITERS_AT_LEAST`] connects
/// when first used — see the writer's `Width`). Four: a loaded machine's round trips
/// look far too, and more writers there only add connections (several nodes and
/// their tests share one `max_connections`); a node whose database is on its own host
/// is configured with more (docs/DEPLOY.md).
pub const DEFAULT_WRITE_CONNECTIONS: usize = 4;

/// How long a writer's statement waits for a row another transaction holds before
/// its job is rolled back and run again in a later batch (see `crate::engine`'s
/// writer): a batch is never held up longer by one contended row.
const WRITER_LOCK_TIMEOUT: &str = "-c lock_timeout=50ms";

/// Embedded migrations, applied in order; `pocket_schema.version` records the last.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
    include_str!("schema_v10.sql"),
    include_str!("schema_v11.sql"),
];

/// Held (session-scoped) while migrating, so nodes starting together migrate once.
const MIGRATE_LOCK_KEY: i64 = 0x0070_6f63_6b65_746d; // "pocketm"

/// How long connecting may take before it counts as a failure (each host, each try).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bounds on a serving node's sessions, so that no node can stall the others: a node
/// frozen inside a write batch (a paused VM, a partition without a reset) holds its
/// rows' locks until the server ends its idle transaction; a statement waits for a
/// lock (writers: `WRITER_LOCK_TIMEOUT`), and runs, only so long (then `503`, retried
/// by clients).
/// Keepalives and a TCP user timeout find a silent server in seconds, not hours.
/// (Not for `pocket verify` or `migrate-data`, whose full scans may take longer.)
const SERVER_OPTIONS: &str =
    "-c idle_in_transaction_session_timeout=15s -c lock_timeout=10s -c statement_timeout=30s";
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

/// The listener waits this long for a notification before checking whether the store
/// was dropped.
const LISTEN_TICK: Duration = Duration::from_millis(500);

/// Parses the URL with Pocket's defaults (a connect timeout, a name in `pg_stat_activity`).
pub fn config(url: &str) -> Result<postgres::Config, String> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| format!("cannot read the database URL: {e}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("pocket");
    }
    Ok(config)
}

/// [`config`] for a serving node's sessions: with [`SERVER_OPTIONS`] (unless the URL
/// sets `options` itself) and keepalives.
fn server_config(url: &str) -> Result<postgres::Config, String> {
    let mut config = config(url)?;
    if config.get_options().is_none() {
        config.options(SERVER_OPTIONS);
    }
    config
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .tcp_user_timeout(TCP_USER_TIMEOUT);
    Ok(config)
}

/// [`server_config`] for a writer session: a short `lock_timeout` (the last setting
/// given wins, so it also shortens one the URL sets).
fn writer_config(url: &str) -> Result<postgres::Config, String> {
    let mut config = server_config(url)?;
    let options = config.get_options().unwrap_or_default().to_owned();
    config.options(format!("{options} {WRITER_LOCK_TIMEOUT}").trim());
    Ok(config)
}

/// The database's clock now, in milliseconds since the epoch.
fn database_ms(session: &mut PgSession) -> Result<i64, String> {
    session
        .client
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .map(|r| r.get(0))
        .map_err(|e| format!("cannot read the database's clock: {e}"))
}

fn connect(config: &postgres::Config) -> Result<PgSession, String> {
    config
        .connect(postgres::NoTls)
        .map(PgSession::new)
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))
}

fn migrate(session: &mut PgSession) -> Result<(), String> {
    let client = &mut session.client;
    let fail = |e: postgres::Error| format!("cannot migrate the PostgreSQL schema: {e}");
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK_KEY])
        .map_err(fail)?;
    let result = (|| {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS pocket_schema (version BIGINT NOT NULL)")
            .map_err(fail)?;
        let current: i64 = client
            .query_opt("SELECT version FROM pocket_schema", &[])
            .map_err(fail)?
            .map(|r| r.get(0))
            .unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
            let mut tx = client.transaction().map_err(fail)?;
            tx.batch_execute(sql).map_err(fail)?;
            tx.execute("DELETE FROM pocket_schema", &[]).map_err(fail)?;
            tx.execute(
                "INSERT INTO pocket_schema (version) VALUES ($1)",
                &[&(i as i64 + 1)],
            )
            .map_err(fail)?;
            tx.commit().map_err(fail)?;
            tracing::info!(version = i + 1, "applied PostgreSQL schema migration");
        }
        Ok(())
    })();
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK_KEY]);
    result
}

fn check_keys(session: &mut PgSession, checks: &[(&'static str, String)]) -> Result<(), String> {
    let fail = |e: postgres::Error| format!("cannot check the keys: {e}");
    for (name, digest) in checks {
        session
            .client
            .execute(
                "INSERT INTO cluster_keys (name, digest) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[name, digest],
            )
            .map_err(fail)?;
        let recorded: String = session
            .client
            .query_one("SELECT digest FROM cluster_keys WHERE name = $1", &[name])
            .map_err(fail)?
            .get(0);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            recorded.as_bytes(),
            digest.as_bytes(),
        )) {
            let var = match *name {
                "server_key" => "POCKET_SERVER_KEY",
                _ => "POCKET_ADMIN_KEY",
            };
            return Err(format!(
                "this node's {name} is not the one the database was written with: give every \
                 node of one database the same keys ({var}; see docs/DEPLOY.md)"
            ));
        }
    }
    Ok(())
}

/// Connects, migrates and starts the writer and the listener. (The client library
/// runs its own small runtime per connection, so connecting happens on a plain
/// thread, never on one of tokio's.)
pub fn open(options: &PostgresOptions, clock: Arc<dyn Clock>) -> Result<SqlStore, String> {
    let options = options.clone();
    std::thread::spawn(move || open_here(&options, clock))
        .join()
        .map_err(|_| "opening the PostgreSQL store panicked".to_string())?
}

fn open_here(options: &PostgresOptions, clock: Arc<dyn Clock>) -> Result<SqlStore, String> {
    let config = server_config(&options.url)?;
    let mut writer = connect(&config)?;
    migrate(&mut writer)?;
    // On the wall clock, every time decision follows the database's clock (a test's
    // clock stays the test's).
    let database_clock = if clock.is_wall() {
        let local = clock.now_ms();
        let db = database_ms(&mut writer)?;
        Some(Arc::new(crate::clock::DatabaseClock::new(db, local)))
    } else {
        None
    };
    // What a node that died between a commit and its settlement left pending.
    writer
        .client
        .batch_execute("SELECT pocket_settle()")
        .map_err(|e| format!("cannot settle what was left pending: {e}"))?;
    let clock: Arc<dyn Clock> = match &database_clock {
        Some(c) => c.clone(),
        None => clock,
    };
    check_keys(&mut writer, &options.key_checks)?;
    let last_seq = {
        let cell = RefCell::new(writer);
        let seq = crate::ops::events::last_seq(&Conn::postgres(&cell))
            .map_err(|e| format!("cannot read the events: {}", e.message))?;
        writer = cell.into_inner();
        seq
    };
    let announcer = Announcer::new(last_seq);
    let mut readers = Vec::with_capacity(options.read_connections.max(1));
    for _ in 0..options.read_connections.max(1) {
        readers.push(Session::Postgres(Box::new(PgLink {
            config: config.clone(),
            session: Some(RefCell::new(connect(&config)?)),
            xid: None,
        })));
    }
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let listener = connect(&config)?;
    {
        let (config, announcer, stop) = (config.clone(), announcer.clone(), stop.0.clone());
        std::thread::Builder::new()
            .name("pocket-listen".into())
            .spawn(move || listen(config, listener, announcer, stop))
            .map_err(|e| format!("cannot start the listener: {e}"))?;
    }
    drop(writer);
    let writer_config = writer_config(&options.url)?;
    let mut writers = Vec::with_capacity(options.write_connections.max(1));
    for i in 0..options.write_connections.max(1) {
        // The first connect now (a database that refuses is found at start); the
        // others when the writer is first used.
        let session = match i < crate::engine::writer::WRITERS_AT_LEAST {
            true => Some(RefCell::new(connect(&writer_config)?)),
            false => None,
        };
        writers.push(Session::Postgres(Box::new(PgLink {
            session,
            config: writer_config.clone(),
            xid: None,
        })));
    }
    let writer = Writer::start(
        writers,
        clock.clone(),
        database_clock,
        options.queue_depth,
        announcer.clone(),
        None,
        Some(Session::Postgres(Box::new(PgLink {
            session: Some(RefCell::new(connect(&writer_config)?)),
            config: writer_config.clone(),
            xid: None,
        }))),
    )
    .map_err(|e| format!("cannot start the writer: {e}"))?;
    Ok(SqlStore::new(
        writer,
        Readers::new(readers),
        announcer,
        clock,
        // Other nodes change credentials too: every look-up reads the database.
        crate::engine::Credentials::off(),
        Some(stop),
        None,
    ))
}

/// Checks everything that must hold of the database, in one snapshot, while nodes
/// may be serving (see `crate::ops::verify`; foreign keys and checks are enforced
/// by PostgreSQL itself).
pub fn verify(url: &str) -> Result<Verification, String> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let config = config(&url)?;
        let session = RefCell::new(connect(&config)?);
        let conn = Conn::postgres(&session);
        let e = |e: pocket_core::Error| e.to_string();
        conn.execute_batch(conn.begin_snapshot_sql())
            .map_err(|e| e.to_string())?;
        let mut v = Verification::default();
        crate::ops::verify::consistency(&conn, &mut v).map_err(e)?;
        conn.execute_batch("COMMIT").map_err(|e| e.to_string())?;
        Ok(v)
    })
    .join()
    .map_err(|_| "verifying panicked".to_string())?
}

/// Announces every node's committed events: waits for `pocket_events`, then reads
/// what it has not announced. A lost connection is opened again (with backoff), and
/// what committed meanwhile is announced then.
fn listen(
    config: postgres::Config,
    first: PgSession,
    announcer: Arc<Announcer>,
    stop: Arc<AtomicBool>,
) {
    let mut session = Some(first);
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::Relaxed) {
        let mut current = match session.take() {
            Some(s) if !s.client.is_closed() => s,
            _ => match connect(&config) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "listener cannot reach PostgreSQL; trying again");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        if let Err(e) = current
            .client
            .batch_execute("LISTEN pocket_events; LISTEN pocket_revoked")
        {
            tracing::warn!(error = %e, "cannot LISTEN; trying again");
            std::thread::sleep(backoff);
            continue;
        }
        let cell = RefCell::new(current);
        // Whatever committed while nobody listened.
        let mut healthy = announcer.catch_up(&Conn::postgres(&cell)).is_ok();
        if healthy {
            backoff = Duration::from_millis(100);
        } else {
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        while healthy && !stop.load(Ordering::Relaxed) {
            let woke = {
                let mut s = cell.borrow_mut();
                let mut notes = s.client.notifications();
                let first = notes.timeout_iter(LISTEN_TICK).next();
                match first {
                    Ok(Some(n)) => {
                        // Every notification already here, handled in one go: events
                        // are read once; revocations are passed on one by one.
                        let mut events = false;
                        let rest: Vec<_> = notes.iter().collect().unwrap_or_default();
                        for n in std::iter::once(n).chain(rest) {
                            if n.channel() == "pocket_revoked" {
                                announcer.revoked(n.payload());
                            } else {
                                events = true;
                            }
                        }
                        events
                    }
                    // No word for a tick: look anyway (a notification is sent after
                    // the commit, so a node that died in between sends none).
                    Ok(None) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "listener lost PostgreSQL");
                        healthy = false;
                        false
                    }
                }
            };
            if woke && let Err(e) = announcer.catch_up(&Conn::postgres(&cell)) {
                tracing::warn!(code = e.code, "listener cannot read new events");
                healthy = false;
            }
        }
        session = Some(cell.into_inner());
        if session.as_ref().is_some_and(|s| s.client.is_closed()) {
            session = None;
        }
    }
}

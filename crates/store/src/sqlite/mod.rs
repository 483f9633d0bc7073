//! Pocket on SQLite, the embedded default: opening the file with Pocket's pragmas, its
//! migrations, the checkpointer, and offline verification and backup.
//!
//! - One **writer** thread owns the only write connection (`crate::engine`'s writer):
//!   batches share one `BEGIN IMMEDIATE … COMMIT` with `synchronous=FULL`, so many
//!   concurrent payments share one fsync.
//! - A small pool of **read** connections serves look-ups; in WAL mode they never
//!   wait for the writer.

mod checkpointer;
pub mod offline;

use crate::clock::Clock;
use crate::engine::{Announcer, Readers, Session, SqlStore, Writer};
use crate::sql::Conn;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::ops::idempotency::key_reused;
pub use crate::sql::storage_unavailable;

/// Most requests waiting for the writer before new ones get `503`.
pub const DEFAULT_QUEUE_DEPTH: usize = 8192;

/// Settings of the SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub path: PathBuf,
    pub queue_depth: usize,
    pub read_connections: usize,
}

impl SqliteOptions {
    pub fn in_dir(dir: &Path) -> SqliteOptions {
        SqliteOptions {
            path: dir.join("pocket.db"),
            queue_depth: DEFAULT_QUEUE_DEPTH,
            read_connections: 8,
        }
    }
}

/// Opens a connection with Pocket's pragmas: WAL, `synchronous=FULL` (a commit is on
/// disk before it is acknowledged), foreign keys, and a busy handler for the locks the
/// checkpointer and reading tools (`pocket backup`) take.
fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint sub-journals and temporary b-trees stay in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // A commit never shrinks the WAL file: freeing its blocks took 210 ms inside a
    // commit (strace, under load). Writes reuse the file from its start after each
    // restart; the checkpointer truncates it when writes pause (`checkpointer.rs`).
    conn.pragma_update(None, "journal_size_limit", -1)?;
    // Waits up to 5 s for a lock, looking every 100 µs: SQLite's own busy timeout
    // sleeps in growing steps (up to 100 ms), so a commit that met the checkpointer's
    // brief lock could sleep tens of milliseconds after the lock was free.
    conn.busy_handler(Some(wait_briefly))?;
    // The writer runs a few dozen distinct statements; keep them all prepared (the
    // default cache of 16 would evict and re-parse on every job).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Prepared statements kept per connection.
pub(super) const STATEMENT_CACHE: usize = 128;

/// How long a connection waits for a lock another connection holds, in 100-µs looks.
const BUSY_LOOKS: i32 = 50_000;

pub(super) fn wait_briefly(looks: i32) -> bool {
    look_again(looks, BUSY_LOOKS)
}

/// A busy handler's step: after `looks` looks, wait 100 µs and look again, up to `most`.
pub(super) fn look_again(looks: i32, most: i32) -> bool {
    if looks >= most {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_micros(100));
    true
}

/// A file beside the database: `<file><suffix>` (`-wal`, `-owner`).
pub(super) fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The schema version this build migrates to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Embedded migrations, applied in order; `PRAGMA user_version` records the last one.
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
    include_str!("schema_v12.sql"),
    include_str!("schema_v13.sql"),
    include_str!("schema_v14.sql"),
    include_str!("schema_v15.sql"),
];

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // What a migration replaces or deletes is overwritten on disk, not left in free
    // pages (v4 removes unkeyed digests of request bodies).
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Rebuilding a table others refer to (v6) needs foreign keys off; they are checked
    // once every migration has run.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    conn.pragma_update(None, "secure_delete", "OFF")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let broken: i64 = conn.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if broken > 0 {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            Some(format!(
                "{broken} rows refer to rows that do not exist after migrating"
            )),
        ));
    }
    Ok(())
}

/// Opens (creating if needed) the database and starts the writer thread.
pub fn open(options: &SqliteOptions, clock: Arc<dyn Clock>) -> Result<SqlStore, String> {
    let owner = claim(&options.path)?;
    let mut conn = open_connection(&options.path)
        .map_err(|e| format!("cannot open {}: {e}", options.path.display()))?;
    migrate(&mut conn).map_err(|e| format!("cannot migrate {}: {e}", options.path.display()))?;
    // Checkpoints run on their own thread, not inside the writer's commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(|e| format!("cannot configure {}: {e}", options.path.display()))?;
    let restart = checkpointer::start(&options.path)?;
    let mut readers = Vec::with_capacity(options.read_connections.max(1));
    for _ in 0..options.read_connections.max(1) {
        readers.push(Session::Sqlite(
            open_reader(&options.path)
                .map_err(|e| format!("cannot open a read connection: {e}"))?,
        ));
    }
    let last_seq = crate::ops::events::last_seq(&Conn::sqlite(&conn))
        .map_err(|e| format!("cannot read {}: {}", options.path.display(), e.message))?;
    let announcer = Announcer::new(last_seq);
    let writer = Writer::start(
        vec![Session::Sqlite(conn)],
        clock.clone(),
        None,
        options.queue_depth,
        announcer.clone(),
        Some(restart),
        None,
    )
    .map_err(|e| format!("cannot start the writer: {e}"))?;
    Ok(SqlStore::new(
        writer,
        Readers::new(readers),
        announcer,
        clock,
        // One process owns the file (`claim`): every change of a credential is this
        // store's.
        crate::engine::Credentials::exact(),
        None,
        Some(owner),
    ))
}

/// Makes this store the only one writing the file: an exclusive lock on `<file>-owner`,
/// held until the store is dropped (the kernel releases it if the process dies). A
/// second `pocket serve` or `pocket demo-data` on the same data directory is refused:
/// the store remembers credentials and answers from memory what only its own writes
/// can change (`engine/credentials.rs`). Reading tools (`backup`, `verify`) do not
/// claim it.
fn claim(db: &Path) -> Result<std::fs::File, String> {
    let path = beside(db, "-owner");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "{} is in use by another Pocket process (stop it first; `pocket backup` and \
             `pocket verify` work beside it)",
            db.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

//! Database errors of either engine, and what the contract answers for them.

use pocket_core::{Error, ErrorKind};

#[derive(Debug)]
pub enum SqlError {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// A row was required and none came back.
    NoRows,
    /// A column could not be read as the type asked for.
    Decode(String),
    /// The PostgreSQL server is read-only (a standby): writes must go elsewhere.
    ReadOnly,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::Sqlite(e) => write!(f, "sqlite: {e}"),
            SqlError::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "postgres {}: {}", db.code().code(), db.message()),
                None => write!(f, "postgres: {e}"),
            },
            SqlError::NoRows => f.write_str("no row where one was expected"),
            SqlError::Decode(what) => write!(f, "undecodable column: {what}"),
            SqlError::ReadOnly => f.write_str("the database server is read-only"),
        }
    }
}

impl std::error::Error for SqlError {}

impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> SqlError {
        match e {
            rusqlite::Error::QueryReturnedNoRows => SqlError::NoRows,
            e => SqlError::Sqlite(e),
        }
    }
}

impl From<postgres::Error> for SqlError {
    fn from(e: postgres::Error) -> SqlError {
        SqlError::Postgres(e)
    }
}

impl SqlError {
    /// Whether this is another transaction holding rows this one needs: a lock not
    /// granted in time (`lock_timeout`), a deadlock, a serialisation failure. The job
    /// that met it is run again in a later batch (see the writer).
    pub fn is_contention(&self) -> bool {
        match self {
            SqlError::Postgres(e) => e
                .code()
                .is_some_and(|c| matches!(c.code(), "55P03" | "40P01" | "40001")),
            _ => false,
        }
    }

    /// Whether this is the surroundings failing (retry later) rather than a bug: a
    /// full disk, an I/O error, a lock held too long; for PostgreSQL also a lost
    /// connection, a server shutting down or in recovery, a read-only standby after
    /// a failover, or a serialization conflict.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SqlError::Sqlite(e) => {
                use rusqlite::ErrorCode::*;
                matches!(
                    e.sqlite_error_code(),
                    Some(
                        DiskFull
                            | SystemIoFailure
                            | CannotOpen
                            | DatabaseBusy
                            | DatabaseLocked
                            | OutOfMemory
                            | ReadOnly
                            | FileLockingProtocolFailed
                    )
                )
            }
            SqlError::Postgres(e) => {
                if e.is_closed() {
                    return true;
                }
                match e.code() {
                    // No server error: the connection failed (I/O, refused, a timeout,
                    // TLS) — or Pocket did (a parameter it could not encode, a column
                    // it could not decode): only the first is the surroundings.
                    None => {
                        let text = e.to_string();
                        [
                            "error communicating with the server",
                            "error connecting to server",
                            "timeout waiting for server",
                            "error performing TLS handshake",
                        ]
                        .iter()
                        .any(|t| text.starts_with(t))
                    }
                    Some(code) => {
                        let code = code.code();
                        // 08 connection, 53 resources, 57P0x shutdown/crash/starting,
                        // 58 system I/O, 25006 read-only (a standby), 40001/40P01.
                        code.starts_with("08")
                            || code.starts_with("53")
                            || code.starts_with("57P")
                            || code.starts_with("58")
                            || code == "25006"
                            || code == "40001"
                            || code == "40P01"
                            || code == "55P03"
                    }
                }
            }
            SqlError::ReadOnly => true,
            SqlError::NoRows | SqlError::Decode(_) => false,
        }
    }
}

/// `503 storage_unavailable`: the database cannot be used right now (a full disk, an
/// I/O error, a lock held too long, a lost connection); nothing was changed and the
/// request may be retried.
pub fn storage_unavailable() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "storage_unavailable",
        "Pocket cannot use its storage right now; nothing was changed. Retry after a moment.",
    )
}

/// `503 outcome_unknown`: the database connection was lost while this request's
/// change was being committed, and the database could not tell afterwards whether it
/// was. A retry with the same `Idempotency-Key` answers what really happened.
pub fn outcome_unknown() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "outcome_unknown",
        "Pocket lost its database while committing this request, so it may or may not have \
         taken effect. Retry with the same Idempotency-Key to learn which.",
    )
}

static UNAVAILABLE_LOG: crate::throttle::Throttle =
    crate::throttle::Throttle::new(crate::throttle::LOG_EVERY_MS);
static INTERNAL_LOG: crate::throttle::Throttle =
    crate::throttle::Throttle::new(crate::throttle::LOG_EVERY_MS);

thread_local! {
    /// Set when a job on this (writer) thread met [`SqlError::is_contention`].
    static CONTENDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the thread met contention in the job now running (it stays known).
pub(crate) fn contention_seen() -> bool {
    CONTENDED.with(std::cell::Cell::get)
}

/// Whether the thread met contention since the last call (and forgets it).
pub(crate) fn take_contention() -> bool {
    CONTENDED.with(|c| c.replace(false))
}

/// Maps a database error to the contract's answer, logging it once per interval.
pub fn sql_error(e: SqlError) -> Error {
    if e.is_contention() {
        // Not logged: the writer runs the job again; only a job that never gets its
        // rows answers 503 (and is counted there).
        CONTENDED.with(|c| c.set(true));
        return storage_unavailable();
    }
    let now = crate::throttle::wall_ms();
    if e.is_unavailable() {
        if let Some(times) = UNAVAILABLE_LOG.hit(now) {
            tracing::error!(error = %e, times, "storage unavailable; answering 503");
        }
        return storage_unavailable();
    }
    if let Some(times) = INTERNAL_LOG.hit(now) {
        tracing::error!(error = %e, times, "database error");
    }
    Error::internal()
}

/// `?`-friendly conversion of database errors into the contract's errors.
pub trait Db<T> {
    fn db(self) -> Result<T, Error>;
}

impl<T> Db<T> for Result<T, SqlError> {
    fn db(self) -> Result<T, Error> {
        self.map_err(sql_error)
    }
}

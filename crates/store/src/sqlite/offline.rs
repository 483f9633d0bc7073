//! Work on a data directory from outside the server: a consistent backup while it
//! runs, and a full verification (`pocket backup`, `pocket verify`).

use crate::ops;
use crate::sql::{Conn, Db};
use pocket_core::Error;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

pub use crate::ops::verify::Verification;

fn open_read_only(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn count(conn: &Connection, sql: &str) -> Result<i64, Error> {
    Conn::sqlite(conn).query_row(sql, [], |r| r.get(0)).db()
}

/// Checks everything that must hold of a database, reading all of it in one snapshot:
/// its integrity, the ledger (conservation, replay of every account, running
/// totals, one transfer per succeeded payment and refund, no negative balance) and
/// the consistency of every payment's state.
pub fn verify(db: &Path) -> Result<Verification, String> {
    if !db.exists() {
        return Err(format!("no database at {}", db.display()));
    }
    let conn = open_read_only(db)?;
    let e = |e: Error| e.to_string();
    conn.execute_batch("BEGIN").map_err(|e| e.to_string())?;
    let mut v = Verification::default();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if integrity != "ok" {
        v.faults.push(format!("integrity check: {integrity}"));
    }
    let broken_keys = count(&conn, "SELECT COUNT(*) FROM pragma_foreign_key_check").map_err(e)?;
    if broken_keys > 0 {
        v.faults.push(format!(
            "{broken_keys} rows refer to rows that do not exist"
        ));
    }
    ops::verify::consistency(&Conn::sqlite(&conn), &mut v).map_err(e)?;
    conn.execute_batch("COMMIT").map_err(|e| e.to_string())?;
    Ok(v)
}

/// Writes a consistent copy of the database to `to` (which must not exist) while the
/// server may be running, then checks the copy's integrity. Returns its size in bytes.
pub fn backup(db: &Path, to: &Path) -> Result<u64, String> {
    if !db.exists() {
        return Err(format!("no database at {}", db.display()));
    }
    if to.exists() {
        return Err(format!(
            "{} exists already; choose a new file",
            to.display()
        ));
    }
    let conn = open_read_only(db)?;
    let target = to
        .to_str()
        .ok_or_else(|| format!("{} is not a UTF-8 path", to.display()))?;
    // One read transaction: the copy is the database as of one commit.
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    let copy = open_read_only(to)?;
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if integrity != "ok" {
        return Err(format!(
            "the copy at {} is damaged: {integrity}",
            to.display()
        ));
    }
    std::fs::metadata(to)
        .map(|m| m.len())
        .map_err(|e| e.to_string())
}

//! Moving up: a SQLite data directory copied into an empty PostgreSQL database
//! (`pocket migrate-data`), then verified before it is called done: every table holds
//! the same rows (a digest of each row, compared as sorted lists), the ledger audits
//! clean on PostgreSQL, and every payment is in the same state.
//!
//! What this must not do: copy into a database that holds anything already, or write
//! to the SQLite file (it is opened read-only, in one snapshot; stop the server first
//! so nothing is written after the snapshot).

use super::{config, connect, migrate};
use crate::ops::verify::Verification;
use crate::sql::{Cell, Conn, PgSession, Value};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::path::Path;

/// Every table with data, in an order that satisfies the foreign keys.
const TABLES: &[&str] = &[
    "merchants",
    "api_keys",
    "customers",
    "sessions",
    "products",
    "payments",
    "refunds",
    "topups",
    "accounts",
    "transfers",
    "events",
    "idempotency_keys",
    "webhook_endpoints",
    "deliveries",
    "delivery_attempts",
    "stream_tickets",
    "devices",
    "pin_guards",
    "pin_resets",
    "staff",
    "ledger_totals",
    "cards",
    "bank_operations",
    "bank_accounts",
    // (not `risk_rules_version`: the migration made its one row; stores load the
    // rules on first use whatever the version says)
    "risk_rules",
    "customer_days",
    "customer_minutes",
];

/// Rows per INSERT statement (PostgreSQL takes at most 65,535 parameters).
const ROWS_PER_INSERT: usize = 200;

/// What was copied, table by table, and what the copy's verification found.
#[derive(Debug, Default)]
pub struct Copied {
    pub tables: Vec<(&'static str, usize)>,
    pub verification: Verification,
}

/// Copies the SQLite database at `from` into the empty PostgreSQL database `to`, in
/// one PostgreSQL transaction, and verifies the copy. `key_checks` (see
/// `PostgresOptions::key_checks`) are those of the directory's keys: recorded with the
/// copy, so that only nodes with those keys will serve it.
pub fn from_sqlite(
    from: &Path,
    to: &str,
    key_checks: Vec<(&'static str, String)>,
) -> Result<Copied, String> {
    let (from, to) = (from.to_owned(), to.to_owned());
    std::thread::spawn(move || copy_here(&from, &to, &key_checks))
        .join()
        .map_err(|_| "the copy panicked".to_string())?
}

/// The SQLite database to copy, read-only, at this version's schema, in a read
/// transaction (the copy is of one moment).
fn open_source(from: &Path) -> Result<rusqlite::Connection, String> {
    if !from.exists() {
        return Err(format!("no database at {}", from.display()));
    }
    let sqlite = rusqlite::Connection::open_with_flags(
        from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", from.display()))?;
    let version: i64 = sqlite
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if version != crate::sqlite::SCHEMA_VERSION {
        return Err(format!(
            "{} is at schema version {version}; start this version of pocket on it once \
             (it migrates) before copying",
            from.display()
        ));
    }
    sqlite.execute_batch("BEGIN").map_err(|e| e.to_string())?;
    Ok(sqlite)
}

/// A copy goes into an empty database only.
fn refuse_unless_empty(pg: &mut PgSession) -> Result<(), String> {
    for table in TABLES.iter().chain(&["cluster_keys"]) {
        let n: i64 = pg
            .client
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .map_err(|e| e.to_string())?
            .get(0);
        if n > 0 {
            return Err(format!(
                "the PostgreSQL database is not empty ({table} has {n} rows): copy into a new one"
            ));
        }
    }
    Ok(())
}

fn copy_here(
    from: &Path,
    to: &str,
    key_checks: &[(&'static str, String)],
) -> Result<Copied, String> {
    let sqlite = open_source(from)?;
    let mut pg = connect(&config(to)?)?;
    migrate(&mut pg)?;
    refuse_unless_empty(&mut pg)?;
    let session = RefCell::new(pg);
    let pg = Conn::postgres(&session);
    let fail = |e: crate::sql::SqlError| e.to_string();
    pg.execute_batch("BEGIN").map_err(fail)?;
    let mut copied = Copied::default();
    for table in TABLES {
        let columns = columns(&session, table)?;
        let rows = read_sqlite(&sqlite, table, &columns)?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            insert(&pg, table, &columns, chunk)?;
        }
        copied.tables.push((table, rows.len()));
    }
    for (name, digest) in key_checks {
        pg.prepare("INSERT INTO cluster_keys (name, digest) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(crate::sql::params![*name, digest.as_str()]))
            .map_err(fail)?;
    }
    // Identity columns were given their values: new rows continue after them.
    for (table, column) in identities(&session)? {
        pg.execute_batch(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
             COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
        ))
        .map_err(fail)?;
    }
    // Events keep their seqs; the next commit numbers after them (schema v6).
    pg.execute_batch("UPDATE event_clock SET last = (SELECT COALESCE(MAX(seq), 0) FROM events)")
        .map_err(fail)?;
    pg.execute_batch("COMMIT").map_err(fail)?;

    // Verify before saying so: the same rows, and a sound book on PostgreSQL.
    pg.execute_batch(pg.begin_snapshot_sql()).map_err(fail)?;
    for (table, _) in &copied.tables {
        let columns = columns(&session, table)?;
        let want = digests(read_sqlite(&sqlite, table, &columns)?);
        let got = digests(read_pg(&pg, table, &columns)?);
        if want != got {
            return Err(format!(
                "verification failed: {table} differs after the copy ({} rows in SQLite, {} in PostgreSQL)",
                want.len(),
                got.len()
            ));
        }
    }
    crate::ops::verify::consistency(&pg, &mut copied.verification).map_err(|e| e.to_string())?;
    pg.execute_batch("COMMIT").map_err(fail)?;
    let _ = sqlite.execute_batch("COMMIT");
    Ok(copied)
}

/// A column's value, owned.
#[derive(Clone, Debug, PartialEq)]
enum Owned {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Owned {
    fn from_cell(c: Cell<'_>) -> Result<Owned, String> {
        Ok(match c {
            Cell::Null => Owned::Null,
            Cell::Int(i) => Owned::Int(i),
            Cell::Text(t) => Owned::Text(t.to_owned()),
            Cell::Blob(b) => Owned::Blob(b.to_vec()),
            Cell::Real(r) => return Err(format!("a real number ({r}) where Pocket stores none")),
        })
    }

    fn value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Int(i) => Value::Int(*i),
            Owned::Text(t) => Value::Text(t),
            Owned::Blob(b) => Value::Blob(b),
        }
    }
}

fn columns(session: &RefCell<PgSession>, table: &str) -> Result<Vec<String>, String> {
    let rows = session
        .borrow_mut()
        .client
        .query(
            "SELECT column_name FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

fn identities(session: &RefCell<PgSession>) -> Result<Vec<(String, String)>, String> {
    let rows = session
        .borrow_mut()
        .client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND is_identity = 'YES'",
            &[],
        )
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn read_sqlite(
    conn: &rusqlite::Connection,
    table: &str,
    columns: &[String],
) -> Result<Vec<Vec<Owned>>, String> {
    let sql = format!("SELECT {} FROM {table}", columns.join(", "));
    let mut stmt = conn.prepare(&sql).map_err(|e| format!("{table}: {e}"))?;
    let mut rows = stmt.query([]).map_err(|e| format!("{table}: {e}"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(|e| format!("{table}: {e}"))? {
        let mut row = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let cell = Cell::from(r.get_ref(i).map_err(|e| format!("{table}: {e}"))?);
            row.push(Owned::from_cell(cell).map_err(|e| format!("{table}: {e}"))?);
        }
        out.push(row);
    }
    Ok(out)
}

fn read_pg(conn: &Conn<'_>, table: &str, columns: &[String]) -> Result<Vec<Vec<Owned>>, String> {
    let sql = format!("SELECT {} FROM {table}", columns.join(", "));
    let n = columns.len();
    let rows = conn
        .prepare(&sql)
        .and_then(|mut s| {
            s.query_map([], |r| {
                let mut row = Vec::with_capacity(n);
                for i in 0..n {
                    row.push(r.get::<_, OwnedCell>(i)?.0);
                }
                Ok(row)
            })
        })
        .map_err(|e| format!("{table}: {e}"))?;
    rows.collect::<crate::sql::Result<Vec<_>>>()
        .map_err(|e| format!("{table}: {e}"))
}

/// Reads any column as an [`Owned`].
struct OwnedCell(Owned);

impl crate::sql::FromSql for OwnedCell {
    fn from_cell(cell: Cell<'_>) -> crate::sql::Result<OwnedCell> {
        Owned::from_cell(cell)
            .map(OwnedCell)
            .map_err(crate::sql::SqlError::Decode)
    }
}

fn insert(
    conn: &Conn<'_>,
    table: &str,
    columns: &[String],
    rows: &[Vec<Owned>],
) -> Result<(), String> {
    let n = columns.len();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for r in 0..rows.len() {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..n {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("?{}", r * n + c + 1));
        }
        sql.push(')');
    }
    let values: Vec<Value<'_>> = rows.iter().flatten().map(Owned::value).collect();
    conn.prepare(&sql)
        .and_then(|mut s| s.execute(crate::sql::params_from_iter(values)))
        .map_err(|e| format!("copying {table}: {e}"))?;
    Ok(())
}

/// Each row's digest (cells in column order, typed), sorted: equal lists mean equal
/// tables whatever order each engine returns rows in.
fn digests(rows: Vec<Vec<Owned>>) -> Vec<[u8; 32]> {
    let mut out: Vec<[u8; 32]> = rows
        .iter()
        .map(|row| {
            let mut h = Sha256::new();
            for cell in row {
                match cell {
                    Owned::Null => h.update([0u8]),
                    Owned::Int(i) => {
                        h.update([1u8]);
                        h.update(i.to_be_bytes());
                    }
                    Owned::Text(t) => {
                        h.update([2u8]);
                        h.update((t.len() as u64).to_be_bytes());
                        h.update(t.as_bytes());
                    }
                    Owned::Blob(b) => {
                        h.update([3u8]);
                        h.update((b.len() as u64).to_be_bytes());
                        h.update(b);
                    }
                }
            }
            h.finalize().into()
        })
        .collect();
    out.sort_unstable();
    out
}

//! One small SQL surface over both engines.
//!
//! The operations in `crate::ops` are written once, against [`Conn`], in the SQL both
//! SQLite and PostgreSQL accept (`?N` placeholders are rewritten to `$N` for
//! PostgreSQL when a statement is first prepared; a parameter whose type PostgreSQL
//! cannot infer from a column gets a `CAST(? AS BIGINT)`). Transaction control is
//! the one thing that differs, and lives in `crate::engine`.
//!
//! What this module must not do: hold a transaction open by itself, or retry. The
//! writer decides transactions; the caller decides what a failure means.

mod error;
mod value;

pub use error::{Db, SqlError, outcome_unknown, storage_unavailable};
pub(crate) use error::{contention_seen, take_contention};
pub use value::{Cell, FromSql, ToSql, Value};

use std::cell::RefCell;
use std::collections::HashMap;

pub type Result<T> = std::result::Result<T, SqlError>;

/// Statements prepared per PostgreSQL connection before the cache starts over.
const PG_STATEMENT_CACHE: usize = 256;

/// Counts one round trip to PostgreSQL (`pocket_postgres_round_trips_total`: what
/// a payment costs in round trips is this counter's rise over the payments made).
pub(crate) fn round_trip() {
    metrics::counter!("pocket_postgres_round_trips_total").increment(1);
}

/// Shards of the book's running totals (`ledger_totals.shard`): each writer session
/// takes one at random, so writers rarely share a row (two that do only wait for each
/// other).
pub const TOTALS_SHARDS: i64 = 1024;

/// A PostgreSQL connection with its prepared statements.
pub struct PgSession {
    pub client: postgres::Client,
    prepared: HashMap<String, postgres::Statement>,
    /// This session's shard of the running totals.
    pub shard: i64,
    /// Subjects whose credentials the open transaction revoked: told to every node
    /// after the commit (`NOTIFY` inside a writing transaction would serialise
    /// every commit of the database behind it).
    pub revoked: Vec<String>,
    /// The pending seqs of the events the open transaction inserted, which its
    /// settlement numbers (schema v8).
    pub pending_events: Vec<i64>,
    /// The risk rules' version as the open write batch read it in its first round
    /// trip (`None` outside a write batch, or once a job of the batch changed it).
    pub rules_version: Option<i64>,
}

impl PgSession {
    pub fn new(client: postgres::Client) -> PgSession {
        PgSession {
            client,
            prepared: HashMap::new(),
            shard: i64::from(rand::random::<u16>()) % TOTALS_SHARDS,
            revoked: Vec::new(),
            pending_events: Vec::new(),
            rules_version: None,
        }
    }

    fn prepare(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        if self.prepared.len() >= PG_STATEMENT_CACHE {
            // Only dynamic SQL (a varying list of ids) gets here; start over.
            self.prepared.clear();
        }
        round_trip();
        let stmt = self.client.prepare(&dollar_placeholders(sql))?;
        self.prepared.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

/// A connection, borrowed for one operation.
pub struct Conn<'a>(Inner<'a>);

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a RefCell<PgSession>),
}

impl<'a> Conn<'a> {
    pub fn sqlite(conn: &'a rusqlite::Connection) -> Conn<'a> {
        Conn(Inner::Sqlite(conn))
    }

    pub fn postgres(session: &'a RefCell<PgSession>) -> Conn<'a> {
        Conn(Inner::Postgres(session))
    }

    /// Tells every node, once this transaction committed, that `subject`'s
    /// credentials stopped working (`customer:<id>` or `merchant:<id>`). PostgreSQL:
    /// `NOTIFY pocket_revoked` after the commit (the writer sends it); SQLite has one
    /// node, which the store tells itself.
    pub fn notify_revoked(&self, subject: &str) -> Result<()> {
        if let Inner::Postgres(s) = self.0 {
            s.borrow_mut().revoked.push(subject.to_owned());
        }
        Ok(())
    }

    /// Remembers an event inserted under a pending seq (PostgreSQL), for the
    /// settlement after the commit to number.
    pub fn note_pending_event(&self, seq: i64) {
        if let Inner::Postgres(s) = self.0 {
            s.borrow_mut().pending_events.push(seq);
        }
    }

    /// Whether this is PostgreSQL: several writers at once, so a rule that reads then
    /// writes locks its rows first (SQLite has one writer, which holds the database).
    pub fn is_postgres(&self) -> bool {
        matches!(self.0, Inner::Postgres(_))
    }

    /// The risk rules' version read when this write batch began (PostgreSQL; `None`:
    /// read it now). Saves every payment of the batch a round trip.
    pub fn batch_rules_version(&self) -> Option<i64> {
        match self.0 {
            Inner::Sqlite(_) => None,
            Inner::Postgres(s) => s.borrow().rules_version,
        }
    }

    /// This transaction changed the risk rules: what the batch read at its start no
    /// longer holds for the rest of it.
    pub fn forget_batch_rules_version(&self) {
        if let Inner::Postgres(s) = self.0 {
            s.borrow_mut().rules_version = None;
        }
    }

    /// The shard of the running totals this connection writes (SQLite: 0).
    pub fn totals_shard(&self) -> i64 {
        match self.0 {
            Inner::Sqlite(_) => 0,
            Inner::Postgres(s) => s.borrow().shard,
        }
    }

    /// Begins a read-only transaction that sees one snapshot throughout.
    pub fn begin_snapshot_sql(&self) -> &'static str {
        match self.0 {
            Inner::Sqlite(_) => "BEGIN",
            Inner::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// A statement, prepared once per connection. A row-locking clause at its end
    /// (`FOR UPDATE`, `FOR SHARE`, `… SKIP LOCKED`) is for PostgreSQL; SQLite, whose
    /// one writer holds the whole database, leaves it off.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'a>> {
        Ok(match self.0 {
            Inner::Sqlite(c) => Stmt(StmtInner::Sqlite(c.prepare_cached(without_row_locks(sql))?)),
            Inner::Postgres(s) => {
                let stmt = s.borrow_mut().prepare(sql)?;
                Stmt(StmtInner::Postgres(s, stmt))
            }
        })
    }

    /// A statement whose text varies (prepared each time on SQLite; PostgreSQL keeps
    /// a bounded cache anyway).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'a>> {
        match self.0 {
            Inner::Sqlite(c) => Ok(Stmt(StmtInner::SqliteOnce(
                c.prepare(without_row_locks(sql))?,
            ))),
            Inner::Postgres(_) => self.prepare_cached(sql),
        }
    }

    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Statements without parameters, separated by `;` (transaction control).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self.0 {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(s) => {
                round_trip();
                Ok(s.borrow_mut().client.batch_execute(sql)?)
            }
        }
    }
}

/// A prepared statement.
pub struct Stmt<'a>(StmtInner<'a>);

enum StmtInner<'a> {
    Sqlite(rusqlite::CachedStatement<'a>),
    SqliteOnce(rusqlite::Statement<'a>),
    Postgres(&'a RefCell<PgSession>, postgres::Statement),
}

impl Stmt<'_> {
    /// The first row, mapped; [`SqlError::NoRows`] when there is none.
    pub fn query_row<T, P, F>(&mut self, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        let values = params.values();
        match &mut self.0 {
            StmtInner::Sqlite(s) => sqlite_first(s, &values, f),
            StmtInner::SqliteOnce(s) => sqlite_first(s, &values, f),
            StmtInner::Postgres(session, stmt) => {
                let refs = pg_params(&values);
                round_trip();
                let row = session.borrow_mut().client.query_opt(&*stmt, &refs)?;
                match row {
                    Some(r) => f(&Row(RowInner::Postgres(&r))),
                    None => Err(SqlError::NoRows),
                }
            }
        }
    }

    /// Every row, mapped, read in full before the first is returned.
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        let values = params.values();
        let mut out = Vec::new();
        match &mut self.0 {
            StmtInner::Sqlite(s) => sqlite_all(s, &values, &mut f, &mut out)?,
            StmtInner::SqliteOnce(s) => sqlite_all(s, &values, &mut f, &mut out)?,
            StmtInner::Postgres(session, stmt) => {
                let refs = pg_params(&values);
                round_trip();
                let rows = session.borrow_mut().client.query(&*stmt, &refs)?;
                out.extend(rows.iter().map(|r| f(&Row(RowInner::Postgres(r)))));
            }
        }
        Ok(out.into_iter())
    }

    /// Runs the statement; the number of rows it changed.
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        let values = params.values();
        match &mut self.0 {
            StmtInner::Sqlite(s) => Ok(s.execute(rusqlite::params_from_iter(values.iter()))?),
            StmtInner::SqliteOnce(s) => Ok(s.execute(rusqlite::params_from_iter(values.iter()))?),
            StmtInner::Postgres(session, stmt) => {
                let refs = pg_params(&values);
                round_trip();
                let n = session.borrow_mut().client.execute(&*stmt, &refs)?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }
}

fn sqlite_first<T>(
    s: &mut rusqlite::Statement<'_>,
    values: &[Value<'_>],
    f: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<T> {
    let mut rows = s.query(rusqlite::params_from_iter(values.iter()))?;
    match rows.next()? {
        Some(r) => f(&Row(RowInner::Sqlite(r))),
        None => Err(SqlError::NoRows),
    }
}

fn sqlite_all<T>(
    s: &mut rusqlite::Statement<'_>,
    values: &[Value<'_>],
    f: &mut impl FnMut(&Row<'_>) -> Result<T>,
    out: &mut Vec<Result<T>>,
) -> Result<()> {
    let mut rows = s.query(rusqlite::params_from_iter(values.iter()))?;
    while let Some(r) = rows.next()? {
        out.push(f(&Row(RowInner::Sqlite(r))));
    }
    Ok(())
}

fn pg_params<'v>(values: &'v [Value<'v>]) -> Vec<&'v (dyn postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// A row of a result.
pub struct Row<'a>(RowInner<'a>);

enum RowInner<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `idx` (from 0) as a `T`. (Two type parameters, as `rusqlite` has, so
    /// `get::<_, T>` reads the same.)
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        let idx = idx.index();
        match &self.0 {
            RowInner::Sqlite(r) => T::from_cell(Cell::from(r.get_ref(idx)?)),
            RowInner::Postgres(r) => T::from_cell(r.try_get::<usize, Cell<'_>>(idx)?),
        }
    }
}

/// A column's position (a trait, so a bare literal `0` reads as `usize`).
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// Parameters of a statement.
pub trait Params {
    fn values(&self) -> Vec<Value<'_>>;
}

impl Params for [&dyn ToSql; 0] {
    fn values(&self) -> Vec<Value<'_>> {
        Vec::new()
    }
}

impl Params for &[&dyn ToSql] {
    fn values(&self) -> Vec<Value<'_>> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

macro_rules! array_params {
    ($($n:literal)*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(&self) -> Vec<Value<'_>> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
    )*};
}
array_params!(1 2 3 4 5 6 7 8);

/// Parameters from a list whose length varies.
pub struct ParamsFromIter<T>(pub Vec<T>);

impl<T: ToSql> Params for ParamsFromIter<T> {
    fn values(&self) -> Vec<Value<'_>> {
        self.0.iter().map(|v| v.to_value()).collect()
    }
}

pub fn params_from_iter<T: ToSql>(items: impl IntoIterator<Item = T>) -> ParamsFromIter<T> {
    ParamsFromIter(items.into_iter().collect())
}

/// Parameters of mixed types: `params![id, amount, None::<String>]`.
macro_rules! params {
    () => { &[] as &[&dyn $crate::sql::ToSql] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::sql::ToSql),+] as &[&dyn $crate::sql::ToSql] };
}
pub(crate) use params;

/// `.optional()`: no row is `None` rather than an error.
pub trait Optional<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> Optional<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(SqlError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Row-locking clauses Pocket's statements may end with, for PostgreSQL only.
/// (`FOR NO KEY UPDATE` is how Pocket locks a row it will change: it does not wait
/// for, nor block, the key-share locks that inserts referring to the row take.)
const ROW_LOCKS: [&str; 4] = [
    " FOR UPDATE SKIP LOCKED",
    " FOR NO KEY UPDATE",
    " FOR UPDATE",
    " FOR SHARE",
];

/// `sql` without a row-locking clause at its end (no copy: SQLite's statement cache
/// is keyed by the text).
fn without_row_locks(sql: &str) -> &str {
    let trimmed = sql.trim_end();
    ROW_LOCKS
        .iter()
        .find_map(|lock| trimmed.strip_suffix(lock))
        .unwrap_or(sql)
}

/// Rewrites SQLite's `?N` (and bare `?`) placeholders as PostgreSQL's `$N`, leaving
/// string literals and quoted names alone.
pub fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next_bare = 1;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                out.push('$');
                if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        out.push(d);
                        chars.next();
                    }
                } else {
                    out.push_str(&next_bare.to_string());
                    next_bare += 1;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_outside_literals() {
        assert_eq!(
            dollar_placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
        assert_eq!(dollar_placeholders("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert_eq!(
            dollar_placeholders("SELECT \"?x\" , ?3"),
            "SELECT \"?x\" , $3"
        );
    }

    #[test]
    fn row_locks_are_for_postgres_only() {
        assert_eq!(
            without_row_locks("SELECT a FROM t FOR UPDATE"),
            "SELECT a FROM t"
        );
        assert_eq!(
            without_row_locks("SELECT a FROM t LIMIT 5 FOR UPDATE SKIP LOCKED\n"),
            "SELECT a FROM t LIMIT 5"
        );
        assert_eq!(
            without_row_locks("SELECT a FROM t FOR SHARE"),
            "SELECT a FROM t"
        );
        assert_eq!(without_row_locks("SELECT a FROM t"), "SELECT a FROM t");
    }

    #[test]
    fn sqlite_round_trip_and_optional() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let conn = Conn::sqlite(&c);
        conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, note TEXT)")
            .unwrap();
        conn.prepare_cached("INSERT INTO t VALUES (?1, ?2, ?3)")
            .unwrap()
            .execute(params!["a", 5i64, None::<String>])
            .unwrap();
        let (n, note): (i64, Option<String>) = conn
            .query_row("SELECT n, note FROM t WHERE id = ?1", ["a"], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, note), (5, None));
        let none = conn
            .query_row("SELECT n FROM t WHERE id = ?1", ["b"], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .unwrap();
        assert_eq!(none, None);
        let all: Vec<i64> = conn
            .prepare_cached("SELECT n FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(all, vec![5]);
    }
}

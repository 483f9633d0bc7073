//! The SQL of every store operation, one module per area. Functions take a
//! connection (inside the writer's transaction for writes) and the time read there.

pub(super) mod bank;
pub(super) mod bank_accounts;
pub(super) mod cards;
pub(super) mod catalog;
pub(super) mod devices;
pub(super) mod events;
pub(super) mod idempotency;
pub(super) mod ledger;
pub(super) mod merchants;
pub(super) mod payments;
pub(super) mod pins;
pub(super) mod wallet;
pub(super) mod webhooks;

use pocket_core::{Currency, Error};
use rusqlite::{Connection, OptionalExtension, params};

/// `?`-friendly conversion of SQLite errors into the opaque `500 internal`.
pub(super) trait Db<T> {
    fn db(self) -> Result<T, Error>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, Error> {
        self.map_err(super::sql_error)
    }
}

/// A currency read back from the database (written by Pocket, so always valid).
pub(super) fn stored_currency(code: &str) -> Result<Currency, Error> {
    Currency::parse(code, "currency").map_err(|_| {
        tracing::error!(code, "unknown currency in the database");
        Error::internal()
    })
}

/// The `seq` below which a page starts: `i64::MAX` without a cursor, else the seq of
/// the cursor row, which must be visible through `sql` (`?1` = id, `?2` = owner).
pub(super) fn cursor_seq(
    conn: &Connection,
    sql: &str,
    starting_after: Option<&str>,
    owner: &str,
) -> Result<i64, Error> {
    let Some(id) = starting_after else {
        return Ok(i64::MAX);
    };
    conn.prepare_cached(sql)
        .db()?
        .query_row(params![id, owner], |r| r.get(0))
        .optional()
        .db()?
        .ok_or_else(|| Error::not_found("object", id).with_param("starting_after"))
}

/// Resolves a customer given as a `cus_` id or an E.164 phone to its id.
pub(super) fn resolve_customer(
    conn: &Connection,
    customer: &str,
    param: &str,
) -> Result<String, Error> {
    let column = if customer.starts_with('+') {
        "phone"
    } else {
        "id"
    };
    let sql = format!("SELECT id FROM customers WHERE {column} = ?1");
    conn.prepare_cached(&sql)
        .db()?
        .query_row([customer], |r| r.get::<_, String>(0))
        .optional()
        .db()?
        .ok_or_else(|| Error::not_found("customer", customer).with_param(param))
}

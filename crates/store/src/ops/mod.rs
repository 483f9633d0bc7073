//! The SQL of every store operation, one module per area, written once for both
//! engines. Functions take a connection (inside the writer's transaction for writes)
//! and the time read there.

pub(crate) mod bank;
pub(crate) mod bank_accounts;
pub(crate) mod cards;
pub(crate) mod catalog;
pub(crate) mod codes;
pub(crate) mod devices;
pub(crate) mod events;
pub(crate) mod idempotency;
pub(crate) mod ledger;
pub(crate) mod merchants;
pub(crate) mod payments;
pub(crate) mod pins;
pub(crate) mod risk;
pub(crate) mod staff;
pub(crate) mod verify;
pub(crate) mod wallet;
pub(crate) mod webhooks;

use crate::sql::{Conn, Optional, params};
use pocket_core::{Currency, Error};

pub(crate) use crate::sql::Db;

/// What a write decided, kept by its commit whichever it is. A write returns
/// `Result<Outcome<T>, Error>`: `Err` rolls its transaction back (nothing happened);
/// `Refused` commits what the refusal itself wrote — an expiry, a counted wrong PIN,
/// a spent reset guess — and then answers the error.
#[must_use]
pub(crate) enum Outcome<T> {
    Done(T),
    Refused(Error),
}

impl<T> Outcome<T> {
    /// The answer as the caller sees it, once committed.
    pub(crate) fn into_result(self) -> Result<T, Error> {
        match self {
            Outcome::Done(v) => Ok(v),
            Outcome::Refused(e) => Err(e),
        }
    }
}

/// A currency read back from the database (written by Pocket, so always valid).
pub(crate) fn stored_currency(code: &str) -> Result<Currency, Error> {
    Currency::parse(code, "currency").map_err(|_| {
        tracing::error!(code, "unknown currency in the database");
        Error::internal()
    })
}

/// The `seq` below which a page starts: `i64::MAX` without a cursor, else the seq of
/// the cursor row, which must be visible through `sql` (`?1` = id, `?2` = owner).
pub(crate) fn cursor_seq(
    conn: &Conn,
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

/// The column of `customers` that a customer given as a `cus_` id or an E.164 phone
/// names.
pub(crate) fn customer_column(customer: &str) -> &'static str {
    if customer.starts_with('+') {
        "phone"
    } else {
        "id"
    }
}

/// Resolves a customer given as a `cus_` id or an E.164 phone to its id.
pub(crate) fn resolve_customer(conn: &Conn, customer: &str, param: &str) -> Result<String, Error> {
    let column = customer_column(customer);
    let sql = format!("SELECT id FROM customers WHERE {column} = ?1");
    conn.prepare_cached(&sql)
        .db()?
        .query_row([customer], |r| r.get::<_, String>(0))
        .optional()
        .db()?
        .ok_or_else(|| Error::not_found("customer", customer).with_param(param))
}

/// Whose row a cap is counted under.
#[derive(Clone, Copy)]
pub(crate) enum Owner {
    Customer,
    Merchant,
}

/// Locks the owner's row until the commit before something of theirs is counted
/// against a cap (cards, devices, webhook endpoints, bank accounts): two writers
/// adding at once count one after the other. SQLite's one writer needs no lock.
pub(crate) fn lock_owner(conn: &Conn, owner: Owner, id: &str) -> Result<(), Error> {
    if !conn.is_postgres() {
        return Ok(());
    }
    let sql = match owner {
        Owner::Customer => "SELECT id FROM customers WHERE id = ?1 FOR NO KEY UPDATE",
        Owner::Merchant => "SELECT id FROM merchants WHERE id = ?1 FOR NO KEY UPDATE",
    };
    conn.prepare_cached(sql)
        .db()?
        .query_row([id], |r| r.get::<_, String>(0))
        .optional()
        .db()?;
    Ok(())
}

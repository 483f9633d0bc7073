//! Customers, their sessions and PIN state, and top-ups.

use super::{Db, ledger, resolve_customer};
use crate::engine::SessionGrant;
use crate::ids::new_id;
use crate::model::{Customer, PinState, Topup};
use crate::sql::{Conn, Optional, params};
use pocket_core::ledger::{AccountKind, TransferKind};
use pocket_core::{Currency, Error};

pub(crate) fn signup(
    conn: &Conn,
    now: i64,
    phone: &str,
    name: &str,
    pin_hash: &str,
    token_digest: &str,
    session_expires_at: i64,
) -> Result<Customer, Error> {
    // The phone's unique index decides, also between two sign-ups on two nodes at
    // once: the second waits for the first's commit, then inserts nothing.
    let id = new_id("cus");
    let inserted = conn
        .prepare_cached(
            "INSERT INTO customers (id, phone, name, pin_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (phone) DO NOTHING",
        )
        .db()?
        .execute(params![id, phone, name, pin_hash, now])
        .db()?;
    if inserted == 0 {
        return Err(Error::conflict(
            "phone_taken",
            "A wallet with this phone number already exists.",
        )
        .with_param("phone"));
    }
    insert_session(conn, now, &id, token_digest, session_expires_at)?;
    Ok(Customer {
        id,
        phone: phone.to_string(),
        name: name.to_string(),
    })
}

fn insert_session(
    conn: &Conn,
    now: i64,
    customer_id: &str,
    token_digest: &str,
    expires_at: i64,
) -> Result<(), Error> {
    conn.prepare_cached("INSERT INTO sessions (token_digest, customer_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)")
        .db()?
        .execute(params![token_digest, customer_id, now, expires_at])
        .db()?;
    Ok(())
}

/// `by` is the column to look the customer up by: `"id"` or `"phone"`.
pub(crate) fn pin_state(
    conn: &Conn,
    by: &'static str,
    value: &str,
) -> Result<Option<PinState>, Error> {
    let sql = format!("SELECT id, phone, name, pin_hash FROM customers WHERE {by} = ?1");
    conn.prepare_cached(&sql)
        .db()?
        .query_row([value], |r| {
            Ok(PinState {
                customer: Customer {
                    id: r.get(0)?,
                    phone: r.get(1)?,
                    name: r.get(2)?,
                },
                pin_hash: r.get(3)?,
            })
        })
        .optional()
        .db()
}

pub(crate) fn create_session(
    conn: &Conn,
    now: i64,
    customer_id: &str,
    token_digest: &str,
    expires_at: i64,
) -> Result<Customer, Error> {
    insert_session(conn, now, customer_id, token_digest, expires_at)?;
    pin_state(conn, "id", customer_id)?
        .map(|s| s.customer)
        .ok_or_else(|| Error::not_found("customer", customer_id))
}

/// Replaces a PIN hash made at an older cost, unless the PIN changed meanwhile.
pub(crate) fn rehash_pin(
    conn: &Conn,
    customer_id: &str,
    rehash: &crate::PinRehash,
) -> Result<(), Error> {
    conn.prepare_cached("UPDATE customers SET pin_hash = ?3 WHERE id = ?1 AND pin_hash = ?2")
        .db()?
        .execute(params![customer_id, rehash.old_hash, rehash.new_hash])
        .db()?;
    Ok(())
}

/// Whose session a token is while it is valid, and until when.
pub(crate) fn session(
    conn: &Conn,
    token_digest: &str,
    now: i64,
) -> Result<Option<SessionGrant>, Error> {
    conn.prepare_cached(
        "SELECT c.id, c.phone, c.name, s.expires_at FROM sessions s JOIN customers c ON c.id = s.customer_id
         WHERE s.token_digest = ?1 AND s.expires_at > ?2",
    )
    .db()?
    .query_row(params![token_digest, now], |r| {
        Ok(SessionGrant {
            customer: Customer {
                id: r.get(0)?,
                phone: r.get(1)?,
                name: r.get(2)?,
            },
            expires_at: r.get(3)?,
        })
    })
    .optional()
    .db()
}

/// Signs a session out, revoking the devices it registered; the customer it belonged
/// to, whose streams end now.
pub(crate) fn delete_session(
    conn: &Conn,
    now: i64,
    token_digest: &str,
) -> Result<Option<String>, Error> {
    super::devices::revoke_of_session(conn, now, token_digest)?;
    let customer: Option<String> = conn
        .prepare_cached("DELETE FROM sessions WHERE token_digest = ?1 RETURNING customer_id")
        .db()?
        .query_row([token_digest], |r| r.get(0))
        .optional()
        .db()?;
    if let Some(c) = &customer {
        conn.notify_revoked(&format!("customer:{c}")).db()?;
    }
    Ok(customer)
}

/// Credits a wallet from the operator's settlement account in one ledger transfer.
pub(crate) fn topup(
    conn: &Conn,
    now: i64,
    customer: &str,
    amount: i64,
    currency: Currency,
    source: &str,
) -> Result<Topup, Error> {
    let customer_id = resolve_customer(conn, customer, "customer")?;
    let id = new_id("top");
    conn.prepare_cached(
        "INSERT INTO topups (id, customer_id, amount, currency, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![id, customer_id, amount, currency.code(), source, now])
    .db()?;
    ledger::transfer(
        conn,
        now,
        (AccountKind::Settlement, ledger::OPERATOR),
        (AccountKind::Wallet, &customer_id),
        amount,
        currency,
        TransferKind::Topup,
        &id,
    )?;
    Ok(Topup {
        id,
        object: "topup",
        customer: customer_id,
        amount,
        currency,
        created_at: now,
    })
}

pub(crate) fn create_ticket(
    conn: &Conn,
    now: i64,
    customer_id: &str,
    digest: &str,
    session_digest: &str,
    expires_at: i64,
) -> Result<(), Error> {
    // Forget expired tickets while here: the table stays small.
    conn.prepare_cached("DELETE FROM stream_tickets WHERE expires_at <= ?1")
        .db()?
        .execute([now])
        .db()?;
    conn.prepare_cached(
        "INSERT INTO stream_tickets (ticket_digest, customer_id, session_digest, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )
    .db()?
    .execute(params![digest, customer_id, session_digest, expires_at])
    .db()?;
    Ok(())
}

/// Uses a ticket up: valid once, before it expires.
pub(crate) fn redeem_ticket(
    conn: &Conn,
    now: i64,
    digest: &str,
) -> Result<Option<(Customer, String)>, Error> {
    let redeemed: Option<(String, String)> = conn
        .prepare_cached(
            "DELETE FROM stream_tickets WHERE ticket_digest = ?1 AND expires_at > ?2
             RETURNING customer_id, session_digest",
        )
        .db()?
        .query_row(params![digest, now], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?;
    match redeemed {
        Some((id, session)) => Ok(pin_state(conn, "id", &id)?.map(|s| (s.customer, session))),
        None => Ok(None),
    }
}

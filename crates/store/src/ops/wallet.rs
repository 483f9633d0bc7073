//! Customers, their sessions and PIN state, and top-ups.

use super::Outcome;
use super::{Db, ledger, resolve_customer};
use crate::ids::new_id;
use crate::model::SessionGrant;
use crate::model::{Customer, PinState, Topup};
use crate::sql::{Conn, Optional, params};
use pocket_core::ledger::{AccountKind, Transfer, TransferKind};
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
        &Transfer::new(
            (AccountKind::Settlement, ledger::OPERATOR),
            (AccountKind::Wallet, &customer_id),
            amount,
            currency,
            TransferKind::Topup,
            &id,
        )?,
    )?;
    let topup = Topup {
        id,
        object: "topup",
        customer: customer_id,
        amount,
        currency,
        created_at: now,
    };
    // The wallet hears it (its stream, its history) as it hears a bank's top-up.
    super::events::emit(
        conn,
        now,
        "topup.succeeded",
        super::events::Subject {
            merchant_id: "",
            customer_id: Some(&topup.customer),
            payment_id: None,
        },
        &topup,
    )?;
    Ok(topup)
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

/// Most wrong guesses one PIN-reset code takes; then only a new code helps.
pub const MAX_RESET_GUESSES: i64 = 5;

/// The answer to a reset code that is wrong, used, expired or worn out by guesses, and
/// to a phone without a code: all alike.
pub fn reset_code_invalid() -> Error {
    Error::new(
        pocket_core::ErrorKind::Authentication,
        "reset_code_invalid",
        "This code is wrong, used or expired. Ask the operator for a new one.",
    )
    .with_param("code")
}

/// Signs out every session of the customer but `keep` — wallet sessions, and the
/// console sessions they hold as a member of any shop's staff — and revokes every
/// device key but those `keep` registered (a device from before devices were tied to
/// sessions has none: revoked too); the customer's streams and the shops hear it.
fn sign_out_others(
    conn: &Conn,
    now: i64,
    customer_id: &str,
    keep: Option<&str>,
) -> Result<(), Error> {
    let keep = keep.unwrap_or("");
    conn.prepare_cached(
        "UPDATE devices SET revoked_at = ?3 WHERE customer_id = ?1 AND revoked_at IS NULL
           AND (session_digest IS NULL OR session_digest <> ?2)",
    )
    .db()?
    .execute(params![customer_id, keep, now])
    .db()?;
    let shops = conn
        .prepare_cached(
            "UPDATE api_keys SET expires_at = ?2
             WHERE staff_id IN (SELECT id FROM staff WHERE customer_id = ?1)
               AND (expires_at IS NULL OR expires_at > ?2)
             RETURNING merchant_id",
        )
        .db()?
        .query_map(params![customer_id, now], |r| r.get::<_, String>(0))
        .db()?;
    for shop in shops {
        conn.notify_revoked(&format!("merchant:{}", shop.db()?))
            .db()?;
    }
    conn.prepare_cached("DELETE FROM sessions WHERE customer_id = ?1 AND token_digest <> ?2")
        .db()?
        .execute(params![customer_id, keep])
        .db()?;
    conn.notify_revoked(&format!("customer:{customer_id}"))
        .db()?;
    Ok(())
}

fn customer(conn: &Conn, customer_id: &str) -> Result<Customer, Error> {
    pin_state(conn, "id", customer_id)?
        .map(|s| s.customer)
        .ok_or_else(|| Error::not_found("customer", customer_id))
}

/// A new PIN after the old one was proven: only if the hash is still the one the proof
/// was checked against (two changes at once: one wins, the other is told). Every other
/// session ends, with the devices it registered.
pub(crate) fn change_pin(
    conn: &Conn,
    now: i64,
    customer_id: &str,
    keep_session: &str,
    change: &crate::PinRehash,
) -> Result<Outcome<Customer>, Error> {
    let changed = conn
        .prepare_cached("UPDATE customers SET pin_hash = ?3 WHERE id = ?1 AND pin_hash = ?2")
        .db()?
        .execute(params![customer_id, change.old_hash, change.new_hash])
        .db()?;
    if changed != 1 {
        return Ok(Outcome::Refused(Error::conflict(
            "pin_changed",
            "The PIN was changed meanwhile; sign in with the new one.",
        )));
    }
    sign_out_others(conn, now, customer_id, Some(keep_session))?;
    customer(conn, customer_id).map(Outcome::Done)
}

/// Issues a customer's PIN-reset code (its keyed digest), replacing any earlier one.
pub(crate) fn issue_pin_reset(
    conn: &Conn,
    now: i64,
    customer_id: &str,
    code_digest: &str,
    expires_at: i64,
) -> Result<Customer, Error> {
    let who = customer(conn, customer_id)?;
    conn.prepare_cached(
        "INSERT INTO pin_resets (customer_id, code_digest, created_at, expires_at, attempts, used_at)
         VALUES (?1, ?2, ?3, ?4, 0, NULL)
         ON CONFLICT (customer_id) DO UPDATE SET code_digest = excluded.code_digest,
             created_at = excluded.created_at, expires_at = excluded.expires_at,
             attempts = 0, used_at = NULL",
    )
    .db()?
    .execute(params![customer_id, code_digest, now, expires_at])
    .db()?;
    Ok(who)
}

/// Takes one guess of the reset code of the wallet with `phone`, before the guess is
/// compared: the customer and the code's digest, or `None` when there is no live code
/// (none, used, expired, or out of guesses). However many guesses arrive at once, no
/// code is compared more than [`MAX_RESET_GUESSES`] times.
pub(crate) fn take_reset_guess(
    conn: &Conn,
    now: i64,
    phone: &str,
) -> Result<Option<(String, String)>, Error> {
    conn.prepare_cached(
        "UPDATE pin_resets SET attempts = attempts + 1
         WHERE customer_id = (SELECT id FROM customers WHERE phone = ?1)
           AND used_at IS NULL AND expires_at > ?2 AND attempts < ?3
         RETURNING customer_id, code_digest",
    )
    .db()?
    .query_row(params![phone, now, MAX_RESET_GUESSES], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
    .db()
}

/// What a right reset code does, once: the code is spent (only while live), the PIN is
/// replaced, the PIN guards named are cleared, every session ends and a new one begins.
pub(crate) struct Redeem<'a> {
    pub customer_id: &'a str,
    pub code_digest: &'a str,
    pub pin_hash: &'a str,
    pub guards: &'a [String],
    pub session: &'a (String, i64),
}

pub(crate) fn redeem_pin_reset(
    conn: &Conn,
    now: i64,
    r: &Redeem<'_>,
) -> Result<Outcome<Customer>, Error> {
    let spent = conn
        .prepare_cached(
            "UPDATE pin_resets SET used_at = ?3
             WHERE customer_id = ?1 AND code_digest = ?2 AND used_at IS NULL AND expires_at > ?3",
        )
        .db()?
        .execute(params![r.customer_id, r.code_digest, now])
        .db()?;
    if spent != 1 {
        return Ok(Outcome::Refused(reset_code_invalid()));
    }
    conn.prepare_cached("UPDATE customers SET pin_hash = ?2 WHERE id = ?1")
        .db()?
        .execute(params![r.customer_id, r.pin_hash])
        .db()?;
    for subject in r.guards {
        conn.prepare_cached("DELETE FROM pin_guards WHERE subject = ?1")
            .db()?
            .execute([subject])
            .db()?;
    }
    sign_out_others(conn, now, r.customer_id, None)?;
    insert_session(conn, now, r.customer_id, &r.session.0, r.session.1)?;
    customer(conn, r.customer_id).map(Outcome::Done)
}

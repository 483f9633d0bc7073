//! Bank cards bound to wallets: what the bank handed back for them, never the number.

use super::Db;
use crate::ids::new_id;
use crate::model::{Card, NewCard};
use crate::sql::{Conn, Optional, params};
use pocket_core::Error;

/// Most cards bound to one wallet at a time.
pub const MAX_CARDS: i64 = 5;

const COLS: &str = "id, connector, brand, last4, exp_month, exp_year, created_at";

fn row(r: &crate::sql::Row<'_>) -> crate::sql::Result<Card> {
    Ok(Card {
        id: r.get(0)?,
        object: "card",
        connector: r.get(1)?,
        brand: r.get(2)?,
        last4: r.get(3)?,
        exp_month: r.get(4)?,
        exp_year: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn already_bound() -> Error {
    Error::conflict(
        "card_already_bound",
        "This card is already bound to this wallet.",
    )
    .with_param("number")
}

/// Whether the wallet has this card (by fingerprint) bound now.
pub(crate) fn is_bound(conn: &Conn, customer_id: &str, fingerprint: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM cards WHERE customer_id = ?1 AND fingerprint = ?2 AND removed_at IS NULL",
        )
        .db()?
        .query_row(params![customer_id, fingerprint], |_| Ok(()))
        .optional()
        .db()?
        .is_some())
}

/// Binds a card the bank accepted: at most [`MAX_CARDS`] per wallet, each once.
pub(crate) fn add(conn: &Conn, now: i64, customer_id: &str, card: &NewCard) -> Result<Card, Error> {
    super::lock_owner(conn, super::Owner::Customer, customer_id)?;
    let bound: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM cards WHERE customer_id = ?1 AND removed_at IS NULL")
        .db()?
        .query_row([customer_id], |r| r.get(0))
        .db()?;
    if bound >= MAX_CARDS {
        return Err(Error::conflict(
            "too_many_cards",
            format!("A wallet may have at most {MAX_CARDS} cards; remove one first."),
        ));
    }
    if is_bound(conn, customer_id, &card.fingerprint)? {
        return Err(already_bound());
    }
    let id = new_id("card");
    conn.prepare_cached(
        "INSERT INTO cards (id, customer_id, connector, token, brand, last4, exp_month, exp_year, fingerprint, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .db()?
    .execute(params![
        id,
        customer_id,
        card.connector,
        card.token,
        card.brand,
        card.last4,
        card.exp_month,
        card.exp_year,
        card.fingerprint,
        now
    ])
    .db()?;
    Ok(Card {
        id,
        object: "card",
        connector: card.connector.clone(),
        brand: card.brand.clone(),
        last4: card.last4.clone(),
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        created_at: now,
    })
}

/// A bound card of this wallet, with the connector's token for it.
pub(crate) fn with_token(
    conn: &Conn,
    customer_id: &str,
    card_id: &str,
) -> Result<Option<(Card, String)>, Error> {
    let sql = format!(
        "SELECT {COLS}, token FROM cards WHERE id = ?1 AND customer_id = ?2 AND removed_at IS NULL"
    );
    conn.prepare_cached(&sql)
        .db()?
        .query_row(params![card_id, customer_id], |r| Ok((row(r)?, r.get(7)?)))
        .optional()
        .db()
}

pub(crate) fn list(conn: &Conn, customer_id: &str) -> Result<Vec<Card>, Error> {
    let sql = format!(
        "SELECT {COLS} FROM cards WHERE customer_id = ?1 AND removed_at IS NULL ORDER BY seq DESC"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt.query_map([customer_id], row).db()?;
    rows.collect::<crate::sql::Result<_>>().db()
}

/// Unbinds a card (kept, marked removed, for the operations that used it).
pub(crate) fn remove(conn: &Conn, now: i64, customer_id: &str, id: &str) -> Result<Card, Error> {
    let sql = format!(
        "UPDATE cards SET removed_at = ?3 WHERE id = ?1 AND customer_id = ?2 AND removed_at IS NULL
         RETURNING {COLS}"
    );
    conn.prepare_cached(&sql)
        .db()?
        .query_row(params![id, customer_id, now], row)
        .optional()
        .db()?
        .ok_or_else(|| Error::not_found("card", id))
}

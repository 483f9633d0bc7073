//! Merchants and their secret keys (stored as digests only).

use super::{Db, cursor_seq};
use crate::ids::new_id;
use crate::model::KeyGrant;
use crate::model::{Merchant, MerchantAuth, Page, PageRequest};
use crate::sql::{Conn, Optional, params};
use pocket_core::Error;

pub(crate) fn create(
    conn: &Conn,
    now: i64,
    name: &str,
    key_digest: &str,
    key_prefix: &str,
) -> Result<Merchant, Error> {
    let id = new_id("mer");
    conn.prepare_cached("INSERT INTO merchants (id, name, created_at) VALUES (?1, ?2, ?3)")
        .db()?
        .execute(params![id, name, now])
        .db()?;
    insert_key(conn, now, &id, key_digest, key_prefix)?;
    Ok(Merchant {
        id,
        object: "merchant",
        name: name.to_string(),
        created_at: now,
    })
}

/// The merchant a key belongs to while it is valid, and until when.
pub(crate) fn by_key(conn: &Conn, key_digest: &str, now: i64) -> Result<Option<KeyGrant>, Error> {
    conn.prepare_cached(
        "SELECT m.id, m.name, k.expires_at, k.scopes, s.role, k.staff_id FROM api_keys k
         JOIN merchants m ON m.id = k.merchant_id LEFT JOIN staff s ON s.id = k.staff_id
         WHERE k.key_digest = ?1 AND (k.expires_at IS NULL OR k.expires_at > ?2)",
    )
    .db()?
    .query_row(params![key_digest, now], |r| {
        let scopes: Option<String> = r.get(3)?;
        Ok(KeyGrant {
            auth: MerchantAuth {
                merchant_id: r.get(0)?,
                name: r.get(1)?,
                scopes: scopes.map(|s| pocket_core::scope::from_text(&s)),
                role: r.get(4)?,
                staff_id: r.get(5)?,
            },
            expires_at: r.get(2)?,
        })
    })
    .optional()
    .db()
}

fn insert_key(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    key_digest: &str,
    key_prefix: &str,
) -> Result<(), Error> {
    conn.prepare_cached("INSERT INTO api_keys (key_digest, merchant_id, created_at, prefix) VALUES (?1, ?2, ?3, ?4)")
        .db()?
        .execute(params![key_digest, merchant_id, now, key_prefix])
        .db()?;
    Ok(())
}

/// When the key rolling itself was made; a key already being retired may not roll
/// (`409 key_expiring`), so a leaked key cannot retire the keys that replace it.
fn rolling_key_made_at(conn: &Conn, merchant_id: &str, caller: &str) -> Result<i64, Error> {
    let (created_at, expires_at): (i64, Option<i64>) = conn
        .prepare_cached(
            "SELECT created_at, expires_at FROM api_keys WHERE key_digest = ?1 AND merchant_id = ?2",
        )
        .db()?
        .query_row(params![caller, merchant_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?
        .ok_or_else(|| Error::not_found("merchant", merchant_id))?;
    if expires_at.is_some() {
        return Err(Error::conflict(
            "key_expiring",
            "This key is being retired; roll with the merchant's newest key.",
        ));
    }
    Ok(created_at)
}

/// Issues a new key and lets every older, still valid key live until `old_expires_at`
/// (`now` for immediate revocation). With `by_key` (a merchant rolling its own key),
/// only keys created no later than that one are retired, and a key already being
/// retired may not roll.
pub(crate) fn roll_key(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    key_digest: &str,
    key_prefix: &str,
    old_expires_at: i64,
    by_key: Option<&str>,
) -> Result<Merchant, Error> {
    // Locked: two rolls at once (on any nodes) read the keys one after the other, so
    // only one retires the caller's key.
    let merchant = conn
        .prepare_cached(
            "SELECT id, name, created_at FROM merchants WHERE id = ?1 FOR NO KEY UPDATE",
        )
        .db()?
        .query_row([merchant_id], |r| {
            Ok(Merchant {
                id: r.get(0)?,
                object: "merchant",
                name: r.get(1)?,
                created_at: r.get(2)?,
            })
        })
        .optional()
        .db()?
        .ok_or_else(|| Error::not_found("merchant", merchant_id))?;
    // Which keys retire: all of them (the operator), or those no newer than the caller's.
    let newest_retired = match by_key {
        None => i64::MAX,
        Some(caller) => rolling_key_made_at(conn, merchant_id, caller)?,
    };
    // A merchant's own roll retires secret keys (restricted keys and staff sessions are
    // listed and ended one by one); the operator's, for a merchant whose credentials
    // leaked, retires every credential of the merchant.
    let which = if by_key.is_some() {
        "AND scopes IS NULL"
    } else {
        ""
    };
    conn.prepare_cached(&format!(
        "UPDATE api_keys SET expires_at = ?2
         WHERE merchant_id = ?1 AND (expires_at IS NULL OR expires_at > ?2) AND created_at <= ?3
           {which}"
    ))
    .db()?
    .execute(params![merchant_id, old_expires_at, newest_retired])
    .db()?;
    if old_expires_at <= now {
        conn.notify_revoked(&format!("merchant:{merchant_id}"))
            .db()?;
    }
    insert_key(conn, now, merchant_id, key_digest, key_prefix)?;
    Ok(merchant)
}

/// Merchants, newest first.
pub(crate) fn list(conn: &Conn, page: &PageRequest) -> Result<Page<Merchant>, Error> {
    // (`cursor_seq` binds an owner; merchants have none, so it is matched by `?2 = ''`.)
    let before = cursor_seq(
        conn,
        "SELECT seq FROM merchants WHERE id = ?1 AND ?2 = ''",
        page.starting_after.as_deref(),
        "",
    )?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, name, created_at FROM merchants WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
        )
        .db()?;
    let rows = stmt
        .query_map(params![before, (page.limit + 1) as i64], |r| {
            Ok(Merchant {
                id: r.get(0)?,
                object: "merchant",
                name: r.get(1)?,
                created_at: r.get(2)?,
            })
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.db()?);
    }
    Ok(Page::new(out, page.limit))
}

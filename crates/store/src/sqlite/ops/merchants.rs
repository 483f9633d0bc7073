//! Merchants and their secret keys (stored as digests only).

use super::Db;
use crate::ids::new_id;
use crate::model::{Merchant, MerchantAuth};
use pocket_core::Error;
use rusqlite::{Connection, OptionalExtension, params};

pub(in crate::sqlite) fn create(
    conn: &Connection,
    now: i64,
    name: &str,
    key_digest: &str,
) -> Result<Merchant, Error> {
    let id = new_id("mer");
    conn.prepare_cached("INSERT INTO merchants (id, name, created_at) VALUES (?1, ?2, ?3)")
        .db()?
        .execute(params![id, name, now])
        .db()?;
    conn.prepare_cached(
        "INSERT INTO api_keys (key_digest, merchant_id, created_at) VALUES (?1, ?2, ?3)",
    )
    .db()?
    .execute(params![key_digest, id, now])
    .db()?;
    Ok(Merchant {
        id,
        object: "merchant",
        name: name.to_string(),
        created_at: now,
    })
}

pub(in crate::sqlite) fn by_key(
    conn: &Connection,
    key_digest: &str,
    now: i64,
) -> Result<Option<MerchantAuth>, Error> {
    conn.prepare_cached(
        "SELECT m.id, m.name FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
         WHERE k.key_digest = ?1 AND (k.expires_at IS NULL OR k.expires_at > ?2)",
    )
    .db()?
    .query_row(params![key_digest, now], |r| {
        Ok(MerchantAuth {
            merchant_id: r.get(0)?,
            name: r.get(1)?,
        })
    })
    .optional()
    .db()
}

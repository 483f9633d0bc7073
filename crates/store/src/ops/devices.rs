//! Device keys: public keys (JWK) that sign confirmations of large payments.

use super::Db;
use crate::ids::new_id;
use crate::model::Device;
use crate::sql::{Conn, Optional, Row, params};
use pocket_core::Error;

/// Active device keys one customer may have.
pub const MAX_DEVICES_PER_CUSTOMER: i64 = 10;

fn device(r: &Row<'_>) -> crate::sql::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        object: "device",
        name: r.get(1)?,
        created_at: r.get(2)?,
        revoked_at: r.get(3)?,
        public_key: r.get(4)?,
    })
}

const COLS: &str = "id, name, created_at, revoked_at, public_key";

pub(crate) fn add(
    conn: &Conn,
    now: i64,
    customer_id: &str,
    name: &str,
    public_key: &str,
    session_digest: &str,
) -> Result<Device, Error> {
    super::lock_owner(conn, super::Owner::Customer, customer_id)?;
    let active: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM devices WHERE customer_id = ?1 AND revoked_at IS NULL",
        )
        .db()?
        .query_row([customer_id], |r| r.get(0))
        .db()?;
    if active >= MAX_DEVICES_PER_CUSTOMER {
        return Err(Error::invalid(
            "public_key",
            format!(
                "A wallet may have at most {MAX_DEVICES_PER_CUSTOMER} device keys; revoke one first."
            ),
        ));
    }
    let d = Device {
        id: new_id("dev"),
        object: "device",
        name: name.to_string(),
        created_at: now,
        revoked_at: None,
        public_key: public_key.to_string(),
    };
    conn.prepare_cached(
        "INSERT INTO devices (id, customer_id, name, public_key, created_at, session_digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![
        d.id,
        customer_id,
        d.name,
        d.public_key,
        now,
        session_digest
    ])
    .db()?;
    Ok(d)
}

pub(crate) fn list(conn: &Conn, customer_id: &str) -> Result<Vec<Device>, Error> {
    let sql =
        format!("SELECT {COLS} FROM devices WHERE customer_id = ?1 ORDER BY seq DESC LIMIT 100");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt.query_map([customer_id], device).db()?;
    rows.collect::<crate::sql::Result<_>>().db()
}

pub(crate) fn get(conn: &Conn, customer_id: &str, id: &str) -> Result<Option<Device>, Error> {
    let sql = format!("SELECT {COLS} FROM devices WHERE id = ?1 AND customer_id = ?2");
    conn.prepare_cached(&sql)
        .db()?
        .query_row(params![id, customer_id], device)
        .optional()
        .db()
}

pub(crate) fn revoke(conn: &Conn, now: i64, customer_id: &str, id: &str) -> Result<Device, Error> {
    let Some(mut d) = get(conn, customer_id, id)? else {
        return Err(Error::not_found("device", id));
    };
    if d.revoked_at.is_none() {
        conn.prepare_cached(
            "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        )
        .db()?
        .execute(params![id, now])
        .db()?;
        d.revoked_at = Some(now);
    }
    Ok(d)
}

/// Revokes the devices registered in the session `session_digest` (the session
/// signs out: its phone's codes and device key stop working in the same transaction).
pub(crate) fn revoke_of_session(conn: &Conn, now: i64, session_digest: &str) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE devices SET revoked_at = ?2 WHERE session_digest = ?1 AND revoked_at IS NULL",
    )
    .db()?
    .execute(params![session_digest, now])
    .db()?;
    Ok(())
}

/// Inside a confirm: is the device still active? (Revocation wins over a signature
/// made before it.)
/// Read FOR SHARE: a revocation on another node waits for this confirm's commit, or
/// this confirm reads the device revoked.
pub(crate) fn is_active(conn: &Conn, customer_id: &str, id: &str) -> Result<bool, Error> {
    conn.prepare_cached(
        "SELECT id FROM devices WHERE id = ?1 AND customer_id = ?2 AND revoked_at IS NULL FOR SHARE",
    )
    .db()?
    .query_row(params![id, customer_id], |r| r.get::<_, String>(0))
    .optional()
    .db()
    .map(|d| d.is_some())
}

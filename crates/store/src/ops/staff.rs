//! Who else may act for a merchant: restricted keys (`rk_…`, scopes chosen by the
//! merchant) and staff (wallet holders invited by phone with a role), whose console
//! sessions are key rows with the role's scopes. All of them live in `api_keys` beside
//! the secret key; a row with `scopes` is never a secret key (a roll leaves it alone).

use super::Outcome;
use super::{Db, resolve_customer};
use crate::ids::new_id;
use crate::model::{Membership, RestrictedKey, Staff};
use crate::sql::{Conn, Optional, params};
use pocket_core::{Error, scope};

/// Most restricted keys and most staff a merchant may have at once.
pub const MAX_RESTRICTED_KEYS: i64 = 50;
pub const MAX_STAFF: i64 = 100;

/// A restricted key to store: its id, name and scopes, and its secret's digest.
pub struct NewRestrictedKey<'a> {
    pub merchant_id: &'a str,
    pub name: &'a str,
    pub scopes: &'a [scope::Scope],
    pub key_digest: &'a str,
    pub prefix: &'a str,
    /// The member of the staff making it (`None`: the secret key).
    pub made_by_staff: Option<&'a str>,
}

/// Locks the merchant's row: caps are counted under it, so two at once cannot both
/// take the last place.
fn lock_merchant(conn: &Conn, merchant_id: &str) -> Result<(), Error> {
    conn.prepare_cached("SELECT id FROM merchants WHERE id = ?1 FOR UPDATE")
        .db()?
        .query_row([merchant_id], |r| r.get::<_, String>(0))
        .optional()
        .db()?
        .map(|_| ())
        .ok_or_else(|| Error::not_found("merchant", merchant_id))
}

fn count(conn: &Conn, sql: &str, merchant_id: &str, now: i64) -> Result<i64, Error> {
    conn.prepare_cached(sql)
        .db()?
        .query_row(params![merchant_id, now], |r| r.get(0))
        .db()
}

pub(crate) fn create_restricted_key(
    conn: &Conn,
    now: i64,
    k: &NewRestrictedKey<'_>,
) -> Result<Outcome<RestrictedKey>, Error> {
    lock_merchant(conn, k.merchant_id)?;
    let live = count(
        conn,
        "SELECT COUNT(*) FROM api_keys WHERE merchant_id = ?1 AND id IS NOT NULL AND staff_id IS NULL
           AND (expires_at IS NULL OR expires_at > ?2)",
        k.merchant_id,
        now,
    )?;
    if live >= MAX_RESTRICTED_KEYS {
        return Ok(Outcome::Refused(Error::conflict(
            "too_many_keys",
            format!(
                "A merchant has at most {MAX_RESTRICTED_KEYS} restricted keys; revoke one first."
            ),
        )));
    }
    let id = new_id("rk");
    let scopes = scope::to_text(k.scopes);
    conn.prepare_cached(
        "INSERT INTO api_keys (key_digest, merchant_id, created_at, prefix, id, name, scopes, made_by_staff)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db()?
    .execute(params![
        k.key_digest,
        k.merchant_id,
        now,
        k.prefix,
        id,
        k.name,
        scopes,
        k.made_by_staff
    ])
    .db()?;
    Ok(Outcome::Done(RestrictedKey {
        id,
        object: "restricted_key",
        name: k.name.to_string(),
        scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
        prefix: k.prefix.to_string(),
        created_at: now,
        secret: None,
    }))
}

pub(crate) fn list_restricted_keys(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
) -> Result<Vec<RestrictedKey>, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, name, scopes, prefix, created_at FROM api_keys
             WHERE merchant_id = ?1 AND id IS NOT NULL AND staff_id IS NULL
               AND (expires_at IS NULL OR expires_at > ?2)
             ORDER BY created_at DESC, id DESC",
        )
        .db()?;
    let rows = stmt
        .query_map(params![merchant_id, now], |r| {
            let scopes: String = r.get(2)?;
            Ok(RestrictedKey {
                id: r.get(0)?,
                object: "restricted_key",
                name: r.get(1)?,
                scopes: scope::from_text(&scopes)
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
                prefix: r.get(3)?,
                created_at: r.get(4)?,
                secret: None,
            })
        })
        .db()?;
    rows.collect::<crate::sql::Result<_>>().db()
}

/// Revokes a restricted key now; `404` for one that is not this merchant's or is gone.
pub(crate) fn revoke_restricted_key(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    id: &str,
) -> Result<(), Error> {
    let revoked = conn
        .prepare_cached(
            "UPDATE api_keys SET expires_at = ?3
             WHERE id = ?1 AND merchant_id = ?2 AND staff_id IS NULL
               AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .db()?
        .execute(params![id, merchant_id, now])
        .db()?;
    if revoked != 1 {
        return Err(Error::not_found("restricted_key", id));
    }
    conn.notify_revoked(&format!("merchant:{merchant_id}"))
        .db()?;
    Ok(())
}

const STAFF_COLS: &str = "s.id, s.customer_id, c.phone, s.role, s.created_at";

fn staff_row(r: &crate::sql::Row<'_>) -> crate::sql::Result<Staff> {
    Ok(Staff {
        id: r.get(0)?,
        object: "staff",
        customer: r.get(1)?,
        phone: r.get(2)?,
        role: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// Adds a wallet holder (`customer`: a `cus_` id or an E.164 phone) to the merchant's
/// staff with `role`.
pub(crate) fn add_staff(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    customer: &str,
    role: scope::Role,
) -> Result<Outcome<Staff>, Error> {
    lock_merchant(conn, merchant_id)?;
    let customer_id = resolve_customer(conn, customer, "phone")?;
    if count(
        conn,
        "SELECT COUNT(*) FROM staff WHERE merchant_id = ?1 AND created_at <= ?2",
        merchant_id,
        now,
    )? >= MAX_STAFF
    {
        return Ok(Outcome::Refused(Error::conflict(
            "too_many_staff",
            format!("A shop has at most {MAX_STAFF} staff; remove someone first."),
        )));
    }
    let id = new_id("stf");
    let added = conn
        .prepare_cached(
            "INSERT INTO staff (id, merchant_id, customer_id, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (merchant_id, customer_id) DO NOTHING",
        )
        .db()?
        .execute(params![id, merchant_id, customer_id, role.as_str(), now])
        .db()?;
    if added != 1 {
        return Ok(Outcome::Refused(
            Error::conflict(
                "staff_exists",
                "This person is already on the staff; remove them first to change their role.",
            )
            .with_param("phone"),
        ));
    }
    let sql = format!(
        "SELECT {STAFF_COLS} FROM staff s JOIN customers c ON c.id = s.customer_id WHERE s.id = ?1"
    );
    let staff = conn
        .prepare_cached(&sql)
        .db()?
        .query_row([&id], staff_row)
        .db()?;
    Ok(Outcome::Done(staff))
}

pub(crate) fn list_staff(conn: &Conn, merchant_id: &str) -> Result<Vec<Staff>, Error> {
    let sql = format!(
        "SELECT {STAFF_COLS} FROM staff s JOIN customers c ON c.id = s.customer_id
         WHERE s.merchant_id = ?1 ORDER BY s.created_at DESC, s.id DESC LIMIT {MAX_STAFF}"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt.query_map([merchant_id], staff_row).db()?;
    rows.collect::<crate::sql::Result<_>>().db()
}

/// Removes a member of the staff and ends, now, their console sessions and the
/// restricted keys they made.
pub(crate) fn remove_staff(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    id: &str,
) -> Result<(), Error> {
    let removed = conn
        .prepare_cached("DELETE FROM staff WHERE id = ?1 AND merchant_id = ?2")
        .db()?
        .execute(params![id, merchant_id])
        .db()?;
    if removed != 1 {
        return Err(Error::not_found("staff", id));
    }
    conn.prepare_cached(
        "UPDATE api_keys SET expires_at = ?2
         WHERE (staff_id = ?1 OR made_by_staff = ?1) AND (expires_at IS NULL OR expires_at > ?2)",
    )
    .db()?
    .execute(params![id, now])
    .db()?;
    conn.notify_revoked(&format!("merchant:{merchant_id}"))
        .db()?;
    Ok(())
}

/// Where the customer is staff, newest first.
pub(crate) fn memberships(conn: &Conn, customer_id: &str) -> Result<Vec<Membership>, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, merchant_id, role FROM staff WHERE customer_id = ?1
             ORDER BY created_at DESC LIMIT 100",
        )
        .db()?;
    let rows = stmt
        .query_map([customer_id], |r| {
            Ok(Membership {
                staff_id: r.get(0)?,
                merchant_id: r.get(1)?,
                role: r.get(2)?,
            })
        })
        .db()?;
    rows.collect::<crate::sql::Result<_>>().db()
}

/// A console session for a member of the staff, with their role's scopes, if they are
/// still on the staff as it commits.
pub(crate) fn create_staff_session(
    conn: &Conn,
    now: i64,
    staff_id: &str,
    key_digest: &str,
    expires_at: i64,
) -> Result<Outcome<Membership>, Error> {
    let Some(member) = conn
        .prepare_cached("SELECT id, merchant_id, role FROM staff WHERE id = ?1 FOR SHARE")
        .db()?
        .query_row([staff_id], |r| {
            Ok(Membership {
                staff_id: r.get(0)?,
                merchant_id: r.get(1)?,
                role: r.get(2)?,
            })
        })
        .optional()
        .db()?
    else {
        return Ok(Outcome::Refused(Error::not_found("staff", staff_id)));
    };
    let role = scope::Role::parse(&member.role).ok_or_else(Error::internal)?;
    conn.prepare_cached(
        "INSERT INTO api_keys (key_digest, merchant_id, created_at, expires_at, prefix, scopes, staff_id)
         VALUES (?1, ?2, ?3, ?4, 'sst_', ?5, ?6)",
    )
    .db()?
    .execute(params![
        key_digest,
        member.merchant_id,
        now,
        expires_at,
        scope::to_text(role.scopes()),
        staff_id
    ])
    .db()?;
    Ok(Outcome::Done(member))
}

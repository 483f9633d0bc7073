//! Durable idempotency records: the first response to `(caller, key)`, kept 24 h,
//! written in the same transaction as the effect it describes.

use super::Db;
use super::Outcome;
use crate::model::{Idem, StoredResponse, Written};
use crate::sql::{Conn, Optional, params};
use crate::sweeper::IDEMPOTENCY_TTL_MS;
use pocket_core::error::internal;
use pocket_core::{Error, ErrorKind};
use serde::Serialize;

pub(crate) fn find(
    conn: &Conn,
    caller: &str,
    key: &str,
    now: i64,
) -> Result<Option<(String, StoredResponse)>, Error> {
    conn.prepare_cached(
        "SELECT fingerprint, status, body FROM idempotency_keys
         WHERE caller = ?1 AND key = ?2 AND created_at > ?3 AND status > 0",
    )
    .db()?
    .query_row(params![caller, key, now - IDEMPOTENCY_TTL_MS], |r| {
        Ok((
            r.get::<_, String>(0)?,
            StoredResponse {
                status: r.get(1)?,
                body: r.get(2)?,
            },
        ))
    })
    .optional()
    .db()
}

/// Replaces the body of `idem`'s record (same caller, key and fingerprint) with the
/// answer actually sent.
pub(crate) fn record_answer(conn: &Conn, idem: &Idem, body: &str) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE idempotency_keys SET body = ?4 WHERE caller = ?1 AND key = ?2 AND fingerprint = ?3",
    )
    .db()?
    .execute(params![idem.caller, idem.key, idem.fingerprint, body])
    .db()?;
    Ok(())
}

pub fn key_reused() -> Error {
    Error::new(
        ErrorKind::Idempotency,
        "idempotency_key_reused",
        "This Idempotency-Key was already used with another request; use a new key.",
    )
}

/// Runs `f` once per idempotency key: a replay returns the stored response; a key
/// reused with another request is refused; a fresh success is stored with the effect.
/// `f`'s refusals commit (an expiry) but store no answer: a retry is judged anew.
pub(crate) fn wrap<T: Serialize>(
    conn: &Conn,
    now: i64,
    idem: Option<&Idem>,
    f: impl FnOnce(&Conn) -> Result<Outcome<T>, Error>,
) -> Result<Outcome<Written<T>>, Error> {
    if let Some(idem) = idem {
        claim(conn, now, idem)?;
    }
    if let Some(idem) = idem
        && let Some((fingerprint, stored)) = find(conn, &idem.caller, &idem.key, now)?
    {
        return Ok(
            if crate::model::fingerprints_match(&fingerprint, &idem.fingerprint) {
                Outcome::Done(Written::Replayed(stored))
            } else {
                Outcome::Refused(key_reused())
            },
        );
    }
    let value = match f(conn)? {
        Outcome::Done(v) => v,
        Outcome::Refused(e) => {
            if let Some(idem) = idem {
                unclaim(conn, idem)?;
            }
            return Ok(Outcome::Refused(e));
        }
    };
    if let Some(idem) = idem {
        let body = serde_json::to_string(&value).map_err(internal("idempotent answer as JSON"))?;
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (caller, key, fingerprint, status, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (caller, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                 status = excluded.status, body = excluded.body, created_at = excluded.created_at",
        )
        .db()?
        .execute(params![
            idem.caller,
            idem.key,
            idem.fingerprint,
            idem.status,
            body,
            now
        ])
        .db()?;
    }
    Ok(Outcome::Done(Written::Fresh(value)))
}

/// Claims `(caller, key)` before anything else runs (PostgreSQL, where several
/// writers run at once): one statement inserts a placeholder (status 0, never
/// committed) or locks the record there. A second request with the key, on any node,
/// waits at this statement until the first commits, then replays its answer.
/// SQLite's one writer needs no claim.
fn claim(conn: &Conn, now: i64, idem: &Idem) -> Result<(), Error> {
    if !conn.is_postgres() {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (caller, key, fingerprint, status, body, created_at)
         VALUES (?1, ?2, ?3, 0, '', ?4)
         ON CONFLICT (caller, key) DO UPDATE SET caller = excluded.caller",
    )
    .db()?
    .execute(params![idem.caller, idem.key, idem.fingerprint, now])
    .db()?;
    Ok(())
}

/// Removes this transaction's placeholder when the answer is not stored (an error
/// that commits): nobody else ever sees it.
fn unclaim(conn: &Conn, idem: &Idem) -> Result<(), Error> {
    if !conn.is_postgres() {
        return Ok(());
    }
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE caller = ?1 AND key = ?2 AND status = 0",
    )
    .db()?
    .execute(params![idem.caller, idem.key])
    .db()?;
    Ok(())
}

pub(crate) fn forget_before(conn: &Conn, before_ms: i64, limit: usize) -> Result<usize, Error> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE (caller, key) IN
           (SELECT caller, key FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
    )
    .db()?
    .execute(params![before_ms, limit as i64])
    .db()
}

//! Customer-presented payment codes in the charging transaction: the code's window and
//! its device are checked at commit, and a code is single use by its `(device, step)`
//! row. Which device a code belongs to is found before, by the HTTP shell's code
//! directory (the codes are derived from a secret this crate never sees).

use super::Db;
use super::Outcome;
use crate::sql::{Conn, Optional, params};
use crate::{CodeCharge, ShownCode};
use pocket_core::code::{MAX_REFUSALS, SKEW_STEPS, code_invalid, in_window};
use pocket_core::{Error, ErrorKind};

/// Active devices registered after `after_seq`, in registration order: `(seq, id)`.
pub(crate) fn active_devices_since(
    conn: &Conn,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<(i64, String)>, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, id FROM devices WHERE seq > ?1 AND revoked_at IS NULL ORDER BY seq LIMIT ?2",
        )
        .db()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![after_seq, limit], |r| Ok((r.get(0)?, r.get(1)?)))
        .db()?;
    rows.collect::<crate::sql::Result<_>>().db()
}

/// Charges `code` for `payment_id`: still in its window at `now`, its device still
/// active, and not charged before. Returns the device's customer. Every refusal is the
/// same `400 payment_code_invalid`, so a guesser learns nothing from the answer.
pub(crate) fn claim(
    conn: &Conn,
    now: i64,
    code: &ShownCode,
    payment_id: &str,
) -> Result<String, Error> {
    let ShownCode::Device(code) = code else {
        return Err(code_invalid());
    };
    if !in_window(code.step, now) {
        return Err(code_invalid());
    }
    let customer: Option<String> = conn
        // FOR SHARE: a revocation on another node waits for this charge's commit, or
        // this charge reads the device revoked — never a charge after the revoke.
        .prepare_cached(
            "SELECT customer_id FROM devices WHERE id = ?1 AND revoked_at IS NULL FOR SHARE",
        )
        .db()?
        .query_row([&code.device_id], |r| r.get(0))
        .optional()
        .db()?;
    let Some(customer) = customer else {
        return Err(code_invalid());
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO payment_codes_used (device_id, step, payment_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )
        .db()?
        .execute(params![code.device_id, code.step, payment_id])
        .db()?;
    if inserted != 1 {
        return Err(code_invalid());
    }
    // Rows that can no longer conflict (their codes are outside every window now).
    conn.prepare_cached("DELETE FROM payment_codes_used WHERE device_id = ?1 AND step < ?2")
        .db()?
        .execute(params![code.device_id, code.step - 2 * SKEW_STEPS - 1])
        .db()?;
    Ok(customer)
}

/// Runs `charge` (a payment's creation) for a code of a device, counting the payer's
/// refusals of that code. The code's refusal row is locked first, so every charge of
/// one code passes here one at a time: a code refused [`MAX_REFUSALS`] times
/// is spent (refused as a used one), exactly, however many charges arrive at once. A
/// refusal of the payer (`402`) rolls back what `charge` wrote and commits the count;
/// the inner `Err` is that refusal. Codes of no device, and every other error, pass as
/// they are.
pub(crate) fn counting_refusals<T>(
    conn: &Conn,
    code: Option<&ShownCode>,
    charge: impl FnOnce(&Conn) -> Result<T, Error>,
) -> Result<Outcome<T>, Error> {
    let Some(ShownCode::Device(code)) = code else {
        return charge(conn).map(Outcome::Done);
    };
    if refusals_locked(conn, code)? >= MAX_REFUSALS {
        return Err(code_invalid());
    }
    conn.prepare_cached("SAVEPOINT code_charge")
        .db()?
        .execute([])
        .db()?;
    let result = charge(conn);
    if result.is_ok() {
        conn.prepare_cached("RELEASE code_charge")
            .db()?
            .execute([])
            .db()?;
        return result.map(Outcome::Done);
    }
    for end in ["ROLLBACK TO code_charge", "RELEASE code_charge"] {
        conn.prepare_cached(end).db()?.execute([]).db()?;
    }
    match result {
        Err(e) if e.kind == ErrorKind::Payment => {
            conn.prepare_cached(
                "UPDATE payment_code_refusals SET refusals = refusals + 1
                 WHERE device_id = ?1 AND step = ?2",
            )
            .db()?
            .execute(params![code.device_id, code.step])
            .db()?;
            Ok(Outcome::Refused(e))
        }
        other => other.map(Outcome::Done),
    }
}

/// The refusals of `code` so far, its row locked until the transaction ends (made at
/// 0 on its first charge; rows whose codes are outside every window are pruned).
fn refusals_locked(conn: &Conn, code: &CodeCharge) -> Result<i64, Error> {
    let refusals = conn
        .prepare_cached(
            "INSERT INTO payment_code_refusals (device_id, step, refusals) VALUES (?1, ?2, 0)
             ON CONFLICT (device_id, step) DO UPDATE SET refusals = payment_code_refusals.refusals
             RETURNING refusals",
        )
        .db()?
        .query_row(params![code.device_id, code.step], |r| r.get(0))
        .db()?;
    conn.prepare_cached("DELETE FROM payment_code_refusals WHERE device_id = ?1 AND step < ?2")
        .db()?
        .execute(params![code.device_id, code.step - 2 * SKEW_STEPS - 1])
        .db()?;
    Ok(refusals)
}

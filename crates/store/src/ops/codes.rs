//! Customer-presented payment codes in the charging transaction: the code's window and
//! its device are checked at commit, and a code is single use by its `(device, step)`
//! row. Which device a code belongs to is found before, by the HTTP shell's code
//! directory (the codes are derived from a secret this crate never sees).

use super::Db;
use crate::ShownCode;
use crate::sql::{Conn, Optional, params};
use pocket_core::Error;
use pocket_core::code::{SKEW_STEPS, code_invalid, in_window};

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
        .prepare_cached("SELECT customer_id FROM devices WHERE id = ?1 AND revoked_at IS NULL")
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

//! Card top-ups, withdrawals and payouts: operations a bank answers for, in two
//! phases. A withdrawal or payout reserves its amount as it begins; the bank's final
//! answer posts it to the connector's clearing account or voids it; a top-up credits
//! the wallet from the clearing account only when the bank took the money. Answers
//! are applied once (`pocket_core::ledger::pending::Pending::answer`): late, repeated
//! or contradicting ones change nothing.

use super::{Db, events, ledger, stored_currency};
use crate::model::{BankOperation, NewBankOperation};
use crate::sql::{Conn, Optional, params};
use pocket_core::ledger::pending::{Outcome, Pending, Step};
use pocket_core::ledger::{AccountKind, Transfer, TransferKind};
use pocket_core::{Currency, Error};

const COLS: &str =
    "id, kind, connector, owner_kind, owner, card_id, bank_account_id, amount, currency,
                    status, reservation, failure_code, created_at, completed_at, refused_answer";

fn row(r: &crate::sql::Row<'_>) -> crate::sql::Result<RawOp> {
    Ok(RawOp {
        id: r.get(0)?,
        kind: r.get(1)?,
        connector: r.get(2)?,
        owner_kind: r.get(3)?,
        owner: r.get(4)?,
        card: r.get(5)?,
        bank_account: r.get(6)?,
        amount: r.get(7)?,
        currency: r.get(8)?,
        status: r.get(9)?,
        reservation: r.get(10)?,
        failure_code: r.get(11)?,
        created_at: r.get(12)?,
        completed_at: r.get(13)?,
        refused_answer: r.get(14)?,
    })
}

struct RawOp {
    id: String,
    kind: String,
    connector: String,
    owner_kind: String,
    owner: String,
    card: Option<String>,
    bank_account: Option<String>,
    amount: i64,
    currency: String,
    status: String,
    reservation: Option<String>,
    failure_code: Option<String>,
    created_at: i64,
    completed_at: Option<i64>,
    refused_answer: Option<String>,
}

fn decode(r: RawOp) -> Result<BankOperation, Error> {
    let owner_kind = AccountKind::parse(&r.owner_kind).ok_or_else(Error::internal)?;
    Ok(BankOperation {
        id: r.id,
        object: match r.kind.as_str() {
            "topup" => "topup",
            "withdrawal" => "withdrawal",
            _ => "payout",
        },
        amount: r.amount,
        currency: stored_currency(&r.currency)?,
        // The contract calls a payout that succeeded `paid`.
        status: if r.kind == "payout" && r.status == "succeeded" {
            "paid".into()
        } else {
            r.status
        },
        failure_code: r.failure_code,
        card: r.card,
        bank_account: r.bank_account,
        connector: r.connector,
        created_at: r.created_at,
        completed_at: r.completed_at,
        owner_kind,
        owner: r.owner,
        reservation: r.reservation,
        refused_answer: r.refused_answer,
    })
}

pub(crate) fn get(conn: &Conn, id: &str) -> Result<Option<BankOperation>, Error> {
    let sql = format!("SELECT {COLS} FROM bank_operations WHERE id = ?1");
    let raw = conn
        .prepare_cached(&sql)
        .db()?
        .query_row([id], row)
        .optional()
        .db()?;
    raw.map(decode).transpose()
}

/// The operations of one owner and kind, newest first.
pub(crate) fn list(
    conn: &Conn,
    owner: &str,
    kind: &str,
    limit: usize,
) -> Result<Vec<BankOperation>, Error> {
    let sql = format!(
        "SELECT {COLS} FROM bank_operations WHERE owner = ?1 AND kind = ?2 ORDER BY seq DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let raws: Vec<RawOp> = stmt
        .query_map(params![owner, kind, limit as i64], row)
        .db()?
        .collect::<crate::sql::Result<_>>()
        .db()?;
    raws.into_iter().map(decode).collect()
}

/// A connector's operations created in `[from_ms, to_ms)`, oldest first.
pub(crate) fn between(
    conn: &Conn,
    connector: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<BankOperation>, Error> {
    let sql = format!(
        "SELECT {COLS} FROM bank_operations WHERE connector = ?1 AND created_at >= ?2 AND created_at < ?3 ORDER BY seq"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let raws: Vec<RawOp> = stmt
        .query_map(params![connector, from_ms, to_ms], row)
        .db()?
        .collect::<crate::sql::Result<_>>()
        .db()?;
    raws.into_iter().map(decode).collect()
}

/// Begins an operation: written as `processing`; a withdrawal or payout reserves its
/// amount now (`402 insufficient_funds` when it is not available), in this
/// transaction. The connector is asked afterwards, with the operation's id.
pub(crate) fn begin(conn: &Conn, now: i64, new: &NewBankOperation) -> Result<BankOperation, Error> {
    let reservation = match new.kind {
        "topup" => None,
        _ => {
            ledger::reserve(conn, (new.owner_kind, &new.owner), new.amount, new.currency)?;
            Some(Pending::Reserved.as_str())
        }
    };
    conn.prepare_cached(
        "INSERT INTO bank_operations (id, kind, connector, owner_kind, owner, card_id, bank_account_id,
                                      amount, currency, status, reservation, created_at, next_check_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'processing', ?10, ?11, ?12)",
    )
    .db()?
    .execute(params![
        new.id,
        new.kind,
        new.connector,
        new.owner_kind.as_str(),
        new.owner,
        new.card,
        new.bank_account,
        new.amount,
        new.currency.code(),
        reservation,
        now,
        now + new.answer_within_ms
    ])
    .db()?;
    get(conn, &new.id)?.ok_or_else(Error::internal)
}

/// The event an operation's final state announces.
fn event_kind(op: &BankOperation) -> &'static str {
    match (op.object, op.status.as_str()) {
        ("topup", "succeeded") => "topup.succeeded",
        ("topup", _) => "topup.failed",
        ("withdrawal", "succeeded") => "withdrawal.succeeded",
        ("withdrawal", _) => "withdrawal.failed",
        (_, "paid") => "payout.paid",
        _ => "payout.failed",
    }
}

/// Applies the bank's final answer, once. A later answer, the same or another, changes
/// nothing and returns the operation as it is.
pub(crate) fn apply(
    conn: &Conn,
    now: i64,
    id: &str,
    outcome: Outcome,
    failure_code: Option<&str>,
) -> Result<Option<BankOperation>, Error> {
    // Locked first: the same answer applied on two nodes at once is applied by the
    // first; the second then reads it done and changes nothing.
    let sql = format!("SELECT {COLS} FROM bank_operations WHERE id = ?1 FOR NO KEY UPDATE");
    let Some(op) = conn
        .prepare_cached(&sql)
        .db()?
        .query_row([id], row)
        .optional()
        .db()?
        .map(decode)
        .transpose()?
    else {
        return Ok(None);
    };
    if op.status != "processing" {
        return Ok(Some(op));
    }
    let succeeded = outcome == Outcome::Succeeded;
    move_money(conn, now, &op, outcome)?;
    let (status, reservation) = match (succeeded, op.reservation.is_some()) {
        (true, true) => ("succeeded", Some(Pending::Posted.as_str())),
        (false, true) => ("failed", Some(Pending::Voided.as_str())),
        (true, false) => ("succeeded", None),
        (false, false) => ("failed", None),
    };
    let changed = conn
        .prepare_cached(
            "UPDATE bank_operations SET status = ?2, reservation = ?3, failure_code = ?4,
                    completed_at = ?5, next_check_at = NULL, lease_until = 0
             WHERE id = ?1 AND status = 'processing'",
        )
        .db()?
        .execute(params![
            op.id,
            status,
            reservation,
            if succeeded { None } else { failure_code },
            now
        ])
        .db()?;
    if changed != 1 {
        return Err(Error::internal());
    }
    let done = get(conn, id)?.ok_or_else(Error::internal)?;
    let (merchant, customer) = match done.owner_kind {
        AccountKind::Merchant => (done.owner.as_str(), None),
        _ => ("", Some(done.owner.as_str())),
    };
    events::emit(
        conn,
        now,
        event_kind(&done),
        events::Subject {
            merchant_id: merchant,
            customer_id: customer,
            payment_id: None,
        },
        &done,
    )?;
    Ok(Some(done))
}

/// The ledger side of a final answer: a top-up's credit when it succeeded; a
/// withdrawal's or payout's reservation posted to the bank or voided back.
fn move_money(conn: &Conn, now: i64, op: &BankOperation, outcome: Outcome) -> Result<(), Error> {
    let clearing = format!("connector:{}", op.connector);
    let currency: Currency = op.currency;
    let owner = (op.owner_kind, op.owner.as_str());
    let succeeded = outcome == Outcome::Succeeded;
    match op.reservation.as_deref() {
        None => {
            // A top-up: money arrives from the bank, now.
            if succeeded {
                ledger::transfer(
                    conn,
                    now,
                    &Transfer::new(
                        (AccountKind::Clearing, &clearing),
                        owner,
                        op.amount,
                        currency,
                        TransferKind::Topup,
                        &op.id,
                    )?,
                )?;
            }
        }
        Some(state) => {
            let state = match state {
                "reserved" => Pending::Reserved,
                "posted" => Pending::Posted,
                _ => Pending::Voided,
            };
            let (step, _) = state.answer(outcome);
            let kind = if op.object == "withdrawal" {
                TransferKind::Withdrawal
            } else {
                TransferKind::Payout
            };
            match step {
                Step::Post => ledger::post_reserved(
                    conn,
                    now,
                    &Transfer::new(
                        owner,
                        (AccountKind::Clearing, &clearing),
                        op.amount,
                        currency,
                        kind,
                        &op.id,
                    )?,
                )?,
                Step::Void => ledger::void_reserved(conn, owner, op.amount, currency)?,
                Step::Nothing => {}
            }
        }
    }
    Ok(())
}

/// No final answer yet: look again later, backing off (1 s, doubling, at most 15 s: a
/// bank's answer is worth knowing soon, and a look is one small request).
pub(crate) fn reschedule(conn: &Conn, now: i64, id: &str) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE bank_operations
         SET checks = checks + 1, lease_until = 0,
             next_check_at = CAST(?2 AS BIGINT)
                 + CASE checks WHEN 0 THEN 1000 WHEN 1 THEN 2000 WHEN 2 THEN 4000 WHEN 3 THEN 8000 ELSE 15000 END
         WHERE id = ?1 AND status = 'processing'",
    )
    .db()?
    .execute(params![id, now])
    .db()?;
    Ok(())
}

/// Longest reason kept for a refused answer.
const MAX_REFUSAL_CHARS: usize = 300;

/// The bank gave a signed answer Pocket refused (`why`): kept for the operator and
/// reconciliation, and an operation still processing is looked at again later — its
/// outcome is unknown, never taken from that answer.
pub(crate) fn flag(conn: &Conn, now: i64, id: &str, why: &str) -> Result<(), Error> {
    let why: String = why.chars().take(MAX_REFUSAL_CHARS).collect();
    conn.prepare_cached("UPDATE bank_operations SET refused_answer = ?2 WHERE id = ?1")
        .db()?
        .execute(params![id, why])
        .db()?;
    reschedule(conn, now, id)
}

/// Leases up to `limit` operations due for a look (ask the bank where they stand).
pub(crate) fn claim_due(
    conn: &Conn,
    now: i64,
    limit: usize,
    lease_ms: i64,
) -> Result<Vec<BankOperation>, Error> {
    // Several writers: rows another writer is leasing right now are skipped, and the
    // lease's condition is checked again on the row itself, so no operation is leased
    // twice.
    let skip_locked = if conn.is_postgres() {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE bank_operations SET lease_until = ?2
         WHERE id IN (SELECT id FROM bank_operations
                      WHERE status = 'processing' AND next_check_at <= ?1 AND lease_until <= ?1
                      ORDER BY next_check_at LIMIT ?3{skip_locked})
           AND status = 'processing' AND lease_until <= ?1
         RETURNING {COLS}"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let raws: Vec<RawOp> = stmt
        .query_map(params![now, now + lease_ms, limit as i64], row)
        .db()?
        .collect::<crate::sql::Result<_>>()
        .db()?;
    raws.into_iter().map(decode).collect()
}

/// The card token of an operation's card (for asking the bank again).
pub(crate) fn card_token(conn: &Conn, card_id: &str) -> Result<Option<String>, Error> {
    conn.prepare_cached("SELECT token FROM cards WHERE id = ?1")
        .db()?
        .query_row([card_id], |r| r.get(0))
        .optional()
        .db()
}

//! Work on a data directory from outside the server: a consistent backup while it
//! runs, and a full verification (`pocket backup`, `pocket verify`).

use super::{ops, sql_error};
use pocket_core::Error;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// What `verify` found: figures, and every fault (empty when the data is sound).
#[derive(Debug, Default)]
pub struct Verification {
    pub payments: i64,
    pub refunds: i64,
    pub accounts: i64,
    pub transfers: i64,
    pub faults: Vec<String>,
}

fn open_read_only(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Counts the rows `sql` finds; each is a fault described by `what`.
fn count(conn: &Connection, sql: &str) -> Result<i64, Error> {
    conn.query_row(sql, [], |r| r.get(0)).map_err(sql_error)
}

/// Checks everything that must hold of a database, reading all of it in one snapshot:
/// its integrity, the ledger (conservation, replay of every account, running
/// totals, one transfer per succeeded payment and refund, no negative balance) and
/// the consistency of every payment's state.
pub fn verify(db: &Path) -> Result<Verification, String> {
    if !db.exists() {
        return Err(format!("no database at {}", db.display()));
    }
    let conn = open_read_only(db)?;
    let e = |e: Error| e.to_string();
    conn.execute_batch("BEGIN").map_err(|e| e.to_string())?;
    let mut v = Verification::default();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if integrity != "ok" {
        v.faults.push(format!("integrity check: {integrity}"));
    }
    let broken_keys = count(&conn, "SELECT COUNT(*) FROM pragma_foreign_key_check").map_err(e)?;
    if broken_keys > 0 {
        v.faults.push(format!(
            "{broken_keys} rows refer to rows that do not exist"
        ));
    }
    let ledger = ops::ledger::report(&conn).map_err(e)?;
    v.accounts = ledger.accounts;
    v.transfers = ledger.transfers;
    for c in &ledger.currencies {
        if !c.balanced {
            v.faults.push(format!(
                "{}: debits {} credits {} balances sum to {} (or an account's balance is not the replay of its transfers)",
                c.currency.code(),
                c.total_debits,
                c.total_credits,
                c.sum_of_balances
            ));
        }
    }
    if ledger.running_totals_match != Some(true) {
        v.faults
            .push("the running totals disagree with the replayed book".into());
    }
    for (n, what) in [
        (
            ledger.payment_transfer_mismatches.unwrap_or(0),
            "payments whose transfers are not one if succeeded and none otherwise",
        ),
        (
            ledger.refund_transfer_mismatches.unwrap_or(0),
            "refunds without exactly one transfer",
        ),
    ] {
        if n > 0 {
            v.faults.push(format!("{n} {what}"));
        }
    }
    v.payments = count(&conn, "SELECT COUNT(*) FROM payments").map_err(e)?;
    v.refunds = count(&conn, "SELECT COUNT(*) FROM refunds").map_err(e)?;
    let checks: &[(&str, &str)] = &[
        (
            "SELECT COUNT(*) FROM accounts WHERE kind NOT IN ('settlement', 'clearing') AND balance - reserved < 0",
            "wallet or merchant balances below zero",
        ),
        (
            "SELECT COUNT(*) FROM payments WHERE status NOT IN
               ('pending', 'authorized', 'succeeded', 'declined', 'expired', 'canceled')",
            "payments in an unknown state",
        ),
        (
            "SELECT COUNT(*) FROM payments WHERE status = 'pending' AND completed_at IS NOT NULL",
            "pending payments with a completion time",
        ),
        (
            "SELECT COUNT(*) FROM payments WHERE status <> 'pending' AND completed_at IS NULL",
            "finished payments without a completion time",
        ),
        (
            "SELECT COUNT(*) FROM payments WHERE status = 'succeeded' AND customer_id IS NULL",
            "succeeded payments without a customer",
        ),
        (
            "SELECT COUNT(*) FROM payments WHERE status = 'succeeded' AND completed_at > expires_at",
            "payments that succeeded after their deadline",
        ),
        (
            "SELECT COUNT(*) FROM payments p WHERE p.amount_refunded <>
               (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = p.id)",
            "payments whose refunded amount is not the sum of their refunds",
        ),
        (
            "SELECT COUNT(*) FROM refunds r JOIN payments p ON p.id = r.payment_id
             WHERE p.status <> 'succeeded' OR r.currency <> p.currency",
            "refunds of payments that did not succeed (or in another currency)",
        ),
        (
            "SELECT COUNT(*) FROM transfers t JOIN payments p ON p.id = t.reference
             WHERE t.kind = 'payment' AND (t.amount <> p.amount OR t.currency <> p.currency)",
            "payment transfers that do not move the payment's amount",
        ),
        (
            "SELECT COUNT(*) FROM (SELECT e.id FROM events e GROUP BY e.id HAVING COUNT(*) > 1)",
            "events recorded twice",
        ),
        (
            "SELECT COUNT(*) FROM accounts a WHERE a.reserved <>
               (SELECT COALESCE(SUM(b.amount), 0) FROM bank_operations b
                WHERE b.owner = a.owner AND b.owner_kind = a.kind AND b.currency = a.currency
                  AND b.reservation = 'reserved')",
            "accounts whose reserved amount is not their open withdrawals and payouts",
        ),
        (
            "SELECT COUNT(*) FROM bank_operations b WHERE
               (SELECT COUNT(*) FROM transfers t WHERE t.reference = b.id)
               <> (CASE WHEN b.status = 'succeeded' THEN 1 ELSE 0 END)",
            "bank operations whose transfers are not one if succeeded and none otherwise",
        ),
    ];
    for (sql, what) in checks {
        let n = count(&conn, sql).map_err(e)?;
        if n > 0 {
            v.faults.push(format!("{n} {what}"));
        }
    }
    conn.execute_batch("COMMIT").map_err(|e| e.to_string())?;
    Ok(v)
}

/// Writes a consistent copy of the database to `to` (which must not exist) while the
/// server may be running, then checks the copy's integrity. Returns its size in bytes.
pub fn backup(db: &Path, to: &Path) -> Result<u64, String> {
    if !db.exists() {
        return Err(format!("no database at {}", db.display()));
    }
    if to.exists() {
        return Err(format!(
            "{} exists already; choose a new file",
            to.display()
        ));
    }
    let conn = open_read_only(db)?;
    let target = to
        .to_str()
        .ok_or_else(|| format!("{} is not a UTF-8 path", to.display()))?;
    // One read transaction: the copy is the database as of one commit.
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    let copy = open_read_only(to)?;
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if integrity != "ok" {
        return Err(format!(
            "the copy at {} is damaged: {integrity}",
            to.display()
        ));
    }
    std::fs::metadata(to)
        .map(|m| m.len())
        .map_err(|e| e.to_string())
}

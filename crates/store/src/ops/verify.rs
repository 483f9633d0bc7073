//! The consistency of a whole database, read in the caller's snapshot: the ledger
//! (conservation, replay of every account, running totals, one transfer per
//! succeeded payment and refund, no negative balance) and every payment's state.
//! Used by `pocket verify` (SQLite), `pocket migrate-data` and the failover test.

use crate::sql::{Conn, Db};
use pocket_core::Error;

/// What a verification found: figures, and every fault (empty when the data is sound).
#[derive(Debug, Default)]
pub struct Verification {
    pub payments: i64,
    pub refunds: i64,
    pub accounts: i64,
    pub transfers: i64,
    pub faults: Vec<String>,
}

/// Counts the rows `sql` finds; each is a fault described by `what`.
fn count(conn: &Conn, sql: &str) -> Result<i64, Error> {
    conn.query_row(sql, [], |r| r.get(0)).db()
}

/// Each a count of rows that break a rule, and what those rows are.
const CHECKS: &[(&str, &str)] = &[
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
        "SELECT COUNT(*) FROM payments WHERE status NOT IN ('pending', 'authorized') AND completed_at IS NULL",
        "finished payments without a completion time",
    ),
    (
        "SELECT COUNT(*) FROM payments WHERE status = 'succeeded' AND customer_id IS NULL",
        "succeeded payments without a customer",
    ),
    (
        "SELECT COUNT(*) FROM payments WHERE status = 'succeeded' AND capture = 'automatic'
           AND completed_at > expires_at",
        "payments that succeeded after their deadline",
    ),
    (
        "SELECT COUNT(*) FROM payments WHERE authorized_at IS NOT NULL AND authorized_at >= expires_at",
        "holds authorized after their payment's deadline",
    ),
    (
        "SELECT COUNT(*) FROM payments WHERE capture = 'manual' AND status = 'succeeded'
           AND (completed_at >= capture_before OR amount_captured IS NULL OR amount_captured > amount)",
        "holds captured at or after their capture deadline, or beyond what was authorized",
    ),
    (
        "SELECT COUNT(*) FROM payments WHERE status = 'authorized'
           AND (capture <> 'manual' OR capture_before IS NULL OR customer_id IS NULL OR completed_at IS NOT NULL)",
        "authorized payments that are not open holds of a customer",
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
         WHERE t.kind = 'payment' AND (t.amount <> COALESCE(p.amount_captured, p.amount) OR t.currency <> p.currency)",
        "payment transfers that do not move the payment's (captured) amount",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT e.id FROM events e GROUP BY e.id HAVING COUNT(*) > 1) AS twice",
        "events recorded twice",
    ),
    (
        "SELECT COUNT(*) FROM accounts a WHERE a.reserved <>
           (SELECT COALESCE(SUM(b.amount), 0) FROM bank_operations b
            WHERE b.owner = a.owner AND b.owner_kind = a.kind AND b.currency = a.currency
              AND b.reservation = 'reserved')
           + (SELECT COALESCE(SUM(p.amount), 0) FROM payments p
              WHERE a.kind = 'wallet' AND p.customer_id = a.owner AND p.currency = a.currency
                AND p.status = 'authorized')",
        "accounts whose reserved amount is not their open withdrawals, payouts and holds",
    ),
    (
        "SELECT COUNT(*) FROM bank_operations b WHERE
           (SELECT COUNT(*) FROM transfers t WHERE t.reference = b.id)
           <> (CASE WHEN b.status = 'succeeded' THEN 1 ELSE 0 END)",
        "bank operations whose transfers are not one if succeeded and none otherwise",
    ),
];

/// Adds the figures and faults of the data `conn` sees to `v`.
pub fn consistency(conn: &Conn, v: &mut Verification) -> Result<(), Error> {
    let ledger = super::ledger::report(conn)?;
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
    v.payments = count(conn, "SELECT COUNT(*) FROM payments")?;
    v.refunds = count(conn, "SELECT COUNT(*) FROM refunds")?;
    for (sql, what) in CHECKS {
        let n = count(conn, sql)?;
        if n > 0 {
            v.faults.push(format!("{n} {what}"));
        }
    }
    Ok(())
}

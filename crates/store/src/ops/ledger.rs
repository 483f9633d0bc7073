//! Ledger accounts and transfers in SQL. Balance arithmetic is `pocket_core::ledger::post`.
//! A posting locks its accounts first, both in one statement and in one fixed order
//! (`LOCK_ORDER`), then writes what the core computed; the updates are also conditional
//! on the balance read, and the table's CHECK keeps wallets and merchants ≥ 0, so a
//! concurrent writer can never be overwritten.

use super::{Db, cursor_seq, stored_currency};
use crate::ids::new_id;
use crate::model::{
    Balance, CurrencyTakings, CurrencyTotals, LedgerReport, Page, PageRequest, Takings,
    TakingsInterval, TakingsQuery, Transaction,
};
use crate::sql::{Conn, Optional, params};
use pocket_core::hold::{Settlement, settle};
use pocket_core::ledger::pending::{Holding, reserve as reserve_holding, void_pending};
use pocket_core::ledger::{AccountKind, Conservation, Transfer, TransferKind, post};
use pocket_core::{Currency, Error};

/// Owner of the settlement accounts.
pub(crate) const OPERATOR: &str = "operator";

/// The running totals of one currency (schema v4's `ledger_totals`; sharded since
/// v12/PostgreSQL v6: each writer keeps its own row, the book is their sum).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub debits: i128,
    pub credits: i128,
    pub sum_of_balances: i128,
    pub transfers: i64,
    pub accounts: i64,
}

fn parse_sum(text: String) -> Result<i128, Error> {
    text.parse().map_err(|_| {
        tracing::error!("unreadable running total in ledger_totals");
        Error::internal()
    })
}

type TotalsRow = (String, String, String, i64, i64);

fn totals_row(r: &crate::sql::Row<'_>) -> crate::sql::Result<TotalsRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

impl Totals {
    fn from_row((d, c, s, transfers, accounts): TotalsRow) -> Result<Totals, Error> {
        Ok(Totals {
            debits: parse_sum(d)?,
            credits: parse_sum(c)?,
            sum_of_balances: parse_sum(s)?,
            transfers,
            accounts,
        })
    }

    fn add(&mut self, other: &Totals) {
        self.debits += other.debits;
        self.credits += other.credits;
        self.sum_of_balances += other.sum_of_balances;
        self.transfers += other.transfers;
        self.accounts += other.accounts;
    }
}

/// This writer's shard of a currency's totals, locked until the commit (PostgreSQL:
/// one statement creates, locks and reads it; no other writer uses the row, see
/// `TOTALS_SHARDS`).
fn load_shard(conn: &Conn, currency: &str) -> Result<Totals, Error> {
    let shard = conn.totals_shard();
    let row = if conn.is_postgres() {
        conn.prepare_cached(
            "INSERT INTO ledger_totals (currency, shard, total_debits, total_credits, sum_of_balances, transfers, accounts)
             VALUES (?1, ?2, '0', '0', '0', 0, 0)
             ON CONFLICT (currency, shard) DO UPDATE SET transfers = ledger_totals.transfers
             RETURNING total_debits, total_credits, sum_of_balances, transfers, accounts",
        )
        .db()?
        .query_row(params![currency, shard], totals_row)
        .optional()
        .db()?
    } else {
        conn.prepare_cached(
            "SELECT total_debits, total_credits, sum_of_balances, transfers, accounts
             FROM ledger_totals WHERE currency = ?1 AND shard = ?2",
        )
        .db()?
        .query_row(params![currency, shard], totals_row)
        .optional()
        .db()?
    };
    row.map_or(Ok(Totals::default()), Totals::from_row)
}

/// A currency's totals: the sum of its shards.
pub(crate) fn load_totals(conn: &Conn, currency: &str) -> Result<Totals, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT total_debits, total_credits, sum_of_balances, transfers, accounts
             FROM ledger_totals WHERE currency = ?1",
        )
        .db()?;
    let rows = stmt.query_map([currency], totals_row).db()?;
    let mut sum = Totals::default();
    for row in rows {
        sum.add(&Totals::from_row(row.db()?)?);
    }
    Ok(sum)
}

fn save_shard(conn: &Conn, currency: &str, t: &Totals) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO ledger_totals (currency, shard, total_debits, total_credits, sum_of_balances, transfers, accounts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (currency, shard) DO UPDATE SET total_debits = excluded.total_debits,
             total_credits = excluded.total_credits, sum_of_balances = excluded.sum_of_balances,
             transfers = excluded.transfers, accounts = excluded.accounts",
    )
    .db()?
    .execute(params![
        currency,
        conn.totals_shard(),
        t.debits.to_string(),
        t.credits.to_string(),
        t.sum_of_balances.to_string(),
        t.transfers,
        t.accounts
    ])
    .db()?;
    Ok(())
}

/// An account as locked for a posting: id, balance, reserved part.
type Locked = (i64, i64, i64);

/// The order in which accounts are locked, the same in every transaction, so two
/// postings on the same accounts never wait for each other in a circle: wallets, then
/// merchants, then the operator's accounts; within a kind by id. (A rule that reads a
/// customer's figures before a posting locks the customer's row first, see
/// `ops::risk::lock_payer`; nothing locks a customer after an account.)
const LOCK_ORDER: &str = "CASE kind WHEN 'wallet' THEN 0 WHEN 'merchant' THEN 1 ELSE 2 END, id";

/// Creates the account at zero if it does not exist yet (counted in the totals).
fn open_account(
    conn: &Conn,
    kind: AccountKind,
    owner: &str,
    currency: Currency,
) -> Result<(), Error> {
    let created = conn
        .prepare_cached(
            "INSERT INTO accounts (kind, owner, currency, balance) VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (kind, owner, currency) DO NOTHING",
        )
        .db()?
        .execute(params![kind.as_str(), owner, currency.code()])
        .db()?;
    if created == 1 {
        let mut totals = load_shard(conn, currency.code())?;
        totals.accounts += 1;
        save_shard(conn, currency.code(), &totals)?;
    }
    Ok(())
}

/// The account's row read by `select` (`?1` kind, `?2` owner, `?3` currency),
/// creating the account at zero first if there is none.
fn read_or_open<T>(
    conn: &Conn,
    select: &str,
    (kind, owner): (AccountKind, &str),
    currency: Currency,
    row: impl Fn(&crate::sql::Row<'_>) -> crate::sql::Result<T>,
) -> Result<T, Error> {
    let args = params![kind.as_str(), owner, currency.code()];
    let read = |conn: &Conn| {
        conn.prepare_cached(select)
            .db()?
            .query_row(args, &row)
            .optional()
            .db()
    };
    if let Some(found) = read(conn)? {
        return Ok(found);
    }
    open_account(conn, kind, owner, currency)?;
    read(conn)?.ok_or_else(Error::internal)
}

/// One account, locked until the commit, created at zero on first use.
fn account(
    conn: &Conn,
    kind: AccountKind,
    owner: &str,
    currency: Currency,
) -> Result<Locked, Error> {
    read_or_open(
        conn,
        "SELECT id, balance, reserved FROM accounts
         WHERE kind = ?1 AND owner = ?2 AND currency = ?3 FOR NO KEY UPDATE",
        (kind, owner),
        currency,
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Both accounts of a posting, locked in [`LOCK_ORDER`] by one statement (created
/// at zero on first use): `(debit, credit)`.
fn account_pair(
    conn: &Conn,
    debit: (AccountKind, &str),
    credit: (AccountKind, &str),
    currency: Currency,
) -> Result<(Locked, Locked), Error> {
    let sql = format!(
        "SELECT id, kind, owner, balance, reserved FROM accounts
         WHERE currency = ?1 AND ((kind = ?2 AND owner = ?3) OR (kind = ?4 AND owner = ?5))
         ORDER BY {LOCK_ORDER} FOR NO KEY UPDATE"
    );
    for _ in 0..2 {
        let mut stmt = conn.prepare_cached(&sql).db()?;
        let rows = stmt
            .query_map(
                params![
                    currency.code(),
                    debit.0.as_str(),
                    debit.1,
                    credit.0.as_str(),
                    credit.1
                ],
                |r| {
                    Ok((
                        (r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                        (r.get(0)?, r.get(3)?, r.get(4)?),
                    ))
                },
            )
            .db()?;
        let (mut d, mut c) = (None, None);
        for row in rows {
            let ((kind, owner), locked): ((String, String), Locked) = row.db()?;
            if kind == debit.0.as_str() && owner == debit.1 {
                d = Some(locked);
            } else {
                c = Some(locked);
            }
        }
        match (d, c) {
            (Some(d), Some(c)) => return Ok((d, c)),
            (d, c) => {
                if d.is_none() {
                    open_account(conn, debit.0, debit.1, currency)?;
                }
                if c.is_none() {
                    open_account(conn, credit.0, credit.1, currency)?;
                }
            }
        }
    }
    Err(Error::internal())
}

/// The credited account's balance as a posting sees it on PostgreSQL, where credits
/// are applied at commit: zero, so the posting's own arithmetic is the credit alone.
const DEFERRED: i64 = 0;

/// The accounts of a posting. SQLite: both, as [`account_pair`]. PostgreSQL: the
/// debited account locked and the credited one only found (created on first use) —
/// its credit is applied at commit (`pocket_apply_credits`, schema v6), so a merchant
/// every payment credits is not locked for a whole batch; its balance reads as
/// [`DEFERRED`], and [`set_balance`] and `record` leave it to the commit.
fn postings_accounts(
    conn: &Conn,
    debit: (AccountKind, &str),
    credit: (AccountKind, &str),
    currency: Currency,
) -> Result<(Locked, Locked), Error> {
    if debit == credit {
        tracing::error!(owner = debit.1, "a transfer from an account to itself");
        return Err(Error::internal());
    }
    if !conn.is_postgres() {
        return account_pair(conn, debit, credit, currency);
    }
    // One statement: the debited account locked, the credited one's id beside it.
    for _ in 0..3 {
        let found: Option<(Locked, Option<i64>)> = conn
            .prepare_cached(
                "SELECT d.id, d.balance, d.reserved,
                        (SELECT c.id FROM accounts c WHERE c.kind = ?4 AND c.owner = ?5 AND c.currency = ?3)
                 FROM accounts d WHERE d.kind = ?1 AND d.owner = ?2 AND d.currency = ?3
                 FOR NO KEY UPDATE OF d",
            )
            .db()?
            .query_row(
                params![debit.0.as_str(), debit.1, currency.code(), credit.0.as_str(), credit.1],
                |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get(3)?)),
            )
            .optional()
            .db()?;
        match found {
            // A credit does not touch the reserved part.
            Some((locked, Some(id))) => return Ok((locked, (id, DEFERRED, 0))),
            Some((_, None)) => open_account(conn, credit.0, credit.1, currency)?,
            None => open_account(conn, debit.0, debit.1, currency)?,
        }
    }
    Err(Error::internal())
}

fn set_balance(conn: &Conn, id: i64, before: i64, after: i64) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE accounts SET balance = ?3 WHERE id = ?1 AND balance = ?2")
        .db()?
        .execute(params![id, before, after])
        .db()?;
    if changed != 1 {
        // The row is locked by this transaction: nobody can have moved it.
        tracing::error!(account = id, "balance changed under a transfer");
        return Err(Error::internal());
    }
    Ok(())
}

/// Posts `t` as one immutable transfer.
pub(crate) fn transfer(conn: &Conn, now: i64, t: &Transfer<'_>) -> Result<(), Error> {
    let Transfer {
        debit,
        credit,
        amount,
        currency,
        kind,
        reference,
    } = *t;
    let ((debit_id, debit_before, debit_reserved), (credit_id, credit_before, _)) =
        postings_accounts(conn, debit, credit, currency)?;
    // What is reserved for pending withdrawals and payouts cannot be spent again.
    let posting = post(
        (debit.0, debit_before - debit_reserved),
        (credit.0, credit_before),
        amount,
    )?;
    let posting = pocket_core::ledger::Posting {
        debit_after: posting.debit_after + debit_reserved,
        ..posting
    };
    let entry = Entry {
        debit: (debit_id, debit_before, posting.debit_after),
        credit: (credit_id, credit_before, posting.credit_after),
        amount,
        currency,
        kind,
        reference,
    };
    record(conn, now, &entry)
}

/// A transfer to write: each account as (id, balance before, balance after), what
/// moved and why.
struct Entry<'a> {
    debit: (i64, i64, i64),
    credit: (i64, i64, i64),
    amount: i64,
    currency: Currency,
    kind: TransferKind,
    reference: &'a str,
}

impl Entry<'_> {
    /// What the transfer adds to the sum of balances (nothing, when it is right).
    fn balances_delta(&self) -> i128 {
        let (_, debit_before, debit_after) = self.debit;
        let (_, credit_before, credit_after) = self.credit;
        i128::from(debit_after) - i128::from(debit_before) + i128::from(credit_after)
            - i128::from(credit_before)
    }

    /// The book's sums after this transfer: a transfer that would leave debits ≠
    /// credits or balances not summing to zero rolls back. (Each shard balances on its
    /// own: a transfer adds as much to debits as to credits, and nothing to the sum of
    /// balances.)
    fn check(&self, totals: &Totals) -> Result<(), Error> {
        if totals.debits != totals.credits || totals.sum_of_balances != 0 {
            tracing::error!(
                currency = self.currency.code(),
                reference = self.reference,
                "a posting would unbalance the book; rolled back"
            );
            return Err(Error::internal());
        }
        Ok(())
    }
}

/// Writes a transfer (one-phase, or a posted two-phase one): the accounts' new
/// balances, the immutable transfer, and the currency's running totals, checked with
/// every posting. PostgreSQL: see [`record_at_once`].
fn record(conn: &Conn, now: i64, e: &Entry) -> Result<(), Error> {
    if conn.is_postgres() {
        return record_at_once(conn, now, e);
    }
    let (debit_id, debit_before, debit_after) = e.debit;
    let (credit_id, credit_before, credit_after) = e.credit;
    set_balance(conn, debit_id, debit_before, debit_after)?;
    set_balance(conn, credit_id, credit_before, credit_after)?;
    let mut totals = load_shard(conn, e.currency.code())?;
    let amount_wide = i128::from(e.amount);
    totals.debits += amount_wide;
    totals.credits += amount_wide;
    totals.sum_of_balances += e.balances_delta();
    totals.transfers += 1;
    e.check(&totals)?;
    save_shard(conn, e.currency.code(), &totals)?;
    conn.prepare_cached(
        "INSERT INTO transfers (id, debit_account, credit_account, amount, currency, kind, reference,
                                debit_balance_after, credit_balance_after, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .db()?
    .execute(params![
        new_id("txn"),
        debit_id,
        credit_id,
        e.amount,
        e.currency.code(),
        e.kind.as_str(),
        e.reference,
        debit_after,
        credit_after,
        now
    ])
    .db()?;
    Ok(())
}

/// [`record`] on PostgreSQL, in one round trip: the debited account's new balance
/// (conditional on the one read under its lock), the transfer with its credit pending
/// (`credit_balance_after` NULL: applied after the commit by `pocket_settle()`), and
/// this session's shard of the totals, added to and read back to be checked.
fn record_at_once(conn: &Conn, now: i64, e: &Entry) -> Result<(), Error> {
    let (debit_id, debit_before, debit_after) = e.debit;
    let (credit_id, _, _) = e.credit;
    let totals = conn
        .prepare_cached(
            "WITH moved AS (UPDATE accounts SET balance = ?8 WHERE id = ?2 AND balance = ?10 RETURNING id),
             t AS (INSERT INTO transfers (id, debit_account, credit_account, amount, currency, kind, reference,
                                          debit_balance_after, credit_balance_after, created_at)
                   SELECT ?1, moved.id, CAST(?3 AS BIGINT), CAST(?4 AS BIGINT), ?5, ?6, ?7,
                          CAST(?8 AS BIGINT), NULL, CAST(?9 AS BIGINT) FROM moved
                   RETURNING amount)
             INSERT INTO ledger_totals (currency, shard, total_debits, total_credits, sum_of_balances, transfers, accounts)
             SELECT ?5, CAST(?11 AS BIGINT), t.amount::text, t.amount::text, ?12, 1, 0 FROM t
             ON CONFLICT (currency, shard) DO UPDATE SET
               total_debits = (ledger_totals.total_debits::numeric + excluded.total_debits::numeric)::text,
               total_credits = (ledger_totals.total_credits::numeric + excluded.total_credits::numeric)::text,
               sum_of_balances = (ledger_totals.sum_of_balances::numeric + excluded.sum_of_balances::numeric)::text,
               transfers = ledger_totals.transfers + 1
             RETURNING total_debits, total_credits, sum_of_balances, transfers, accounts",
        )
        .db()?
        .query_row(
            params![
                new_id("txn"),
                debit_id,
                credit_id,
                e.amount,
                e.currency.code(),
                e.kind.as_str(),
                e.reference,
                debit_after,
                now,
                debit_before,
                conn.totals_shard(),
                e.balances_delta().to_string()
            ],
            totals_row,
        )
        .optional()
        .db()?;
    let Some(totals) = totals else {
        // The row is locked by this transaction: nobody can have moved it.
        tracing::error!(account = debit_id, "balance changed under a transfer");
        return Err(Error::internal());
    };
    e.check(&Totals::from_row(totals)?)
}

/// Sets an account's reserved part, conditional on what was read.
fn set_reserved(conn: &Conn, id: i64, before: i64, after: i64) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE accounts SET reserved = ?3 WHERE id = ?1 AND reserved = ?2")
        .db()?
        .execute(params![id, before, after])
        .db()?;
    if changed != 1 {
        tracing::error!(
            account = id,
            "reservation changed under a two-phase transfer"
        );
        return Err(Error::internal());
    }
    Ok(())
}

/// Reserves `amount` on an account: a two-phase transfer begins (`402
/// insufficient_funds` when not available).
pub(crate) fn reserve(
    conn: &Conn,
    debit: (AccountKind, &str),
    amount: i64,
    currency: Currency,
) -> Result<(), Error> {
    let (id, balance, reserved) = account(conn, debit.0, debit.1, currency)?;
    let after = reserve_holding(Holding::new(debit.0, balance, reserved), amount)?;
    set_reserved(conn, id, reserved, after.reserved)
}

/// Posts a reserved amount: it leaves the debit account (and its reservation) and
/// reaches the credit account, as one transfer.
pub(crate) fn post_reserved(conn: &Conn, now: i64, t: &Transfer<'_>) -> Result<(), Error> {
    settle_reserved(conn, now, t, 0)
}

/// Ends a reservation of `t.amount + released`: `t.amount` (what was captured) posts
/// from the debit account to the credit account as one transfer, `released` returns to
/// the debit account's `available` (a hold captured in part).
pub(crate) fn settle_reserved(
    conn: &Conn,
    now: i64,
    t: &Transfer<'_>,
    released: i64,
) -> Result<(), Error> {
    let Transfer {
        debit,
        credit,
        amount,
        currency,
        kind,
        reference,
    } = *t;
    let settlement = Settlement {
        captured: amount,
        released,
    };
    let ((debit_id, debit_before, debit_reserved), (credit_id, credit_before, credit_reserved)) =
        postings_accounts(conn, debit, credit, currency)?;
    if debit_reserved < settlement.captured + settlement.released {
        tracing::error!(account = debit_id, "posting more than was reserved");
        return Err(Error::internal());
    }
    let (d, c) = settle(
        Holding::new(debit.0, debit_before, debit_reserved),
        Holding::new(credit.0, credit_before, credit_reserved),
        settlement,
    )?;
    set_reserved(conn, debit_id, debit_reserved, d.reserved)?;
    let entry = Entry {
        debit: (debit_id, debit_before, d.balance),
        credit: (credit_id, credit_before, c.balance),
        amount: settlement.captured,
        currency,
        kind,
        reference,
    };
    record(conn, now, &entry)
}

/// Voids a reservation: nothing moves.
pub(crate) fn void_reserved(
    conn: &Conn,
    debit: (AccountKind, &str),
    amount: i64,
    currency: Currency,
) -> Result<(), Error> {
    let (id, balance, reserved) = account(conn, debit.0, debit.1, currency)?;
    if reserved < amount {
        tracing::error!(account = id, "voiding more than was reserved");
        return Err(Error::internal());
    }
    let after = void_pending(Holding::new(debit.0, balance, reserved), amount);
    set_reserved(conn, id, reserved, after.reserved)
}

pub(crate) fn balances(conn: &Conn, kind: AccountKind, owner: &str) -> Result<Vec<Balance>, Error> {
    let mut stmt = conn
        .prepare_cached("SELECT currency, balance, reserved FROM accounts WHERE kind = ?1 AND owner = ?2 ORDER BY currency")
        .db()?;
    let rows = stmt
        .query_map(params![kind.as_str(), owner], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (code, balance, reserved) = row.db()?;
        out.push(Balance {
            currency: stored_currency(&code)?,
            available: balance - reserved,
            reserved,
        });
    }
    Ok(out)
}

pub(crate) fn transactions(
    conn: &Conn,
    kind: AccountKind,
    owner: &str,
    page: &PageRequest,
) -> Result<Page<Transaction>, Error> {
    let owned = "(SELECT id FROM accounts WHERE kind = ?2 AND owner = ?3)";
    // The cursor query binds (id, owner); the kind is one of three fixed words.
    let cursor_owned = format!(
        "(SELECT id FROM accounts WHERE kind = '{}' AND owner = ?2)",
        kind.as_str()
    );
    let cursor_sql = format!(
        "SELECT seq FROM transfers WHERE id = ?1 AND (debit_account IN {cursor_owned} OR credit_account IN {cursor_owned})"
    );
    let before = cursor_seq(conn, &cursor_sql, page.starting_after.as_deref(), owner)?;
    let sql = format!(
        "SELECT t.seq, t.id, t.kind, t.amount, t.currency, t.reference, t.created_at,
                t.debit_account IN {owned}, t.debit_balance_after, t.credit_balance_after
         FROM transfers t
         WHERE (t.debit_account IN {owned} OR t.credit_account IN {owned}) AND t.seq < ?1
           AND t.credit_balance_after IS NOT NULL
         ORDER BY t.seq DESC LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(
            params![before, kind.as_str(), owner, (page.limit + 1) as i64],
            |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, bool>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                ))
            },
        )
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, amount, code, reference, created_at, outgoing, debit_after, credit_after) =
            row.db()?;
        out.push(Transaction {
            id,
            object: "transaction",
            kind,
            amount: if outgoing { -amount } else { amount },
            currency: stored_currency(&code)?,
            reference,
            balance_after: if outgoing { debit_after } else { credit_after },
            created_at,
        });
    }
    Ok(Page::new(out, page.limit))
}

/// What reached a merchant's balance in the period (see [`Takings`]): the payments
/// it was credited and the refunds it was debited, settled ones only (as
/// [`transactions`] lists them), summed by the database per currency and interval.
pub(crate) fn takings(conn: &Conn, merchant: &str, q: &TakingsQuery) -> Result<Takings, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT t.currency, t.kind, (t.created_at + ?4) / ?5, CAST(SUM(t.amount) AS BIGINT), COUNT(*)
             FROM transfers t
             WHERE ((t.kind = 'payment' AND t.credit_account IN (SELECT id FROM accounts WHERE kind = 'merchant' AND owner = ?1))
                 OR (t.kind = 'refund' AND t.debit_account IN (SELECT id FROM accounts WHERE kind = 'merchant' AND owner = ?1)))
               AND t.created_at >= ?2 AND t.created_at < ?3 AND t.credit_balance_after IS NOT NULL
             GROUP BY t.currency, t.kind, 3",
        )
        .db()?;
    let rows = stmt
        .query_map(
            params![merchant, q.from_ms, q.to_ms, q.utc_offset_ms, q.interval_ms],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .db()?;
    let first = (q.from_ms + q.utc_offset_ms).div_euclid(q.interval_ms);
    let mut by_currency: std::collections::BTreeMap<String, CurrencyTakings> = Default::default();
    for row in rows {
        let (code, kind, bucket, sum, count) = row.db()?;
        let currency = stored_currency(&code)?;
        let entry = by_currency
            .entry(code)
            .or_insert_with(|| no_takings(currency, q));
        let Some(interval) = usize::try_from(bucket - first)
            .ok()
            .and_then(|i| entry.intervals.get_mut(i))
        else {
            tracing::error!(bucket, "a transfer outside the period it was selected for");
            return Err(Error::internal());
        };
        let add = |total: &mut i64, n: i64| -> Result<(), Error> {
            *total = total.checked_add(n).ok_or_else(Error::internal)?;
            Ok(())
        };
        if kind == "payment" {
            add(&mut interval.received, sum)?;
            add(&mut entry.received, sum)?;
            add(&mut entry.payments, count)?;
        } else {
            add(&mut interval.refunded, sum)?;
            add(&mut entry.refunded, sum)?;
            add(&mut entry.refunds, count)?;
        }
    }
    let mut currencies: Vec<CurrencyTakings> = by_currency.into_values().collect();
    for c in &mut currencies {
        net_out(c)?;
    }
    Ok(Takings {
        object: "takings",
        from: q.from_ms,
        to: q.to_ms,
        interval: q.interval_name().into(),
        utc_offset: i32::try_from(q.utc_offset_ms / 60_000).unwrap_or(0),
        currencies,
    })
}

/// A currency's takings before any transfer is counted: every interval listed, at zero.
fn no_takings(currency: Currency, q: &TakingsQuery) -> CurrencyTakings {
    CurrencyTakings {
        currency,
        received: 0,
        refunded: 0,
        net: 0,
        payments: 0,
        refunds: 0,
        intervals: (0..q.intervals())
            .map(|i| TakingsInterval {
                start: q.start(i),
                received: 0,
                refunded: 0,
                net: 0,
            })
            .collect(),
    }
}

/// Received less refunded, for the currency and each of its intervals (checked).
fn net_out(c: &mut CurrencyTakings) -> Result<(), Error> {
    c.net = c
        .received
        .checked_sub(c.refunded)
        .ok_or_else(Error::internal)?;
    for i in &mut c.intervals {
        i.net = i
            .received
            .checked_sub(i.refunded)
            .ok_or_else(Error::internal)?;
    }
    Ok(())
}

/// The book from its running totals: no scan, whatever its size.
pub(crate) fn report_from_totals(conn: &Conn) -> Result<LedgerReport, Error> {
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT currency FROM ledger_totals ORDER BY currency")
        .db()?;
    let codes: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .db()?
        .collect::<Result<_, _>>()
        .db()?;
    let (mut accounts, mut transfers) = (0, 0);
    let mut currencies = Vec::with_capacity(codes.len());
    for code in codes {
        let t = load_totals(conn, &code)?;
        accounts += t.accounts;
        transfers += t.transfers;
        currencies.push(CurrencyTotals {
            currency: stored_currency(&code)?,
            total_debits: t.debits,
            total_credits: t.credits,
            sum_of_balances: t.sum_of_balances,
            balanced: t.debits == t.credits && t.sum_of_balances == 0,
        });
    }
    Ok(LedgerReport {
        audit: "running_totals",
        balanced: currencies.iter().all(|c| c.balanced),
        currencies,
        accounts,
        transfers,
        payment_transfer_mismatches: None,
        refund_transfer_mismatches: None,
        running_totals_match: None,
    })
}

/// Every account's balance into `audit`; how many accounts there are.
fn replay_accounts(conn: &Conn, audit: &mut Conservation) -> Result<i64, Error> {
    let mut n = 0;
    let mut stmt = conn
            // With the credits still pending (PostgreSQL, between a commit and its
            // settlement): what the account holds once they are applied.
            .prepare(
                "SELECT a.id, a.kind, a.currency, a.balance + CAST(COALESCE((SELECT SUM(t.amount)
                   FROM transfers t WHERE t.credit_account = a.id AND t.credit_balance_after IS NULL), 0) AS BIGINT)
                 FROM accounts a",
            )
            .db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .db()?;
    for row in rows {
        let (id, kind, code, balance) = row.db()?;
        let kind = AccountKind::parse(&kind).ok_or_else(Error::internal)?;
        audit.account(id, kind, stored_currency(&code)?, balance);
        n += 1;
    }
    Ok(n)
}

/// Every transfer into `audit`; how many transfers there are.
fn replay_transfers(conn: &Conn, audit: &mut Conservation) -> Result<i64, Error> {
    let mut n = 0;
    let mut stmt = conn
        .prepare("SELECT debit_account, credit_account, amount, currency FROM transfers")
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .db()?;
    for row in rows {
        let (debit, credit, amount, code) = row.db()?;
        audit.transfer(debit, credit, amount, stored_currency(&code)?);
        n += 1;
    }
    Ok(n)
}

/// Audits the whole book: per currency, debits = credits, balances sum to zero, and
/// every account's balance equals the replay of its transfers; every succeeded
/// payment and refund has its one transfer; the running totals agree with all this.
pub(crate) fn report(conn: &Conn) -> Result<LedgerReport, Error> {
    let mut audit = Conservation::default();
    let accounts = replay_accounts(conn, &mut audit)?;
    let transfers = replay_transfers(conn, &mut audit)?;
    let currencies: Vec<CurrencyTotals> = audit
        .finish()
        .into_iter()
        .map(|r| CurrencyTotals {
            currency: r.currency,
            total_debits: r.total_debits,
            total_credits: r.total_credits,
            sum_of_balances: r.sum_of_balances,
            balanced: r.balanced,
        })
        .collect();
    let count = |sql: &str| -> Result<i64, Error> { conn.query_row(sql, [], |r| r.get(0)).db() };
    let payment_transfer_mismatches = count(
        "SELECT COUNT(*) FROM payments p WHERE
           (SELECT COUNT(*) FROM transfers t WHERE t.reference = p.id AND t.kind = 'payment')
           <> (CASE WHEN p.status = 'succeeded' THEN 1 ELSE 0 END)",
    )?;
    let refund_transfer_mismatches = count(
        "SELECT COUNT(*) FROM refunds r WHERE
           (SELECT COUNT(*) FROM transfers t WHERE t.reference = r.id AND t.kind = 'refund') <> 1",
    )?;
    let kept = report_from_totals(conn)?;
    let running_totals_match = kept.accounts == accounts
        && kept.transfers == transfers
        && kept.currencies.len() == currencies.len()
        && kept.currencies.iter().zip(&currencies).all(|(k, c)| {
            k.currency == c.currency
                && k.total_debits == c.total_debits
                && k.total_credits == c.total_credits
                && k.sum_of_balances == c.sum_of_balances
        });
    Ok(LedgerReport {
        audit: "full",
        balanced: currencies.iter().all(|c| c.balanced)
            && payment_transfer_mismatches == 0
            && refund_transfer_mismatches == 0
            && running_totals_match,
        payment_transfer_mismatches: Some(payment_transfer_mismatches),
        refund_transfer_mismatches: Some(refund_transfer_mismatches),
        running_totals_match: Some(running_totals_match),
        currencies,
        accounts,
        transfers,
    })
}

/// Money into and out of a customer's wallets, per currency, in each of `months`
/// (`(name, start, end)`, instants `[start, end)`), from the ledger's transfers.
pub(crate) fn wallet_months(
    conn: &Conn,
    customer_id: &str,
    months: &[(String, i64, i64)],
) -> Result<Vec<crate::model::MonthFlow>, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT currency, CAST(SUM(money_in) AS BIGINT), CAST(SUM(money_out) AS BIGINT) FROM (
                 SELECT a.currency AS currency, t.amount AS money_in, 0 AS money_out
                 FROM accounts a JOIN transfers t ON t.credit_account = a.id
                 WHERE a.kind = 'wallet' AND a.owner = ?1 AND t.created_at >= ?2 AND t.created_at < ?3
                 UNION ALL
                 SELECT a.currency, 0, t.amount
                 FROM accounts a JOIN transfers t ON t.debit_account = a.id
                 WHERE a.kind = 'wallet' AND a.owner = ?1 AND t.created_at >= ?2 AND t.created_at < ?3
             ) flows GROUP BY currency ORDER BY currency",
        )
        .db()?;
    let mut out = Vec::new();
    for (month, start, end) in months {
        let rows = stmt
            .query_map(params![customer_id, start, end], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .db()?;
        for row in rows {
            let (currency, money_in, money_out) = row.db()?;
            out.push(crate::model::MonthFlow {
                month: month.clone(),
                currency,
                money_in,
                money_out,
            });
        }
    }
    Ok(out)
}

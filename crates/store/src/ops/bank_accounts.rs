//! Merchants' bank accounts, where payouts go.

use super::Db;
use crate::ids::new_id;
use crate::model::{BankAccount, NewBankAccount};
use crate::sql::{Conn, Optional, params};
use pocket_core::Error;

/// Most bank accounts a merchant may register.
pub const MAX_BANK_ACCOUNTS: i64 = 20;

const COLS: &str = "id, merchant_id, connector, account_number, bank_code, currency, created_at";

fn row(r: &crate::sql::Row<'_>) -> crate::sql::Result<(BankAccount, String)> {
    let number: String = r.get(3)?;
    let code: String = r.get(5)?;
    Ok((
        BankAccount {
            id: r.get(0)?,
            object: "bank_account",
            merchant: r.get(1)?,
            connector: r.get(2)?,
            last4: number
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
            bank_code: r.get(4)?,
            currency: pocket_core::Currency::parse(&code, "currency")
                .map_err(|_| crate::sql::SqlError::Decode(format!("currency {code}")))?,
            created_at: r.get(6)?,
        },
        number,
    ))
}

pub(crate) fn add(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    new: &NewBankAccount,
) -> Result<BankAccount, Error> {
    super::lock_owner(conn, super::Owner::Merchant, merchant_id)?;
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM bank_accounts WHERE merchant_id = ?1")
        .db()?
        .query_row([merchant_id], |r| r.get(0))
        .db()?;
    if count >= MAX_BANK_ACCOUNTS {
        return Err(Error::conflict(
            "too_many_bank_accounts",
            format!("A merchant may register at most {MAX_BANK_ACCOUNTS} bank accounts."),
        ));
    }
    let id = new_id("ba");
    conn.prepare_cached(
        "INSERT INTO bank_accounts (id, merchant_id, connector, holder_name, account_number, bank_code, currency, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db()?
    .execute(params![
        id,
        merchant_id,
        new.connector,
        new.holder_name,
        new.account_number,
        new.bank_code,
        new.currency.code(),
        now
    ])
    .db()?;
    get(conn, &id)?
        .map(|(a, _, _)| a)
        .ok_or_else(Error::internal)
}

/// An account with its full number and holder (to pay out to it).
pub(crate) fn get(conn: &Conn, id: &str) -> Result<Option<(BankAccount, String, String)>, Error> {
    let sql = format!("SELECT {COLS}, holder_name FROM bank_accounts WHERE id = ?1");
    conn.prepare_cached(&sql)
        .db()?
        .query_row([id], |r| {
            let (a, number) = row(r)?;
            Ok((a, number, r.get(7)?))
        })
        .optional()
        .db()
}

pub(crate) fn list(conn: &Conn, merchant_id: &str) -> Result<Vec<BankAccount>, Error> {
    let sql = format!(
        "SELECT {COLS} FROM bank_accounts WHERE merchant_id = ?1 ORDER BY seq DESC LIMIT {MAX_BANK_ACCOUNTS}"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt.query_map([merchant_id], row).db()?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r.db()?.0);
    }
    Ok(out)
}

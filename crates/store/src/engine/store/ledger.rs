//! Balances, transactions, takings and the whole ledger's report.

use super::SqlStore;
use crate::model::*;
use crate::ops;
use crate::ops::Outcome;
use crate::sql::Db;
use pocket_core::{Currency, Error};

impl SqlStore {
    /// A page of the customer's history, newest first: all of it, or one `kind`.
    pub async fn activity(
        &self,
        customer_id: String,
        kind: Option<pocket_core::activity::Kind>,
        page: PageRequest,
    ) -> Result<Page<pocket_core::activity::Activity>, Error> {
        self.read(move |c| ops::events::activity(c, &customer_id, kind, &page))
            .await
    }

    /// Money into and out of the customer's wallets in each month `(name, start, end)`.
    pub async fn wallet_months(
        &self,
        customer_id: String,
        months: Vec<(String, i64, i64)>,
    ) -> Result<Vec<crate::model::MonthFlow>, Error> {
        self.read(move |c| ops::ledger::wallet_months(c, &customer_id, &months))
            .await
    }

    /// Credits a wallet from the settlement account. `customer` is an id or a phone.
    pub async fn topup(
        &self,
        customer: String,
        amount: i64,
        currency: Currency,
        source: &'static str,
        idem: Option<Idem>,
    ) -> Result<Written<Topup>, Error> {
        let key = customer.clone();
        self.writer
            .run_keyed(&key, move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::wallet::topup(c, now, &customer, amount, currency, source)
                        .map(Outcome::Done)
                })
            })
            .await?
            .into_result()
    }

    pub async fn balances(
        &self,
        kind: pocket_core::ledger::AccountKind,
        owner: String,
    ) -> Result<Vec<Balance>, Error> {
        self.read(move |c| ops::ledger::balances(c, kind, &owner))
            .await
    }

    pub async fn transactions(
        &self,
        kind: pocket_core::ledger::AccountKind,
        owner: String,
        page: PageRequest,
    ) -> Result<Page<Transaction>, Error> {
        self.read(move |c| ops::ledger::transactions(c, kind, &owner, &page))
            .await
    }

    /// What reached a merchant's balance through sales in a period.
    pub async fn takings(&self, merchant: String, q: TakingsQuery) -> Result<Takings, Error> {
        self.read(move |c| ops::ledger::takings(c, &merchant, &q))
            .await
    }

    /// Payments by status and tier and the webhook backlog, for `GET /metrics` (a
    /// scan of the payments: scraped every few seconds at most, not per request).
    pub async fn figures(&self) -> Result<StoreFigures, Error> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT status, tier, COUNT(*) FROM payments GROUP BY status, tier")
                .db()?;
            let payments = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .db()?
                .collect::<crate::sql::Result<Vec<_>>>()
                .db()?;
            let delivery_backlog = c
                .query_row(
                    "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'",
                    [],
                    |r| r.get(0),
                )
                .db()?;
            Ok(StoreFigures {
                payments,
                delivery_backlog,
            })
        })
        .await
    }

    /// The book from its running totals, or (`full`) audited by reading everything.
    pub async fn ledger_report(&self, full: bool) -> Result<LedgerReport, Error> {
        if full {
            // One read transaction: every figure from the same snapshot of the book.
            self.read(|c| {
                c.execute_batch(c.begin_snapshot_sql()).db()?;
                let report = ops::ledger::report(c);
                // Also after a failure: the connection goes back to the pool clean.
                let _ = c.execute_batch(if report.is_ok() { "COMMIT" } else { "ROLLBACK" });
                report
            })
            .await
        } else {
            self.read(ops::ledger::report_from_totals).await
        }
    }
}

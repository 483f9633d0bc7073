//! Bank operations (two-phase, answered later) and merchants' bank accounts.

use super::SqlStore;
use crate::model::*;
use crate::ops;
use crate::ops::Outcome;
use pocket_core::Error;

impl SqlStore {
    /// Begins a card top-up, withdrawal or payout (a withdrawal or payout reserves its
    /// amount now), settling the PIN attempt that authorised it when there is one.
    pub async fn begin_bank_operation(
        &self,
        new: NewBankOperation,
        pin: Option<PinAttempt>,
        idem: Option<Idem>,
    ) -> Result<Written<BankOperation>, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, pin.as_ref(), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        ops::bank::begin(c, now, &new).map(Outcome::Done)
                    })
                })
            })
            .await?
            .into_result()
    }

    /// Applies a bank's final answer to an operation, once (later answers change nothing).
    pub async fn apply_bank_answer(
        &self,
        id: String,
        succeeded: bool,
        failure_code: Option<String>,
    ) -> Result<Option<BankOperation>, Error> {
        let outcome = if succeeded {
            pocket_core::ledger::pending::Outcome::Succeeded
        } else {
            pocket_core::ledger::pending::Outcome::Failed
        };
        self.writer
            .run(move |c, now| ops::bank::apply(c, now, &id, outcome, failure_code.as_deref()))
            .await
    }

    /// No final answer yet: look again later (backing off).
    pub async fn reschedule_bank_operation(&self, id: String) -> Result<(), Error> {
        self.writer
            .run(move |c, now| ops::bank::reschedule(c, now, &id))
            .await
    }

    /// Keeps why a signed answer about operation `id` was refused, and looks again later.
    pub async fn flag_bank_operation(&self, id: String, why: String) -> Result<(), Error> {
        self.writer
            .run(move |c, now| ops::bank::flag(c, now, &id, &why))
            .await
    }

    /// Leases operations due for a look.
    pub async fn claim_bank_operations(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<BankOperation>, Error> {
        self.writer
            .run(move |c, now| ops::bank::claim_due(c, now, limit, lease_ms))
            .await
    }

    pub async fn bank_operation(&self, id: String) -> Result<Option<BankOperation>, Error> {
        self.read(move |c| ops::bank::get(c, &id)).await
    }

    /// A connector's operations created in `[from_ms, to_ms)` (a day, to reconcile).
    pub async fn bank_operations_between(
        &self,
        connector: String,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<BankOperation>, Error> {
        self.read(move |c| ops::bank::between(c, &connector, from_ms, to_ms))
            .await
    }

    pub async fn list_bank_operations(
        &self,
        owner: String,
        kind: &'static str,
        limit: usize,
    ) -> Result<Vec<BankOperation>, Error> {
        self.read(move |c| ops::bank::list(c, &owner, kind, limit))
            .await
    }

    pub async fn add_bank_account(
        &self,
        merchant_id: String,
        new: NewBankAccount,
        idem: Option<Idem>,
    ) -> Result<Written<BankAccount>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::bank_accounts::add(c, now, &merchant_id, &new)
        })
        .await
    }

    /// A bank account with its full number and holder's name (to pay out to it).
    pub async fn bank_account(
        &self,
        id: String,
    ) -> Result<Option<(BankAccount, String, String)>, Error> {
        self.read(move |c| ops::bank_accounts::get(c, &id)).await
    }

    pub async fn list_bank_accounts(&self, merchant_id: String) -> Result<Vec<BankAccount>, Error> {
        self.read(move |c| ops::bank_accounts::list(c, &merchant_id))
            .await
    }
}

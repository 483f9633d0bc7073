//! Double-entry ledger rules.
//!
//! Every movement of money is one transfer: `amount` leaves the debit account and
//! arrives in the credit account, in one currency. Customer wallets and merchant
//! balances never go below zero; the operator's bank settlement account may (it
//! mirrors money held at the bank), so the balances of one currency always sum to zero.
//! [`post`] is the only arithmetic on balances of one-phase transfers, [`pending`] that
//! of two-phase ones (reserve, then post or void when a bank answers);
//! [`Conservation`] audits a whole book.

pub mod pending;

use crate::error::{Error, ErrorKind};
use crate::money::Currency;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// A customer's wallet.
    Wallet,
    /// A merchant's balance.
    Merchant,
    /// The operator's bank settlement account: the other side of top-ups.
    Settlement,
    /// Money in flight with one connector (bank) in one currency: the other side of
    /// card top-ups, withdrawals and payouts. It mirrors the bank, so it may be negative.
    Clearing,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Wallet => "wallet",
            AccountKind::Merchant => "merchant",
            AccountKind::Settlement => "settlement",
            AccountKind::Clearing => "clearing",
        }
    }

    pub fn parse(s: &str) -> Option<AccountKind> {
        match s {
            "wallet" => Some(AccountKind::Wallet),
            "merchant" => Some(AccountKind::Merchant),
            "settlement" => Some(AccountKind::Settlement),
            "clearing" => Some(AccountKind::Clearing),
            _ => None,
        }
    }

    pub fn may_go_negative(self) -> bool {
        matches!(self, AccountKind::Settlement | AccountKind::Clearing)
    }
}

/// Why money moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferKind {
    Topup,
    Payment,
    Refund,
    /// Money out of a wallet to a card, through a connector.
    Withdrawal,
    /// Money out of a merchant balance to a bank account, through a connector.
    Payout,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Topup => "topup",
            TransferKind::Payment => "payment",
            TransferKind::Refund => "refund",
            TransferKind::Withdrawal => "withdrawal",
            TransferKind::Payout => "payout",
        }
    }
}

/// Balances after a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posting {
    pub debit_after: i64,
    pub credit_after: i64,
}

pub fn insufficient_funds() -> Error {
    Error::new(
        ErrorKind::Payment,
        "insufficient_funds",
        "The balance is too low for this amount.",
    )
}

/// One movement of money, checked before anything is posted: two different accounts
/// (each by kind and owner), a positive amount in one currency, why it moved and the
/// object it belongs to. The store posts it whole (`ops::ledger::transfer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer<'a> {
    pub debit: (AccountKind, &'a str),
    pub credit: (AccountKind, &'a str),
    pub amount: i64,
    pub currency: Currency,
    pub kind: TransferKind,
    pub reference: &'a str,
}

impl<'a> Transfer<'a> {
    /// A transfer between two accounts; one that moves nothing, or moves money from an
    /// account to itself, is a bug in its caller (`500`, logged).
    pub fn new(
        debit: (AccountKind, &'a str),
        credit: (AccountKind, &'a str),
        amount: i64,
        currency: Currency,
        kind: TransferKind,
        reference: &'a str,
    ) -> Result<Transfer<'a>, Error> {
        if debit == credit {
            return Err(Error::internal_because(format!(
                "a {} transfer from an account to itself ({reference})",
                kind.as_str()
            )));
        }
        if amount <= 0 {
            return Err(Error::internal_because(format!(
                "a {} transfer of {amount} ({reference})",
                kind.as_str()
            )));
        }
        Ok(Transfer {
            debit,
            credit,
            amount,
            currency,
            kind,
            reference,
        })
    }
}

/// Moves `amount_minor` from a debit account to a credit account (both given by kind
/// and current balance). Refuses a non-settlement debit below zero
/// (`402 insufficient_funds`) and any overflow.
pub fn post(
    debit: (AccountKind, i64),
    credit: (AccountKind, i64),
    amount_minor: i64,
) -> Result<Posting, Error> {
    assert!(amount_minor > 0, "a transfer moves a positive amount");
    let overflow = || {
        Error::new(
            ErrorKind::InvalidRequest,
            "balance_limit",
            "This transfer would take a balance beyond what Pocket can hold.",
        )
    };
    let debit_after = debit.1.checked_sub(amount_minor).ok_or_else(overflow)?;
    if debit_after < 0 && !debit.0.may_go_negative() {
        return Err(insufficient_funds());
    }
    let credit_after = credit.1.checked_add(amount_minor).ok_or_else(overflow)?;
    Ok(Posting {
        debit_after,
        credit_after,
    })
}

/// One currency's line of the audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrencyReport {
    pub currency: Currency,
    pub total_debits: i128,
    pub total_credits: i128,
    /// Sum of all account balances: zero when nothing was created or destroyed.
    pub sum_of_balances: i128,
    /// Accounts whose stored balance differs from the replay of their transfers,
    /// or that are below zero without being allowed to.
    pub broken_accounts: u64,
    pub balanced: bool,
}

/// Streaming audit of a book: feed every account and every transfer, then `finish`.
#[derive(Default)]
pub struct Conservation {
    accounts: HashMap<i64, (AccountKind, Currency, i64)>,
    replayed: HashMap<i64, i128>,
    per_currency: BTreeMap<Currency, (i128, i128)>,
    mismatched_currency: u64,
}

impl Conservation {
    pub fn account(&mut self, id: i64, kind: AccountKind, currency: Currency, balance: i64) {
        self.accounts.insert(id, (kind, currency, balance));
    }

    pub fn transfer(&mut self, debit: i64, credit: i64, amount_minor: i64, currency: Currency) {
        let sums = self.per_currency.entry(currency).or_default();
        sums.0 += i128::from(amount_minor);
        sums.1 += i128::from(amount_minor);
        *self.replayed.entry(debit).or_default() -= i128::from(amount_minor);
        *self.replayed.entry(credit).or_default() += i128::from(amount_minor);
        for side in [debit, credit] {
            if self.accounts.get(&side).is_some_and(|a| a.1 != currency) {
                self.mismatched_currency += 1;
            }
        }
    }

    pub fn finish(self) -> Vec<CurrencyReport> {
        let mut reports: BTreeMap<Currency, CurrencyReport> = BTreeMap::new();
        let blank = |currency| CurrencyReport {
            currency,
            total_debits: 0,
            total_credits: 0,
            sum_of_balances: 0,
            broken_accounts: 0,
            balanced: true,
        };
        for (currency, (d, c)) in &self.per_currency {
            let r = reports.entry(*currency).or_insert_with(|| blank(*currency));
            r.total_debits = *d;
            r.total_credits = *c;
        }
        for (id, (kind, currency, balance)) in &self.accounts {
            let r = reports.entry(*currency).or_insert_with(|| blank(*currency));
            r.sum_of_balances += i128::from(*balance);
            let replay = self.replayed.get(id).copied().unwrap_or(0);
            if replay != i128::from(*balance) || (*balance < 0 && !kind.may_go_negative()) {
                r.broken_accounts += 1;
            }
        }
        let orphan_transfers = self
            .replayed
            .keys()
            .any(|id| !self.accounts.contains_key(id));
        reports
            .into_values()
            .map(|mut r| {
                r.balanced = r.total_debits == r.total_credits
                    && r.sum_of_balances == 0
                    && r.broken_accounts == 0
                    && self.mismatched_currency == 0
                    && !orphan_transfers;
                r
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_transfer_is_between_two_accounts_and_moves_something() {
        let cny = Currency::parse("CNY", "c").unwrap();
        let w = (AccountKind::Wallet, "cus_1");
        let m = (AccountKind::Merchant, "mer_1");
        assert!(Transfer::new(w, m, 1, cny, TransferKind::Payment, "pay_1").is_ok());
        for (debit, credit, amount) in [(w, w, 100), (w, m, 0), (w, m, -5)] {
            let e = Transfer::new(debit, credit, amount, cny, TransferKind::Payment, "pay_1")
                .unwrap_err();
            assert_eq!(e.code, "internal");
            assert!(e.cause.is_some(), "the bug is named for the log");
        }
        // The same owner in two kinds of account is two accounts.
        let own = (AccountKind::Merchant, "cus_1");
        assert!(Transfer::new(w, own, 1, cny, TransferKind::Payment, "pay_1").is_ok());
    }
    use super::*;
    use proptest::prelude::*;

    const W: AccountKind = AccountKind::Wallet;
    const M: AccountKind = AccountKind::Merchant;
    const S: AccountKind = AccountKind::Settlement;

    #[test]
    fn wallets_never_go_negative_settlement_may() {
        assert_eq!(
            post((W, 100), (M, 0), 100),
            Ok(Posting {
                debit_after: 0,
                credit_after: 100
            })
        );
        assert_eq!(
            post((W, 99), (M, 0), 100).unwrap_err().code,
            "insufficient_funds"
        );
        assert_eq!(
            post((M, 0), (W, 0), 1).unwrap_err().code,
            "insufficient_funds"
        );
        assert_eq!(post((S, 0), (W, 0), 500).unwrap().debit_after, -500);
        assert_eq!(
            post((S, i64::MIN), (W, 0), 1).unwrap_err().code,
            "balance_limit"
        );
        assert_eq!(
            post((S, 0), (W, i64::MAX), 1).unwrap_err().code,
            "balance_limit"
        );
    }

    #[test]
    fn audit_detects_tampering() {
        let cny = Currency::parse("CNY", "c").unwrap();
        let mut c = Conservation::default();
        c.account(1, S, cny, -100);
        c.account(2, W, cny, 101);
        c.transfer(1, 2, 100, cny);
        let r = c.finish();
        assert!(!r[0].balanced);
        assert_eq!(r[0].broken_accounts, 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Topup(usize, i64),
        Pay(usize, usize, i64),
        Refund(usize, usize, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..4, 1i64..10_000).prop_map(|(w, a)| Op::Topup(w, a)),
            (0usize..4, 0usize..2, 1i64..10_000).prop_map(|(w, m, a)| Op::Pay(w, m, a)),
            (0usize..4, 0usize..2, 1i64..10_000).prop_map(|(w, m, a)| Op::Refund(w, m, a)),
        ]
    }

    proptest! {
        /// Any sequence of postings, accepted or refused, keeps the book balanced and
        /// every wallet and merchant at or above zero.
        #[test]
        fn any_sequence_conserves_money(ops in proptest::collection::vec(op(), 0..200)) {
            let cny = Currency::parse("CNY", "c").unwrap();
            // ids: 0 settlement, 1..=4 wallets, 5..=6 merchants
            let kinds = [S, W, W, W, W, M, M];
            let mut bal = [0i64; 7];
            let mut transfers = vec![];
            for op in ops {
                let (d, c, a) = match op {
                    Op::Topup(w, a) => (0, 1 + w, a),
                    Op::Pay(w, m, a) => (1 + w, 5 + m, a),
                    Op::Refund(w, m, a) => (5 + m, 1 + w, a),
                };
                if let Ok(p) = post((kinds[d], bal[d]), (kinds[c], bal[c]), a) {
                    bal[d] = p.debit_after;
                    bal[c] = p.credit_after;
                    transfers.push((d, c, a));
                }
            }
            for (i, b) in bal.iter().enumerate() {
                prop_assert!(*b >= 0 || kinds[i] == S);
            }
            let mut audit = Conservation::default();
            for (i, b) in bal.iter().enumerate() { audit.account(i as i64, kinds[i], cny, *b); }
            for (d, c, a) in &transfers { audit.transfer(*d as i64, *c as i64, *a, cny); }
            let report = audit.finish();
            prop_assert!(report.iter().all(|r| r.balanced));
        }
    }
}

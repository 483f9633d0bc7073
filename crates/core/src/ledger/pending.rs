//! Two-phase transfers, for money that a bank answers for later (TigerBeetle's
//! pending transfers): a withdrawal or payout first **reserves** the amount on its
//! debit account (it leaves `available` at once, the balance stays), then the bank's
//! final answer **posts** it (the reserved amount leaves the balance and reaches the
//! credit account) or **voids** it (the reservation is released). Nothing else
//! changes a reservation, and a pending transfer is final once: an answer that comes
//! late, twice or out of order changes nothing a second time.
//!
//! Pure: the shell stores [`Holding`]s and [`Pending`] states and applies what these
//! functions return, in the transaction that records the bank's answer.

use super::{AccountKind, insufficient_funds};
use crate::error::{Error, ErrorKind};

/// An account as two-phase transfers see it: the posted balance and the part of it
/// reserved by pending transfers. `available = balance - reserved`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holding {
    pub kind: AccountKind,
    pub balance: i64,
    pub reserved: i64,
}

impl Holding {
    pub fn new(kind: AccountKind, balance: i64, reserved: i64) -> Holding {
        Holding {
            kind,
            balance,
            reserved,
        }
    }

    /// What may still be spent or reserved.
    pub fn available(&self) -> i64 {
        self.balance - self.reserved
    }
}

fn limit() -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        "balance_limit",
        "This transfer would take a balance beyond what Pocket can hold.",
    )
}

/// Reserves `amount` on `debit` (a pending transfer begins). An account that may not
/// go below zero must have it available (`402 insufficient_funds`).
pub fn reserve(debit: Holding, amount: i64) -> Result<Holding, Error> {
    assert!(amount > 0, "a reservation is of a positive amount");
    let reserved = debit.reserved.checked_add(amount).ok_or_else(limit)?;
    if !debit.kind.may_go_negative() && debit.balance.checked_sub(reserved).is_none_or(|a| a < 0) {
        return Err(insufficient_funds());
    }
    Ok(Holding { reserved, ..debit })
}

/// Posts a pending transfer: the reserved `amount` leaves `debit`'s balance and its
/// reservation, and arrives in `credit`.
pub fn post_pending(
    debit: Holding,
    credit: Holding,
    amount: i64,
) -> Result<(Holding, Holding), Error> {
    assert!(amount > 0, "a transfer moves a positive amount");
    assert!(debit.reserved >= amount, "only what was reserved is posted");
    let debit = Holding {
        balance: debit.balance.checked_sub(amount).ok_or_else(limit)?,
        reserved: debit.reserved - amount,
        ..debit
    };
    let credit = Holding {
        balance: credit.balance.checked_add(amount).ok_or_else(limit)?,
        ..credit
    };
    Ok((debit, credit))
}

/// Voids a pending transfer: its reservation is released, nothing moves.
pub fn void_pending(debit: Holding, amount: i64) -> Holding {
    assert!(
        amount > 0 && debit.reserved >= amount,
        "only what was reserved is released"
    );
    Holding {
        reserved: debit.reserved - amount,
        ..debit
    }
}

/// Where a pending transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    Reserved,
    Posted,
    Voided,
}

/// The bank's final word on an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// What to do with a pending transfer when an answer arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Post,
    Void,
    /// Already final: a late, repeated or contradicting answer changes nothing.
    Nothing,
}

impl Pending {
    pub fn as_str(self) -> &'static str {
        match self {
            Pending::Reserved => "reserved",
            Pending::Posted => "posted",
            Pending::Voided => "voided",
        }
    }

    /// The step an answer calls for, and the state after it.
    pub fn answer(self, outcome: Outcome) -> (Step, Pending) {
        match (self, outcome) {
            (Pending::Reserved, Outcome::Succeeded) => (Step::Post, Pending::Posted),
            (Pending::Reserved, Outcome::Failed) => (Step::Void, Pending::Voided),
            (done, _) => (Step::Nothing, done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W: AccountKind = AccountKind::Wallet;
    const C: AccountKind = AccountKind::Clearing;

    #[test]
    fn a_reservation_leaves_available_at_once_and_posts_or_voids_once() {
        let w = Holding::new(W, 1_000, 0);
        let w = reserve(w, 600).unwrap();
        assert_eq!((w.balance, w.available()), (1_000, 400));
        assert_eq!(reserve(w, 401).unwrap_err().code, "insufficient_funds");
        let (w, c) = post_pending(w, Holding::new(C, 0, 0), 600).unwrap();
        assert_eq!((w.balance, w.reserved, c.balance), (400, 0, 600));
        let w = void_pending(reserve(w, 400).unwrap(), 400);
        assert_eq!((w.balance, w.available()), (400, 400));
    }

    #[test]
    fn only_the_first_answer_counts() {
        let (step, s) = Pending::Reserved.answer(Outcome::Succeeded);
        assert_eq!((step, s), (Step::Post, Pending::Posted));
        for late in [Outcome::Succeeded, Outcome::Failed] {
            assert_eq!(s.answer(late), (Step::Nothing, Pending::Posted));
            assert_eq!(
                Pending::Voided.answer(late),
                (Step::Nothing, Pending::Voided)
            );
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Money arrives in a wallet from the clearing account (a top-up).
        Credit(usize, i64),
        /// A withdrawal begins: reserve on a wallet.
        Reserve(usize, i64),
        /// An answer (possibly late or repeated) for the n-th pending transfer.
        Answer(usize, bool),
        /// A payment between wallets from what is available.
        Spend(usize, usize, i64),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                (0usize..3, 1i64..5_000).prop_map(|(w, a)| Op::Credit(w, a)),
                (0usize..3, 1i64..5_000).prop_map(|(w, a)| Op::Reserve(w, a)),
                (any::<usize>(), any::<bool>()).prop_map(|(n, ok)| Op::Answer(n, ok)),
                (0usize..3, 0usize..3, 1i64..5_000).prop_map(|(a, b, x)| Op::Spend(a, b, x)),
            ],
            0..300,
        )
    }

    proptest! {
        /// No sequence of reservations, answers (late, repeated, contradicting) and
        /// spending creates or destroys money, overdraws a wallet, or moves a pending
        /// transfer's money twice.
        #[test]
        fn two_phase_transfers_conserve_money(ops in ops()) {
            // 0..3 wallets, 3 clearing.
            let mut acc = [Holding::new(W, 0, 0), Holding::new(W, 0, 0), Holding::new(W, 0, 0), Holding::new(C, 0, 0)];
            let mut pendings: Vec<(usize, i64, Pending)> = Vec::new();
            for op in ops {
                match op {
                    Op::Credit(w, a) => {
                        if let Ok((c, wal)) = post_pending(reserve(acc[3], a).unwrap(), acc[w], a) {
                            acc[3] = c;
                            acc[w] = wal;
                        }
                    }
                    Op::Reserve(w, a) => if let Ok(h) = reserve(acc[w], a) {
                        acc[w] = h;
                        pendings.push((w, a, Pending::Reserved));
                    },
                    Op::Answer(n, ok) if !pendings.is_empty() => {
                        let i = n % pendings.len();
                        let (w, a, state) = pendings[i];
                        let outcome = if ok { Outcome::Succeeded } else { Outcome::Failed };
                        let (step, next) = state.answer(outcome);
                        match step {
                            Step::Post => {
                                let (wal, c) = post_pending(acc[w], acc[3], a).unwrap();
                                acc[w] = wal;
                                acc[3] = c;
                            }
                            Step::Void => acc[w] = void_pending(acc[w], a),
                            Step::Nothing => {}
                        }
                        pendings[i].2 = next;
                    }
                    Op::Spend(from, to, a) if from != to && acc[from].available() >= a => {
                        acc[from].balance -= a;
                        acc[to].balance += a;
                    }
                    _ => {}
                }
                let sum: i64 = acc.iter().map(|h| h.balance).sum();
                prop_assert_eq!(sum, 0, "money created or destroyed");
                for (w, h) in acc.iter().enumerate().take(3) {
                    prop_assert!(h.available() >= 0 && h.reserved >= 0, "wallet {} overdrawn: {:?}", w, h);
                    let open: i64 = pendings.iter().filter(|p| p.0 == w && p.2 == Pending::Reserved).map(|p| p.1).sum();
                    prop_assert_eq!(h.reserved, open, "wallet {}'s reservation is not its open pendings", w);
                }
            }
        }
    }
}

//! Holds: two-phase payments with a deadline.
//!
//! A payment created with `capture: "manual"` is not paid when the customer confirms
//! it: the amount is **reserved** in the wallet (it leaves `available`, the balance
//! stays) and the payment is `authorized` until `capture_before`. Then exactly one of:
//!
//! - the merchant **captures** all or part of it before the deadline: the captured part
//!   moves to the merchant as one transfer, the rest of the reservation is released;
//! - the merchant **cancels** it, or the deadline passes: the whole reservation is
//!   released, nothing moves (`canceled`, and `capture_expired` when it was the deadline).
//!
//! The deadline is the payment deadline's rule again: a capture that commits at or after
//! `capture_before` is refused (and the hold released in that same transaction), one that
//! commits before it is never refused for lateness. Every function takes `now_ms` from
//! the caller, who reads it inside the committing transaction.

use crate::error::{Error, ErrorKind};
use crate::ledger::pending::{Holding, post_pending, void_pending};
use crate::payment::{CaptureMethod, Decision, Payment, Status};
use crate::time::MS_PER_SECOND;

/// The longest a hold may last (and the default): 7 days.
pub const MAX_CAPTURE_WITHIN_SECONDS: i64 = 7 * 24 * 3600;

/// The failure code of a hold released because its deadline passed.
pub const CAPTURE_EXPIRED: &str = "capture_expired";

/// How long a new payment's hold will last, in seconds: `None` for automatic capture.
/// `capture_within` is only for manual capture, 1 to [`MAX_CAPTURE_WITHIN_SECONDS`].
pub fn capture_within(method: CaptureMethod, within: Option<i64>) -> Result<Option<i64>, Error> {
    match (method, within) {
        (CaptureMethod::Automatic, None) => Ok(None),
        (CaptureMethod::Automatic, Some(_)) => Err(Error::invalid(
            "capture_within",
            "`capture_within` is only for payments with `capture: \"manual\"`.",
        )),
        (CaptureMethod::Manual, None) => Ok(Some(MAX_CAPTURE_WITHIN_SECONDS)),
        (CaptureMethod::Manual, Some(s)) if (1..=MAX_CAPTURE_WITHIN_SECONDS).contains(&s) => {
            Ok(Some(s))
        }
        (CaptureMethod::Manual, Some(_)) => Err(Error::invalid(
            "capture_within",
            format!("`capture_within` must be 1 to {MAX_CAPTURE_WITHIN_SECONDS} seconds."),
        )),
    }
}

/// The capture deadline of a hold made at `now_ms`.
pub fn capture_deadline(p: &Payment, now_ms: i64) -> i64 {
    assert_eq!(
        p.capture,
        CaptureMethod::Manual,
        "only manual capture holds"
    );
    let seconds = p
        .capture_within_seconds
        .expect("a manual-capture payment knows its hold's length");
    now_ms + seconds * MS_PER_SECOND
}

pub fn capture_expired() -> Error {
    Error::conflict(
        CAPTURE_EXPIRED,
        "This payment's hold was not captured before `capture_before`; it has been released.",
    )
}

fn not_authorized(p: &Payment) -> Error {
    if p.status == Status::Canceled && p.failure_code.as_deref() == Some(CAPTURE_EXPIRED) {
        return capture_expired();
    }
    Error::conflict(
        "payment_not_authorized",
        format!(
            "Only an authorized payment (a hold) can be captured; this one is {}.",
            p.status.as_str()
        ),
    )
}

/// The deadline rule of every transition out of `authorized`.
fn hold_decision(p: &Payment, now_ms: i64) -> Result<Decision, Error> {
    if p.status != Status::Authorized {
        return Err(not_authorized(p));
    }
    let deadline = p
        .capture_before
        .expect("an authorized payment has a capture deadline");
    if now_ms >= deadline {
        return Ok(Decision::Expire);
    }
    Ok(Decision::Proceed)
}

/// How a hold ends: what reaches the merchant and what returns to `available`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub captured: i64,
    pub released: i64,
}

/// What a capture does, decided at commit time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capture {
    Settle(Settlement),
    /// The deadline has passed: the hold is released (`capture_expired`) and the
    /// request refused.
    Expire,
}

/// A capture of `requested` (all of it when absent) at `now_ms`.
pub fn decide_capture(p: &Payment, requested: Option<i64>, now_ms: i64) -> Result<Capture, Error> {
    if hold_decision(p, now_ms)? == Decision::Expire {
        return Ok(Capture::Expire);
    }
    let captured = requested.unwrap_or(p.amount);
    if captured < 1 {
        return Err(Error::invalid("amount", "`amount` must be at least 1."));
    }
    if captured > p.amount {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "capture_exceeds_authorization",
            format!(
                "A capture may not exceed the authorized {} {}.",
                p.currency.format_major(p.amount),
                p.currency
            ),
        )
        .with_param("amount"));
    }
    Ok(Capture::Settle(Settlement {
        captured,
        released: p.amount - captured,
    }))
}

/// A cancel of a hold at `now_ms` (ownership is checked by the caller).
pub fn decide_release(p: &Payment, now_ms: i64) -> Result<Decision, Error> {
    hold_decision(p, now_ms)
}

/// The ledger side of a capture: `settlement.captured` of the reservation posts from
/// `debit` to `credit`, `settlement.released` of it returns to `debit`'s `available`.
/// Together they end exactly the reservation the hold made, no more, no less.
pub fn settle(
    debit: Holding,
    credit: Holding,
    settlement: Settlement,
) -> Result<(Holding, Holding), Error> {
    let (mut debit, credit) = post_pending(debit, credit, settlement.captured)?;
    if settlement.released > 0 {
        debit = void_pending(debit, settlement.released);
    }
    Ok((debit, credit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::AccountKind;
    use crate::ledger::pending::reserve;
    use proptest::prelude::*;

    fn hold(amount: i64, capture_before: i64) -> Payment {
        let mut p = crate::payment::test_payment(Some("cus_a"), Status::Authorized);
        p.amount = amount;
        p.capture = CaptureMethod::Manual;
        p.capture_before = Some(capture_before);
        p.capture_within_seconds = Some(60);
        p
    }

    #[test]
    fn capture_within_is_only_for_manual_and_bounded() {
        assert_eq!(capture_within(CaptureMethod::Automatic, None), Ok(None));
        assert_eq!(
            capture_within(CaptureMethod::Manual, None),
            Ok(Some(604_800))
        );
        assert_eq!(capture_within(CaptureMethod::Manual, Some(1)), Ok(Some(1)));
        for bad in [0, -1, 604_801] {
            let e = capture_within(CaptureMethod::Manual, Some(bad)).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("capture_within"));
        }
        assert!(capture_within(CaptureMethod::Automatic, Some(60)).is_err());
    }

    #[test]
    fn the_capture_deadline_is_exclusive() {
        let p = hold(1000, 60_000);
        assert_eq!(
            decide_capture(&p, None, 59_999),
            Ok(Capture::Settle(Settlement {
                captured: 1000,
                released: 0
            }))
        );
        assert_eq!(decide_capture(&p, None, 60_000), Ok(Capture::Expire));
        assert_eq!(decide_release(&p, 59_999), Ok(Decision::Proceed));
        assert_eq!(decide_release(&p, 60_000), Ok(Decision::Expire));
    }

    #[test]
    fn partial_captures_release_the_rest_and_never_exceed() {
        let p = hold(1000, 60_000);
        assert_eq!(
            decide_capture(&p, Some(400), 0),
            Ok(Capture::Settle(Settlement {
                captured: 400,
                released: 600
            }))
        );
        assert_eq!(
            decide_capture(&p, Some(1001), 0).unwrap_err().code,
            "capture_exceeds_authorization"
        );
        assert_eq!(
            decide_capture(&p, Some(0), 0).unwrap_err().param.as_deref(),
            Some("amount")
        );
    }

    #[test]
    fn only_an_authorized_payment_settles_once() {
        let mut p = hold(1000, 60_000);
        for s in [Status::Pending, Status::Succeeded, Status::Canceled] {
            p.status = s;
            assert_eq!(
                decide_capture(&p, None, 0).unwrap_err().code,
                "payment_not_authorized"
            );
        }
        p.failure_code = Some(CAPTURE_EXPIRED.into());
        assert_eq!(
            decide_capture(&p, None, 0).unwrap_err().code,
            "capture_expired"
        );
    }

    proptest! {
        /// A capture never succeeds at or after the deadline and is never refused for
        /// lateness before it.
        #[test]
        fn deadline_decides_alone(deadline in 1i64..1_000_000_000, now in 0i64..2_000_000_000,
                                  amount in 1i64..1_000_000, part in 1i64..1_000_000) {
            let p = hold(amount, deadline);
            let requested = part.min(amount);
            match decide_capture(&p, Some(requested), now).unwrap() {
                Capture::Expire => prop_assert!(now >= deadline),
                Capture::Settle(s) => {
                    prop_assert!(now < deadline);
                    prop_assert_eq!(s.captured + s.released, amount);
                    prop_assert_eq!(s.captured, requested);
                }
            }
        }

        /// Reserved money moves exactly once: after reserve → settle (or reserve →
        /// release), the wallet's reservation is what it was, the wallet lost exactly
        /// what was captured, the merchant gained it, and nothing was created.
        #[test]
        fn reserved_money_moves_once(balance in 0i64..1_000_000_000_000, other in 0i64..1_000_000,
                                     merchant in 0i64..1_000_000_000_000,
                                     amount in 1i64..1_000_000_000, part in 0i64..1_000_000_000) {
            let wallet = Holding::new(AccountKind::Wallet, balance + other, other);
            let shop = Holding::new(AccountKind::Merchant, merchant, 0);
            let held = match reserve(wallet, amount) {
                Ok(h) => h,
                Err(e) => {
                    prop_assert!(balance < amount);
                    prop_assert_eq!(e.code, "insufficient_funds");
                    return Ok(());
                }
            };
            prop_assert!(held.available() >= 0);
            // part == 0 stands for a release (cancel or deadline): nothing moves.
            let captured = part.min(amount);
            let (w, m) = if captured == 0 {
                (void_pending(held, amount), shop)
            } else {
                settle(held, shop, Settlement { captured, released: amount - captured }).unwrap()
            };
            prop_assert_eq!(w.reserved, other);
            prop_assert_eq!(w.balance, balance + other - captured);
            prop_assert_eq!(m.balance, merchant + captured);
            prop_assert_eq!(w.balance + m.balance, balance + other + merchant);
            prop_assert!(w.available() >= 0);
        }
    }
}

//! Holds (manual capture) against their deadline, with a controllable clock: the same
//! guarantees as the payment deadline — a capture that commits at or after
//! `capture_before` is refused, one before it never is for lateness — and every hold
//! ends exactly once (captured or released), with its reservation moving exactly once.

use crate::world::{Lcg, World, cny, world};
use pocket_core::ledger::AccountKind;
use pocket_core::payment::{CaptureMethod, Payment, Status};
use pocket_store::model::Written;
use pocket_store::testing::{T0, fresh};
use std::sync::Arc;

impl World {
    /// A manual-capture payment of `amount`, confirmed: held for `within_s` seconds.
    async fn hold(&self, amount: i64, within_s: i64) -> Payment {
        let id = self
            .pay_capturing(amount, None, CaptureMethod::Manual, Some(within_s))
            .await;
        fresh(
            self.store
                .confirm(
                    id,
                    self.customer.clone(),
                    Default::default(),
                    None,
                    None,
                    None,
                )
                .await
                .unwrap(),
        )
    }

    async fn capture(&self, id: &str, amount: Option<i64>) -> Result<Payment, &'static str> {
        self.store
            .capture(id.into(), self.merchant.clone(), amount, None)
            .await
            .map(fresh)
            .map_err(|e| e.code)
    }

    async fn cancel(&self, id: &str) -> Result<Payment, &'static str> {
        self.store
            .cancel(id.into(), self.merchant.clone(), None)
            .await
            .map(fresh)
            .map_err(|e| e.code)
    }

    /// The wallet's (available, reserved) and the merchant's available, in CNY.
    async fn money(&self) -> (i64, i64, i64) {
        let find = |b: Vec<pocket_store::model::Balance>| {
            b.into_iter()
                .find(|b| b.currency == cny())
                .map_or((0, 0), |b| (b.available, b.reserved))
        };
        let wallet = find(
            self.store
                .balances(AccountKind::Wallet, self.customer.clone())
                .await
                .unwrap(),
        );
        let merchant = find(
            self.store
                .balances(AccountKind::Merchant, self.merchant.clone())
                .await
                .unwrap(),
        );
        (wallet.0, wallet.1, merchant.0)
    }

    fn verified(&self) {
        let v = self.db.verify().unwrap();
        assert!(v.faults.is_empty(), "{:?}", v.faults);
    }
}

#[tokio::test]
async fn a_hold_reserves_and_a_capture_one_millisecond_before_its_deadline_moves_it_once() {
    let w = world(10_000).await;
    let held = w.hold(1_000, 60).await;
    assert_eq!(held.status, Status::Authorized);
    assert_eq!(held.capture_before, Some(T0 + 60_000));
    assert_eq!(held.amount_captured, 0);
    assert_eq!(
        w.money().await,
        (9_000, 1_000, 0),
        "reserved, nothing moved"
    );
    let transfers = w.transfers().await;
    w.clock.set_ms(T0 + 60_000 - 1);
    let p = w.capture(&held.id, None).await.unwrap();
    assert_eq!((p.status, p.amount_captured), (Status::Succeeded, 1_000));
    assert_eq!(w.money().await, (9_000, 0, 1_000));
    assert_eq!(w.transfers().await, transfers + 1, "one transfer");
    assert_eq!(
        w.capture(&held.id, None).await.unwrap_err(),
        "payment_not_authorized"
    );
    assert_eq!(w.cancel(&held.id).await.unwrap_err(), "payment_not_pending");
    w.verified();
}

#[tokio::test]
async fn a_capture_at_the_deadline_is_refused_and_releases_the_hold() {
    let w = world(10_000).await;
    let held = w.hold(1_000, 60).await;
    w.clock.set_ms(T0 + 60_000);
    assert_eq!(
        w.capture(&held.id, None).await.unwrap_err(),
        "capture_expired"
    );
    let p = w.store.payment(held.id.clone()).await.unwrap().unwrap();
    assert_eq!(p.status, Status::Canceled);
    assert_eq!(p.failure_code.as_deref(), Some("capture_expired"));
    assert_eq!(w.money().await, (10_000, 0, 0), "released, nothing moved");
    // Asked again: still refused, nothing released twice.
    assert_eq!(
        w.capture(&held.id, None).await.unwrap_err(),
        "capture_expired"
    );
    assert_eq!(w.cancel(&held.id).await.unwrap_err(), "payment_not_pending");
    assert_eq!(w.money().await, (10_000, 0, 0));
    w.verified();
}

#[tokio::test]
async fn a_partial_capture_releases_the_rest_and_bounds_refunds() {
    let w = world(10_000).await;
    let held = w.hold(1_000, 60).await;
    assert_eq!(
        w.capture(&held.id, Some(1_001)).await.unwrap_err(),
        "capture_exceeds_authorization"
    );
    assert_eq!(
        w.money().await,
        (9_000, 1_000, 0),
        "a refused capture changes nothing"
    );
    let p = w.capture(&held.id, Some(400)).await.unwrap();
    assert_eq!(p.amount_captured, 400);
    assert_eq!(w.money().await, (9_600, 0, 400));
    let refund = |amount| {
        w.store
            .refund(held.id.clone(), w.merchant.clone(), amount, None, None)
    };
    assert_eq!(
        refund(Some(401)).await.unwrap_err().code,
        "refund_exceeds_payment"
    );
    assert!(refund(None).await.is_ok());
    assert_eq!(w.money().await, (10_000, 0, 0));
    w.verified();
}

#[tokio::test]
async fn a_canceled_hold_is_released_and_a_hold_needs_the_money() {
    let w = world(1_500).await;
    let held = w.hold(1_000, 60).await;
    // 500 left available: a second hold of 1,000 is refused and stays pending.
    let second = w
        .pay_capturing(1_000, None, CaptureMethod::Manual, None)
        .await;
    let refused = w
        .store
        .confirm(
            second.clone(),
            w.customer.clone(),
            Default::default(),
            None,
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, "insufficient_funds");
    assert_eq!(w.status(&second).await, Status::Pending);
    let p = w.cancel(&held.id).await.unwrap();
    assert_eq!((p.status, p.failure_code), (Status::Canceled, None));
    assert_eq!(w.money().await, (1_500, 0, 0));
    assert_eq!(
        w.capture(&held.id, None).await.unwrap_err(),
        "payment_not_authorized"
    );
    w.verified();
}

/// Parallel captures of one hold, and captures racing cancels: one wins, the hold's
/// reservation moves once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_captures_and_cancels_end_a_hold_once() {
    let w = Arc::new(world(1_000_000).await);
    for round in 0..10 {
        let held = w.hold(1_000, 60).await;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (w, id) = (w.clone(), held.id.clone());
            tasks.push(tokio::spawn(async move {
                if round % 2 == 1 && i % 2 == 1 {
                    w.cancel(&id).await.map(|p| p.status)
                } else {
                    w.capture(&id, Some(100 + i)).await.map(|p| p.status)
                }
            }));
        }
        let mut won = Vec::new();
        for t in tasks {
            if let Ok(status) = t.await.unwrap() {
                won.push(status);
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
    }
    let (available, reserved, merchant) = w.money().await;
    assert_eq!(reserved, 0);
    assert_eq!(
        available + merchant,
        1_000_000,
        "money neither created nor destroyed"
    );
    w.verified();
}

/// Randomized races between captures, sweeps and a clock that moves while they run: no
/// capture commits at or after its deadline, no hold is released by the deadline
/// before it, every capture's answer matches the hold's end, and the ledger moved once
/// per capture. `POCKET_HOLD_RACES` sets how many (CI: 1,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn captures_racing_the_deadline_never_capture_late_or_release_early() {
    let total: usize = std::env::var("POCKET_HOLD_RACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    const ROUND: usize = 250;
    let w = Arc::new(world(1_000_000_000_000).await);
    let before = w.transfers().await;
    let mut rng = Lcg(0x2545_f491_4f6c_dd1d);
    let (mut captured, mut released, mut late, mut early) = (0i64, 0, 0, 0);
    let mut done = 0;
    while done < total {
        let n = ROUND.min(total - done);
        let mut holds = Vec::with_capacity(n);
        for _ in 0..n {
            holds.push(w.hold(100, 1 + rng.below(3) as i64).await.id);
        }
        w.clock.advance_ms(800 + rng.below(2_000) as i64);
        let mut tasks = Vec::with_capacity(n);
        for id in holds.clone() {
            let w = w.clone();
            let (delay, amount) = (rng.below(8), 1 + rng.below(100) as i64);
            tasks.push(tokio::spawn(async move {
                for _ in 0..delay {
                    tokio::task::yield_now().await;
                }
                w.capture(&id, Some(amount))
                    .await
                    .map(|p| p.amount_captured)
            }));
        }
        // The clock moves in random steps while they run, and sweeps run too.
        let answers = w.race(tasks, &mut rng).await;
        for (id, answer) in holds.iter().zip(&answers) {
            let p = w.store.payment(id.clone()).await.unwrap().unwrap();
            let at = p.completed_at.expect("ended");
            let deadline = p.capture_before.expect("was held");
            match p.status {
                Status::Succeeded => {
                    captured += 1;
                    late += (at >= deadline) as i64;
                    assert_eq!(answer.as_ref().ok(), Some(&p.amount_captured), "{id}");
                }
                Status::Canceled => {
                    released += 1;
                    early += (at < deadline) as i64;
                    assert_eq!(p.failure_code.as_deref(), Some("capture_expired"));
                    let code = *answer.as_ref().unwrap_err();
                    assert!(
                        code == "capture_expired" || code == "payment_not_authorized",
                        "{id}: {code}"
                    );
                }
                other => panic!("{id} ended {other:?}"),
            }
        }
        done += n;
    }
    eprintln!(
        "hold races: {total} holds, {captured} captured in time, {released} released; \
         late captures {late}, early releases {early}"
    );
    assert_eq!((late, early), (0, 0));
    assert!(captured > 0 && released > 0, "both outcomes must occur");
    assert_eq!(
        w.transfers().await,
        before + captured,
        "one transfer per capture"
    );
    assert_eq!(w.money().await.1, 0, "every reservation ended");
    w.verified();
}

/// The sweeper releases a hold left alone within a second of its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_releases_a_hold_left_alone() {
    let w = world(10_000).await;
    let held = w.hold(1_000, 5).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(pocket_store::sweeper::run(w.store.clone(), rx));
    w.clock.advance_ms(5_000);
    let mut waited_ms = 0;
    while w.status(&held.id).await != Status::Canceled {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited_ms += 20;
        assert!(waited_ms <= 1000, "not released within a second");
    }
    stop.send(true).unwrap();
    sweeper.await.unwrap();
    let p = w.store.payment(held.id.clone()).await.unwrap().unwrap();
    assert_eq!(p.failure_code.as_deref(), Some("capture_expired"));
    assert_eq!(p.completed_at, Some(T0 + 5_000));
    assert_eq!(w.money().await, (10_000, 0, 0));
    assert!(matches!(
        w.store
            .capture(held.id, w.merchant.clone(), None, None)
            .await
            .map(|_: Written<Payment>| ()),
        Err(e) if e.code == "capture_expired"
    ));
    w.verified();
}

//! Customer-presented payment codes in the charging transaction, with a controllable
//! clock: a code is charged once (also when the same code arrives twice at once), within
//! one step either side of its own as read at commit, only while its device is active;
//! the `small` tier is paid at once, above it the payment waits in the wallet, and a
//! refused charge writes nothing.

use crate::world::{World, world};
use pocket_core::code::{STEP_MS, step_of};
use pocket_core::lockout::LockRule;
use pocket_core::payment::{Payment, Proof, Status};
use pocket_store::model::PinAttempt;
use pocket_store::testing::{fresh, new_payment};
use pocket_store::{CodeCharge, NewPayment, ShownCode};

impl World {
    /// Registers a device for the customer: its id.
    async fn device(&self) -> String {
        let attempt = PinAttempt {
            subject: format!("holder:{}", self.customer),
            rule: LockRule::default(),
        };
        self.store.reserve_pin(attempt.clone()).await.unwrap();
        fresh(
            self.store
                .add_device(
                    self.customer.clone(),
                    "phone".into(),
                    "{}".into(),
                    "session".into(),
                    attempt,
                    None,
                )
                .await
                .unwrap(),
        )
        .id
    }

    /// Charges the code `device` shows at `step` for `amount`.
    async fn charge(&self, device: &str, step: i64, amount: i64) -> Result<Payment, &'static str> {
        let new = NewPayment {
            code: Some(ShownCode::Device(CodeCharge {
                device_id: device.into(),
                step,
            })),
            ..new_payment(&self.merchant, amount)
        };
        self.store
            .create_payment(new, None)
            .await
            .map(fresh)
            .map_err(|e| e.code)
    }

    async fn step(&self) -> i64 {
        step_of(self.store.now_ms())
    }

    async fn wallet(&self) -> i64 {
        self.store
            .balances(
                pocket_core::ledger::AccountKind::Wallet,
                self.customer.clone(),
            )
            .await
            .unwrap()
            .first()
            .map_or(0, |b| b.available)
    }
}

#[tokio::test]
async fn a_code_is_charged_once_and_pays_the_small_tier_at_once() {
    let w = world(10_000).await;
    let device = w.device().await;
    let s = w.step().await;
    let paid = w.charge(&device, s, 1_299).await.unwrap();
    assert_eq!(paid.status, Status::Succeeded);
    assert_eq!(paid.customer.as_deref(), Some(w.customer.as_str()));
    assert_eq!(w.wallet().await, 10_000 - 1_299);
    assert_eq!(
        w.charge(&device, s, 1_299).await.unwrap_err(),
        "payment_code_invalid"
    );
    assert_eq!(
        w.wallet().await,
        10_000 - 1_299,
        "the second charge moved nothing"
    );
    // The next step's code is another code.
    assert_eq!(
        w.charge(&device, s + 1, 1).await.unwrap().status,
        Status::Succeeded
    );
}

#[tokio::test]
async fn one_step_old_is_charged_two_steps_old_is_not_as_read_at_commit() {
    let w = world(10_000).await;
    let device = w.device().await;
    // At the last millisecond of a step, the step before is one old.
    let s = w.step().await;
    w.clock.set_ms((s + 1) * STEP_MS - 1);
    assert!(w.charge(&device, s - 1, 1).await.is_ok());
    // One millisecond later it is two old.
    w.clock.set_ms((s + 1) * STEP_MS);
    assert_eq!(
        w.charge(&device, s - 1, 1).await.unwrap_err(),
        "payment_code_invalid"
    );
    let now = w.step().await;
    assert_eq!(
        w.charge(&device, now - 2, 1).await.unwrap_err(),
        "payment_code_invalid"
    );
    assert_eq!(
        w.charge(&device, now + 2, 1).await.unwrap_err(),
        "payment_code_invalid"
    );
    assert!(
        w.charge(&device, now + 1, 1).await.is_ok(),
        "a phone a step ahead"
    );
    assert_eq!(w.wallet().await, 10_000 - 2);
}

#[tokio::test]
async fn the_same_code_charged_in_parallel_makes_one_payment() {
    let w = std::sync::Arc::new(world(10_000).await);
    let device = w.device().await;
    for round in 0..10 {
        let s = w.step().await + round % 2;
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let w = w.clone();
                let device = device.clone();
                tokio::spawn(async move { w.charge(&device, s, 100).await })
            })
            .collect();
        let mut paid = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(p) => {
                    assert_eq!(p.status, Status::Succeeded);
                    paid += 1;
                }
                Err(code) => assert_eq!(code, "payment_code_invalid"),
            }
        }
        assert_eq!(paid, 1, "round {round}: {paid} payments from one code");
        w.clock.advance_ms(2 * STEP_MS);
    }
    let spent = 10_000 - w.wallet().await;
    assert_eq!(spent, 10 * 100, "each code paid exactly once");
}

#[tokio::test]
async fn a_revoked_devices_codes_are_refused() {
    let w = world(10_000).await;
    let device = w.device().await;
    let s = w.step().await;
    w.store
        .revoke_device(w.customer.clone(), device.clone())
        .await
        .unwrap();
    assert_eq!(
        w.charge(&device, s, 100).await.unwrap_err(),
        "payment_code_invalid"
    );
    assert_eq!(
        w.charge("dev_unknown", s, 100).await.unwrap_err(),
        "payment_code_invalid"
    );
    let unknown = NewPayment {
        code: Some(ShownCode::Unknown),
        ..new_payment(&w.merchant, 100)
    };
    let refused = w.store.create_payment(unknown, None).await.unwrap_err();
    assert_eq!(refused.code, "payment_code_invalid");
    assert_eq!(w.wallet().await, 10_000);
}

#[tokio::test]
async fn above_the_small_tier_a_code_payment_waits_for_the_wallets_pin() {
    let w = world(100_000).await;
    let device = w.device().await;
    let s = w.step().await;
    let pending = w.charge(&device, s, 50_000).await.unwrap();
    assert_eq!(pending.status, Status::Pending);
    assert_eq!(pending.customer.as_deref(), Some(w.customer.as_str()));
    assert_eq!(w.wallet().await, 100_000);
    let missing = w
        .store
        .confirm(
            pending.id.clone(),
            w.customer.clone(),
            Proof::default(),
            None,
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code, "pin_required");
    let pin = Proof {
        pin: true,
        device: false,
    };
    let paid = fresh(
        w.store
            .confirm(pending.id, w.customer.clone(), pin, None, None, None)
            .await
            .unwrap(),
    );
    assert_eq!(paid.status, Status::Succeeded);
    assert_eq!(w.wallet().await, 50_000);
    // The code was used by the pending payment.
    assert_eq!(
        w.charge(&device, s, 100).await.unwrap_err(),
        "payment_code_invalid"
    );
}

#[tokio::test]
async fn a_refused_charge_writes_nothing_and_leaves_the_code_unused() {
    let w = world(500).await;
    let device = w.device().await;
    let s = w.step().await;
    assert_eq!(
        w.charge(&device, s, 1_000).await.unwrap_err(),
        "insufficient_funds"
    );
    let page = w
        .store
        .list_payments(
            pocket_store::PaymentOwner::Merchant(w.merchant.clone()),
            None,
            pocket_store::model::PageRequest {
                limit: 10,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    assert!(page.data.is_empty(), "no payment was written");
    assert_eq!(
        w.charge(&device, s, 500).await.unwrap().status,
        Status::Succeeded
    );
    assert_eq!(w.wallet().await, 0);
}

/// Stepping the amount down on one live code would find the wallet's exact balance
/// (the review: 1,812 tries, then all of it taken): the payer's refusals of a code are
/// counted, and after `MAX_REFUSALS` the code is spent.
#[tokio::test]
async fn a_code_refused_three_times_is_spent() {
    use pocket_core::code::MAX_REFUSALS as MAX_REFUSALS_PER_CODE;
    let w = world(500).await;
    let device = w.device().await;
    let s = w.step().await;
    for amount in (0..MAX_REFUSALS_PER_CODE).map(|i| 4_000 - i * 1_000) {
        assert_eq!(
            w.charge(&device, s, amount).await.unwrap_err(),
            "insufficient_funds"
        );
    }
    // Even an amount the wallet holds: the code is spent, refused as a used one.
    assert_eq!(
        w.charge(&device, s, 500).await.unwrap_err(),
        "payment_code_invalid"
    );
    assert_eq!(w.wallet().await, 500, "nothing taken");
    // The next code of the same device works.
    assert_eq!(
        w.charge(&device, s + 1, 500).await.unwrap().status,
        Status::Succeeded
    );
}

/// 40 charges of one live code at once, each for more than the wallet holds: exactly
/// `MAX_REFUSALS` are looked at (402), every other one is refused as spent.
/// On one store the writer runs them one after another; across PostgreSQL nodes, the
/// lock every charge takes on the code's refusal row first is what keeps the count
/// exact (no lock is shared by PostgreSQL's writers).
#[tokio::test]
async fn parallel_charges_of_one_code_are_refused_at_most_three_times() {
    use pocket_core::code::MAX_REFUSALS as MAX_REFUSALS_PER_CODE;
    let w = std::sync::Arc::new(world(500).await);
    let device = w.device().await;
    let s = w.step().await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (w, device) = (w.clone(), device.clone());
            tokio::spawn(async move { w.charge(&device, s, 10_000 - i).await })
        })
        .collect();
    let (mut looked, mut spent) = (0, 0);
    for t in tasks {
        match t.await.unwrap().unwrap_err() {
            "insufficient_funds" => looked += 1,
            "payment_code_invalid" => spent += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(looked, MAX_REFUSALS_PER_CODE, "{looked} refusals looked at");
    assert_eq!(spent, 40 - MAX_REFUSALS_PER_CODE);
    assert_eq!(w.wallet().await, 500);
}

/// After a `kill -9`, the dead process's PIN reservations stay counted until they go
/// stale: the crash test saw 1,980 replays of acknowledged PIN requests get `429` in 7
/// of 26 cycles. A replay is judged against its record in one transaction, without a
/// reservation: the same body gets the stored answer at once; another body is counted
/// as a wrong PIN, and five of them lock the guard, reservations in flight or not.
#[tokio::test]
async fn a_replay_is_answered_even_while_dead_reservations_fill_the_guard() {
    use pocket_store::model::{Idem, ReplayJudged};
    let w = world(0).await;
    let attempt = PinAttempt {
        subject: format!("holder:{}", w.customer),
        rule: LockRule::default(),
    };
    let idem = |fingerprint: &str| Idem {
        caller: w.customer.clone(),
        key: "key-1".into(),
        fingerprint: fingerprint.into(),
        status: 201,
    };
    w.store.reserve_pin(attempt.clone()).await.unwrap();
    let first = w
        .store
        .add_device(
            w.customer.clone(),
            "phone".into(),
            "{}".into(),
            "session".into(),
            attempt.clone(),
            Some(idem("body-a")),
        )
        .await
        .unwrap();
    let device = fresh(first).id;
    // A process dies with every attempt in flight.
    for _ in 0..5 {
        w.store.reserve_pin(attempt.clone()).await.unwrap();
    }
    assert_eq!(
        w.store.reserve_pin(attempt.clone()).await.unwrap_err().code,
        "rate_limited",
        "a fresh PIN check waits for the dead reservations"
    );
    let ReplayJudged::Replay(replay) = w
        .store
        .judge_pin_replay(attempt.clone(), idem("body-a"))
        .await
        .unwrap()
    else {
        panic!("the stored answer");
    };
    assert!(replay.body.contains(&device), "{}", replay.body);
    for n in 1..=5 {
        let ReplayJudged::Refused { error, counted } = w
            .store
            .judge_pin_replay(attempt.clone(), idem("body-b"))
            .await
            .unwrap()
        else {
            panic!("refused");
        };
        let expected = if n < 5 {
            "idempotency_key_reused"
        } else {
            "pin_locked"
        };
        assert_eq!((error.code, counted), (expected, true), "wrong guess {n}");
    }
    let ReplayJudged::Refused { error, counted } = w
        .store
        .judge_pin_replay(attempt.clone(), idem("body-a"))
        .await
        .unwrap()
    else {
        panic!("refused");
    };
    assert_eq!(
        (error.code, counted),
        ("pin_locked", false),
        "locked: not even the right body, and not counted again"
    );
    let other = Idem {
        key: "key-2".into(),
        ..idem("body-a")
    };
    assert!(matches!(
        w.store.judge_pin_replay(attempt, other).await.unwrap(),
        ReplayJudged::Fresh
    ));
}

//! Deadlines with a controllable clock: enforced at commit by the confirm itself,
//! and by the sweeper, without any test sleeping.

use crate::world::{Lcg, world};
use pocket_core::payment::Status;
use pocket_store::clock::Clock;
use pocket_store::model::PageRequest;
use pocket_store::testing::T0;
use std::sync::Arc;

#[tokio::test]
async fn a_confirm_one_millisecond_before_the_deadline_succeeds_at_it_expires() {
    let w = world(10_000).await;
    let early = w.pay(100, None).await;
    let late = w.pay(100, None).await;
    w.clock.set_ms(T0 + 300_000 - 1);
    assert!(
        w.store
            .confirm(
                early.clone(),
                w.customer.clone(),
                Default::default(),
                None,
                None,
                None
            )
            .await
            .is_ok()
    );
    w.clock.set_ms(T0 + 300_000);
    let e = w
        .store
        .confirm(
            late.clone(),
            w.customer.clone(),
            Default::default(),
            None,
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "payment_expired");
    assert_eq!(w.status(&early).await, Status::Succeeded);
    assert_eq!(
        w.status(&late).await,
        Status::Expired,
        "the refused confirm expired it, committed"
    );
    assert_eq!(w.transfers().await, 2, "top-up and one payment");
    let events = w
        .store
        .list_events(
            w.merchant.clone(),
            PageRequest {
                limit: 10,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(events.data[0].kind, "payment.expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirms_racing_a_moving_clock_have_exactly_one_outcome() {
    const TRIALS: usize = 200;
    let w = Arc::new(world(1_000_000).await);
    let mut ids = Vec::new();
    for _ in 0..TRIALS {
        ids.push(w.pay(100, Some(1)).await);
    }
    let before = w.transfers().await;
    // Confirms and a clock that jumps past every deadline, all at once.
    let mut tasks = Vec::new();
    for id in ids.clone() {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            tokio::task::yield_now().await;
            w.store
                .confirm(id, w.customer.clone(), Default::default(), None, None, None)
                .await
                .map(|_| ())
        }));
    }
    let ticker = {
        let w = w.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                w.clock.advance_ms(60);
                tokio::task::yield_now().await;
            }
        })
    };
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    ticker.await.unwrap();
    w.clock.advance_ms(10_000);
    while w.store.expire_due(100).await.unwrap() > 0 {}
    let mut succeeded = 0;
    for (id, answer) in ids.iter().zip(&answers) {
        match w.status(id).await {
            Status::Succeeded => {
                succeeded += 1;
                assert!(answer.is_ok());
            }
            Status::Expired => assert_eq!(answer.as_ref().unwrap_err().code, "payment_expired"),
            other => panic!("ended {other:?}"),
        }
    }
    assert_eq!(
        w.transfers().await,
        before + succeeded,
        "one transfer per success, none per expiry"
    );
    let balance = w
        .store
        .balances(pocket_core::ledger::AccountKind::Wallet, w.customer.clone())
        .await
        .unwrap();
    assert_eq!(balance[0].available, 1_000_000 - 100 * succeeded);
}

#[tokio::test]
async fn the_sweeper_query_expires_what_is_due_and_nothing_else() {
    let w = world(0).await;
    let mut due = Vec::new();
    for _ in 0..1200 {
        due.push(w.pay(100, Some(10)).await);
    }
    let later = w.pay(100, Some(20)).await;
    assert_eq!(w.store.next_deadline().await.unwrap(), Some(T0 + 10_000));
    w.clock.set_ms(T0 + 9_999);
    assert_eq!(w.store.expire_due(500).await.unwrap(), 0);
    w.clock.set_ms(T0 + 10_000);
    assert_eq!(
        w.store.expire_due(500).await.unwrap(),
        500,
        "bounded batches"
    );
    assert_eq!(w.store.expire_due(500).await.unwrap(), 500);
    assert_eq!(w.store.expire_due(500).await.unwrap(), 200);
    assert_eq!(w.store.expire_due(500).await.unwrap(), 0);
    assert_eq!(w.status(&due[0]).await, Status::Expired);
    assert_eq!(w.status(&later).await, Status::Pending);
    assert_eq!(w.store.next_deadline().await.unwrap(), Some(T0 + 20_000));
    let events = w
        .store
        .list_events(
            w.merchant.clone(),
            PageRequest {
                limit: 100,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    assert!(
        events
            .data
            .iter()
            .take(100)
            .all(|e| e.kind == "payment.expired")
    );
}

#[tokio::test]
async fn the_sweeper_task_expires_on_time_with_a_manual_clock() {
    let w = world(0).await;
    let id = w.pay(100, Some(5)).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(pocket_store::sweeper::run(w.store.clone(), rx));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(w.status(&id).await, Status::Pending);
    w.clock.advance_ms(5_000);
    // The sweeper re-reads the deadline at least every MAX_SLEEP_MS of real time.
    let mut waited_ms = 0;
    while w.status(&id).await != Status::Expired {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited_ms += 20;
        assert!(waited_ms <= 1000, "not expired within a second");
    }
    stop.send(true).unwrap();
    sweeper.await.unwrap();
    assert_eq!(w.clock.now_ms(), T0 + 5_000);
}

/// A flash sale in small: more payments share one deadline than a round of batches
/// holds, so the sweeper goes on in burst rounds; every one is expired once, at or after
/// the deadline, with one `payment.expired` event each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_deadline_expires_every_payment_once_in_burst_rounds() {
    let n = pocket_store::sweeper::EXPIRE_BATCH * (pocket_store::sweeper::BURST_BATCHES + 1) + 7;
    let w = Arc::new(world(0).await);
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(w.pay(100, Some(5)).await);
    }
    let (stop, rx) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(pocket_store::sweeper::run(w.store.clone(), rx));
    w.clock.advance_ms(5_000);
    let mut waited_ms = 0;
    while w.store.next_deadline().await.unwrap().is_some() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited_ms += 20;
        assert!(waited_ms <= 30_000, "the burst did not drain");
    }
    stop.send(true).unwrap();
    sweeper.await.unwrap();
    for id in &ids {
        let p = w.store.payment(id.clone()).await.unwrap().unwrap();
        assert_eq!(p.status, Status::Expired);
        assert!(p.completed_at.unwrap() >= p.expires_at);
    }
    let mut expired_events = 0;
    let mut page = PageRequest {
        limit: 100,
        starting_after: None,
    };
    loop {
        let events = w
            .store
            .list_events(w.merchant.clone(), page.clone())
            .await
            .unwrap();
        expired_events += events
            .data
            .iter()
            .filter(|e| e.kind == "payment.expired")
            .count();
        match (events.has_more, events.data.last()) {
            (true, Some(last)) => page.starting_after = Some(last.id.clone()),
            _ => break,
        }
    }
    assert_eq!(expired_events, n, "one payment.expired per payment");
}

/// Randomized races between confirms, sweeps and a clock that moves while they run:
/// whatever the interleaving, a payment that succeeded committed before its deadline
/// (no late accept) and one that expired was expired at or after it (no early expiry),
/// every confirm's answer matches the payment's end, and the ledger moved once per
/// success. `POCKET_DEADLINE_RACES` sets how many (CI: 2,000; the full run,
/// `POCKET_DEADLINE_RACES=1000000 cargo test --release -p pocket-store --test it
/// deadline::races`, took the figures in BENCHMARKS.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_against_the_deadline_never_accept_late_or_expire_early() {
    let total: usize = std::env::var("POCKET_DEADLINE_RACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    const ROUND: usize = 500;
    let w = Arc::new(world(1_000_000_000_000).await);
    let before = w.transfers().await;
    let mut rng = Lcg(0x9e37_79b9_7f4a_7c15);
    let (mut succeeded, mut expired, mut late_accepts, mut early_expiries) = (0i64, 0, 0, 0);
    let mut done = 0;
    while done < total {
        let n = ROUND.min(total - done);
        // Deadlines 1 to 3 s away, to the millisecond.
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(w.pay(100, Some(1 + rng.below(3) as i64)).await);
        }
        // Bring the deadlines near: some already past, most within the next moments.
        w.clock.advance_ms(800 + rng.below(2_000) as i64);
        let mut tasks = Vec::with_capacity(n);
        for id in ids.clone() {
            let w = w.clone();
            let delay = rng.below(8);
            tasks.push(tokio::spawn(async move {
                for _ in 0..delay {
                    tokio::task::yield_now().await;
                }
                w.store
                    .confirm(id, w.customer.clone(), Default::default(), None, None, None)
                    .await
                    .map(|_| ())
            }));
        }
        // The clock moves in random steps while they run, and sweeps run too.
        let answers = w.race(tasks, &mut rng).await;
        for (id, answer) in ids.iter().zip(&answers) {
            let p = w.store.payment(id.clone()).await.unwrap().unwrap();
            let at = p.completed_at.expect("ended");
            match p.status {
                Status::Succeeded => {
                    succeeded += 1;
                    late_accepts += (at >= p.expires_at) as i64;
                    assert!(answer.is_ok(), "{id} succeeded but its confirm was refused");
                }
                Status::Expired => {
                    expired += 1;
                    early_expiries += (at < p.expires_at) as i64;
                    let code = answer.as_ref().unwrap_err().code;
                    assert!(
                        code == "payment_expired" || code == "payment_not_pending",
                        "{id}: {code}"
                    );
                }
                other => panic!("{id} ended {other:?}"),
            }
        }
        done += n;
    }
    eprintln!(
        "deadline races: {total} payments, {succeeded} confirmed in time, {expired} expired; \
         late accepts {late_accepts}, early expiries {early_expiries}"
    );
    assert_eq!((late_accepts, early_expiries), (0, 0));
    assert!(
        succeeded > 0 && expired > 0,
        "both outcomes must occur for the races to mean anything"
    );
    assert_eq!(
        w.transfers().await,
        before + succeeded,
        "one transfer per success"
    );
}

//! A store on the test engine with a manual clock, one merchant and one customer:
//! the world of the deadline and hold tests. (Each test file uses part of it.)

use pocket_core::Currency;
use pocket_core::payment::{CaptureMethod, Status};
use pocket_store::clock::ManualClock;
use pocket_store::testing::{T0, TestStore, fresh, new_payment};
use pocket_store::{NewPayment, SqlStore};
use std::sync::Arc;

pub struct World {
    pub store: Arc<SqlStore>,
    pub clock: Arc<ManualClock>,
    pub merchant: String,
    pub customer: String,
    pub db: TestStore,
    _dir: tempfile::TempDir,
}

pub fn cny() -> Currency {
    Currency::parse("CNY", "currency").unwrap()
}

pub async fn world(balance: i64) -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = TestStore::open(dir.path(), clock.clone(), None);
    let store: Arc<SqlStore> = db.store.clone();
    let merchant = fresh(
        store
            .create_merchant(
                "M".into(),
                pocket_store::KeyDigest {
                    digest: "digest-m".into(),
                    prefix: "sk_test".into(),
                },
                None,
                None,
            )
            .await
            .unwrap(),
    )
    .merchant
    .id;
    let customer = fresh(
        store
            .signup(
                "+8613800000001".into(),
                "C".into(),
                "hash".into(),
                ("digest-s".into(), T0 + 1),
                None,
            )
            .await
            .unwrap(),
    )
    .id;
    if balance > 0 {
        store
            .topup(customer.clone(), balance, cny(), "operator", None)
            .await
            .unwrap();
    }
    World {
        store,
        clock,
        merchant,
        customer,
        db,
        _dir: dir,
    }
}

impl World {
    pub async fn pay(&self, amount: i64, expires_in: Option<i64>) -> String {
        self.pay_capturing(amount, expires_in, CaptureMethod::Automatic, None)
            .await
    }

    /// A payment with the capture method given (`Manual`: confirming holds the money
    /// for `capture_within` seconds).
    pub async fn pay_capturing(
        &self,
        amount: i64,
        expires_in: Option<i64>,
        capture: CaptureMethod,
        capture_within: Option<i64>,
    ) -> String {
        let new = NewPayment {
            customer: Some(self.customer.clone()),
            expires_in_seconds: expires_in,
            capture,
            capture_within_seconds: capture_within,
            ..new_payment(&self.merchant, amount)
        };
        fresh(self.store.create_payment(new, None).await.unwrap()).id
    }

    /// Waits for `tasks` while the clock moves in up to 40 random steps of up to 40 ms
    /// and a sweep runs after each; then lets every deadline pass and sweeps until
    /// nothing is due. The tasks' answers, in order.
    pub async fn race<T: Send + 'static>(
        self: &Arc<Self>,
        tasks: Vec<tokio::task::JoinHandle<T>>,
        rng: &mut Lcg,
    ) -> Vec<T> {
        let mover = {
            let w = self.clone();
            let steps: Vec<i64> = (0..40).map(|_| rng.below(40) as i64).collect();
            tokio::spawn(async move {
                for step in steps {
                    w.clock.advance_ms(step);
                    let _ = w.store.expire_due(50).await;
                    tokio::task::yield_now().await;
                }
            })
        };
        let mut answers = Vec::with_capacity(tasks.len());
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        mover.await.unwrap();
        self.clock.advance_ms(4_000);
        while self.store.expire_due(500).await.unwrap() > 0 {}
        answers
    }

    pub async fn status(&self, id: &str) -> Status {
        self.store.payment(id.into()).await.unwrap().unwrap().status
    }

    pub async fn transfers(&self) -> i64 {
        let r = self.store.ledger_report(true).await.unwrap();
        assert!(r.balanced, "{r:?}");
        assert_eq!(r.running_totals_match, Some(true));
        r.transfers
    }
}

/// A small deterministic generator, so a failing run can be repeated.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

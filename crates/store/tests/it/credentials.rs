//! Keys and sessions stop exactly when they should, although the embedded store
//! remembers them in memory (`engine/credentials.rs`): at their expiry by the store's
//! clock, and for every look-up that starts after a roll or a sign-out answered —
//! also while many look-ups run in parallel with it. (On PostgreSQL nothing is
//! remembered — other nodes change credentials too; the same tests hold there, and a
//! second node sees a roll at once.)

use pocket_store::clock::{Clock, ManualClock};
use pocket_store::model::Customer;
use pocket_store::testing::{T0, TestStore, fresh};
use pocket_store::{KeyDigest, SqlStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

struct World {
    store: Arc<SqlStore>,
    clock: Arc<ManualClock>,
    merchant: String,
    _db: TestStore,
    _dir: tempfile::TempDir,
}

fn key(digest: &str) -> KeyDigest {
    KeyDigest {
        digest: digest.into(),
        prefix: "sk_test".into(),
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = TestStore::open(dir.path(), clock.clone(), None);
    let store: Arc<SqlStore> = db.store.clone();
    let merchant = fresh(
        store
            .create_merchant("M".into(), key("key-1"), None, None)
            .await
            .unwrap(),
    )
    .merchant
    .id;
    World {
        store,
        clock,
        merchant,
        _db: db,
        _dir: dir,
    }
}

impl World {
    /// A new customer signed in with the session `digest` until `expires_at`.
    async fn signup(&self, phone: &str, digest: &str, expires_at: i64) -> Customer {
        fresh(
            self.store
                .signup(
                    phone.into(),
                    "C".into(),
                    "hash".into(),
                    (digest.into(), expires_at),
                    None,
                )
                .await
                .unwrap(),
        )
    }

    fn db_second(&self) -> Result<pocket_store::SqlStore, String> {
        self._db.open_second(self.clock.clone())
    }

    async fn works(&self, digest: &str) -> bool {
        self.store
            .merchant_by_key(digest.into())
            .await
            .unwrap()
            .is_some()
    }
}

#[tokio::test]
async fn a_rolled_key_stops_at_the_end_of_its_overlap_to_the_millisecond() {
    let w = world().await;
    assert!(w.works("key-1").await && w.works("key-1").await);
    let until = w.clock.now_ms() + 60_000;
    w.store
        .roll_merchant_key(w.merchant.clone(), key("key-2"), until, None, None)
        .await
        .unwrap();
    w.clock.set_ms(until - 1);
    assert!(w.works("key-1").await, "still inside the overlap");
    w.clock.set_ms(until);
    assert!(!w.works("key-1").await, "the overlap is over");
    assert!(w.works("key-2").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_rolled_now_is_refused_to_every_look_up_that_starts_after_the_roll() {
    let w = Arc::new(world().await);
    assert!(w.works("key-1").await);
    // Look-ups hammer the key while it is rolled, so that some read the database
    // before the roll commits and try to remember what they read after it.
    let stop = Arc::new(AtomicBool::new(false));
    let mut hammers = Vec::new();
    for _ in 0..16 {
        let (w, stop) = (w.clone(), stop.clone());
        hammers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                w.works("key-1").await;
                // (A remembered key answers without waiting: let others run.)
                tokio::task::yield_now().await;
            }
        }));
    }
    let now = w.clock.now_ms();
    w.store
        .roll_merchant_key(w.merchant.clone(), key("key-2"), now, None, None)
        .await
        .unwrap();
    let mut worked = 0;
    for _ in 0..200 {
        worked += usize::from(w.works("key-1").await);
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    assert_eq!(worked, 0, "a rolled key worked after the roll");
    for h in hammers {
        h.await.unwrap();
    }
    assert!(!w.works("key-1").await);
    assert!(w.works("key-2").await);
}

#[tokio::test]
async fn a_session_stops_at_its_expiry_and_at_sign_out() {
    let w = world().await;
    let expires_at = w.clock.now_ms() + 1_000;
    let customer = w.signup("+8613800000001", "session-1", expires_at).await;
    let session = |d: &'static str| w.store.session(d.into());
    assert_eq!(session("session-1").await.unwrap().unwrap().id, customer.id);
    w.clock.set_ms(expires_at - 1);
    assert!(session("session-1").await.unwrap().is_some());
    w.clock.set_ms(expires_at);
    assert!(session("session-1").await.unwrap().is_none(), "expired");

    // A second customer's session, remembered, then signed out while look-ups run.
    let later = w.clock.now_ms() + 3_600_000;
    let other = w.signup("+8613800000002", "session-2", later).await;
    assert_eq!(session("session-2").await.unwrap().unwrap().id, other.id);
    let (_, signed_out) = tokio::join!(
        async {
            for _ in 0..50 {
                let _ = session("session-2").await;
            }
        },
        w.store.delete_session("session-2".into())
    );
    signed_out.unwrap();
    for _ in 0..50 {
        assert!(session("session-2").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn a_roll_on_one_node_is_seen_by_the_next_look_up_on_another_and_sqlite_has_one_owner() {
    let w = world().await;
    let second = w.db_second();
    match second {
        // SQLite: a second writer of the file would change credentials behind the
        // first one's memory; it is refused while the first is open.
        Err(e) => {
            assert!(!pocket_store::testing::on_postgres(), "{e}");
            assert!(e.contains("in use by another Pocket process"), "{e}");
        }
        Ok(other) => {
            assert!(pocket_store::testing::on_postgres());
            let other: Arc<SqlStore> = Arc::new(other);
            assert!(
                other
                    .merchant_by_key("key-1".into())
                    .await
                    .unwrap()
                    .is_some()
            );
            assert!(w.works("key-1").await);
            let now = w.clock.now_ms();
            w.store
                .roll_merchant_key(w.merchant.clone(), key("key-2"), now, None, None)
                .await
                .unwrap();
            assert!(
                other
                    .merchant_by_key("key-1".into())
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }
}

#[test]
fn the_file_is_owned_again_once_its_store_is_gone() {
    if pocket_store::testing::on_postgres() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(T0));
    let first = TestStore::open(dir.path(), clock.clone(), None);
    assert!(first.open_second(clock.clone()).is_err());
    let TestStore { store, .. } = first;
    drop(store);
    let again = TestStore::open(dir.path(), clock, None);
    drop(again);
}

fn reset(customer: &Customer, code_digest: &str, session: &str) -> pocket_store::PinReset {
    pocket_store::PinReset {
        customer_id: customer.id.clone(),
        code_digest: code_digest.into(),
        pin_hash: "new-hash".into(),
        guards: vec![],
        session: (session.into(), T0 + 86_400_000),
    }
}

#[tokio::test]
async fn a_pin_reset_code_works_once_until_its_deadline_and_ends_every_session() {
    let w = world().await;
    let c = w.signup("+8613800000301", "s-old", T0 + 86_400_000).await;
    let phone = "+8613800000301".to_string();
    let until = w.clock.now_ms() + 900_000;
    w.store
        .issue_pin_reset(c.id.clone(), "code-1".into(), until)
        .await
        .unwrap();
    // At its deadline and after, no guess is taken: the code is dead.
    w.clock.set_ms(until);
    assert_eq!(w.store.take_reset_guess(phone.clone()).await.unwrap(), None);
    w.clock.set_ms(until - 1);
    let (who, digest) = w
        .store
        .take_reset_guess(phone.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((who.as_str(), digest.as_str()), (c.id.as_str(), "code-1"));
    // A digest that is not the code's spends nothing.
    let wrong = w.store.redeem_pin_reset(reset(&c, "code-2", "s-new")).await;
    assert_eq!(wrong.unwrap_err().code, "reset_code_invalid");
    // The right one, one millisecond before the deadline: once.
    assert!(w.store.session("s-old".into()).await.unwrap().is_some());
    let redeemed = w.store.redeem_pin_reset(reset(&c, "code-1", "s-new")).await;
    assert_eq!(redeemed.unwrap().id, c.id);
    assert!(
        w.store.session("s-old".into()).await.unwrap().is_none(),
        "the old session ended"
    );
    assert!(w.store.session("s-new".into()).await.unwrap().is_some());
    assert_eq!(
        w.store
            .pin_state(c.id.clone())
            .await
            .unwrap()
            .unwrap()
            .pin_hash,
        "new-hash"
    );
    let again = w.store.redeem_pin_reset(reset(&c, "code-1", "s-3")).await;
    assert_eq!(again.unwrap_err().code, "reset_code_invalid");
    assert_eq!(
        w.store.take_reset_guess(phone).await.unwrap(),
        None,
        "spent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn however_many_guesses_arrive_at_once_a_reset_code_takes_five() {
    let w = Arc::new(world().await);
    let c = w.signup("+8613800000302", "s-1", T0 + 86_400_000).await;
    let until = w.clock.now_ms() + 900_000;
    w.store
        .issue_pin_reset(c.id.clone(), "code".into(), until)
        .await
        .unwrap();
    let guesses: Vec<_> = (0..40)
        .map(|_| {
            let w = w.clone();
            tokio::spawn(async move { w.store.take_reset_guess("+8613800000302".into()).await })
        })
        .collect();
    let mut taken = 0;
    for g in guesses {
        taken += usize::from(g.await.unwrap().unwrap().is_some());
    }
    assert_eq!(taken, pocket_store::MAX_RESET_GUESSES as usize);
    // A new code starts a new count; a phone without a wallet takes none.
    w.store
        .issue_pin_reset(c.id.clone(), "code-2".into(), until)
        .await
        .unwrap();
    assert!(
        w.store
            .take_reset_guess("+8613800000302".into())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        w.store
            .take_reset_guess("+8613800000399".into())
            .await
            .unwrap(),
        None
    );
    let unknown = w
        .store
        .issue_pin_reset("cus_nobody".into(), "x".into(), until)
        .await;
    assert_eq!(unknown.unwrap_err().code, "resource_missing");
}

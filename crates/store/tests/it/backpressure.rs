//! A full write queue answers at once with `server_busy` (503 + Retry-After over HTTP)
//! instead of growing without bound, and what was admitted still commits — whole: the
//! refused writes move no money, the admitted ones all of theirs, and the book balances.

use pocket_core::Currency;
use pocket_core::ledger::AccountKind;
use pocket_store::SqlStore;
use pocket_store::clock::SystemClock;
use pocket_store::testing::{TestStore, fresh};
use std::sync::Arc;

/// Minor units each top-up of the flood moves.
const TOPUP: i64 = 1_234;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_refuses_new_writes_instead_of_buffering_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestStore::open(dir.path(), Arc::new(SystemClock), Some(1));
    let store: Arc<SqlStore> = db.store.clone();
    let customer = fresh(
        store
            .signup(
                "+8613800009001".into(),
                "C".into(),
                "hash".into(),
                ("s".into(), i64::MAX),
                None,
            )
            .await
            .unwrap(),
    );
    let cny = Currency::parse("CNY", "currency").unwrap();
    // Three waves of 100 at once: each fills the queue and is mostly refused.
    let (mut ok, mut busy) = (0i64, 0);
    for _wave in 0..3 {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (store, id) = (store.clone(), customer.id.clone());
                tokio::spawn(async move { store.topup(id, TOPUP, cny, "admin", None).await })
            })
            .collect();
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert_eq!((e.code, e.http_status()), ("server_busy", 503));
                    busy += 1;
                }
            }
        }
    }
    assert!(
        busy > 0,
        "a queue of one cannot have taken 300 writes at once"
    );
    assert!(ok > 0);
    println!("3 waves of 100 top-ups into a queue of one: {ok} admitted, {busy} refused busy");
    // Every admitted top-up moved its money, no refused one moved any, and the book
    // (debits, credits, every balance) still sums.
    let balances = store
        .balances(AccountKind::Wallet, customer.id.clone())
        .await
        .unwrap();
    assert_eq!(balances[0].available, ok * TOPUP);
    let report = store.ledger_report(true).await.unwrap();
    assert!(report.balanced, "{report:?}");
    let moved = store
        .transactions(
            AccountKind::Wallet,
            customer.id,
            pocket_store::model::PageRequest {
                limit: 100,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.data.len() as i64, ok.min(100));
}

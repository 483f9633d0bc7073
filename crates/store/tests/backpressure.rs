//! A full write queue answers at once with `server_busy` (503 + Retry-After over HTTP)
//! instead of growing without bound, and what was admitted still commits.

use pocket_store::clock::SystemClock;
use pocket_store::testing::TestStore;
use pocket_store::{KeyDigest, Store};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_refuses_new_writes_instead_of_buffering_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestStore::open(dir.path(), Arc::new(SystemClock), Some(1));
    let store: Arc<dyn Store> = db.store.clone();
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = KeyDigest {
                    digest: format!("d{i}"),
                    prefix: "sk_x".into(),
                };
                store
                    .create_merchant(format!("M{i}"), key, None, None)
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code, "server_busy");
                assert_eq!(e.http_status(), 503);
                busy += 1;
            }
        }
    }
    assert!(
        busy > 0,
        "a queue of one cannot have taken 300 writes at once"
    );
    assert!(ok > 0);
    // Every admitted write is there; nothing refused was half-done.
    let report = store.ledger_report(true).await.unwrap();
    assert!(report.balanced);
    let mut found = 0;
    for i in 0..300 {
        if store
            .merchant_by_key(format!("d{i}"))
            .await
            .unwrap()
            .is_some()
        {
            found += 1;
        }
    }
    assert_eq!(found, ok);
}

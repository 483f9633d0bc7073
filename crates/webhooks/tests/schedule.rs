//! Retries follow the schedule, under a controllable clock: the dispatcher runs for
//! real against a receiver on loopback, but "now" is a ManualClock the test moves.

use axum::http::StatusCode;
use pocket_store::clock::ManualClock;
use pocket_store::model::Written;
use pocket_store::testing::TestStore;
use pocket_store::{KeyDigest, SqlStore};
use pocket_webhooks::{Dispatcher, DispatcherConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const T0: i64 = 1_795_600_800_000;

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_wait_for_the_schedule_not_the_wall_clock() {
    // A receiver that always fails.
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = TestStore::open(dir.path(), clock.clone(), None);
    let store: Arc<SqlStore> = db.store.clone();
    let key = KeyDigest {
        digest: "d".into(),
        prefix: "sk_x".into(),
    };
    let merchant = match store
        .create_merchant("M".into(), key, Some(url), None)
        .await
        .unwrap()
    {
        Written::Fresh(m) => m.merchant.id,
        Written::Replayed(_) => unreachable!(),
    };
    let new = pocket_store::testing::new_payment(&merchant, 100);
    store.create_payment(new, None).await.unwrap();
    let config = DispatcherConfig {
        allow_private: true,
        poll_ms: 100,
        ..DispatcherConfig::default()
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(
        Dispatcher::new(store.clone(), [9; 32], config)
            .unwrap()
            .run(rx),
    );

    // Attempt 1 at once; the schedule says the next after 15 s ± 10 %.
    wait_until("the first attempt", || hits.load(Ordering::SeqCst) == 1).await;
    clock.set_ms(T0 + 13_400);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "no retry before 13.5 s of (manual) time"
    );
    clock.set_ms(T0 + 16_600);
    wait_until("the second attempt", || hits.load(Ordering::SeqCst) == 2).await;
    // Then 60 s ± 10 % after that.
    clock.set_ms(T0 + 16_600 + 53_900);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "no third attempt before 54 s"
    );
    clock.set_ms(T0 + 16_600 + 66_100);
    wait_until("the third attempt", || hits.load(Ordering::SeqCst) == 3).await;

    // Every attempt is recorded at the manual time it was made.
    let events = store
        .list_events(
            merchant.clone(),
            pocket_store::model::PageRequest {
                limit: 1,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    let event_id = events.data[0].id.clone();
    let mut attempts = Vec::new();
    for _ in 0..100 {
        attempts = store
            .delivery_attempts(merchant.clone(), event_id.clone())
            .await
            .unwrap();
        if attempts.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let times: Vec<i64> = attempts.iter().rev().map(|a| a.attempted_at).collect();
    assert_eq!(times, vec![T0, T0 + 16_600, T0 + 16_600 + 66_100]);
    assert!(attempts.iter().all(|a| a.status_code == Some(500)));
    stop.send(true).unwrap();
    task.await.unwrap();
}

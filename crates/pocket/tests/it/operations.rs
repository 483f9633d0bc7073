//! `pocket verify` and `pocket backup`, against a real data directory.

use crate::common::Server;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A merchant, a customer, a few payments, a refund and a top-up.
async fn some_business(s: &Server) -> (String, Vec<String>) {
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800002001", 100_000).await;
    let mut ids = Vec::new();
    for amount in [1_000, 2_000, 3_000] {
        let p = s
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": amount, "customer": cus}),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        assert_eq!(s.confirm(&token, &id, json!({})).await.status, 200);
        ids.push(id);
    }
    let r = s
        .post(
            &format!("/v1/payments/{}/refunds", ids[0]),
            &sk,
            json!({"amount": 500}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (sk, ids)
}

#[tokio::test]
async fn verify_passes_a_sound_directory_and_names_every_fault() {
    let mut s = Server::start().await;
    some_business(&s).await;
    // While the server runs.
    let (ok, out) = s.pocket(&["verify"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("3 payments, 1 refunds") && out.contains("no fault"),
        "{out}"
    );
    s.stop();
    let (ok, out) = s.pocket(&["verify"]);
    assert!(ok, "{out}");

    // Money created from nothing, a refund forgotten by its payment: both found.
    s.corrupt(
        "UPDATE accounts SET balance = balance + 1 WHERE kind = 'wallet';
         UPDATE payments SET amount_refunded = 0 WHERE amount_refunded > 0;",
    );
    let (ok, out) = s.pocket(&["verify"]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAULT") && out.contains("CNY"), "{out}");
    assert!(out.contains("refunded amount is not the sum"), "{out}");
    assert!(out.contains("fault(s) found"), "{out}");
}

/// Payments made and confirmed one after another until `stop`: the ids acknowledged,
/// each with whether it was acknowledged before `started` was set.
async fn keep_paying(
    s: Arc<Server>,
    sk: String,
    stop: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
) -> Vec<(String, bool)> {
    let (cus, token) = s.customer("+8613800002002", 10_000_000).await;
    let mut acked = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let before = !started.load(Ordering::SeqCst);
        let p = s
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 100, "customer": cus}),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        if s.confirm(&token, &id, json!({})).await.status == 200 {
            acked.push((id, before));
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_serving_is_consistent_and_complete() {
    let s = Arc::new(Server::start().await);
    if s.database.is_some() {
        // PostgreSQL is backed up with its own tools; `pocket backup` says so.
        let (ok, out) = s.pocket(&["backup", "--to", "/tmp/never"]);
        assert!(!ok && out.contains("pg_basebackup"), "{out}");
        return;
    }
    let (sk, ids) = some_business(&s).await;
    // Payments keep being made and paid while the backup is taken.
    let (stop, started) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let writer = tokio::spawn(keep_paying(
        s.clone(),
        sk.clone(),
        stop.clone(),
        started.clone(),
    ));
    while !s
        .get("/v1/payments?limit=100", &sk)
        .await
        .text
        .contains("\"amount\":100,")
    {
        tokio::task::yield_now().await;
    }
    let copy = s.dir.path().join("backup.db");
    started.store(true, Ordering::SeqCst);
    let (ok, out) = {
        let (s, copy) = (s.clone(), copy.clone());
        tokio::task::spawn_blocking(move || s.pocket(&["backup", "--to", copy.to_str().unwrap()]))
            .await
            .unwrap()
    };
    stop.store(true, Ordering::SeqCst);
    let acked = writer.await.unwrap();
    assert!(ok, "{out}");
    assert!(
        out.contains("integrity checked") && out.contains("server.key"),
        "{out}"
    );
    let during = acked.iter().filter(|(_, before)| !before).count();
    assert!(during > 0, "payments were paid while the backup ran");
    // Never over an existing file.
    let (ok, out) = s.pocket(&["backup", "--to", copy.to_str().unwrap()]);
    assert!(!ok && out.contains("exists already"), "{out}");
    // The copy is a data directory of its own that verifies (the ledger balances, every
    // payment matches its transfers) and holds every payment acknowledged before it began.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored.path().join("pocket.db")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pocket"))
        .args(["verify", "--data"])
        .arg(restored.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let db = rusqlite::Connection::open(restored.path().join("pocket.db")).unwrap();
    let before: Vec<&String> = acked.iter().filter(|(_, b)| *b).map(|(id, _)| id).collect();
    for id in ids.iter().chain(before.iter().copied()) {
        let status: String = db
            .query_row("SELECT status FROM payments WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(status, "succeeded");
    }
    println!(
        "backup while serving: {} payments paid before it began, {during} while it ran",
        before.len()
    );
}

#[tokio::test]
async fn metrics_need_the_admin_key_and_carry_the_figures() {
    let s = Server::start().await;
    let (sk, _) = some_business(&s).await;
    // One payment expires, so the sweeper reports its lag.
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "expires_in": 1}),
        )
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    for _ in 0..50 {
        if s.get(&format!("/v1/payments/{id}"), &sk).await.body["status"] == "expired" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(format!("{}/metrics", s.url))
        .bearer_auth(crate::common::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for needle in [
        "pocket_http_requests_total{route=\"/v1/payments\",method=\"POST\",status=\"201\"}",
        "pocket_http_request_duration_seconds",
        "pocket_payments{status=\"succeeded\",tier=\"small\"} 3",
        "pocket_payments{status=\"expired\",tier=\"small\"} 1",
        "pocket_expiry_lag_seconds",
        "pocket_webhook_delivery_backlog",
        "pocket_writer_batch_jobs",
        "pocket_writer_batch_seconds",
        "pocket_writer_queue_depth",
        "pocket_event_streams_open",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[tokio::test]
async fn metrics_may_be_public() {
    let s = Server::start_options(crate::common::Options {
        config: Some("[metrics]\npublic = true\n".into()),
        ..crate::common::Options::default()
    })
    .await;
    let r = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_full_audit_reads_one_snapshot_under_load() {
    let s = std::sync::Arc::new(Server::start().await);
    let (cus, _) = s.customer("+8613800002101", 0).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..6)
        .map(|_| {
            let (s, cus, stop) = (s.clone(), cus.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    s.topup(&cus, 100, "CNY").await;
                }
            })
        })
        .collect();
    for _ in 0..40 {
        let l = s.ledger().await;
        assert_eq!(l["balanced"], true, "{l}");
        assert_eq!(l["running_totals_match"], true, "{l}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
}

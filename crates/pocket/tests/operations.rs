//! `pocket verify` and `pocket backup`, against a real data directory.

mod common;

use common::Server;
use serde_json::json;

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
    let db = rusqlite::Connection::open(s.data_dir().join("pocket.db")).unwrap();
    db.execute_batch(
        "UPDATE accounts SET balance = balance + 1 WHERE kind = 'wallet';
         UPDATE payments SET amount_refunded = 0 WHERE amount_refunded > 0;",
    )
    .unwrap();
    drop(db);
    let (ok, out) = s.pocket(&["verify"]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAULT") && out.contains("CNY"), "{out}");
    assert!(out.contains("refunded amount is not the sum"), "{out}");
    assert!(out.contains("fault(s) found"), "{out}");
}

#[tokio::test]
async fn a_backup_taken_while_serving_is_consistent_and_complete() {
    let s = Server::start().await;
    let (sk, ids) = some_business(&s).await;
    let copy = s.dir.path().join("backup.db");
    let (ok, out) = s.pocket(&["backup", "--to", copy.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        out.contains("integrity checked") && out.contains("server.key"),
        "{out}"
    );
    // Never over an existing file.
    let (ok, out) = s.pocket(&["backup", "--to", copy.to_str().unwrap()]);
    assert!(!ok && out.contains("exists already"), "{out}");
    // The copy is a data directory of its own that verifies and holds every payment.
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
    for id in &ids {
        let status: String = db
            .query_row("SELECT status FROM payments WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(status, "succeeded");
    }
    let _ = sk;
}

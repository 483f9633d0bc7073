//! Moving up: `pocket migrate-data` copies a SQLite data directory into an empty
//! PostgreSQL database, verifies it, and a server on PostgreSQL then carries on where
//! the embedded one stopped: the same balances and payments, the same keys and
//! sessions, the same PIN. PostgreSQL pass only (it needs both engines).

use crate::common::{ADMIN_KEY, Options, Server};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_moves_to_postgresql_and_serves_on() {
    if !pocket_store::testing::on_postgres() {
        eprintln!("SKIPPED on SQLite: the copy's target is PostgreSQL");
        return;
    }
    // Business on the embedded default.
    let sqlite_only = Options {
        args: vec!["--sandbox".into()],
        ..Options::default()
    };
    let mut s = Server::start_on(sqlite_only, None).await;
    let (_, sk) = s.merchant("M").await;
    let phone = "+8613800030001";
    let (cus, token) = s.customer(phone, 50_000).await;
    let mut ids = Vec::new();
    for amount in [1_000, 2_000, 3_000] {
        let p = s
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": amount, "customer": cus}),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        if amount < 3_000 {
            assert_eq!(s.confirm(&token, &id, json!({})).await.status, 200);
        }
        ids.push(id);
    }
    let r = s
        .post(
            &format!("/v1/payments/{}/refunds", ids[0]),
            &sk,
            json!({"amount": 400}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before = s.snapshot(&sk, &token).await;
    let ledger_before = s.ledger().await;
    s.stop();

    let target =
        pocket_store::testing::ScratchDatabase::create(&pocket_store::testing::pg_base_url())
            .unwrap();
    let copy = |to: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pocket"))
            .args(["migrate-data", "--from"])
            .arg(s.data_dir())
            .args(["--to", to])
            .env("POCKET_ADMIN_KEY", ADMIN_KEY)
            .output()
            .unwrap()
    };
    let out = copy(&target.url);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("verified: every row of every table equal"),
        "{text}"
    );
    assert!(text.contains("3 payments, 1 refunds"), "{text}");
    eprintln!("{text}");
    // Never into a database that holds something.
    let out = copy(&target.url);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    // The copy records the directory's keys: a node with another server key refuses.
    let other = std::process::Command::new(env!("CARGO_BIN_EXE_pocket"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &target.url,
            "--data",
        ])
        .arg(tempfile::tempdir().unwrap().path())
        .env("POCKET_ADMIN_KEY", ADMIN_KEY)
        .env("POCKET_SERVER_KEY", "ab".repeat(32))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success() && text.contains("server_key is not the one"),
        "{text}"
    );

    // A server on PostgreSQL with the directory's server key carries on.
    let server_key = std::fs::read_to_string(s.data_dir().join("server.key")).unwrap();
    let on_pg = Server::start_on(
        Options {
            args: vec!["--sandbox".into()],
            env: vec![("POCKET_SERVER_KEY".into(), server_key.trim().into())],
            database_url: Some(target.url.clone()),
            ..Options::default()
        },
        None,
    )
    .await;
    assert_eq!(on_pg.snapshot(&sk, &token).await, before, "the same books");
    assert_eq!(
        on_pg.ledger().await["currencies"],
        ledger_before["currencies"]
    );
    // The PIN (keyed digests) and the pending payment carry over; new rows follow.
    let r = on_pg
        .call(
            Method::POST,
            "/v1/wallet/sessions",
            None,
            Some(json!({"phone": phone, "pin": "123456"})),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(on_pg.confirm(&token, &ids[2], json!({})).await.status, 200);
    let p = on_pg
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 10, "customer": cus}),
        )
        .await;
    assert_eq!(p["status"], "pending");
    on_pg.assert_balanced().await;
    let (ok, out) = on_pg.pocket(&["verify"]);
    assert!(ok, "{out}");
}

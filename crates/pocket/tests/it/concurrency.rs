//! Truly concurrent requests against the real server: exactly one outcome, always.

use crate::common::{Server, all};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_confirms_of_one_payment() {
    let s = Arc::new(Server::start().await);
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000001", 100_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 1000, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    let transfers_before = s.assert_balanced().await;
    let replies = all(50, |_| {
        let (s, token, id) = (s.clone(), token.clone(), id.clone());
        async move {
            let r = s.confirm(&token, &id, json!({})).await;
            (r.status.as_u16(), r.code().to_string())
        }
    })
    .await;
    let ok = replies.iter().filter(|r| r.0 == 200).count();
    let conflicts = replies
        .iter()
        .filter(|r| r.0 == 409 && r.1 == "payment_not_pending")
        .count();
    assert_eq!(ok, 1, "{replies:?}");
    assert_eq!(conflicts, 49, "{replies:?}");
    assert_eq!(
        s.assert_balanced().await,
        transfers_before + 1,
        "exactly one transfer"
    );
    assert_eq!(s.wallet_balance(&token, "CNY").await, 99_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_payments_race_one_balance() {
    let s = Arc::new(Server::start().await);
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000002", 10_000).await;
    let mut ids = vec![];
    for _ in 0..20 {
        ids.push(
            s.payment(
                &sk,
                json!({"currency": "CNY", "amount": 1000, "customer": cus}),
            )
            .await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let ids = Arc::new(ids);
    let replies = all(20, |i| {
        let (s, token, ids) = (s.clone(), token.clone(), ids.clone());
        async move {
            let r = s.confirm(&token, &ids[i], json!({})).await;
            (r.status.as_u16(), r.code().to_string())
        }
    })
    .await;
    assert_eq!(
        replies.iter().filter(|r| r.0 == 200).count(),
        10,
        "{replies:?}"
    );
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.0 == 402 && r.1 == "insufficient_funds")
            .count(),
        10,
        "{replies:?}"
    );
    assert_eq!(s.wallet_balance(&token, "CNY").await, 0);
    for (i, id) in ids.iter().enumerate() {
        let status = s.get(&format!("/v1/payments/{id}"), &sk).await.body["status"].clone();
        let expected = if replies[i].0 == 200 {
            "succeeded"
        } else {
            "pending"
        };
        assert_eq!(status, expected);
    }
    assert_eq!(s.merchant_balance(&sk, "CNY").await, 10_000);
    s.assert_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirms_racing_the_deadline() {
    let s = Arc::new(Server::start().await);
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000003", 1_000_000).await;
    const TRIALS: usize = 40;
    // Each trial creates a payment due in 1 s and confirms it at a different moment
    // from 300 ms before to 285 ms after its deadline; all trials run at once.
    let results = all(TRIALS, |i| {
        let (s, sk, token, cus) = (s.clone(), sk.clone(), token.clone(), cus.clone());
        async move {
            let started = tokio::time::Instant::now();
            let p = s
                .payment(
                    &sk,
                    json!({"currency": "CNY", "amount": 100, "customer": cus, "expires_in": 1}),
                )
                .await;
            let id = p["id"].as_str().unwrap().to_string();
            tokio::time::sleep_until(started + Duration::from_millis(700 + i as u64 * 15)).await;
            let r = s.confirm(&token, &id, json!({})).await;
            (id, (r.status.as_u16(), r.code().to_string()))
        }
    })
    .await;
    let (ids, replies): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    // Let the sweeper finish whatever is left.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tx = s.get("/v1/wallet/transactions?limit=100", &token).await;
    let mut succeeded: i64 = 0;
    for (i, id) in ids.iter().enumerate() {
        let p = s.get(&format!("/v1/payments/{id}"), &sk).await.body;
        let transfers = tx.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["reference"] == id.as_str())
            .count();
        match p["status"].as_str().unwrap() {
            "succeeded" => {
                succeeded += 1;
                assert_eq!(transfers, 1, "succeeded with exactly one transfer");
                assert_eq!(replies[i].0, 200, "{:?}", replies[i]);
            }
            "expired" => {
                assert_eq!(transfers, 0, "expired with none");
                assert_eq!(replies[i], (409, "payment_expired".to_string()));
            }
            other => panic!("payment ended {other}"),
        }
    }
    assert_eq!(
        s.wallet_balance(&token, "CNY").await,
        1_000_000 - 100 * succeeded
    );
    s.assert_balanced().await;
    assert!(
        succeeded > 0 && succeeded < TRIALS as i64,
        "the race was exercised on both sides"
    );
    eprintln!("deadline race: {succeeded} of {TRIALS} confirmed in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refunds_never_exceed_the_payment() {
    let s = Arc::new(Server::start().await);
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000004", 100_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 1000, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(s.confirm(&token, &id, json!({})).await.status, 200);
    // 30 refunds of 70 (10 + 20·...): at most 14 fit in 1000.
    let replies = all(30, |_| {
        let (s, sk, id) = (s.clone(), sk.clone(), id.clone());
        async move {
            let r = s
                .post(
                    &format!("/v1/payments/{id}/refunds"),
                    &sk,
                    json!({"amount": 70}),
                )
                .await;
            (r.status.as_u16(), r.code().to_string())
        }
    })
    .await;
    let ok = replies.iter().filter(|r| r.0 == 201).count();
    assert_eq!(ok, 14, "{replies:?}");
    assert!(
        replies
            .iter()
            .all(|r| r.0 == 201 || r.1 == "refund_exceeds_payment")
    );
    let p = s.get(&format!("/v1/payments/{id}"), &sk).await.body;
    assert_eq!(p["amount_refunded"], 980);
    // And the remainder in parallel "refund everything left" calls: only one wins.
    let replies = all(10, |_| {
        let (s, sk, id) = (s.clone(), sk.clone(), id.clone());
        async move {
            s.post(&format!("/v1/payments/{id}/refunds"), &sk, json!({}))
                .await
                .status
                .as_u16()
        }
    })
    .await;
    assert_eq!(
        replies.iter().filter(|r| **r == 201).count(),
        1,
        "{replies:?}"
    );
    assert_eq!(s.wallet_balance(&token, "CNY").await, 100_000);
    assert_eq!(s.merchant_balance(&sk, "CNY").await, 0);
    s.assert_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_twenty_times_in_parallel() {
    let s = Arc::new(Server::start().await);
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000005", 100_000).await;
    let body = json!({"currency": "CNY", "amount": 1234, "customer": cus});
    let replies = all(20, |_| {
        let (s, sk, body) = (s.clone(), sk.clone(), body.clone());
        async move {
            let r = s
                .call(
                    Method::POST,
                    "/v1/payments",
                    Some(&sk),
                    Some(body),
                    Some("same-key"),
                )
                .await;
            (r.status.as_u16(), r.text)
        }
    })
    .await;
    assert!(replies.iter().all(|r| r.0 == 201), "{replies:?}");
    assert!(
        replies.iter().all(|r| r.1 == replies[0].1),
        "identical responses"
    );
    assert_eq!(
        s.get("/v1/payments", &sk).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "one effect"
    );

    // The same for a confirm that moves money.
    let id = serde_json::from_str::<serde_json::Value>(&replies[0].1).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let replies = all(20, |_| {
        let (s, token, id) = (s.clone(), token.clone(), id.clone());
        async move {
            let r = s
                .call(
                    Method::POST,
                    &format!("/v1/wallet/payments/{id}/confirm"),
                    Some(&token),
                    Some(json!({})),
                    Some("pay-once"),
                )
                .await;
            (r.status.as_u16(), r.text)
        }
    })
    .await;
    assert!(replies.iter().all(|r| r.0 == 200), "{replies:?}");
    assert!(
        replies.iter().all(|r| r.1 == replies[0].1),
        "identical responses"
    );
    assert_eq!(s.wallet_balance(&token, "CNY").await, 100_000 - 1234);
    s.assert_balanced().await;
}

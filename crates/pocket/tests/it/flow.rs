//! The payment flow end to end through HTTP: tour, tiers, PINs, expiry, refunds,
//! visibility between callers, lists, idempotency across a restart.

use crate::common::{ADMIN_KEY, Server, balance_of};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn cart_payment_confirm_refund_and_ledger() {
    let s = Server::start().await;
    let (merchant_id, sk) = s.merchant("Tea House").await;
    s.product(&sk, "tea", 1299, "CNY").await;
    s.product(&sk, "cake", 2500, "CNY").await;
    let (cus, token) = s.customer("+8613800000001", 10_000).await;

    let p = s
        .payment(&sk, json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": 2}, {"sku": "cake", "quantity": 1}],
                             "customer": "+8613800000001", "description": "Table 4", "metadata": {"order": "42"}}))
        .await;
    assert_eq!(p["amount"], 2 * 1299 + 2500);
    assert_eq!(p["status"], "pending");
    assert_eq!(p["customer"], cus);
    assert_eq!(p["merchant"], merchant_id);
    assert_eq!(p["merchant_name"], "Tea House");
    assert_eq!(p["items"][0]["amount"], 2598);
    assert_eq!(
        p["policy"],
        json!({"tier": "small", "window_seconds": 300, "authentication": "none"})
    );
    assert_eq!(p["metadata"]["order"], "42");
    let created = chrono_ms(p["created_at"].as_str().unwrap());
    assert_eq!(
        chrono_ms(p["expires_at"].as_str().unwrap()) - created,
        300_000
    );
    assert!(p["created_at"].as_str().unwrap().ends_with('Z'));

    // The customer sees it as pending.
    let pending = s.get("/v1/wallet/payments?status=pending", &token).await;
    assert_eq!(pending.body["data"][0]["id"], p["id"]);

    let id = p["id"].as_str().unwrap();
    let r = s.confirm(&token, id, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "succeeded");
    assert!(r.body["completed_at"].is_string());
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000 - 5098);
    assert_eq!(s.merchant_balance(&sk, "CNY").await, 5098);

    // Partial then full refund.
    let r = s
        .post(
            &format!("/v1/payments/{id}/refunds"),
            &sk,
            json!({"amount": 1000, "reason": "cold tea"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["amount"], 1000);
    assert_eq!(r.body["status"], "succeeded");
    let r = s
        .post(&format!("/v1/payments/{id}/refunds"), &sk, json!({}))
        .await;
    assert_eq!(r.body["amount"], 4098);
    s.post(&format!("/v1/payments/{id}/refunds"), &sk, json!({}))
        .await
        .assert_error(409, "refund_exceeds_payment");
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000);
    assert_eq!(s.merchant_balance(&sk, "CNY").await, 0);
    let got = s.get(&format!("/v1/payments/{id}"), &sk).await;
    assert_eq!(got.body["amount_refunded"], 5098);

    // Movements on both sides, newest first, signed.
    let w = s.get("/v1/wallet/transactions", &token).await;
    let kinds: Vec<_> = w.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["refund", "refund", "payment", "topup"]);
    assert_eq!(w.body["data"][2]["amount"], -5098);
    assert_eq!(w.body["data"][2]["balance_after"], 10_000 - 5098);
    let m = s.get("/v1/balance/transactions", &sk).await;
    assert_eq!(m.body["data"][0]["amount"], -4098);

    // Events: created, succeeded, two refunds.
    let e = s.get("/v1/events", &sk).await;
    let types: Vec<_> = e.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "refund.succeeded",
            "refund.succeeded",
            "payment.succeeded",
            "payment.created"
        ]
    );
    assert_eq!(e.body["data"][2]["data"]["object"]["status"], "succeeded");

    let l = s.ledger().await;
    assert_eq!(l["balanced"], true);
    assert_eq!(l["transfers"], 4);
    assert_eq!(l["currencies"][0]["currency"], "CNY");
    assert_eq!(
        l["currencies"][0]["total_debits"],
        l["currencies"][0]["total_credits"]
    );
}

fn chrono_ms(s: &str) -> i64 {
    // "2026-11-25T10:00:00.123Z" → ms, enough for differences within a day.
    let t = &s[11..23];
    let h: i64 = t[0..2].parse().unwrap();
    let m: i64 = t[3..5].parse().unwrap();
    let sec: i64 = t[6..8].parse().unwrap();
    let ms: i64 = t[9..12].parse().unwrap();
    let day: i64 = s[8..10].parse().unwrap();
    (((day * 24 + h) * 60 + m) * 60 + sec) * 1000 + ms
}

#[tokio::test]
async fn tiers_follow_the_currency_exponent() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let cases = [
        ("CNY", 20_000, "small", 300, "none"),
        ("CNY", 20_001, "medium", 120, "pin"),
        ("CNY", 500_000, "medium", 120, "pin"),
        ("CNY", 500_001, "large", 60, "pin_and_device"),
        ("JPY", 200, "small", 300, "none"),
        ("JPY", 201, "medium", 120, "pin"),
        ("KWD", 200_000, "small", 300, "none"),
        ("KWD", 50_000_000, "large", 60, "pin_and_device"),
    ];
    for (currency, amount, tier, window, auth) in cases {
        let p = s
            .payment(&sk, json!({"currency": currency, "amount": amount}))
            .await;
        assert_eq!(
            p["policy"],
            json!({"tier": tier, "window_seconds": window, "authentication": auth}),
            "{currency} {amount}"
        );
        let fetched = s
            .get(&format!("/v1/payments/{}", p["id"].as_str().unwrap()), &sk)
            .await;
        assert_eq!(fetched.body["policy"]["tier"], tier, "policy is stored");
    }
    s.post(
        "/v1/payments",
        &sk,
        json!({"currency": "CNY", "amount": 5_000_001}),
    )
    .await
    .assert_error(400, "amount_too_large");
    s.post(
        "/v1/payments",
        &sk,
        json!({"currency": "JPY", "amount": 50_001}),
    )
    .await
    .assert_error(400, "amount_too_large");
}

#[tokio::test]
async fn tiers_come_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pocket.toml");
    std::fs::write(
        &cfg,
        "[[tiers.JPY]]\nname = \"small\"\nup_to_major = 20000\nwindow_seconds = 600\nauthentication = \"none\"\n\
         [[tiers.JPY]]\nname = \"large\"\nup_to_major = 1000000\nwindow_seconds = 30\nauthentication = \"pin\"\n",
    )
    .unwrap();
    let s = Server::start_with(&["--config", cfg.to_str().unwrap()]).await;
    let (_, sk) = s.merchant("M").await;
    let p = s
        .payment(&sk, json!({"currency": "JPY", "amount": 20_000}))
        .await;
    assert_eq!(
        p["policy"],
        json!({"tier": "small", "window_seconds": 600, "authentication": "none"})
    );
    let p = s
        .payment(&sk, json!({"currency": "JPY", "amount": 20_001}))
        .await;
    assert_eq!(p["policy"]["window_seconds"], 30);
    // Other currencies keep the contract's defaults.
    let p = s
        .payment(&sk, json!({"currency": "CNY", "amount": 20_001}))
        .await;
    assert_eq!(p["policy"]["tier"], "medium");
}

#[tokio::test]
async fn invalid_config_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[security]\npin_lock_seconds = 0\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pocket"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            cfg.to_str().unwrap(),
            "--data",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("security.pin_lock_seconds"), "{err}");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:0\"\nbogus = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pocket"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[tokio::test]
async fn pin_tier_needs_the_pin_and_locks_after_five_wrong() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000002", 1_000_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 30_000, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    s.confirm(&token, id, json!({}))
        .await
        .assert_error(401, "pin_required");
    for _ in 0..4 {
        s.confirm(&token, id, json!({"pin": "000000"}))
            .await
            .assert_error(401, "incorrect_pin");
    }
    // A correct PIN ends the run of wrong ones.
    let q = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 30_000, "customer": cus}),
        )
        .await;
    let r = s
        .confirm(&token, q["id"].as_str().unwrap(), json!({"pin": "123456"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for _ in 0..4 {
        s.confirm(&token, id, json!({"pin": "000000"}))
            .await
            .assert_error(401, "incorrect_pin");
    }
    let got = s.get(&format!("/v1/payments/{id}"), &sk).await;
    assert_eq!(
        got.body["status"], "pending",
        "a wrong PIN leaves the payment payable"
    );
    s.confirm(&token, id, json!({"pin": "000000"}))
        .await
        .assert_error(423, "pin_locked");
    // Locked: even the right PIN is refused. Sign-ins have a guard of their own
    // (a stranger's sign-in guesses must not lock the holder out, nor the reverse).
    s.confirm(&token, id, json!({"pin": "123456"}))
        .await
        .assert_error(423, "pin_locked");
    let r = s
        .call(
            Method::POST,
            "/v1/wallet/sessions",
            None,
            Some(json!({"phone": "+8613800000002", "pin": "123456"})),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(s.wallet_balance(&token, "CNY").await, 1_000_000 - 30_000);
}

#[tokio::test]
async fn sessions_sign_in_and_out() {
    let s = Server::start().await;
    let (_, token) = s.customer("+8613800000003", 0).await;
    let r = s
        .call(
            Method::POST,
            "/v1/wallet/sessions",
            None,
            Some(json!({"phone": "+8613800000003", "pin": "123456"})),
            None,
        )
        .await;
    assert_eq!(r.status, 201);
    let second = r.body["token"].as_str().unwrap().to_string();
    assert!(second.starts_with("pst_"));
    let r = s
        .call(
            Method::POST,
            "/v1/wallet/sessions",
            None,
            Some(json!({"phone": "+8613800000003", "pin": "999999"})),
            None,
        )
        .await;
    r.assert_error(401, "incorrect_pin");
    let r = s
        .call(
            Method::POST,
            "/v1/wallet/sessions",
            None,
            Some(json!({"phone": "+8613899999999", "pin": "123456"})),
            None,
        )
        .await;
    r.assert_error(401, "incorrect_pin");
    let r = s
        .call(
            Method::DELETE,
            "/v1/wallet/sessions/current",
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    s.get("/v1/wallet/me", &token)
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(
        s.get("/v1/wallet/me", &second).await.status,
        200,
        "other sessions live on"
    );
}

#[tokio::test]
async fn open_payment_is_paid_by_the_first_confirming_customer() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (a, token_a) = s.customer("+8613800000011", 10_000).await;
    let (_, token_b) = s.customer("+8613800000012", 10_000).await;
    let p = s
        .payment(&sk, json!({"currency": "CNY", "amount": 500}))
        .await;
    assert_eq!(p["customer"], serde_json::Value::Null);
    let id = p["id"].as_str().unwrap();
    // Anyone holding the id sees it; nobody can decline it.
    assert_eq!(
        s.get(&format!("/v1/wallet/payments/{id}"), &token_b)
            .await
            .status,
        200
    );
    s.post(
        &format!("/v1/wallet/payments/{id}/decline"),
        &token_b,
        json!({}),
    )
    .await
    .assert_error(409, "payment_open");
    let r = s.confirm(&token_a, id, json!({})).await;
    assert_eq!(r.body["customer"], a);
    // Now it is A's: B no longer sees it.
    s.get(&format!("/v1/wallet/payments/{id}"), &token_b)
        .await
        .assert_error(404, "resource_missing");
    let list = s.get("/v1/wallet/payments", &token_a).await;
    assert_eq!(list.body["data"][0]["id"], id);
}

#[tokio::test]
async fn decline_and_cancel() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000021", 10_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 500, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    let r = s
        .post(
            &format!("/v1/wallet/payments/{id}/decline"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "declined");
    s.confirm(&token, id, json!({}))
        .await
        .assert_error(409, "payment_not_pending");
    s.post(&format!("/v1/payments/{id}/cancel"), &sk, json!({}))
        .await
        .assert_error(409, "payment_not_pending");

    let q = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 500, "customer": cus}),
        )
        .await;
    let qid = q["id"].as_str().unwrap();
    let r = s
        .post(&format!("/v1/payments/{qid}/cancel"), &sk, json!({}))
        .await;
    assert_eq!(r.body["status"], "canceled");
    s.confirm(&token, qid, json!({}))
        .await
        .assert_error(409, "payment_not_pending");
    let types: Vec<_> = s.get("/v1/events", &sk).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "payment.canceled",
            "payment.created",
            "payment.declined",
            "payment.created"
        ]
    );
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000);
    assert_eq!(s.assert_balanced().await, 1);
}

#[tokio::test]
async fn a_payment_expires_by_itself_within_a_second_of_its_deadline() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000031", 10_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 500, "customer": cus, "expires_in": 1}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    let started = Instant::now();
    let deadline = Duration::from_secs(1);
    loop {
        let got = s.get(&format!("/v1/payments/{id}"), &sk).await;
        if got.body["status"] == "expired" {
            break;
        }
        assert!(
            started.elapsed() < deadline + Duration::from_millis(1500),
            "not expired in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.confirm(&token, id, json!({}))
        .await
        .assert_error(409, "payment_expired");
    let e = s.get("/v1/events?limit=1", &sk).await;
    assert_eq!(e.body["data"][0]["type"], "payment.expired");
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000);
    assert_eq!(s.assert_balanced().await, 1);
}

#[tokio::test]
async fn lists_page_newest_first() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(
            s.payment(&sk, json!({"currency": "CNY", "amount": 100 + i}))
                .await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let r = s.get("/v1/payments?limit=2", &sk).await;
    assert_eq!(r.body["object"], "list");
    assert_eq!(r.body["has_more"], true);
    assert_eq!(r.body["data"][0]["id"], ids[4]);
    assert_eq!(r.body["data"][1]["id"], ids[3]);
    let r = s
        .get(
            &format!("/v1/payments?limit=2&starting_after={}", ids[3]),
            &sk,
        )
        .await;
    assert_eq!(r.body["data"][0]["id"], ids[2]);
    let r = s
        .get(
            &format!("/v1/payments?limit=10&starting_after={}", ids[1]),
            &sk,
        )
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["has_more"], false);
    let r = s.get("/v1/payments", &sk).await;
    assert_eq!(
        r.body["data"].as_array().unwrap().len(),
        5,
        "default limit 10"
    );
    let r = s.get("/v1/payments?status=succeeded", &sk).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn merchants_and_customers_see_only_their_own() {
    let s = Server::start().await;
    let (_, sk_a) = s.merchant("A").await;
    let (_, sk_b) = s.merchant("B").await;
    let (cus, token) = s.customer("+8613800000041", 10_000).await;
    let (_, other) = s.customer("+8613800000042", 10_000).await;
    let p = s
        .payment(
            &sk_a,
            json!({"currency": "CNY", "amount": 500, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    s.get(&format!("/v1/payments/{id}"), &sk_b)
        .await
        .assert_error(404, "resource_missing");
    s.post(&format!("/v1/payments/{id}/cancel"), &sk_b, json!({}))
        .await
        .assert_error(404, "resource_missing");
    s.get(&format!("/v1/wallet/payments/{id}"), &other)
        .await
        .assert_error(404, "resource_missing");
    s.confirm(&other, id, json!({}))
        .await
        .assert_error(404, "resource_missing");
    assert_eq!(
        s.get("/v1/payments", &sk_b).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        s.get("/v1/events", &sk_b).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        s.get("/v1/wallet/payments", &other).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(s.confirm(&token, id, json!({})).await.status, 200);
}

#[tokio::test]
async fn sandbox_topups_only_in_sandbox() {
    let s = Server::start_with(&[]).await;
    let (_, token) = s.customer("+8613800000051", 0).await;
    let r = s
        .post(
            "/v1/wallet/topups",
            &token,
            json!({"amount": 500, "currency": "CNY"}),
        )
        .await;
    r.assert_error(403, "sandbox_only");
    assert!(r.headers.get("pocket-mode").is_none());

    let s = Server::start().await;
    let (_, token) = s.customer("+8613800000051", 0).await;
    let r = s
        .post(
            "/v1/wallet/topups",
            &token,
            json!({"amount": 500, "currency": "CNY"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["object"], "topup");
    assert_eq!(r.headers.get("pocket-mode").unwrap(), "sandbox");
    assert_eq!(s.wallet_balance(&token, "CNY").await, 500);
}

#[tokio::test]
async fn idempotent_retries_replay_and_survive_a_restart() {
    let mut s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let body = json!({"currency": "CNY", "amount": 700});
    let first = s
        .call(
            Method::POST,
            "/v1/payments",
            Some(&sk),
            Some(body.clone()),
            Some("order-1"),
        )
        .await;
    assert_eq!(first.status, 201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = s
        .call(
            Method::POST,
            "/v1/payments",
            Some(&sk),
            Some(body.clone()),
            Some("order-1"),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.text, first.text);
    // Same key, other body or endpoint: refused.
    let r = s
        .call(
            Method::POST,
            "/v1/payments",
            Some(&sk),
            Some(json!({"currency": "CNY", "amount": 701})),
            Some("order-1"),
        )
        .await;
    r.assert_error(409, "idempotency_key_reused");
    assert_eq!(r.body["error"]["type"], "idempotency_error");
    let r = s
        .call(
            Method::POST,
            "/v1/products",
            Some(&sk),
            Some(json!({"sku": "x", "name": "x", "unit_amount": 1, "currency": "CNY"})),
            Some("order-1"),
        )
        .await;
    r.assert_error(409, "idempotency_key_reused");
    // Keys are per caller.
    let (_, sk2) = s.merchant("M2").await;
    let other = s
        .call(
            Method::POST,
            "/v1/payments",
            Some(&sk2),
            Some(body.clone()),
            Some("order-1"),
        )
        .await;
    assert_ne!(other.body["id"], first.body["id"]);

    s.restart();
    let after = s
        .call(
            Method::POST,
            "/v1/payments",
            Some(&sk),
            Some(body),
            Some("order-1"),
        )
        .await;
    assert_eq!(after.text, first.text, "the record is durable");
    assert_eq!(
        s.get("/v1/payments", &sk).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Credential-issuing endpoints replay the same secret without storing it.
    let m1 = s
        .call(
            Method::POST,
            "/v1/admin/merchants",
            Some(ADMIN_KEY),
            Some(json!({"name": "Idem"})),
            Some("m-1"),
        )
        .await;
    let m2 = s
        .call(
            Method::POST,
            "/v1/admin/merchants",
            Some(ADMIN_KEY),
            Some(json!({"name": "Idem"})),
            Some("m-1"),
        )
        .await;
    assert_eq!(m1.body, m2.body);
    let key = m1.body["secret_key"].as_str().unwrap();
    assert_eq!(s.get("/v1/balance", key).await.status, 200);
    for (what, db) in s.stored_bytes() {
        assert!(
            !db.windows(key.len()).any(|w| w == key.as_bytes()),
            "secret key stored in clear in {what}"
        );
    }
}

#[tokio::test]
async fn service_endpoints_and_openapi() {
    let s = Server::start().await;
    let r = s.call(Method::GET, "/healthz", None, None, None).await;
    assert_eq!(r.body, json!({"status": "ok"}));
    let r = s.call(Method::GET, "/openapi.json", None, None, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/payments",
        "/v1/payments/{id}/refunds",
        "/v1/wallet/payments/{id}/confirm",
        "/v1/admin/ledger",
        "/v1/events",
    ] {
        assert!(r.body["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(r.body["components"]["schemas"].get("Payment").is_some());
    let r = s.call(Method::GET, "/nope", None, None, None).await;
    r.assert_error(404, "resource_missing");
    assert_eq!(s.ledger().await["balanced"], true);
    let _ = balance_of(&serde_json::Value::Null, "CNY");
}

#[tokio::test]
async fn qr_code_and_payload() {
    let s = Server::start().await;
    let (merchant_id, sk) = s.merchant("Tea House").await;
    let p = s
        .payment(&sk, json!({"currency": "JPY", "amount": 500}))
        .await;
    let id = p["id"].as_str().unwrap();
    let payload = p["qr_payload"].as_str().unwrap();
    assert!(payload.starts_with("000201010212"), "{payload}");
    assert!(payload.contains(&format!("{}/pay/{id}", s.url)));
    assert!(
        payload.contains("5303392")
            && payload.contains("5403500")
            && payload.contains("5909Tea House")
    );
    let r = s
        .client
        .get(format!("{}/v1/payments/{id}/qr", s.url))
        .bearer_auth(&sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let svg = r.text().await.unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"));
    let (_, other) = s.merchant("Other").await;
    s.get(&format!("/v1/payments/{id}/qr"), &other)
        .await
        .assert_error(404, "resource_missing");
    let _ = merchant_id;
}

/// One phone parser, everywhere: a number typed the local way (`138 0000 0001` on a
/// server in China) reaches the same wallet from the console's cart, the operator's
/// customer search and top-up as its E.164 form; what is no phone number is refused
/// with the contract's `400`, naming the field.
#[tokio::test]
async fn phone_numbers_typed_the_local_way_are_taken_everywhere() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000001", 1_000).await;
    for typed in [
        "138 0000 0001",
        "138-0000-0001",
        "+86 138 0000 0001",
        "0086 13800000001",
    ] {
        let p = s
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 100, "customer": typed}),
            )
            .await;
        assert_eq!(p["customer"], cus.as_str(), "{typed}: {p}");
        let found = s.get(&customer_search(typed), ADMIN_KEY).await;
        assert_eq!(found.status, 200, "{typed}: {}", found.text);
        assert_eq!(found.body["data"][0]["id"], cus.as_str(), "{typed}");
    }
    let r = s
        .post(
            "/v1/admin/topups",
            ADMIN_KEY,
            json!({"customer": "138 0000 0001", "amount": 500, "currency": "CNY"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(s.wallet_balance(&token, "CNY").await, 1_500);
    for bad in ["138 0000 000a", "12", "+0123456789"] {
        let r = s
            .post(
                "/v1/payments",
                &sk,
                json!({"currency": "CNY", "amount": 100, "customer": bad}),
            )
            .await;
        r.assert_error(400, "parameter_invalid");
        assert_eq!(r.param(), Some("customer"), "{bad}");
        let r = s.get(&customer_search(bad), ADMIN_KEY).await;
        r.assert_error(400, "parameter_invalid");
    }
}

/// `/v1/admin/customers?phone=…` with `phone` query-encoded.
fn customer_search(phone: &str) -> String {
    let mut url = reqwest::Url::parse("http://pocket/v1/admin/customers").unwrap();
    url.query_pairs_mut().append_pair("phone", phone);
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

/// The export's lines after the header, each read into its cells (every cell is
/// quoted, `""` inside one is a quote; no cell of these tests holds a newline).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|line| {
            let (mut cells, mut cell, mut quoted) = (Vec::new(), String::new(), false);
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match (c, quoted) {
                    ('"', true) if chars.peek() == Some(&'"') => {
                        cell.push('"');
                        chars.next();
                    }
                    ('"', _) => quoted = !quoted,
                    (',', false) => cells.push(std::mem::take(&mut cell)),
                    (c, _) => cell.push(c),
                }
            }
            cells.push(cell);
            cells
        })
        .collect()
}

#[tokio::test]
async fn the_export_streams_every_payment_the_filters_match_with_what_was_captured_and_refunded() {
    let s = std::sync::Arc::new(Server::start().await);
    let (_, sk) = s.merchant("Export Shop").await;
    let (cus, token) = s.customer("+8613800000071", 100_000).await;
    let start = crate::common::now_ms() - 1_000;
    let paid = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 1_000, "customer": cus,
            "description": "=HYPERLINK(\"http://evil.example\",\"x\"), with \"quotes\""}),
        )
        .await;
    let paid = paid["id"].as_str().unwrap().to_owned();
    assert_eq!(s.confirm(&token, &paid, json!({})).await.status, 200);
    assert_eq!(
        s.post(
            &format!("/v1/payments/{paid}/refunds"),
            &sk,
            json!({"amount": 250})
        )
        .await
        .status,
        201
    );
    let held = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 5_697, "customer": cus, "capture": "manual"}),
        )
        .await;
    let held = held["id"].as_str().unwrap().to_owned();
    assert_eq!(s.confirm(&token, &held, json!({})).await.status, 200);
    assert_eq!(
        s.post(
            &format!("/v1/payments/{held}/capture"),
            &sk,
            json!({"amount": 4_000})
        )
        .await
        .status,
        200
    );
    // More than one of the export's pages.
    let (s2, sk2) = (s.clone(), sk.clone());
    crate::common::all(520, move |i| {
        let (s, sk) = (s2.clone(), sk2.clone());
        async move {
            s.payment(&sk, json!({"currency": "CNY", "amount": 100 + i as i64}))
                .await
        }
    })
    .await;

    let r = s.get("/v1/payments/export", &sk).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        r.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("payments.csv")
    );
    assert!(r.text.starts_with("\"id\",\"created_at\",\"completed_at\",\"status\",\"currency\",\"amount\",\"amount_captured\",\"amount_refunded\""));
    let rows = csv_rows(&r.text);
    assert_eq!(rows.len(), 522, "every payment, past the first page");
    assert!(rows.iter().all(|r| r.len() == 15), "15 cells on every line");
    let by_id = |id: &str| rows.iter().find(|r| r[0] == id).cloned().unwrap();
    let p = by_id(&paid);
    assert_eq!(
        (p[3].as_str(), p[5].as_str(), p[6].as_str(), p[7].as_str()),
        ("succeeded", "10.00", "10.00", "2.50")
    );
    assert_eq!(p[8], cus);
    assert_eq!((p[13].as_str(), p[14].as_str()), ("Test", "138****0071"));
    assert!(
        p[11].starts_with("'=HYPERLINK"),
        "a formula is neutralised: {}",
        p[11]
    );
    assert!(p[11].contains(", with \"quotes\""), "{}", p[11]);
    let h = by_id(&held);
    assert_eq!(
        (h[3].as_str(), h[5].as_str(), h[6].as_str(), h[7].as_str()),
        ("succeeded", "56.97", "40.00", "0.00")
    );
    // In the list's order.
    let list = s.get("/v1/payments?limit=3", &sk).await;
    let newest: Vec<&str> = rows.iter().take(3).map(|r| r[0].as_str()).collect();
    let listed: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(newest, listed);

    // The list's filters.
    let r = s.get("/v1/payments/export?status=succeeded", &sk).await;
    assert_eq!(csv_rows(&r.text).len(), 2);
    let after = pocket_core::time::rfc3339_ms(crate::common::now_ms() + 3_600_000);
    let r = s
        .get(&format!("/v1/payments/export?from={after}"), &sk)
        .await;
    assert_eq!((r.status.as_u16(), csv_rows(&r.text).len()), (200, 0));
    let before = pocket_core::time::rfc3339_ms(start);
    let r = s
        .get(&format!("/v1/payments/export?to={before}"), &sk)
        .await;
    assert_eq!(csv_rows(&r.text).len(), 0);
    let r = s
        .get(
            &format!("/v1/payments/export?from={before}&status=succeeded"),
            &sk,
        )
        .await;
    assert_eq!(csv_rows(&r.text).len(), 2);
    // Another merchant's export has none of it.
    let (_, other) = s.merchant("Elsewhere").await;
    assert_eq!(
        csv_rows(&s.get("/v1/payments/export", &other).await.text).len(),
        0
    );

    for (query, code, param) in [
        ("?status=paid", "parameter_invalid", "status"),
        ("?from=today", "parameter_invalid", "from"),
        (
            "?from=2026-12-03T00:00:00Z&to=2026-12-02T00:00:00Z",
            "parameter_invalid",
            "to",
        ),
        ("?limit=5", "parameter_invalid", "query"),
    ] {
        let r = s.get(&format!("/v1/payments/export{query}"), &sk).await;
        r.assert_error(400, code);
        assert_eq!(r.param(), Some(param), "{query}");
    }
    assert_eq!(s.get("/v1/payments/export", "sk_nothing").await.status, 401);
    assert_eq!(s.get("/v1/payments/export", &token).await.status, 401);
}

#[tokio::test]
async fn payments_name_their_customer_with_a_masked_phone_and_list_by_customer() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("People Shop").await;
    let (li, li_token) = s.customer("+8613800000081", 100_000).await;
    let (wang, _) = s.customer("+8613800000082", 100_000).await;
    // Addressed by phone: named at once. Open, then paid: named by the payer's claim.
    let addressed = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": "138 0000 0081"}),
        )
        .await;
    assert_eq!(addressed["customer"], li.as_str());
    assert_eq!(
        addressed["customer_name"],
        Value::Null,
        "no name before the customer acts"
    );
    assert_eq!(addressed["customer_phone"], "+86 138****0081");
    let open = s
        .payment(&sk, json!({"currency": "CNY", "amount": 200}))
        .await;
    assert_eq!(open["customer_name"], Value::Null);
    assert_eq!(open["customer_phone"], Value::Null);
    let open_id = open["id"].as_str().unwrap();
    let paid = s.confirm(&li_token, open_id, json!({})).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(paid.body["customer_phone"], "+86 138****0081");
    let got = s.get(&format!("/v1/payments/{open_id}"), &sk).await;
    assert_eq!(got.body["customer_name"], "Test");
    s.payment(
        &sk,
        json!({"currency": "CNY", "amount": 300, "customer": wang}),
    )
    .await;
    // Nothing the merchant reads holds the whole number: payments, events, the export.
    for path in [
        "/v1/payments?limit=100",
        "/v1/events?limit=100",
        "/v1/payments/export",
    ] {
        let r = s.get(path, &sk).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(
            !r.text.contains("13800000081"),
            "{path} shows a whole phone"
        );
        assert!(r.text.contains("138****0081"), "{path}");
    }

    // One customer's payments, named by id, phone or the local way.
    let ids = |r: &crate::common::Reply| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["amount"].to_string())
            .collect()
    };
    for who in [li.as_str(), "%2B8613800000081", "138%200000%200081"] {
        let r = s.get(&format!("/v1/payments?customer={who}"), &sk).await;
        assert_eq!(r.status, 200, "{who}: {}", r.text);
        assert_eq!(ids(&r), ["200", "100"], "{who}");
    }
    let r = s
        .get(&format!("/v1/payments?customer={wang}&limit=1"), &sk)
        .await;
    assert_eq!(ids(&r), ["300"]);
    let r = s.get("/v1/payments/export?customer=13800000082", &sk).await;
    assert_eq!(csv_rows(&r.text).len(), 1);
    // A phone no wallet has: none. Another merchant sees none of them.
    let r = s.get("/v1/payments?customer=13800000089", &sk).await;
    assert_eq!((r.status.as_u16(), ids(&r).len()), (200, 0));
    let (_, other) = s.merchant("Other Shop").await;
    let r = s.get(&format!("/v1/payments?customer={li}"), &other).await;
    assert_eq!(ids(&r).len(), 0);

    // Bad input: the contract's error, naming the parameter.
    for bad in [
        "/v1/payments?customer=12",
        "/v1/payments?customer=cus_x",
        "/v1/payments/export?customer=abc",
    ] {
        let r = s.get(bad, &sk).await;
        r.assert_error(400, "parameter_invalid");
        assert_eq!(r.param(), Some("customer"), "{bad}");
    }
    for (path, auth) in [
        ("/v1/products?customer=13800000081", sk.as_str()),
        (
            "/v1/wallet/payments?customer=13800000081",
            li_token.as_str(),
        ),
    ] {
        let r = s.get(path, auth).await;
        r.assert_error(400, "parameter_invalid");
        assert_eq!(r.param(), Some("customer"), "{path}");
    }
}

#[tokio::test]
async fn the_wallets_history_shows_holds_captures_releases_refunds_and_declines_by_month() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("History Shop").await;
    let (cus, token) = s.customer("+8613800000091", 100_000).await;
    let pay = |body: Value| {
        let (s, sk) = (&s, &sk);
        async move { s.payment(sk, body).await["id"].as_str().unwrap().to_owned() }
    };
    let paid = pay(json!({"currency": "CNY", "amount": 1_000, "customer": cus})).await;
    assert_eq!(s.confirm(&token, &paid, json!({})).await.status, 200);
    let held =
        pay(json!({"currency": "CNY", "amount": 5_697, "customer": cus, "capture": "manual"}))
            .await;
    assert_eq!(s.confirm(&token, &held, json!({})).await.status, 200);
    let r = s
        .post(
            &format!("/v1/payments/{held}/capture"),
            &sk,
            json!({"amount": 4_000}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let let_go =
        pay(json!({"currency": "CNY", "amount": 900, "customer": cus, "capture": "manual"})).await;
    assert_eq!(s.confirm(&token, &let_go, json!({})).await.status, 200);
    assert_eq!(
        s.post(&format!("/v1/payments/{let_go}/cancel"), &sk, json!({}))
            .await
            .status,
        200
    );
    let r = s
        .post(
            &format!("/v1/payments/{paid}/refunds"),
            &sk,
            json!({"amount": 250}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let declined = pay(json!({"currency": "CNY", "amount": 700, "customer": cus})).await;
    let r = s
        .post(
            &format!("/v1/wallet/payments/{declined}/decline"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let r = s
        .get("/v1/wallet/activity?limit=100&utc_offset=480", &token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let lines = r.body["data"].as_array().unwrap();
    let seen: Vec<(String, i64, String)> = lines
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().into(),
                l["amount"].as_i64().unwrap(),
                l["direction"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("declined", 700, "none"),
        ("refund", 250, "in"),
        ("release", 900, "none"),
        ("hold", 900, "none"),
        ("capture", 4_000, "out"),
        ("hold", 5_697, "none"),
        ("payment", 1_000, "out"),
        ("topup", 100_000, "in"),
    ];
    let want: Vec<(String, i64, String)> = want
        .iter()
        .map(|(k, a, d)| (k.to_string(), *a, d.to_string()))
        .collect();
    assert_eq!(seen, want, "newest first");
    let refund = &lines[1];
    assert_eq!(
        (
            refund["merchant_name"].as_str(),
            refund["payment"].as_str(),
            refund["currency"].as_str()
        ),
        (Some("History Shop"), Some(paid.as_str()), Some("CNY"))
    );
    // The month's money in and out, from the ledger: top-up and refund in; payment and capture out.
    let months = r.body["months"].as_array().unwrap();
    assert_eq!(months.len(), 1, "{months:?}");
    assert_eq!(
        (months[0]["in"].as_i64(), months[0]["out"].as_i64()),
        (Some(100_250), Some(5_000))
    );
    let now_ms = crate::common::now_ms();
    assert_eq!(
        months[0]["month"],
        pocket_core::time::month_of(now_ms, 480).0
    );

    // One kind at a time, the shared events told apart.
    for (kind, n) in [
        ("capture", 1),
        ("release", 1),
        ("payment", 1),
        ("hold", 2),
        ("canceled", 0),
        ("refund", 1),
        ("topup", 1),
        ("expired", 0),
    ] {
        let r = s
            .get(
                &format!("/v1/wallet/activity?kind={kind}&limit=100"),
                &token,
            )
            .await;
        assert_eq!(r.status, 200, "{kind}: {}", r.text);
        let got = r.body["data"].as_array().unwrap();
        assert_eq!(got.len(), n, "{kind}: {got:?}");
        assert!(got.iter().all(|l| l["kind"] == kind), "{kind}");
    }
    // Pages.
    let first = s.get("/v1/wallet/activity?limit=3", &token).await;
    assert_eq!(first.body["has_more"], true);
    let last = first.body["data"][2]["id"].as_str().unwrap();
    let next = s
        .get(
            &format!("/v1/wallet/activity?limit=10&starting_after={last}"),
            &token,
        )
        .await;
    assert_eq!(next.body["data"].as_array().unwrap().len(), 5);
    assert_eq!(next.body["has_more"], false);
    // Another customer sees none of it; bad input names its parameter.
    let (_, other) = s.customer("+8613800000092", 0).await;
    let r = s.get("/v1/wallet/activity", &other).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 0);
    let r = s
        .get(
            &format!("/v1/wallet/activity?starting_after={last}"),
            &other,
        )
        .await;
    assert_eq!(r.status, 404);
    for (q, param) in [
        ("kind=transfer", "kind"),
        ("utc_offset=900", "utc_offset"),
        ("limit=0", "limit"),
        ("starting_after=pay_x", "starting_after"),
        ("colour=red", "query"),
    ] {
        let r = s.get(&format!("/v1/wallet/activity?{q}"), &token).await;
        r.assert_error(400, "parameter_invalid");
        assert_eq!(r.param(), Some(param), "{q}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_is_sent_again_at_most_three_times_however_many_ask_at_once() {
    let s = std::sync::Arc::new(Server::start().await);
    let (_, sk) = s.merchant("Remind Shop").await;
    let (cus, token) = s.customer("+8613800000093", 10_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 500, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    let path = format!("/v1/payments/{id}/remind");
    let answers = crate::common::all(20, {
        let (s, sk, path) = (s.clone(), sk.clone(), path.clone());
        move |_| {
            let (s, sk, path) = (s.clone(), sk.clone(), path.clone());
            async move { s.post(&path, &sk, json!({})).await }
        }
    })
    .await;
    let sent = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(sent, 3, "exactly the most");
    assert!(
        answers
            .iter()
            .filter(|r| r.status != 200)
            .all(|r| r.code() == "too_many_reminders")
    );
    println!("20 reminders at once: {sent} sent, {} refused", 20 - sent);
    let events = s.get("/v1/events?limit=100", &sk).await;
    let reminded = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "payment.reminded")
        .count();
    assert_eq!(reminded, 3);
    // Open, paid, another merchant's: refused, nothing sent.
    let open = s
        .payment(&sk, json!({"currency": "CNY", "amount": 500}))
        .await;
    s.post(
        &format!("/v1/payments/{}/remind", open["id"].as_str().unwrap()),
        &sk,
        json!({}),
    )
    .await
    .assert_error(409, "payment_open");
    let (_, other) = s.merchant("Other").await;
    assert_eq!(s.post(&path, &other, json!({})).await.status, 404);
    assert_eq!(s.confirm(&token, &id, json!({})).await.status, 200);
    let p2 = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 500, "customer": cus}),
        )
        .await;
    let id2 = p2["id"].as_str().unwrap();
    assert_eq!(s.confirm(&token, id2, json!({})).await.status, 200);
    s.post(&format!("/v1/payments/{id2}/remind"), &sk, json!({}))
        .await
        .assert_error(409, "payment_not_pending");
    s.post("/v1/payments/pay_x/remind", &sk, json!({}))
        .await
        .assert_error(400, "parameter_invalid");
}

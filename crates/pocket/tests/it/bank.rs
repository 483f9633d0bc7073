//! Money in and out through the sandbox bank: card top-ups and withdrawals for every
//! card of the contract's table that matters, two-phase reservations, answers that
//! come late or not at all, parallel withdrawals, retries and a kill -9 mid-way.

use crate::common::{Options, Server, all};
use serde_json::{Value, json};
use std::sync::Arc;

const SANDBOX: &str = "[[connectors]]\nname = \"sandbox\"\nkind = \"sandbox\"\ncurrencies = [\"CNY\", \"USD\"]\nasync_delay_seconds = 1\n";

async fn server() -> Server {
    Server::start_options(Options {
        config: Some(SANDBOX.into()),
        ..Options::default()
    })
    .await
}

fn balance(me: &Value, field: &str) -> i64 {
    crate::common::balance_field(&me["balances"], "CNY", field)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn card_top_ups_follow_the_sandbox_table() {
    let s = server().await;
    let cases = [
        ("4242424242424242", "succeeded", None),
        ("4000000000000002", "failed", Some("card_declined")),
        ("4000000000009995", "failed", Some("insufficient_funds")),
        ("4000000000000119", "succeeded", None),
        ("4000000000003220", "succeeded", None),
        ("4000000000000259", "succeeded", None),
    ];
    for (i, (number, status, code)) in cases.into_iter().enumerate() {
        // A wallet per card: at most five cards to a wallet.
        let (_, token) = s.customer(&format!("+86138000050{i:02}"), 0).await;
        let card = s.bind_card(&token, number).await;
        let r = s
            .post(
                "/v1/wallet/topups",
                &token,
                json!({"amount": 10_000, "currency": "CNY", "card": card, "pin": "123456"}),
            )
            .await;
        assert_eq!(r.status, 201, "{number}: {}", r.text);
        assert_eq!(r.body["object"], "topup");
        assert_eq!(r.body["card"], card.as_str());
        let id = r.body["id"].as_str().unwrap();
        assert!(id.starts_with("top_"));
        let done = s
            .until_final(&token, &format!("/v1/wallet/topups/{id}"))
            .await;
        assert_eq!(done["status"], status, "{number}: {done}");
        assert_eq!(done["failure_code"].as_str(), code, "{number}: {done}");
        let expected = if status == "succeeded" { 10_000 } else { 0 };
        // Credited once, when and only when the bank took the money.
        assert_eq!(
            balance(&s.get("/v1/wallet/me", &token).await.body, "available"),
            expected,
            "{number}"
        );
        let list = s.get("/v1/wallet/topups", &token).await;
        assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    }
    s.assert_balanced().await;
    let (ok, out) = s.pocket(&["verify"]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn withdrawals_reserve_at_once_and_post_or_release_once() {
    let s = server().await;
    let (cus, token) = s.customer("+8613800005101", 0).await;
    s.topup(&cus, 100_000, "CNY").await;
    let ok = s.bind_card(&token, "4242424242424242").await;
    let closed = s.bind_card(&token, "4000000000000341").await;
    let flaky = s.bind_card(&token, "4000000000000119").await;
    let withdraw = |card: &str, amount: i64| json!({"amount": amount, "currency": "CNY", "card": card, "pin": "123456"});
    let r = s
        .post("/v1/wallet/withdrawals", &token, withdraw(&ok, 30_000))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["object"], "withdrawal");
    assert_eq!(r.body["status"], "succeeded");
    let me = s.get("/v1/wallet/me", &token).await.body;
    assert_eq!(
        (balance(&me, "available"), balance(&me, "reserved")),
        (70_000, 0)
    );
    // The bank fails it: the reservation is released, nothing moves.
    let r = s
        .post("/v1/wallet/withdrawals", &token, withdraw(&closed, 20_000))
        .await;
    assert_eq!(r.body["status"], "failed", "{}", r.text);
    assert_eq!(r.body["failure_code"], "account_closed");
    assert_eq!(
        balance(&s.get("/v1/wallet/me", &token).await.body, "available"),
        70_000
    );
    // No answer at first: reserved at once, posted once the poller hears.
    let r = s
        .post("/v1/wallet/withdrawals", &token, withdraw(&flaky, 50_000))
        .await;
    assert_eq!(r.body["status"], "processing", "{}", r.text);
    let me = s.get("/v1/wallet/me", &token).await.body;
    assert_eq!(
        (balance(&me, "available"), balance(&me, "reserved")),
        (20_000, 50_000)
    );
    // The reserved money cannot be spent meanwhile.
    s.post("/v1/wallet/withdrawals", &token, withdraw(&ok, 20_001))
        .await
        .assert_error(402, "insufficient_funds");
    let id = r.body["id"].as_str().unwrap();
    let done = s
        .until_final(&token, &format!("/v1/wallet/withdrawals/{id}"))
        .await;
    assert_eq!(done["status"], "succeeded");
    let me = s.get("/v1/wallet/me", &token).await.body;
    assert_eq!(
        (balance(&me, "available"), balance(&me, "reserved")),
        (20_000, 0)
    );
    // A retry with its key is the same withdrawal.
    let key = "wd-retry-1";
    let first = s
        .call(
            reqwest::Method::POST,
            "/v1/wallet/withdrawals",
            Some(&token),
            Some(withdraw(&ok, 1_000)),
            Some(key),
        )
        .await;
    let again = s
        .call(
            reqwest::Method::POST,
            "/v1/wallet/withdrawals",
            Some(&token),
            Some(withdraw(&ok, 1_000)),
            Some(key),
        )
        .await;
    assert_eq!(first.body["id"], again.body["id"]);
    assert_eq!(
        balance(&s.get("/v1/wallet/me", &token).await.body, "available"),
        19_000
    );
    s.assert_balanced().await;
    let (ok, out) = s.pocket(&["verify"]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_withdrawals_never_reserve_more_than_there_is() {
    let s = Arc::new(server().await);
    let (cus, token) = s.customer("+8613800005201", 0).await;
    s.topup(&cus, 20_000, "CNY").await;
    let card = s.bind_card(&token, "4242424242424242").await;
    // Five at once (a wallet's PIN guard lets five checks run together).
    let replies = all(5, |_| {
        let (s, token, card) = (s.clone(), token.clone(), card.clone());
        async move {
            let r = s
                .post(
                    "/v1/wallet/withdrawals",
                    &token,
                    json!({"amount": 10_000, "currency": "CNY", "card": card, "pin": "123456"}),
                )
                .await;
            (r.status.as_u16(), r.code().to_string())
        }
    })
    .await;
    let made = replies.iter().filter(|r| r.0 == 201).count();
    let refused = replies
        .iter()
        .filter(|r| *r == &(402, "insufficient_funds".to_string()))
        .count();
    assert_eq!((made, refused), (2, 3), "{replies:?}");
    let me = s.get("/v1/wallet/me", &token).await.body;
    assert_eq!(balance(&me, "available") + balance(&me, "reserved"), 0);
    s.assert_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operation_in_flight_survives_a_kill_9() {
    let mut s = server().await;
    let (_, token) = s.customer("+8613800005301", 0).await;
    let card = s.bind_card(&token, "4000000000003220").await;
    let r = s
        .post(
            "/v1/wallet/topups",
            &token,
            json!({"amount": 10_000, "currency": "CNY", "card": card, "pin": "123456"}),
        )
        .await;
    assert_eq!(r.body["status"], "processing", "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    s.kill9();
    s.start_again();
    let done = s
        .until_final(&token, &format!("/v1/wallet/topups/{id}"))
        .await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(
        balance(&s.get("/v1/wallet/me", &token).await.body, "available"),
        10_000
    );
    s.assert_balanced().await;
}

#[tokio::test]
async fn merchants_pay_themselves_out_to_their_bank_accounts() {
    let s = server().await;
    let (_, sk) = s.merchant("Tea House").await;
    let (cus, token) = s.customer("+8613800005401", 100_000).await;
    for _ in 0..3 {
        let p = s
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 20_000, "customer": cus}),
            )
            .await;
        assert_eq!(
            s.confirm(&token, p["id"].as_str().unwrap(), json!({}))
                .await
                .status,
            200
        );
    }
    let account = |number: &str| json!({"holder_name": "Tea House", "account_number": number, "bank_code": "ICBC", "currency": "CNY"});
    let r = s
        .post("/v1/bank_accounts", &sk, account("6222 0200 0000 1234"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["last4"], "1234");
    assert!(!r.text.contains("62220200"), "{}", r.text);
    let good = r.body["id"].as_str().unwrap().to_string();
    let closed = s
        .post("/v1/bank_accounts", &sk, account("6222020000000000"))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.post("/v1/bank_accounts", &sk, account("12"))
        .await
        .assert_error(400, "parameter_invalid");
    let payout =
        |to: &str, amount: i64| json!({"amount": amount, "currency": "CNY", "bank_account": to});
    let r = s.post("/v1/payouts", &sk, payout(&good, 30_000)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (r.body["object"].as_str(), r.body["status"].as_str()),
        (Some("payout"), Some("paid"))
    );
    assert_eq!(s.merchant_balance(&sk, "CNY").await, 30_000);
    let r = s.post("/v1/payouts", &sk, payout(&closed, 10_000)).await;
    assert_eq!(
        (r.body["status"].as_str(), r.body["failure_code"].as_str()),
        (Some("failed"), Some("account_closed"))
    );
    assert_eq!(s.merchant_balance(&sk, "CNY").await, 30_000, "released");
    s.post("/v1/payouts", &sk, payout(&good, 30_001))
        .await
        .assert_error(402, "insufficient_funds");
    let list = s.get("/v1/payouts", &sk).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    let id = list.body["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/v1/payouts/{id}"), &sk).await.status, 200);
    let (_, other) = s.merchant("Other").await;
    s.get(&format!("/v1/payouts/{id}"), &other)
        .await
        .assert_error(404, "resource_missing");
    s.post("/v1/payouts", &other, payout(&good, 1))
        .await
        .assert_error(404, "resource_missing");
    s.assert_balanced().await;
    let (ok, out) = s.pocket(&["verify"]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_day_reconciles_against_the_banks_statement() {
    let s = server().await;
    let (cus, token) = s.customer("+8613800005501", 0).await;
    s.topup(&cus, 50_000, "CNY").await;
    let ok = s.bind_card(&token, "4242424242424242").await;
    let declined = s.bind_card(&token, "4000000000000002").await;
    let closed = s.bind_card(&token, "4000000000000341").await;
    let body =
        |card: &str| json!({"amount": 1_000, "currency": "CNY", "card": card, "pin": "123456"});
    for card in [&ok, &declined] {
        s.post("/v1/wallet/topups", &token, body(card)).await;
    }
    for card in [&ok, &closed] {
        s.post("/v1/wallet/withdrawals", &token, body(card)).await;
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let today = pocket_core::time::utc_date(now_ms);
    let path = format!("/v1/admin/reconciliation?connector=sandbox&date={today}");
    let r = s.get(&path, crate::common::ADMIN_KEY).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["matched"], 4, "{}", r.text);
    for list in [
        "missing_at_connector",
        "missing_in_pocket",
        "amount_mismatches",
        "status_mismatches",
    ] {
        assert_eq!(r.body[list], json!([]), "{list}: {}", r.text);
    }
    let csv = s
        .client
        .get(format!("{}{path}&format=csv", s.url))
        .bearer_auth(crate::common::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        csv.text().await.unwrap().lines().count(),
        1,
        "only the header"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pocket"))
        .args([
            "reconcile",
            "--connector",
            "sandbox",
            "--date",
            &today,
            "--url",
            &s.url,
        ])
        .env("POCKET_ADMIN_KEY", crate::common::ADMIN_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"matched\":4"));
    // Bad questions.
    for (q, param) in [
        ("connector=sandbox", "date"),
        ("connector=sandbox&date=2026-02-30", "date"),
        ("connector=nope&date=2026-01-01", "connector"),
        (
            &*format!("connector=sandbox&date={today}&format=xml"),
            "format",
        ),
    ] {
        let r = s
            .get(
                &format!("/v1/admin/reconciliation?{q}"),
                crate::common::ADMIN_KEY,
            )
            .await;
        assert_eq!(
            (r.status.as_u16(), r.param()),
            (400, Some(param)),
            "{q}: {}",
            r.text
        );
    }
}

/// A retried top-up, withdrawal or payout is answered with the very status and body
/// of the first answer. (The record was written as `processing` before the bank was
/// asked, so a replay answered `201 processing` with `completed_at: null` to a request
/// first answered `201 succeeded`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_bank_operation_gets_the_answer_first_sent() {
    use reqwest::Method;
    let s = server().await;
    let (_, token) = s.customer("+8613800005201", 0).await;
    let card = s.bind_card(&token, "4242424242424242").await;
    let requests = [
        (
            "/v1/wallet/topups",
            token.clone(),
            json!({"amount": 10_000, "currency": "CNY", "card": card, "pin": "123456"}),
        ),
        (
            "/v1/wallet/withdrawals",
            token.clone(),
            json!({"amount": 2_500, "currency": "CNY", "card": card, "pin": "123456"}),
        ),
    ];
    for (path, auth, body) in requests {
        let key = format!("key-of-{path}");
        let first = s
            .call(
                Method::POST,
                path,
                Some(&auth),
                Some(body.clone()),
                Some(&key),
            )
            .await;
        assert_eq!(first.status, 201, "{}", first.text);
        assert_eq!(first.body["status"], "succeeded", "{}", first.text);
        let again = s
            .call(Method::POST, path, Some(&auth), Some(body), Some(&key))
            .await;
        assert_eq!(again.status, 201);
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.text, first.text, "{path}: the same body");
    }
    s.assert_balanced().await;
}

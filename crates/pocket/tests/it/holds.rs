//! Holds and capture through HTTP: a manual-capture payment confirmed is `authorized`
//! (the money reserved in the wallet), captured in full or in part, canceled, or
//! released by itself after `capture_before`; bad input changes nothing; parallel
//! captures end a hold once. The deadline races themselves run at the store level
//! under a manual clock (`crates/store/tests/it/holds.rs`).

use crate::common::{Server, all};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The wallet's CNY `(available, reserved)`.
async fn wallet(s: &Server, token: &str) -> (i64, i64) {
    let me = s.get("/v1/wallet/me", token).await;
    let b = me.body["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["currency"] == "CNY")
        .cloned()
        .unwrap_or(json!({"available": 0, "reserved": 0}));
    (
        b["available"].as_i64().unwrap(),
        b["reserved"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_hold_is_authorized_captured_in_part_and_refunded_within_what_was_captured() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Hotel").await;
    let (cus, token) = s.customer("+8613800000001", 10_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 8_000, "customer": cus, "capture": "manual", "capture_within": 3600}),
        )
        .await;
    assert_eq!(p["capture"], "manual");
    assert_eq!(p["capture_before"], json!(null));
    assert_eq!(p["amount_captured"], 0);
    let id = p["id"].as_str().unwrap();
    s.post(&format!("/v1/payments/{id}/capture"), &sk, json!({}))
        .await
        .assert_error(409, "payment_not_authorized");

    let r = s.confirm(&token, id, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "authorized");
    assert_eq!(r.body["completed_at"], json!(null));
    let before = r.body["capture_before"].as_str().unwrap();
    assert!(before.ends_with('Z'), "{before}");
    assert_eq!(wallet(&s, &token).await, (2_000, 8_000), "held, not moved");
    assert_eq!(s.merchant_balance(&sk, "CNY").await, 0);
    let events = s.get("/v1/events", &sk).await;
    assert_eq!(events.body["data"][0]["type"], "payment.authorized");

    // Bad captures change nothing.
    for (body, status, code) in [
        (
            json!({"amount": 8_001}),
            400,
            Some("capture_exceeds_authorization"),
        ),
        (json!({"amount": 0}), 400, None),
        (json!({"amount": "1"}), 400, None),
        (json!({"amount": 1, "extra": true}), 400, None),
    ] {
        let r = s
            .post(&format!("/v1/payments/{id}/capture"), &sk, body.clone())
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(
            r.body["error"]["type"], "invalid_request_error",
            "{body}: {}",
            r.text
        );
        if let Some(code) = code {
            assert_eq!(r.code(), code, "{body}: {}", r.text);
        }
    }
    let (other, other_sk) = s.merchant("Other").await;
    assert!(!other.is_empty());
    s.post(&format!("/v1/payments/{id}/capture"), &other_sk, json!({}))
        .await
        .assert_error(404, "resource_missing");
    assert_eq!(wallet(&s, &token).await, (2_000, 8_000));

    // Capture 6,000 of 8,000, retried with the same key: one capture.
    let capture = || async {
        s.call(
            Method::POST,
            &format!("/v1/payments/{id}/capture"),
            Some(&sk),
            Some(json!({"amount": 6_000})),
            Some("capture-1"),
        )
        .await
    };
    let first = capture().await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["status"], "succeeded");
    assert_eq!(first.body["amount_captured"], 6_000);
    let again = capture().await;
    assert_eq!(again.body, first.body, "a retry replays the capture");
    assert_eq!(wallet(&s, &token).await, (4_000, 0), "the rest released");
    assert_eq!(s.merchant_balance(&sk, "CNY").await, 6_000);
    s.post(
        &format!("/v1/payments/{id}/refunds"),
        &sk,
        json!({"amount": 6_001}),
    )
    .await
    .assert_error(409, "refund_exceeds_payment");
    let r = s
        .post(&format!("/v1/payments/{id}/refunds"), &sk, json!({}))
        .await;
    assert_eq!(r.body["amount"], 6_000, "{}", r.text);
    assert_eq!(wallet(&s, &token).await, (10_000, 0));
    s.assert_balanced().await;
}

#[tokio::test]
async fn creating_a_hold_checks_its_fields() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Hotel").await;
    for (body, param) in [
        (json!({"capture": "later"}), "capture"),
        (
            json!({"capture": "manual", "capture_within": 0}),
            "capture_within",
        ),
        (
            json!({"capture": "manual", "capture_within": 604_801}),
            "capture_within",
        ),
        (json!({"capture_within": 60}), "capture_within"),
        (
            json!({"capture": "automatic", "capture_within": 60}),
            "capture_within",
        ),
    ] {
        let mut b = json!({"currency": "CNY", "amount": 100});
        b.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let r = s.post("/v1/payments", &sk, b.clone()).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert_eq!(r.param(), Some(param), "{b}: {}", r.text);
    }
    let listed = s.get("/v1/payments", &sk).await;
    assert_eq!(listed.body["data"], json!([]), "nothing was created");
    // An automatic payment says what it is.
    let p = s
        .payment(&sk, json!({"currency": "CNY", "amount": 100}))
        .await;
    assert_eq!(p["capture"], "automatic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canceled_hold_is_released_and_parallel_captures_end_a_hold_once() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Hotel").await;
    let (cus, token) = s.customer("+8613800000002", 1_000).await;
    let hold = |amount: i64| {
        let (s, sk, cus, token) = (&s, &sk, &cus, &token);
        async move {
            let p = s
                .payment(sk, json!({"currency": "CNY", "amount": amount, "customer": cus, "capture": "manual"}))
                .await;
            let id = p["id"].as_str().unwrap().to_string();
            let r = s.confirm(token, &id, json!({})).await;
            assert_eq!(r.body["status"], "authorized", "{}", r.text);
            id
        }
    };
    let id = hold(600).await;
    // 400 left: a second hold of 600 is refused, its payment stays pending.
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 600, "customer": cus, "capture": "manual"}),
        )
        .await;
    s.confirm(&token, p["id"].as_str().unwrap(), json!({}))
        .await
        .assert_error(402, "insufficient_funds");
    let r = s
        .post(&format!("/v1/payments/{id}/cancel"), &sk, json!({}))
        .await;
    assert_eq!(r.body["status"], "canceled", "{}", r.text);
    assert_eq!(r.body["failure_code"], json!(null));
    assert_eq!(wallet(&s, &token).await, (1_000, 0));
    s.post(&format!("/v1/payments/{id}/capture"), &sk, json!({}))
        .await
        .assert_error(409, "payment_not_authorized");

    // 16 captures and cancels of one hold at once: one of them wins.
    let id = hold(500).await;
    let s = Arc::new(s);
    let answers = all(16, |i| {
        let (s, sk, id) = (s.clone(), sk.clone(), id.clone());
        async move {
            let what = if i % 4 == 3 { "cancel" } else { "capture" };
            let r = s
                .post(&format!("/v1/payments/{id}/{what}"), &sk, json!({}))
                .await;
            r.status.as_u16()
        }
    })
    .await;
    assert_eq!(
        answers.iter().filter(|&&st| st == 200).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|&st| st == 200 || st == 409),
        "{answers:?}"
    );
    let (available, reserved) = wallet(&s, &token).await;
    assert_eq!(reserved, 0);
    assert_eq!(available + s.merchant_balance(&sk, "CNY").await, 1_000);
    s.assert_balanced().await;
}

#[tokio::test]
async fn a_hold_left_alone_is_released_after_capture_before() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Hotel").await;
    let (cus, token) = s.customer("+8613800000003", 1_000).await;
    let p = s
        .payment(&sk, json!({"currency": "CNY", "amount": 700, "customer": cus, "capture": "manual", "capture_within": 1}))
        .await;
    let id = p["id"].as_str().unwrap();
    let r = s.confirm(&token, id, json!({})).await;
    assert_eq!(r.body["status"], "authorized", "{}", r.text);
    assert_eq!(wallet(&s, &token).await, (300, 700));
    let started = Instant::now();
    loop {
        let got = s.get(&format!("/v1/payments/{id}"), &sk).await;
        if got.body["status"] == "canceled" {
            assert_eq!(got.body["failure_code"], "capture_expired");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not released in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(wallet(&s, &token).await, (1_000, 0));
    s.post(&format!("/v1/payments/{id}/capture"), &sk, json!({}))
        .await
        .assert_error(409, "capture_expired");
    let events = s.get("/v1/events", &sk).await;
    assert_eq!(events.body["data"][0]["type"], "payment.canceled");
    s.assert_balanced().await;
}

/// The sum of a merchant's balance transactions created at or after `since` (RFC 3339).
async fn moved_since(s: &Server, sk: &str, since_ms: i64) -> i64 {
    let moves = s.get("/v1/balance/transactions?limit=100", sk).await;
    moves.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            let at =
                chrono::DateTime::parse_from_rfc3339(m["created_at"].as_str().unwrap()).unwrap();
            at.timestamp_millis() >= since_ms
        })
        .map(|m| m["amount"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn takings_are_what_reached_the_balance_a_hold_as_captured_less_refunds() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Takings Hotel").await;
    let (cus, token) = s.customer("+8613800000091", 20_000).await;
    let start_ms = crate::common::now_ms() - 1_000;
    let held = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 5_697, "customer": cus, "capture": "manual"}),
        )
        .await;
    let held = held["id"].as_str().unwrap();
    assert_eq!(s.confirm(&token, held, json!({})).await.status, 200);
    let r = s
        .post(
            &format!("/v1/payments/{held}/capture"),
            &sk,
            json!({"amount": 4_000}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let paid = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 1_000, "customer": cus}),
        )
        .await;
    let paid = paid["id"].as_str().unwrap();
    assert_eq!(s.confirm(&token, paid, json!({})).await.status, 200);
    let r = s
        .post(
            &format!("/v1/payments/{paid}/refunds"),
            &sk,
            json!({"amount": 300}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Created, confirmed and never captured: nothing reached the balance.
    let open = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 700, "customer": cus, "capture": "manual"}),
        )
        .await;
    assert_eq!(
        s.confirm(&token, open["id"].as_str().unwrap(), json!({}))
            .await
            .status,
        200
    );

    let from = pocket_core::time::rfc3339_ms(start_ms);
    let url = format!("/v1/balance/takings?from={from}&interval=hour&utc_offset=480");
    let t = s.get(&url.replace('+', "%2B"), &sk).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.body["object"], "takings");
    assert_eq!(t.body["interval"], "hour");
    assert_eq!(t.body["utc_offset"], 480);
    let cny = &t.body["currencies"][0];
    assert_eq!(cny["currency"], "CNY");
    assert_eq!(
        (
            cny["received"].as_i64(),
            cny["refunded"].as_i64(),
            cny["net"].as_i64()
        ),
        (Some(5_000), Some(300), Some(4_700))
    );
    assert_eq!(
        (cny["payments"].as_i64(), cny["refunds"].as_i64()),
        (Some(2), Some(1))
    );
    // The balance and its transactions say the same.
    assert_eq!(
        cny["net"].as_i64().unwrap(),
        moved_since(&s, &sk, start_ms).await
    );
    assert_eq!(s.merchant_balance(&sk, "CNY").await, 4_700);
    let intervals = cny["intervals"].as_array().unwrap();
    let sum: i64 = intervals.iter().map(|i| i["net"].as_i64().unwrap()).sum();
    assert_eq!(sum, 4_700);
    for i in intervals {
        let start = chrono::DateTime::parse_from_rfc3339(i["start"].as_str().unwrap()).unwrap();
        assert_eq!(start.timestamp_millis() % 3_600_000, 0, "{i}");
    }
    // By day from a local midnight (UTC+8): one interval, starting there.
    let day = s
        .get("/v1/balance/takings?from=2026-01-01T00:00:00%2B08:00&to=2026-01-02T00:00:00%2B08:00&utc_offset=480", &sk)
        .await;
    assert_eq!(day.status, 200, "{}", day.text);
    assert_eq!(day.body["currencies"], json!([]), "nothing in that day");
    // Another merchant sees none of it.
    let (_, other) = s.merchant("Elsewhere").await;
    let t = s
        .get(
            &format!("/v1/balance/takings?from={}", from.replace('+', "%2B")),
            &other,
        )
        .await;
    assert_eq!(t.body["currencies"], json!([]));
}

#[tokio::test]
async fn takings_refuse_what_they_cannot_answer() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Takings Bad Input").await;
    for (query, status, code, param) in [
        ("", 400, "parameter_missing", "from"),
        ("?from=yesterday", 400, "parameter_invalid", "from"),
        ("?from=2026-12-03", 400, "parameter_invalid", "from"),
        (
            "?from=2026-12-03T00:00:00Z&to=2026-12-02T00:00:00Z",
            400,
            "parameter_invalid",
            "to",
        ),
        (
            "?from=2026-12-03T00:00:00Z&to=2026-12-03T00:00:00Z",
            400,
            "parameter_invalid",
            "to",
        ),
        (
            "?from=2026-12-03T00:00:00Z&interval=week",
            400,
            "parameter_invalid",
            "interval",
        ),
        (
            "?from=2026-12-03T00:00:00Z&utc_offset=900",
            400,
            "parameter_invalid",
            "utc_offset",
        ),
        (
            "?from=2026-12-03T00:00:00Z&utc_offset=8h",
            400,
            "parameter_invalid",
            "utc_offset",
        ),
        (
            "?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "parameter_invalid",
            "from",
        ),
        (
            "?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&interval=hour",
            400,
            "parameter_invalid",
            "from",
        ),
        (
            "?from=2026-12-03T00:00:00Z&limit=3",
            400,
            "parameter_invalid",
            "query",
        ),
    ] {
        let r = s.get(&format!("/v1/balance/takings{query}"), &sk).await;
        r.assert_error(status, code);
        assert_eq!(r.param(), Some(param), "{query}: {}", r.text);
    }
    let r = s
        .get(
            "/v1/balance/takings?from=2026-12-03T00:00:00Z",
            "sk_nothing",
        )
        .await;
    assert_eq!(r.status, 401);
}

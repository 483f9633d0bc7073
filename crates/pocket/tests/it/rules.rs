//! Risk rules (CEL) and daily limits through HTTP: each action, a rule added while a
//! payment is pending applies to its confirm, parallel confirms against a daily limit,
//! invalid expressions refused with the parser's message.

use crate::common::{ADMIN_KEY, Options, Server, all};
use serde_json::{Value, json};
use std::sync::Arc;

async fn add_rule(s: &Server, name: &str, when: &str, action: &str) -> Value {
    let r = s
        .post(
            "/v1/admin/rules",
            ADMIN_KEY,
            json!({"name": name, "when": when, "action": action}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

#[tokio::test]
async fn rules_are_added_listed_removed_and_invalid_ones_refused() {
    let s = Server::start().await;
    let rule = add_rule(&s, "big", "payment.amount > 100000", "require_pin").await;
    assert_eq!(rule["object"], "rule");
    assert_eq!(rule["action"], "require_pin");
    assert!(rule["id"].as_str().unwrap().starts_with("rule_"));
    for (body, param, code) in [
        (
            json!({"name": "x", "when": "payment.amount >", "action": "block"}),
            "when",
            "rule_invalid",
        ),
        (
            json!({"name": "x", "when": "payment.amout > 1", "action": "block"}),
            "when",
            "rule_invalid",
        ),
        (
            json!({"name": "x", "when": "payment.amount + 1", "action": "block"}),
            "when",
            "rule_invalid",
        ),
        // A misspelt field behind a branch a sample payment would not take.
        (
            json!({"name": "x", "when": "payment.currency == 'CNY' || payment.amout > 5", "action": "block"}),
            "when",
            "rule_invalid",
        ),
        // Macros could keep the writer busy for hours.
        (
            json!({"name": "x", "when": "[1, 2, 3].all(i, i > payment.amount)", "action": "block"}),
            "when",
            "rule_invalid",
        ),
        (
            json!({"name": "x", "when": "payment.currency == '\u{0}'", "action": "block"}),
            "when",
            "rule_invalid",
        ),
        (
            json!({"name": "x", "when": "true", "action": "allow"}),
            "action",
            "parameter_invalid",
        ),
        (
            json!({"name": "", "when": "true", "action": "block"}),
            "name",
            "parameter_invalid",
        ),
    ] {
        let r = s.post("/v1/admin/rules", ADMIN_KEY, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(
            (r.code(), r.param()),
            (code, Some(param)),
            "{body}: {}",
            r.text
        );
    }
    let r = s
        .post(
            "/v1/admin/rules",
            ADMIN_KEY,
            json!({"name": "x", "when": "payment.amount >", "action": "block"}),
        )
        .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("parse"),
        "{}",
        r.text
    );
    let (_, sk) = s.merchant("M").await;
    s.post(
        "/v1/admin/rules",
        &sk,
        json!({"name": "x", "when": "true", "action": "block"}),
    )
    .await
    .assert_error(401, "invalid_api_key");
    let listed = s.get("/v1/admin/rules", ADMIN_KEY).await;
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        listed.text
    );
    let id = rule["id"].as_str().unwrap();
    let r = s
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/admin/rules/{id}"),
            Some(ADMIN_KEY),
            None,
            None,
        )
        .await;
    assert_eq!(r.body["deleted"], true, "{}", r.text);
    let r = s
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/admin/rules/{id}"),
            Some(ADMIN_KEY),
            None,
            None,
        )
        .await;
    r.assert_error(404, "resource_missing");
    assert_eq!(
        s.get("/v1/admin/rules", ADMIN_KEY).await.body["data"],
        json!([])
    );
}

#[tokio::test]
async fn block_and_raise_at_creation_and_a_rule_added_later_applies_to_the_confirm() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000011", 100_000).await;
    // A payment created before any rule, still pending when one arrives.
    let early = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 5_000, "customer": cus}),
        )
        .await;
    assert_eq!(early["policy"]["authentication"], "none");
    add_rule(&s, "no usd", "payment.currency == 'USD'", "block").await;
    add_rule(&s, "pin over 40", "payment.amount > 4000", "require_pin").await;
    add_rule(
        &s,
        "busy",
        "customer.payments_last_hour >= 2",
        "require_pin_and_device",
    )
    .await;

    // Block at creation: nothing is created.
    let r = s
        .post(
            "/v1/payments",
            &sk,
            json!({"currency": "USD", "amount": 100, "customer": cus}),
        )
        .await;
    r.assert_error(402, "payment_blocked");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no usd")
    );
    // Raise at creation: the policy says so and names the rule.
    let raised = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 4_500, "customer": cus}),
        )
        .await;
    assert_eq!(
        raised["policy"],
        json!({"tier": "small", "window_seconds": 300, "authentication": "pin", "rule": "pin over 40"})
    );
    let id = raised["id"].as_str().unwrap();
    s.confirm(&token, id, json!({}))
        .await
        .assert_error(401, "pin_required");
    let r = s.confirm(&token, id, json!({"pin": "123456"})).await;
    assert_eq!(r.body["status"], "succeeded", "{}", r.text);

    // The payment made before the rules: its confirm is checked against them now, and
    // the raise is recorded with its success.
    let id = early["id"].as_str().unwrap();
    s.confirm(&token, id, json!({}))
        .await
        .assert_error(401, "pin_required");
    let r = s.confirm(&token, id, json!({"pin": "123456"})).await;
    assert_eq!(r.body["status"], "succeeded", "{}", r.text);
    assert_eq!(r.body["policy"]["rule"], "pin over 40", "{}", r.text);
    assert_eq!(r.body["policy"]["authentication"], "pin");

    // Two payments this hour: the third needs the device key too. A rule that reads
    // the customer does not show at creation (that would tell the merchant about the
    // customer); the confirm asks for the PIN, then for the device key.
    let third = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": cus}),
        )
        .await;
    assert_eq!(third["policy"]["authentication"], "none");
    let id = third["id"].as_str().unwrap();
    s.confirm(&token, id, json!({}))
        .await
        .assert_error(401, "pin_required");
    s.confirm(&token, id, json!({"pin": "123456"}))
        .await
        .assert_error(401, "device_signature_required");
    let unchanged = s.get(&format!("/v1/payments/{id}"), &sk).await.body;
    assert_eq!(unchanged["status"], "pending");
    assert_eq!(
        unchanged["policy"]["authentication"], "none",
        "a refused confirm changes nothing"
    );
    s.assert_balanced().await;
}

#[tokio::test]
async fn a_block_rule_added_while_pending_stops_the_confirm_and_changes_nothing() {
    let s = Server::start().await;
    let (merchant, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000012", 10_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 1_000, "customer": cus}),
        )
        .await;
    add_rule(
        &s,
        "this shop",
        &format!("payment.merchant == '{merchant}'"),
        "block",
    )
    .await;
    let id = p["id"].as_str().unwrap();
    let r = s.confirm(&token, id, json!({})).await;
    r.assert_error(402, "payment_blocked");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this shop")
    );
    let after = s.get(&format!("/v1/payments/{id}"), &sk).await.body;
    assert_eq!(after["status"], "pending");
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000);
}

/// 20 confirms at once against a daily limit that allows 10 of them: exactly 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_confirms_against_a_daily_limit_pass_exactly_up_to_it() {
    let s = Arc::new(
        Server::start_options(Options {
            config: Some("[limits]\ncustomer_daily_spend = { CNY = 10000 }\n".into()),
            ..Default::default()
        })
        .await,
    );
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000013", 100_000).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let p = s
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 1_000, "customer": cus}),
            )
            .await;
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    let replies = all(20, |i| {
        let (s, token, id) = (s.clone(), token.clone(), ids[i].clone());
        async move {
            let r = s.confirm(&token, &id, json!({})).await;
            (r.status.as_u16(), r.code().to_string())
        }
    })
    .await;
    let ok = replies.iter().filter(|(st, _)| *st == 200).count();
    let refused = replies
        .iter()
        .filter(|r| **r == (402, "limit_exceeded".to_string()))
        .count();
    assert_eq!((ok, refused), (10, 10), "{replies:?}");
    assert_eq!(s.wallet_balance(&token, "CNY").await, 90_000);
    // What is left is nothing: a new payment is created (the limit is not told to the
    // merchant at creation) and refused when confirmed; so is a hold.
    for capture in ["automatic", "manual"] {
        let p = s
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 1, "customer": cus, "capture": capture}),
            )
            .await;
        s.confirm(&token, p["id"].as_str().unwrap(), json!({}))
            .await
            .assert_error(402, "limit_exceeded");
    }
    // Other currencies have no limit.
    s.topup(&cus, 1_000, "USD").await;
    let usd = s
        .payment(
            &sk,
            json!({"currency": "USD", "amount": 500, "customer": cus}),
        )
        .await;
    let r = s
        .confirm(&token, usd["id"].as_str().unwrap(), json!({}))
        .await;
    assert_eq!(r.body["status"], "succeeded", "{}", r.text);
    s.assert_balanced().await;
}

/// An open payment (the QR-code flow) meets the rules that read the customer when a
/// customer confirms it: one customer's block does not stop another.
#[tokio::test]
async fn an_open_payment_is_screened_for_whoever_confirms_it() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (busy, busy_token) = s.customer("+8613800000014", 10_000).await;
    let (_, other_token) = s.customer("+8613800000015", 10_000).await;
    add_rule(
        &s,
        "one an hour",
        "customer.payments_last_hour >= 1",
        "block",
    )
    .await;
    // The busy wallet has paid once this hour; the other has not.
    let first = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": busy}),
        )
        .await;
    let r = s
        .confirm(&busy_token, first["id"].as_str().unwrap(), json!({}))
        .await;
    assert_eq!(r.body["status"], "succeeded", "{}", r.text);
    let open = s
        .payment(&sk, json!({"currency": "CNY", "amount": 100}))
        .await;
    assert_eq!(open["policy"]["authentication"], "none");
    let id = open["id"].as_str().unwrap();
    s.confirm(&busy_token, id, json!({}))
        .await
        .assert_error(402, "payment_blocked");
    let r = s.confirm(&other_token, id, json!({})).await;
    assert_eq!(r.body["status"], "succeeded", "{}", r.text);
    assert!(r.body["policy"].get("rule").is_none(), "{}", r.text);
    s.assert_balanced().await;
}

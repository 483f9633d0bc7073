//! Bank cards through the sandbox connector: every card of the contract's table that
//! matters for binding, the contract's errors, limits under parallel requests, and
//! the number and CVC found nowhere on disk or in a trace-level log.

use crate::common::{Options, Server, all, card};
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn binding_cards_follows_the_contract() {
    let s = Server::start().await;
    let (_, token) = s.customer("+8613800004001", 0).await;
    let r = s
        .post("/v1/wallet/cards", &token, card("4242 4242 4242 4242"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["object"], "card");
    assert_eq!(r.body["brand"], "visa");
    assert_eq!(r.body["last4"], "4242");
    assert_eq!(r.body["connector"], "sandbox");
    assert!(r.body["id"].as_str().unwrap().starts_with("card_"));
    assert!(
        !r.text.contains("4242424242424242") && !r.text.contains("987"),
        "{}",
        r.text
    );
    let id = r.body["id"].as_str().unwrap().to_string();
    s.post("/v1/wallet/cards", &token, card("4242424242424242"))
        .await
        .assert_error(409, "card_already_bound");
    s.post("/v1/wallet/cards", &token, card("4242424242424241"))
        .await
        .assert_error(400, "card_number_invalid");
    let mut expired = card("5555555555554444");
    expired["exp_year"] = json!(2020);
    s.post("/v1/wallet/cards", &token, expired)
        .await
        .assert_error(400, "card_expired");
    let r = s
        .post("/v1/wallet/cards", &token, card("4000000000000069"))
        .await;
    r.assert_error(402, "card_declined");
    assert_eq!(r.body["error"]["decline_code"], "expired_card");
    let mut wrong_pin = card("5555555555554444");
    wrong_pin["pin"] = json!("000000");
    s.post("/v1/wallet/cards", &token, wrong_pin)
        .await
        .assert_error(401, "incorrect_pin");
    let list = s.get("/v1/wallet/cards", &token).await;
    assert_eq!(list.body["object"], "list");
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    let r = s
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/wallet/cards/{id}"),
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        s.get("/v1/wallet/cards", &token).await.body["data"],
        json!([])
    );
    // Unbound, the card may be bound again.
    let again = s
        .post("/v1/wallet/cards", &token, card("4242424242424242"))
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    // Another wallet cannot see or remove it.
    let (_, other) = s.customer("+8613800004002", 0).await;
    let r = s
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/wallet/cards/{}", again.body["id"].as_str().unwrap()),
            Some(&other),
            None,
            None,
        )
        .await;
    r.assert_error(404, "resource_missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_five_cards_whatever_the_concurrency() {
    let s = Arc::new(Server::start().await);
    let (_, token) = s.customer("+8613800004101", 0).await;
    // Ten different valid numbers (Visa test range, Luhn-completed).
    let numbers = crate::common::card_numbers(10);
    // Three bound one by one, then five at once (the PIN guard lets five checks run
    // together): exactly two more fit.
    for n in &numbers[..3] {
        let r = s.post("/v1/wallet/cards", &token, card(n)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let replies = all(5, |i| {
        let (s, token, n) = (s.clone(), token.clone(), numbers[3 + i].clone());
        async move {
            let r = s.post("/v1/wallet/cards", &token, card(&n)).await;
            (r.status.as_u16(), r.code().to_string())
        }
    })
    .await;
    let bound = replies.iter().filter(|r| r.0 == 201).count();
    let refused = replies
        .iter()
        .filter(|r| *r == &(409, "too_many_cards".to_string()))
        .count();
    assert_eq!((bound, refused), (2, 3), "{replies:?}");
    assert_eq!(
        s.get("/v1/wallet/cards", &token).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn card_numbers_are_never_stored_nor_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trace.log");
    let s = Server::start_options(Options {
        args: vec!["--sandbox".into()],
        env: vec![
            ("POCKET_LOG".into(), "trace".into()),
            ("POCKET_LOG_FORMAT".into(), "json".into()),
        ],
        log_file: Some(log.clone()),
        ..Options::default()
    })
    .await;
    let (_, token) = s.customer("+8613800004201", 0).await;
    let number = "6200000000000005";
    let mut body = card(number);
    body["cvc"] = json!("864");
    let r = s.post("/v1/wallet/cards", &token, body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // A declined one and an idempotent one too.
    s.post("/v1/wallet/cards", &token, card("4000000000000069"))
        .await;
    s.call(
        reqwest::Method::POST,
        "/v1/wallet/cards",
        Some(&token),
        Some(card("5555555555554444")),
        Some("bind-1"),
    )
    .await;
    let mut searched = 0;
    let mut stored = vec![(
        log.display().to_string(),
        std::fs::read(&log).unwrap_or_default(),
    )];
    for entry in std::fs::read_dir(s.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        stored.push((
            path.display().to_string(),
            std::fs::read(&path).unwrap_or_default(),
        ));
    }
    // On PostgreSQL, the data directory only holds keys: search the database itself.
    stored.extend(s.stored_bytes());
    for (what, bytes) in stored {
        searched += bytes.len();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [
            number,
            "4000000000000069",
            "5555555555554444",
            "\"cvc\":\"864\"",
            "\"cvc\":\"987\"",
        ] {
            assert!(!text.contains(secret), "{what} holds {secret}");
        }
    }
    assert!(searched > 10_000, "{searched} bytes searched");
}

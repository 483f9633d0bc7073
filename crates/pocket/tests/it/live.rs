//! Results as they happen: the wallet's event stream (SSE) and the merchant's
//! long-poll, against the real server.

use crate::common::Server;
use crate::common::sse::SseReader;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn open_stream(s: &Server, token: &str, last_event_id: Option<&str>) -> SseReader {
    let mut req = s
        .client
        .get(format!("{}/v1/wallet/events", s.url))
        .bearer_auth(token)
        .timeout(Duration::from_secs(600));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader::new(resp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_reaches_the_open_wallet_within_100_ms() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000001", 100_000).await;
    let (_, other_token) = s.customer("+8613800000002", 0).await;
    let mut stream = open_stream(&s, &token, None).await;
    let mut other = open_stream(&s, &other_token, None).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        let sent = Instant::now();
        let p = s
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 100 + i, "customer": cus}),
            )
            .await;
        let e = stream.next(Duration::from_secs(2)).await.expect("event");
        let latency = sent.elapsed();
        worst = worst.max(latency);
        assert_eq!(e.event, "payment.created");
        let data: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(data["data"]["object"]["id"], p["id"]);
        assert_eq!(e.id, data["id"].as_str().unwrap());
    }
    // The creating request's own round trip is included, so this is an upper bound.
    assert!(
        worst < Duration::from_millis(100),
        "slowest push took {worst:?}"
    );
    // Every later change follows.
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 999, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    stream.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(s.confirm(&token, id, json!({})).await.status, 200);
    let e = stream.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(e.event, "payment.succeeded");
    // Another customer's stream saw none of it.
    assert!(other.next(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn a_reconnecting_client_misses_nothing() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000003", 100_000).await;
    let mut stream = open_stream(&s, &token, None).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.payment(
        &sk,
        json!({"currency": "CNY", "amount": 100, "customer": cus}),
    )
    .await;
    let first = stream.next(Duration::from_secs(2)).await.unwrap();
    drop(stream);
    // While disconnected: three more events.
    let mut ids = vec![];
    for i in 0..3 {
        ids.push(
            s.payment(
                &sk,
                json!({"currency": "CNY", "amount": 200 + i, "customer": cus}),
            )
            .await["id"]
                .clone(),
        );
    }
    let mut again = open_stream(&s, &token, Some(&first.id)).await;
    for id in ids {
        let e = again.next(Duration::from_secs(2)).await.expect("replayed");
        let data: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(data["data"]["object"]["id"], id);
    }
    assert!(
        again.next(Duration::from_millis(300)).await.is_none(),
        "nothing twice"
    );
    // An id that is not this wallet's is refused.
    let r = s
        .client
        .get(format!("{}/v1/wallet/events", s.url))
        .bearer_auth(&token)
        .header("Last-Event-ID", "evt_AAAAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn browsers_use_single_use_tickets() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000004", 0).await;
    let r = s
        .call(
            Method::POST,
            "/v1/wallet/events/tickets",
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ticket = r.body["ticket"].as_str().unwrap().to_string();
    let resp = s
        .client
        .get(format!("{}/v1/wallet/events?ticket={ticket}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = SseReader::new(resp);
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.payment(
        &sk,
        json!({"currency": "CNY", "amount": 100, "customer": cus}),
    )
    .await;
    assert_eq!(
        stream.next(Duration::from_secs(2)).await.unwrap().event,
        "payment.created"
    );
    // Used once: refused the second time; garbage and no credential are refused too.
    for url in [
        format!("/v1/wallet/events?ticket={ticket}"),
        "/v1/wallet/events?ticket=stk_nope".into(),
        "/v1/wallet/events".into(),
    ] {
        let r = s.call(Method::GET, &url, None, None, None).await;
        r.assert_error(401, "invalid_token");
    }
    // A merchant key is not a wallet credential.
    s.call(
        Method::POST,
        "/v1/wallet/events/tickets",
        Some(&sk),
        None,
        None,
    )
    .await
    .assert_error(401, "invalid_token");
}

#[tokio::test]
async fn long_poll_answers_when_the_payment_changes() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("M").await;
    let (cus, token) = s.customer("+8613800000005", 100_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    let poll = {
        let (client, url, sk, id) = (s.client.clone(), s.url.clone(), sk.clone(), id.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let r = client
                .get(format!("{url}/v1/payments/{id}?wait=30"))
                .bearer_auth(sk)
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            (body, Instant::now(), started)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let confirmed = Instant::now();
    assert_eq!(s.confirm(&token, &id, json!({})).await.status, 200);
    let (body, answered, started) = poll.await.unwrap();
    assert_eq!(body["status"], "succeeded");
    assert!(
        answered - started >= Duration::from_millis(250),
        "it waited"
    );
    assert!(
        answered.duration_since(confirmed) < Duration::from_millis(500),
        "and answered at once"
    );
    // A pending payment comes back as it is after `wait` seconds.
    let q = s
        .payment(&sk, json!({"currency": "CNY", "amount": 100}))
        .await;
    let started = Instant::now();
    let r = s
        .get(
            &format!("/v1/payments/{}?wait=1", q["id"].as_str().unwrap()),
            &sk,
        )
        .await;
    assert_eq!(r.body["status"], "pending");
    assert!(started.elapsed() >= Duration::from_millis(950));
    s.get(&format!("/v1/payments/{id}?wait=61"), &sk)
        .await
        .assert_error(400, "parameter_invalid");
    s.get(&format!("/v1/payments/{id}?wait=soon"), &sk)
        .await
        .assert_error(400, "parameter_invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_open_streams_within_a_second() {
    let s = Server::start().await;
    let (_, token) = s.customer("+8613800000041", 0).await;
    // One stream by header, one by a ticket the same session took.
    let mut by_header = open_stream(&s, &token, None).await;
    let r = s
        .call(
            Method::POST,
            "/v1/wallet/events/tickets",
            Some(&token),
            None,
            None,
        )
        .await;
    let ticket = r.body["ticket"].as_str().unwrap().to_string();
    let resp = s
        .client
        .get(format!("{}/v1/wallet/events?ticket={ticket}", s.url))
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut by_ticket = SseReader::new(resp);
    assert!(
        !by_header.ends_within(Duration::from_millis(1500)).await,
        "open while signed in"
    );
    let out = s
        .call(
            Method::DELETE,
            "/v1/wallet/sessions/current",
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(out.status, 204);
    let started = Instant::now();
    assert!(
        by_header.ends_within(Duration::from_secs(3)).await,
        "header stream outlived sign-out"
    );
    assert!(
        by_ticket.ends_within(Duration::from_secs(3)).await,
        "ticket stream outlived sign-out"
    );
    eprintln!("streams ended {:?} after sign-out", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_key_ends_its_long_polls() {
    let s = Server::start().await;
    let (mer, sk) = s.merchant("M").await;
    let p = s
        .payment(&sk, json!({"currency": "CNY", "amount": 100}))
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    let poll = {
        let (client, url, sk) = (s.client.clone(), s.url.clone(), sk.clone());
        tokio::spawn(async move {
            let r = client
                .get(format!("{url}/v1/payments/{id}?wait=30"))
                .bearer_auth(sk)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rolled = s
        .post(
            &format!("/v1/admin/merchants/{mer}/keys"),
            crate::common::ADMIN_KEY,
            json!({}),
        )
        .await;
    assert_eq!(rolled.status, 201, "{}", rolled.text);
    let rolled_at = Instant::now();
    let (status, at) = poll.await.unwrap();
    assert_eq!(status, 401, "the long-poll ends with the key");
    assert!(at.duration_since(rolled_at) < Duration::from_secs(3));
}

#[tokio::test]
async fn a_ticket_dies_with_the_session_that_took_it() {
    let s = Server::start().await;
    let (_, token) = s.customer("+8613800000042", 0).await;
    let r = s
        .call(
            Method::POST,
            "/v1/wallet/events/tickets",
            Some(&token),
            None,
            None,
        )
        .await;
    let ticket = r.body["ticket"].as_str().unwrap().to_string();
    let out = s
        .call(
            Method::DELETE,
            "/v1/wallet/sessions/current",
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(out.status, 204);
    let resp = s
        .client
        .get(format!("{}/v1/wallet/events?ticket={ticket}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

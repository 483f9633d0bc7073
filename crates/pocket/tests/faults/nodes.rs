//! Several `pocket serve` nodes on one PostgreSQL database, no node special: what
//! one node writes reaches streams and long-polls held by another through `LISTEN`
//! (not polling), a signed-out session or a rolled key stops working on every node
//! at once, every limit holds with requests spread round-robin over the nodes, and
//! the sweepers and pollers that run on every node never expire or deliver twice.
//!
//! These run in the PostgreSQL pass (`POCKET_TEST_ENGINE=postgres`); SQLite is one
//! process on one machine, so they say so and pass there.

use crate::common::receiver::{Answer, Receiver};
use crate::common::sse::SseReader;
use crate::common::{ADMIN_KEY, Options, Server};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

async fn nodes(n: usize) -> Option<Vec<Server>> {
    nodes_with(n, vec![]).await
}

/// Nodes that hold every second write batch 40 ms before its COMMIT (the test hook in
/// engine/writer.rs), so the window between a rule's reads and its commit is wide.
async fn nodes_delayed(n: usize) -> Option<Vec<Server>> {
    nodes_with(n, held_commits()).await
}

fn held_commits() -> Vec<(String, String)> {
    vec![("POCKET_TEST_DELAY_COMMITS".into(), "2:40".into())]
}

async fn nodes_with(n: usize, env: Vec<(String, String)>) -> Option<Vec<Server>> {
    if !pocket_store::testing::on_postgres() {
        eprintln!("SKIPPED on SQLite: several nodes share a PostgreSQL database");
        return None;
    }
    Some(
        Server::start_nodes(
            n,
            Options {
                args: vec!["--sandbox".into()],
                env,
                ..Options::default()
            },
        )
        .await,
    )
}

async fn open_stream(s: &Server, token: &str) -> SseReader {
    let resp = s
        .client
        .get(format!("{}/v1/wallet/events", s.url))
        .bearer_auth(token)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    SseReader::new(resp)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_one_node_writes_reaches_streams_and_long_polls_on_another() {
    let Some(n) = nodes(3).await else { return };
    let (_, sk) = n[0].merchant("M").await;
    let (cus, token) = n[1].customer("+8613800010001", 1_000_000).await;
    let mut stream = open_stream(&n[1], &token).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Created on node 0, pushed by node 1.
    let mut pushes = Vec::new();
    for i in 0..20 {
        let sent = Instant::now();
        let p = n[0]
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 100 + i, "customer": cus}),
            )
            .await;
        let e = stream.next(Duration::from_secs(3)).await.expect("event");
        pushes.push(sent.elapsed());
        assert_eq!(e.event, "payment.created");
        let data: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(data["data"]["object"]["id"], p["id"]);
    }
    let worst = *pushes.iter().max().unwrap();
    eprintln!(
        "node 0 -> stream on node 1: median {:?}, worst {worst:?} (20 payments, the creating request included)",
        median(pushes.clone())
    );
    assert!(
        median(pushes) < Duration::from_millis(100),
        "pushes across nodes are not prompt"
    );

    // A long-poll on node 1 wakes when node 2 confirms.
    let mut wakes = Vec::new();
    for i in 0..5 {
        let p = n[0]
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 500 + i, "customer": cus}),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        let poll = {
            let (client, url, sk, id) = (
                n[1].client.clone(),
                n[1].url.clone(),
                sk.clone(),
                id.clone(),
            );
            tokio::spawn(async move {
                let r = client
                    .get(format!("{url}/v1/payments/{id}?wait=30"))
                    .bearer_auth(&sk)
                    .send()
                    .await
                    .unwrap();
                let body: Value = r.json().await.unwrap();
                (Instant::now(), body)
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(n[2].confirm(&token, &id, json!({})).await.status, 200);
        let confirmed = Instant::now();
        let (woke, body) = poll.await.unwrap();
        assert_eq!(body["status"], "succeeded");
        wakes.push(woke.saturating_duration_since(confirmed));
    }
    let worst = *wakes.iter().max().unwrap();
    eprintln!(
        "confirm on node 2 -> long-poll on node 1 answered: worst {worst:?} after the confirm's answer"
    );
    // The long-poll's fallback look is once a second: waking sooner is the notification.
    assert!(
        worst < Duration::from_millis(500),
        "long-poll woke by polling"
    );
    for s in &n {
        s.assert_balanced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_out_session_or_a_rolled_key_stops_on_every_node_at_once() {
    let Some(n) = nodes(3).await else { return };
    let (id, sk) = n[0].merchant("M").await;
    let (_, token) = n[0].customer("+8613800010002", 0).await;
    for s in &n {
        assert_eq!(s.get("/v1/wallet/me", &token).await.status, 200);
        assert_eq!(s.get("/v1/balance", &sk).await.status, 200);
    }
    let mut stream = open_stream(&n[1], &token).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signed_out = Instant::now();
    let r = n[2]
        .call(
            Method::DELETE,
            "/v1/wallet/sessions/current",
            Some(&token),
            None,
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    for s in &n {
        s.get("/v1/wallet/me", &token)
            .await
            .assert_error(401, "invalid_token");
    }
    assert!(
        stream.ends_within(Duration::from_secs(3)).await,
        "a stream on another node outlived the sign-out"
    );
    let ended = signed_out.elapsed();

    // A long-poll on node 1 holding the merchant key that node 0 rolls now.
    let (cus, _) = n[0].customer("+8613800010012", 0).await;
    let p = n[0]
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": cus}),
        )
        .await;
    let poll = {
        let (client, url, sk) = (n[1].client.clone(), n[1].url.clone(), sk.clone());
        let id = p["id"].as_str().unwrap().to_string();
        tokio::spawn(async move {
            let r = client
                .get(format!("{url}/v1/payments/{id}?wait=30"))
                .bearer_auth(&sk)
                .send()
                .await
                .unwrap();
            (Instant::now(), r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rolled_at = Instant::now();
    let r = n[0]
        .post(
            &format!("/v1/admin/merchants/{id}/keys"),
            ADMIN_KEY,
            json!({}),
        )
        .await;
    let (answered, status) = poll.await.unwrap();
    let poll_ended = answered.saturating_duration_since(rolled_at);
    eprintln!(
        "sign-out on node 2 -> stream on node 1 ended after {ended:?}; key rolled on node 0 -> \
         long-poll on node 1 answered {status} after {poll_ended:?}"
    );
    assert_eq!(status, 401);
    // Both are woken by the database's notification, not by their 1-s look.
    assert!(ended < Duration::from_millis(500), "{ended:?}");
    assert!(poll_ended < Duration::from_millis(500), "{poll_ended:?}");
    assert_eq!(r.status, 201, "{}", r.text);
    let new = r.body["secret_key"].as_str().unwrap().to_string();
    for s in &n {
        s.get("/v1/balance", &sk)
            .await
            .assert_error(401, "invalid_api_key");
        assert_eq!(s.get("/v1/balance", &new).await.status, 200);
    }
}

/// Wrong PINs checked by all nodes together.
async fn pins_checked(n: &[Server]) -> u64 {
    let mut total = 0;
    for s in n {
        total += s.pins_checked().await;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_limit_holds_with_requests_spread_over_three_nodes() {
    let Some(n) = nodes(3).await else { return };
    every_limit_holds(n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_limit_holds_over_three_nodes_with_commits_held() {
    let Some(n) = nodes_delayed(3).await else {
        return;
    };
    every_limit_holds(n).await;
}

/// Confirms of one payment, a wallet's balance, a payment's refunds and a wallet's
/// PIN, each attacked at once over three nodes.
async fn every_limit_holds(n: Vec<Server>) {
    let n = std::sync::Arc::new(n);
    let (_, sk) = n[0].merchant("M").await;

    // One payment, 60 confirms at once over three nodes: one succeeds.
    let (cus, token) = n[1].customer("+8613800010003", 1_000_000).await;
    let p = n[0]
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 700, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    let answers = crate::common::all(60, |i| {
        let (n, token, id) = (n.clone(), token.clone(), id.clone());
        async move {
            n[i % 3]
                .confirm(&token, &id, json!({}))
                .await
                .status
                .as_u16()
        }
    })
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 409),
        "{answers:?}"
    );

    // A wallet of 1,000 and 30 payments of 100 confirmed at once: ten succeed.
    let (cus, token) = n[2].customer("+8613800010004", 1_000).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let p = n[i % 3]
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 100, "customer": cus}),
            )
            .await;
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    let ids = std::sync::Arc::new(ids);
    let answers = crate::common::all(30, |i| {
        let (n, token, ids) = (n.clone(), token.clone(), ids.clone());
        async move {
            n[i % 3]
                .confirm(&token, &ids[i], json!({}))
                .await
                .status
                .as_u16()
        }
    })
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        10,
        "{answers:?}"
    );
    for s in n.iter() {
        assert_eq!(s.wallet_balance(&token, "CNY").await, 0);
    }

    // A payment of 1,000 and 30 refunds of 100 at once: ten are made.
    let (cus, token) = n[0].customer("+8613800010005", 5_000).await;
    let big = n[1]
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 1_000, "customer": cus}),
        )
        .await;
    let big = big["id"].as_str().unwrap().to_string();
    assert_eq!(n[2].confirm(&token, &big, json!({})).await.status, 200);
    let answers = crate::common::all(30, |i| {
        let (n, sk, big) = (n.clone(), sk.clone(), big.clone());
        async move {
            n[i % 3]
                .post(
                    &format!("/v1/payments/{big}/refunds"),
                    &sk,
                    json!({"amount": 100}),
                )
                .await
                .status
                .as_u16()
        }
    })
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 201).count(),
        10,
        "{answers:?}"
    );
    let after = n[2].get(&format!("/v1/payments/{big}"), &sk).await;
    assert_eq!(after.body["amount_refunded"], 1_000);

    // 30 wrong PINs at once over three nodes: at most five are checked.
    let phone = "+8613800010006";
    n[0].customer(phone, 0).await;
    let answers = crate::common::all(30, |i| {
        let n = n.clone();
        async move {
            n[i % 3]
                .call(
                    Method::POST,
                    "/v1/wallet/sessions",
                    None,
                    Some(json!({"phone": phone, "pin": format!("{:06}", 900_000 + i)})),
                    None,
                )
                .await
                .status
                .as_u16()
        }
    })
    .await;
    let checked = pins_checked(&n).await;
    eprintln!("30 wrong PINs over 3 nodes: {checked} checked, answers {answers:?}");
    assert!(checked <= 5, "{checked} wrong PINs were checked");
    assert!(
        answers.iter().all(|s| [401, 423, 429].contains(s)),
        "{answers:?}"
    );

    n[1].assert_balanced().await;
    let (ok, out) = n[0].pocket(&["verify"]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweepers_and_pollers_on_every_node_never_expire_or_deliver_twice() {
    let Some(n) = nodes(3).await else { return };
    let hooks = Receiver::start(vec![], Answer::Ok).await;
    let r = n[0]
        .post(
            "/v1/admin/merchants",
            ADMIN_KEY,
            json!({"name": "M", "webhook_url": hooks.url}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let sk = r.body["secret_key"].as_str().unwrap().to_string();
    let (cus, _) = n[1].customer("+8613800010007", 0).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let p = n[i % 3]
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 100 + i, "customer": cus, "expires_in": 1}),
            )
            .await;
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    let started = Instant::now();
    for id in &ids {
        loop {
            let p = n[2].get(&format!("/v1/payments/{id}"), &sk).await;
            if p.body["status"] == "expired" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{id} never expired"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every payment: one created and one expired event, each delivered once.
    let got = hooks
        .wait_for(Duration::from_secs(30), |got| got.len() >= 60)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = hooks.received().len().max(got.len());
    let mut by_event: HashMap<String, usize> = HashMap::new();
    for r in hooks.received() {
        *by_event.entry(r.event_id.clone()).or_default() += 1;
    }
    let doubled: Vec<_> = by_event.iter().filter(|(_, c)| **c > 1).collect();
    eprintln!(
        "30 payments expired on 3 nodes: {got} deliveries, {} events, {} delivered twice",
        by_event.len(),
        doubled.len()
    );
    assert!(doubled.is_empty(), "delivered twice: {doubled:?}");
    assert_eq!(by_event.len(), 60);
    let expired = hooks
        .received()
        .iter()
        .filter(|r| r.body.contains("\"payment.expired\""))
        .count();
    assert_eq!(expired, 30, "one expiry per payment");
    n[0].assert_balanced().await;
}

#[tokio::test]
async fn a_node_with_other_keys_refuses_to_start() {
    let Some(n) = nodes(1).await else { return };
    let db = n[0].database.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = |server_key: &str, admin_key: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pocket"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                &db.url,
                "--data",
            ])
            .arg(dir.path())
            .env("POCKET_SERVER_KEY", server_key)
            .env("POCKET_ADMIN_KEY", admin_key)
            .output()
            .unwrap()
    };
    let out = start(&"ab".repeat(32), ADMIN_KEY);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("server_key is not the one the database was written with"),
        "{text}"
    );
    let out = start(crate::common::SERVER_KEY, "adm_another_key_0123456789");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("admin_key is not the one"), "{text}");
    // The node that has the keys serves on.
    assert_eq!(n[0].get("/healthz", "").await.status, 200);
}

/// A risk rule added on one node applies at once on the others (each transaction reads
/// the rules' version row), and removing it there lifts it everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rule_added_on_one_node_applies_on_every_node_at_once() {
    let Some(n) = nodes(2).await else { return };
    let (_, sk) = n[0].merchant("M").await;
    let (cus, token) = n[1].customer("+8613800010091", 100_000).await;
    let pending = n[1]
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 700, "customer": cus}),
        )
        .await;
    // Node 1 has its rules compiled (empty) from that creation; node 0 adds one.
    let r = n[0]
        .post(
            "/v1/admin/rules",
            ADMIN_KEY,
            json!({"name": "stop", "when": "payment.amount == 700", "action": "block"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = pending["id"].as_str().unwrap();
    n[1].confirm(&token, id, json!({}))
        .await
        .assert_error(402, "payment_blocked");
    n[1].post(
        "/v1/payments",
        &sk,
        json!({"currency": "CNY", "amount": 700, "customer": cus}),
    )
    .await
    .assert_error(402, "payment_blocked");
    let rule = r.body["id"].as_str().unwrap();
    let gone = n[0]
        .call(
            Method::DELETE,
            &format!("/v1/admin/rules/{rule}"),
            Some(ADMIN_KEY),
            None,
            None,
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    let r = n[1].confirm(&token, id, json!({})).await;
    assert_eq!(r.body["status"], "succeeded", "{}", r.text);
}

/// 20 confirms at once, spread over two nodes, against a daily limit that allows 10 of
/// them: exactly 10 pass, whichever node each reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daily_limit_holds_with_confirms_spread_over_two_nodes() {
    a_daily_limit_holds_over_two_nodes(vec![]).await;
}

/// (`env`: the nodes' test hooks.)
async fn a_daily_limit_holds_over_two_nodes(env: Vec<(String, String)>) {
    if !pocket_store::testing::on_postgres() {
        eprintln!("SKIPPED on SQLite: several nodes share a PostgreSQL database");
        return;
    }
    let n = std::sync::Arc::new(
        Server::start_nodes(
            2,
            Options {
                config: Some("[limits]\ncustomer_daily_spend = { CNY = 10000 }\n".into()),
                env,
                ..Options::default()
            },
        )
        .await,
    );
    let (_, sk) = n[0].merchant("M").await;
    let (cus, token) = n[1].customer("+8613800010092", 100_000).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let p = n[0]
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 1_000, "customer": cus}),
            )
            .await;
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    let replies = crate::common::all(20, |i| {
        let (n, token, id) = (n.clone(), token.clone(), ids[i].clone());
        async move {
            let r = n[i % 2].confirm(&token, &id, json!({})).await;
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
    assert_eq!(n[0].wallet_balance(&token, "CNY").await, 90_000);
}

/// A device registered on one node shows codes the other node charges at once (its
/// directory reads the new registration on the miss), and the same code sent to both
/// nodes at once is charged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_code_is_charged_once_across_nodes() {
    let Some(n) = nodes(2).await else { return };
    a_payment_code_is_charged_once_across_nodes_on(n).await;
}

async fn a_payment_code_is_charged_once_across_nodes_on(n: Vec<Server>) {
    let (_, sk) = n[0].merchant("M").await;
    let (_, token) = n[0].customer("+8613800010111", 100_000).await;
    // Both nodes have built their directories before the device exists.
    for node in &n {
        node.post(
            "/v1/payments",
            &sk,
            json!({"currency": "CNY", "amount": 100, "payment_code": "280000000000000000"}),
        )
        .await
        .assert_error(400, "payment_code_invalid");
    }
    let (device, secret) = n[0].register_device(&token).await;
    let step = pocket_core::code::step_of(crate::common::now_ms());
    let n = std::sync::Arc::new(n);
    let mut paid = 0;
    for step in [step, step + 1] {
        let code = pocket_core::code::code_at(&secret, step)
            .as_str()
            .to_string();
        let replies = crate::common::all(16, |i| {
            let n = n.clone();
            let (sk, code) = (sk.clone(), code.clone());
            async move {
                let body = json!({"currency": "CNY", "amount": 100, "payment_code": code});
                n[i % 2]
                    .post("/v1/payments", &sk, body)
                    .await
                    .status
                    .as_u16()
            }
        })
        .await;
        let ok = replies.iter().filter(|s| **s == 201).count();
        assert_eq!(ok, 1, "{replies:?}");
        assert!(
            replies.iter().all(|s| *s == 201 || *s == 400),
            "{replies:?}"
        );
        paid += ok as i64;
    }
    assert_eq!(
        n[1].wallet_balance(&token, "CNY").await,
        100_000 - paid * 100
    );
    // Revoked on node 0: node 1 still has the device in its directory, and its commit
    // refuses the code.
    let revoked = n[0].revoke_device(&token, &device).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let code = pocket_core::code::code_at(&secret, step - 1);
    n[1].post(
        "/v1/payments",
        &sk,
        json!({"currency": "CNY", "amount": 100, "payment_code": code.as_str()}),
    )
    .await
    .assert_error(400, "payment_code_invalid");
}

/// A live code's refusals are bounded across nodes too: 20 charges of one code, each
/// for more than the wallet holds, spread over two nodes → exactly 3 looked at (`402`),
/// the rest refused as spent. Every charge of the code locks its refusal row first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_codes_refusals_are_bounded_across_nodes() {
    let Some(n) = nodes(2).await else { return };
    let (_, sk) = n[0].merchant("M").await;
    let (_, token) = n[0].customer("+8613800010121", 1_000).await;
    let (_, secret) = n[0].register_device(&token).await;
    let step = pocket_core::code::step_of(crate::common::now_ms());
    let code = pocket_core::code::code_at(&secret, step)
        .as_str()
        .to_string();
    let n = std::sync::Arc::new(n);
    let replies = crate::common::all(20, |i| {
        let (n, sk, code) = (n.clone(), sk.clone(), code.clone());
        async move {
            let body = json!({"currency": "CNY", "amount": 5_000 + i as i64, "payment_code": code});
            n[i % 2]
                .post("/v1/payments", &sk, body)
                .await
                .code()
                .to_string()
        }
    })
    .await;
    let looked = replies
        .iter()
        .filter(|c| *c == "insufficient_funds")
        .count();
    let spent = replies
        .iter()
        .filter(|c| *c == "payment_code_invalid")
        .count();
    assert_eq!((looked, spent), (3, 17), "{replies:?}");
    assert_eq!(n[1].wallet_balance(&token, "CNY").await, 1_000);
}

/// The database URL of a test's nodes.
fn database_url(n: &[Server]) -> String {
    n[0].database
        .as_ref()
        .expect("a PostgreSQL test")
        .url
        .clone()
}

/// Runs `sql` in a `psql` of its own, named `app` in `pg_stat_activity`, and waits
/// until that session is running it (so whatever it locks first is locked).
fn psql_holding(url: &str, app: &str, sql: &str) -> crate::common::Killed {
    let child = crate::common::Killed(
        std::process::Command::new("psql")
            .args(["-X", "-q", "-d", url, "-c", sql])
            .env("PGAPPNAME", app)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("psql"),
    );
    let started = Instant::now();
    loop {
        let out = std::process::Command::new("psql")
            .args(["-X", "-tA", "-d", url, "-c"])
            .arg(format!(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}' \
                 AND state = 'active' AND wait_event IS DISTINCT FROM 'ClientRead' \
                 AND query LIKE '%pg_sleep%'"
            ))
            .output()
            .expect("psql");
        if String::from_utf8_lossy(&out.stdout).trim() == "1" {
            return child;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "psql did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No cluster-wide serialisation: while one wallet's row is held by another session
/// (an operator's `SELECT … FOR UPDATE`, a long transaction), other customers' payments
/// on both nodes go through at once, and the held wallet's own confirm answers `503`
/// with `Retry-After` instead of stalling anyone — then succeeds once the row is free.
/// With any lock every batch takes (the advisory lock this replaced), every confirm
/// here waited for the held row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wallet_row_held_elsewhere_stalls_no_other_payment_on_any_node() {
    let Some(n) = nodes(2).await else { return };
    let n = std::sync::Arc::new(n);
    let (_, sk) = n[0].merchant("M").await;
    let (held, held_token) = n[0].customer("+8613800010301", 100_000).await;
    let mut others = Vec::new();
    for i in 0..8 {
        others.push(
            n[i % 2]
                .customer(&format!("+86138000104{i:02}"), 100_000)
                .await,
        );
    }
    let held_payment = n[0]
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": held}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ids = Vec::new();
    for (i, (cus, _)) in others.iter().enumerate() {
        for _ in 0..4 {
            let p = n[i % 2]
                .payment(
                    &sk,
                    json!({"currency": "CNY", "amount": 100, "customer": cus}),
                )
                .await;
            ids.push(p["id"].as_str().unwrap().to_string());
        }
    }
    let hold_s = 4;
    let mut psql = psql_holding(
        &database_url(&n),
        "pocket_test_hold",
        &format!(
            "BEGIN; SELECT id FROM accounts WHERE kind = 'wallet' AND owner = '{held}' FOR UPDATE; \
             SELECT pg_sleep({hold_s}); COMMIT"
        ),
    );
    let held_at = Instant::now();
    // The held wallet's confirm, meanwhile, on node 1.
    let blocked = {
        let (n, token, id) = (n.clone(), held_token.clone(), held_payment.clone());
        tokio::spawn(async move {
            let r = n[1].confirm(&token, &id, json!({})).await;
            (
                r.status.as_u16(),
                r.code().to_string(),
                r.headers.get("retry-after").is_some(),
            )
        })
    };
    let tokens: Vec<String> = others.iter().map(|(_, t)| t.clone()).collect();
    let replies = crate::common::all(ids.len(), |i| {
        let (n, token, id) = (n.clone(), tokens[i / 4].clone(), ids[i].clone());
        async move {
            let sent = Instant::now();
            let r = n[i % 2].confirm(&token, &id, json!({})).await;
            (r.status.as_u16(), sent.elapsed())
        }
    })
    .await;
    let all_done = held_at.elapsed();
    let worst = replies.iter().map(|(_, t)| *t).max().unwrap();
    eprintln!(
        "{} confirms of other customers on 2 nodes while one wallet row was held {hold_s} s: \
         all answered {all_done:?} after the hold began, the slowest in {worst:?}",
        replies.len()
    );
    assert!(replies.iter().all(|(st, _)| *st == 200), "{replies:?}");
    assert!(
        all_done < Duration::from_secs(2),
        "other customers' payments waited for the held row"
    );
    let (status, code, retry_after) = blocked.await.unwrap();
    assert_eq!(
        (status, code.as_str(), retry_after),
        (503, "storage_unavailable", true)
    );
    psql.0.wait().unwrap();
    assert_eq!(
        n[1].confirm(&held_token, &held_payment, json!({}))
            .await
            .status,
        200
    );
    assert_eq!(n[0].wallet_balance(&held_token, "CNY").await, 100_000 - 100);
    n[0].assert_balanced().await;
}

/// Event order without a lock: commits that land out of the order their jobs ran in
/// (every third batch held 300 ms before its COMMIT, on both nodes) still reach a
/// stream on another node complete and in seq order, and a stream resumed with
/// `Last-Event-ID` in the middle gets exactly the rest — no event committed late is
/// skipped. (With seqs drawn at insert, a held batch's events commit below seqs already
/// announced and are never seen.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_committed_out_of_order_reach_streams_complete_and_in_order() {
    if !pocket_store::testing::on_postgres() {
        eprintln!("SKIPPED on SQLite: several nodes share a PostgreSQL database");
        return;
    }
    let n = std::sync::Arc::new(
        Server::start_nodes(
            2,
            Options {
                env: vec![("POCKET_TEST_DELAY_COMMITS".into(), "3:300".into())],
                ..Options::default()
            },
        )
        .await,
    );
    let (_, sk) = n[0].merchant("M").await;
    let (cus, token) = n[1].customer("+8613800010501", 0).await;
    let mut stream = open_stream(&n[1], &token).await;
    const PAYMENTS: usize = 60;
    let created = crate::common::all(PAYMENTS, |i| {
        let (n, sk, cus) = (n.clone(), sk.clone(), cus.clone());
        async move {
            let p = n[i % 2]
                .payment(
                    &sk,
                    json!({"currency": "CNY", "amount": 100 + i, "customer": cus}),
                )
                .await;
            p["id"].as_str().unwrap().to_string()
        }
    })
    .await;
    let mut seen = Vec::new();
    while seen.len() < PAYMENTS {
        let e = stream
            .next(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("only {} of {PAYMENTS} events arrived", seen.len()));
        assert_eq!(e.event, "payment.created");
        let data: Value = serde_json::from_str(&e.data).unwrap();
        seen.push((
            e.id.clone(),
            data["data"]["object"]["id"].as_str().unwrap().to_string(),
        ));
    }
    let mut got: Vec<&String> = seen.iter().map(|(_, p)| p).collect();
    got.sort();
    let mut want: Vec<&String> = created.iter().collect();
    want.sort();
    assert_eq!(got, want, "every payment's event, once");
    // Resumed after the 20th: exactly the 40 after it, in the same order.
    let resp = n[0]
        .client
        .get(format!("{}/v1/wallet/events", n[0].url))
        .bearer_auth(&token)
        .header("Last-Event-ID", seen[19].0.clone())
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut resumed = SseReader::new(resp);
    for (id, _) in &seen[20..] {
        let e = resumed
            .next(Duration::from_secs(5))
            .await
            .expect("a resumed event");
        assert_eq!(
            &e.id, id,
            "the resumed stream skipped or reordered an event"
        );
    }
    eprintln!(
        "{PAYMENTS} payments on 2 nodes, every third batch's commit held 300 ms: the stream on \
         node 1 got all {PAYMENTS} in order, the resume after the 20th the 40 after it"
    );
}

/// One Idempotency-Key sent to two nodes at once, for a create and then for a confirm:
/// one effect each, and both answers are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_on_two_nodes_at_once_acts_once() {
    let Some(n) = nodes(2).await else { return };
    one_idempotency_key_on_two_nodes_at_once_acts_once_on(n).await;
}

async fn one_idempotency_key_on_two_nodes_at_once_acts_once_on(n: Vec<Server>) {
    let n = std::sync::Arc::new(n);
    let (_, sk) = n[0].merchant("M").await;
    let (cus, token) = n[1].customer("+8613800010601", 10_000).await;
    for round in 0..10 {
        let key = format!("same-key-{round}");
        let body = json!({"currency": "CNY", "amount": 100, "customer": cus});
        let created = crate::common::all(2, |i| {
            let (n, sk, key, body) = (n.clone(), sk.clone(), key.clone(), body.clone());
            async move {
                n[i].call(
                    Method::POST,
                    "/v1/payments",
                    Some(&sk),
                    Some(body),
                    Some(&key),
                )
                .await
            }
        })
        .await;
        assert_eq!(
            (created[0].status.as_u16(), created[1].status.as_u16()),
            (201, 201)
        );
        assert_eq!(
            created[0].body["id"], created[1].body["id"],
            "two payments for one key"
        );
        let id = created[0].body["id"].as_str().unwrap().to_string();
        let confirm_key = format!("confirm-key-{round}");
        let confirmed = crate::common::all(2, |i| {
            let (n, token, id, key) = (n.clone(), token.clone(), id.clone(), confirm_key.clone());
            async move {
                n[i].call(
                    Method::POST,
                    &format!("/v1/wallet/payments/{id}/confirm"),
                    Some(&token),
                    Some(json!({})),
                    Some(&key),
                )
                .await
            }
        })
        .await;
        assert_eq!(
            (confirmed[0].status.as_u16(), confirmed[1].status.as_u16()),
            (200, 200)
        );
        assert_eq!(
            confirmed[0].body, confirmed[1].body,
            "two answers for one key"
        );
    }
    let listed = n[0].get("/v1/payments?limit=100", &sk).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 10);
    assert_eq!(n[0].wallet_balance(&token, "CNY").await, 10_000 - 10 * 100);
    n[0].assert_balanced().await;
}

/// Many customers paying one merchant at once through three nodes: no 500s, and the
/// merchant's balance is exactly the sum (its account row is every payment's).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_customers_paying_one_merchant_through_three_nodes_add_up_exactly() {
    let Some(n) = nodes(3).await else { return };
    many_customers_paying_one_merchant_through_three_nodes_add_up_exactly_on(n).await;
}

async fn many_customers_paying_one_merchant_through_three_nodes_add_up_exactly_on(n: Vec<Server>) {
    let n = std::sync::Arc::new(n);
    let (_, sk) = n[0].merchant("M").await;
    const CUSTOMERS: usize = 30;
    let mut customers = Vec::new();
    for i in 0..CUSTOMERS {
        customers.push(
            n[i % 3]
                .customer(&format!("+86138000107{i:02}"), 10_000)
                .await,
        );
    }
    let replies = crate::common::all(CUSTOMERS * 3, |i| {
        let (n, sk, (cus, token)) = (n.clone(), sk.clone(), customers[i % CUSTOMERS].clone());
        async move {
            let p = n[i % 3]
                .payment(
                    &sk,
                    json!({"currency": "CNY", "amount": 100 + i, "customer": cus}),
                )
                .await;
            let id = p["id"].as_str().unwrap().to_string();
            let r = n[(i + 1) % 3].confirm(&token, &id, json!({})).await;
            (r.status.as_u16(), 100 + i as i64)
        }
    })
    .await;
    assert!(replies.iter().all(|(st, _)| *st == 200), "{replies:?}");
    let total: i64 = replies.iter().map(|(_, a)| a).sum();
    assert_eq!(n[2].merchant_balance(&sk, "CNY").await, total);
    n[1].assert_balanced().await;
}

/// Payments, refunds and captures racing on one wallet and one merchant, spread over
/// three nodes: no deadlock shows (no 500, no 503), neither balance goes below zero,
/// the merchant holds exactly what was paid and captured less what was refunded, and
/// the book balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_refunds_and_captures_racing_on_one_wallet_and_merchant_stay_exact() {
    let Some(n) = nodes(3).await else { return };
    payments_refunds_and_captures_racing_on_one_wallet_and_merchant_stay_exact_on(n).await;
}

async fn payments_refunds_and_captures_racing_on_one_wallet_and_merchant_stay_exact_on(
    n: Vec<Server>,
) {
    let n = std::sync::Arc::new(n);
    let (_, sk) = n[0].merchant("M").await;
    let (cus, token) = n[1].customer("+8613800010801", 10_000).await;
    let mut paid = Vec::new();
    for i in 0..10 {
        let p = n[i % 3]
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 500, "customer": cus}),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        assert_eq!(
            n[(i + 1) % 3].confirm(&token, &id, json!({})).await.status,
            200
        );
        paid.push(id);
    }
    let mut held = Vec::new();
    for i in 0..5 {
        let p = n[i % 3]
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 300, "customer": cus, "capture": "manual", "capture_within": 3600}),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        assert_eq!(
            n[(i + 2) % 3].confirm(&token, &id, json!({})).await.status,
            200
        );
        held.push(id);
    }
    // 10,000 − 5,000 paid − 1,500 held: 3,500 available for 20 payments of 400.
    let mut fresh = Vec::new();
    for i in 0..20 {
        let p = n[i % 3]
            .payment(
                &sk,
                json!({"currency": "CNY", "amount": 400, "customer": cus}),
            )
            .await;
        fresh.push(p["id"].as_str().unwrap().to_string());
    }
    let ops = crate::common::all(35, |i| {
        let (n, sk, token) = (n.clone(), sk.clone(), token.clone());
        let (paid, held, fresh) = (paid.clone(), held.clone(), fresh.clone());
        async move {
            let node = &n[i % 3];
            match i {
                0..10 => {
                    let r = node
                        .post(
                            &format!("/v1/payments/{}/refunds", paid[i]),
                            &sk,
                            json!({"amount": 200}),
                        )
                        .await;
                    ("refund", r.status.as_u16(), 200)
                }
                10..15 => {
                    let r = node
                        .post(
                            &format!("/v1/payments/{}/capture", held[i - 10]),
                            &sk,
                            json!({}),
                        )
                        .await;
                    ("capture", r.status.as_u16(), 300)
                }
                _ => {
                    let r = node.confirm(&token, &fresh[i - 15], json!({})).await;
                    ("pay", r.status.as_u16(), 400)
                }
            }
        }
    })
    .await;
    let ok = |kind: &str| {
        ops.iter()
            .filter(|(k, st, _)| *k == kind && (*st == 200 || *st == 201))
            .map(|(_, _, a)| *a as i64)
            .sum::<i64>()
    };
    assert!(
        ops.iter()
            .all(|(k, st, _)| matches!(st, 200 | 201) || (*k == "pay" && *st == 402)),
        "{ops:?}"
    );
    let (refunded, captured, paid_now) = (ok("refund"), ok("capture"), ok("pay"));
    assert_eq!((refunded, captured), (2_000, 1_500), "{ops:?}");
    // Refunds return money to the wallet while the payments race, so more than 8 of
    // the 400s may pass; never more than the wallet held.
    assert!((8 * 400..=3_500 + 2_000).contains(&paid_now), "{paid_now}");
    let wallet = n[2].wallet_balance(&token, "CNY").await;
    let merchant = n[0].merchant_balance(&sk, "CNY").await;
    assert!(wallet >= 0 && merchant >= 0);
    assert_eq!(merchant, 5_000 + captured + paid_now - refunded);
    assert_eq!(wallet + merchant, 10_000);
    eprintln!(
        "10 refunds, 5 captures and 20 payments at once on one wallet over 3 nodes: \
         {} payments passed, wallet {wallet}, merchant {merchant}",
        paid_now / 400
    );
    n[1].assert_balanced().await;
}

/// Caps, withdrawals and bank answers with requests spread over three nodes whose
/// commits are held now and then: five cards and ten devices to a wallet, sixteen
/// endpoints to a merchant (each checked under its owner's row), withdrawals never
/// reserve more than the wallet holds, and a bank answer that needs retries — taken
/// by the pollers of all three nodes — is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caps_and_bank_answers_hold_over_three_nodes_with_commits_held() {
    let Some(n) = nodes_delayed(3).await else {
        return;
    };
    let n = std::sync::Arc::new(n);
    let (_, token) = n[0].customer("+8613800010801", 0).await;

    // Cards: three bound, then five at once over three nodes (the PIN guard lets five
    // checks run together): exactly two more fit.
    let numbers = crate::common::card_numbers(8);
    for number in &numbers[..3] {
        let r = n[0]
            .post("/v1/wallet/cards", &token, crate::common::card(number))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let replies = crate::common::all(5, |i| {
        let (n, token, number) = (n.clone(), token.clone(), numbers[3 + i].clone());
        async move {
            let r = n[i % 3]
                .post("/v1/wallet/cards", &token, crate::common::card(&number))
                .await;
            (r.status.as_u16(), r.code().to_string())
        }
    })
    .await;
    assert_eq!(count(&replies, 201, ""), 2, "{replies:?}");
    assert_eq!(count(&replies, 409, "too_many_cards"), 3, "{replies:?}");

    // Devices: eight registered, then five at once: exactly two more fit.
    for _ in 0..8 {
        n[1].register_device(&token).await;
    }
    let replies = crate::common::all(5, |i| {
        let (n, token) = (n.clone(), token.clone());
        async move {
            let key = crate::common::jwk(&crate::common::new_key());
            let body = json!({"name": "phone", "public_key": key, "pin": "123456"});
            let r = n[i % 3].post("/v1/wallet/devices", &token, body).await;
            (r.status.as_u16(), r.param().unwrap_or_default().to_string())
        }
    })
    .await;
    assert_eq!(count(&replies, 201, ""), 2, "{replies:?}");
    assert_eq!(count(&replies, 400, "public_key"), 3, "{replies:?}");

    // Endpoints: twenty at once: exactly sixteen fit.
    let (_, sk) = n[2].merchant("M").await;
    let hooks = Receiver::start(vec![], Answer::Ok).await;
    let url = hooks.url.clone();
    let replies = crate::common::all(20, |i| {
        let (n, sk, url) = (n.clone(), sk.clone(), url.clone());
        async move {
            let r = n[i % 3]
                .post("/v1/webhook_endpoints", &sk, json!({"url": url}))
                .await;
            (r.status.as_u16(), r.param().unwrap_or_default().to_string())
        }
    })
    .await;
    assert_eq!(count(&replies, 201, ""), 16, "{replies:?}");
    assert_eq!(count(&replies, 400, "url"), 4, "{replies:?}");

    // Withdrawals of 10,000 from 20,000, five at once, to a card whose bank answers
    // 500 twice before it succeeds: two reserved, each posted once by whichever
    // node's poller gets its answer.
    let (payer, payer_token) = n[1].customer("+8613800010802", 0).await;
    n[0].topup(&payer, 20_000, "CNY").await;
    let card = n[1].bind_card(&payer_token, "4000000000000119").await;
    let replies = crate::common::all(5, |i| {
        let (n, token, card) = (n.clone(), payer_token.clone(), card.clone());
        async move {
            let body = json!({"amount": 10_000, "currency": "CNY", "card": card, "pin": "123456"});
            let r = n[i % 3].post("/v1/wallet/withdrawals", &token, body).await;
            let id = r.body["id"].as_str().unwrap_or_default().to_string();
            (r.status.as_u16(), r.code().to_string(), id)
        }
    })
    .await;
    let made: Vec<&String> = replies
        .iter()
        .filter(|r| r.0 == 201)
        .map(|r| &r.2)
        .collect();
    let refused = replies
        .iter()
        .filter(|r| (r.0, r.1.as_str()) == (402, "insufficient_funds"))
        .count();
    assert_eq!((made.len(), refused), (2, 3), "{replies:?}");

    // Three top-ups at once through the same kind of card: each credited once.
    let (_, topup_token) = n[2].customer("+8613800010803", 0).await;
    let card = n[2].bind_card(&topup_token, "4000000000000119").await;
    let topups = crate::common::all(3, |i| {
        let (n, token, card) = (n.clone(), topup_token.clone(), card.clone());
        async move {
            let body = json!({"amount": 10_000, "currency": "CNY", "card": card, "pin": "123456"});
            let r = n[i % 3].post("/v1/wallet/topups", &token, body).await;
            assert_eq!(r.status, 201, "{}", r.text);
            r.body["id"].as_str().unwrap().to_string()
        }
    })
    .await;
    for id in made {
        let done = n[2]
            .until_final(&payer_token, &format!("/v1/wallet/withdrawals/{id}"))
            .await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    for id in &topups {
        let done = n[0]
            .until_final(&topup_token, &format!("/v1/wallet/topups/{id}"))
            .await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let me = n[0].get("/v1/wallet/me", &payer_token).await.body;
    let figures =
        ["available", "reserved"].map(|f| crate::common::balance_field(&me["balances"], "CNY", f));
    assert_eq!(figures, [0, 0], "{me}");
    assert_eq!(n[1].wallet_balance(&topup_token, "CNY").await, 30_000);
    n[2].assert_balanced().await;
    let (ok, out) = n[0].pocket(&["verify"]);
    assert!(ok, "{out}");
}

/// How many replies have this status and (when not empty) this code or param.
fn count<T: AsRef<str>>(replies: &[(u16, T)], status: u16, what: &str) -> usize {
    replies
        .iter()
        .filter(|(s, w)| *s == status && (what.is_empty() || w.as_ref() == what))
        .count()
}

/// The rules of the tests above once more, on nodes whose commits are held now and
/// then (every second batch waits 40 ms before its COMMIT), so each rule's window
/// between its reads and its commit is wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rules_hold_across_nodes_with_commits_held() {
    a_daily_limit_holds_over_two_nodes(held_commits()).await;
    let Some(n) = nodes_delayed(2).await else {
        return;
    };
    a_payment_code_is_charged_once_across_nodes_on(n).await;
    let Some(n) = nodes_delayed(2).await else {
        return;
    };
    one_idempotency_key_on_two_nodes_at_once_acts_once_on(n).await;
    let Some(n) = nodes_delayed(3).await else {
        return;
    };
    many_customers_paying_one_merchant_through_three_nodes_add_up_exactly_on(n).await;
    let Some(n) = nodes_delayed(3).await else {
        return;
    };
    payments_refunds_and_captures_racing_on_one_wallet_and_merchant_stay_exact_on(n).await;
}

/// An endpoint deleted on one node while another node emits events for it, commits
/// held now and then: nothing is sent to it for a payment made after its deletion was
/// answered, and no delivery to it is left pending — one written by a batch that read
/// the endpoint before the deletion committed is failed by the dispatcher, not kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_deleted_while_another_node_emits_gets_nothing_more() {
    let Some(n) = nodes_delayed(2).await else {
        return;
    };
    let n = std::sync::Arc::new(n);
    let (_, sk) = n[0].merchant("M").await;
    let hooks = Receiver::start(vec![], Answer::Ok).await;
    let r = n[0]
        .post("/v1/webhook_endpoints", &sk, json!({"url": hooks.url}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let endpoint = r.body["id"].as_str().unwrap().to_string();
    let deleted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let until = Instant::now() + Duration::from_millis(1_500);
    let made = crate::common::all(4, |_| {
        let (n, sk, deleted) = (n.clone(), sk.clone(), deleted.clone());
        async move {
            let mut made = Vec::new();
            while Instant::now() < until {
                let after = deleted.load(std::sync::atomic::Ordering::SeqCst);
                let p = n[1]
                    .payment(&sk, json!({"currency": "CNY", "amount": 100}))
                    .await;
                made.push((p["id"].as_str().unwrap().to_string(), after));
            }
            made
        }
    });
    let delete = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = n[0]
            .call(
                Method::DELETE,
                &format!("/v1/webhook_endpoints/{endpoint}"),
                Some(&sk),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        deleted.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let (made, ()) = tokio::join!(made, delete);
    let after: Vec<String> = made
        .into_iter()
        .flatten()
        .filter(|(_, after)| *after)
        .map(|(id, _)| id)
        .collect();
    assert!(!after.is_empty(), "no payment was made after the deletion");
    let url = database_url(&n);
    let pending = || {
        let out = std::process::Command::new("psql")
            .args(["-X", "-tA", "-d", &url, "-c"])
            .arg(format!(
                "SELECT count(*) FROM deliveries WHERE endpoint_id = '{endpoint}' AND status = 'pending'"
            ))
            .output()
            .expect("psql");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let started = Instant::now();
    while pending() != "0" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} deliveries to the deleted endpoint stay pending",
            pending()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = hooks.received();
    let late: Vec<&String> = after
        .iter()
        .filter(|id| got.iter().any(|r| r.body.contains(id.as_str())))
        .collect();
    eprintln!(
        "endpoint deleted mid-load: {} deliveries before, {} payments after, {} of them sent",
        got.len(),
        after.len(),
        late.len()
    );
    assert!(late.is_empty(), "sent after the deletion: {late:?}");
}

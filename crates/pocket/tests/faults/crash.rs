//! Crash safety, tested the hard way: `kill -9` of the real server in the middle of a
//! mixed load (payments created and confirmed, refunds, top-ups, webhooks), again and
//! again on one data directory. After every restart `pocket verify` must pass and
//! every acknowledged write must be there exactly once: replaying its request with
//! its `Idempotency-Key` gives back the same object, never a second one. At the end
//! every acknowledged payment's `payment.succeeded` has reached the webhook receiver.
//!
//! `POCKET_CRASH_CYCLES` sets the number of cycles (default 20).

use crate::common::receiver::{Answer, Receiver};
use crate::common::{ADMIN_KEY, Options, Server};
use rand::Rng;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An acknowledged write: the request (to replay it) and what it answered.
#[derive(Clone, Debug)]
struct Ack {
    method_path: String,
    auth: String,
    key: String,
    body: Value,
    status: u16,
    id: String,
    /// For confirms: the payment confirmed.
    payment: Option<String>,
}

struct World {
    sk: String,
    customers: Vec<(String, String)>,
}

async fn send(
    client: &Client,
    url: &str,
    path: &str,
    auth: &str,
    key: &str,
    body: &Value,
) -> Option<(u16, Value, bool)> {
    let r = client
        .request(Method::POST, format!("{url}{path}"))
        .bearer_auth(auth)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    let body = r.json::<Value>().await.ok()?;
    Some((status, body, replayed))
}

/// One client's load until the server goes away: create and confirm payments, and
/// now and then refund one or top a wallet up.
async fn load(
    url: String,
    world: Arc<World>,
    worker: usize,
    cycle: usize,
    acks: Arc<Mutex<Vec<Ack>>>,
) {
    let client = Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut n = 0usize;
    loop {
        n += 1;
        let (cus, token) = &world.customers[(worker + n) % world.customers.len()];
        let tag = format!("c{cycle}-w{worker}-{n}");
        let record = |path: &str,
                      auth: &str,
                      key: String,
                      body: Value,
                      status: u16,
                      id: &str,
                      payment: Option<String>| Ack {
            method_path: path.to_string(),
            auth: auth.to_string(),
            key,
            body,
            status,
            id: id.to_string(),
            payment,
        };
        let amount = rand::rng().random_range(100..5_000);
        let body = json!({"currency": "CNY", "amount": amount, "customer": cus});
        let key = format!("{tag}-create");
        let Some((201, p, _)) = send(&client, &url, "/v1/payments", &world.sk, &key, &body).await
        else {
            return;
        };
        let pay_id = p["id"].as_str().unwrap().to_string();
        acks.lock().unwrap().push(record(
            "/v1/payments",
            &world.sk,
            key,
            body,
            201,
            &pay_id,
            None,
        ));

        let path = format!("/v1/wallet/payments/{pay_id}/confirm");
        let key = format!("{tag}-confirm");
        let Some((200, c, _)) = send(&client, &url, &path, token, &key, &json!({})).await else {
            return;
        };
        acks.lock().unwrap().push(record(
            &path,
            token,
            key,
            json!({}),
            200,
            c["id"].as_str().unwrap(),
            Some(pay_id.clone()),
        ));

        if n.is_multiple_of(4) {
            let path = format!("/v1/payments/{pay_id}/refunds");
            let key = format!("{tag}-refund");
            let body = json!({"amount": 50});
            let Some((201, r, _)) = send(&client, &url, &path, &world.sk, &key, &body).await else {
                return;
            };
            acks.lock().unwrap().push(record(
                &path,
                &world.sk,
                key,
                body,
                201,
                r["id"].as_str().unwrap(),
                None,
            ));
        }
        if n.is_multiple_of(6) {
            let key = format!("{tag}-topup");
            let body = json!({"customer": cus, "amount": 10_000, "currency": "CNY"});
            let Some((201, t, _)) =
                send(&client, &url, "/v1/admin/topups", ADMIN_KEY, &key, &body).await
            else {
                return;
            };
            acks.lock().unwrap().push(record(
                "/v1/admin/topups",
                ADMIN_KEY,
                key,
                body,
                201,
                t["id"].as_str().unwrap(),
                None,
            ));
        }
    }
}

/// Replays every acknowledged write: the first answer again, never a new object.
async fn check_exactly_once(s: &Server, sk: &str, acks: &[Ack]) -> usize {
    let client = Client::new();
    let mut problems = Vec::new();
    for a in acks {
        match send(&client, &s.url, &a.method_path, &a.auth, &a.key, &a.body).await {
            Some((status, body, replayed))
                if status == a.status && replayed && body["id"] == a.id.as_str() => {}
            other => problems.push(format!("{} {}: {other:?}", a.method_path, a.key)),
        }
        if let Some(p) = &a.payment {
            let got = s.get(&format!("/v1/payments/{p}"), sk).await;
            if got.body["status"] != "succeeded" {
                problems.push(format!("confirmed payment {p} is {}", got.body["status"]));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "acknowledged writes lost or doubled: {problems:#?}"
    );
    acks.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_mixed_load_loses_nothing_acknowledged() {
    let cycles: usize = std::env::var("POCKET_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rx = Receiver::start(vec![], Answer::Ok).await;
    let mut s = Server::start_options(Options {
        args: vec!["--sandbox".into()],
        // Replaying a cycle's acknowledged writes (and reading each confirmed payment)
        // as fast as one client can outruns the per-key budget on a fast machine: a
        // `429` there says nothing about durability. Limits have tests of their own.
        env: vec![
            ("POCKET_RATE_PER_CREDENTIAL".into(), "0".into()),
            ("POCKET_RATE_PER_IP".into(), "0".into()),
        ],
        config: Some(
            "[webhooks]\nretry_schedule_seconds = [1, 1, 1, 1, 1]\ntimeout_seconds = 2\n".into(),
        ),
        ..Options::default()
    })
    .await;
    let (_, sk) = s.merchant("Crash Shop").await;
    let r = s
        // Only successes: one endpoint gets about a hundred deliveries a second.
        .post(
            "/v1/webhook_endpoints",
            &sk,
            json!({"url": rx.url, "events": ["payment.succeeded"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut customers = Vec::new();
    for i in 0..8 {
        customers.push(s.customer(&format!("+86138000090{i:02}"), 10_000_000).await);
    }
    let world = Arc::new(World { sk, customers });
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let mut restarts = Vec::new();
    let mut checked = 0;
    for cycle in 0..cycles {
        let before = acks.lock().unwrap().len();
        let workers: Vec<_> = (0..8)
            .map(|w| tokio::spawn(load(s.url.clone(), world.clone(), w, cycle, acks.clone())))
            .collect();
        let run_ms = rand::rng().random_range(150..600);
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        s.kill9();
        for w in workers {
            let _ = w.await;
        }
        let started = Instant::now();
        s.start_again();
        restarts.push(started.elapsed());
        let (ok, out) = s.pocket(&["verify"]);
        assert!(ok, "cycle {cycle}: pocket verify failed:\n{out}");
        s.assert_balanced().await;
        let new: Vec<Ack> = acks.lock().unwrap()[before..].to_vec();
        checked += check_exactly_once(&s, &world.sk, &new).await;
    }
    // Once more, everything, after the last restart.
    let all: Vec<Ack> = acks.lock().unwrap().clone();
    check_exactly_once(&s, &world.sk, &all).await;
    // Every acknowledged success reached the merchant at least once.
    let paid: HashSet<String> = all.iter().filter_map(|a| a.payment.clone()).collect();
    let delivered = |got: &[crate::common::receiver::Received]| -> HashSet<String> {
        got.iter()
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .filter(|e| e["type"] == "payment.succeeded")
            .filter_map(|e| e["data"]["object"]["id"].as_str().map(String::from))
            .collect()
    };
    // Deliveries leased when the server died wait for their lease (32 s) to run out.
    let waited = Instant::now();
    let got = loop {
        let got = rx.received();
        let missing = paid.difference(&delivered(&got)).count();
        if missing == 0 {
            break got;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(150),
            "{missing} of {} acknowledged successes never reached the webhook receiver",
            paid.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *per_event.entry(r.event_id.clone()).or_default() += 1;
    }
    let repeated = per_event.values().filter(|n| **n > 1).count();
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for a in &all {
        let kind = if a.payment.is_some() {
            "confirm"
        } else if a.method_path.ends_with("/refunds") {
            "refund"
        } else if a.method_path.ends_with("/topups") {
            "top-up"
        } else {
            "create"
        };
        *kinds.entry(kind).or_default() += 1;
    }
    restarts.sort();
    eprintln!(
        "crash test: {cycles} kill -9 cycles, {} acknowledged writes ({kinds:?}), {checked} replayed after their crash and all again at the end: 0 lost, 0 doubled; {} payment.succeeded webhooks for {} acknowledged confirms ({repeated} events delivered more than once, as at-least-once allows); restart median {:?}",
        all.len(),
        delivered(&got).len(),
        paid.len(),
        restarts[restarts.len() / 2]
    );
    assert!(
        all.len() > cycles * 10,
        "the load did too little: {}",
        all.len()
    );
}

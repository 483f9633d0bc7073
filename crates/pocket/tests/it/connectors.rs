//! `http` connectors as separate processes: `pocket sandbox-bank` (signed both ways,
//! notifications for asynchronous operations) and a bank written in a few lines of
//! Python from docs/CONNECTORS.md alone.

use crate::common::{Killed, Options, Server, free_port, sandbox_bank};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "connector-secret-0123456789";

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A notification's signature, as a connector with `secret` makes it.
fn signed_by(secret: &str, path: &str, body: &str) -> String {
    let nonce = pocket_connectors::protocol::new_nonce();
    let r = pocket_connectors::protocol::Request {
        nonce: &nonce,
        method: "POST",
        path,
        body: body.as_bytes(),
    };
    pocket_connectors::protocol::sign_request(secret, unix_now(), &r)
}

async fn wait_listening(port: u16) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "bank never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pocket_with(bank_port: u16) -> Server {
    Server::start_options(Options {
        config: Some(format!(
            "[[connectors]]\nname = \"acme\"\nkind = \"http\"\ncurrencies = [\"CNY\"]\nurl = \"http://127.0.0.1:{bank_port}\"\nsecret = \"{SECRET}\"\n"
        )),
        ..Options::default()
    })
    .await
}

async fn bind(s: &Server, token: &str, number: &str) -> Value {
    let r = s
        .post(
            "/v1/wallet/cards",
            token,
            json!({"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123", "pin": "123456"}),
        )
        .await;
    r.body
}

async fn top_up(s: &Server, token: &str, card: &str) -> Value {
    let r = s
        .post(
            "/v1/wallet/topups",
            token,
            json!({"amount": 10_000, "currency": "CNY", "card": card, "pin": "123456"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

async fn settled(s: &Server, token: &str, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let r = s.get(&format!("/v1/wallet/topups/{id}"), token).await;
        if r.body["status"] != "processing" {
            return r.body;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{}", r.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pocket_and_the_sandbox_bank_as_separate_processes() {
    let bank_port = free_port();
    let s = pocket_with(bank_port).await;
    let notify = format!("{}/v1/connectors/acme/notifications", s.url);
    let _bank = sandbox_bank(bank_port, SECRET, &notify, &["--async-delay", "1"]);
    wait_listening(bank_port).await;
    let (_, token) = s.customer("+8613800006001", 0).await;
    let card = bind(&s, &token, "4242424242424242").await;
    assert_eq!(card["connector"], "acme", "{card}");
    let t = top_up(&s, &token, card["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    let declined = bind(&s, &token, "4000000000000069").await;
    assert_eq!(
        declined["error"]["decline_code"], "expired_card",
        "{declined}"
    );
    // Pending at first; the bank's signed notification finishes it.
    let slow = bind(&s, &token, "4000000000003220").await;
    let t = top_up(&s, &token, slow["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "processing", "{t}");
    let done = settled(&s, &token, t["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded");
    let me = s.get("/v1/wallet/me", &token).await.body;
    assert_eq!(crate::common::balance_of(&me["balances"], "CNY"), 20_000);
    // Unsigned or tampered notifications are refused.
    let path = "/v1/connectors/acme/notifications";
    let body = json!({"operation_id": t["id"], "kind": "charge", "amount": 10_000, "currency": "CNY", "status": "failed"})
        .to_string();
    let r = s
        .client
        .post(format!("{}{path}", s.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let signature = signed_by("wrong-secret-0123456789", path, &body);
    let r = s
        .client
        .post(format!("{}{path}", s.url))
        .header("pocket-connector-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A late, contradicting notification signed right changes nothing.
    let late = json!({"operation_id": t["id"], "kind": "charge", "amount": 10_000, "currency": "CNY", "status": "failed", "decline_code": "card_declined"}).to_string();
    let signature = signed_by(SECRET, path, &late);
    let r = s
        .client
        .post(format!("{}{path}", s.url))
        .header("pocket-connector-signature", signature)
        .body(late)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        settled(&s, &token, t["id"].as_str().unwrap()).await["status"],
        "succeeded"
    );
    assert_eq!(
        crate::common::balance_of(
            &s.get("/v1/wallet/me", &token).await.body["balances"],
            "CNY"
        ),
        20_000
    );
    s.assert_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connector_written_in_python_from_the_document_works() {
    let bank_port = free_port();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/connectors/minimal_bank.py"
    );
    let Ok(child) = Command::new("python3")
        .args([script, &bank_port.to_string(), SECRET])
        .stdout(Stdio::null())
        .spawn()
    else {
        assert!(std::env::var("CI").is_err(), "python3 is needed");
        eprintln!("SKIPPED: no python3");
        return;
    };
    let _bank = Killed(child);
    wait_listening(bank_port).await;
    let s = pocket_with(bank_port).await;
    let (_, token) = s.customer("+8613800006101", 0).await;
    let card = bind(&s, &token, "5555555555554444").await;
    assert_eq!(card["last4"], "4444", "{card}");
    let t = top_up(&s, &token, card["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    let w = s
        .post(
            "/v1/wallet/withdrawals",
            &token,
            json!({"amount": 4_000, "currency": "CNY", "card": card["id"], "pin": "123456"}),
        )
        .await;
    assert_eq!(w.body["status"], "succeeded", "{}", w.text);
    let me = s.get("/v1/wallet/me", &token).await.body;
    assert_eq!(crate::common::balance_of(&me["balances"], "CNY"), 6_000);
    let today = pocket_core::time::utc_date(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let r = s
        .get(
            &format!("/v1/admin/reconciliation?connector=acme&date={today}"),
            crate::common::ADMIN_KEY,
        )
        .await;
    assert_eq!(r.body["matched"], 2, "{}", r.text);
    s.assert_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_duplicate_notifications_credit_once() {
    let bank_port = free_port();
    let s = pocket_with(bank_port).await;
    // The bank's own notification comes much later than ours.
    let notify = format!("{}/v1/connectors/acme/notifications", s.url);
    let _bank = sandbox_bank(bank_port, SECRET, &notify, &["--async-delay", "600"]);
    wait_listening(bank_port).await;
    let (_, token) = s.customer("+8613800006201", 0).await;
    let card = bind(&s, &token, "4000000000003220").await;
    let t = top_up(&s, &token, card["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "processing", "{t}");
    let path = "/v1/connectors/acme/notifications";
    let body = json!({"operation_id": t["id"], "kind": "charge", "amount": 10_000, "currency": "CNY", "status": "succeeded", "decline_code": null}).to_string();
    let s = std::sync::Arc::new(s);
    let replies = crate::common::all(20, |_| {
        let (s, body) = (s.clone(), body.clone());
        async move {
            let signature = signed_by(SECRET, path, &body);
            s.client
                .post(format!("{}{path}", s.url))
                .header("pocket-connector-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    })
    .await;
    assert!(replies.iter().all(|r| *r == 200), "{replies:?}");
    let me = s.get("/v1/wallet/me", &token).await.body;
    assert_eq!(
        crate::common::balance_of(&me["balances"], "CNY"),
        10_000,
        "credited once"
    );
    s.assert_balanced().await;
}

/// What a test bank answers: the status code and JSON body for a request's method,
/// path and JSON body. The bank signs the answer properly (v2): it has the secret, so
/// this is a malicious or buggy bank, not an attacker on the link.
type Reply = std::sync::Arc<dyn Fn(&str, &str, &Value) -> (u16, Value) + Send + Sync>;

/// A bank on a free port answering as `reply` says; returns its port.
async fn lying_bank(reply: Reply) -> u16 {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let reply = reply.clone();
        async move {
            let (method, path) = (request.method().to_string(), request.uri().to_string());
            let header = request
                .headers()
                .get("pocket-connector-signature")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .unwrap();
            let Ok(nonce) = pocket_connectors::protocol::verify_request(
                SECRET,
                header.as_deref(),
                unix_now(),
                &method,
                &path,
                &body,
            ) else {
                return (axum::http::StatusCode::UNAUTHORIZED, "unsigned").into_response();
            };
            let asked = pocket_connectors::protocol::Request {
                nonce,
                method: &method,
                path: &path,
                body: &body,
            };
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (status, answer) = reply(&method, &path, &req);
            let answer = answer.to_string();
            let signature = pocket_connectors::protocol::sign_response(
                SECRET,
                unix_now(),
                &asked,
                status,
                answer.as_bytes(),
            );
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("pocket-connector-signature", signature)],
                answer,
            )
                .into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// The answer a bank gives, whole, for a charge request's operation with these fields
/// changed.
fn charge_answer(req: &Value, changes: Value) -> Value {
    let mut a = json!({"operation_id": req["operation_id"], "kind": "charge", "amount": req["amount"],
                       "currency": req["currency"], "status": "succeeded", "decline_code": null});
    for (k, v) in changes.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

fn bound(req: &Value) -> (u16, Value) {
    (
        200,
        json!({"operation_id": req["operation_id"], "status": "succeeded", "token": "tok_test_1"}),
    )
}

fn today() -> String {
    pocket_core::time::utc_date(unix_now() * 1000)
}

async fn balance(s: &Server, token: &str) -> i64 {
    crate::common::balance_of(&s.get("/v1/wallet/me", token).await.body["balances"], "CNY")
}

async fn reconciliation(s: &Server) -> crate::common::Reply {
    s.get(
        &format!("/v1/admin/reconciliation?connector=acme&date={}", today()),
        crate::common::ADMIN_KEY,
    )
    .await
}

/// An answer as it crossed the link: status, signature header, body.
type Kept = (u16, String, Vec<u8>);

/// An attacker on the Pocket ↔ connector link (plain HTTP on loopback here) keeps the
/// signed "succeeded" answer of one charge and plays it back to the next charge — of a
/// declining card, for 5,000,000.00. Version 1 of the protocol signed answers over the
/// method and path only, so Pocket credited it; now the answer is bound to its request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_signed_answer_credits_nothing() {
    use std::sync::Mutex;
    let bank_port = free_port();
    let _bank = sandbox_bank(bank_port, SECRET, "http://127.0.0.1:9/none", &[]);
    wait_listening(bank_port).await;
    // The link: forwards to the bank, keeps the first charge's answer, replays it while
    // `replaying`.
    let kept: std::sync::Arc<Mutex<Option<Kept>>> = Default::default();
    let replaying = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let link_port = listener.local_addr().unwrap().port();
    let (k, r) = (kept.clone(), replaying.clone());
    let link = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (kept, replaying) = (k.clone(), r.clone());
        async move {
            use axum::response::IntoResponse;
            let (method, path) = (request.method().clone(), request.uri().to_string());
            let signature = request.headers().get("pocket-connector-signature").cloned();
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .unwrap();
            let charge = path == "/v1/charges";
            if charge && replaying.load(std::sync::atomic::Ordering::SeqCst) {
                let (status, header, body) = kept.lock().unwrap().clone().unwrap();
                let status = axum::http::StatusCode::from_u16(status).unwrap();
                return (status, [("pocket-connector-signature", header)], body).into_response();
            }
            let mut to = reqwest::Client::new()
                .request(method, format!("http://127.0.0.1:{bank_port}{path}"))
                .body(body.to_vec());
            if let Some(sig) = signature {
                to = to.header("pocket-connector-signature", sig);
            }
            let answer = to.send().await.unwrap();
            let status = answer.status().as_u16();
            let header = answer.headers()["pocket-connector-signature"]
                .to_str()
                .unwrap()
                .to_string();
            let body = answer.bytes().await.unwrap().to_vec();
            if charge {
                kept.lock()
                    .unwrap()
                    .get_or_insert((status, header.clone(), body.clone()));
            }
            let status = axum::http::StatusCode::from_u16(status).unwrap();
            (status, [("pocket-connector-signature", header)], body).into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, link).await.unwrap() });
    let s = pocket_with(link_port).await;
    let (_, token) = s.customer("+8613800006301", 0).await;
    let good = bind(&s, &token, "4242424242424242").await;
    let t = top_up(&s, &token, good["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert!(
        kept.lock().unwrap().is_some(),
        "the link kept a signed answer"
    );
    let declining = bind(&s, &token, "4000000000000002").await;
    replaying.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = s
        .post(
            "/v1/wallet/topups",
            &token,
            json!({"amount": 500_000_000, "currency": "CNY", "card": declining["id"], "pin": "123456"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body["status"], "processing",
        "the replayed answer is no answer: {}",
        r.text
    );
    assert_eq!(balance(&s, &token).await, 10_000, "nothing credited");
    // The link honest again: the bank's own answer (declined) ends it.
    replaying.store(false, std::sync::atomic::Ordering::SeqCst);
    let done = settled(&s, &token, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["failure_code"], "card_declined", "{done}");
    assert_eq!(balance(&s, &token).await, 10_000);
    s.assert_balanced().await;
}

/// A bank that says "succeeded, 1.00" of an operation of 1,000.00 — in the charge's
/// answer, in a status answer, in a notification — is believed in nothing: the
/// operation stays unknown, the operator sees it in reconciliation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_about_another_amount_kind_or_operation_is_never_applied() {
    let lies = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        Value,
    >::new()));
    let kept = lies.clone();
    let bank_port = lying_bank(std::sync::Arc::new(move |method, path, req| {
        let lies = kept.lock().unwrap();
        match (method, path) {
            ("POST", "/v1/cards") => bound(req),
            ("POST", "/v1/charges") => {
                let amount = req["amount"].as_i64().unwrap();
                // Each amount names a lie (the test's key).
                let changes = lies.get(&amount.to_string()).cloned().unwrap_or(json!({}));
                (200, charge_answer(req, changes))
            }
            ("GET", p) if p.starts_with("/v1/operations/") => {
                let id = p.rsplit('/').next().unwrap();
                match lies.get(id) {
                    Some(a) => (200, a.clone()),
                    None => (404, json!({"error": "unknown_operation"})),
                }
            }
            ("GET", p) if p.starts_with("/v1/statements/") => {
                (200, json!({"date": today(), "lines": []}))
            }
            _ => (404, json!({"error": "unknown_operation"})),
        }
    }))
    .await;
    let s = pocket_with(bank_port).await;
    let (_, token) = s.customer("+8613800006401", 0).await;
    let card = bind(&s, &token, "4242424242424242").await;
    let card = card["id"].as_str().unwrap().to_string();
    let charge = |amount: i64| {
        let (s, token, card) = (&s, token.clone(), card.clone());
        async move {
            let r = s
                .post(
                    "/v1/wallet/topups",
                    &token,
                    json!({"amount": amount, "currency": "CNY", "card": card, "pin": "123456"}),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
            r.body
        }
    };
    // The charge's own answer: another amount, another currency, another kind, another
    // operation.
    let cases = [
        (100_001, json!({"amount": 100})),
        (100_002, json!({"currency": "USD"})),
        (100_003, json!({"kind": "payout"})),
        (
            100_004,
            json!({"operation_id": "top_someoneelse0000000000000"}),
        ),
    ];
    let mut refused = Vec::new();
    for (amount, lie) in cases {
        lies.lock().unwrap().insert(amount.to_string(), lie.clone());
        let t = charge(amount).await;
        assert_eq!(t["status"], "processing", "{lie}: {t}");
        refused.push(t["id"].as_str().unwrap().to_string());
    }
    // A status answer: the charge said pending, the status query lies about the amount.
    lies.lock()
        .unwrap()
        .insert("100000".into(), json!({"status": "pending"}));
    let t = charge(100_000).await;
    assert_eq!(t["status"], "processing", "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    lies.lock().unwrap().insert(
        id.clone(),
        json!({"operation_id": id, "kind": "charge", "amount": 100, "currency": "CNY", "status": "succeeded"}),
    );
    refused.push(id.clone());
    // The poller has looked at it (and refused what it heard) once the report shows it.
    let started = Instant::now();
    let report = loop {
        let r = reconciliation(&s).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let listed: Vec<&str> = r.body["refused_answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["operation_id"].as_str().unwrap())
            .collect();
        if refused.iter().all(|id| listed.contains(&id.as_str())) {
            break r.body;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{}", r.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let why = report["refused_answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["operation_id"] == id.as_str())
        .unwrap()["why"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        why.contains("100 CNY") && why.contains("100000 CNY"),
        "{why}"
    );
    // A notification of the same lie: 409, nothing applied.
    let path = "/v1/connectors/acme/notifications";
    for lie in [
        json!({"operation_id": id, "kind": "charge", "amount": 100, "currency": "CNY", "status": "succeeded"}),
        json!({"operation_id": id, "kind": "payout", "amount": 100_000, "currency": "CNY", "status": "succeeded"}),
    ] {
        let body = lie.to_string();
        let r = s
            .client
            .post(format!("{}{path}", s.url))
            .header("pocket-connector-signature", signed_by(SECRET, path, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409, "{lie}");
    }
    for id in &refused {
        let t = s.get(&format!("/v1/wallet/topups/{id}"), &token).await;
        assert_eq!(t.body["status"], "processing", "{}", t.text);
        assert!(
            t.body.get("refused_answer").is_none(),
            "not shown to the customer"
        );
    }
    assert_eq!(balance(&s, &token).await, 0, "nothing credited");
    s.assert_balanced().await;
}

/// Answers are capped and read as the protocol says: an oversized status answer, a
/// token of markup, a binding answer for another binding, and brand and last four
/// digits that the bank made up are refused or ignored — never a 500, never stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_are_bounded_and_only_the_token_comes_from_the_bank() {
    let bank_port = lying_bank(std::sync::Arc::new(|method, path, req| {
        match (method, path) {
            ("POST", "/v1/cards") => match req["number"].as_str().unwrap() {
                // Brand and last4 the bank made up: ignored.
                "4242424242424242" => (
                    200,
                    json!({"operation_id": req["operation_id"], "status": "succeeded", "token": "tok_fine",
                           "brand": "x".repeat(20_000), "last4": "9999"}),
                ),
                "5555555555554444" => (
                    200,
                    json!({"operation_id": req["operation_id"], "status": "succeeded", "token": "<img src=x onerror=alert(1)>"}),
                ),
                "6200000000000005" => (
                    200,
                    json!({"operation_id": req["operation_id"], "status": "succeeded", "token": "tok\u{0}nul"}),
                ),
                _ => (
                    200,
                    json!({"operation_id": "op_another", "status": "succeeded", "token": "tok_other"}),
                ),
            },
            // Every charge pending; every status answer far over the cap.
            ("POST", "/v1/charges") => (200, charge_answer(req, json!({"status": "pending"}))),
            ("GET", p) if p.starts_with("/v1/operations/") => (
                200,
                json!({"status": "succeeded", "padding": "x".repeat(512 * 1024)}),
            ),
            _ => (404, json!({"error": "unknown_operation"})),
        }
    }))
    .await;
    let s = pocket_with(bank_port).await;
    let (_, token) = s.customer("+8613800006501", 0).await;
    let card = bind(&s, &token, "4242424242424242").await;
    assert_eq!(card["brand"], "visa", "{card}");
    assert_eq!(card["last4"], "4242", "{card}");
    for number in ["5555555555554444", "6200000000000005", "4000056655665556"] {
        let r = s
            .post(
                "/v1/wallet/cards",
                &token,
                json!({"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123", "pin": "123456"}),
            )
            .await;
        r.assert_error(503, "connector_unavailable");
    }
    let cards = s.get("/v1/wallet/cards", &token).await;
    assert_eq!(
        cards.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        cards.text
    );
    // Oversized status answers: the top-up stays processing and the server lives on.
    let t = top_up(&s, &token, card["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "processing");
    tokio::time::sleep(Duration::from_millis(2_500)).await; // two looks (1 s, then 2 s backoff)
    let t = s
        .get(
            &format!("/v1/wallet/topups/{}", t["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(t.body["status"], "processing", "{}", t.text);
    assert_eq!(balance(&s, &token).await, 0);
    s.assert_balanced().await;
}

/// A statement with one poisoned line (a formula for an id, a newline that would add a
/// fake `matched` row, a currency that is no currency) is refused whole, with a clear
/// error; a clean one gives a CSV whose every cell is quoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poisoned_statement_is_refused_whole() {
    let poison = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    let kept = poison.clone();
    let bank_port = lying_bank(std::sync::Arc::new(move |method, path, _| {
        match (method, path.starts_with("/v1/statements/")) {
            ("GET", true) => {
                let line = kept.lock().unwrap().clone();
                let mut lines = vec![
                    json!({"operation_id": "top_fine", "kind": "charge", "amount": 5,
                                            "currency": "CNY", "status": "succeeded"}),
                ];
                if !line.is_null() {
                    lines.push(line);
                }
                (200, json!({"date": today(), "lines": lines}))
            }
            _ => (404, json!({"error": "unknown_operation"})),
        }
    }))
    .await;
    let s = pocket_with(bank_port).await;
    let line = |field: &str, value: Value| {
        let mut l = json!({"operation_id": "top_x", "kind": "charge", "amount": 5,
                           "currency": "CNY", "status": "succeeded"});
        l[field] = value;
        l
    };
    for bad in [
        line(
            "operation_id",
            json!("=HYPERLINK(\"http://evil\",\"click\")"),
        ),
        line(
            "operation_id",
            json!("top_x\nmatched,top_y,5,5,CNY,succeeded,succeeded"),
        ),
        line("currency", json!("X<b>")),
        line("amount", json!(-5)),
        line("status", json!("matched")),
    ] {
        *poison.lock().unwrap() = bad.clone();
        let r = reconciliation(&s).await;
        r.assert_error(503, "statement_invalid");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("line 2"),
            "{}",
            r.text
        );
    }
    *poison.lock().unwrap() = Value::Null;
    let r = s
        .get(
            &format!(
                "/v1/admin/reconciliation?connector=acme&date={}&format=csv",
                today()
            ),
            crate::common::ADMIN_KEY,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.text.lines().nth(1),
        Some("\"missing_in_pocket\",\"top_fine\",\"\",\"5\",\"CNY\",\"\",\"succeeded\",\"\"")
    );
}

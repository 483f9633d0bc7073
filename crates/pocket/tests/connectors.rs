//! `http` connectors as separate processes: `pocket sandbox-bank` (signed both ways,
//! notifications for asynchronous operations) and a bank written in a few lines of
//! Python from docs/CONNECTORS.md alone.

mod common;

use common::{Killed, Options, Server, free_port, sandbox_bank};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "connector-secret-0123456789";

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
    assert_eq!(common::balance_of(&me["balances"], "CNY"), 20_000);
    // Unsigned or tampered notifications are refused.
    let path = "/v1/connectors/acme/notifications";
    let body =
        json!({"operation_id": t["id"], "amount": 10_000, "currency": "CNY", "status": "failed"})
            .to_string();
    let r = s
        .client
        .post(format!("{}{path}", s.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature = pocket_connectors::protocol::sign(
        "wrong-secret-0123456789",
        now,
        "POST",
        path,
        body.as_bytes(),
    );
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
    let late = json!({"operation_id": t["id"], "amount": 10_000, "currency": "CNY", "status": "failed", "decline_code": "card_declined"}).to_string();
    let signature = pocket_connectors::protocol::sign(SECRET, now, "POST", path, late.as_bytes());
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
        common::balance_of(
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
    assert_eq!(common::balance_of(&me["balances"], "CNY"), 6_000);
    let today = pocket_core::time::utc_date(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let r = s
        .get(
            &format!("/v1/admin/reconciliation?connector=acme&date={today}"),
            common::ADMIN_KEY,
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
    let replies = common::all(20, |_| {
        let (s, body) = (s.clone(), body.clone());
        async move {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let signature =
                pocket_connectors::protocol::sign(SECRET, now, "POST", path, body.as_bytes());
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
        common::balance_of(&me["balances"], "CNY"),
        10_000,
        "credited once"
    );
    s.assert_balanced().await;
}

//! The bank misbehaving while Pocket is killed: `pocket sandbox-bank` fails 20 % of
//! requests, loses, repeats and delays notifications, and Pocket gets `kill -9` every
//! few seconds during a run of mixed card top-ups, withdrawals and payouts. At the
//! end every operation is final, the ledger balances, reconciliation finds nothing
//! amiss, and every balance equals what the bank moved, to the minor unit.
//!
//! `POCKET_BANK_FAULT_OPS` sets the number of operations (default 2,000).

use crate::common::{ADMIN_KEY, Options, Server, free_port, sandbox_bank};
use rand::Rng;
use reqwest::Client;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "fault-run-secret-0123456789";

/// Sends a request with its idempotency key until the server answers (it may be
/// down, being killed and restarted): the same key, so it happens once.
async fn until_answered(
    client: &Client,
    url: &str,
    path: &str,
    auth: &str,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let started = Instant::now();
    loop {
        let sent = client
            .post(format!("{url}{path}"))
            .bearer_auth(auth)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        if let Ok(r) = sent {
            let status = r.status().as_u16();
            // 503: down or busy; 429: the wallet's PIN checks in flight when the server
            // was killed hold their places a few seconds. Both: ask again.
            if let Ok(v) = r.json::<Value>().await
                && status != 503
                && status != 429
            {
                return (status, v);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{path} never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An operation Pocket acknowledged: its id, kind, owner's credential and amount.
#[derive(Clone, Debug)]
struct Op {
    id: String,
    kind: &'static str,
    owner: usize,
    amount: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_books_match_the_bank_through_failures_and_kill_9() {
    let total: usize = std::env::var("POCKET_BANK_FAULT_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let (bank_port, pocket_port) = (free_port(), free_port());
    let pocket_url = format!("http://127.0.0.1:{pocket_port}");
    let mut s = Server::start_options(Options {
        args: vec!["--listen".into(), format!("127.0.0.1:{pocket_port}")],
        config: Some(format!(
            "[[connectors]]\nname = \"acme\"\nkind = \"http\"\ncurrencies = [\"CNY\"]\nurl = \"http://127.0.0.1:{bank_port}\"\nsecret = \"{SECRET}\"\n[limits]\nper_ip_per_second = 0\nper_credential_per_second = 0\n"
        )),
        env: vec![("POCKET_PIN_PER_IP_PER_MINUTE".into(), "0".into())],
        ..Options::default()
    })
    .await;
    let notify = format!("{pocket_url}/v1/connectors/acme/notifications");
    let _bank = sandbox_bank(
        bank_port,
        SECRET,
        &notify,
        &[
            "--async-delay",
            "1",
            "--fail-rate",
            "0.2",
            "--notification-chaos",
            "0.2",
        ],
    );
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Eight wallets with a card of each kind, and a merchant paid by them.
    let (_, sk) = s.merchant("Fault Shop").await;
    let mut wallets = Vec::new();
    for w in 0..8 {
        let (cus, token) = s.customer(&format!("+8613800007{w:03}"), 1_000_000).await;
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
        let mut cards = Vec::new();
        for number in [
            "4242424242424242",
            "4000000000003220",
            "4000000000000119",
            "4000000000000002",
            "4000000000000341",
        ] {
            let body = json!({"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123", "pin": "123456"});
            let (status, card) = until_answered(
                &client,
                &s.url,
                "/v1/wallet/cards",
                &token,
                &format!("bind-{w}-{number}"),
                &body,
            )
            .await;
            assert_eq!(status, 201, "{card}");
            cards.push(card["id"].as_str().unwrap().to_string());
        }
        wallets.push((token, cards));
    }
    let mut accounts = Vec::new();
    for number in ["6222020000001234", "6222020000000000"] {
        let body = json!({"holder_name": "Fault Shop", "account_number": number, "bank_code": "ICBC", "currency": "CNY"});
        let r = s.post("/v1/bank_accounts", &sk, body).await;
        accounts.push(r.body["id"].as_str().unwrap().to_string());
    }
    let wallets = Arc::new(wallets);
    let accounts = Arc::new(accounts);
    let done = Arc::new(AtomicUsize::new(0));
    let ops: Arc<Mutex<Vec<Op>>> = Arc::default();
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let (client, url, sk) = (client.clone(), s.url.clone(), sk.clone());
            let (wallets, accounts, done, ops) = (wallets.clone(), accounts.clone(), done.clone(), ops.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while done.fetch_add(1, Ordering::SeqCst) < total {
                    n += 1;
                    let key = format!("w{worker}-{n}");
                    let roll: u32 = rand::rng().random_range(0..10);
                    let amount = rand::rng().random_range(100..1_000);
                    let w = (worker + n) % wallets.len();
                    let (token, cards) = &wallets[w];
                    let card = &cards[rand::rng().random_range(0..cards.len())];
                    let (path, auth, body, kind, owner) = match roll {
                        0..=4 => ("/v1/wallet/topups", token.as_str(), json!({"amount": amount, "currency": "CNY", "card": card, "pin": "123456"}), "topup", w),
                        5..=7 => ("/v1/wallet/withdrawals", token.as_str(), json!({"amount": amount, "currency": "CNY", "card": card, "pin": "123456"}), "withdrawal", w),
                        _ => ("/v1/payouts", sk.as_str(), json!({"amount": amount, "currency": "CNY", "bank_account": accounts[n % 2]}), "payout", usize::MAX),
                    };
                    let (status, v) = until_answered(&client, &url, path, auth, &key, &body).await;
                    match status {
                        201 => ops.lock().unwrap().push(Op { id: v["id"].as_str().unwrap().to_string(), kind, owner, amount }),
                        402 => {}
                        other => panic!("{path}: {other} {v}"),
                    }
                }
            })
        })
        .collect();
    // kill -9 every second or so until the work is done.
    let mut kills = 0;
    let mut all_done = false;
    while !all_done {
        let wait = rand::rng().random_range(700..1_500);
        let slept = Instant::now();
        while slept.elapsed() < Duration::from_millis(wait) {
            if workers.iter().all(|w| w.is_finished()) {
                all_done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !all_done {
            s.kill9();
            s.start_again();
            kills += 1;
        }
    }
    for w in workers {
        w.await.unwrap();
    }
    let ran_for = started.elapsed();
    // Every operation ends final, whatever the bank did (polled from the owner's side).
    let ops = ops.lock().unwrap().clone();
    let mut final_status: HashMap<String, String> = HashMap::new();
    let waited = Instant::now();
    for op in &ops {
        let (path, auth) = match op.kind {
            "topup" => (
                format!("/v1/wallet/topups/{}", op.id),
                wallets[op.owner].0.clone(),
            ),
            "withdrawal" => (
                format!("/v1/wallet/withdrawals/{}", op.id),
                wallets[op.owner].0.clone(),
            ),
            _ => (format!("/v1/payouts/{}", op.id), sk.clone()),
        };
        loop {
            let r = s.get(&path, &auth).await;
            let status = r.body["status"].as_str().unwrap_or("").to_string();
            if status != "processing" {
                final_status.insert(op.id.clone(), status);
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(180),
                "{} never became final",
                op.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let finality = waited.elapsed();
    s.assert_balanced().await;
    // The bank's books and Pocket's agree.
    let today = pocket_core::time::utc_date(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let matched = loop {
        let r = s
            .get(
                &format!("/v1/admin/reconciliation?connector=acme&date={today}"),
                ADMIN_KEY,
            )
            .await;
        if r.status == 200 {
            for list in [
                "missing_at_connector",
                "missing_in_pocket",
                "amount_mismatches",
                "status_mismatches",
            ] {
                assert_eq!(r.body[list], json!([]), "{list}: {}", r.text);
            }
            break r.body["matched"].as_u64().unwrap();
        }
        // The statement itself may meet the bank's failures: ask again.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(matched as usize, ops.len());
    // Balances equal what the bank moved, to the minor unit.
    let mut wallet_expected = vec![1_000_000 - 20_000; wallets.len()];
    let mut merchant_expected = 8 * 20_000;
    let mut tally: HashMap<(&str, String), usize> = HashMap::new();
    for op in &ops {
        let st = final_status[&op.id].clone();
        let moved = st == "succeeded" || st == "paid";
        match (op.kind, moved) {
            ("topup", true) => wallet_expected[op.owner] += op.amount,
            ("withdrawal", true) => wallet_expected[op.owner] -= op.amount,
            ("payout", true) => merchant_expected -= op.amount,
            _ => {}
        }
        *tally.entry((op.kind, st)).or_default() += 1;
    }
    for (w, (token, _)) in wallets.iter().enumerate() {
        let me = s.get("/v1/wallet/me", token).await.body;
        let b = &me["balances"][0];
        assert_eq!(
            (
                b["available"].as_i64().unwrap(),
                b["reserved"].as_i64().unwrap()
            ),
            (wallet_expected[w], 0),
            "wallet {w}"
        );
    }
    assert_eq!(s.merchant_balance(&sk, "CNY").await, merchant_expected);
    s.stop();
    let (ok, out) = s.pocket(&["verify"]);
    assert!(ok, "{out}");
    let mut tally: Vec<_> = tally.into_iter().collect();
    tally.sort();
    eprintln!(
        "bank fault run: {} operations acknowledged in {ran_for:?} with {kills} kill -9 of Pocket, the bank failing 20 % of requests and losing, repeating and delaying 20 % of notifications; all final {finality:?} after the last was acknowledged: {tally:?}; reconciliation: {matched} matched, 0 missing, 0 mismatches; {} wallet balances and the merchant's equal what the bank moved",
        ops.len(),
        wallets.len()
    );
}

//! Customer-presented payment codes through the real binary: the wallet's device gets
//! its code secret once, at registration; the merchant's `POST /v1/payments` with
//! `payment_code` charges that wallet — once, also when the same code arrives twice at
//! once; one step old works, two do not; a revoked device's codes fail; random codes are
//! refused and wrong codes are bounded per merchant; nothing stored reveals a code or
//! its secret. The window at commit is proven to the millisecond with a manual clock in
//! `crates/store/tests/it/codes.rs`.

use crate::common::{Options, Server, all, jwk, new_key, now_ms};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pocket_core::code::{STEP_MS, code_at, step_of};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// A server, a merchant's key, and a wallet with a registered device.
struct Till {
    s: Arc<Server>,
    sk: String,
    customer: String,
    token: String,
    device: String,
    secret: Vec<u8>,
}

async fn till(s: Server, phone: &str, balance: i64) -> Till {
    let (_, sk) = s.merchant("Till").await;
    let (customer, token) = s.customer(phone, balance).await;
    let (device_id, secret) = s.register_device(&token).await;
    Till {
        s: Arc::new(s),
        sk,
        customer,
        token,
        device: device_id,
        secret,
    }
}

/// The current step, once at least `margin_ms` remain of it (so a test's codes keep
/// their age relative to the server's clock while it runs).
async fn step_with_margin(margin_ms: i64) -> i64 {
    let left = STEP_MS - now_ms().rem_euclid(STEP_MS);
    if left < margin_ms {
        tokio::time::sleep(Duration::from_millis(left as u64 + 10)).await;
    }
    step_of(now_ms())
}

/// The code the device shows `steps` steps from the current one.
fn code(secret: &[u8], step: i64) -> String {
    code_at(secret, step).as_str().to_string()
}

#[tokio::test]
async fn a_code_pays_the_small_tier_once_and_its_secret_is_shown_once() {
    let Till {
        s,
        sk,
        customer,
        token,
        device,
        secret,
    } = till(Server::start().await, "+8613800000101", 10_000).await;
    let step = step_with_margin(5_000).await;
    let shown = code(&secret, step);
    assert!(shown.starts_with("28") && shown.len() == 18);

    let paid = s.charge_code(&sk, &shown, 1_299).await;
    assert_eq!(paid.status, 201, "{}", paid.text);
    assert_eq!(paid.body["status"], "succeeded");
    assert_eq!(paid.body["customer"], customer.as_str());
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000 - 1_299);

    let again = s.charge_code(&sk, &shown, 1_299).await;
    again.assert_error(400, "payment_code_invalid");
    assert_eq!(again.param(), Some("payment_code"));
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000 - 1_299);

    // The secret is in the registration's answer only.
    let listed = s.get("/v1/wallet/devices", &token).await;
    assert!(!listed.text.contains("code_secret"), "{}", listed.text);
    assert_eq!(listed.body["data"][0]["id"], device.as_str());
    s.assert_balanced().await;
}

#[tokio::test]
async fn a_retried_registration_gets_the_same_secret() {
    let s = Server::start().await;
    let (_, token) = s.customer("+8613800000102", 0).await;
    let body = json!({"name": "phone", "public_key": jwk(&new_key()), "pin": "123456"});
    let first = s
        .call(
            Method::POST,
            "/v1/wallet/devices",
            Some(&token),
            Some(body.clone()),
            Some("reg-1"),
        )
        .await;
    let again = s
        .call(
            Method::POST,
            "/v1/wallet/devices",
            Some(&token),
            Some(body),
            Some("reg-1"),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(first.body["id"], again.body["id"]);
    assert_eq!(first.body["code_secret"], again.body["code_secret"]);
}

#[tokio::test]
async fn the_same_code_sent_twice_at_once_makes_one_payment() {
    let s = Arc::new(Server::start().await);
    let (_, sk) = s.merchant("Till").await;
    let (_, token) = s.customer("+8613800000103", 100_000).await;
    let (_, secret) = s.register_device(&token).await;
    let step = step_with_margin(10_000).await;
    let mut paid = 0;
    // Ten codes (this step's and the next's, then earlier... all within the window),
    // each sent 16 times at once.
    for step in [step - 1, step, step + 1] {
        let shown = code(&secret, step);
        let replies = all(16, |_| {
            let s = s.clone();
            let sk = sk.clone();
            let shown = shown.clone();
            async move {
                let r = s.charge_code(&sk, &shown, 100).await;
                (r.status.as_u16(), r.code().to_string())
            }
        })
        .await;
        let ok = replies.iter().filter(|(st, _)| *st == 201).count();
        assert_eq!(ok, 1, "{replies:?}");
        assert!(
            replies
                .iter()
                .all(|r| r.0 == 201 || r == &(400, "payment_code_invalid".to_string())),
            "{replies:?}"
        );
        paid += ok as i64;
    }
    assert_eq!(s.wallet_balance(&token, "CNY").await, 100_000 - paid * 100);
    s.assert_balanced().await;
}

#[tokio::test]
async fn one_step_old_works_two_steps_old_does_not() {
    let Till {
        s,
        sk,
        customer: _,
        token,
        device: _,
        secret,
    } = till(Server::start().await, "+8613800000104", 10_000).await;
    let step = step_with_margin(5_000).await;
    let old = s.charge_code(&sk, &code(&secret, step - 1), 100).await;
    assert_eq!(old.status, 201, "{}", old.text);
    s.charge_code(&sk, &code(&secret, step - 2), 100)
        .await
        .assert_error(400, "payment_code_invalid");
    s.charge_code(&sk, &code(&secret, step + 2), 100)
        .await
        .assert_error(400, "payment_code_invalid");
    let ahead = s.charge_code(&sk, &code(&secret, step + 1), 100).await;
    assert_eq!(ahead.status, 201, "a phone a little ahead: {}", ahead.text);
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000 - 200);
}

#[tokio::test]
async fn a_revoked_devices_codes_fail() {
    let Till {
        s,
        sk,
        customer: _,
        token,
        device,
        secret,
    } = till(Server::start().await, "+8613800000105", 10_000).await;
    let step = step_with_margin(5_000).await;
    // Known to the directory first, so the refusal is the commit's.
    assert_eq!(
        s.charge_code(&sk, &code(&secret, step), 100).await.status,
        201
    );
    let r = s.revoke_device(&token, &device).await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.charge_code(&sk, &code(&secret, step + 1), 100)
        .await
        .assert_error(400, "payment_code_invalid");
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000 - 100);
}

#[tokio::test]
async fn above_the_small_tier_the_payment_waits_in_the_wallet() {
    let Till {
        s,
        sk,
        customer,
        token,
        device: _,
        secret,
    } = till(Server::start().await, "+8613800000106", 100_000).await;
    let step = step_with_margin(5_000).await;
    let r = s.charge_code(&sk, &code(&secret, step), 50_000).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["customer"], customer.as_str());
    assert_eq!(r.body["policy"]["authentication"], "pin");
    let id = r.body["id"].as_str().unwrap();
    let listed = s.get("/v1/wallet/payments?status=pending", &token).await;
    assert_eq!(listed.body["data"][0]["id"], id, "{}", listed.text);
    s.confirm(&token, id, json!({}))
        .await
        .assert_error(401, "pin_required");
    let paid = s.confirm(&token, id, json!({"pin": "123456"})).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(s.wallet_balance(&token, "CNY").await, 50_000);
}

#[tokio::test]
async fn a_rule_applies_to_a_code_payment_at_once() {
    let Till {
        s,
        sk,
        customer: _,
        token,
        device: _,
        secret,
    } = till(Server::start().await, "+8613800000111", 10_000).await;
    for (name, when, action) in [
        ("pin at 7.77", "payment.amount == 777", "require_pin"),
        (
            "no 6.66",
            "payment.amount == 666 && customer.spent_today >= 0",
            "block",
        ),
    ] {
        let r = s
            .post(
                "/v1/admin/rules",
                crate::common::ADMIN_KEY,
                json!({"name": name, "when": when, "action": action}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let step = step_with_margin(5_000).await;
    // A raised proof: pending in the wallet, and the merchant's copy says why.
    let r = s.charge_code(&sk, &code(&secret, step), 777).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["policy"]["authentication"], "pin");
    assert_eq!(r.body["policy"]["rule"], "pin at 7.77");
    // A block (by a rule reading the customer): refused, nothing written, the code unused.
    s.charge_code(&sk, &code(&secret, step - 1), 666)
        .await
        .assert_error(402, "payment_blocked");
    let paid = s.charge_code(&sk, &code(&secret, step - 1), 100).await;
    assert_eq!(paid.body["status"], "succeeded", "{}", paid.text);
    assert_eq!(s.wallet_balance(&token, "CNY").await, 10_000 - 100);
}

#[tokio::test]
async fn bad_code_requests_change_nothing() {
    let Till {
        s,
        sk,
        customer,
        token: _,
        device: _,
        secret,
    } = till(Server::start().await, "+8613800000107", 500).await;
    let step = step_with_margin(5_000).await;
    let shown = code(&secret, step);
    for bad in [
        "",
        "28",
        "2812345678901234567",
        "99".repeat(9).as_str(),
        "28abcdefghijklmnop",
        "２８１２３４５６７８９０１２３４５６",
    ] {
        s.charge_code(&sk, bad, 100)
            .await
            .assert_error(400, "payment_code_invalid");
    }
    let both = s
        .post(
            "/v1/payments",
            &sk,
            json!({"amount": 100, "currency": "CNY", "payment_code": shown, "customer": customer}),
        )
        .await;
    both.assert_error(400, "parameter_invalid");
    assert_eq!(both.param(), Some("payment_code"));
    let wrong_type = s
        .post(
            "/v1/payments",
            &sk,
            json!({"amount": 100, "currency": "CNY", "payment_code": 281234567890123456u64}),
        )
        .await;
    assert_eq!(wrong_type.status, 400, "{}", wrong_type.text);
    // Too little money: refused, nothing written, the code still good.
    s.charge_code(&sk, &shown, 1_000)
        .await
        .assert_error(402, "insufficient_funds");
    let listed = s.get("/v1/payments", &sk).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(s.charge_code(&sk, &shown, 500).await.status, 201);
}

#[tokio::test]
async fn a_live_code_and_an_unknown_one_get_the_same_answer_to_a_bad_request() {
    let Till {
        s,
        sk,
        customer: _,
        token: _,
        device: _,
        secret,
    } = till(Server::start().await, "+8613800000110", 10_000).await;
    let step = step_with_margin(5_000).await;
    let live = code(&secret, step);
    let unknown = "280000000000000001";
    let bad_requests = [
        json!({"amount": 100, "currency": "CNY", "expires_in": 100_000}),
        json!({"amount": 100_000_000_000i64, "currency": "CNY"}),
        json!({"amount": 100, "currency": "CNY", "items": [{"sku": "nothing", "quantity": 1}]}),
    ];
    for body in bad_requests {
        let answer = |c: &str| {
            let mut b = body.clone();
            b["payment_code"] = json!(c);
            b
        };
        let a = s.post("/v1/payments", &sk, answer(&live)).await;
        let b = s.post("/v1/payments", &sk, answer(unknown)).await;
        assert_eq!(
            (a.status, a.code()),
            (b.status, b.code()),
            "{body}: {} / {}",
            a.text,
            b.text
        );
        assert_ne!(a.status, 201);
    }
    // The live code was neither used nor spent by those.
    assert_eq!(s.charge_code(&sk, &live, 100).await.status, 201);
}

#[tokio::test]
async fn ten_thousand_random_codes_are_all_refused() {
    let s = Arc::new(
        Server::start_options(Options {
            args: vec!["--sandbox".into()],
            env: vec![
                ("POCKET_CODE_FAILURES_PER_MINUTE".into(), "0".into()),
                ("POCKET_RATE_PER_CREDENTIAL".into(), "0".into()),
                ("POCKET_RATE_PER_IP".into(), "0".into()),
            ],
            ..Options::default()
        })
        .await,
    );
    let (_, sk) = s.merchant("Till").await;
    let mut wallets = Vec::new();
    for i in 0..5 {
        let (_, token) = s.customer(&format!("+86138000002{i:02}"), 10_000).await;
        s.register_device(&token).await;
        wallets.push(token);
    }
    // Most in the codes' own range (28…), a tenth anywhere in 18 digits.
    let guesses: Arc<Vec<String>> = Arc::new({
        use rand::Rng;
        let mut rng = rand::rng();
        (0..10_000)
            .map(|i| {
                if i % 10 == 0 {
                    format!("{:018}", rng.random_range(0..1_000_000_000_000_000_000u64))
                } else {
                    format!("28{:016}", rng.random_range(0..10_000_000_000_000_000u64))
                }
            })
            .collect()
    });
    let refused = all(32, |worker| {
        let s = s.clone();
        let sk = sk.clone();
        let guesses = guesses.clone();
        async move {
            let mut refused = 0;
            for guess in guesses.iter().skip(worker).step_by(32) {
                let r = s.charge_code(&sk, guess, 100).await;
                assert_eq!(r.status, 400, "{guess}: {}", r.text);
                assert_eq!(r.code(), "payment_code_invalid");
                refused += 1;
            }
            refused
        }
    })
    .await;
    assert_eq!(refused.iter().sum::<usize>(), 10_000);
    let listed = s.get("/v1/payments", &sk).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 0);
    for token in &wallets {
        assert_eq!(s.wallet_balance(token, "CNY").await, 10_000);
    }
}

#[tokio::test]
async fn guessing_is_bounded_per_merchant_by_the_unknown_code_limit() {
    let s = Arc::new(
        Server::start_options(Options {
            args: vec!["--sandbox".into()],
            env: vec![("POCKET_CODE_FAILURES_PER_MINUTE".into(), "20".into())],
            ..Options::default()
        })
        .await,
    );
    let (_, sk) = s.merchant("Guesser").await;
    let (_, other_sk) = s.merchant("Honest").await;
    let (_, token) = s.customer("+8613800000108", 10_000).await;
    let (_, secret) = s.register_device(&token).await;
    // Clear of a minute's end, so all guesses count in one minute.
    let left = 60_000 - now_ms().rem_euclid(60_000);
    if left < 10_000 {
        tokio::time::sleep(Duration::from_millis(left as u64 + 10)).await;
    }
    // 40 guesses at once: each is counted before it is looked up, so exactly 20 are
    // looked at and the rest refused unread.
    let answers = all(40, |i| {
        let s = s.clone();
        let sk = sk.clone();
        async move {
            let r = s
                .charge_code(&sk, &format!("28{:016}", 1_000_000 + i), 100)
                .await;
            (
                r.status.as_u16(),
                r.code().to_string(),
                r.headers.get("retry-after").is_some(),
            )
        }
    })
    .await;
    let looked_at = answers.iter().filter(|a| a.0 == 400).count();
    let refused = answers
        .iter()
        .filter(|a| a.0 == 429 && a.1 == "rate_limited" && a.2)
        .count();
    assert_eq!((looked_at, refused), (20, 20), "{answers:?}");
    // Once over, even the right code is refused unread: guessing cannot continue.
    let step = step_of(now_ms());
    let right = s.charge_code(&sk, &code(&secret, step), 100).await;
    right.assert_error(429, "rate_limited");
    // Another merchant is not held up.
    let other = s.charge_code(&other_sk, &code(&secret, step), 100).await;
    assert_eq!(other.status, 201, "{}", other.text);
}

#[tokio::test]
async fn nothing_stored_reveals_a_code_or_its_secret() {
    let Till {
        s,
        sk,
        customer,
        token: _,
        device: _,
        secret,
    } = till(Server::start().await, "+8613800000109", 10_000).await;
    let step = step_with_margin(5_000).await;
    let shown = code(&secret, step);
    let paid = s.charge_code(&sk, &shown, 100).await;
    assert_eq!(paid.status, 201, "{}", paid.text);
    // The code names neither the customer nor the phone.
    assert!(!shown.contains(customer.trim_start_matches("cus_")));
    assert!(!shown.contains("13800000109"));
    let secret_text = URL_SAFE_NO_PAD.encode(&secret);
    let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    for (what, bytes) in s.stored_bytes() {
        for needle in [
            shown.as_bytes(),
            &shown.as_bytes()[2..],
            secret_text.as_bytes(),
            secret_hex.as_bytes(),
            &secret[..],
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{what} holds a code or the code secret"
            );
        }
    }
    let payment: Value = paid.body;
    assert!(
        !payment.to_string().contains(&shown),
        "the payment does not echo the code"
    );
}

/// The review stepped the amount down on one live code, 402 after 402, until it found
/// the wallet's exact balance and took it. Now the payer's refusals of a code are
/// counted: after three the code is spent, and the next step's code is a fresh start.
#[tokio::test]
async fn a_live_code_is_no_balance_oracle() {
    let t = till(Server::start().await, "+8613800000131", 1_234).await;
    let step = step_with_margin(8_000).await;
    let shown = code(&t.secret, step);
    for amount in [4_000, 2_000, 1_500] {
        t.s.charge_code(&t.sk, &shown, amount)
            .await
            .assert_error(402, "insufficient_funds");
    }
    // The exact balance, on the same code: refused as a spent code.
    t.s.charge_code(&t.sk, &shown, 1_234)
        .await
        .assert_error(400, "payment_code_invalid");
    assert_eq!(t.s.wallet_balance(&t.token, "CNY").await, 1_234);
    // 20 parallel tries of the next code: at most three are looked at.
    let next = code(&t.secret, step + 1);
    let answers = all(20, |i| {
        let (s, sk, next) = (t.s.clone(), t.sk.clone(), next.clone());
        async move {
            s.charge_code(&sk, &next, 5_000 - i as i64)
                .await
                .code()
                .to_string()
        }
    })
    .await;
    let looked = answers
        .iter()
        .filter(|c| *c == "insufficient_funds")
        .count();
    assert_eq!(looked, 3, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|c| c == "insufficient_funds" || c == "payment_code_invalid")
    );
    assert_eq!(t.s.wallet_balance(&t.token, "CNY").await, 1_234);
    t.s.assert_balanced().await;
}

/// The contract says signing out revokes the wallet's device; only the web app asked,
/// best effort. Now the sign-out's own transaction revokes the devices its session
/// registered: a code shown before sign-out no longer pays. Another session's device
/// (the customer's other phone) keeps working.
#[tokio::test]
async fn signing_out_revokes_the_sessions_devices() {
    let t = till(Server::start().await, "+8613800000132", 10_000).await;
    // A second phone: its own session, its own device.
    let r =
        t.s.post(
            "/v1/wallet/sessions",
            "",
            json!({"phone": "+8613800000132", "pin": "123456"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let other_token = r.body["token"].as_str().unwrap().to_string();
    let (other_device, other_secret) = t.s.register_device(&other_token).await;
    let step = step_with_margin(5_000).await;
    let r =
        t.s.call(
            Method::DELETE,
            "/v1/wallet/sessions/current",
            Some(&t.token),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    t.s.charge_code(&t.sk, &code(&t.secret, step), 100)
        .await
        .assert_error(400, "payment_code_invalid");
    let devices = t.s.get("/v1/wallet/devices", &other_token).await;
    let revoked = |id: &str| {
        devices.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .map(|d| !d["revoked_at"].is_null())
    };
    assert_eq!(revoked(&t.device), Some(true), "{}", devices.text);
    assert_eq!(revoked(&other_device), Some(false), "{}", devices.text);
    let paid =
        t.s.charge_code(&t.sk, &code(&other_secret, step), 100)
            .await;
    assert_eq!(paid.status, 201, "{}", paid.text);
    assert_eq!(t.s.wallet_balance(&other_token, "CNY").await, 10_000 - 100);
}

//! Device keys for large payments, key rolling, rate limits, TLS, Request-Id, and
//! logs that never contain a secret.

use crate::common::{ADMIN_KEY, Options, Server, jwk, new_key};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// The contract's message, built here from the payment's fields.
fn message(p: &Value) -> String {
    format!(
        "pocket-confirm:v1:{}:{}:{}:{}:{}",
        p["id"].as_str().unwrap(),
        p["amount"],
        p["currency"].as_str().unwrap(),
        p["merchant"].as_str().unwrap(),
        p["expires_at"].as_str().unwrap()
    )
}

fn sign(k: &SigningKey, msg: &str) -> String {
    let s: Signature = k.sign(msg.as_bytes());
    URL_SAFE_NO_PAD.encode(s.to_bytes())
}

#[tokio::test]
async fn large_payments_need_a_device_signature() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Jeweller").await;
    let (cus, token) = s.customer("+8613800000001", 100_000_000).await;
    let key = new_key();
    // Registering needs the PIN; bad keys are refused.
    s.post(
        "/v1/wallet/devices",
        &token,
        json!({"name": "phone", "public_key": jwk(&key), "pin": "000000"}),
    )
    .await
    .assert_error(401, "incorrect_pin");
    let mut private = jwk(&key);
    private["d"] = json!("AAAA");
    for bad in [
        private,
        json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        json!("not a jwk"),
        {
            let mut off = jwk(&key);
            off["y"] = off["x"].clone();
            off
        },
    ] {
        s.post(
            "/v1/wallet/devices",
            &token,
            json!({"name": "phone", "public_key": bad, "pin": "123456"}),
        )
        .await
        .assert_error(400, "parameter_invalid");
    }
    let r = s
        .post(
            "/v1/wallet/devices",
            &token,
            json!({"name": "phone", "public_key": jwk(&key), "pin": "123456"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let device = r.body["id"].as_str().unwrap().to_string();
    assert!(r.body.get("public_key").is_none());

    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 1_000_000, "customer": cus}),
        )
        .await;
    assert_eq!(p["policy"]["authentication"], "pin_and_device");
    let id = p["id"].as_str().unwrap();
    let good = sign(&key, &message(&p));
    let confirm = |body: Value| s.confirm(&token, id, body);
    confirm(json!({"pin": "123456"}))
        .await
        .assert_error(401, "device_signature_required");
    confirm(json!({"device": device, "signature": good}))
        .await
        .assert_error(401, "pin_required");
    // Malformed, by another key, over another amount, over another payment.
    for sig in [
        "%%%".to_string(),
        "AAAA".to_string(),
        sign(&new_key(), &message(&p)),
        sign(&key, &message(&p).replace(":1000000:", ":1000001:")),
        sign(
            &key,
            &message(&p).replace(id, "pay_AAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
    ] {
        confirm(json!({"pin": "123456", "device": device, "signature": sig}))
            .await
            .assert_error(401, "invalid_signature");
    }
    confirm(json!({"pin": "123456", "device": "dev_AAAAAAAAAAAAAAAAAAAAAAAA", "signature": good}))
        .await
        .assert_error(401, "invalid_signature");
    assert_eq!(
        s.get(&format!("/v1/payments/{id}"), &sk).await.body["status"],
        "pending"
    );
    let r = confirm(json!({"pin": "123456", "device": device, "signature": good})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Replayed: the payment is done; on another payment the signature is worthless.
    confirm(json!({"pin": "123456", "device": device, "signature": good}))
        .await
        .assert_error(409, "payment_not_pending");
    let q = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 1_000_000, "customer": cus}),
        )
        .await;
    let qid = q["id"].as_str().unwrap();
    s.confirm(
        &token,
        qid,
        json!({"pin": "123456", "device": device, "signature": good}),
    )
    .await
    .assert_error(401, "invalid_signature");
    // Revoked: even a correct signature no longer confirms.
    let r = s.revoke_device(&token, &device).await;
    assert!(r.body["revoked_at"].is_string());
    s.confirm(
        &token,
        qid,
        json!({"pin": "123456", "device": device, "signature": sign(&key, &message(&q))}),
    )
    .await
    .assert_error(401, "invalid_signature");
    let list = s.get("/v1/wallet/devices", &token).await;
    assert_eq!(list.body["data"][0]["id"], device.as_str());
    assert_eq!(
        s.wallet_balance(&token, "CNY").await,
        100_000_000 - 1_000_000
    );
}

#[tokio::test]
async fn merchant_keys_roll_over() {
    let s = Server::start().await;
    let (id, first) = s.merchant("M").await;
    let r = s
        .post(
            &format!("/v1/admin/merchants/{id}/keys"),
            ADMIN_KEY,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.body["secret_key"].as_str().unwrap().to_string();
    s.get("/v1/balance", &first)
        .await
        .assert_error(401, "invalid_api_key");
    assert_eq!(s.get("/v1/balance", &second).await.status, 200);
    let r = s
        .post(
            &format!("/v1/admin/merchants/{id}/keys"),
            ADMIN_KEY,
            json!({"expire_current_in": 3600}),
        )
        .await;
    let third = r.body["secret_key"].as_str().unwrap().to_string();
    assert_eq!(
        s.get("/v1/balance", &second).await.status,
        200,
        "the old key lives on for an hour"
    );
    assert_eq!(s.get("/v1/balance", &third).await.status, 200);
    s.post(
        &format!("/v1/admin/merchants/{id}/keys"),
        ADMIN_KEY,
        json!({"expire_current_in": 86_401}),
    )
    .await
    .assert_error(400, "parameter_invalid");
    s.post(
        "/v1/admin/merchants/mer_AAAAAAAAAAAAAAAAAAAAAAAA/keys",
        ADMIN_KEY,
        json!({}),
    )
    .await
    .assert_error(404, "resource_missing");
    s.post(&format!("/v1/admin/merchants/{id}/keys"), &third, json!({}))
        .await
        .assert_error(401, "invalid_api_key");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let s = Server::start_options(Options {
        config: Some("[limits]\nper_credential_per_second = 1\nper_credential_burst = 3\nper_ip_per_second = 1\nper_ip_burst = 30\n".into()),
        ..Options::default()
    })
    .await;
    let (_, sk) = s.merchant("M").await;
    let mut codes = vec![];
    for _ in 0..5 {
        codes.push(s.get("/v1/balance", &sk).await);
    }
    let limited = codes.iter().find(|r| r.status == 429).expect("a 429");
    limited.assert_error(429, "rate_limited");
    assert_eq!(limited.body["error"]["type"], "rate_limit_error");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry));
    // Per IP as well, whatever the credential.
    let mut last = None;
    for _ in 0..40 {
        last = Some(s.call(Method::GET, "/healthz", None, None, None).await);
    }
    last.unwrap().assert_error(429, "rate_limited");
}

#[tokio::test]
async fn tls_with_http1_and_http2() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let s = Server::start_with(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ])
    .await;
    assert!(s.url.starts_with("https://"));
    let url = s.url.replace("127.0.0.1", "localhost");
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    for (http2, version) in [
        (false, reqwest::Version::HTTP_11),
        (true, reqwest::Version::HTTP_2),
    ] {
        let mut b = reqwest::Client::builder()
            .add_root_certificate(root.clone())
            .tls_built_in_root_certs(false);
        b = if http2 { b } else { b.http1_only() };
        let r = b
            .build()
            .unwrap()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.version(), version);
    }
    // Plain HTTP to the TLS port is not served.
    let plain = reqwest::Client::new()
        .get(url.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    // The port takes the connection and answers in TLS, which is no HTTP answer at all:
    // no status, no page, nothing served in the clear.
    match plain {
        Err(e) => assert!(!e.is_connect() && !e.is_timeout(), "{e:?}"),
        Ok(r) => panic!("plain HTTP was answered: {}", r.status()),
    }
    // A missing certificate stops the start, naming it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pocket"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent.pem",
            "--tls-key",
            key_path.to_str().unwrap(),
            "--data",
        ])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.tls.cert"));
}

#[tokio::test]
async fn every_response_has_a_request_id_and_no_secret_is_ever_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pocket.log");
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
    let pin = "482916";
    let r = s
        .post("/v1/admin/merchants", ADMIN_KEY, json!({"name": "M"}))
        .await;
    let request_id = r.headers["request-id"].to_str().unwrap().to_string();
    assert!(request_id.starts_with("req_"));
    let sk = r.body["secret_key"].as_str().unwrap().to_string();
    let signup = s
        .call(
            Method::POST,
            "/v1/wallet/signup",
            None,
            Some(json!({"phone": "+8613800000009", "name": "N", "pin": pin})),
            None,
        )
        .await;
    let cus = signup.body["customer"]["id"].as_str().unwrap().to_string();
    let session = s
        .call(
            Method::POST,
            "/v1/wallet/sessions",
            None,
            Some(json!({"phone": "+8613800000009", "pin": pin})),
            Some("login-1"),
        )
        .await;
    let token = session.body["token"].as_str().unwrap().to_string();
    s.post(
        "/v1/wallet/topups",
        &token,
        json!({"amount": 10_000_000, "currency": "CNY"}),
    )
    .await;
    let hook = s
        .post(
            "/v1/webhook_endpoints",
            &sk,
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    let whsec = hook.body["secret"].as_str().unwrap().to_string();
    let ticket = s
        .call(
            Method::POST,
            "/v1/wallet/events/tickets",
            Some(&token),
            None,
            None,
        )
        .await
        .body["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let stream = s
        .client
        .get(format!("{}/v1/wallet/events?ticket={ticket}", s.url))
        .send()
        .await
        .unwrap();
    drop(stream);
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 30_000, "customer": cus}),
        )
        .await;
    s.confirm(&token, p["id"].as_str().unwrap(), json!({"pin": pin}))
        .await;
    s.confirm(&token, p["id"].as_str().unwrap(), json!({"pin": "000000"}))
        .await;
    let key = new_key();
    s.post(
        "/v1/wallet/devices",
        &token,
        json!({"name": "phone", "public_key": jwk(&key), "pin": pin}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&request_id), "log lines carry the request id");
    assert!(text.lines().count() > 20, "the log was captured");
    for secret in [ADMIN_KEY, &sk, &token, &whsec, &ticket, pin] {
        assert!(
            !text.contains(secret),
            "a secret ({}…) appears in the log",
            &secret[..4]
        );
    }
}

//! Webhooks through the real server and real receivers on loopback: every event
//! arrives signed (verified here with the test's own HMAC code), failures are retried,
//! a dead endpoint delays nobody, and deliveries survive a restart.

use crate::common::receiver::{Answer, Receiver};
use crate::common::{ADMIN_KEY, Options, Server};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A Stripe-style verifier written for the test (not the server's code): parse
/// `t=…,v1=…`, recompute HMAC-SHA256(secret, "t.body"), compare, and refuse
/// timestamps older than `tolerance`.
fn verify(secret: &str, header: &str, body: &str, tolerance: Duration) -> Result<(), &'static str> {
    let mut t = None;
    let mut v1 = vec![];
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1.push(v.to_string()),
            _ => {}
        }
    }
    let t = t.ok_or("no timestamp")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(t) > tolerance.as_secs() {
        return Err("stale timestamp");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected = hex_lower(&mac.finalize().into_bytes());
    if v1.iter().any(|s| s == &expected) {
        Ok(())
    } else {
        Err("signature mismatch")
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Retries after 1 s so the schedule plays out in test time; attempts time out after 1 s.
const FAST: &str = "[webhooks]\nretry_schedule_seconds = [1, 1, 1, 1, 1]\ntimeout_seconds = 1\n";

async fn fast_server() -> Server {
    Server::start_options(Options {
        args: vec!["--sandbox".into()],
        config: Some(FAST.into()),
        ..Options::default()
    })
    .await
}

async fn endpoint(s: &Server, sk: &str, url: &str) -> (String, String) {
    let r = s
        .post("/v1/webhook_endpoints", sk, json!({"url": url}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["events"], json!(["*"]));
    (
        r.body["id"].as_str().unwrap().into(),
        r.body["secret"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn every_event_arrives_signed_and_verifiable() {
    let s = Server::start().await;
    let rx = Receiver::start(vec![], Answer::Ok).await;
    let (_, sk) = s.merchant("M").await;
    let (_, secret) = endpoint(&s, &sk, &rx.url).await;
    assert!(secret.starts_with("whsec_"));
    let (cus, token) = s.customer("+8613800000001", 10_000).await;
    let p = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 500, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(s.confirm(&token, id, json!({})).await.status, 200);
    assert_eq!(
        s.post(&format!("/v1/payments/{id}/refunds"), &sk, json!({}))
            .await
            .status,
        201
    );

    let got = rx.wait_for(Duration::from_secs(5), |g| g.len() >= 3).await;
    let events = s.get("/v1/events", &sk).await.body["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(events.len(), 3);
    for e in &events {
        let r = got
            .iter()
            .find(|r| r.event_id == e["id"])
            .expect("every event delivered");
        verify(&secret, &r.signature, &r.body, Duration::from_secs(300))
            .expect("genuine signature verifies");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(&body, e, "the body is the event as GET /v1/events shows it");
        // Tampering, another secret and a stale timestamp are all caught.
        let tampered = r.body.replace("\"amount\":500", "\"amount\":5");
        assert_eq!(
            verify(&secret, &r.signature, &tampered, Duration::from_secs(300)),
            Err("signature mismatch")
        );
        assert_eq!(
            verify(
                "whsec_wrong",
                &r.signature,
                &r.body,
                Duration::from_secs(300)
            ),
            Err("signature mismatch")
        );
        let t: u64 = r.signature.split(',').next().unwrap()[2..].parse().unwrap();
        let stale = r
            .signature
            .replace(&format!("t={t}"), &format!("t={}", t - 3600));
        assert_eq!(
            verify(&secret, &stale, &r.body, Duration::from_secs(300)),
            Err("stale timestamp")
        );
    }
    // Attempts are visible, and an event can be sent again on request.
    let evt = events[0]["id"].as_str().unwrap();
    let d = s.get(&format!("/v1/events/{evt}/deliveries"), &sk).await;
    assert_eq!(d.body["data"][0]["status_code"], 200, "{}", d.text);
    assert!(d.body["data"][0]["duration_ms"].is_i64());
    assert!(d.body["data"][0]["attempted_at"].is_string());
    let r = s
        .post(&format!("/v1/events/{evt}/redeliver"), &sk, json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["deliveries"], 1);
    rx.wait_for(Duration::from_secs(5), |g| {
        g.iter().filter(|r| r.event_id == evt).count() == 2
    })
    .await;
    // Another merchant sees neither the attempts nor can redeliver.
    let (_, other) = s.merchant("Other").await;
    s.get(&format!("/v1/events/{evt}/deliveries"), &other)
        .await
        .assert_error(404, "resource_missing");
}

// The receiver records each arrival's time on this test's runtime: with worker threads
// of its own, a busy machine does not delay one arrival's record and shrink a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_until_a_2xx() {
    let s = fast_server().await;
    // 500, a redirect, a dropped connection, an answer after the timeout, then 200.
    let rx = Receiver::start(
        vec![
            Answer::Status(500),
            Answer::Redirect,
            Answer::Drop,
            Answer::Slow(Duration::from_millis(2500)),
        ],
        Answer::Ok,
    )
    .await;
    let (_, sk) = s.merchant("M").await;
    endpoint(&s, &sk, &rx.url).await;
    let p = s
        .payment(&sk, json!({"currency": "CNY", "amount": 500}))
        .await;
    let got = rx.wait_for(Duration::from_secs(20), |g| g.len() >= 5).await;
    assert!(got.iter().all(|r| r.event_id == got[0].event_id));
    // Roughly a second (±10 % jitter) between attempts, never faster.
    for pair in got.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(850),
            "retried too fast"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let evt = got[0].event_id.clone();
    let d = s.get(&format!("/v1/events/{evt}/deliveries"), &sk).await;
    let attempts = d.body["data"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 5, "{}", d.text);
    // Newest first: the 2xx, the timeout, the dropped connection, the redirect, the 500.
    assert_eq!(attempts[0]["status_code"], 200);
    assert_eq!(attempts[1]["status_code"], Value::Null);
    assert!(
        attempts[1]["error"]
            .as_str()
            .unwrap()
            .contains("no response within")
    );
    assert_eq!(attempts[2]["status_code"], Value::Null);
    assert_eq!(attempts[3]["status_code"], 302);
    assert_eq!(attempts[4]["status_code"], 500);
    // Delivered: nothing more is sent.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(rx.received().len(), 5);
    let _ = p;
}

#[tokio::test]
async fn a_dead_endpoint_delays_no_one_else() {
    let s = fast_server().await;
    let dead = Receiver::start(vec![], Answer::Slow(Duration::from_secs(30))).await;
    let live = Receiver::start(vec![], Answer::Ok).await;
    let (_, sk_dead) = s.merchant("Dead").await;
    let (_, sk_live) = s.merchant("Live").await;
    endpoint(&s, &sk_dead, &dead.url).await;
    endpoint(&s, &sk_live, &live.url).await;
    // 1,000 events queued for the dead endpoint.
    let started_all = Instant::now();
    for _ in 0..1000 {
        s.payment(&sk_dead, json!({"currency": "CNY", "amount": 100}))
            .await;
    }
    // The live endpoint still hears of its payments at once.
    for i in 0..5 {
        let created = Instant::now();
        let p = s
            .payment(&sk_live, json!({"currency": "CNY", "amount": 100 + i}))
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        let got = live
            .wait_for(Duration::from_secs(3), |g| {
                g.iter().any(|r| r.body.contains(&id))
            })
            .await;
        let latency = got.iter().find(|r| r.body.contains(&id)).unwrap().at - created;
        assert!(
            latency < Duration::from_millis(1000),
            "live endpoint waited {latency:?}"
        );
    }
    // The API is not slowed either.
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(s.get("/v1/payments?limit=1", &sk_live).await.status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // And the dead endpoint never has more than its share (2) in flight: each attempt
    // holds a slot for the 1 s timeout.
    let most = 2 * (started_all.elapsed().as_secs() as usize + 2);
    assert!(
        dead.received().len() <= most,
        "dead endpoint got {} attempts, at most {most} expected",
        dead.received().len()
    );
}

#[tokio::test]
async fn deliveries_resume_after_a_restart_and_are_not_repeated() {
    let mut s = Server::start_options(Options {
        config: Some("[webhooks]\nretry_schedule_seconds = [2, 2, 2]\n".into()),
        ..Options::default()
    })
    .await;
    let rx = Receiver::start(vec![Answer::Status(503)], Answer::Ok).await;
    let (_, sk) = s.merchant("M").await;
    endpoint(&s, &sk, &rx.url).await;
    s.payment(&sk, json!({"currency": "CNY", "amount": 100}))
        .await;
    rx.wait_for(Duration::from_secs(5), |g| !g.is_empty()).await;
    // Restart in the middle of the retry schedule. (The wait is a deadline, not a
    // figure: under the whole suite's load on PostgreSQL a restart and the 2 s retry
    // once took longer than 10 s.)
    s.restart();
    let got = rx.wait_for(Duration::from_secs(30), |g| g.len() >= 2).await;
    assert_eq!(got[0].event_id, got[1].event_id);
    // Acknowledged: a further restart sends nothing again.
    s.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rx.received().len(), 2);
}

#[tokio::test]
async fn endpoint_management_and_event_filters() {
    let s = Server::start().await;
    let rx = Receiver::start(vec![], Answer::Ok).await;
    let (_, sk) = s.merchant("M").await;
    let r = s
        .post(
            "/v1/webhook_endpoints",
            &sk,
            json!({"url": rx.url, "events": ["payment.canceled"]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_string();
    let list = s.get("/v1/webhook_endpoints", &sk).await;
    assert_eq!(list.body["data"][0]["id"], id.as_str());
    assert!(
        list.body["data"][0].get("secret").is_none(),
        "the secret is shown only once"
    );
    let p = s
        .payment(&sk, json!({"currency": "CNY", "amount": 100}))
        .await;
    let pid = p["id"].as_str().unwrap();
    s.post(&format!("/v1/payments/{pid}/cancel"), &sk, json!({}))
        .await;
    let got = rx.wait_for(Duration::from_secs(5), |g| !g.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), 1, "only the subscribed type");
    assert!(got[0].body.contains("payment.canceled"));
    // Deleted: nothing more.
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(&sk),
            None,
            None,
        )
        .await;
    assert_eq!(r.body["deleted"], true);
    let q = s
        .payment(&sk, json!({"currency": "CNY", "amount": 100}))
        .await;
    s.post(
        &format!("/v1/payments/{}/cancel", q["id"].as_str().unwrap()),
        &sk,
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received().len(), 1);
    // Bad input.
    s.post(
        "/v1/webhook_endpoints",
        &sk,
        json!({"url": rx.url, "events": ["payment.teleported"]}),
    )
    .await
    .assert_error(400, "parameter_invalid");
    s.post(
        "/v1/webhook_endpoints",
        &sk,
        json!({"url": "ftp://example.com/x"}),
    )
    .await
    .assert_error(400, "parameter_invalid");
    s.call(
        Method::DELETE,
        &format!("/v1/webhook_endpoints/{id}"),
        Some(&sk),
        None,
        None,
    )
    .await
    .assert_error(404, "resource_missing");
}

#[tokio::test]
async fn webhook_url_at_merchant_creation() {
    let s = Server::start().await;
    let rx = Receiver::start(vec![], Answer::Ok).await;
    let r = s
        .post(
            "/v1/admin/merchants",
            ADMIN_KEY,
            json!({"name": "Hooked", "webhook_url": rx.url}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.body["webhook_endpoint"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let sk = r.body["secret_key"].as_str().unwrap().to_string();
    s.payment(&sk, json!({"currency": "CNY", "amount": 100}))
        .await;
    let got = rx.wait_for(Duration::from_secs(5), |g| !g.is_empty()).await;
    verify(
        &secret,
        &got[0].signature,
        &got[0].body,
        Duration::from_secs(300),
    )
    .unwrap();
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let s = Server::start_options(Options {
        env: vec![("POCKET_WEBHOOKS_ALLOW_PRIVATE".into(), "false".into())],
        ..Options::default()
    })
    .await;
    let (_, sk) = s.merchant("M").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://[::1]/",
    ] {
        s.post("/v1/webhook_endpoints", &sk, json!({"url": url}))
            .await
            .assert_error(400, "parameter_invalid");
    }
    s.post(
        "/v1/admin/merchants",
        ADMIN_KEY,
        json!({"name": "x", "webhook_url": "http://192.168.0.10/"}),
    )
    .await
    .assert_error(400, "parameter_invalid");
    assert_eq!(
        s.post(
            "/v1/webhook_endpoints",
            &sk,
            json!({"url": "https://hooks.example.com/pocket"})
        )
        .await
        .status,
        201
    );
}

/// The README's Python verifier, run as written against a real delivery.
#[tokio::test]
async fn the_readme_python_verifier_accepts_real_deliveries_and_refuses_tampering() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        // CI installs it (.ci/run's machine has it): there, a missing python3 fails.
        assert!(
            std::env::var("CI").is_err(),
            "python3 is needed to run the README's verifier"
        );
        eprintln!("SKIPPED: python3 is not installed, the README's verifier is not run");
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = &readme[readme.find("<!-- verify:start -->").unwrap()
        ..readme.find("<!-- verify:end -->").unwrap()];
    let code = &block[block.find("```python\n").unwrap() + 10..block.rfind("```").unwrap()];
    let s = Server::start().await;
    let rx = Receiver::start(vec![], Answer::Ok).await;
    let (_, sk) = s.merchant("M").await;
    let (_, secret) = endpoint(&s, &sk, &rx.url).await;
    s.payment(&sk, json!({"currency": "CNY", "amount": 500}))
        .await;
    let got = rx.wait_for(Duration::from_secs(5), |g| !g.is_empty()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), &got[0].body).unwrap();
    let script = format!(
        "{code}\nimport sys\nbody = open(sys.argv[3], 'rb').read()\nprint(verify(sys.argv[1], sys.argv[2], body))\n\
         print(verify(sys.argv[1], sys.argv[2], body + b' '))\nprint(verify('whsec_other', sys.argv[2], body))\n"
    );
    std::fs::write(dir.path().join("verify.py"), script).unwrap();
    let out = std::process::Command::new("python3")
        .arg(dir.path().join("verify.py"))
        .args([&secret, &got[0].signature])
        .arg(dir.path().join("body"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "True\nFalse\nFalse\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A proxy in the server's environment would connect to the webhook host for it, past
/// the guarded resolver; it is never used.
#[tokio::test]
async fn a_proxy_from_the_environment_is_never_used() {
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = proxy.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let mut options = Options {
        config: Some(FAST.into()),
        ..Options::default()
    };
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
    ] {
        options.env.push((var.into(), proxy_url.clone()));
    }
    options
        .env
        .push(("POCKET_WEBHOOKS_ALLOW_PRIVATE".into(), "false".into()));
    let s = Server::start_options(options).await;
    let (_, sk) = s.merchant("M").await;
    endpoint(&s, &sk, "http://hooks.example.com/pocket").await;
    s.payment(&sk, json!({"currency": "CNY", "amount": 500}))
        .await;
    let events = s.get("/v1/events?limit=1", &sk).await;
    let evt = events.body["data"][0]["id"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    loop {
        let d = s.get(&format!("/v1/events/{evt}/deliveries"), &sk).await;
        if !d.body["data"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no attempt recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the delivery went through the proxy"
    );
}

//! The deployment example of docs/DEPLOY.md, tested: nginx started with
//! `docs/deploy/nginx.conf` itself (only its example addresses, ports and paths are
//! swapped for the test's) in front of real nodes on one PostgreSQL database, over
//! TLS. Requests spread over the nodes, the wallet's event stream comes through
//! unbuffered, a long-poll is not cut, and per-IP limits count the clients behind
//! nginx, not nginx — a client cannot choose its address with a forged header.
//!
//! PostgreSQL pass only; needs nginx (`.ci/run` installs nginx-light).

use crate::common::sse::SseReader;
use crate::common::{Options, Server};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const NGINX: &str = "/usr/sbin/nginx";
/// nginx connects to the nodes from this address; only it is a trusted proxy.
const NGINX_SOURCE: &str = "127.0.0.4";

struct Nginx {
    child: Child,
    port: u16,
    root: reqwest::Certificate,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: nginx's fast shutdown, which ends its workers too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn ready() -> bool {
    if !pocket_store::testing::on_postgres() {
        eprintln!("SKIPPED on SQLite: the deployment runs several nodes on PostgreSQL");
        return false;
    }
    if !Path::new(NGINX).exists() {
        assert!(
            std::env::var("CI").is_err(),
            "the deployment test needs nginx"
        );
        eprintln!("SKIPPED: nginx is not installed (apt-get install nginx-light)");
        return false;
    }
    true
}

/// Starts nginx with the documented configuration in front of `nodes`.
fn nginx(nodes: &[Server]) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let port = crate::common::free_port();
    let plain = crate::common::free_port();
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/deploy/nginx.conf"
    ))
    .unwrap();
    let d = dir.path().display();
    let upstreams: String = nodes
        .iter()
        .map(|n| format!("        server {} max_fails=3 fail_timeout=5s;\n", n.addr()))
        .collect();
    let mut conf = String::new();
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("server 10.0.0.") {
            if t.starts_with("server 10.0.0.11") {
                conf.push_str(&upstreams);
            }
            continue;
        }
        conf.push_str(line);
        conf.push('\n');
    }
    let swaps = [
        ("user www-data;", "user root;".to_string()),
        ("/run/nginx-pocket.pid", format!("{d}/nginx.pid")),
        ("/var/log/nginx/pocket-error.log", format!("{d}/error.log")),
        (
            "/var/log/nginx/pocket-access.log",
            format!("{d}/access.log"),
        ),
        (
            "/etc/ssl/pocket/fullchain.pem",
            cert_path.display().to_string(),
        ),
        (
            "/etc/ssl/pocket/privkey.pem",
            key_path.display().to_string(),
        ),
        (
            "listen 443 ssl http2;",
            format!("listen 127.0.0.1:{port} ssl http2;"),
        ),
        ("listen 80;", format!("listen 127.0.0.1:{plain};")),
        (
            "proxy_http_version 1.1;",
            format!("proxy_http_version 1.1;\n        proxy_bind {NGINX_SOURCE};"),
        ),
    ];
    for (from, to) in &swaps {
        assert!(conf.contains(from), "the documented config lost {from:?}");
        conf = conf.replace(from, to);
    }
    // Temporary files of a test's own.
    conf = conf.replace(
        "http {\n",
        &format!(
            "http {{\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    \
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
        ),
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let check = Command::new(NGINX)
        .args(["-t", "-p"])
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let child = Command::new(NGINX)
        .args(["-g", "daemon off;", "-p"])
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        child,
        port,
        root: reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
        _dir: dir,
    }
}

impl Nginx {
    /// A client of nginx from `from` (a loopback address of its own).
    fn client(&self, from: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(self.root.clone())
            .tls_built_in_root_certs(false)
            .local_address(from.parse::<IpAddr>().unwrap())
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}

async fn nodes(extra_env: &[(&str, &str)], config: Option<&str>) -> Vec<Server> {
    let mut env = vec![(
        "POCKET_TRUSTED_PROXIES".to_string(),
        NGINX_SOURCE.to_string(),
    )];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    Server::start_nodes(
        3,
        Options {
            args: vec!["--sandbox".into()],
            env,
            config: config.map(String::from),
            ..Options::default()
        },
    )
    .await
}

/// Requests each node has answered, from its own `/metrics`.
async fn answered(s: &Server) -> u64 {
    s.metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("pocket_http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_spreads_requests_streams_unbuffered_and_keeps_long_polls() {
    if !ready() {
        return;
    }
    let n = nodes(&[], None).await;
    let lb = nginx(&n);
    let c = lb.client("127.0.0.2");
    let (_, sk) = n[0].merchant("M").await;
    let (cus, token) = n[1].customer("+8613800040001", 1_000_000).await;

    // Spread: every node answers some of 60 requests through nginx.
    let before: Vec<u64> = futures_util::future::join_all(n.iter().map(answered)).await;
    for _ in 0..60 {
        let r = c
            .get(lb.url("/v1/balance"))
            .bearer_auth(&sk)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let after: Vec<u64> = futures_util::future::join_all(n.iter().map(answered)).await;
    let share: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    eprintln!("60 requests through nginx answered per node: {share:?}");
    assert!(share.iter().all(|s| *s >= 10), "{share:?}");

    // The event stream through nginx: each push arrives at once.
    let resp = c
        .get(lb.url("/v1/wallet/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = SseReader::new(resp);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        let sent = Instant::now();
        let r = c
            .post(lb.url("/v1/payments"))
            .bearer_auth(&sk)
            .json(&json!({"currency": "CNY", "amount": 100 + i, "customer": cus}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let e = stream
            .next(Duration::from_secs(3))
            .await
            .expect("pushed through nginx");
        assert_eq!(e.event, "payment.created");
        worst = worst.max(sent.elapsed());
    }
    eprintln!("push through nginx (create included): worst {worst:?}");
    assert!(worst < Duration::from_millis(500), "the stream is buffered");

    // A long-poll of 8 s is not cut, and answers when the payment changes.
    let r = c
        .post(lb.url("/v1/payments"))
        .bearer_auth(&sk)
        .json(&json!({"currency": "CNY", "amount": 777, "customer": cus}))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let waited = Instant::now();
    let r = c
        .get(lb.url(&format!("/v1/payments/{id}?wait=8")))
        .bearer_auth(&sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        waited.elapsed() >= Duration::from_secs(7),
        "{:?}",
        waited.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_nginx_limits_count_clients_not_nginx() {
    if !ready() {
        return;
    }
    // A tight per-IP limit: 1 request/s, bursts of 20.
    let config = "[limits]\nper_ip_per_second = 1\nper_ip_burst = 20\n";
    let n = nodes(&[], Some(config)).await;
    let lb = nginx(&n);
    let (_, sk) = n[0].merchant("M").await;
    // One client, with a forged header on half its requests: limited all the same.
    // (Each node keeps its own buckets: three nodes take three bursts.)
    let greedy = lb.client("127.0.0.2");
    let mut limited = 0;
    for i in 0..90 {
        let mut req = greedy.get(lb.url("/v1/balance")).bearer_auth(&sk);
        if i % 2 == 0 {
            req = req.header("X-Forwarded-For", format!("198.51.100.{i}"));
        }
        let r = req.send().await.unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            limited += 1;
        }
    }
    eprintln!(
        "90 requests from one client behind nginx (3 nodes, bursts of 20): {limited} limited"
    );
    assert!(limited >= 15, "{limited} limited");
    // Another client behind the same nginx is not.
    let other = lb.client("127.0.0.3");
    let r = other
        .get(lb.url("/v1/balance"))
        .bearer_auth(&sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

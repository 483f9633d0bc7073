//! Test harness: starts the real `pocket` binary on a free port with a temporary data
//! directory and talks HTTP to it.
#![allow(dead_code)]

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod receiver;
pub mod sse;

pub const ADMIN_KEY: &str = "adm_test_key_0123456789abcdef";
/// The server key of every node of [`Server::start_nodes`].
pub const SERVER_KEY: &str = "5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e";

pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub client: Client,
    options: Options,
    /// The PostgreSQL database of this server (`POCKET_TEST_ENGINE=postgres`),
    /// shared by the nodes of [`Server::start_nodes`].
    pub database: Option<std::sync::Arc<TestDatabase>>,
}

/// A database of its own for one test (`POCKET_TEST_ENGINE=postgres`), dropped with
/// the last server using it.
pub type TestDatabase = pocket_store::testing::ScratchDatabase;

/// How to start a server beyond the defaults.
#[derive(Clone, Default)]
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Write the server's log (stderr) to this file instead of the test's stderr.
    pub log_file: Option<std::path::PathBuf>,
    /// Text of a pocket.toml to pass with --config.
    pub config: Option<String>,
    /// A PostgreSQL URL of the test's own (a cluster it built) instead of a scratch
    /// database.
    pub database_url: Option<String>,
}

/// A response: status, headers, and the JSON body (Null when empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn param(&self) -> Option<&str> {
        self.body["error"]["param"].as_str()
    }

    /// Asserts the contract's error shape, status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.code(), code, "body: {}", self.text);
        let e = &self.body["error"];
        assert!(
            e["type"].is_string() && e["message"].is_string(),
            "shape: {}",
            self.text
        );
        assert!(
            e.get("param").is_some(),
            "param present (maybe null): {}",
            self.text
        );
    }
}

fn spawn(
    dir: &std::path::Path,
    options: &Options,
    database: Option<&TestDatabase>,
) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pocket"));
    cmd.arg("serve");
    if let Some(url) = options
        .database_url
        .as_deref()
        .or(database.map(|d| d.url.as_str()))
    {
        cmd.args(["--database", url]);
    }
    // A test may pin the address (to come back on the same one after a restart).
    if !options.args.iter().any(|a| a == "--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.arg("--data").arg(dir.join("data")).args(&options.args);
    if let Some(text) = &options.config {
        let path = dir.join("pocket.toml");
        std::fs::write(&path, text).expect("write config");
        cmd.arg("--config").arg(path);
    }
    cmd.env("POCKET_ADMIN_KEY", ADMIN_KEY)
        // Cheap PIN hashes keep the suite fast; production defaults are in pocket.example.toml.
        .env("POCKET_PIN_HASH_MEMORY_KIB", "1024")
        .env("POCKET_PIN_HASH_ITERATIONS", "1")
        .env("POCKET_LOG", "warn")
        // Every test talks from 127.0.0.1: PIN budgets are tested on their own.
        .env("POCKET_PIN_PER_IP_PER_MINUTE", "0")
        .env("POCKET_PIN_PER_PHONE_PER_MINUTE", "0")
        // Tests run receivers on loopback.
        .env("POCKET_WEBHOOKS_ALLOW_PRIVATE", "true")
        .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped());
    match &options.log_file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("log file");
            cmd.stderr(f);
        }
        None => {
            cmd.stderr(Stdio::inherit());
        }
    }
    let mut child = cmd.spawn().expect("start pocket");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Pocket listening on ")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server printed its address");
    (child, url)
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(&["--sandbox"]).await
    }

    pub async fn start_with(args: &[&str]) -> Server {
        Self::start_options(Options {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        })
        .await
    }

    pub async fn start_options(options: Options) -> Server {
        let database = pocket_store::testing::on_postgres()
            .then(|| {
                TestDatabase::create(&pocket_store::testing::pg_base_url())
                    .expect("a test database")
            })
            .map(std::sync::Arc::new);
        Self::start_on(options, database).await
    }

    /// `n` nodes on one PostgreSQL database, sharing their keys (`POCKET_SERVER_KEY`,
    /// `POCKET_ADMIN_KEY`), each with a data directory of its own.
    pub async fn start_nodes(n: usize, mut options: Options) -> Vec<Server> {
        assert!(
            pocket_store::testing::on_postgres(),
            "several nodes need PostgreSQL"
        );
        let database = std::sync::Arc::new(
            TestDatabase::create(&pocket_store::testing::pg_base_url()).expect("a test database"),
        );
        options
            .env
            .push(("POCKET_SERVER_KEY".into(), SERVER_KEY.into()));
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            nodes.push(Self::start_on(options.clone(), Some(database.clone())).await);
        }
        nodes
    }

    pub async fn start_on(
        options: Options,
        database: Option<std::sync::Arc<TestDatabase>>,
    ) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let (child, url) = spawn(dir.path(), &options, database.as_deref());
        let client = Client::builder()
            .pool_max_idle_per_host(64)
            // Shorter than the server's keep-alive timeout, as a client's should be.
            .pool_idle_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Server {
            child: Some(child),
            url,
            dir,
            client,
            options,
            database,
        }
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Stops the server with SIGTERM (graceful) and waits for it (at most [`STOP_WAIT`]:
    /// then it is killed and the test fails, rather than hanging the suite).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let status = wait_at_most(&mut child, STOP_WAIT);
            assert!(status.success(), "pocket exited with {status}");
        }
    }

    /// Kills the server with SIGKILL (no shutdown at all) and waits for it to die.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory (a new port), after
    /// [`Server::kill9`] or [`Server::stop`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        let (child, url) = spawn(self.dir.path(), &self.options, self.database.as_deref());
        self.child = Some(child);
        self.url = url;
    }

    /// This server's `/metrics` text (read with the admin key).
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `POST /v1/keys` with `key`: the merchant rolls its own key.
    pub async fn roll_own_key(&self, key: &str, body: Value, idem: Option<&str>) -> Reply {
        self.call(Method::POST, "/v1/keys", Some(key), Some(body), idem)
            .await
    }

    /// The operator rolls a merchant's key with `overlap_s` seconds of overlap; the new key.
    pub async fn roll_key(&self, merchant_id: &str, overlap_s: i64) -> String {
        let r = self
            .post(
                &format!("/v1/admin/merchants/{merchant_id}/keys"),
                ADMIN_KEY,
                serde_json::json!({"expire_current_in": overlap_s}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["secret_key"].as_str().unwrap().to_string()
    }

    /// Sets an environment variable for the next `start_again`.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.options.env.retain(|(k, _)| k != key);
        self.options.env.push((key.into(), value.into()));
    }

    /// The data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// Wrong PINs this server has checked so far, from its own count in `/metrics`
    /// (what an answer cannot tell: the fifth wrong PIN is answered `423`, like a guess
    /// refused unchecked). The limit is on wrong ones; a right one in the same burst is
    /// checked too.
    pub async fn pins_checked(&self) -> u64 {
        self.metrics_text()
            .await
            .lines()
            .filter(|l| l.starts_with("pocket_pin_checks_total{result=\"wrong\"}"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Runs SQL on the server's database behind its back (to damage it on purpose).
    pub fn corrupt(&self, sql: &str) {
        match &self.database {
            Some(db) => {
                let out = Command::new("psql")
                    .args([
                        "-X",
                        "-q",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-d",
                        &db.url,
                        "-c",
                        sql,
                    ])
                    .output()
                    .expect("run psql");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => {
                let db = rusqlite::Connection::open(self.data_dir().join("pocket.db")).unwrap();
                db.execute_batch(sql).unwrap();
            }
        }
    }

    /// Everything the server has stored, to search for what must never be stored:
    /// SQLite's database files (with the WAL), or a dump of the PostgreSQL database.
    pub fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        if let Some(db) = &self.database {
            let out = Command::new("pg_dump")
                .args(["--no-owner", "-d", &db.url])
                .output()
                .expect("run pg_dump");
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return vec![(format!("pg_dump of {}", db.name), out.stdout)];
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(self.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("pocket.db") {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
        files
    }

    /// Runs `pocket <args> --data <data dir>` (and `--database` on PostgreSQL):
    /// `(success, stdout + stderr)`.
    pub fn pocket(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pocket"));
        cmd.args(args).arg("--data").arg(self.data_dir());
        if let Some(url) = self
            .options
            .database_url
            .as_deref()
            .or(self.database.as_ref().map(|d| d.url.as_str()))
        {
            cmd.env("POCKET_DATABASE_URL", url);
        }
        let out = cmd.output().expect("run pocket");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Stops and starts again on the same data directory (a new port).
    pub fn restart(&mut self) {
        self.stop();
        let (child, url) = spawn(self.dir.path(), &self.options, self.database.as_deref());
        self.child = Some(child);
        self.url = url;
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{}", self.url, path));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        if let Some(k) = idem {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        Reply::read(resp).await
    }

    /// Sends raw bytes as the body.
    pub async fn post_raw(&self, path: &str, auth: &str, body: impl Into<reqwest::Body>) -> Reply {
        let resp = self
            .client
            .post(format!("{}{}", self.url, path))
            .bearer_auth(auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        Reply::read(resp).await
    }

    pub async fn post(&self, path: &str, auth: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(auth), Some(body), None)
            .await
    }

    pub async fn get(&self, path: &str, auth: &str) -> Reply {
        self.call(Method::GET, path, Some(auth), None, None).await
    }

    /// A new merchant: `(id, secret key)`.
    pub async fn merchant(&self, name: &str) -> (String, String) {
        let r = self
            .post("/v1/admin/merchants", ADMIN_KEY, json!({"name": name}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        (
            r.body["id"].as_str().unwrap().into(),
            r.body["secret_key"].as_str().unwrap().into(),
        )
    }

    /// A new customer with `balance` CNY-minor: `(id, session token)`.
    pub async fn customer(&self, phone: &str, balance: i64) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/v1/wallet/signup",
                None,
                Some(json!({"phone": phone, "name": "Test", "pin": "123456"})),
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["customer"]["id"].as_str().unwrap().to_string();
        if balance > 0 {
            self.topup(&id, balance, "CNY").await;
        }
        (id, r.body["token"].as_str().unwrap().into())
    }

    pub async fn topup(&self, customer: &str, amount: i64, currency: &str) {
        let r = self
            .post(
                "/v1/admin/topups",
                ADMIN_KEY,
                json!({"customer": customer, "amount": amount, "currency": currency}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    pub async fn product(&self, sk: &str, sku: &str, unit_amount: i64, currency: &str) {
        let r = self
            .post(
                "/v1/products",
                sk,
                json!({"sku": sku, "name": sku, "unit_amount": unit_amount, "currency": currency}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    /// Creates a payment; panics unless 201.
    pub async fn payment(&self, sk: &str, body: Value) -> Value {
        let r = self.post("/v1/payments", sk, body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    pub async fn confirm(&self, token: &str, payment_id: &str, body: Value) -> Reply {
        self.post(
            &format!("/v1/wallet/payments/{payment_id}/confirm"),
            token,
            body,
        )
        .await
    }

    /// Registers a new device key for the wallet of `token` (PIN `123456`): its id and
    /// the payment code secret its registration answered with.
    pub async fn register_device(&self, token: &str) -> (String, Vec<u8>) {
        use base64::Engine;
        let r = self
            .post(
                "/v1/wallet/devices",
                token,
                json!({"name": "phone", "public_key": jwk(&new_key()), "pin": "123456"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(r.body["code_secret"].as_str().expect("code_secret"))
            .unwrap();
        assert_eq!(secret.len(), 32);
        (r.body["id"].as_str().unwrap().to_string(), secret)
    }

    /// `POST /v1/payments` charging a wallet's payment `code` (CNY, minor units).
    pub async fn charge_code(&self, sk: &str, code: &str, amount: i64) -> Reply {
        self.post(
            "/v1/payments",
            sk,
            json!({"amount": amount, "currency": "CNY", "payment_code": code}),
        )
        .await
    }

    /// Binds a card to the wallet of `token`: its id.
    pub async fn bind_card(&self, token: &str, number: &str) -> String {
        let r = self.post("/v1/wallet/cards", token, card(number)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Polls a bank operation (`path`) until it is final (the poller's backoff: 1 s,
    /// 2 s, 4 s…), at most 20 s.
    pub async fn until_final(&self, token: &str, path: &str) -> Value {
        let started = std::time::Instant::now();
        loop {
            let r = self.get(path, token).await;
            assert_eq!(r.status, 200, "{}", r.text);
            if r.body["status"] != "processing" {
                return r.body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "still processing: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `DELETE /v1/wallet/devices/{id}`.
    pub async fn revoke_device(&self, token: &str, id: &str) -> Reply {
        self.call(
            Method::DELETE,
            &format!("/v1/wallet/devices/{id}"),
            Some(token),
            None,
            None,
        )
        .await
    }

    /// Available balance of a wallet (by its token) in `currency`, 0 if none.
    pub async fn wallet_balance(&self, token: &str, currency: &str) -> i64 {
        let r = self.get("/v1/wallet/me", token).await;
        balance_of(&r.body["balances"], currency)
    }

    pub async fn merchant_balance(&self, sk: &str, currency: &str) -> i64 {
        let r = self.get("/v1/balance", sk).await;
        balance_of(&r.body["balances"], currency)
    }

    /// The full audit of the book.
    pub async fn ledger(&self) -> Value {
        let r = self.get("/v1/admin/ledger?audit=full", ADMIN_KEY).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// Asserts the ledger balances (full audit, running totals included, and the
    /// running-totals report saying the same) and returns its number of transfers.
    pub async fn assert_balanced(&self) -> i64 {
        let l = self.ledger().await;
        assert_eq!(l["balanced"], true, "ledger: {l}");
        assert_eq!(l["running_totals_match"], true, "ledger: {l}");
        let kept = self.get("/v1/admin/ledger", ADMIN_KEY).await.body;
        assert_eq!(kept["audit"], "running_totals");
        for field in ["currencies", "accounts", "transfers", "balanced"] {
            assert_eq!(
                kept[field], l[field],
                "running totals vs full audit: {field}"
            );
        }
        l["transfers"].as_i64().unwrap()
    }

    /// Everything a bad request must leave untouched, as seen by one merchant and one
    /// customer: the ledger, both balances, the merchant's payments and events.
    pub async fn snapshot(&self, sk: &str, token: &str) -> Value {
        json!({
            "ledger": self.ledger().await,
            "merchant": self.get("/v1/balance", sk).await.body,
            "wallet": self.get("/v1/wallet/me", token).await.body,
            "payments": self.get("/v1/payments?limit=100", sk).await.body,
            "events": self.get("/v1/events?limit=100", sk).await.body,
            "products": self.get("/v1/products?limit=100", sk).await.body,
        })
    }
}

pub fn balance_of(balances: &Value, currency: &str) -> i64 {
    balance_field(balances, currency, "available")
}

/// One figure (`available`, `reserved`) of a balance in `currency`, 0 if none.
pub fn balance_field(balances: &Value, currency: &str, field: &str) -> i64 {
    balances
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["currency"] == currency)
        .and_then(|b| b[field].as_i64())
        .unwrap_or(0)
}

/// A card to bind (`POST /v1/wallet/cards`) with the test wallets' PIN.
pub fn card(number: &str) -> Value {
    json!({"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123", "pin": "123456"})
}

/// `n` different valid card numbers (the Visa test range, Luhn-completed) the sandbox
/// bank accepts.
pub fn card_numbers(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut digits: Vec<u8> = format!("400000000000{:03}", 100 + i)
                .bytes()
                .map(|b| b - b'0')
                .collect();
            let check = (0..10u8)
                .find(|c| {
                    let mut d = digits.clone();
                    d.push(*c);
                    pocket_core::card::luhn_valid(&d)
                })
                .unwrap();
            digits.push(check);
            digits.iter().map(|d| char::from(d + b'0')).collect()
        })
        .collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `n` copies of `f` at once and collects their results in order.
pub async fn all<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// The wall clock in ms since the epoch (the server under test reads the same).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A new ECDSA P-256 device key.
pub fn new_key() -> p256::ecdsa::SigningKey {
    use rand::RngCore;
    loop {
        let mut b = [0u8; 32];
        rand::rng().fill_bytes(&mut b);
        if let Ok(k) = p256::ecdsa::SigningKey::from_bytes(&b.into()) {
            return k;
        }
    }
}

/// Its public key as a JWK, as WebCrypto exports it.
pub fn jwk(k: &p256::ecdsa::SigningKey) -> Value {
    serde_json::from_str(&p256::PublicKey::from(k.verifying_key()).to_jwk_string()).unwrap()
}

/// A free port on loopback (to pin an address before starting a process on it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `pocket sandbox-bank` on `port` with `secret`, notifying `notify`, with more flags.
pub fn sandbox_bank(port: u16, secret: &str, notify: &str, flags: &[&str]) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_pocket"))
            .args([
                "sandbox-bank",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--secret",
                secret,
            ])
            .args(["--notify", notify])
            .args(flags)
            .stdout(Stdio::null())
            .spawn()
            .expect("start pocket sandbox-bank"),
    )
}

/// Longest a graceful stop may take (its grace for in-flight requests is shorter).
pub const STOP_WAIT: Duration = Duration::from_secs(60);

/// Waits for `child` to exit; after `limit`, kills it and fails the test.
pub fn wait_at_most(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pocket did not exit within {limit:?} of SIGTERM: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

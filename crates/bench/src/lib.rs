//! `pocket bench`: drives a running Pocket (or one it spawns on a temporary data dir)
//! with N concurrent keep-alive clients, then reports payments/s, requests/s, latency
//! percentiles per endpoint (HDR histograms), error counts by code, the server's peak
//! memory, and a final ledger check.
//!
//! - [`mix`]: what each client does per iteration and which answers are expected.
//! - [`client`]: the HTTP calls, timed.
//! - [`server`]: spawning a server and sampling its memory.
//! - [`process`]: CPU and writes of the server and of this generator, from `/proc`.
//! - [`report`]: aggregation and printing (text or JSON).
//!
//! Architecture invariant: it speaks only the public HTTP contract (no store, no
//! server internals), so what it measures is what a merchant's client would see.

pub mod client;
pub mod delay;
pub mod mix;
pub mod process;
pub mod report;
pub mod server;

use client::{Client, Post};
use mix::{Mix, Op};
use report::{Recorder, Report};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Running servers (nodes of one database); empty: spawn them.
    pub urls: Vec<String>,
    /// Spawned servers keep their data in this PostgreSQL database.
    pub database: Option<String>,
    /// How many servers to spawn (on `database`).
    pub nodes: usize,
    /// Spawned nodes reach `database` through a proxy adding this round-trip delay.
    pub db_delay: Option<Duration>,
    pub admin_key: Option<String>,
    /// With `url`: the server's pid, to report its memory.
    pub pid: Option<u32>,
    pub clients: usize,
    pub duration: Duration,
    /// Stop after this many iterations in all (instead of the duration).
    pub count: Option<u64>,
    pub mix: Mix,
    pub merchants: usize,
    /// The `pocket` executable, for spawning.
    pub exe: std::path::PathBuf,
    pub progress: bool,
}

/// Money each bench customer starts with (minor units): enough never to run out.
const START_BALANCE: i64 = 1_000_000_000_000;
const PRODUCTS: [(&str, &str, i64); 3] = [
    ("tea", "Green tea", 1299),
    ("cake", "Mooncake", 2500),
    ("bun", "Pork bun", 450),
];
const PIN: &str = "135790";

struct Customer {
    id: String,
    token: String,
}

/// Runs the benchmark; `Err` when setup fails or answers were not what the mix expects.
pub async fn run(opts: Options) -> Result<Report, String> {
    let (spawned, urls) = servers(&opts).await?;
    let admin = opts
        .admin_key
        .clone()
        .or_else(|| spawned.first().map(|s| s.admin_key.clone()))
        .ok_or("--admin-key is needed with --url")?;
    let pid = opts.pid.or_else(|| spawned.first().map(|s| s.pid));
    // One connection pool per node; client i talks to node i mod n.
    let per_node = opts.clients.div_ceil(urls.len().max(1));
    let nodes: Vec<Client> = urls
        .iter()
        .map(|u| Client::new(u, per_node))
        .collect::<Result<_, _>>()?;
    let client = nodes.first().cloned().ok_or("no url")?;

    // Setup: merchants with a catalog, one rich and one broke customer per client.
    let merchants = make_merchants(&client, &admin, opts.merchants.max(1)).await?;
    let (rich, broke) = make_customers(&client, &admin, opts.clients).await?;

    // The run.
    let memory = pid.map(server::MemorySampler::start);
    let meter = process::Meter::start(match spawned.is_empty() {
        true => pid.into_iter().collect(),
        false => spawned.iter().map(|s| s.pid).collect(),
    });
    let trips_before = round_trips(&nodes, &admin).await;
    let counters = Counters::default();
    let progress = report::Progress::start(
        opts.progress,
        opts.duration,
        opts.count,
        counters.requests.clone(),
    );
    let started = Instant::now();
    let tasks = spawn_workers(
        &opts,
        &nodes,
        &merchants,
        rich.into_iter().zip(broke),
        &counters,
    );
    if opts.count.is_none() {
        tokio::time::sleep(opts.duration).await;
        counters.stop.store(true, Ordering::SeqCst);
    }
    let mut recorder = Recorder::default();
    for t in tasks {
        recorder.merge(t.await.map_err(|e| format!("a client failed: {e}"))?);
    }
    let elapsed = started.elapsed();
    progress.finish();
    let memory = memory.map(|m| m.stop());
    let costs = meter.finish(recorder.requests(), recorder.payments());
    let trips = round_trips(&nodes, &admin).await - trips_before;

    // Let expiries land, then check the ledger.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ledger = client
        .get_json("/v1/admin/ledger?audit=full", &admin)
        .await?;
    let mut report = Report::new(&opts, elapsed, recorder, memory, costs, ledger);
    if trips > 0.0 && report.payments > 0 {
        report.postgres_round_trips_per_payment = Some(trips / report.payments as f64);
    }
    for s in spawned {
        s.stop();
    }
    Ok(report)
}

/// What every client shares: the stop flag and the running counts.
#[derive(Clone, Default)]
struct Counters {
    stop: Arc<AtomicBool>,
    iterations: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

/// One client per (rich, broke) pair of customers, client i on node i mod n and
/// merchant i mod m.
fn spawn_workers(
    opts: &Options,
    nodes: &[Client],
    merchants: &[String],
    pairs: impl Iterator<Item = (Customer, Customer)>,
    counters: &Counters,
) -> Vec<tokio::task::JoinHandle<Recorder>> {
    pairs
        .enumerate()
        .map(|(i, (me, poor))| {
            let worker = Worker {
                client: nodes[i % nodes.len()].clone(),
                sk: merchants[i % merchants.len()].clone(),
                me,
                poor,
                mix: opts.mix.clone(),
                stop: counters.stop.clone(),
                iterations: counters.iterations.clone(),
                requests: counters.requests.clone(),
                count: opts.count,
                seed: i as u64,
            };
            tokio::spawn(worker.run())
        })
        .collect()
}

/// The servers to load: the `--url`s given, or nodes spawned here (then also returned,
/// to stop them afterwards).
async fn servers(opts: &Options) -> Result<(Vec<server::Spawned>, Vec<String>), String> {
    if !opts.urls.is_empty() {
        return Ok((Vec::new(), opts.urls.clone()));
    }
    let database = database_url(opts).await?;
    let spawned = server::Spawned::start(&opts.exe, database.as_deref(), opts.nodes.max(1)).await?;
    let urls = spawned.iter().map(|s| s.url.clone()).collect();
    Ok((spawned, urls))
}

/// The database the spawned nodes use: `--database`, behind the delaying proxy when
/// `--db-delay-ms` asks for one.
async fn database_url(opts: &Options) -> Result<Option<String>, String> {
    Ok(match (&opts.database, opts.db_delay) {
        (Some(url), Some(delay)) => {
            let (_, upstream) = delay::redirect(url, "")?;
            let addr = delay::start(upstream, delay).await?;
            Some(delay::redirect(url, &addr)?.0)
        }
        (url, _) => url.clone(),
    })
}

/// `count` merchants, each with the bench catalog: their secret keys.
async fn make_merchants(client: &Client, admin: &str, count: usize) -> Result<Vec<String>, String> {
    let mut merchants = Vec::new();
    for i in 0..count {
        let m = client
            .post_json(
                "/v1/admin/merchants",
                admin,
                json!({"name": format!("Bench shop {i}")}),
            )
            .await?;
        let sk = m["secret_key"].as_str().ok_or("no secret key")?.to_string();
        for (sku, name, price) in PRODUCTS {
            client
                .post_json(
                    "/v1/products",
                    &sk,
                    json!({"sku": sku, "name": name, "unit_amount": price, "currency": "CNY"}),
                )
                .await?;
        }
        merchants.push(sk);
    }
    Ok(merchants)
}

/// One customer with [`START_BALANCE`] and one with nothing per client.
async fn make_customers(
    client: &Client,
    admin: &str,
    clients: usize,
) -> Result<(Vec<Customer>, Vec<Customer>), String> {
    let run_tag: u32 = rand::random::<u32>() % 1_000_000;
    let mut rich = Vec::new();
    let mut broke = Vec::new();
    for i in 0..clients {
        for (list, balance) in [(&mut rich, START_BALANCE), (&mut broke, 0)] {
            let phone = format!(
                "+86{:03}{:06}{:02}",
                100 + list.len() % 800,
                run_tag,
                (i * 2 + (balance == 0) as usize) % 100
            );
            let r = client
                .post_json(
                    "/v1/wallet/signup",
                    "",
                    json!({"phone": phone, "name": "Bench", "pin": PIN}),
                )
                .await?;
            let id = r["customer"]["id"]
                .as_str()
                .ok_or("no customer")?
                .to_string();
            if balance > 0 {
                client
                    .post_json(
                        "/v1/admin/topups",
                        admin,
                        json!({"customer": id, "amount": balance, "currency": "CNY"}),
                    )
                    .await?;
            }
            list.push(Customer {
                id,
                token: r["token"].as_str().ok_or("no token")?.to_string(),
            });
        }
    }
    Ok((rich, broke))
}

/// The nodes' `pocket_postgres_round_trips_total`, summed (0 on SQLite).
async fn round_trips(nodes: &[Client], admin: &str) -> f64 {
    let mut sum = 0.0;
    for node in nodes {
        if let Ok(text) = node.get_text("/metrics", admin).await {
            sum += text
                .lines()
                .filter(|l| l.starts_with("pocket_postgres_round_trips_total"))
                .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .sum::<f64>();
        }
    }
    sum
}

struct Worker {
    client: Client,
    sk: String,
    me: Customer,
    poor: Customer,
    mix: Mix,
    stop: Arc<AtomicBool>,
    iterations: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    count: Option<u64>,
    seed: u64,
}

impl Worker {
    async fn run(self) -> Recorder {
        let mut rec = Recorder::default();
        let mut rng = mix::Rng::new(self.seed);
        let mut n: u64 = 0;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(limit) = self.count
                && self.iterations.fetch_add(1, Ordering::Relaxed) >= limit
            {
                break;
            }
            n += 1;
            let op = self.mix.pick(&mut rng);
            let before = rec.requests();
            self.iteration(op, n, &mut rng, &mut rec).await;
            self.requests
                .fetch_add(rec.requests() - before, Ordering::Relaxed);
        }
        rec
    }

    /// The customer an operation pays from, and the payment it creates for them: a
    /// 1–2 line cart (one of ten lines above the PIN tier for `Op::Pin`).
    fn payment_for(&self, op: Op, rng: &mut mix::Rng) -> (&Customer, serde_json::Value) {
        let lines = if rng.below(2) == 0 {
            json!([{"sku": "tea", "quantity": 1 + rng.below(3)}])
        } else {
            json!([{"sku": "cake", "quantity": 1}, {"sku": "bun", "quantity": 1 + rng.below(4)}])
        };
        let (customer, extra) = match op {
            Op::Insufficient => (&self.poor, json!({})),
            Op::Expire => (&self.me, json!({"expires_in": 1})),
            _ => (&self.me, json!({})),
        };
        let mut body = json!({"currency": "CNY", "items": lines, "customer": customer.id});
        if op == Op::Pin {
            // A medium-tier payment (above 200.00 CNY): the PIN is required.
            body = json!({"currency": "CNY", "items": [{"sku": "cake", "quantity": 9}], "customer": customer.id});
        }
        if let (Some(o), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        (customer, body)
    }

    async fn iteration(&self, op: Op, n: u64, rng: &mut mix::Rng, rec: &mut Recorder) {
        let c = &self.client;
        let (customer, body) = self.payment_for(op, rng);
        let idem = (op == Op::Retry).then(|| format!("bench-{}-{n}", self.seed));
        let Some(p) = c
            .call(
                rec,
                Post {
                    name: "POST /v1/payments",
                    path: "/v1/payments",
                    credential: &self.sk,
                    body: Some(&body),
                    idem: idem.as_deref(),
                    expected: &[201],
                },
            )
            .await
        else {
            return;
        };
        let id = p.id.unwrap_or_default();
        if op == Op::Retry {
            // The same request again: replayed, nothing done twice.
            c.call(
                rec,
                Post {
                    name: "POST /v1/payments (retry)",
                    path: "/v1/payments",
                    credential: &self.sk,
                    body: Some(&body),
                    idem: idem.as_deref(),
                    expected: &[201],
                },
            )
            .await;
        }
        self.answer(op, &id, customer, rec).await;
    }

    /// What the wallet does with the payment `id` made for `op`.
    async fn answer(&self, op: Op, id: &str, customer: &Customer, rec: &mut Recorder) {
        let confirm = format!("/v1/wallet/payments/{id}/confirm");
        let (label, body, status) = match op {
            Op::Expire => return rec.count_expiry(),
            Op::Decline => {
                let decline = format!("/v1/wallet/payments/{id}/decline");
                self.wallet_call(rec, "POST /decline", &decline, customer, json!({}), 200)
                    .await;
                return;
            }
            Op::Insufficient => ("POST /confirm (402)", json!({}), 402),
            Op::Pin => ("POST /confirm (pin)", json!({"pin": PIN}), 200),
            Op::Pay | Op::Retry | Op::Refund => ("POST /confirm", json!({}), 200),
        };
        let paid = self
            .wallet_call(rec, label, &confirm, customer, body, status)
            .await;
        if !paid || status != 200 {
            return;
        }
        rec.count_payment();
        if op == Op::Refund {
            self.client
                .call(
                    rec,
                    Post {
                        name: "POST /refunds",
                        path: &format!("/v1/payments/{id}/refunds"),
                        credential: &self.sk,
                        body: Some(&json!({"amount": 100})),
                        idem: None,
                        expected: &[201],
                    },
                )
                .await;
        }
    }

    /// A wallet's `POST` expecting `status`: whether it got it.
    async fn wallet_call(
        &self,
        rec: &mut Recorder,
        label: &'static str,
        path: &str,
        customer: &Customer,
        body: serde_json::Value,
        status: u16,
    ) -> bool {
        self.client
            .call(
                rec,
                Post {
                    name: label,
                    path,
                    credential: &customer.token,
                    body: Some(&body),
                    idem: None,
                    expected: &[status],
                },
            )
            .await
            .is_some()
    }
}

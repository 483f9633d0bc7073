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

pub mod client;
pub mod delay;
pub mod mix;
pub mod process;
pub mod report;
pub mod server;

use client::Client;
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
    let database = match (&opts.database, opts.db_delay) {
        (Some(url), Some(delay)) => {
            let (_, upstream) = delay::redirect(url, "")?;
            let addr = delay::start(upstream, delay).await?;
            Some(delay::redirect(url, &addr)?.0)
        }
        (url, _) => url.clone(),
    };
    let spawned = match opts.urls.is_empty() {
        true => server::Spawned::start(&opts.exe, database.as_deref(), opts.nodes.max(1)).await?,
        false => Vec::new(),
    };
    let urls: Vec<String> = match opts.urls.is_empty() {
        true => spawned.iter().map(|s| s.url.clone()).collect(),
        false => opts.urls.clone(),
    };
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
    let mut merchants = Vec::new();
    for i in 0..opts.merchants.max(1) {
        let m = client
            .post_json(
                "/v1/admin/merchants",
                &admin,
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
    let run_tag: u32 = rand::random::<u32>() % 1_000_000;
    let mut rich = Vec::new();
    let mut broke = Vec::new();
    for i in 0..opts.clients {
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
                        &admin,
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

    // The run.
    let memory = pid.map(server::MemorySampler::start);
    let server_pids: Vec<u32> = match spawned.is_empty() {
        true => pid.into_iter().collect(),
        false => spawned.iter().map(|s| s.pid).collect(),
    };
    let meter = process::Meter::start(server_pids);
    let trips_before = round_trips(&nodes, &admin).await;
    let stop = Arc::new(AtomicBool::new(false));
    let iterations = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let progress =
        report::Progress::start(opts.progress, opts.duration, opts.count, requests.clone());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (me, poor)) in rich.into_iter().zip(broke).enumerate() {
        let ctx = Worker {
            client: nodes[i % nodes.len()].clone(),
            sk: merchants[i % merchants.len()].clone(),
            me,
            poor,
            mix: opts.mix.clone(),
            stop: stop.clone(),
            iterations: iterations.clone(),
            requests: requests.clone(),
            count: opts.count,
            seed: i as u64,
        };
        tasks.push(tokio::spawn(ctx.run()));
    }
    if opts.count.is_none() {
        tokio::time::sleep(opts.duration).await;
        stop.store(true, Ordering::SeqCst);
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

    async fn iteration(&self, op: Op, n: u64, rng: &mut mix::Rng, rec: &mut Recorder) {
        let c = &self.client;
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
        let idem = (op == Op::Retry).then(|| format!("bench-{}-{n}", self.seed));
        let Some(p) = c
            .call(
                rec,
                "POST /v1/payments",
                "/v1/payments",
                &self.sk,
                Some(&body),
                idem.as_deref(),
                &[201],
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
                "POST /v1/payments (retry)",
                "/v1/payments",
                &self.sk,
                Some(&body),
                idem.as_deref(),
                &[201],
            )
            .await;
        }
        let confirm = format!("/v1/wallet/payments/{id}/confirm");
        match op {
            Op::Expire => rec.count_expiry(),
            Op::Decline => {
                c.call(
                    rec,
                    "POST /decline",
                    &format!("/v1/wallet/payments/{id}/decline"),
                    &customer.token,
                    Some(&json!({})),
                    None,
                    &[200],
                )
                .await;
            }
            Op::Insufficient => {
                c.call(
                    rec,
                    "POST /confirm (402)",
                    &confirm,
                    &customer.token,
                    Some(&json!({})),
                    None,
                    &[402],
                )
                .await;
            }
            Op::Pin => {
                if c.call(
                    rec,
                    "POST /confirm (pin)",
                    &confirm,
                    &customer.token,
                    Some(&json!({"pin": PIN})),
                    None,
                    &[200],
                )
                .await
                .is_some()
                {
                    rec.count_payment();
                }
            }
            Op::Pay | Op::Retry | Op::Refund => {
                if c.call(
                    rec,
                    "POST /confirm",
                    &confirm,
                    &customer.token,
                    Some(&json!({})),
                    None,
                    &[200],
                )
                .await
                .is_some()
                {
                    rec.count_payment();
                    if op == Op::Refund {
                        c.call(
                            rec,
                            "POST /refunds",
                            &format!("/v1/payments/{id}/refunds"),
                            &self.sk,
                            Some(&json!({"amount": 100})),
                            None,
                            &[201],
                        )
                        .await;
                    }
                }
            }
        }
    }
}

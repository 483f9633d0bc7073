//! Counting during the run, and the report after it.

use crate::Options;
use crate::process::Costs;
use crate::server::Memory;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// One client's counts; merged at the end.
#[derive(Default)]
pub struct Recorder {
    latencies_us: BTreeMap<&'static str, Histogram<u64>>,
    payments: u64,
    expiries: u64,
    requests: u64,
    expected_errors: BTreeMap<String, u64>,
    unexpected: BTreeMap<String, u64>,
}

/// Latencies above this (µs) are clamped: 60 s.
const MAX_LATENCY_US: u64 = 60_000_000;

impl Recorder {
    pub fn latency(&mut self, name: &'static str, d: Duration) {
        self.requests += 1;
        let h = self.latencies_us.entry(name).or_insert_with(|| {
            Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
        });
        let _ = h.record((d.as_micros() as u64).clamp(1, MAX_LATENCY_US));
    }
    pub fn requests(&self) -> u64 {
        self.requests
    }
    pub fn payments(&self) -> u64 {
        self.payments
    }
    pub fn count_payment(&mut self) {
        self.payments += 1;
    }
    pub fn count_expiry(&mut self) {
        self.expiries += 1;
    }
    pub fn expected_error(&mut self, code: &str) {
        *self.expected_errors.entry(code.to_string()).or_default() += 1;
    }
    pub fn unexpected(&mut self, what: &str) {
        *self.unexpected.entry(what.to_string()).or_default() += 1;
    }
    pub fn merge(&mut self, other: Recorder) {
        for (name, h) in other.latencies_us {
            match self.latencies_us.get_mut(name) {
                Some(mine) => {
                    let _ = mine.add(&h);
                }
                None => {
                    self.latencies_us.insert(name, h);
                }
            }
        }
        self.payments += other.payments;
        self.expiries += other.expiries;
        self.requests += other.requests;
        for (k, v) in other.expected_errors {
            *self.expected_errors.entry(k).or_default() += v;
        }
        for (k, v) in other.unexpected {
            *self.unexpected.entry(k).or_default() += v;
        }
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Report {
    pub clients: usize,
    pub duration_s: f64,
    pub mix: crate::mix::Mix,
    pub payments: u64,
    pub payments_per_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub expiries_requested: u64,
    /// Over all requests.
    pub latency: Latency,
    pub endpoints: BTreeMap<String, Latency>,
    pub expected_errors: BTreeMap<String, u64>,
    pub unexpected_errors: BTreeMap<String, u64>,
    pub memory: Option<Memory>,
    /// CPU and writes of the server(s) and of the generator (`None` without a pid).
    pub costs: Option<Costs>,
    pub ledger: Value,
    /// PostgreSQL round trips of all nodes over the run, per payment (every
    /// request's included: creates, confirms, reads, failures).
    pub postgres_round_trips_per_payment: Option<f64>,
    pub ok: bool,
}

fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |us: u64| us as f64 / 1000.0;
    Latency {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.5)),
        p90_ms: ms(h.value_at_quantile(0.9)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    }
}

impl Report {
    pub fn new(
        opts: &Options,
        elapsed: Duration,
        rec: Recorder,
        memory: Option<Memory>,
        costs: Option<Costs>,
        ledger: Value,
    ) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut all: Option<Histogram<u64>> = None;
        for h in rec.latencies_us.values() {
            match &mut all {
                Some(a) => {
                    let _ = a.add(h);
                }
                None => all = Some(h.clone()),
            }
        }
        let overall = all.as_ref().map(latency).unwrap_or(Latency {
            count: 0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            p999_ms: 0.0,
            max_ms: 0.0,
        });
        let ledger_ok = ledger["balanced"] == true
            && ledger["payment_transfer_mismatches"].as_i64() == Some(0)
            && ledger["refund_transfer_mismatches"].as_i64() == Some(0);
        Report {
            clients: opts.clients,
            duration_s: secs,
            mix: opts.mix.clone(),
            payments: rec.payments,
            payments_per_s: rec.payments as f64 / secs,
            requests: rec.requests,
            requests_per_s: rec.requests as f64 / secs,
            expiries_requested: rec.expiries,
            latency: overall,
            endpoints: rec
                .latencies_us
                .iter()
                .map(|(k, h)| (k.to_string(), latency(h)))
                .collect(),
            expected_errors: rec.expected_errors,
            ok: rec.unexpected.is_empty() && ledger_ok,
            unexpected_errors: rec.unexpected,
            memory,
            costs,
            ledger,
            postgres_round_trips_per_payment: None,
        }
    }

    pub fn print(&self) {
        println!(
            "\n{} clients, {:.1} s: {} payments ({:.0}/s), {} requests ({:.0}/s)",
            self.clients,
            self.duration_s,
            self.payments,
            self.payments_per_s,
            self.requests,
            self.requests_per_s
        );
        println!(
            "\n{:<28} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "endpoint", "count", "p50 ms", "p90", "p99", "p99.9", "max"
        );
        let row = |name: &str, l: &Latency| {
            println!(
                "{name:<28} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            )
        };
        for (name, l) in &self.endpoints {
            row(name, l);
        }
        row("all requests", &self.latency);
        if !self.expected_errors.is_empty() {
            println!("\nexpected errors: {:?}", self.expected_errors);
        }
        if !self.unexpected_errors.is_empty() {
            println!("UNEXPECTED errors: {:?}", self.unexpected_errors);
        }
        if let Some(m) = &self.memory {
            let first = m.samples_mib.first().copied().unwrap_or(0.0);
            let last = m.samples_mib.last().copied().unwrap_or(0.0);
            println!(
                "\nserver memory: peak RSS {:.1} MiB (first sample {first:.1}, last {last:.1})",
                m.peak_rss_mib
            );
        }
        if let Some(c) = &self.costs {
            println!(
                "\n{:<18} {:>10} {:>16}\n{:<18} {:>10.2} {:>16.1}\n{:<18} {:>10.2} {:>16.1}",
                "CPU (from /proc)",
                "seconds",
                "µs per request",
                "server",
                c.server_cpu_s,
                c.server_cpu_us_per_request,
                "load generator",
                c.bench_cpu_s,
                c.bench_cpu_us_per_request,
            );
            println!(
                "server writes: {:.0} bytes per payment handed to write(), {:.1} write calls per request, {:.0} bytes per payment to the disk",
                c.server_written_bytes_per_payment,
                c.server_write_calls_per_request,
                c.server_disk_bytes_per_payment
            );
        }
        println!(
            "ledger: balanced={} transfers={} payment_transfer_mismatches={} refund_transfer_mismatches={}",
            self.ledger["balanced"],
            self.ledger["transfers"],
            self.ledger["payment_transfer_mismatches"],
            self.ledger["refund_transfer_mismatches"]
        );
        if let Some(trips) = self.postgres_round_trips_per_payment {
            println!("postgres round trips per payment (all requests of the mix): {trips:.1}");
        }
        println!("{}", if self.ok { "OK" } else { "FAILED" });
    }
}

/// The progress bar (on a terminal) while the run lasts.
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(
        show: bool,
        duration: Duration,
        count: Option<u64>,
        requests: Arc<AtomicU64>,
    ) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        if !show {
            return Progress { stop, handle: None };
        }
        let bar = match count {
            Some(_) => indicatif::ProgressBar::new_spinner(),
            None => indicatif::ProgressBar::new(duration.as_secs().max(1)),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let s = stop.clone();
        let handle = tokio::spawn(async move {
            let started = std::time::Instant::now();
            while !s.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                let n = requests.load(Ordering::Relaxed);
                bar.set_position(started.elapsed().as_secs());
                bar.set_message(format!("{n} requests, {:.0}/s", n as f64 / secs));
            }
            bar.finish_and_clear();
        });
        Progress {
            stop,
            handle: Some(handle),
        }
    }

    pub fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle {
            h.abort();
        }
    }
}

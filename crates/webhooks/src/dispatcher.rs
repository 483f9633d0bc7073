//! The delivery loop. State lives in the store: a delivery is claimed with a lease
//! (so a crash mid-attempt only delays it), attempted, and its outcome recorded with
//! the next attempt time. In memory there are only counters of what is in flight,
//! which bound concurrency per endpoint (a slow or dead endpoint never takes every
//! slot) and in all.

use crate::{signature, ssrf};
use pocket_core::retry;
use pocket_store::SqlStore;
use pocket_store::model::{AttemptOutcome, AttemptRecord, DeliveryJob};
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// An attempt that has no 2xx within this counts as failed.
    pub timeout_ms: u64,
    /// Deliveries in flight in all.
    pub max_in_flight: usize,
    /// Deliveries in flight to one endpoint.
    pub max_in_flight_per_endpoint: usize,
    /// Delays after each failed attempt (seconds).
    pub retry_schedule_seconds: Vec<i64>,
    pub allow_private: bool,
    /// Longest sleep between two looks for due deliveries.
    pub poll_ms: u64,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            timeout_ms: 10_000,
            max_in_flight: 32,
            max_in_flight_per_endpoint: 2,
            retry_schedule_seconds: retry::DEFAULT_SCHEDULE_SECONDS.to_vec(),
            allow_private: false,
            poll_ms: 500,
        }
    }
}

pub struct Dispatcher {
    store: Arc<SqlStore>,
    server_key: [u8; 32],
    config: DispatcherConfig,
    client: reqwest::Client,
}

/// Shortest time between two looks for due deliveries (a burst of events costs one).
const MIN_LOOK_SPACING: Duration = Duration::from_millis(20);

/// Largest error text kept for an attempt.
const MAX_ERROR_CHARS: usize = 120;

impl Dispatcher {
    pub fn new(
        store: Arc<SqlStore>,
        server_key: [u8; 32],
        config: DispatcherConfig,
    ) -> Result<Dispatcher, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment (`HTTP(S)_PROXY`) would be asked to connect
            // for us, past the guarded resolver: never use one.
            .no_proxy()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(5_000)))
            .dns_resolver(Arc::new(ssrf::GuardedResolver {
                allow_private: config.allow_private,
            }))
            .user_agent("Pocket-Webhooks/1")
            .pool_max_idle_per_host(config.max_in_flight_per_endpoint)
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Dispatcher {
            store,
            server_key,
            config,
            client,
        })
    }

    /// Runs until `shutdown` turns true. In-flight attempts are abandoned then; their
    /// leases expire and they are retried by the next run.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut notes = this.store.subscribe();
        let (done_tx, mut done_rx) = mpsc::channel::<String>(this.config.max_in_flight.max(1));
        let mut in_flight: HashMap<String, usize> = HashMap::new();
        let mut total = 0usize;
        let lease_ms = this.config.timeout_ms as i64 + 30_000;
        let mut last_look = Instant::now() - MIN_LOOK_SPACING;
        while !*shutdown.borrow() {
            // Under a stream of events, look at most every MIN_LOOK_SPACING.
            let since = last_look.elapsed();
            if since < MIN_LOOK_SPACING {
                tokio::time::sleep(MIN_LOOK_SPACING - since).await;
            }
            last_look = Instant::now();
            let free = this.config.max_in_flight.saturating_sub(total);
            let due = matches!(this.store.next_delivery_at().await, Ok(Some(at)) if at <= this.store.now_ms());
            let mut claimed = 0;
            if free > 0 && due {
                let busy: Vec<String> = in_flight
                    .iter()
                    .filter(|(_, n)| **n >= this.config.max_in_flight_per_endpoint)
                    .map(|(e, _)| e.clone())
                    .collect();
                match this
                    .store
                    .claim_deliveries(busy, this.config.max_in_flight_per_endpoint, free, lease_ms)
                    .await
                {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            *in_flight.entry(job.endpoint_id.clone()).or_default() += 1;
                            total += 1;
                            let (d, done) = (this.clone(), done_tx.clone());
                            tokio::spawn(async move {
                                let endpoint = job.endpoint_id.clone();
                                d.attempt(job).await;
                                let _ = done.send(endpoint).await;
                            });
                        }
                    }
                    Err(e) => tracing::warn!(code = e.code, "could not claim webhook deliveries"),
                }
            }
            if claimed > 0 && claimed == free {
                continue;
            }
            let wait_ms = match this.store.next_delivery_at().await {
                Ok(Some(at)) => {
                    (at - this.store.now_ms()).clamp(1, this.config.poll_ms as i64) as u64
                }
                _ => this.config.poll_ms,
            };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                // A new event may have new deliveries.
                _ = notes.recv() => {}
                Some(endpoint) = done_rx.recv() => {
                    release(&mut in_flight, &mut total, &endpoint);
                    while let Ok(endpoint) = done_rx.try_recv() {
                        release(&mut in_flight, &mut total, &endpoint);
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One attempt: sign, send, record the outcome and the next attempt time.
    async fn attempt(&self, job: DeliveryJob) {
        let attempted_at = self.store.now_ms();
        let started = Instant::now();
        let (status_code, error) = self.send(&job, attempted_at).await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let delivered = status_code.is_some_and(|s| (200..300).contains(&s));
        let outcome = if delivered {
            AttemptOutcome::Delivered
        } else {
            let jitter =
                rand::rng().random_range(-retry::MAX_JITTER_PERMILLE..=retry::MAX_JITTER_PERMILLE);
            let failed = (job.attempts + 1) as usize;
            let now = self.store.now_ms();
            match retry::next_attempt_ms(
                &self.config.retry_schedule_seconds,
                failed,
                now,
                job.event_created_at,
                jitter,
            ) {
                Some(at) => AttemptOutcome::RetryAt(at),
                None => AttemptOutcome::GiveUp,
            }
        };
        let result = match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryAt(_) => "retry",
            AttemptOutcome::GiveUp => "given_up",
        };
        metrics::counter!("pocket_webhook_attempts_total", "result" => result).increment(1);
        metrics::histogram!("pocket_webhook_attempt_seconds").record(duration_ms as f64 / 1000.0);
        tracing::info!(
            event = %job.event_id,
            endpoint = %job.endpoint_id,
            status = status_code.unwrap_or(0),
            duration_ms,
            delivered,
            "webhook attempt"
        );
        let record = AttemptRecord {
            delivery_seq: job.delivery_seq,
            event_id: job.event_id,
            endpoint_id: job.endpoint_id,
            attempted_at,
            status_code,
            error,
            duration_ms,
            outcome,
        };
        if let Err(e) = self.store.record_attempt(record).await {
            // The lease runs out and the delivery is tried again: at least once holds.
            tracing::warn!(code = e.code, "could not record a webhook attempt");
        }
    }

    async fn send(&self, job: &DeliveryJob, attempted_at_ms: i64) -> (Option<u16>, Option<String>) {
        if let Err(why) = ssrf::check_url(&job.url, self.config.allow_private) {
            return (None, Some(format!("destination refused: {why}")));
        }
        let secret = signature::endpoint_secret(&self.server_key, &job.endpoint_id);
        let header = signature::header(
            &secret,
            attempted_at_ms.div_euclid(1000),
            job.body.as_bytes(),
        );
        let result = self
            .client
            .post(&job.url)
            .header("content-type", "application/json")
            .header("pocket-signature", header)
            .header("pocket-event-id", &job.event_id)
            .body(job.body.clone())
            .send()
            .await;
        match result {
            Ok(resp) => (Some(resp.status().as_u16()), None),
            Err(e) => (None, Some(describe(&e, self.config.timeout_ms))),
        }
    }
}

fn release(in_flight: &mut HashMap<String, usize>, total: &mut usize, endpoint: &str) {
    *total = total.saturating_sub(1);
    if let Some(n) = in_flight.get_mut(endpoint) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            in_flight.remove(endpoint);
        }
    }
}

/// A short, secret-free description of a failed send.
fn describe(e: &reqwest::Error, timeout_ms: u64) -> String {
    let text = if e.is_timeout() {
        format!("no response within {} s", timeout_ms / 1000)
    } else if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_redirect() {
        "redirects are not followed".to_string()
    } else {
        "the connection failed".to_string()
    };
    text.chars().take(MAX_ERROR_CHARS).collect()
}

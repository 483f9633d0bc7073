//! The deadline sweeper: marks overdue pending payments `expired` (with their
//! `payment.expired` events) within a second of their deadline.
//!
//! It does not scan: it asks the store for the earliest pending deadline (one probe
//! of a partial index) and sleeps until then, but never longer than
//! [`MAX_SLEEP_MS`]. Since every payment's window is at least one second, a payment
//! created while it sleeps (by this node or another) is seen before it is due. Then it
//! expires what is due in bounded batches. Deadlines are also enforced by every confirm
//! at commit: the sweeper is about telling the world, never about correctness.

use crate::SqlStore;
use std::sync::Arc;
use std::time::Duration;

/// Longest sleep between two looks at the earliest deadline.
pub const MAX_SLEEP_MS: i64 = 500;
/// Most payments expired per transaction.
pub const EXPIRE_BATCH: usize = 500;
/// How long idempotency records are kept.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
/// How often old idempotency records are forgotten.
const CLEANUP_EVERY_MS: i64 = 60_000;

/// How long PIN guards are kept after their last change once nothing in them is
/// live (longer than any configurable lock, 24 h).
pub const PIN_GUARD_IDLE_MS: i64 = 24 * 3600 * 1000 + 60_000;
/// First and longest wait after a failure (a full disk, an unreachable database):
/// doubling in between, so a failing store is not hammered.
const BACKOFF_FIRST_MS: i64 = 100;
const BACKOFF_MAX_MS: i64 = 5_000;

/// Exponential backoff while the store fails; one log line per interval with a count.
struct Backoff {
    wait_ms: i64,
    log: crate::throttle::Throttle,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            wait_ms: 0,
            log: crate::throttle::Throttle::new(crate::throttle::LOG_EVERY_MS),
        }
    }

    /// A failure: how long to wait before the next try.
    fn failed(&mut self, what: &str, e: &pocket_core::Error) -> i64 {
        self.wait_ms = (self.wait_ms * 2).clamp(BACKOFF_FIRST_MS, BACKOFF_MAX_MS);
        if let Some(times) = self.log.hit(crate::throttle::wall_ms()) {
            tracing::warn!(
                code = e.code,
                times,
                retry_in_ms = self.wait_ms,
                "sweeper could not {what}"
            );
        }
        self.wait_ms
    }

    fn succeeded(&mut self) {
        if self.wait_ms > 0 {
            tracing::info!("sweeper: the store answers again");
        }
        self.wait_ms = 0;
    }
}

/// Runs until `shutdown` turns true.
/// Batches a round keeps in the writer at once while many payments are due: they run
/// one after another there (each sees the ones before), usually in one commit, so a
/// burst is not paced by one commit per batch.
pub const BURST_BATCHES: usize = 4;

/// One round: one batch, or `BURST_BATCHES` at once in a burst. Expired in all.
async fn expire_round(store: &SqlStore, burst: bool) -> Result<usize, pocket_core::Error> {
    if !burst {
        return store.expire_due(EXPIRE_BATCH).await;
    }
    let batches = (0..BURST_BATCHES).map(|_| store.expire_due(EXPIRE_BATCH));
    let expired = futures_util::future::try_join_all(batches).await?;
    Ok(expired.iter().sum())
}

pub async fn run(store: Arc<SqlStore>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut last_cleanup_ms = 0;
    let mut backoff = Backoff::new();
    let mut burst = false;
    while !*shutdown.borrow() {
        let now = store.now_ms();
        if now - last_cleanup_ms > CLEANUP_EVERY_MS {
            last_cleanup_ms = now;
            let forgotten = match store
                .forget_idempotency_before(now - IDEMPOTENCY_TTL_MS, 10_000)
                .await
            {
                Ok(_) => {
                    store
                        .forget_idle_pin_guards(PIN_GUARD_IDLE_MS, 10_000)
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = forgotten {
                tracing::warn!(
                    code = e.code,
                    "could not forget old idempotency keys and PIN guards"
                );
            }
        }
        let sleep_ms = match store.next_deadline().await {
            Ok(Some(deadline)) if deadline <= now => match expire_round(&store, burst).await {
                Ok(n) => {
                    // A full round means more are due (a flash sale): the next round
                    // keeps several batches in the writer at once.
                    burst = n >= EXPIRE_BATCH * if burst { BURST_BATCHES } else { 1 };
                    backoff.succeeded();
                    // The batch's earliest deadline: the longest any of it waited.
                    let lag_ms = (store.now_ms() - deadline).max(0);
                    metrics::histogram!("pocket_expiry_lag_seconds").record(lag_ms as f64 / 1000.0);
                    metrics::counter!("pocket_payments_expired_by_sweeper_total")
                        .increment(n as u64);
                    tracing::debug!(expired = n, "expired overdue payments");
                    continue;
                }
                Err(e) => {
                    burst = false;
                    backoff.failed("expire payments", &e)
                }
            },
            Ok(next) => {
                backoff.succeeded();
                next.map_or(MAX_SLEEP_MS, |deadline| {
                    (deadline - now).clamp(1, MAX_SLEEP_MS)
                })
            }
            Err(e) => backoff.failed("read the next deadline", &e),
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_ceiling_and_resets() {
        let mut b = Backoff::new();
        let e = pocket_core::Error::internal();
        let waits: Vec<i64> = (0..8).map(|_| b.failed("x", &e)).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.succeeded();
        assert_eq!(b.failed("x", &e), 100);
    }
}

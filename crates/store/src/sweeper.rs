//! The deadline sweeper: marks overdue pending payments `expired` (with their
//! `payment.expired` events) within a second of their deadline.
//!
//! It does not scan: it asks the store for the earliest pending deadline (one probe
//! of a partial index) and sleeps until then, but never longer than
//! [`MAX_SLEEP_MS`]. Since every payment's window is at least one second, a payment
//! created while it sleeps (by this node or another) is seen before it is due. Then it
//! expires what is due in bounded batches. Deadlines are also enforced by every confirm
//! at commit: the sweeper is about telling the world, never about correctness.

use crate::Store;
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

/// Runs until `shutdown` turns true.
pub async fn run(store: Arc<dyn Store>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut last_cleanup_ms = 0;
    while !*shutdown.borrow() {
        let now = store.now_ms();
        if now - last_cleanup_ms > CLEANUP_EVERY_MS {
            last_cleanup_ms = now;
            if let Err(e) = store
                .forget_idempotency_before(now - IDEMPOTENCY_TTL_MS, 10_000)
                .await
            {
                tracing::warn!(code = e.code, "could not forget old idempotency keys");
            }
        }
        let sleep_ms = match store.next_deadline().await {
            Ok(Some(deadline)) if deadline <= now => {
                match store.expire_due(EXPIRE_BATCH).await {
                    Ok(n) => tracing::debug!(expired = n, "expired overdue payments"),
                    Err(e) => tracing::warn!(code = e.code, "sweeper could not expire payments"),
                }
                continue;
            }
            Ok(Some(deadline)) => (deadline - now).clamp(1, MAX_SLEEP_MS),
            Ok(None) => MAX_SLEEP_MS,
            Err(e) => {
                tracing::warn!(code = e.code, "sweeper could not read the next deadline");
                MAX_SLEEP_MS
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

//! Waiting for what the store announces: the long-poll of a pending payment, and the
//! announcement a listener (the wallet's stream, a long-poll) wakes on. Not a route:
//! `routes::payments` and `routes::stream` both use it.

use crate::AppState;
use crate::error::ApiResult;
use pocket_core::payment::{Payment, Status};
use pocket_store::model::EventNote;
use std::time::Duration;
use tokio::sync::broadcast;

/// How often listeners look at the database even without an announcement.
pub(crate) const POLL_EVERY: Duration = Duration::from_secs(1);
/// Longest `wait` of a long-poll.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// Waits for an announcement that `about` accepts (or for missed ones: a lagging
/// listener must look at the database anyway). `false` when announcements stop.
pub(crate) async fn next_note(
    notes: &mut broadcast::Receiver<EventNote>,
    about: impl Fn(&EventNote) -> bool,
) -> bool {
    loop {
        match notes.recv().await {
            Ok(n) if about(&n) => return true,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => return true,
            Err(broadcast::error::RecvError::Closed) => return false,
        }
    }
}

/// Reads the payment, and while it is pending waits up to `wait_seconds` for it to
/// change, then reads it again. The merchant key the long-poll came with is looked at
/// again at every wake: a key that stops working (rolled, on any node) ends the wait
/// with `401` within a second.
pub async fn wait_while_pending(
    state: &AppState,
    id: &str,
    wait_seconds: u64,
    key_digest: &str,
) -> ApiResult<Option<Payment>> {
    let mut notes = state.store.subscribe();
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(wait_seconds.min(MAX_WAIT_SECONDS));
    loop {
        let p = state.store.payment(id.to_string()).await?;
        let pending = p.as_ref().is_some_and(|p| p.status == Status::Pending);
        if !pending || tokio::time::Instant::now() >= deadline {
            return Ok(p);
        }
        if state
            .store
            .merchant_by_key(key_digest.to_string())
            .await?
            .is_none()
        {
            return Err(crate::auth::invalid_merchant_key());
        }
        let about_it = async {
            let revoked = |n: &EventNote| {
                n.kind == pocket_store::model::REVOKED
                    && p.as_ref().is_some_and(|p| p.merchant == n.merchant_id)
            };
            if !next_note(&mut notes, |n| {
                n.payment_id.as_deref() == Some(id) || revoked(n)
            })
            .await
            {
                // No more announcements: rely on the poll and the deadline.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = about_it => {}
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

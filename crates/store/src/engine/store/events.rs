//! Events, their streams, and the idempotency records of answers.

use super::SqlStore;
use crate::model::*;
use crate::ops;
use pocket_core::Error;
use tokio::sync::broadcast;

impl SqlStore {
    /// A stored response for `(caller, key)` younger than 24 h, with its fingerprint.
    pub async fn find_idempotent(
        &self,
        caller: String,
        key: String,
    ) -> Result<Option<(String, StoredResponse)>, Error> {
        let now = self.now_ms();
        self.read(move |c| ops::idempotency::find(c, &caller, &key, now))
            .await
    }

    pub async fn forget_idempotency_before(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> Result<usize, Error> {
        self.writer
            .run(move |c, _| ops::idempotency::forget_before(c, before_ms, limit))
            .await
    }

    pub async fn list_events(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<Event>, Error> {
        self.read(move |c| ops::events::list(c, &merchant_id, &page))
            .await
    }

    /// Events announced right after their commit by this process. Listeners also
    /// poll (`customer_events`, `next_delivery_at`) to see other nodes' events.
    pub fn subscribe(&self) -> broadcast::Receiver<EventNote> {
        self.announcer.subscribe()
    }

    /// A customer's events after `after_seq`, oldest first, with their seq.
    pub async fn customer_events(
        &self,
        customer_id: String,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, Error> {
        self.read(move |c| ops::events::for_customer_since(c, &customer_id, after_seq, limit))
            .await
    }

    /// The seq of one of the customer's events (for `Last-Event-ID`).
    pub async fn customer_event_seq(
        &self,
        customer_id: String,
        event_id: String,
    ) -> Result<Option<i64>, Error> {
        self.read(move |c| ops::events::customer_event_seq(c, &customer_id, &event_id))
            .await
    }

    pub async fn latest_event_seq(&self) -> Result<i64, Error> {
        self.read(ops::events::last_seq).await
    }
}

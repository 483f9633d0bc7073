//! Webhook endpoints and their deliveries.

use super::SqlStore;
use crate::model::*;
use crate::ops;
use pocket_core::Error;

impl SqlStore {
    pub async fn create_webhook_endpoint(
        &self,
        merchant_id: String,
        url: String,
        events: Option<Vec<String>>,
        idem: Option<Idem>,
    ) -> Result<Written<WebhookEndpoint>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::webhooks::create(c, now, &merchant_id, &url, &events)
        })
        .await
    }

    pub async fn list_webhook_endpoints(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<WebhookEndpoint>, Error> {
        self.read(move |c| ops::webhooks::list(c, &merchant_id, &page))
            .await
    }

    pub async fn delete_webhook_endpoint(
        &self,
        merchant_id: String,
        id: String,
    ) -> Result<WebhookEndpoint, Error> {
        self.writer
            .run(move |c, now| ops::webhooks::delete(c, now, &merchant_id, &id))
            .await
    }

    /// Leases due deliveries (see `sqlite::ops::webhooks::claim`).
    pub async fn claim_deliveries(
        &self,
        busy: Vec<String>,
        per_endpoint: usize,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DeliveryJob>, Error> {
        self.writer
            .run(move |c, now| ops::webhooks::claim(c, now, &busy, per_endpoint, limit, lease_ms))
            .await
    }

    pub async fn record_attempt(&self, attempt: AttemptRecord) -> Result<(), Error> {
        self.writer
            .run(move |c, _| ops::webhooks::record_attempt(c, &attempt))
            .await
    }

    pub async fn delivery_attempts(
        &self,
        merchant_id: String,
        event_id: String,
    ) -> Result<Vec<DeliveryAttempt>, Error> {
        self.read(move |c| ops::webhooks::attempts(c, &merchant_id, &event_id))
            .await
    }

    pub async fn redeliver(&self, merchant_id: String, event_id: String) -> Result<usize, Error> {
        self.writer
            .run(move |c, now| ops::webhooks::redeliver(c, now, &merchant_id, &event_id))
            .await
    }

    pub async fn next_delivery_at(&self) -> Result<Option<i64>, Error> {
        self.read(ops::webhooks::next_due).await
    }
}

//! Devices (their keys and payment codes) and the sign-in tickets that add them.

use super::SqlStore;
use crate::model::*;
use crate::ops;
use crate::ops::Outcome;
use pocket_core::Error;

impl SqlStore {
    /// A single-use stream ticket, taken by the session `session_digest`.
    pub async fn create_ticket(
        &self,
        customer_id: String,
        digest: String,
        session_digest: String,
        expires_at: i64,
    ) -> Result<(), Error> {
        self.writer
            .run(move |c, now| {
                ops::wallet::create_ticket(
                    c,
                    now,
                    &customer_id,
                    &digest,
                    &session_digest,
                    expires_at,
                )
            })
            .await
    }

    /// Uses up a stream ticket: its customer and the digest of the session that took
    /// it; `None` when unknown, used or expired.
    pub async fn redeem_ticket(&self, digest: String) -> Result<Option<(Customer, String)>, Error> {
        self.writer
            .run(move |c, now| ops::wallet::redeem_ticket(c, now, &digest))
            .await
    }

    /// Registers a device in the session `session_digest`, whose sign-out revokes it.
    pub async fn add_device(
        &self,
        customer_id: String,
        name: String,
        public_key: String,
        session_digest: String,
        pin: PinAttempt,
        idem: Option<Idem>,
    ) -> Result<Written<Device>, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        let (customer, session) = (&customer_id, &session_digest);
                        ops::devices::add(c, now, customer, &name, &public_key, session)
                            .map(Outcome::Done)
                    })
                })
            })
            .await?
            .into_result()
    }

    pub async fn list_devices(&self, customer_id: String) -> Result<Vec<Device>, Error> {
        self.read(move |c| ops::devices::list(c, &customer_id))
            .await
    }

    pub async fn device(&self, customer_id: String, id: String) -> Result<Option<Device>, Error> {
        self.read(move |c| ops::devices::get(c, &customer_id, &id))
            .await
    }

    /// Active devices registered after `after_seq`, oldest first: `(seq, id)` (what
    /// the payment code directory computes codes for).
    pub async fn active_devices_since(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, Error> {
        self.read(move |c| ops::codes::active_devices_since(c, after_seq, limit))
            .await
    }

    pub async fn revoke_device(&self, customer_id: String, id: String) -> Result<Device, Error> {
        self.writer
            .run(move |c, now| ops::devices::revoke(c, now, &customer_id, &id))
            .await
    }
}

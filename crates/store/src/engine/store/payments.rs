//! Payments: create, confirm, decline, cancel, remind, refund, capture, expire.

use super::SqlStore;
use crate::NewPayment;
use crate::model::*;
use crate::ops;
use pocket_core::Error;
use pocket_core::payment::Payment;

impl SqlStore {
    pub async fn create_payment(
        &self,
        new: NewPayment,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        let risk = self.risk.clone();
        self.writer
            .run(move |conn, now| {
                ops::idempotency::wrap(conn, now, idem.as_ref(), |conn| {
                    let code = new.code.clone();
                    ops::codes::counting_refusals(conn, code.as_ref(), |conn| {
                        ops::payments::create(conn, now, new.clone(), &risk)
                    })
                })
            })
            .await?
            .into_result()
    }

    pub async fn payment(&self, id: String) -> Result<Option<Payment>, Error> {
        self.read(move |c| ops::payments::get(c, &id)).await
    }

    pub async fn list_payments(
        &self,
        owner: crate::PaymentOwner,
        status: Option<pocket_core::payment::Status>,
        page: PageRequest,
    ) -> Result<Page<Payment>, Error> {
        self.read(move |c| ops::payments::list(c, &owner, status, &page))
            .await
    }

    /// Moves the money and marks the payment succeeded, or expires it when the
    /// deadline has passed at commit (`409 payment_expired`, committed).
    /// `device`: the device key whose signature was verified; it must still be
    /// active when the confirm commits. `pin`: the attempt of a verified PIN, settled
    /// in the same transaction (refused if its guard locked meanwhile).
    pub async fn confirm(
        &self,
        payment_id: String,
        customer_id: String,
        proof: pocket_core::payment::Proof,
        device: Option<String>,
        pin: Option<PinAttempt>,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        let risk = self.risk.clone();
        let key = customer_id.clone();
        self.writer
            .run_keyed(&key, move |c, now| {
                ops::pins::with_correct_pin(c, now, pin.as_ref(), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        let confirm = ops::payments::Confirm {
                            payment_id: &payment_id,
                            customer_id: &customer_id,
                            proof,
                            device_id: device.as_deref(),
                        };
                        ops::payments::confirm(c, now, &confirm, &risk)
                    })
                })
            })
            .await?
            .into_result()
    }

    pub async fn decline(
        &self,
        payment_id: String,
        customer_id: String,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        let key = customer_id.clone();
        self.writer
            .run_keyed(&key, move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::payments::decline(c, now, &payment_id, &customer_id)
                })
            })
            .await?
            .into_result()
    }

    /// Sends a pending request to its customer's wallet again (at most 3 times).
    pub async fn remind(
        &self,
        payment_id: String,
        merchant_id: String,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        self.writer
            .run(move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::payments::remind(c, now, &payment_id, &merchant_id)
                })
            })
            .await?
            .into_result()
    }

    pub async fn cancel(
        &self,
        payment_id: String,
        merchant_id: String,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        self.writer
            .run(move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::payments::cancel(c, now, &payment_id, &merchant_id)
                })
            })
            .await?
            .into_result()
    }

    pub async fn refund(
        &self,
        payment_id: String,
        merchant_id: String,
        amount: Option<i64>,
        reason: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Written<Refund>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::payments::refund(c, now, &payment_id, &merchant_id, amount, reason.clone())
        })
        .await
    }

    /// Captures all (`amount` absent) or part of an authorized payment before its
    /// `capture_before`; the rest of the hold is released.
    pub async fn capture(
        &self,
        payment_id: String,
        merchant_id: String,
        amount: Option<i64>,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        self.writer
            .run(move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::payments::capture(c, now, &payment_id, &merchant_id, amount)
                })
            })
            .await?
            .into_result()
    }

    /// The earliest deadline of a pending payment or a hold.
    pub async fn next_deadline(&self) -> Result<Option<i64>, Error> {
        self.read(ops::payments::next_deadline).await
    }

    /// Expires up to `limit` overdue pending payments; returns how many.
    pub async fn expire_due(&self, limit: usize) -> Result<usize, Error> {
        // The urgent lane: an expiry's lag must not grow with the API's queue.
        self.writer
            .run_first(move |c, now| ops::payments::expire_due(c, now, limit))
            .await
    }
}

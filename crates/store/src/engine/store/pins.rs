//! PIN checks: each guess reserved, then settled right or wrong, and its guards.

use super::SqlStore;
use crate::model::*;
use crate::ops;
use crate::ops::Outcome;
use pocket_core::Error;

impl SqlStore {
    pub async fn pin_state_by_phone(&self, phone: String) -> Result<Option<PinState>, Error> {
        self.read(move |c| ops::wallet::pin_state(c, "phone", &phone))
            .await
    }

    pub async fn pin_state(&self, customer_id: String) -> Result<Option<PinState>, Error> {
        self.read(move |c| ops::wallet::pin_state(c, "id", &customer_id))
            .await
    }

    /// Makes `body` the answer a replay of `idem` gets (the answer actually sent,
    /// decided after the record was first written).
    pub async fn record_answer(&self, idem: Idem, body: String) -> Result<(), Error> {
        self.writer
            .run(move |c, _| ops::idempotency::record_answer(c, &idem, &body))
            .await
    }

    /// A replay of a PIN request judged at once against its record (`ops::pins::
    /// judge_replay`).
    pub async fn judge_pin_replay(
        &self,
        attempt: PinAttempt,
        idem: Idem,
    ) -> Result<ReplayJudged, Error> {
        self.writer
            .run(move |c, now| ops::pins::judge_replay(c, now, &attempt, &idem))
            .await
    }

    /// Reserves a PIN attempt under its guard before the PIN is verified
    /// (`423 pin_locked` when the guard refuses). Every reservation is then settled:
    /// wrong by [`SqlStore::settle_wrong_pin`], never verified by [`SqlStore::abandon_pin`],
    /// right by the write it authorises (which checks the lock as it commits).
    pub async fn reserve_pin(&self, attempt: PinAttempt) -> Result<(), Error> {
        self.writer
            .run(move |c, now| ops::pins::reserve(c, now, &attempt))
            .await
    }

    /// Counts a wrong PIN; the error to answer (`incorrect_pin` or `pin_locked`).
    pub async fn settle_wrong_pin(&self, attempt: PinAttempt) -> Result<Error, Error> {
        self.writer
            .run(move |c, now| {
                let verdict = ops::pins::settle(c, now, &attempt, false)?;
                // A wrong PIN never comes out accepted.
                Ok(verdict.error(now).unwrap_or_else(Error::internal))
            })
            .await
    }

    pub async fn abandon_pin(&self, attempt: PinAttempt) -> Result<(), Error> {
        self.writer
            .run(move |c, now| ops::pins::abandon(c, now, &attempt))
            .await
    }

    /// Deletes PIN guards untouched for `idle_ms` whose lock and reservations ran out.
    pub async fn forget_idle_pin_guards(&self, idle_ms: i64, limit: usize) -> Result<usize, Error> {
        self.writer
            .run(move |c, now| ops::pins::forget_idle(c, now, idle_ms, limit))
            .await
    }

    /// Settles a right PIN whose action did not happen (the bank declined a card): ends
    /// the run, frees the reservation; `pin_locked` if the guard locked meanwhile.
    pub async fn settle_right_pin(&self, attempt: PinAttempt) -> Result<(), Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, Some(&attempt), |_| Ok(Outcome::Done(())))
            })
            .await?
            .into_result()
    }
}

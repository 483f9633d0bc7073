//! Customers: sign-up, sessions, PIN changes and resets.

use super::SqlStore;
use crate::model::*;
use crate::ops;
use crate::ops::Outcome;
use pocket_core::Error;

impl SqlStore {
    /// Creates a customer and a first session (`(token digest, expires_at)`).
    pub async fn signup(
        &self,
        phone: String,
        name: String,
        pin_hash: String,
        session: (String, i64),
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::wallet::signup(c, now, &phone, &name, &pin_hash, &session.0, session.1)
        })
        .await
    }

    /// A new session after a correct PIN, if the sign-in guard is not locked.
    /// A session after a right PIN; with `rehash`, the PIN's hash is replaced by one at
    /// today's cost (only if it is still `old_hash`).
    pub async fn create_session(
        &self,
        customer_id: String,
        session: (String, i64),
        pin: PinAttempt,
        rehash: Option<crate::PinRehash>,
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        if let Some(r) = &rehash {
                            ops::wallet::rehash_pin(c, &customer_id, r)?;
                        }
                        ops::wallet::create_session(c, now, &customer_id, &session.0, session.1)
                            .map(Outcome::Done)
                    })
                })
            })
            .await?
            .into_result()
    }

    /// A new PIN once the old one was proven (`pin`), if the hash is still
    /// `change.old_hash`; every session but `keep_session` ends, with its devices.
    pub async fn change_pin(
        &self,
        customer_id: String,
        keep_session: String,
        pin: PinAttempt,
        change: crate::PinRehash,
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error> {
        let (credentials, who) = (self.credentials.clone(), customer_id.clone());
        let who_else = customer_id.clone();
        let written = self
            .writer
            .run_then(
                move |c, now| {
                    ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                        ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                            ops::wallet::change_pin(c, now, &customer_id, &keep_session, &change)
                        })
                    })
                },
                move || credentials.forget_customer(&who),
            )
            .await?
            .into_result()?;
        // This node's streams of the sessions that ended hear it now; other nodes'
        // through the database.
        self.announcer.revoked(&format!("customer:{who_else}"));
        Ok(written)
    }

    /// Issues a customer's one-time PIN-reset code (its keyed digest), live until
    /// `expires_at`, replacing any earlier one.
    pub async fn issue_pin_reset(
        &self,
        customer_id: String,
        code_digest: String,
        expires_at: i64,
    ) -> Result<Customer, Error> {
        self.writer
            .run(move |c, now| {
                ops::wallet::issue_pin_reset(c, now, &customer_id, &code_digest, expires_at)
            })
            .await
    }

    /// Takes one guess at the live reset code of the wallet with `phone`: its customer
    /// and code digest, or `None` (no live code, or its guesses are used up).
    pub async fn take_reset_guess(&self, phone: String) -> Result<Option<(String, String)>, Error> {
        self.writer
            .run(move |c, now| ops::wallet::take_reset_guess(c, now, &phone))
            .await
    }

    /// Spends a reset code that was guessed right: the new PIN, the guards cleared,
    /// every session ended and a new one begun.
    pub async fn redeem_pin_reset(&self, reset: crate::PinReset) -> Result<Customer, Error> {
        let (credentials, who) = (self.credentials.clone(), reset.customer_id.clone());
        let redeemed = self
            .writer
            .run_then(
                move |c, now| {
                    let r = ops::wallet::Redeem {
                        customer_id: &reset.customer_id,
                        code_digest: &reset.code_digest,
                        pin_hash: &reset.pin_hash,
                        guards: &reset.guards,
                        session: &reset.session,
                    };
                    ops::wallet::redeem_pin_reset(c, now, &r)
                },
                move || credentials.forget_customer(&who),
            )
            .await?
            .into_result()?;
        self.announcer.revoked(&format!("customer:{}", redeemed.id));
        Ok(redeemed)
    }

    pub async fn session(&self, token_digest: String) -> Result<Option<Customer>, Error> {
        self.remembered(token_digest, ops::wallet::session).await
    }

    pub async fn delete_session(&self, token_digest: String) -> Result<(), Error> {
        let credentials = self.credentials.clone();
        let digest = token_digest.clone();
        let customer = self
            .writer
            .run_then(
                move |c, now| ops::wallet::delete_session(c, now, &digest),
                move || credentials.forget_session(&token_digest),
            )
            .await?;
        // This node's streams hear it now; other nodes' through the database.
        if let Some(c) = customer {
            self.announcer.revoked(&format!("customer:{c}"));
        }
        Ok(())
    }
}

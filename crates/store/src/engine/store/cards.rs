//! Cards bound to wallets (only tokens and fingerprints).

use super::SqlStore;
use crate::model::*;
use crate::ops;
use crate::ops::Outcome;
use pocket_core::Error;

impl SqlStore {
    /// Whether the wallet has a card with this fingerprint bound now.
    pub async fn card_bound(
        &self,
        customer_id: String,
        fingerprint: String,
    ) -> Result<bool, Error> {
        self.read(move |c| ops::cards::is_bound(c, &customer_id, &fingerprint))
            .await
    }

    /// Binds a card the bank accepted, settling the PIN attempt that authorised it.
    pub async fn add_card(
        &self,
        customer_id: String,
        card: NewCard,
        pin: PinAttempt,
        idem: Option<Idem>,
    ) -> Result<Written<Card>, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        ops::cards::add(c, now, &customer_id, &card).map(Outcome::Done)
                    })
                })
            })
            .await?
            .into_result()
    }

    pub async fn list_cards(&self, customer_id: String) -> Result<Vec<Card>, Error> {
        self.read(move |c| ops::cards::list(c, &customer_id)).await
    }

    /// A bound card of this wallet with its connector token (`None`: no such card).
    pub async fn card_token(
        &self,
        customer_id: String,
        card_id: String,
    ) -> Result<Option<(Card, String)>, Error> {
        self.read(move |c| ops::cards::with_token(c, &customer_id, &card_id))
            .await
    }

    /// The connector token of a card, for asking the bank again about an operation.
    pub async fn token_of_card(&self, card_id: String) -> Result<Option<String>, Error> {
        self.read(move |c| ops::bank::card_token(c, &card_id)).await
    }

    pub async fn remove_card(&self, customer_id: String, id: String) -> Result<Card, Error> {
        self.writer
            .run(move |c, now| ops::cards::remove(c, now, &customer_id, &id))
            .await
    }
}

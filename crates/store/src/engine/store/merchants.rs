//! Merchants, their keys (secret and restricted) and their staff.

use super::SqlStore;
use crate::KeyDigest;
use crate::model::*;
use crate::ops;
use crate::ops::Outcome;
use pocket_core::Error;

impl SqlStore {
    /// A merchant with its first key, and a webhook endpoint for `webhook_url`, in one transaction.
    pub async fn create_merchant(
        &self,
        name: String,
        key: KeyDigest,
        webhook_url: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Written<MerchantCreated>, Error> {
        self.write_idem(idem, move |c, now| {
            let merchant = ops::merchants::create(c, now, &name, &key.digest, &key.prefix)?;
            let webhook_endpoint = match &webhook_url {
                Some(url) => Some(ops::webhooks::create(c, now, &merchant.id, url, &None)?),
                None => None,
            };
            Ok(MerchantCreated {
                merchant,
                webhook_endpoint,
            })
        })
        .await
    }

    /// Every merchant, newest first (the operator's list).
    pub async fn list_merchants(&self, page: PageRequest) -> Result<Page<Merchant>, Error> {
        self.read(move |c| ops::merchants::list(c, &page)).await
    }

    /// A new secret key for the merchant; older keys stay valid until `old_expires_at`.
    /// `by_key` is the digest of the key rolling itself (the merchant's own roll): then
    /// only keys no newer than it are retired, and a key already being retired may not
    /// roll (`409 key_expiring`) — a leaked key cannot retire the keys that replace it.
    pub async fn roll_merchant_key(
        &self,
        merchant_id: String,
        key: KeyDigest,
        old_expires_at: i64,
        by_key: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Written<Merchant>, Error> {
        let merchant = merchant_id.clone();
        // The old keys' expiry moved: they are read again from the commit on (forgotten
        // on the writer's thread, so also when nobody waits for this answer).
        let credentials = self.credentials.clone();
        let forgotten = merchant_id.clone();
        let written = self
            .writer
            .run_then(
                move |c, now| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        ops::merchants::roll_key(
                            c,
                            now,
                            &merchant_id,
                            &key.digest,
                            &key.prefix,
                            old_expires_at.max(now),
                            by_key.as_deref(),
                        )
                        .map(Outcome::Done)
                    })
                },
                move || credentials.forget_merchant(&forgotten),
            )
            .await?
            .into_result()?;
        if old_expires_at <= self.now_ms() {
            // The old keys stopped now: this node's long-polls holding them look now.
            self.announcer.revoked(&format!("merchant:{merchant}"));
        }
        Ok(written)
    }

    /// A restricted key with `scopes` (checked: known, distinct, no `keys:write`).
    pub async fn create_restricted_key(
        &self,
        merchant_id: String,
        name: String,
        scopes: Vec<pocket_core::scope::Scope>,
        key: KeyDigest,
        made_by_staff: Option<String>,
    ) -> Result<RestrictedKey, Error> {
        self.writer
            .run(move |c, now| {
                let k = ops::staff::NewRestrictedKey {
                    merchant_id: &merchant_id,
                    name: &name,
                    scopes: &scopes,
                    key_digest: &key.digest,
                    prefix: &key.prefix,
                    made_by_staff: made_by_staff.as_deref(),
                };
                ops::staff::create_restricted_key(c, now, &k)
            })
            .await?
            .into_result()
    }

    pub async fn list_restricted_keys(
        &self,
        merchant_id: String,
    ) -> Result<Vec<RestrictedKey>, Error> {
        let now = self.now_ms();
        self.read(move |c| ops::staff::list_restricted_keys(c, now, &merchant_id))
            .await
    }

    pub async fn revoke_restricted_key(
        &self,
        merchant_id: String,
        id: String,
    ) -> Result<(), Error> {
        let (credentials, merchant) = (self.credentials.clone(), merchant_id.clone());
        self.writer
            .run_then(
                move |c, now| ops::staff::revoke_restricted_key(c, now, &merchant_id, &id),
                move || credentials.forget_merchant(&merchant),
            )
            .await
    }

    /// Adds a wallet holder (a `cus_` id or an E.164 phone) to the merchant's staff.
    pub async fn add_staff(
        &self,
        merchant_id: String,
        customer: String,
        role: pocket_core::scope::Role,
    ) -> Result<Staff, Error> {
        self.writer
            .run(move |c, now| ops::staff::add_staff(c, now, &merchant_id, &customer, role))
            .await?
            .into_result()
    }

    pub async fn list_staff(&self, merchant_id: String) -> Result<Vec<Staff>, Error> {
        self.read(move |c| ops::staff::list_staff(c, &merchant_id))
            .await
    }

    /// Removes a member of the staff and ends their console sessions.
    pub async fn remove_staff(&self, merchant_id: String, id: String) -> Result<(), Error> {
        let (credentials, merchant) = (self.credentials.clone(), merchant_id.clone());
        self.writer
            .run_then(
                move |c, now| ops::staff::remove_staff(c, now, &merchant_id, &id),
                move || credentials.forget_merchant(&merchant),
            )
            .await
    }

    /// Where a customer is staff.
    pub async fn memberships(&self, customer_id: String) -> Result<Vec<Membership>, Error> {
        self.read(move |c| ops::staff::memberships(c, &customer_id))
            .await
    }

    /// A console session (its key digest, until `expires_at`) for a member of the staff,
    /// after their right PIN (`pin`), if they are still on the staff.
    pub async fn create_staff_session(
        &self,
        staff_id: String,
        key_digest: String,
        expires_at: i64,
        pin: PinAttempt,
    ) -> Result<Membership, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                    ops::staff::create_staff_session(c, now, &staff_id, &key_digest, expires_at)
                })
            })
            .await?
            .into_result()
    }

    pub async fn merchant_by_key(&self, key_digest: String) -> Result<Option<MerchantAuth>, Error> {
        self.remembered(key_digest, ops::merchants::by_key).await
    }
}

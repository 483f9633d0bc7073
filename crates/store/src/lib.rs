//! Pocket's durable state behind one narrow interface, [`Store`].
//!
//! The HTTP layer only ever talks to `dyn Store`. [`sqlite::SqliteStore`] implements it
//! on an embedded database; a PostgreSQL implementation will implement the same trait.
//! Every write method runs in one database transaction that also writes the ledger
//! transfers and the events the change causes, and (when given an [`model::Idem`]) the
//! idempotency record of the response.
//!
//! What this crate must not do: decide money rules itself (they come from
//! `pocket-core`), know about HTTP, or keep secrets in clear (it sees only digests).

pub mod clock;
pub mod ids;
pub mod model;
pub mod sqlite;
pub mod sweeper;

use model::*;
use pocket_core::ledger::AccountKind;
use pocket_core::payment::{Payment, Status};
use pocket_core::policy::PolicyBook;
use pocket_core::pricing::{CartLine, Product};
use pocket_core::{Currency, Error};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A payment to create. Pricing (from `items`) and the tier policy are applied inside
/// the creating transaction, against the catalog as it is at that moment.
#[derive(Clone, Debug)]
pub struct NewPayment {
    pub merchant_id: String,
    pub currency: Currency,
    pub items: Option<Vec<CartLine>>,
    /// With `items`: a check against the computed total. Without: the amount.
    pub amount: Option<i64>,
    /// A `cus_` id or an E.164 phone number.
    pub customer: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub expires_in_seconds: Option<i64>,
    pub policy: Arc<PolicyBook>,
}

#[derive(Clone, Debug, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub unit_amount: Option<i64>,
    pub active: Option<bool>,
}

/// Whose payments a list shows.
#[derive(Clone, Debug)]
pub enum PaymentOwner {
    Merchant(String),
    Customer(String),
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The store's clock (the one used inside transactions).
    fn now_ms(&self) -> i64;

    /// A stored response for `(caller, key)` younger than 24 h, with its fingerprint.
    async fn find_idempotent(
        &self,
        caller: String,
        key: String,
    ) -> Result<Option<(String, StoredResponse)>, Error>;

    async fn create_merchant(
        &self,
        name: String,
        key_digest: String,
        idem: Option<Idem>,
    ) -> Result<Written<Merchant>, Error>;
    async fn merchant_by_key(&self, key_digest: String) -> Result<Option<MerchantAuth>, Error>;

    /// Creates a customer and a first session (`(token digest, expires_at)`).
    async fn signup(
        &self,
        phone: String,
        name: String,
        pin_hash: String,
        session: (String, i64),
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error>;
    async fn pin_state_by_phone(&self, phone: String) -> Result<Option<PinState>, Error>;
    async fn pin_state(&self, customer_id: String) -> Result<Option<PinState>, Error>;
    /// Counts a wrong PIN; after `max_failures` in a row locks it for `lock_ms`.
    /// Returns whether the PIN is now locked.
    async fn record_pin_failure(
        &self,
        customer_id: String,
        max_failures: i64,
        lock_ms: i64,
    ) -> Result<bool, Error>;
    /// A new session after a correct PIN (also resets the failure count).
    async fn create_session(
        &self,
        customer_id: String,
        session: (String, i64),
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error>;
    async fn session(&self, token_digest: String) -> Result<Option<Customer>, Error>;
    async fn delete_session(&self, token_digest: String) -> Result<(), Error>;

    /// Credits a wallet from the settlement account. `customer` is an id or a phone.
    async fn topup(
        &self,
        customer: String,
        amount: i64,
        currency: Currency,
        source: &'static str,
        idem: Option<Idem>,
    ) -> Result<Written<Topup>, Error>;
    async fn balances(&self, kind: AccountKind, owner: String) -> Result<Vec<Balance>, Error>;
    async fn transactions(
        &self,
        kind: AccountKind,
        owner: String,
        page: PageRequest,
    ) -> Result<Page<Transaction>, Error>;
    async fn ledger_report(&self) -> Result<LedgerReport, Error>;

    async fn create_product(
        &self,
        merchant_id: String,
        product: Product,
        idem: Option<Idem>,
    ) -> Result<Written<Product>, Error>;
    async fn update_product(
        &self,
        merchant_id: String,
        sku: String,
        patch: ProductPatch,
        idem: Option<Idem>,
    ) -> Result<Written<Product>, Error>;
    async fn list_products(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<Product>, Error>;

    async fn create_payment(
        &self,
        new: NewPayment,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error>;
    async fn payment(&self, id: String) -> Result<Option<Payment>, Error>;
    async fn list_payments(
        &self,
        owner: PaymentOwner,
        status: Option<Status>,
        page: PageRequest,
    ) -> Result<Page<Payment>, Error>;
    /// Moves the money and marks the payment succeeded, or expires it when the
    /// deadline has passed at commit (`409 payment_expired`, committed).
    async fn confirm(
        &self,
        payment_id: String,
        customer_id: String,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error>;
    async fn decline(
        &self,
        payment_id: String,
        customer_id: String,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error>;
    async fn cancel(
        &self,
        payment_id: String,
        merchant_id: String,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error>;
    async fn refund(
        &self,
        payment_id: String,
        merchant_id: String,
        amount: Option<i64>,
        reason: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Written<Refund>, Error>;

    /// The earliest deadline of a pending payment.
    async fn next_deadline(&self) -> Result<Option<i64>, Error>;
    /// Expires up to `limit` overdue pending payments; returns how many.
    async fn expire_due(&self, limit: usize) -> Result<usize, Error>;
    async fn forget_idempotency_before(&self, before_ms: i64, limit: usize)
    -> Result<usize, Error>;

    async fn list_events(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<Event>, Error>;
}

//! Pocket's durable state behind one narrow interface, [`Store`].
//!
//! The HTTP layer only ever talks to `dyn Store`. [`SqlStore`] implements it once, over
//! either engine: SQLite embedded ([`sqlite::open`], the default) or PostgreSQL
//! ([`postgres::open`], for several nodes). The SQL of every operation is written once
//! (`ops`), against one small connection surface (`sql`).
//! Every write method runs in one database transaction that also writes the ledger
//! transfers and the events the change causes, and (when given an [`model::Idem`]) the
//! idempotency record of the response.
//!
//! What this crate must not do: decide money rules itself (they come from
//! `pocket-core`), know about HTTP, or keep secrets in clear (it sees only digests).

pub mod clock;
mod engine;
pub mod ids;
pub mod model;
mod ops;
pub mod postgres;
mod sql;
pub mod sqlite;
pub mod sweeper;
pub mod testing;
pub mod throttle;

pub use engine::{MAX_BATCH, SqlStore};
pub use ops::wallet::{MAX_RESET_GUESSES, reset_code_invalid};

use model::*;
use pocket_core::ledger::AccountKind;
use pocket_core::payment::{Payment, Proof, Status};
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
    /// Instead of `customer`: the payment code the customer showed, as the code
    /// directory resolved it; charged (window, device, single use) inside the creating
    /// transaction, after every other check, so that no answer tells a known code from
    /// an unknown one.
    pub code: Option<ShownCode>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub expires_in_seconds: Option<i64>,
    /// `manual`: confirming holds the money until the merchant captures it.
    pub capture: pocket_core::payment::CaptureMethod,
    /// How long a hold lasts (manual capture only; checked by `pocket_core::hold`).
    pub capture_within_seconds: Option<i64>,
    pub policy: Arc<PolicyBook>,
    /// Where payment pages live (`<base>/pay/<id>`) and where the merchant is, for the QR.
    pub qr: Arc<QrContext>,
}

/// A payment code resolved to the device that shows it, and the step it was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeCharge {
    pub device_id: String,
    pub step: i64,
}

/// A payment code sent by a merchant: shown by a device, or by none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShownCode {
    Device(CodeCharge),
    Unknown,
}

#[derive(Clone, Debug)]
pub struct QrContext {
    pub base_url: String,
    pub place: pocket_core::emv::QrPlace,
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
    /// The merchant's payments of one customer, named by `cus_` id or E.164 phone (one
    /// no wallet has: none).
    MerchantCustomer {
        merchant: String,
        customer: String,
    },
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

    /// A merchant with its first key, and a webhook endpoint for `webhook_url`, in one transaction.
    async fn create_merchant(
        &self,
        name: String,
        key: KeyDigest,
        webhook_url: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Written<MerchantCreated>, Error>;
    /// A new secret key for the merchant; older keys stay valid until `old_expires_at`.
    /// `by_key` is the digest of the key rolling itself (the merchant's own roll): then
    /// only keys no newer than it are retired, and a key already being retired may not
    /// roll (`409 key_expiring`) — a leaked key cannot retire the keys that replace it.
    async fn roll_merchant_key(
        &self,
        merchant_id: String,
        key: KeyDigest,
        old_expires_at: i64,
        by_key: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Written<Merchant>, Error>;
    /// A restricted key with `scopes` (checked: known, distinct, no `keys:write`).
    async fn create_restricted_key(
        &self,
        merchant_id: String,
        name: String,
        scopes: Vec<pocket_core::scope::Scope>,
        key: KeyDigest,
        made_by_staff: Option<String>,
    ) -> Result<RestrictedKey, Error>;
    async fn list_restricted_keys(&self, merchant_id: String) -> Result<Vec<RestrictedKey>, Error>;
    async fn revoke_restricted_key(&self, merchant_id: String, id: String) -> Result<(), Error>;
    /// Adds a wallet holder (a `cus_` id or an E.164 phone) to the merchant's staff.
    async fn add_staff(
        &self,
        merchant_id: String,
        customer: String,
        role: pocket_core::scope::Role,
    ) -> Result<Staff, Error>;
    async fn list_staff(&self, merchant_id: String) -> Result<Vec<Staff>, Error>;
    /// Removes a member of the staff and ends their console sessions.
    async fn remove_staff(&self, merchant_id: String, id: String) -> Result<(), Error>;
    /// Where a customer is staff.
    async fn memberships(&self, customer_id: String) -> Result<Vec<Membership>, Error>;
    /// A console session (its key digest, until `expires_at`) for a member of the staff,
    /// after their right PIN (`pin`), if they are still on the staff.
    async fn create_staff_session(
        &self,
        staff_id: String,
        key_digest: String,
        expires_at: i64,
        pin: PinAttempt,
    ) -> Result<Membership, Error>;
    async fn merchant_by_key(&self, key_digest: String) -> Result<Option<MerchantAuth>, Error>;
    /// Every merchant, newest first (the operator's list).
    async fn list_merchants(&self, page: PageRequest) -> Result<Page<Merchant>, Error>;

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
    /// Reserves a PIN attempt under its guard before the PIN is verified
    /// (`423 pin_locked` when the guard refuses). Every reservation is then settled:
    /// wrong by [`Store::settle_wrong_pin`], never verified by [`Store::abandon_pin`],
    /// right by the write it authorises (which checks the lock as it commits).
    async fn reserve_pin(&self, attempt: PinAttempt) -> Result<(), Error>;
    /// Makes `body` the answer a replay of `idem` gets (the answer actually sent,
    /// decided after the record was first written).
    async fn record_answer(&self, idem: Idem, body: String) -> Result<(), Error>;
    /// A replay of a PIN request judged at once against its record (`ops::pins::
    /// judge_replay`).
    async fn judge_pin_replay(
        &self,
        attempt: PinAttempt,
        idem: Idem,
    ) -> Result<ReplayJudged, Error>;
    /// Counts a wrong PIN; the error to answer (`incorrect_pin` or `pin_locked`).
    async fn settle_wrong_pin(&self, attempt: PinAttempt) -> Result<Error, Error>;
    async fn abandon_pin(&self, attempt: PinAttempt) -> Result<(), Error>;
    /// A new session after a correct PIN, if the sign-in guard is not locked.
    /// A session after a right PIN; with `rehash`, the PIN's hash is replaced by one at
    /// today's cost (only if it is still `old_hash`).
    async fn create_session(
        &self,
        customer_id: String,
        session: (String, i64),
        pin: PinAttempt,
        rehash: Option<PinRehash>,
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error>;
    async fn session(&self, token_digest: String) -> Result<Option<Customer>, Error>;
    async fn delete_session(&self, token_digest: String) -> Result<(), Error>;
    /// A new PIN once the old one was proven (`pin`), if the hash is still
    /// `change.old_hash`; every session but `keep_session` ends, with its devices.
    async fn change_pin(
        &self,
        customer_id: String,
        keep_session: String,
        pin: PinAttempt,
        change: PinRehash,
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error>;
    /// Issues a customer's one-time PIN-reset code (its keyed digest), live until
    /// `expires_at`, replacing any earlier one.
    async fn issue_pin_reset(
        &self,
        customer_id: String,
        code_digest: String,
        expires_at: i64,
    ) -> Result<Customer, Error>;
    /// Takes one guess at the live reset code of the wallet with `phone`: its customer
    /// and code digest, or `None` (no live code, or its guesses are used up).
    async fn take_reset_guess(&self, phone: String) -> Result<Option<(String, String)>, Error>;
    /// Spends a reset code that was guessed right: the new PIN, the guards cleared,
    /// every session ended and a new one begun.
    async fn redeem_pin_reset(&self, reset: PinReset) -> Result<Result<Customer, Error>, Error>;

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
    /// A page of the customer's history, newest first: all of it, or one `kind`.
    async fn activity(
        &self,
        customer_id: String,
        kind: Option<pocket_core::activity::Kind>,
        page: PageRequest,
    ) -> Result<Page<pocket_core::activity::Activity>, Error>;
    /// Money into and out of the customer's wallets in each month `(name, start, end)`.
    async fn wallet_months(
        &self,
        customer_id: String,
        months: Vec<(String, i64, i64)>,
    ) -> Result<Vec<model::MonthFlow>, Error>;
    /// What reached a merchant's balance through sales in a period.
    async fn takings(&self, merchant: String, q: TakingsQuery) -> Result<Takings, Error>;
    /// The book from its running totals, or (`full`) audited by reading everything.
    async fn ledger_report(&self, full: bool) -> Result<LedgerReport, Error>;
    /// Payments by status and tier and the webhook backlog, for `GET /metrics` (a
    /// scan of the payments: scraped every few seconds at most, not per request).
    async fn figures(&self) -> Result<StoreFigures, Error>;

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
    /// `device`: the device key whose signature was verified; it must still be
    /// active when the confirm commits. `pin`: the attempt of a verified PIN, settled
    /// in the same transaction (refused if its guard locked meanwhile).
    async fn confirm(
        &self,
        payment_id: String,
        customer_id: String,
        proof: Proof,
        device: Option<String>,
        pin: Option<PinAttempt>,
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
    /// Sends a pending request to its customer's wallet again (at most 3 times).
    async fn remind(
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
    /// Captures all (`amount` absent) or part of an authorized payment before its
    /// `capture_before`; the rest of the hold is released.
    async fn capture(
        &self,
        payment_id: String,
        merchant_id: String,
        amount: Option<i64>,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error>;

    /// Adds an operator risk rule (`400 rule_invalid` unless `when` compiles to a
    /// boolean); it applies to every later creation and confirm, on every node.
    async fn add_rule(
        &self,
        name: String,
        when: String,
        action: pocket_core::risk::Action,
        idem: Option<Idem>,
    ) -> Result<Written<crate::model::RiskRule>, Error>;
    /// The rules, in the order they are evaluated.
    async fn rules(&self) -> Result<Vec<crate::model::RiskRule>, Error>;
    async fn remove_rule(&self, id: String) -> Result<(), Error>;

    /// The earliest deadline of a pending payment or a hold.
    async fn next_deadline(&self) -> Result<Option<i64>, Error>;
    /// Expires up to `limit` overdue pending payments; returns how many.
    async fn expire_due(&self, limit: usize) -> Result<usize, Error>;
    async fn forget_idempotency_before(&self, before_ms: i64, limit: usize)
    -> Result<usize, Error>;
    /// Deletes PIN guards untouched for `idle_ms` whose lock and reservations ran out.
    async fn forget_idle_pin_guards(&self, idle_ms: i64, limit: usize) -> Result<usize, Error>;

    async fn list_events(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<Event>, Error>;

    /// Events announced right after their commit by this process. Listeners also
    /// poll (`customer_events`, `next_delivery_at`) to see other nodes' events.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<EventNote>;
    /// A customer's events after `after_seq`, oldest first, with their seq.
    async fn customer_events(
        &self,
        customer_id: String,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, Error>;
    /// The seq of one of the customer's events (for `Last-Event-ID`).
    async fn customer_event_seq(
        &self,
        customer_id: String,
        event_id: String,
    ) -> Result<Option<i64>, Error>;
    async fn latest_event_seq(&self) -> Result<i64, Error>;

    async fn create_webhook_endpoint(
        &self,
        merchant_id: String,
        url: String,
        events: Option<Vec<String>>,
        idem: Option<Idem>,
    ) -> Result<Written<WebhookEndpoint>, Error>;
    async fn list_webhook_endpoints(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<WebhookEndpoint>, Error>;
    async fn delete_webhook_endpoint(
        &self,
        merchant_id: String,
        id: String,
    ) -> Result<WebhookEndpoint, Error>;
    /// Leases due deliveries (see `sqlite::ops::webhooks::claim`).
    async fn claim_deliveries(
        &self,
        busy: Vec<String>,
        per_endpoint: usize,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DeliveryJob>, Error>;
    async fn record_attempt(&self, attempt: AttemptRecord) -> Result<(), Error>;
    async fn delivery_attempts(
        &self,
        merchant_id: String,
        event_id: String,
    ) -> Result<Vec<DeliveryAttempt>, Error>;
    async fn redeliver(&self, merchant_id: String, event_id: String) -> Result<usize, Error>;
    async fn next_delivery_at(&self) -> Result<Option<i64>, Error>;

    /// A single-use stream ticket, taken by the session `session_digest`.
    async fn create_ticket(
        &self,
        customer_id: String,
        digest: String,
        session_digest: String,
        expires_at: i64,
    ) -> Result<(), Error>;
    /// Uses up a stream ticket: its customer and the digest of the session that took
    /// it; `None` when unknown, used or expired.
    async fn redeem_ticket(&self, digest: String) -> Result<Option<(Customer, String)>, Error>;

    /// Registers a device in the session `session_digest`, whose sign-out revokes it.
    async fn add_device(
        &self,
        customer_id: String,
        name: String,
        public_key: String,
        session_digest: String,
        pin: PinAttempt,
        idem: Option<Idem>,
    ) -> Result<Written<Device>, Error>;
    async fn list_devices(&self, customer_id: String) -> Result<Vec<Device>, Error>;

    /// Settles a right PIN whose action did not happen (the bank declined a card): ends
    /// the run, frees the reservation; `pin_locked` if the guard locked meanwhile.
    async fn settle_right_pin(&self, attempt: PinAttempt) -> Result<(), Error>;
    /// Whether the wallet has a card with this fingerprint bound now.
    async fn card_bound(&self, customer_id: String, fingerprint: String) -> Result<bool, Error>;
    /// Binds a card the bank accepted, settling the PIN attempt that authorised it.
    async fn add_card(
        &self,
        customer_id: String,
        card: NewCard,
        pin: PinAttempt,
        idem: Option<Idem>,
    ) -> Result<Written<Card>, Error>;
    async fn list_cards(&self, customer_id: String) -> Result<Vec<Card>, Error>;
    /// A bound card of this wallet with its connector token (`None`: no such card).
    async fn card_token(
        &self,
        customer_id: String,
        card_id: String,
    ) -> Result<Option<(Card, String)>, Error>;

    /// Begins a card top-up, withdrawal or payout (a withdrawal or payout reserves its
    /// amount now), settling the PIN attempt that authorised it when there is one.
    async fn begin_bank_operation(
        &self,
        new: NewBankOperation,
        pin: Option<PinAttempt>,
        idem: Option<Idem>,
    ) -> Result<Written<BankOperation>, Error>;
    /// Applies a bank's final answer to an operation, once (later answers change nothing).
    async fn apply_bank_answer(
        &self,
        id: String,
        succeeded: bool,
        failure_code: Option<String>,
    ) -> Result<Option<BankOperation>, Error>;
    /// No final answer yet: look again later (backing off).
    async fn reschedule_bank_operation(&self, id: String) -> Result<(), Error>;
    /// Keeps why a signed answer about operation `id` was refused, and looks again later.
    async fn flag_bank_operation(&self, id: String, why: String) -> Result<(), Error>;
    /// Leases operations due for a look.
    async fn claim_bank_operations(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<BankOperation>, Error>;
    async fn bank_operation(&self, id: String) -> Result<Option<BankOperation>, Error>;
    /// A connector's operations created in `[from_ms, to_ms)` (a day, to reconcile).
    async fn bank_operations_between(
        &self,
        connector: String,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<BankOperation>, Error>;
    async fn list_bank_operations(
        &self,
        owner: String,
        kind: &'static str,
        limit: usize,
    ) -> Result<Vec<BankOperation>, Error>;
    async fn add_bank_account(
        &self,
        merchant_id: String,
        new: NewBankAccount,
        idem: Option<Idem>,
    ) -> Result<Written<BankAccount>, Error>;
    /// A bank account with its full number and holder's name (to pay out to it).
    async fn bank_account(
        &self,
        id: String,
    ) -> Result<Option<(BankAccount, String, String)>, Error>;
    async fn list_bank_accounts(&self, merchant_id: String) -> Result<Vec<BankAccount>, Error>;
    /// The connector token of a card, for asking the bank again about an operation.
    async fn token_of_card(&self, card_id: String) -> Result<Option<String>, Error>;
    async fn remove_card(&self, customer_id: String, id: String) -> Result<Card, Error>;
    async fn device(&self, customer_id: String, id: String) -> Result<Option<Device>, Error>;
    /// Active devices registered after `after_seq`, oldest first: `(seq, id)` (what
    /// the payment code directory computes codes for).
    async fn active_devices_since(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, Error>;
    async fn revoke_device(&self, customer_id: String, id: String) -> Result<Device, Error>;
}

/// A right PIN-reset code, and what it does (see [`Store::redeem_pin_reset`]).
#[derive(Clone, Debug)]
pub struct PinReset {
    pub customer_id: String,
    pub code_digest: String,
    pub pin_hash: String,
    /// The PIN guards (subjects) a forgotten PIN may have locked, cleared.
    pub guards: Vec<String>,
    /// The new session: its token's digest and expiry.
    pub session: (String, i64),
}

/// A PIN hash made at an older cost and its replacement.
#[derive(Clone, Debug)]
pub struct PinRehash {
    pub old_hash: String,
    pub new_hash: String,
}

/// A secret as the store sees it: its keyed digest and a short prefix for display.
#[derive(Clone, Debug)]
pub struct KeyDigest {
    pub digest: String,
    pub prefix: String,
}

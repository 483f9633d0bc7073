//! Records the store returns. Their serde shape is the contract's wire shape, so the
//! HTTP layer and the idempotency replay store serialise the very same thing.

use pocket_core::Currency;
use pocket_core::time;
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Merchant {
    pub id: String,
    #[schema(value_type = String, example = "merchant")]
    pub object: &'static str,
    pub name: String,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A new merchant and, when a `webhook_url` was given, its first webhook endpoint.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MerchantCreated {
    #[serde(flatten)]
    pub merchant: Merchant,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_endpoint: Option<WebhookEndpoint>,
}

/// Who a merchant key belongs to, and what it may do.
#[derive(Clone, Debug)]
pub struct MerchantAuth {
    pub merchant_id: String,
    pub name: String,
    /// `None`: a secret key (everything); else a restricted key's or a staff session's.
    pub scopes: Option<Vec<pocket_core::scope::Scope>>,
    /// A staff session's role, and its member of the staff.
    pub role: Option<String>,
    pub staff_id: Option<String>,
}

/// A restricted key as listed (its secret shown only when it is made).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RestrictedKey {
    pub id: String,
    #[schema(value_type = String, example = "restricted_key")]
    pub object: &'static str,
    pub name: String,
    pub scopes: Vec<String>,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    #[serde(serialize_with = "pocket_core::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A member of a shop's staff.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Staff {
    pub id: String,
    #[schema(value_type = String, example = "staff")]
    pub object: &'static str,
    pub customer: String,
    /// Masked (`+86 138****0001`): the merchant invited the number, but lists show no
    /// more, and no name (inviting a number tells nothing about its holder).
    #[serde(serialize_with = "pocket_core::phone::ser_masked")]
    #[schema(value_type = String, example = "+86 138****0001")]
    pub phone: Option<String>,
    pub role: String,
    #[serde(serialize_with = "pocket_core::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// Where a person is staff: what a staff sign-in chooses from.
#[derive(Clone, Debug)]
pub struct Membership {
    pub staff_id: String,
    pub merchant_id: String,
    pub role: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Customer {
    pub id: String,
    pub phone: String,
    pub name: String,
}

/// What confirming and signing in need to know about a customer's PIN.
#[derive(Clone, Debug)]
pub struct PinState {
    pub customer: Customer,
    pub pin_hash: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Topup {
    pub id: String,
    #[schema(value_type = String, example = "topup")]
    pub object: &'static str,
    pub customer: String,
    pub amount: i64,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Refund {
    pub id: String,
    #[schema(value_type = String, example = "refund")]
    pub object: &'static str,
    pub payment: String,
    pub amount: i64,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub reason: Option<String>,
    pub status: &'static str,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Balance {
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    /// What may be spent now.
    pub available: i64,
    /// Held by withdrawals or payouts the bank has not answered yet, and by holds
    /// (authorized manual-capture payments) not yet captured or released.
    pub reserved: i64,
}

/// What reached a merchant's balance over a period: payments in (a hold counts with
/// what was captured of it), refunds out, per currency and per interval of the period.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Takings {
    #[schema(value_type = String, example = "takings")]
    pub object: &'static str,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub from: i64,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub to: i64,
    /// `hour` or `day`.
    pub interval: String,
    /// Minutes east of UTC where the intervals begin (a day starts at local midnight).
    pub utc_offset: i32,
    pub currencies: Vec<CurrencyTakings>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CurrencyTakings {
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    /// Payments in, captured holds as captured (minor units).
    pub received: i64,
    /// Refunds out.
    pub refunded: i64,
    /// `received - refunded`: what the period added to the balance through sales.
    pub net: i64,
    /// How many transfers brought `received`, and how many took `refunded`.
    pub payments: i64,
    pub refunds: i64,
    /// Every interval of the period in order, those without money too.
    pub intervals: Vec<TakingsInterval>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TakingsInterval {
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub start: i64,
    pub received: i64,
    pub refunded: i64,
    pub net: i64,
}

/// The period and intervals of a [`Takings`] question (milliseconds).
#[derive(Clone, Copy, Debug)]
pub struct TakingsQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval_ms: i64,
    pub utc_offset_ms: i64,
}

impl TakingsQuery {
    /// Most intervals in one answer.
    pub const MAX_INTERVALS: i64 = 1_000;
    /// The two intervals asked for by name.
    pub const HOUR_MS: i64 = 3_600_000;
    pub const DAY_MS: i64 = 86_400_000;

    /// The interval's name on the wire.
    pub fn interval_name(&self) -> &'static str {
        if self.interval_ms == Self::HOUR_MS {
            "hour"
        } else {
            "day"
        }
    }

    /// The interval a moment falls in, counted from the one `from_ms` falls in.
    pub fn index(&self, at_ms: i64) -> i64 {
        (at_ms + self.utc_offset_ms).div_euclid(self.interval_ms)
            - (self.from_ms + self.utc_offset_ms).div_euclid(self.interval_ms)
    }

    /// How many intervals the period spans.
    pub fn intervals(&self) -> i64 {
        self.index(self.to_ms - 1) + 1
    }

    /// When interval `i` begins (aligned to the offset's midnight or hour).
    pub fn start(&self, i: i64) -> i64 {
        ((self.from_ms + self.utc_offset_ms).div_euclid(self.interval_ms) + i) * self.interval_ms
            - self.utc_offset_ms
    }
}

/// One ledger movement seen from a wallet or a merchant balance.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Transaction {
    pub id: String,
    #[schema(value_type = String, example = "transaction")]
    pub object: &'static str,
    /// `topup`, `payment` or `refund`.
    pub kind: String,
    /// Signed: negative when money left the account.
    pub amount: i64,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub reference: String,
    pub balance_after: i64,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventData {
    #[schema(value_type = Object)]
    pub object: Box<RawValue>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Event {
    pub id: String,
    #[schema(value_type = String, example = "event")]
    pub object: &'static str,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    pub data: EventData,
}

/// A page of a list, newest first: the contract's list envelope.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Page<T> {
    #[schema(value_type = String, example = "list")]
    pub object: &'static str,
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    pub fn new(mut rows: Vec<T>, limit: usize) -> Page<T> {
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        Page {
            object: "list",
            data: rows,
            has_more,
        }
    }
}

/// Money into and out of a customer's wallet in one calendar month, in one currency
/// (minor units), from the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct MonthFlow {
    /// `YYYY-MM`, where the month begins by the asked `utc_offset`.
    pub month: String,
    pub currency: String,
    #[serde(rename = "in")]
    pub money_in: i64,
    #[serde(rename = "out")]
    pub money_out: i64,
}

/// Which page of a list: at most `limit` rows older than `starting_after`.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub limit: usize,
    pub starting_after: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CurrencyTotals {
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    #[schema(value_type = i64)]
    pub total_debits: i128,
    #[schema(value_type = i64)]
    pub total_credits: i128,
    #[schema(value_type = i64)]
    pub sum_of_balances: i128,
    pub balanced: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LedgerReport {
    /// `running_totals` (kept with every transfer, checked as it commits; no scan) or
    /// `full` (`?audit=full`: every account and transfer read and replayed).
    #[schema(value_type = String, example = "running_totals")]
    pub audit: &'static str,
    pub currencies: Vec<CurrencyTotals>,
    pub accounts: i64,
    pub transfers: i64,
    pub balanced: bool,
    /// Full audit: payments whose `payment` transfers are not exactly one if
    /// succeeded, none otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_transfer_mismatches: Option<i64>,
    /// Full audit: refunds without exactly one `refund` transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_transfer_mismatches: Option<i64>,
    /// Full audit: whether the running totals agree with the replayed book.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_totals_match: Option<bool>,
}

/// An earlier response to replay for an `Idempotency-Key`.
#[derive(Clone, Debug)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// The idempotency context of a write: who, which key, and a keyed digest of the
/// request (method, path and canonical body) so a reused key with another request is
/// caught. The digest is an HMAC under the server key: bodies carry PINs.
#[derive(Clone, Debug)]
pub struct Idem {
    pub caller: String,
    pub key: String,
    pub fingerprint: String,
    /// The status the first response had (stored with its body).
    pub status: u16,
}

/// The fingerprint of records written before fingerprints were keyed (schema v4).
pub const LEGACY_FINGERPRINT: &str = "legacy";

/// Whether a stored fingerprint matches a request's: equal, or a legacy record (which
/// replays whatever comes under its key until it ages out).
pub fn fingerprints_match(stored: &str, given: &str) -> bool {
    stored == given || stored == LEGACY_FINGERPRINT
}

/// A replay of a PIN request, judged against its record (`SqlStore::judge_pin_replay`).
#[derive(Debug)]
pub enum ReplayJudged {
    /// No record: a fresh request.
    Fresh,
    /// The same body: the first answer.
    Replay(StoredResponse),
    /// Refused: another body (a wrong PIN, `counted`) or the guard locked (not counted).
    Refused {
        error: pocket_core::Error,
        counted: bool,
    },
}

/// The result of an idempotent write: done now, or a replay of the first response.
#[derive(Debug)]
pub enum Written<T> {
    Fresh(T),
    Replayed(StoredResponse),
}

/// A committed event, as announced to in-process listeners (wallet streams,
/// long-polls, the webhook dispatcher) right after its transaction committed. A note
/// of kind [`REVOKED`] (seq 0, no event behind it) says that a customer's session or a
/// merchant's keys stopped working, so streams and long-polls holding them look now.
pub const REVOKED: &str = "credentials.revoked";

/// (See [`REVOKED`].)
#[derive(Clone, Debug)]
pub struct EventNote {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub merchant_id: String,
    pub customer_id: Option<String>,
    pub payment_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    #[schema(value_type = String, example = "webhook_endpoint")]
    pub object: &'static str,
    pub url: String,
    /// Event types sent to this endpoint; `["*"]` means all.
    pub events: Vec<String>,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A delivery claimed by the dispatcher: one event for one endpoint.
#[derive(Clone, Debug)]
pub struct DeliveryJob {
    pub delivery_seq: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub url: String,
    /// The event exactly as `GET /v1/events` shows it.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub event_created_at: i64,
}

/// What became of one delivery attempt.
#[derive(Clone, Debug)]
pub enum AttemptOutcome {
    Delivered,
    RetryAt(i64),
    GiveUp,
}

#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub delivery_seq: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub attempted_at: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub outcome: AttemptOutcome,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    #[schema(value_type = String, example = "delivery_attempt")]
    pub object: &'static str,
    pub event: String,
    pub webhook_endpoint: String,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub attempted_at: i64,
    /// The endpoint's HTTP status, or null when no response came.
    pub status_code: Option<u16>,
    /// Why the attempt failed without a response (timeout, connection refused…).
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Device {
    pub id: String,
    #[schema(value_type = String, example = "device")]
    pub object: &'static str,
    pub name: String,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
    /// The public key as registered (a JWK), for verification; not shown to clients.
    #[serde(skip)]
    pub public_key: String,
}

/// A bank card bound to a wallet, as the API shows it (never the number).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Card {
    pub id: String,
    #[schema(value_type = String, example = "card")]
    pub object: &'static str,
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
    /// The connector (bank) that holds it.
    pub connector: String,
    #[serde(serialize_with = "pocket_core::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A card top-up, withdrawal or payout: money a bank answers for.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BankOperation {
    /// `top_…`, `wd_…` or `po_…`; also the operation id the connector sees.
    pub id: String,
    #[schema(value_type = String, example = "withdrawal")]
    pub object: &'static str,
    pub amount: i64,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    /// `processing`, then `succeeded` or `failed` (for payouts, `paid` or `failed`).
    pub status: String,
    pub failure_code: Option<String>,
    /// The card (`card_…`) of a top-up or withdrawal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// The bank account (`ba_…`) of a payout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_account: Option<String>,
    pub connector: String,
    #[serde(serialize_with = "pocket_core::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "pocket_core::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<i64>,
    #[serde(skip)]
    pub owner_kind: pocket_core::ledger::AccountKind,
    #[serde(skip)]
    pub owner: String,
    /// Two-phase state of what a withdrawal or payout reserved.
    #[serde(skip)]
    pub reservation: Option<String>,
    /// Why Pocket refused a signed answer of the bank about this operation (the
    /// latest), for the operator's reconciliation; never shown to the owner.
    #[serde(skip)]
    pub refused_answer: Option<String>,
}

/// A merchant's bank account, as the API shows it (the number's last four digits).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BankAccount {
    pub id: String,
    #[schema(value_type = String, example = "bank_account")]
    pub object: &'static str,
    #[serde(skip)]
    pub merchant: String,
    pub last4: String,
    pub bank_code: String,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub connector: String,
    #[serde(serialize_with = "pocket_core::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A bank account to register.
#[derive(Clone, Debug)]
pub struct NewBankAccount {
    pub connector: String,
    pub holder_name: String,
    pub account_number: String,
    pub bank_code: String,
    pub currency: Currency,
}

/// An operation to begin.
#[derive(Clone, Debug)]
pub struct NewBankOperation {
    pub id: String,
    /// `topup`, `withdrawal` or `payout`.
    pub kind: &'static str,
    pub connector: String,
    pub owner_kind: pocket_core::ledger::AccountKind,
    pub owner: String,
    pub card: Option<String>,
    pub bank_account: Option<String>,
    pub amount: i64,
    pub currency: Currency,
    /// Without a final answer by then, the bank is asked where it stands.
    pub answer_within_ms: i64,
}

/// A card the bank accepted, to bind: its token and a keyed fingerprint of the number.
#[derive(Clone, Debug)]
pub struct NewCard {
    pub connector: String,
    pub token: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub fingerprint: String,
}

/// Figures read from the database when metrics are scraped.
#[derive(Clone, Debug, Default)]
pub struct StoreFigures {
    /// `(status, tier, count)` of every payment.
    pub payments: Vec<(String, String, i64)>,
    /// Webhook deliveries not yet delivered nor given up.
    pub delivery_backlog: i64,
}

/// A PIN attempt under a lockout guard (`pocket_core::lockout`): the guard's subject
/// (`signin:<keyed digest of the phone>` or `holder:<customer id>`) and its rule.
#[derive(Clone, Debug)]
pub struct PinAttempt {
    pub subject: String,
    pub rule: pocket_core::lockout::LockRule,
}

/// An operator's risk rule (`pocket_core::risk`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RiskRule {
    pub id: String,
    #[schema(value_type = String, example = "rule")]
    pub object: &'static str,
    pub name: String,
    /// The CEL expression, as written.
    pub when: String,
    pub action: pocket_core::risk::Action,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A merchant key as read (what the credential cache remembers, see
/// `engine::credentials`): whose, and until when (`None`: no end).
#[derive(Clone, Debug)]
pub(crate) struct KeyGrant {
    pub auth: MerchantAuth,
    pub expires_at: Option<i64>,
}

/// A session as read: whose, and until when.
#[derive(Clone, Debug)]
pub(crate) struct SessionGrant {
    pub customer: Customer,
    pub expires_at: i64,
}

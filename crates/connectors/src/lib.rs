//! Connectors: how Pocket reaches banks and card processors.
//!
//! A [`Connector`] binds cards, charges them (top-ups), pays out (withdrawals to a
//! card, payouts to a bank account), answers for any operation by its id, and gives
//! a daily statement. Every operation carries Pocket's operation id, and a connector
//! must treat a repeat of an id as the same operation: a retry never charges twice.
//! Answers may be final at once or `pending` (final later, by a notification or a
//! status query); a transport failure or a timeout means *unknown*, never *failed*:
//! the caller asks [`Connector::status`] until it knows.
//!
//! - [`protocol`]: the Pocket Connector Protocol's messages and signatures (what an
//!   out-of-process connector speaks; `docs/CONNECTORS.md`).
//! - [`sandbox`]: the sandbox bank, in the process, behaving as the contract's card
//!   table says.
//! - [`operations`]: driving top-ups, withdrawals and payouts to their final answer.
//!
//! Must not: store a card number or CVC, log one, or decide money rules (the ledger's
//! two-phase transfers are in `pocket_core::ledger::pending`).
//!
//! Architecture invariant: a connector's answer is believed only as far as its
//! signature covers it and `operations::judge` finds it about the operation asked.

pub mod http;
pub mod operations;
pub mod protocol;
pub mod reconcile;
pub mod sandbox;

use pocket_core::card::CardNumber;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether `name` may name a connector: 1 to 40 letters, digits, `-` or `_`.
pub fn name_ok(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A connector's name as a path gives it. One no connector may have is answered as
/// an unknown one is (`404`, param `name`), so a path cannot tell them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorName(String);

impl ConnectorName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ConnectorName {
    type Err = pocket_core::Error;
    fn from_str(s: &str) -> std::result::Result<ConnectorName, pocket_core::Error> {
        if name_ok(s) {
            Ok(ConnectorName(s.to_owned()))
        } else {
            Err(pocket_core::Error::not_found("connector", s).with_param("name"))
        }
    }
}

/// The configured connectors, by name, with the currencies each may move.
#[derive(Clone, Default)]
pub struct Registry {
    by_name: BTreeMap<String, (Arc<dyn Connector>, Vec<String>)>,
    /// The secrets of `http` connectors, which sign their notifications.
    secrets: BTreeMap<String, String>,
}

impl Registry {
    pub fn add(&mut self, connector: Arc<dyn Connector>, currencies: Vec<String>) {
        self.by_name
            .insert(connector.name().to_string(), (connector, currencies));
    }

    /// Remembers the secret that signs `name`'s notifications.
    pub fn set_secret(&mut self, name: &str, secret: &str) {
        self.secrets.insert(name.to_string(), secret.to_string());
    }

    /// The secret of an `http` connector (`None` for unknown or built-in ones).
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The connector called `name`, or without a name the first one configured.
    pub fn pick(&self, name: Option<&str>) -> Option<Arc<dyn Connector>> {
        match name {
            Some(n) => self.by_name.get(n).map(|c| c.0.clone()),
            None => self.by_name.values().next().map(|c| c.0.clone()),
        }
    }

    /// Whether `name` may move `currency`.
    pub fn moves(&self, name: &str, currency: &str) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|c| c.1.iter().any(|k| k == currency))
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}

/// A card to bind. The number and CVC live only as long as this request.
pub struct CardDetails {
    pub number: CardNumber,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: String,
    pub holder_name: Option<String>,
}

impl std::fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the number or the CVC.
        write!(
            f,
            "CardDetails({:?}, {}/{})",
            self.number, self.exp_month, self.exp_year
        )
    }
}

/// Longest card token Pocket keeps.
pub const MAX_TOKEN_CHARS: usize = 200;

/// Whether a connector's card token is one Pocket may store and send back: 1 to
/// [`MAX_TOKEN_CHARS`] characters of `[A-Za-z0-9._:-]` (no markup, no control bytes).
pub fn token_ok(token: &str) -> bool {
    (1..=MAX_TOKEN_CHARS).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Where a payout goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Destination {
    Card {
        token: String,
    },
    BankAccount {
        account_number: String,
        bank_code: String,
        holder_name: String,
    },
}

/// Money moving through a connector, named by Pocket's operation id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub operation_id: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
}

/// An operation's state at the bank.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OpStatus {
    /// Accepted; the final answer comes later.
    Pending,
    Succeeded,
    Failed {
        decline_code: String,
    },
}

impl OpStatus {
    pub fn is_final(&self) -> bool {
        !matches!(self, OpStatus::Pending)
    }
}

/// Which way an operation moved money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Money in: a card was charged.
    Charge,
    /// Money out: to a card or a bank account.
    Payout,
}

/// What a bank says of one operation: its answer to a charge or a payout, to a status
/// query, in a notification, or as a line of its statement. Believed only where it
/// agrees with the operation Pocket asked about ([`OpAnswer::disagreement`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpAnswer {
    pub operation_id: String,
    pub kind: OpKind,
    pub amount: i64,
    pub currency: String,
    pub status: OpStatus,
}

impl OpAnswer {
    /// The answer a bank gives for `op`, of `kind`, in `status`.
    pub fn of(kind: OpKind, op: &Operation, status: OpStatus) -> OpAnswer {
        OpAnswer {
            operation_id: op.operation_id.clone(),
            kind,
            amount: op.amount,
            currency: op.currency.clone(),
            status,
        }
    }

    /// Where this answer differs from the operation it should be about (`None` when
    /// it is about exactly that one): the id, the kind, the amount, the currency.
    pub fn disagreement(&self, kind: OpKind, op: &Operation) -> Option<String> {
        if self.operation_id != op.operation_id {
            return Some(format!(
                "the answer is about operation {:?}, not {:?}",
                self.operation_id, op.operation_id
            ));
        }
        if self.kind != kind {
            return Some(format!(
                "the answer is about a {:?}, the operation is a {kind:?}",
                self.kind
            ));
        }
        if self.amount != op.amount || self.currency != op.currency {
            return Some(format!(
                "the answer says {} {}, the operation is {} {}",
                self.amount, self.currency, op.amount, op.currency
            ));
        }
        None
    }
}

/// Why a connector call did not give an answer about the operation itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorError {
    /// The bank refused the request outright (a binding declined, a card unknown).
    Declined { decline_code: String },
    /// No answer, or not a trustworthy one (timeout, 5xx, bad signature): the
    /// operation's outcome is unknown; ask for its status later.
    Unavailable { why: String },
    /// The operation id is unknown to the bank.
    UnknownOperation,
    /// A signed answer that does not read as the protocol says (a field missing or
    /// out of bounds, a token of the wrong alphabet, a malformed statement line).
    Invalid { why: String },
    /// A signed answer about another operation, or about this one with another kind,
    /// amount or currency: never applied, the operation stays unknown and is flagged.
    Disagrees { why: String },
}

pub type Result<T> = std::result::Result<T, ConnectorError>;

/// A bank, reached one way or another.
#[async_trait::async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The name it is configured under (`[[connectors]] name`).
    fn name(&self) -> &str;
    /// Binds a card; returns the bank's token for it (brand and last four digits are
    /// Pocket's own, from the number it already has).
    async fn bind_card(&self, operation_id: &str, card: &CardDetails) -> Result<String>;
    async fn charge(&self, op: &Operation, card_token: &str) -> Result<OpAnswer>;
    async fn payout(&self, op: &Operation, to: &Destination) -> Result<OpAnswer>;
    async fn status(&self, operation_id: &str) -> Result<OpAnswer>;
    /// Everything the bank did on `date` (`YYYY-MM-DD`, UTC).
    async fn statement(&self, date: &str) -> Result<Vec<OpAnswer>>;
}

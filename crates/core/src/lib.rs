//! Pocket's money rules, as pure Rust: no I/O, no clock, no randomness.
//!
//! Everything here takes the current time and the current state as arguments and
//! returns a decision. The storage and HTTP shells (`pocket-store`, `pocket-http`)
//! read state, call these functions, and write what they decide. That keeps every
//! rule testable deterministically, with any clock a test wants.
//!
//! - [`activity`]: a wallet's history as a person reads it, from its events.
//! - [`card`]: card numbers (Luhn, brand), expiry and CVC checks.
//! - [`code`]: customer-presented payment codes (18 digits, a new one every 30 s).
//! - [`csv`]: CSV cells quoted and safe from formula injection.
//! - [`money`]: currencies (ISO 4217) and amounts in minor units.
//! - [`policy`]: amount tiers → time window and required authentication.
//! - [`pricing`]: pricing a cart from a merchant's catalog.
//! - [`payment`]: the payment object and its state machine.
//! - [`hold`]: manual capture: holds, captures and their deadline.
//! - [`ledger`]: double-entry postings and the conservation check.
//! - [`risk`]: operator risk rules (CEL) and daily spending limits.
//! - [`lockout`]: how many wrong PINs may be verified before a PIN locks.
//! - [`retry`]: the webhook retry schedule.
//! - [`scope`]: what restricted keys and staff roles may do, endpoint by endpoint.
//! - [`emv`]: the EMVCo QR payload of a payment.
//! - [`error`]: the contract's error shape and its stable codes.
//! - [`time`]: the wire format of timestamps.

pub mod activity;
pub mod card;
pub mod code;
pub mod csv;
pub mod emv;
pub mod error;
pub mod hold;
pub mod ledger;
pub mod lockout;
pub mod money;
pub mod payment;
pub mod phone;
pub mod policy;
pub mod pricing;
pub mod retry;
pub mod risk;
pub mod scope;
pub mod time;

pub use error::{Error, ErrorKind};
pub use money::Currency;

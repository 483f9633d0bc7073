//! The payment object and its state machine.
//!
//! ```text
//!            confirm (in time, funds)      ┌──────────► succeeded ──► (refunds)
//!   pending ─┼── decline (addressed only) ─┼──────────► declined
//!            ├── cancel (merchant) ────────┼──────────► canceled
//!            ├── deadline passes ──────────┴──────────► expired
//!            └── confirm, capture "manual" ──► authorized ─┬─ capture ──► succeeded
//!                                                          └─ cancel, or capture_before
//!                                                             passes ──► canceled
//! ```
//!
//! The rules of holds (`authorized`) are in [`crate::hold`].
//!
//! Every function here takes `now_ms` from its caller: the store passes the time it
//! reads inside the committing transaction, so deadlines are enforced at commit.

use crate::error::{Error, ErrorKind};
use crate::money::Currency;
use crate::policy::{Authentication, Policy};
use crate::pricing::PricedItem;
use crate::time;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    /// Confirmed with manual capture: the money is held in the wallet until captured.
    Authorized,
    Succeeded,
    Declined,
    Expired,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Authorized => "authorized",
            Status::Succeeded => "succeeded",
            Status::Declined => "declined",
            Status::Expired => "expired",
            Status::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "authorized" => Status::Authorized,
            "succeeded" => Status::Succeeded,
            "declined" => Status::Declined,
            "expired" => Status::Expired,
            "canceled" => Status::Canceled,
            _ => return None,
        })
    }

    /// The event a transition into this status emits.
    pub fn event_type(self) -> &'static str {
        match self {
            Status::Pending => "payment.created",
            Status::Authorized => "payment.authorized",
            Status::Succeeded => "payment.succeeded",
            Status::Declined => "payment.declined",
            Status::Expired => "payment.expired",
            Status::Canceled => "payment.canceled",
        }
    }
}

/// A payment as the contract shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Payment {
    pub id: String,
    #[schema(value_type = String, example = "payment")]
    pub object: &'static str,
    pub merchant: String,
    pub merchant_name: String,
    pub customer: Option<String>,
    /// The customer's name, once the payment has one.
    pub customer_name: Option<String>,
    /// The customer's phone, held as E.164 and always shown masked (`+86 138****0001`,
    /// [`crate::phone::masked`]): no caller but the customer reads the whole number.
    #[serde(serialize_with = "crate::phone::ser_masked")]
    #[schema(value_type = Option<String>, example = "+86 138****0001")]
    pub customer_phone: Option<String>,
    pub status: Status,
    pub amount: i64,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub items: Vec<PricedItem>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub policy: Policy,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: i64,
    #[serde(serialize_with = "time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<i64>,
    pub amount_refunded: i64,
    pub failure_code: Option<String>,
    /// The EMVCo QR payload that opens this payment in any wallet.
    pub qr_payload: String,
    /// `automatic`: confirming moves the money; `manual`: it holds it for a capture.
    pub capture: CaptureMethod,
    /// While `authorized` (and after): the capture's deadline.
    #[serde(serialize_with = "time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub capture_before: Option<i64>,
    /// What reached the merchant: the amount once succeeded, the captured part of a hold.
    pub amount_captured: i64,
    /// Manual capture: how long a hold lasts, in seconds.
    #[serde(skip)]
    pub capture_within_seconds: Option<i64>,
}

/// How a confirmed payment's money moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    /// At once, when the customer confirms.
    Automatic,
    /// Held at confirmation; the merchant captures all or part before `capture_before`.
    Manual,
}

impl CaptureMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMethod::Automatic => "automatic",
            CaptureMethod::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<CaptureMethod> {
        match s {
            "automatic" => Some(CaptureMethod::Automatic),
            "manual" => Some(CaptureMethod::Manual),
            _ => None,
        }
    }
}

/// What a command does to a pending payment, decided at commit time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Apply the requested transition.
    Proceed,
    /// The deadline has passed: the payment becomes `expired` (and the request is
    /// answered `409 payment_expired`).
    Expire,
}

pub fn payment_expired() -> Error {
    Error::conflict(
        "payment_expired",
        "This payment's time to confirm has passed.",
    )
}

fn not_pending(p: &Payment) -> Error {
    if p.status == Status::Expired {
        return payment_expired();
    }
    Error::conflict(
        "payment_not_pending",
        format!("This payment is already {}.", p.status.as_str()),
    )
}

/// The deadline rule shared by every transition out of `pending`.
fn pending_decision(p: &Payment, now_ms: i64) -> Result<Decision, Error> {
    if p.status != Status::Pending {
        return Err(not_pending(p));
    }
    if now_ms >= p.expires_at {
        return Ok(Decision::Expire);
    }
    Ok(Decision::Proceed)
}

/// May `customer` see (and so pay) this payment? Addressed to them, or open.
pub fn visible_to(p: &Payment, customer: &str) -> bool {
    match &p.customer {
        Some(c) => c == customer,
        None => true,
    }
}

/// A confirm by `customer` at `now_ms`. A confirm at or after `expires_at` expires
/// the payment; one before it is never refused for lateness.
pub fn decide_confirm(p: &Payment, customer: &str, now_ms: i64) -> Result<Decision, Error> {
    if !visible_to(p, customer) {
        return Err(Error::not_found("payment", &p.id));
    }
    pending_decision(p, now_ms)
}

/// What the confirming customer has proven; the shell verifies the PIN hash and the
/// device signature, this records that it did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Proof {
    pub pin: bool,
    pub device: bool,
}

pub fn pin_required() -> Error {
    Error::new(
        ErrorKind::Authentication,
        "pin_required",
        "This payment needs the wallet's PIN.",
    )
    .with_param("pin")
}

pub fn device_signature_required() -> Error {
    Error::new(
        ErrorKind::Authentication,
        "device_signature_required",
        "This payment needs the PIN and a signature by one of this wallet's device keys.",
    )
}

/// Does `proof` satisfy the payment's policy? Checked again inside the confirming
/// transaction, whatever the HTTP layer checked before.
pub fn check_proof(p: &Payment, proof: Proof) -> Result<(), Error> {
    match p.policy.authentication {
        Authentication::None => Ok(()),
        Authentication::Pin | Authentication::PinAndDevice if !proof.pin => Err(pin_required()),
        Authentication::PinAndDevice if !proof.device => Err(device_signature_required()),
        _ => Ok(()),
    }
}

/// A decline: only the addressed customer, never an open payment.
pub fn decide_decline(p: &Payment, customer: &str, now_ms: i64) -> Result<Decision, Error> {
    match &p.customer {
        None => Err(Error::conflict(
            "payment_open",
            "An open payment has no addressee to decline it; leave it to expire.",
        )),
        Some(c) if c != customer => Err(Error::not_found("payment", &p.id)),
        Some(_) => pending_decision(p, now_ms),
    }
}

/// Most times a merchant may send a request to its customer's wallet again.
pub const MAX_REMINDERS: i64 = 3;

/// Sending a request again (ownership is checked by the caller): only a pending
/// payment addressed to a customer, at most [`MAX_REMINDERS`] times.
pub fn decide_remind(p: &Payment, reminders_sent: i64, now_ms: i64) -> Result<Decision, Error> {
    if p.customer.is_none() && p.status == Status::Pending {
        return Err(Error::conflict(
            "payment_open",
            "An open payment has no wallet to send it to; show its QR code instead.",
        ));
    }
    let decision = pending_decision(p, now_ms)?;
    if decision == Decision::Proceed && reminders_sent >= MAX_REMINDERS {
        return Err(Error::conflict(
            "too_many_reminders",
            format!("A request is sent again at most {MAX_REMINDERS} times."),
        ));
    }
    Ok(decision)
}

/// A cancel by the merchant (ownership is checked by the caller).
pub fn decide_cancel(p: &Payment, now_ms: i64) -> Result<Decision, Error> {
    pending_decision(p, now_ms)
}

/// The amount a refund moves: `requested` or, when absent, all that is left.
pub fn decide_refund(p: &Payment, requested: Option<i64>) -> Result<i64, Error> {
    if p.status != Status::Succeeded {
        return Err(Error::conflict(
            "payment_not_succeeded",
            format!(
                "Only a succeeded payment can be refunded; this one is {}.",
                p.status.as_str()
            ),
        ));
    }
    let left = p.amount_captured - p.amount_refunded;
    assert!(left >= 0, "refunds exceed payment {}", p.id);
    let amount = requested.unwrap_or(left);
    if left == 0 || amount > left {
        return Err(Error::conflict(
            "refund_exceeds_payment",
            format!(
                "Refunds may not exceed what was paid; {} {} is left to refund.",
                p.currency.format_major(left),
                p.currency
            ),
        )
        .with_param("amount"));
    }
    Ok(amount)
}

/// The exact bytes a device key signs to confirm `p`: binding the payment, its
/// amount, currency, merchant and deadline, so a signature confirms nothing else.
pub fn confirm_message(p: &Payment) -> String {
    format!(
        "pocket-confirm:v1:{}:{}:{}:{}:{}",
        p.id,
        p.amount,
        p.currency,
        p.merchant,
        time::rfc3339_ms(p.expires_at)
    )
}

/// The deadline of a new payment: `created + window`, or sooner with `expires_in`
/// (1 ..= the tier's window, in seconds).
pub fn deadline_ms(
    created_ms: i64,
    policy: &Policy,
    expires_in_seconds: Option<i64>,
) -> Result<i64, Error> {
    let seconds = match expires_in_seconds {
        None => policy.window_seconds,
        Some(s) if (1..=policy.window_seconds).contains(&s) => s,
        Some(_) => {
            return Err(Error::invalid(
                "expires_in",
                format!(
                    "`expires_in` must be 1 to {} seconds for a payment in the '{}' tier.",
                    policy.window_seconds, policy.tier
                ),
            ));
        }
    };
    Ok(created_ms + seconds * time::MS_PER_SECOND)
}

/// A payment for the core's unit tests (a small CNY payment of 10.00).
#[cfg(test)]
pub(crate) fn test_payment(customer: Option<&str>, status: Status) -> Payment {
    Payment {
        id: "pay_1".into(),
        object: "payment",
        merchant: "mer_1".into(),
        merchant_name: "Tea".into(),
        customer: customer.map(String::from),
        customer_name: None,
        customer_phone: None,
        status,
        amount: 1000,
        currency: Currency::parse("CNY", "c").unwrap(),
        items: vec![],
        description: None,
        metadata: BTreeMap::new(),
        policy: Policy {
            tier: "small".into(),
            window_seconds: 300,
            authentication: Authentication::None,
            rule: None,
        },
        created_at: 0,
        expires_at: 300_000,
        completed_at: None,
        amount_refunded: 0,
        failure_code: None,
        qr_payload: String::new(),
        capture: CaptureMethod::Automatic,
        capture_before: None,
        amount_captured: if status == Status::Succeeded { 1000 } else { 0 },
        capture_within_seconds: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Authentication;

    fn payment(customer: Option<&str>, status: Status) -> Payment {
        test_payment(customer, status)
    }

    #[test]
    fn deadline_is_exclusive() {
        let p = payment(Some("cus_a"), Status::Pending);
        assert_eq!(decide_confirm(&p, "cus_a", 299_999), Ok(Decision::Proceed));
        assert_eq!(decide_confirm(&p, "cus_a", 300_000), Ok(Decision::Expire));
        assert_eq!(decide_cancel(&p, 300_001), Ok(Decision::Expire));
    }

    #[test]
    fn only_pending_moves() {
        for s in [Status::Succeeded, Status::Declined, Status::Canceled] {
            let p = payment(Some("cus_a"), s);
            assert_eq!(
                decide_confirm(&p, "cus_a", 0).unwrap_err().code,
                "payment_not_pending"
            );
            assert_eq!(
                decide_cancel(&p, 0).unwrap_err().code,
                "payment_not_pending"
            );
        }
        let p = payment(Some("cus_a"), Status::Expired);
        assert_eq!(
            decide_confirm(&p, "cus_a", 0).unwrap_err().code,
            "payment_expired"
        );
    }

    #[test]
    fn who_may_act() {
        let p = payment(Some("cus_a"), Status::Pending);
        assert_eq!(
            decide_confirm(&p, "cus_b", 0).unwrap_err().code,
            "resource_missing"
        );
        assert_eq!(
            decide_decline(&p, "cus_b", 0).unwrap_err().code,
            "resource_missing"
        );
        let open = payment(None, Status::Pending);
        assert_eq!(decide_confirm(&open, "cus_b", 0), Ok(Decision::Proceed));
        assert_eq!(
            decide_decline(&open, "cus_b", 0).unwrap_err().code,
            "payment_open"
        );
    }

    #[test]
    fn refunds_never_exceed_payment() {
        let mut p = payment(Some("cus_a"), Status::Succeeded);
        assert_eq!(decide_refund(&p, None), Ok(1000));
        p.amount_refunded = 400;
        assert_eq!(decide_refund(&p, Some(600)), Ok(600));
        assert_eq!(decide_refund(&p, None), Ok(600));
        assert_eq!(
            decide_refund(&p, Some(601)).unwrap_err().code,
            "refund_exceeds_payment"
        );
        p.amount_refunded = 1000;
        assert_eq!(
            decide_refund(&p, None).unwrap_err().code,
            "refund_exceeds_payment"
        );
        let pending = payment(Some("cus_a"), Status::Pending);
        assert_eq!(
            decide_refund(&pending, None).unwrap_err().code,
            "payment_not_succeeded"
        );
    }

    #[test]
    fn proof_must_match_the_policy() {
        let mut p = payment(None, Status::Pending);
        assert_eq!(check_proof(&p, Proof::default()), Ok(()));
        p.policy.authentication = Authentication::Pin;
        assert_eq!(
            check_proof(&p, Proof::default()).unwrap_err().code,
            "pin_required"
        );
        assert_eq!(
            check_proof(
                &p,
                Proof {
                    pin: true,
                    device: false
                }
            ),
            Ok(())
        );
        p.policy.authentication = Authentication::PinAndDevice;
        assert_eq!(
            check_proof(
                &p,
                Proof {
                    pin: false,
                    device: true
                }
            )
            .unwrap_err()
            .code,
            "pin_required"
        );
        assert_eq!(
            check_proof(
                &p,
                Proof {
                    pin: true,
                    device: false
                }
            )
            .unwrap_err()
            .code,
            "device_signature_required"
        );
        assert_eq!(
            check_proof(
                &p,
                Proof {
                    pin: true,
                    device: true
                }
            ),
            Ok(())
        );
    }

    #[test]
    fn confirm_message_is_the_contracts() {
        let p = payment(None, Status::Pending);
        assert_eq!(
            confirm_message(&p),
            "pocket-confirm:v1:pay_1:1000:CNY:mer_1:1970-01-01T00:05:00.000Z"
        );
    }

    #[test]
    fn expires_in_within_window() {
        let p = payment(None, Status::Pending);
        assert_eq!(deadline_ms(1_000, &p.policy, None), Ok(301_000));
        assert_eq!(deadline_ms(1_000, &p.policy, Some(1)), Ok(2_000));
        assert_eq!(deadline_ms(0, &p.policy, Some(300)), Ok(300_000));
        assert_eq!(
            deadline_ms(0, &p.policy, Some(301))
                .unwrap_err()
                .param
                .as_deref(),
            Some("expires_in")
        );
        assert!(deadline_ms(0, &p.policy, Some(0)).is_err());
    }
}

//! A wallet's history as a person reads it: each event of theirs — a payment, a hold,
//! its capture or release, a refund (with the merchant's name), a top-up, a withdrawal,
//! a request declined or expired — as one line with what it did to their money.

use crate::money::Currency;
use crate::time;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// What a line of the history is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Paid at once.
    Payment,
    /// Money held for a merchant who captures later.
    Hold,
    /// The captured part of a hold, paid.
    Capture,
    /// A hold let go, nothing paid.
    Release,
    /// A request the merchant withdrew before it was paid.
    Canceled,
    /// A request the customer declined.
    Declined,
    /// A request that was not paid in time.
    Expired,
    Refund,
    Topup,
    Withdrawal,
}

impl Kind {
    /// The event types a filter by this kind reads (a capture is a payment that
    /// succeeded, a release a payment canceled: they are read with those).
    pub fn event_types(self) -> &'static [&'static str] {
        match self {
            Kind::Payment | Kind::Capture => &["payment.succeeded"],
            Kind::Hold => &["payment.authorized"],
            Kind::Release | Kind::Canceled => &["payment.canceled"],
            Kind::Declined => &["payment.declined"],
            Kind::Expired => &["payment.expired"],
            Kind::Refund => &["refund.succeeded"],
            Kind::Topup => &["topup.succeeded"],
            Kind::Withdrawal => &["withdrawal.succeeded"],
        }
    }

    /// A filter's kind by name; `None` for any other.
    pub fn parse(text: &str) -> Option<Kind> {
        ALL.iter().copied().find(|k| k.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Payment => "payment",
            Kind::Hold => "hold",
            Kind::Capture => "capture",
            Kind::Release => "release",
            Kind::Canceled => "canceled",
            Kind::Declined => "declined",
            Kind::Expired => "expired",
            Kind::Refund => "refund",
            Kind::Topup => "topup",
            Kind::Withdrawal => "withdrawal",
        }
    }
}

/// Every kind, in the order a filter offers them.
pub const ALL: [Kind; 10] = [
    Kind::Payment,
    Kind::Hold,
    Kind::Capture,
    Kind::Release,
    Kind::Canceled,
    Kind::Declined,
    Kind::Expired,
    Kind::Refund,
    Kind::Topup,
    Kind::Withdrawal,
];

/// The event types a history without a filter reads.
pub const EVENT_TYPES: [&str; 8] = [
    "payment.succeeded",
    "payment.authorized",
    "payment.canceled",
    "payment.declined",
    "payment.expired",
    "refund.succeeded",
    "topup.succeeded",
    "withdrawal.succeeded",
];

/// Which way a line moved the money: into the wallet, out of it, or neither (a hold
/// keeps money in the wallet, only not spendable; a declined request moves nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
    None,
}

/// One line of a wallet's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Activity {
    /// The event's id (`evt_…`): the cursor of the history's pages.
    pub id: String,
    #[schema(value_type = String, example = "activity")]
    pub object: &'static str,
    pub kind: Kind,
    /// The line's figure, in minor units: what was paid, held, captured, released,
    /// refunded, added or withdrawn (for a request not paid: its amount).
    pub amount: i64,
    pub direction: Direction,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    /// The merchant, for payments, holds and refunds.
    pub merchant_name: Option<String>,
    /// The payment it belongs to (`pay_…`), if any.
    pub payment: Option<String>,
    /// The object's own id: the payment, refund, top-up or withdrawal.
    pub reference: String,
    #[serde(serialize_with = "time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// The payment an event belongs to, as stored: what a refund's object does not say.
#[derive(Clone, Debug, Default)]
pub struct OfPayment {
    pub merchant_name: Option<String>,
    pub currency: Option<String>,
}

/// An event of the customer's as a line of history: `event_type` and its `data.object`
/// as stored; the merchant and currency from its payment when the object names none (a
/// refund). `None` for events that are not history (a request arriving) or that do not
/// read right.
pub fn from_event(
    id: &str,
    event_type: &str,
    object: &Value,
    of_payment: OfPayment,
    created_at: i64,
) -> Option<Activity> {
    let text = |k: &str| object.get(k).and_then(Value::as_str);
    let number = |k: &str| object.get(k).and_then(Value::as_i64);
    let held = object.get("capture_before").is_some_and(|v| !v.is_null());
    let (kind, amount, direction) = match event_type {
        "payment.succeeded" if text("capture") == Some("manual") => {
            (Kind::Capture, number("amount_captured")?, Direction::Out)
        }
        "payment.succeeded" => (Kind::Payment, number("amount")?, Direction::Out),
        "payment.authorized" => (Kind::Hold, number("amount")?, Direction::None),
        "payment.canceled" if held => (Kind::Release, number("amount")?, Direction::None),
        "payment.canceled" => (Kind::Canceled, number("amount")?, Direction::None),
        "payment.declined" => (Kind::Declined, number("amount")?, Direction::None),
        "payment.expired" => (Kind::Expired, number("amount")?, Direction::None),
        "refund.succeeded" => (Kind::Refund, number("amount")?, Direction::In),
        "topup.succeeded" => (Kind::Topup, number("amount")?, Direction::In),
        "withdrawal.succeeded" => (Kind::Withdrawal, number("amount")?, Direction::Out),
        _ => return None,
    };
    let reference = text("id")?.to_string();
    let payment = match kind {
        Kind::Refund => text("payment").map(String::from),
        Kind::Topup | Kind::Withdrawal => None,
        _ => Some(reference.clone()),
    };
    Some(Activity {
        id: id.to_string(),
        object: "activity",
        kind,
        amount,
        direction,
        currency: Currency::parse(
            text("currency").or(of_payment.currency.as_deref())?,
            "currency",
        )
        .ok()?,
        merchant_name: text("merchant_name")
            .map(String::from)
            .or(of_payment.merchant_name),
        payment,
        reference,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(kind: &str, object: Value) -> Option<Activity> {
        let of_payment = OfPayment {
            merchant_name: Some("Tea".into()),
            currency: Some("CNY".into()),
        };
        from_event("evt_1", kind, &object, of_payment, 0)
    }

    #[test]
    fn each_event_reads_as_its_line() {
        let paid = json!({"id": "pay_1", "amount": 1000, "currency": "CNY", "capture": "automatic", "merchant_name": "Tea House", "capture_before": null});
        let a = line("payment.succeeded", paid.clone()).unwrap();
        assert_eq!(
            (a.kind, a.amount, a.direction),
            (Kind::Payment, 1000, Direction::Out)
        );
        assert_eq!(a.merchant_name.as_deref(), Some("Tea House"));
        let captured = json!({"id": "pay_2", "amount": 5697, "amount_captured": 4000, "currency": "CNY", "capture": "manual", "capture_before": "2026-12-05T00:00:00.000Z"});
        let a = line("payment.succeeded", captured.clone()).unwrap();
        assert_eq!((a.kind, a.amount), (Kind::Capture, 4000));
        assert_eq!(
            line("payment.authorized", captured.clone()).unwrap().kind,
            Kind::Hold
        );
        assert_eq!(
            line("payment.canceled", captured).unwrap().kind,
            Kind::Release
        );
        assert_eq!(line("payment.canceled", paid).unwrap().kind, Kind::Canceled);
        let refund = json!({"id": "re_1", "object": "refund", "payment": "pay_1", "amount": 250});
        let a = line("refund.succeeded", refund).unwrap();
        assert_eq!(
            (a.kind, a.direction, a.payment.as_deref()),
            (Kind::Refund, Direction::In, Some("pay_1"))
        );
        assert_eq!(
            a.merchant_name.as_deref(),
            Some("Tea"),
            "named from the payment"
        );
        assert_eq!(a.currency.code(), "CNY", "in the payment's currency");
        assert_eq!(line("payment.created", json!({"id": "pay_1"})), None);
        assert_eq!(
            line("payment.succeeded", json!({"id": "pay_1"})),
            None,
            "unreadable"
        );
    }

    #[test]
    fn every_kind_parses_by_name_and_reads_an_event_type_of_the_history() {
        for k in ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert!(k.event_types().iter().all(|t| EVENT_TYPES.contains(t)));
        }
        assert_eq!(Kind::parse("transfer"), None);
    }
}

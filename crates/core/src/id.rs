//! Typed ids: `PaymentId`, `CustomerId`, … — a type prefix, `_`, and
//! [`ID_TAIL_CHARS`] base62 characters (how they are made is the store's `ids`).
//!
//! Parsing checks the form, so a handler that takes `Path<PaymentId>` never sees a
//! malformed id: it was answered `400 parameter_invalid` (param `id`) before.

use crate::Error;
use std::fmt;
use std::str::FromStr;

/// Characters after an id's prefix and `_`.
pub const ID_TAIL_CHARS: usize = 24;

/// Is `id` of the form `{prefix}_` and [`ID_TAIL_CHARS`] ASCII letters and digits?
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.len() == prefix.len() + 1 + ID_TAIL_CHARS
        && id.starts_with(prefix)
        && id.as_bytes()[prefix.len()] == b'_'
        && id[prefix.len() + 1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// The contract's answer to a malformed id given as `param`.
fn malformed(param: &str, prefix: &str) -> Error {
    Error::invalid(
        param,
        format!("`{param}` must be an id of the form {prefix}_…."),
    )
}

/// Checks `value` (given as `param`) is an id of `prefix`.
pub fn check(value: &str, prefix: &str, param: &str) -> Result<(), Error> {
    if is_id(value, prefix) {
        Ok(())
    } else {
        Err(malformed(param, prefix))
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            /// Refused as a path's `id`; a body's field checks with [`check`] and its name.
            fn from_str(s: &str) -> Result<Self, Error> {
                check(s, $prefix, "id").map(|()| $name(s.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

typed_id!(
    /// A payment, `pay_…`.
    PaymentId, "pay");
typed_id!(
    /// A wallet's customer, `cus_…`.
    CustomerId, "cus");
typed_id!(
    /// A merchant, `mer_…`.
    MerchantId, "mer");
typed_id!(
    /// A webhook endpoint, `we_…`.
    EndpointId, "we");
typed_id!(
    /// An event, `evt_…`.
    EventId, "evt");
typed_id!(
    /// A card bound to a wallet, `card_…`.
    CardId, "card");
typed_id!(
    /// A wallet's device, `dev_…`.
    DeviceId, "dev");
typed_id!(
    /// A merchant's payout, `po_…`.
    PayoutId, "po");
typed_id!(
    /// A wallet's top-up, `top_…`.
    TopupId, "top");
typed_id!(
    /// A wallet's withdrawal, `wd_…`.
    WithdrawalId, "wd");
typed_id!(
    /// A risk rule, `rule_…`.
    RuleId, "rule");
typed_id!(
    /// A restricted key, `rk_…`.
    RestrictedKeyId, "rk");
typed_id!(
    /// A member of a merchant's staff, `stf_…`.
    StaffId, "stf");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_and_the_tail_are_checked() {
        let good = "pay_0123456789abcdefABCDEF01";
        assert_eq!(good.parse::<PaymentId>().unwrap().as_str(), good);
        for bad in [
            "",
            "pay_",
            "cus_0123456789abcdefABCDEF01",
            "pay_0123456789abcdefABCDEF0",
            "pay_0123456789abcdefABCDEF012",
            "pay-0123456789abcdefABCDEF01",
            "pay_0123456789abcdefABCDEF0é",
            "pay_0123456789abcdef/../../x",
        ] {
            let e = bad.parse::<PaymentId>().unwrap_err();
            assert_eq!(
                (e.code, e.param.as_deref()),
                ("parameter_invalid", Some("id")),
                "{bad}"
            );
        }
        assert!(
            "wd_0123456789abcdefABCDEF01"
                .parse::<WithdrawalId>()
                .is_ok()
        );
        assert!("wd_0123456789abcdefABCDEF01".parse::<TopupId>().is_err());
    }
}

//! Customer-presented payment codes (Alipay's and WeChat Pay's 付款码): what a wallet
//! shows at a till, as a QR code and a barcode, for the cashier to scan.
//!
//! A code is 18 digits: `28` and 16 digits derived from a secret the device received
//! when it was registered and the current 30-second step (RFC 6238's idea, HMAC-SHA256,
//! 16 decimal digits instead of 6), so the phone makes it without a network. It carries
//! no number of the customer or the device: two codes of one wallet share nothing but
//! the `28`, so a merchant can neither read who paid nor link two payments by their
//! codes. A code is accepted within one step either side of its own ([`in_window`]) and
//! once (the shell records it in the transaction that charges it).
//!
//! Pure: the shell derives the device's secret, finds the device whose code it is, and
//! reads the time inside the charging transaction.

use crate::error::{Error, ErrorKind};
use crate::policy::Authentication;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long one code is shown.
pub const STEP_MS: i64 = 30_000;
/// Every payment code starts so (the range Alipay's codes use is 25–30).
pub const PREFIX: &str = "28";
/// Digits in a code, the prefix included.
pub const DIGITS: usize = 18;
/// How many steps either side of a code's own are accepted.
pub const SKEW_STEPS: i64 = 1;
/// Charges of one code the payer's side may refuse (`402`: funds, a rule, the daily
/// limit) before the code is spent, so a live code is not a balance oracle.
pub const MAX_REFUSALS: i64 = 3;

/// A well-formed code: 18 ASCII digits starting with [`PREFIX`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PaymentCode(String);

impl PaymentCode {
    /// Any malformed code is `400 payment_code_invalid`, like an unknown one: the
    /// answer never tells a guesser which part was wrong.
    pub fn parse(text: &str) -> Result<PaymentCode, Error> {
        let ok = text.len() == DIGITS
            && text.starts_with(PREFIX)
            && text.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(PaymentCode(text.to_string()))
        } else {
            Err(code_invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn code_invalid() -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        "payment_code_invalid",
        "This payment code is not valid now; ask the customer to show the current one.",
    )
    .with_param("payment_code")
}

/// Whether a payment charged by code is paid in the transaction that creates it: the
/// customer showing the code is the tap of the `small` tier. A stronger proof (a higher
/// tier, or one a risk rule raised) leaves it pending, pushed to the wallet.
pub fn pays_at_once(authentication: Authentication) -> bool {
    authentication == Authentication::None
}

/// The step of `now_ms`.
pub fn step_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(STEP_MS)
}

/// The code secret of a device: derived from the server's key and the device's id, so
/// the server never stores it and the device receives it once, at registration.
pub fn device_secret(server_key: &[u8; 32], device_id: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(server_key).expect("HMAC takes any key length");
    mac.update(b"pocket-device-code:v1\0");
    mac.update(device_id.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The 16 digits after the prefix, as a number (the code directory's key).
pub fn digits_of(code: &PaymentCode) -> u64 {
    code.0[PREFIX.len()..].parse().unwrap_or(u64::MAX)
}

/// The code a device holding `secret` shows during `step`: HMAC-SHA256 over
/// `pocket-code:v1:<step>`, its first 8 bytes as a big-endian integer, modulo 10^16.
pub fn code_at(secret: &[u8], step: i64) -> PaymentCode {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("pocket-code:v1:{step}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(first) % 10_000_000_000_000_000;
    PaymentCode(format!("{PREFIX}{n:016}"))
}

/// Whether a code made for `step` may be charged at `now_ms`: its own step or one
/// either side (a phone's clock a little off, a scan across a step's end); two steps
/// old is refused.
pub fn in_window(step: i64, now_ms: i64) -> bool {
    (step - step_of(now_ms)).abs() <= SKEW_STEPS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_same_secret_and_step_give_the_same_code_and_the_wallet_can_check_it() {
        // A fixed vector, so the wallet's WebCrypto code can be tested against it.
        let secret = [7u8; 32];
        let code = code_at(&secret, 60_000_000);
        // The same vector is checked against the wallet's paycode.js in the browser tests.
        assert_eq!(code.as_str(), "284955836916290020");
        assert_eq!(code, code_at(&secret, 60_000_000));
        assert_eq!(code.as_str().len(), 18);
        assert!(code.as_str().starts_with("28"));
        assert_ne!(code, code_at(&secret, 60_000_001));
        assert_ne!(code, code_at(&[8u8; 32], 60_000_000));
    }

    #[test]
    fn device_secrets_are_keyed_by_the_server_and_distinct_per_device() {
        let a = device_secret(&[1u8; 32], "dev_a");
        assert_eq!(a, device_secret(&[1u8; 32], "dev_a"));
        assert_ne!(a, device_secret(&[1u8; 32], "dev_b"));
        assert_ne!(a, device_secret(&[2u8; 32], "dev_a"));
        let code = code_at(&a, 7);
        assert_eq!(format!("28{:016}", digits_of(&code)), code.as_str());
    }

    #[test]
    fn only_a_tap_tier_is_paid_at_once() {
        assert!(pays_at_once(Authentication::None));
        assert!(!pays_at_once(Authentication::Pin));
        assert!(!pays_at_once(Authentication::PinAndDevice));
    }

    #[test]
    fn one_step_either_side_is_accepted_two_are_not() {
        let now = 1_795_600_800_000;
        let s = step_of(now);
        assert!(in_window(s, now));
        assert!(in_window(s - 1, now));
        assert!(in_window(s + 1, now));
        assert!(!in_window(s - 2, now));
        assert!(!in_window(s + 2, now));
        // At a step's last millisecond the previous step is still one away.
        assert!(in_window(s - 1, (s + 1) * STEP_MS - 1));
        assert!(!in_window(s - 1, (s + 1) * STEP_MS));
    }

    #[test]
    fn malformed_codes_are_refused_alike() {
        for bad in [
            "",
            "28",
            "2812345678901234567",
            "281234567890123456 ",
            "29123456789012345x",
            "18123456789012345",
            "28１２３４５６７８９０１２３４５６",
        ] {
            let e = PaymentCode::parse(bad).unwrap_err();
            assert_eq!(
                (e.code, e.param.as_deref()),
                ("payment_code_invalid", Some("payment_code")),
                "{bad:?}"
            );
        }
        assert!(PaymentCode::parse("280000000000000000").is_ok());
    }

    /// Two codes of one device share nothing but the prefix: over 2,000 steps, every one
    /// of the 16 positions takes many values (a fixed device number would not).
    #[test]
    fn codes_of_one_device_are_not_linkable() {
        let secret = [42u8; 32];
        for position in 2..DIGITS {
            let mut seen = std::collections::HashSet::new();
            for step in 0..2_000 {
                seen.insert(code_at(&secret, step).as_str().as_bytes()[position]);
            }
            assert_eq!(seen.len(), 10, "position {position} is not spread");
        }
    }

    proptest! {
        #[test]
        fn every_code_is_well_formed(secret in proptest::collection::vec(any::<u8>(), 1..64), step in 0i64..i64::MAX / STEP_MS) {
            let code = code_at(&secret, step);
            prop_assert!(PaymentCode::parse(code.as_str()).is_ok());
        }

        #[test]
        fn the_window_is_three_steps_wide(now in 0i64..4_000_000_000_000, back in -5i64..5) {
            let step = step_of(now) + back;
            prop_assert_eq!(in_window(step, now), back.abs() <= 1);
        }
    }
}

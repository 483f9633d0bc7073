//! Money: ISO 4217 currencies and integer amounts in minor units.
//!
//! An amount is an `i64` count of the currency's minor unit (`amount_minor`):
//! 1999 CNY-minor is 19.99 CNY, 500 JPY is 500 JPY. Floats never appear.
//! Every amount a client sends is `1..=MAX_AMOUNT_MINOR`; sums use checked arithmetic.

use crate::error::{Error, ErrorKind};
use serde::{Serialize, Serializer};

/// The largest amount any single request may carry (10^15 minor units).
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// An ISO 4217 currency that has a minor-unit exponent (0, 2 or 3).
/// Funds, precious metals and "no currency" codes (XAU, XXX…) are not money here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses an upper-case alphabetic code. Lower case and unknown codes are refused
    /// with `400 currency_unsupported`, naming `param`.
    pub fn parse(code: &str, param: &str) -> Result<Currency, Error> {
        let refuse = |why: String| {
            Error::new(ErrorKind::InvalidRequest, "currency_unsupported", why).with_param(param)
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(refuse(format!(
                "`{param}` must be an upper-case ISO 4217 code such as \"CNY\"."
            )));
        }
        match iso_currency::Currency::from_code(code) {
            Some(c) if c.exponent().is_some() && !c.is_fund() => Ok(Currency(c)),
            _ => Err(refuse(format!(
                "`{param}`: \"{code}\" is not a supported ISO 4217 currency."
            ))),
        }
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// ISO 4217 numeric code (156 for CNY), for EMV QR payloads.
    pub fn numeric(self) -> u16 {
        self.0.numeric()
    }

    /// Minor-unit exponent: 2 for CNY, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u32 {
        // `parse` admits only currencies with an exponent.
        u32::from(self.0.exponent().unwrap_or(0))
    }

    /// Minor units in one major unit: 100 for CNY, 1 for JPY, 1000 for KWD.
    pub fn minor_per_major(self) -> i64 {
        10_i64.pow(self.exponent())
    }

    /// Converts whole major units to minor units, `None` on overflow.
    pub fn major_to_minor(self, major: i64) -> Option<i64> {
        major.checked_mul(self.minor_per_major())
    }

    /// Formats an amount in major units with the currency's decimals: `"19.99"`, `"500"`.
    pub fn format_major(self, amount_minor: i64) -> String {
        let exp = self.exponent() as usize;
        let sign = if amount_minor < 0 { "-" } else { "" };
        let abs = amount_minor.unsigned_abs();
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let unit = 10_u64.pow(exp as u32);
        format!("{sign}{}.{:0exp$}", abs / unit, abs % unit)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Checks a client-supplied amount: `> 0` (`parameter_invalid`) and
/// `<= MAX_AMOUNT_MINOR` (`amount_too_large`).
pub fn check_amount(amount_minor: i64, param: &str) -> Result<i64, Error> {
    if amount_minor <= 0 {
        return Err(Error::invalid(
            param,
            format!("`{param}` must be a positive integer count of minor units."),
        ));
    }
    if amount_minor > MAX_AMOUNT_MINOR {
        return Err(amount_too_large(param));
    }
    Ok(amount_minor)
}

pub fn amount_too_large(param: &str) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        "amount_too_large",
        format!("`{param}` is larger than Pocket accepts for a single payment."),
    )
    .with_param(param)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_iso_4217() {
        let cny = Currency::parse("CNY", "currency").unwrap();
        let jpy = Currency::parse("JPY", "currency").unwrap();
        let kwd = Currency::parse("KWD", "currency").unwrap();
        assert_eq!(cny.minor_per_major(), 100);
        assert_eq!(jpy.minor_per_major(), 1);
        assert_eq!(kwd.minor_per_major(), 1000);
        assert_eq!(cny.numeric(), 156);
        assert_eq!(cny.format_major(1999), "19.99");
        assert_eq!(kwd.format_major(5), "0.005");
        assert_eq!(jpy.format_major(500), "500");
        assert_eq!(cny.format_major(-1), "-0.01");
    }

    #[test]
    fn refuses_lower_case_unknown_and_non_money() {
        for bad in ["cny", "Cny", "ABC", "XAU", "XXX", "", "CNYY", "C1Y"] {
            let e = Currency::parse(bad, "currency").unwrap_err();
            assert_eq!(e.code, "currency_unsupported", "{bad}");
            assert_eq!(e.param.as_deref(), Some("currency"));
        }
    }

    #[test]
    fn amount_bounds() {
        assert!(check_amount(1, "amount").is_ok());
        assert!(check_amount(MAX_AMOUNT_MINOR, "amount").is_ok());
        assert_eq!(
            check_amount(0, "amount").unwrap_err().code,
            "parameter_invalid"
        );
        assert_eq!(
            check_amount(-5, "amount").unwrap_err().code,
            "parameter_invalid"
        );
        assert_eq!(
            check_amount(MAX_AMOUNT_MINOR + 1, "amount")
                .unwrap_err()
                .code,
            "amount_too_large"
        );
    }
}

//! Bank cards as Pocket may check them before asking a bank: the number's length and
//! Luhn check digit, the expiry, the brand by its prefix. Pure; nothing here keeps a
//! number, and nothing outside the request that binds a card ever sees one.

use crate::error::{Error, ErrorKind};

/// Card brands Pocket takes, by their issuer ranges (ISO/IEC 7812 IIN prefixes) and
/// lengths. A number in no brand's range is refused before any bank is asked: twelve
/// zeros pass Luhn, but no issuer gives them out. (The bank has the last word on the
/// rest.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Brand {
    Visa,
    Mastercard,
    UnionPay,
    Amex,
    /// No longer given to new cards; kept so that cards bound before read back.
    Unknown,
}

impl Brand {
    pub fn as_str(self) -> &'static str {
        match self {
            Brand::Visa => "visa",
            Brand::Mastercard => "mastercard",
            Brand::UnionPay => "unionpay",
            Brand::Amex => "amex",
            Brand::Unknown => "unknown",
        }
    }

    /// The brand whose issuer range and lengths hold `digits`, if any: Visa `4`, 13, 16
    /// or 19 digits; Mastercard `51`–`55` and `2221`–`2720`, 16; UnionPay `62`, 16 to
    /// 19; American Express `34` and `37`, 15.
    fn of(digits: &[u8]) -> Option<Brand> {
        let prefix = |n: usize| -> u32 {
            digits[..n.min(digits.len())]
                .iter()
                .fold(0, |acc, d| acc * 10 + u32::from(*d))
        };
        let (brand, lengths): (Brand, &[usize]) = match digits.first() {
            Some(4) => (Brand::Visa, &[13, 16, 19]),
            Some(5) if (51..=55).contains(&prefix(2)) => (Brand::Mastercard, &[16]),
            Some(2) if (2221..=2720).contains(&prefix(4)) => (Brand::Mastercard, &[16]),
            Some(6) if prefix(2) == 62 => (Brand::UnionPay, &[16, 17, 18, 19]),
            Some(3) if matches!(prefix(2), 34 | 37) => (Brand::Amex, &[15]),
            _ => return None,
        };
        lengths.contains(&digits.len()).then_some(brand)
    }
}

/// A card number that passed the checks: its digits, brand and last four.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber {
    digits: Vec<u8>,
    pub brand: Brand,
}

impl std::fmt::Debug for CardNumber {
    // Never the number itself, not even in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardNumber({} …{})", self.brand.as_str(), self.last4())
    }
}

impl CardNumber {
    /// The number as the bank is sent it.
    pub fn digits(&self) -> String {
        self.digits.iter().map(|d| char::from(b'0' + d)).collect()
    }

    pub fn last4(&self) -> String {
        let n = self.digits.len();
        self.digits[n - 4..]
            .iter()
            .map(|d| char::from(b'0' + d))
            .collect()
    }
}

/// Whether `digits` end in a correct Luhn check digit.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn invalid_number() -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        "card_number_invalid",
        "This is not a valid card number.",
    )
    .with_param("number")
}

/// Parses a card number: 12 to 19 digits (spaces and dashes between groups allowed)
/// with a correct Luhn check digit, in the issuer range of a brand Pocket takes and of
/// that brand's length ([`Brand`]); `400 card_number_invalid` otherwise.
pub fn parse_number(raw: &str) -> Result<CardNumber, Error> {
    if raw.len() > 32 {
        return Err(invalid_number());
    }
    let mut digits = Vec::with_capacity(19);
    for b in raw.bytes() {
        match b {
            b'0'..=b'9' => digits.push(b - b'0'),
            b' ' | b'-' => {}
            _ => return Err(invalid_number()),
        }
    }
    if !(12..=19).contains(&digits.len()) || !luhn_valid(&digits) {
        return Err(invalid_number());
    }
    let brand = Brand::of(&digits).ok_or_else(invalid_number)?;
    Ok(CardNumber { digits, brand })
}

/// Checks an expiry against today's year and month (a card is valid through the end
/// of its expiry month): `400 parameter_invalid` for a month outside 1–12 or a year
/// outside 2000–2099, `400 card_expired` for a past one.
pub fn check_expiry(month: u32, year: u32, today: (u32, u32)) -> Result<(), Error> {
    if !(1..=12).contains(&month) {
        return Err(Error::invalid("exp_month", "`exp_month` must be 1 to 12."));
    }
    if !(2000..=2099).contains(&year) {
        return Err(Error::invalid(
            "exp_year",
            "`exp_year` must be a four-digit year.",
        ));
    }
    let (this_year, this_month) = today;
    if (year, month) < (this_year, this_month) {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "card_expired",
            "This card has expired.",
        )
        .with_param("exp_year"));
    }
    Ok(())
}

/// A CVC: 3 digits (4 for American Express).
pub fn check_cvc(cvc: &str, brand: Brand) -> Result<(), Error> {
    let len = if brand == Brand::Amex { 4 } else { 3 };
    if cvc.len() == len && cvc.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::invalid(
            "cvc",
            format!("`cvc` must be {len} digits."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_sandbox_numbers_parse() {
        for (n, brand) in [
            ("4242424242424242", Brand::Visa),
            ("5555555555554444", Brand::Mastercard),
            ("6200000000000005", Brand::UnionPay),
            ("4000000000000002", Brand::Visa),
            ("4000 0000 0000 9995", Brand::Visa),
            ("4000-0000-0000-0069", Brand::Visa),
        ] {
            let c = parse_number(n).unwrap();
            assert_eq!(c.brand, brand, "{n}");
        }
        assert_eq!(parse_number("4242424242424242").unwrap().last4(), "4242");
        assert_eq!(parse_number("378282246310005").unwrap().brand, Brand::Amex);
        assert_eq!(
            parse_number("2223003122003222").unwrap().brand,
            Brand::Mastercard
        );
        assert_eq!(parse_number("4222222222222").unwrap().brand, Brand::Visa);
        assert_eq!(
            format!("{:?}", parse_number("4242424242424242").unwrap()),
            "CardNumber(visa …4242)"
        );
    }

    #[test]
    fn bad_numbers_are_refused() {
        for bad in [
            "4242424242424241",
            "",
            "4242",
            "42424242424242424242",
            "4242x42424242424",
            "４２４２４２４２４２４２４２４２",
            // Luhn-valid, in no issuer's range (the review bound these).
            "000000000000",
            "0000000000000",
            "0000000000000000",
            "9999999999999995",
            "1234567812345670",
            // In a range, of another length.
            "42424242424242",
            "55555555555544440",
        ] {
            assert_eq!(
                parse_number(bad).unwrap_err().code,
                "card_number_invalid",
                "{bad}"
            );
        }
    }

    #[test]
    fn expiry_is_through_the_end_of_the_month() {
        assert!(check_expiry(11, 2026, (2026, 11)).is_ok());
        assert_eq!(
            check_expiry(10, 2026, (2026, 11)).unwrap_err().code,
            "card_expired"
        );
        assert_eq!(
            check_expiry(12, 2025, (2026, 1)).unwrap_err().code,
            "card_expired"
        );
        assert_eq!(
            check_expiry(13, 2030, (2026, 1)).unwrap_err().code,
            "parameter_invalid"
        );
        assert_eq!(
            check_expiry(1, 30, (2026, 1)).unwrap_err().code,
            "parameter_invalid"
        );
        assert!(check_cvc("123", Brand::Visa).is_ok());
        assert!(check_cvc("1234", Brand::Visa).is_err());
        assert!(check_cvc("1234", Brand::Amex).is_ok());
    }

    proptest! {
        /// Appending the right check digit makes any digit string valid; changing any
        /// single digit then makes it invalid.
        #[test]
        fn luhn_catches_every_single_digit_error(body in prop::collection::vec(0u8..10, 11..18), at in any::<usize>(), by in 1u8..10) {
            let check = (0..10).find(|c| {
                let mut d = body.clone();
                d.push(*c);
                luhn_valid(&d)
            });
            let mut digits = body.clone();
            digits.push(check.expect("one check digit fits"));
            prop_assert!(luhn_valid(&digits));
            let i = at % digits.len();
            digits[i] = (digits[i] + by) % 10;
            prop_assert!(!luhn_valid(&digits));
        }
    }
}

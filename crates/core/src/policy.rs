//! Amount tiers: the larger the amount, the shorter the window to confirm and the
//! stronger the proof the customer must give.
//!
//! A [`TierTable`] is written in major units (so "200" means 200.00 CNY, 200 JPY and
//! 200.000 KWD) and converted with the currency's exponent at decision time.
//! [`PolicyBook`] holds the default table and per-currency overrides from config.

use crate::error::Error;
use crate::money::{Currency, amount_too_large};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// What the customer must prove to confirm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Authentication {
    /// A tap in the signed-in wallet.
    None,
    /// The wallet's 6-digit PIN.
    Pin,
    /// The PIN and a signature by one of the wallet's registered device keys.
    PinAndDevice,
}

impl Authentication {
    pub fn as_str(self) -> &'static str {
        match self {
            Authentication::None => "none",
            Authentication::Pin => "pin",
            Authentication::PinAndDevice => "pin_and_device",
        }
    }

    pub fn parse(s: &str) -> Option<Authentication> {
        match s {
            "none" => Some(Authentication::None),
            "pin" => Some(Authentication::Pin),
            "pin_and_device" => Some(Authentication::PinAndDevice),
            _ => None,
        }
    }

    pub fn needs_pin(self) -> bool {
        !matches!(self, Authentication::None)
    }

    /// Orders proofs: none < PIN < PIN and device.
    pub fn strength(self) -> u8 {
        match self {
            Authentication::None => 0,
            Authentication::Pin => 1,
            Authentication::PinAndDevice => 2,
        }
    }
}

/// One row of a tier table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRule {
    pub name: String,
    /// Inclusive upper bound, in whole major units of the currency.
    pub up_to_major: i64,
    pub window_seconds: i64,
    pub authentication: Authentication,
}

/// Tiers in ascending order of `up_to_major`. Amounts above the last are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TierTable(pub Vec<TierRule>);

/// The policy applied to one payment; stored on it and returned in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Policy {
    pub tier: String,
    pub window_seconds: i64,
    pub authentication: Authentication,
    /// The risk rule that raised `authentication` above the tier's, by name (absent
    /// when the tier decided it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Most tiers a table may have: a limit on everything.
pub const MAX_TIERS: usize = 16;
/// Longest window a tier may give: one day.
pub const MAX_WINDOW_SECONDS: i64 = 86_400;

impl TierTable {
    /// The contract's defaults: small ≤ 200 / 300 s / none, medium ≤ 5,000 / 120 s / pin,
    /// large ≤ 50,000 / 60 s / pin and device signature.
    pub fn contract_default() -> TierTable {
        let rule = |name: &str, up_to_major, window_seconds, authentication| TierRule {
            name: name.to_string(),
            up_to_major,
            window_seconds,
            authentication,
        };
        TierTable(vec![
            rule("small", 200, 300, Authentication::None),
            rule("medium", 5_000, 120, Authentication::Pin),
            rule("large", 50_000, 60, Authentication::PinAndDevice),
        ])
    }

    /// Checks a table from config; the message names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let tiers = &self.0;
        if tiers.is_empty() || tiers.len() > MAX_TIERS {
            return Err(format!("must have between 1 and {MAX_TIERS} tiers"));
        }
        for (i, t) in tiers.iter().enumerate() {
            if t.name.is_empty() || t.name.len() > 32 {
                return Err(format!("tier {i}: name must be 1 to 32 characters"));
            }
            if t.up_to_major <= 0 {
                return Err(format!("tier '{}': up_to_major must be > 0", t.name));
            }
            if !(1..=MAX_WINDOW_SECONDS).contains(&t.window_seconds) {
                return Err(format!(
                    "tier '{}': window_seconds must be 1..={MAX_WINDOW_SECONDS}",
                    t.name
                ));
            }
            if let Some(prev) = i.checked_sub(1).map(|p| &tiers[p]) {
                if t.up_to_major <= prev.up_to_major {
                    return Err(format!(
                        "tier '{}': up_to_major must be larger than the tier before",
                        t.name
                    ));
                }
                if t.window_seconds > prev.window_seconds {
                    return Err(format!(
                        "tier '{}': a larger amount may not get a longer window than tier '{}'",
                        t.name, prev.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Decides the policy for `amount_minor` of `currency`. Above the last tier:
    /// `400 amount_too_large` on `param`.
    pub fn decide(
        &self,
        amount_minor: i64,
        currency: Currency,
        param: &str,
    ) -> Result<Policy, Error> {
        for t in &self.0 {
            // A bound too large for i64 in minor units admits everything below it.
            let limit_minor = currency.major_to_minor(t.up_to_major).unwrap_or(i64::MAX);
            if amount_minor <= limit_minor {
                return Ok(Policy {
                    tier: t.name.clone(),
                    window_seconds: t.window_seconds,
                    authentication: t.authentication,
                    rule: None,
                });
            }
        }
        Err(amount_too_large(param))
    }
}

/// The default tier table plus per-currency overrides (keyed by ISO code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyBook {
    pub default: TierTable,
    pub per_currency: BTreeMap<String, TierTable>,
}

impl Default for PolicyBook {
    fn default() -> Self {
        PolicyBook {
            default: TierTable::contract_default(),
            per_currency: BTreeMap::new(),
        }
    }
}

impl PolicyBook {
    pub fn table(&self, currency: Currency) -> &TierTable {
        self.per_currency
            .get(currency.code())
            .unwrap_or(&self.default)
    }

    pub fn decide(
        &self,
        amount_minor: i64,
        currency: Currency,
        param: &str,
    ) -> Result<Policy, Error> {
        self.table(currency).decide(amount_minor, currency, param)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.default
            .validate()
            .map_err(|e| format!("tiers.default: {e}"))?;
        for (code, table) in &self.per_currency {
            Currency::parse(code, "currency")
                .map_err(|_| format!("tiers.{code}: not an upper-case ISO 4217 currency"))?;
            table.validate().map_err(|e| format!("tiers.{code}: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(c: &str) -> Currency {
        Currency::parse(c, "currency").unwrap()
    }

    #[test]
    fn exponent_scales_tier_bounds() {
        let book = PolicyBook::default();
        // 200.00 CNY is small, 200.01 medium.
        assert_eq!(
            book.decide(20_000, cur("CNY"), "amount").unwrap().tier,
            "small"
        );
        assert_eq!(
            book.decide(20_001, cur("CNY"), "amount").unwrap().tier,
            "medium"
        );
        // 200 JPY small, 201 medium.
        assert_eq!(
            book.decide(200, cur("JPY"), "amount").unwrap().tier,
            "small"
        );
        assert_eq!(
            book.decide(201, cur("JPY"), "amount").unwrap().tier,
            "medium"
        );
        // 200.000 KWD small.
        assert_eq!(
            book.decide(200_000, cur("KWD"), "amount").unwrap().tier,
            "small"
        );
        let large = book.decide(500_001, cur("CNY"), "amount").unwrap();
        assert_eq!(large.tier, "large");
        assert_eq!(large.window_seconds, 60);
        assert_eq!(large.authentication, Authentication::PinAndDevice);
        let e = book.decide(5_000_001, cur("CNY"), "amount").unwrap_err();
        assert_eq!(e.code, "amount_too_large");
    }

    #[test]
    fn per_currency_override_wins() {
        let mut book = PolicyBook::default();
        let mut jpy = TierTable::contract_default();
        for t in &mut jpy.0 {
            t.up_to_major *= 100;
        }
        book.per_currency.insert("JPY".into(), jpy);
        assert_eq!(
            book.decide(20_000, cur("JPY"), "amount").unwrap().tier,
            "small"
        );
        assert_eq!(
            book.decide(20_001, cur("CNY"), "amount").unwrap().tier,
            "medium"
        );
        assert!(book.validate().is_ok());
    }

    #[test]
    fn validation_names_the_problem() {
        let mut t = TierTable::contract_default();
        t.0[2].window_seconds = 600;
        assert!(t.validate().unwrap_err().contains("longer window"));
        let mut t = TierTable::contract_default();
        t.0[1].up_to_major = 100;
        assert!(t.validate().unwrap_err().contains("larger than"));
        let mut book = PolicyBook::default();
        book.per_currency
            .insert("cny".into(), TierTable::contract_default());
        assert!(book.validate().unwrap_err().contains("tiers.cny"));
    }

    proptest! {
        /// The seed's rule: a larger amount never gets a longer window or weaker proof.
        #[test]
        fn larger_amounts_never_get_longer_windows(a in 1i64..=5_000_000, b in 1i64..=5_000_000) {
            let book = PolicyBook::default();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let p_lo = book.decide(lo, cur("CNY"), "amount").unwrap();
            let p_hi = book.decide(hi, cur("CNY"), "amount").unwrap();
            prop_assert!(p_hi.window_seconds <= p_lo.window_seconds);
            prop_assert!(p_hi.authentication.needs_pin() || !p_lo.authentication.needs_pin());
        }

        #[test]
        fn every_amount_gets_a_policy_or_too_large(a in 1i64..=crate::money::MAX_AMOUNT_MINOR) {
            let book = PolicyBook::default();
            match book.decide(a, cur("CNY"), "amount") {
                Ok(p) => prop_assert!(a <= 5_000_000 && p.window_seconds >= 60),
                Err(e) => prop_assert!(a > 5_000_000 && e.code == "amount_too_large"),
            }
        }
    }
}

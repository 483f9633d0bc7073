//! Pricing a cart from a merchant's catalog.
//!
//! The server, not the client, decides what a cart costs: each line's unit price comes
//! from the catalog as it is at creation, with checked arithmetic throughout. The
//! priced lines are stored on the payment, so a later price change never alters it.

use crate::error::{Error, ErrorKind};
use crate::money::{Currency, MAX_AMOUNT_MINOR, amount_too_large};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most lines a cart may have.
pub const MAX_CART_LINES: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: i64 = 10_000;

/// A catalog entry as pricing sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Product {
    #[schema(value_type = String, example = "product")]
    pub object: &'static str,
    pub sku: String,
    pub name: String,
    pub unit_amount: i64,
    #[schema(value_type = String, example = "CNY")]
    pub currency: Currency,
    pub active: bool,
}

/// One line of a cart as the merchant sends it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartLine {
    pub sku: String,
    pub quantity: i64,
}

/// One priced line, stored on the payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PricedItem {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_amount: i64,
    pub amount: i64,
}

/// The shape of a cart, without the catalog: 1 to 100 lines, well-formed skus,
/// quantities 1 to 10,000. The HTTP layer calls it to refuse bad carts early;
/// [`price_cart`] calls it again, so pricing never depends on that.
pub fn check_lines(lines: &[CartLine]) -> Result<(), Error> {
    if lines.is_empty() || lines.len() > MAX_CART_LINES {
        return Err(Error::invalid(
            "items",
            format!("`items` must have 1 to {MAX_CART_LINES} lines."),
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(Error::invalid(
                &format!("items[{i}].quantity"),
                format!("Quantity must be 1 to {MAX_QUANTITY}."),
            ));
        }
        check_sku(&line.sku, &format!("items[{i}].sku"))?;
    }
    Ok(())
}

/// Prices `lines` in `currency`, looking products up with `catalog`. Returns the lines
/// and their total. Errors name the offending line (`items[3].sku`).
pub fn price_cart<'a>(
    lines: &[CartLine],
    currency: Currency,
    catalog: impl Fn(&str) -> Option<&'a Product>,
) -> Result<(Vec<PricedItem>, i64), Error> {
    check_lines(lines)?;
    let mut priced = Vec::with_capacity(lines.len());
    let mut total: i64 = 0;
    for (i, line) in lines.iter().enumerate() {
        let param = format!("items[{i}].sku");
        let product = match catalog(&line.sku) {
            Some(p) if p.active => p,
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    "sku_inactive",
                    format!("Product '{}' is not for sale.", line.sku),
                )
                .with_param(param));
            }
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    "unknown_sku",
                    format!("No product with sku '{}' in your catalog.", line.sku),
                )
                .with_param(param));
            }
        };
        if product.currency != currency {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "currency_mismatch",
                format!(
                    "Product '{}' is priced in {}, the payment is in {}.",
                    line.sku, product.currency, currency
                ),
            )
            .with_param(param));
        }
        let amount = product
            .unit_amount
            .checked_mul(line.quantity)
            .filter(|a| *a <= MAX_AMOUNT_MINOR)
            .ok_or_else(|| amount_too_large("items"))?;
        total = total
            .checked_add(amount)
            .filter(|t| *t <= MAX_AMOUNT_MINOR)
            .ok_or_else(|| amount_too_large("items"))?;
        priced.push(PricedItem {
            sku: product.sku.clone(),
            name: product.name.clone(),
            quantity: line.quantity,
            unit_amount: product.unit_amount,
            amount,
        });
    }
    Ok((priced, total))
}

/// A product's sku as a path names it (checked as [`check_sku`] does, param `sku`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::str::FromStr for Sku {
    type Err = Error;
    fn from_str(s: &str) -> Result<Sku, Error> {
        check_sku(s, "sku").map(|()| Sku(s.to_owned()))
    }
}

/// A sku is 1–64 characters of `A-Z a-z 0-9 - _ .`.
pub fn check_sku(sku: &str, param: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            param,
            "A sku is 1 to 64 characters of letters, digits, '-', '_' and '.'.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn cny() -> Currency {
        Currency::parse("CNY", "currency").unwrap()
    }

    fn catalog() -> HashMap<String, Product> {
        let mut m = HashMap::new();
        for (sku, price, active, cur) in [
            ("tea", 1299, true, "CNY"),
            ("cake", 2500, true, "CNY"),
            ("old", 100, false, "CNY"),
            ("sushi", 800, true, "JPY"),
            ("gold", MAX_AMOUNT_MINOR, true, "CNY"),
        ] {
            m.insert(
                sku.to_string(),
                Product {
                    object: "product",
                    sku: sku.into(),
                    name: sku.to_uppercase(),
                    unit_amount: price,
                    currency: Currency::parse(cur, "c").unwrap(),
                    active,
                },
            );
        }
        m
    }

    fn line(sku: &str, quantity: i64) -> CartLine {
        CartLine {
            sku: sku.into(),
            quantity,
        }
    }

    #[test]
    fn prices_lines_and_total() {
        let cat = catalog();
        let (items, total) =
            price_cart(&[line("tea", 2), line("cake", 1)], cny(), |s| cat.get(s)).unwrap();
        assert_eq!(total, 2 * 1299 + 2500);
        assert_eq!(items[0].amount, 2598);
        assert_eq!(items[0].name, "TEA");
    }

    #[test]
    fn refuses_bad_lines_naming_them() {
        let cat = catalog();
        let f = |s: &str| cat.get(s);
        let e = price_cart(&[line("tea", 1), line("nope", 1)], cny(), f).unwrap_err();
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("unknown_sku", Some("items[1].sku"))
        );
        assert_eq!(
            price_cart(&[line("old", 1)], cny(), f).unwrap_err().code,
            "sku_inactive"
        );
        assert_eq!(
            price_cart(&[line("sushi", 1)], cny(), f).unwrap_err().code,
            "currency_mismatch"
        );
        let e = price_cart(&[line("tea", 0)], cny(), f).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("items[0].quantity"));
        assert!(price_cart(&[line("tea", 10_001)], cny(), f).is_err());
        assert!(price_cart(&[line("tea", 10_000)], cny(), f).is_ok());
        assert!(price_cart(&[], cny(), f).is_err());
        let many: Vec<_> = (0..101).map(|_| line("tea", 1)).collect();
        assert!(price_cart(&many, cny(), f).is_err());
        assert_eq!(
            price_cart(&[line("gold", 2)], cny(), f).unwrap_err().code,
            "amount_too_large"
        );
        assert_eq!(
            price_cart(&[line("gold", 1), line("tea", 1)], cny(), f)
                .unwrap_err()
                .code,
            "amount_too_large"
        );
    }

    #[test]
    fn skus() {
        assert!(check_sku("tea-01.large_", "sku").is_ok());
        assert!(check_sku("", "sku").is_err());
        assert!(check_sku("tea cup", "sku").is_err());
        assert!(check_sku(&"a".repeat(65), "sku").is_err());
    }

    proptest! {
        #[test]
        fn total_is_sum_of_lines(qs in proptest::collection::vec((0usize..2, 1i64..=10_000), 1..100)) {
            let cat = catalog();
            let skus = ["tea", "cake"];
            let lines: Vec<_> = qs.iter().map(|(i, q)| line(skus[*i], *q)).collect();
            let (items, total) = price_cart(&lines, cny(), |s| cat.get(s)).unwrap();
            prop_assert_eq!(total, items.iter().map(|i| i.amount).sum::<i64>());
            for it in &items { prop_assert_eq!(it.amount, it.unit_amount * it.quantity); }
        }
    }
}

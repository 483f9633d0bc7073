//! What a merchant's caller may do: the scopes of restricted keys (`rk_…`) and of
//! staff sessions (`sst_…`), the roles staff have, and the scope each merchant endpoint
//! needs. A secret key (`sk_…`) may do everything. A route this table does not know
//! needs a scope no restricted caller has: new endpoints are closed until named here.

use crate::error::{Error, ErrorKind};

/// One thing a restricted caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every `GET`: payments, balance, takings, products, events, payouts, endpoints.
    Read,
    /// Create payments, cancel them, capture holds.
    PaymentsWrite,
    /// Refund payments.
    RefundsWrite,
    /// Add and change products.
    CatalogWrite,
    /// Add bank accounts and pay out.
    PayoutsWrite,
    /// Add and remove webhook endpoints, send events again.
    WebhooksWrite,
    /// Manage restricted keys and staff. Only the owner. (Rolling the secret key takes
    /// the secret key itself.)
    KeysWrite,
}

/// Every scope, in the order the contract lists them.
pub const ALL: [Scope; 7] = [
    Scope::Read,
    Scope::PaymentsWrite,
    Scope::RefundsWrite,
    Scope::CatalogWrite,
    Scope::PayoutsWrite,
    Scope::WebhooksWrite,
    Scope::KeysWrite,
];

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::PaymentsWrite => "payments:write",
            Scope::RefundsWrite => "refunds:write",
            Scope::CatalogWrite => "catalog:write",
            Scope::PayoutsWrite => "payouts:write",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::KeysWrite => "keys:write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        ALL.iter().copied().find(|s| s.as_str() == text)
    }
}

/// A set of scopes as stored: their names separated by spaces.
pub fn to_text(scopes: &[Scope]) -> String {
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    names.join(" ")
}

/// Scopes as stored; a name no longer known grants nothing.
pub fn from_text(text: &str) -> Vec<Scope> {
    text.split_whitespace().filter_map(Scope::parse).collect()
}

/// The scopes a restricted key is asked for: 1 to 7 known names, no repeats, never
/// `keys:write` (a key that could make keys would be the secret key again).
pub fn check_requested(names: &[String]) -> Result<Vec<Scope>, Error> {
    let bad = |message: String| Error::invalid("scopes", message);
    if names.is_empty() || names.len() > ALL.len() {
        return Err(bad(format!(
            "`scopes` must name 1 to {} scopes.",
            ALL.len()
        )));
    }
    let mut out = Vec::new();
    for name in names {
        let scope = Scope::parse(name).ok_or_else(|| {
            bad(format!(
                "`{name}` is not a scope: use read, payments:write, refunds:write, catalog:write, payouts:write or webhooks:write."
            ))
        })?;
        if scope == Scope::KeysWrite {
            return Err(bad("A restricted key cannot have `keys:write`.".into()));
        }
        if out.contains(&scope) {
            return Err(bad(format!("`{name}` is named twice.")));
        }
        out.push(scope);
    }
    out.sort();
    Ok(out)
}

/// A member of a shop's staff: what they do there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything the secret key can do.
    Owner,
    /// Sells, refunds, keeps the catalog; no payouts, webhooks or keys.
    Manager,
    /// Sells and sees the takings; never refunds, pays out or touches keys.
    Cashier,
    /// Webhooks and reading; moves no money.
    Developer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Cashier => "cashier",
            Role::Developer => "developer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Owner, Role::Manager, Role::Cashier, Role::Developer]
            .into_iter()
            .find(|r| r.as_str() == text)
    }

    /// What a session of this role may do.
    pub fn scopes(self) -> &'static [Scope] {
        use Scope::*;
        match self {
            Role::Owner => &ALL,
            Role::Manager => &[Read, PaymentsWrite, RefundsWrite, CatalogWrite],
            Role::Cashier => &[Read, PaymentsWrite],
            Role::Developer => &[Read, WebhooksWrite],
        }
    }
}

/// The scope a merchant endpoint needs: `method` and the route's pattern (as axum
/// matched it, `/v1/payments/{id}/refunds`). `None`: no restricted caller may call it.
pub fn needed(method: &str, route: &str) -> Option<Scope> {
    use Scope::*;
    let scope = match (method, route) {
        ("GET", "/v1/account")
        | ("GET", "/v1/balance")
        | ("GET", "/v1/balance/takings")
        | ("GET", "/v1/balance/transactions")
        | ("GET", "/v1/bank_accounts")
        | ("GET", "/v1/events")
        | ("GET", "/v1/events/{id}/deliveries")
        | ("GET", "/v1/payments")
        | ("GET", "/v1/payments/export")
        | ("GET", "/v1/payments/{id}")
        | ("GET", "/v1/payments/{id}/qr")
        | ("GET", "/v1/payouts")
        | ("GET", "/v1/payouts/{id}")
        | ("GET", "/v1/products")
        | ("GET", "/v1/webhook_endpoints") => Read,
        // Who else may act for the shop is the owner's to see.
        ("GET", "/v1/restricted_keys") | ("GET", "/v1/staff") => KeysWrite,
        ("POST", "/v1/payments")
        | ("POST", "/v1/payments/{id}/cancel")
        | ("POST", "/v1/payments/{id}/remind")
        | ("POST", "/v1/payments/{id}/capture") => PaymentsWrite,
        ("POST", "/v1/payments/{id}/refunds") => RefundsWrite,
        ("POST", "/v1/products") | ("POST", "/v1/products/{sku}") => CatalogWrite,
        ("POST", "/v1/bank_accounts") | ("POST", "/v1/payouts") => PayoutsWrite,
        ("POST", "/v1/webhook_endpoints")
        | ("DELETE", "/v1/webhook_endpoints/{id}")
        | ("POST", "/v1/events/{id}/redeliver") => WebhooksWrite,
        // (Rolling the secret key, `POST /v1/keys`, is the secret key's alone.)
        ("POST", "/v1/restricted_keys")
        | ("DELETE", "/v1/restricted_keys/{id}")
        | ("POST", "/v1/staff")
        | ("DELETE", "/v1/staff/{id}") => KeysWrite,
        _ => return None,
    };
    Some(scope)
}

/// Whether a caller with `scopes` (`None`: a secret key) may call the route.
pub fn allows(scopes: Option<&[Scope]>, method: &str, route: &str) -> Result<(), Error> {
    let Some(held) = scopes else { return Ok(()) };
    match needed(method, route) {
        Some(scope) if held.contains(&scope) => Ok(()),
        Some(scope) => Err(Error::new(
            ErrorKind::Permission,
            "scope_missing",
            format!(
                "This key or staff session may not do this: it needs the `{}` scope.",
                scope.as_str()
            ),
        )),
        None => Err(Error::new(
            ErrorKind::Permission,
            "scope_missing",
            "Only the secret key may call this endpoint.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_do_what_they_say() {
        let refund = "/v1/payments/{id}/refunds";
        let can = |role: Role, method: &str, route: &str| {
            allows(Some(role.scopes()), method, route).is_ok()
        };
        assert!(can(Role::Cashier, "POST", "/v1/payments"));
        assert!(can(Role::Cashier, "GET", "/v1/balance/takings"));
        assert!(!can(Role::Cashier, "POST", refund));
        assert!(!can(Role::Cashier, "POST", "/v1/payouts"));
        assert!(!can(Role::Cashier, "POST", "/v1/keys"));
        assert!(can(Role::Manager, "POST", refund));
        assert!(!can(Role::Manager, "POST", "/v1/webhook_endpoints"));
        assert!(can(Role::Developer, "POST", "/v1/webhook_endpoints"));
        assert!(!can(Role::Developer, "POST", "/v1/payments"));
        assert!(can(Role::Owner, "POST", "/v1/staff"));
        assert!(
            !can(Role::Owner, "POST", "/v1/keys"),
            "the secret key rolls itself"
        );
        assert!(
            !can(Role::Owner, "GET", "/v1/some/new/list"),
            "a new GET is closed too"
        );
        assert!(
            !can(Role::Manager, "GET", "/v1/staff"),
            "the staff list is the owner's"
        );
        assert!(!can(Role::Developer, "GET", "/v1/restricted_keys"));
        assert!(
            allows(None, "POST", "/v1/anything/new").is_ok(),
            "the secret key"
        );
        let e = allows(Some(Role::Manager.scopes()), "POST", "/v1/anything/new").unwrap_err();
        assert_eq!((e.http_status(), e.code), (403, "scope_missing"));
    }

    #[test]
    fn requested_scopes_are_known_distinct_and_never_make_keys() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_requested(&names(&["refunds:write", "read"])).unwrap(),
            vec![Scope::Read, Scope::RefundsWrite]
        );
        for bad in [&[][..], &["keys:write"], &["read", "read"], &["write"]] {
            assert!(check_requested(&names(bad)).is_err(), "{bad:?}");
        }
        let all = to_text(&ALL);
        assert_eq!(from_text(&all), ALL.to_vec());
        assert_eq!(from_text("read gone:write"), vec![Scope::Read]);
    }
}

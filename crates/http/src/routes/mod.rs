//! Endpoint handlers, one module per caller. Each handler: authenticates (extractor),
//! validates its input (naming the bad parameter), calls one store method, answers.

pub mod activity;
pub mod admin;
pub mod bank;
pub mod cards;
pub mod devices;
pub mod export;
pub mod merchant;
pub mod payments;
pub mod payouts;
pub mod pin;
pub mod public;
pub mod qr;
pub mod rules;
pub mod service;
pub mod staff;
pub mod stream;
pub mod wallet;
pub mod webhooks;

use crate::error::ApiResult;
use crate::extract::ListQuery;
use pocket_core::Error;
use pocket_core::payment::Status;
use pocket_store::PaymentOwner;
use pocket_store::model::PageRequest;
use serde::Serialize;
use utoipa::ToSchema;

/// The answer to a `DELETE`.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
}

/// The merchant's own payment; another merchant's is `404`.
pub(crate) async fn own_payment(
    state: &crate::AppState,
    merchant_id: &str,
    id: &pocket_core::id::PaymentId,
) -> ApiResult<pocket_core::payment::Payment> {
    match state.store.payment(id.to_string()).await? {
        Some(p) if p.merchant == merchant_id => Ok(p),
        _ => Err(Error::not_found("payment", id.as_str()).into()),
    }
}

/// A wallet session as its holder gets it: sign-up, sign-in, a PIN reset.
#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    pub customer: pocket_store::model::Customer,
    /// The wallet session token (`pst_…`), valid 30 days.
    pub token: String,
}

/// The page a list query asks for; `starting_after` must be an id of `prefix`
/// (or, with `prefix` empty, any non-empty key such as a sku).
pub(crate) fn page(q: &ListQuery, prefix: &str) -> ApiResult<PageRequest> {
    if let Some(after) = &q.starting_after {
        if prefix.is_empty() {
            pocket_core::pricing::check_sku(after, "starting_after")?;
        } else {
            pocket_core::id::check(after, prefix, "starting_after")?;
        }
    }
    Ok(PageRequest {
        limit: q.limit,
        starting_after: q.starting_after.clone(),
    })
}

/// The `status` filter of a payment list.
pub(crate) fn status_filter(q: &ListQuery) -> ApiResult<Option<Status>> {
    Ok(status_of(q.status.as_deref())?)
}

/// A payment status given as a filter (`None`: any).
pub(crate) fn status_of(text: Option<&str>) -> Result<Option<Status>, Error> {
    match text {
        None => Ok(None),
        Some(s) => Status::parse(s).map(Some).ok_or_else(|| {
            Error::invalid(
                "status",
                "`status` must be one of pending, authorized, succeeded, declined, expired, canceled.",
            )
        }),
    }
}

/// Whose payments a merchant's list or export shows: all of the merchant's, or one
/// customer's (a `cus_` id or a phone as typed in the server's country).
pub(crate) fn owner_of(
    state: &crate::AppState,
    merchant: String,
    customer: Option<&str>,
) -> Result<PaymentOwner, Error> {
    let Some(customer) = customer else {
        return Ok(PaymentOwner::Merchant(merchant));
    };
    let country = &state.settings.qr.place.country;
    let customer = crate::validate::customer_ref(customer, "customer", country)?;
    if customer.starts_with('+') {
        state.limits.phone_search(&merchant)?;
    }
    Ok(PaymentOwner::MerchantCustomer { merchant, customer })
}

/// Refuses the filters of a payment list on lists that have none.
pub(crate) fn no_filters(q: &ListQuery) -> ApiResult<()> {
    match q.status {
        Some(_) => Err(Error::invalid("status", "This list cannot be filtered by status.").into()),
        None => no_customer(q),
    }
}

/// Refuses a `customer` filter on lists that have none.
pub(crate) fn no_customer(q: &ListQuery) -> ApiResult<()> {
    match q.customer {
        Some(_) => {
            Err(Error::invalid("customer", "This list cannot be filtered by customer.").into())
        }
        None => Ok(()),
    }
}

/// Architecture invariants, checked: route modules do not call each other (what two
/// share lives here or outside `routes/`), and the HTTP crate writes no SQL.
#[cfg(test)]
mod architecture {
    use std::path::Path;

    fn sources(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(sources(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.display().to_string(), text));
            }
        }
        out
    }

    #[test]
    fn route_modules_import_no_other_route_module() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
        let files = sources(&dir);
        let modules: Vec<String> = files
            .iter()
            .filter_map(|(p, _)| {
                Path::new(p)
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
            })
            .filter(|m| m != "mod")
            .collect();
        assert!(modules.len() > 15, "{modules:?}");
        for (path, text) in &files {
            let me = Path::new(path)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .to_string();
            for other in modules.iter().filter(|m| **m != me) {
                for used in [
                    format!("routes::{other}::"),
                    format!("super::{other}::"),
                    format!("routes::{other};"),
                ] {
                    assert!(!text.contains(&used), "{path} uses {used}");
                }
            }
        }
    }

    #[test]
    fn the_http_crate_writes_no_sql() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for (path, text) in sources(&dir) {
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            for sql in ["\"SELECT ", "\"INSERT INTO", "\"UPDATE ", "\"DELETE FROM"] {
                assert!(!text.contains(sql), "{path} holds SQL ({sql})");
            }
        }
    }
}

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

/// The page a list query asks for; `starting_after` must be an id of `prefix`
/// (or, with `prefix` empty, any non-empty key such as a sku).
pub(crate) fn page(q: &ListQuery, prefix: &str) -> ApiResult<PageRequest> {
    if let Some(after) = &q.starting_after {
        if prefix.is_empty() {
            pocket_core::pricing::check_sku(after, "starting_after")?;
        } else {
            crate::validate::id(after, prefix, "starting_after")?;
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

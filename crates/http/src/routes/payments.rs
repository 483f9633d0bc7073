//! Merchant payment endpoints: create (from a cart or an amount), read, list,
//! cancel, capture (holds), refund.

use super::{own_payment, owner_of, page, status_filter};
use crate::AppState;
use crate::auth::MerchantCaller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Path;
use crate::extract::{Body, ListQuery};
use crate::idem::{IdempotencyKey, precheck, replay, respond};
use crate::validate;
use crate::waiting::{MAX_WAIT_SECONDS, wait_while_pending};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::code::PaymentCode;
use pocket_core::id::PaymentId;
use pocket_core::payment::{CaptureMethod, Payment};
use pocket_core::pricing::CartLine;
use pocket_core::{Currency, Error, money};
use pocket_store::model::{Page, Refund};
use pocket_store::{NewPayment, ShownCode};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    pub currency: String,
    /// 1–100 lines priced from your catalog; or give `amount` alone.
    pub items: Option<Vec<CartLine>>,
    /// The amount in minor units; with `items`, a check against the computed total.
    pub amount: Option<i64>,
    /// A customer id (`cus_…`) or a phone number (E.164, or as typed locally in the
    /// server's `qr.country`): the request is pushed to that wallet.
    /// Omitted: an open payment that the first confirming customer pays.
    pub customer: Option<String>,
    /// Instead of `customer`: the 18-digit code the customer's wallet shows, scanned
    /// at the till. The `small` tier is paid at once; above it the payment is pending
    /// and pushed to that wallet.
    #[schema(example = "283950174628301957")]
    pub payment_code: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// Seconds to confirm, 1 up to the tier's window.
    pub expires_in: Option<i64>,
    /// `automatic` (default): confirming pays. `manual`: confirming holds the money
    /// (`authorized`) until you capture it or cancel.
    #[schema(value_type = Option<String>, example = "manual")]
    pub capture: Option<String>,
    /// Manual capture: seconds the hold lasts, 1 to 604,800 (default 7 days).
    pub capture_within: Option<i64>,
}

#[utoipa::path(post, path = "/v1/payments", tag = "payments", request_body = CreatePayment,
    responses((status = 201, body = Payment), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    key: IdempotencyKey,
    body: Body<CreatePayment>,
) -> ApiResult<Response> {
    let mut req = body.value;
    let currency = Currency::parse(&req.currency, "currency")?;
    check_what_is_paid(&req)?;
    if let Some(c) = &req.customer {
        let country = &state.settings.qr.place.country;
        req.customer = Some(validate::customer_ref(c, "customer", country)?);
    }
    let code = match &req.payment_code {
        Some(_) if req.customer.is_some() => {
            return Err(Error::invalid(
                "payment_code",
                "Give `customer` or `payment_code`, not both.",
            )
            .into());
        }
        Some(c) => Some(PaymentCode::parse(c)?),
        None => None,
    };
    validate::optional_text(
        req.description.as_deref(),
        "description",
        validate::MAX_DESCRIPTION_CHARS,
    )?;
    let metadata = req.metadata.take().unwrap_or_default();
    validate::metadata(&metadata)?;
    let capture = capture_of(req.capture.as_deref())?;
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::CREATED);
    // A retry is answered as the first time even once its code is no longer shown.
    if code.is_some()
        && let Some(stored) = precheck(&state, idem.as_ref()).await?
    {
        return Ok(replay(stored));
    }
    let charge = match &code {
        Some(code) => Some(resolve_code(&state, &merchant.id, code).await?),
        None => None,
    };
    let new = NewPayment {
        merchant_id: merchant.id.clone(),
        currency,
        items: req.items,
        amount: req.amount,
        customer: req.customer,
        code: charge,
        description: req.description,
        metadata,
        expires_in_seconds: req.expires_in,
        capture,
        capture_within_seconds: req.capture_within,
        policy: state.settings.policy.clone(),
        qr: state.settings.qr.clone(),
    };
    let written = state.store.create_payment(new, idem).await?;
    Ok(respond(written, StatusCode::CREATED))
}

/// An amount (a positive one), a cart (of valid lines), or both (then checked against
/// each other in the creating transaction).
fn check_what_is_paid(req: &CreatePayment) -> Result<(), Error> {
    if let Some(amount) = req.amount {
        money::check_amount(amount, "amount")?;
    }
    match &req.items {
        Some(items) => pocket_core::pricing::check_lines(items),
        None if req.amount.is_none() => Err(Error::missing("amount")),
        None => Ok(()),
    }
}

/// `capture`: automatic unless the merchant asks for a hold.
fn capture_of(capture: Option<&str>) -> Result<CaptureMethod, Error> {
    match capture {
        None => Ok(CaptureMethod::Automatic),
        Some(s) => CaptureMethod::parse(s)
            .ok_or_else(|| Error::invalid("capture", "`capture` is \"automatic\" or \"manual\".")),
    }
}

/// The device showing `code`, unless this merchant has sent too many codes no device
/// shows (`429`). A code no device shows counts against that bound and goes on to the
/// store as unknown, which refuses it (`400 payment_code_invalid`) where it refuses a
/// used or expired one: after every other check of the request, so no other answer
/// tells a live code from a dead one. (A code found here and refused at commit — used,
/// revoked since, too old — does not count: a double scan never holds up a till.)
async fn resolve_code(
    state: &AppState,
    merchant_id: &str,
    code: &PaymentCode,
) -> ApiResult<ShownCode> {
    let now = state.store.now_ms();
    state.code_guesses.begin(merchant_id, now)?;
    match state.codes.find(state.store.as_ref(), code).await? {
        Some(charge) => {
            state.code_guesses.found(merchant_id, now);
            Ok(ShownCode::Device(charge))
        }
        None => Ok(ShownCode::Unknown),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetPayment {
    wait: Option<String>,
}

#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = String, Path), ("wait" = Option<u64>, Query, description = "seconds (≤ 60) to wait while the payment is pending")),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody)), security(("secret_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<PaymentId>,
    query: Result<Query<GetPayment>, QueryRejection>,
) -> ApiResult<Json<Payment>> {
    let Ok(Query(q)) = query else {
        return Err(Error::invalid("query", "The only query parameter is `wait`.").into());
    };
    let wait = match q.wait {
        None => 0,
        Some(w) => w
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= MAX_WAIT_SECONDS)
            .ok_or_else(|| {
                Error::invalid(
                    "wait",
                    format!("`wait` must be 0 to {MAX_WAIT_SECONDS} seconds."),
                )
            })?,
    };
    let p = own_payment(&state, &merchant.id, &id).await?;
    if wait == 0 {
        return Ok(Json(p));
    }
    let p = wait_while_pending(&state, id.as_str(), wait, &merchant.key_digest)
        .await?
        .ok_or_else(|| Error::not_found("payment", id.as_str()))?;
    Ok(Json(p))
}

#[utoipa::path(get, path = "/v1/payments", tag = "payments",
    params(("status" = Option<String>, Query), ("customer" = Option<String>, Query, description = "A `cus_` id or a phone number (typed the local way too): that customer's payments"),
           ("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query)),
    responses((status = 200, description = "A list of payments", body = Page<Payment>), (status = 400, body = ErrorBody), (status = 404, description = "`starting_after` names nothing in this list", body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    q: ListQuery,
) -> ApiResult<Response> {
    let status = status_filter(&q)?;
    let page = page(&q, "pay")?;
    let owner = owner_of(&state, merchant.id, q.customer.as_deref())?;
    Ok(Json(state.store.list_payments(owner, status, page).await?).into_response())
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Cancel {}

#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "payments", params(("id" = String, Path)),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<PaymentId>,
    key: IdempotencyKey,
    body: Body<Cancel>,
) -> ApiResult<Response> {
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::OK);
    let written = state
        .store
        .cancel(id.into_string(), merchant.id, idem)
        .await?;
    Ok(respond(written, StatusCode::OK))
}

#[utoipa::path(post, path = "/v1/payments/{id}/remind", tag = "payments", params(("id" = String, Path)),
    request_body = Cancel,
    responses((status = 200, description = "Sent to the customer's wallet again", body = Payment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("secret_key" = [])))]
/// Sends a pending request to its customer's wallet again: the wallet opens it again.
pub async fn remind(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<PaymentId>,
    key: IdempotencyKey,
    body: Body<Cancel>,
) -> ApiResult<Response> {
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::OK);
    let written = state
        .store
        .remind(id.into_string(), merchant.id, idem)
        .await?;
    Ok(respond(written, StatusCode::OK))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CapturePayment {
    /// Omitted: all that was authorized. Less: the rest is released at once.
    pub amount: Option<i64>,
}

#[utoipa::path(post, path = "/v1/payments/{id}/capture", tag = "payments", params(("id" = String, Path)),
    request_body = CapturePayment,
    responses((status = 200, body = Payment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn capture(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<PaymentId>,
    key: IdempotencyKey,
    body: Body<CapturePayment>,
) -> ApiResult<Response> {
    if let Some(a) = body.value.amount {
        money::check_amount(a, "amount")?;
    }
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::OK);
    let written = state
        .store
        .capture(id.into_string(), merchant.id, body.value.amount, idem)
        .await?;
    Ok(respond(written, StatusCode::OK))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// Omitted: everything not yet refunded.
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/payments/{id}/refunds", tag = "payments", params(("id" = String, Path)),
    request_body = CreateRefund,
    responses((status = 201, body = Refund), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn refund(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<PaymentId>,
    key: IdempotencyKey,
    body: Body<CreateRefund>,
) -> ApiResult<Response> {
    let req = body.value;
    if let Some(a) = req.amount {
        money::check_amount(a, "amount")?;
    }
    validate::optional_text(req.reason.as_deref(), "reason", validate::MAX_REASON_CHARS)?;
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::CREATED);
    let written = state
        .store
        .refund(id.into_string(), merchant.id, req.amount, req.reason, idem)
        .await?;
    Ok(respond(written, StatusCode::CREATED))
}

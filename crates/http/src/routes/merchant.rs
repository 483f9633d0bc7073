//! Merchant endpoints besides payments: the catalog, the balance and its movements,
//! the events list, and rolling its own key.

use super::{no_filters, page};
use crate::AppState;
use crate::auth::MerchantCaller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Body, ListQuery, Path};
use crate::idem::{IdempotencyKey, respond};
use crate::issued::{RollKey, RolledKey, roll};
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::ledger::AccountKind;
use pocket_core::pricing::{Product, Sku, check_sku};
use pocket_core::{Currency, Error, money};
use pocket_store::ProductPatch;
use pocket_store::model::{Balance, Event, Page, Takings, TakingsQuery, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    pub sku: String,
    pub name: String,
    pub unit_amount: i64,
    pub currency: String,
    pub active: Option<bool>,
}

#[utoipa::path(post, path = "/v1/products", tag = "merchant", request_body = CreateProduct,
    responses((status = 201, body = Product), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_product(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    key: IdempotencyKey,
    body: Body<CreateProduct>,
) -> ApiResult<Response> {
    let req = body.value;
    check_sku(&req.sku, "sku")?;
    validate::text(&req.name, "name", validate::MAX_NAME_CHARS)?;
    let product = Product {
        object: "product",
        unit_amount: money::check_amount(req.unit_amount, "unit_amount")?,
        currency: Currency::parse(&req.currency, "currency")?,
        sku: req.sku,
        name: req.name,
        active: req.active.unwrap_or(true),
    };
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::CREATED);
    let written = state
        .store
        .create_product(merchant.id, product, idem)
        .await?;
    Ok(respond(written, StatusCode::CREATED))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    pub name: Option<String>,
    pub unit_amount: Option<i64>,
    pub active: Option<bool>,
}

#[utoipa::path(post, path = "/v1/products/{sku}", tag = "merchant", params(("sku" = String, Path)),
    request_body = UpdateProduct,
    responses((status = 200, body = Product), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn update_product(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(sku): Path<Sku>,
    key: IdempotencyKey,
    body: Body<UpdateProduct>,
) -> ApiResult<Response> {
    let req = body.value;
    if let Some(name) = &req.name {
        validate::text(name, "name", validate::MAX_NAME_CHARS)?;
    }
    let patch = ProductPatch {
        name: req.name,
        unit_amount: req
            .unit_amount
            .map(|a| money::check_amount(a, "unit_amount"))
            .transpose()?,
        active: req.active,
    };
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::OK);
    let written = state
        .store
        .update_product(merchant.id, sku.into_string(), patch, idem)
        .await?;
    Ok(respond(written, StatusCode::OK))
}

#[utoipa::path(get, path = "/v1/products", tag = "merchant",
    params(("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query, description = "a sku")),
    responses((status = 200, description = "A list of products", body = Page<Product>), (status = 404, description = "`starting_after` names nothing in this list", body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list_products(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    q: ListQuery,
) -> ApiResult<Response> {
    no_filters(&q)?;
    let page = page(&q, "")?;
    Ok(Json(state.store.list_products(merchant.id, page).await?).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Balances {
    pub balances: Vec<Balance>,
}

#[utoipa::path(get, path = "/v1/balance", tag = "merchant",
    responses((status = 200, body = Balances)), security(("secret_key" = [])))]
pub async fn balance(
    State(state): State<AppState>,
    merchant: MerchantCaller,
) -> ApiResult<Json<Balances>> {
    let balances = state
        .store
        .balances(AccountKind::Merchant, merchant.id)
        .await?;
    Ok(Json(Balances { balances }))
}

#[utoipa::path(get, path = "/v1/balance/transactions", tag = "merchant",
    params(("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query)),
    responses((status = 200, description = "A list of transactions", body = Page<Transaction>), (status = 404, description = "`starting_after` names nothing in this list", body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn balance_transactions(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    q: ListQuery,
) -> ApiResult<Response> {
    no_filters(&q)?;
    let page = page(&q, "txn")?;
    let list = state
        .store
        .transactions(AccountKind::Merchant, merchant.id, page)
        .await?;
    Ok(Json(list).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakingsParams {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
    utc_offset: Option<String>,
}

/// Furthest a day may be offset from UTC, in minutes (UTC−12:00 to UTC+14:00).
const MAX_UTC_OFFSET_MINUTES: i64 = 14 * 60;

impl TakingsParams {
    /// The question, checked: `from` before `to` (default now), at most
    /// [`TakingsQuery::MAX_INTERVALS`] intervals.
    fn check(self, now_ms: i64) -> Result<TakingsQuery, Error> {
        let from_ms =
            validate::timestamp(&self.from.ok_or_else(|| Error::missing("from"))?, "from")?;
        let to_ms = match self.to {
            Some(t) => validate::timestamp(&t, "to")?,
            None => now_ms,
        };
        if to_ms <= from_ms {
            return Err(Error::invalid("to", "`to` must be later than `from`."));
        }
        let interval_ms = match self.interval.as_deref() {
            None | Some("day") => TakingsQuery::DAY_MS,
            Some("hour") => TakingsQuery::HOUR_MS,
            Some(_) => {
                return Err(Error::invalid(
                    "interval",
                    "`interval` may be `hour` or `day`.",
                ));
            }
        };
        let utc_offset_ms = match self.utc_offset {
            None => 0,
            Some(m) => m
                .parse::<i64>()
                .ok()
                .filter(|m| m.abs() <= MAX_UTC_OFFSET_MINUTES)
                .ok_or_else(|| {
                    Error::invalid("utc_offset", format!("`utc_offset` must be minutes east of UTC, -{MAX_UTC_OFFSET_MINUTES} to {MAX_UTC_OFFSET_MINUTES}."))
                })?
                * 60_000,
        };
        let q = TakingsQuery {
            from_ms,
            to_ms,
            interval_ms,
            utc_offset_ms,
        };
        if q.intervals() > TakingsQuery::MAX_INTERVALS {
            return Err(Error::invalid(
                "from",
                format!(
                    "The period spans more than {} intervals; ask for a shorter one or by day.",
                    TakingsQuery::MAX_INTERVALS
                ),
            ));
        }
        Ok(q)
    }
}

#[utoipa::path(get, path = "/v1/balance/takings", tag = "merchant",
    params(("from" = String, Query, description = "RFC 3339: where the period begins"),
           ("to" = Option<String>, Query, description = "RFC 3339: where it ends (excluded); default now"),
           ("interval" = Option<String>, Query, description = "`day` (default) or `hour`"),
           ("utc_offset" = Option<i32>, Query, description = "minutes east of UTC where days begin, -840 to 840; default 0")),
    responses((status = 200, description = "What reached the balance through sales in the period", body = Takings),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("secret_key" = [])))]
/// What reached the merchant's balance through sales: payments in (holds as captured),
/// refunds out, per currency and interval — summed from the ledger by the server.
pub async fn takings(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    query: Result<axum::extract::Query<TakingsParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Takings>> {
    let params = query
        .map_err(|_| {
            Error::invalid(
                "query",
                "Expected `from` and optionally `to`, `interval` and `utc_offset`.",
            )
        })?
        .0;
    let q = params.check(state.store.now_ms())?;
    Ok(Json(state.store.takings(merchant.id, q).await?))
}

#[utoipa::path(get, path = "/v1/events", tag = "merchant",
    params(("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query)),
    responses((status = 200, description = "A list of events", body = Page<Event>), (status = 404, description = "`starting_after` names nothing in this list", body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    q: ListQuery,
) -> ApiResult<Response> {
    no_filters(&q)?;
    let page = page(&q, "evt")?;
    Ok(Json(state.store.list_events(merchant.id, page).await?).into_response())
}

#[utoipa::path(post, path = "/v1/keys", tag = "merchant",
    request_body = RollKey,
    responses((status = 201, body = RolledKey), (status = 400, body = ErrorBody),
              (status = 409, description = "`key_expiring`: the calling key is itself being retired", body = ErrorBody)),
    security(("secret_key" = [])))]
/// The merchant rolls its own key (the console's Developers page).
pub async fn roll_own_key(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    key: IdempotencyKey,
    body: Body<RollKey>,
) -> ApiResult<Response> {
    // Idempotency is the calling key's own: another key of the same merchant repeating
    // the Idempotency-Key learns nothing.
    let caller = format!("key:{}", merchant.key_digest);
    let by_key = Some(merchant.key_digest.clone());
    roll(&state, merchant.id, &caller, by_key, &key, body).await
}

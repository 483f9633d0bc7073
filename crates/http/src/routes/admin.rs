//! Operator endpoints: merchants, top-ups from the bank, the ledger audit.

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Body;
use crate::idem::{IdempotencyKey, precheck, replay, respond};
use crate::secrets::issue_secret;
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::{Currency, Error, money};
use pocket_store::ids::secret_digest;
use pocket_store::model::{LedgerReport, Merchant, Topup, Written};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The caller name under which operator idempotency keys are kept.
const ADMIN: &str = "admin";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchant {
    pub name: String,
    /// Webhooks are not available in this version; sending this is refused.
    pub webhook_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedMerchant {
    #[serde(flatten)]
    pub merchant: Merchant,
    /// Shown only in this response.
    pub secret_key: String,
}

/// Answers a merchant creation, fresh or replayed, with its (derived) secret key.
fn merchant_response(merchant: Merchant, secret_key: String) -> Response {
    (
        StatusCode::CREATED,
        Json(CreatedMerchant {
            merchant,
            secret_key,
        }),
    )
        .into_response()
}

#[utoipa::path(post, path = "/v1/admin/merchants", tag = "operator",
    request_body = CreateMerchant,
    responses((status = 201, body = CreatedMerchant), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn create_merchant(
    State(state): State<AppState>,
    _: Admin,
    key: IdempotencyKey,
    body: Body<CreateMerchant>,
) -> ApiResult<Response> {
    let req = body.value;
    validate::text(&req.name, "name", validate::MAX_NAME_CHARS)?;
    if req.webhook_url.is_some() {
        return Err(Error::invalid(
            "webhook_url",
            "Webhook endpoints are not available in this version of Pocket yet.",
        )
        .into());
    }
    let idem = key.for_caller(ADMIN, &body.raw, StatusCode::CREATED);
    let secret_key = issue_secret(&state.settings.server_key, "sk", idem.as_ref());
    if let Some(stored) = precheck(&state, idem.as_ref()).await? {
        return Ok(with_secret(stored, "secret_key", &secret_key));
    }
    match state
        .store
        .create_merchant(req.name, secret_digest(&secret_key), idem)
        .await?
    {
        Written::Fresh(m) => Ok(merchant_response(m, secret_key)),
        Written::Replayed(stored) => Ok(with_secret(stored, "secret_key", &secret_key)),
    }
}

/// A replayed response whose stored body lacks its secret (secrets are never
/// stored): the secret, derived again from the same idempotency record, is put back.
pub(crate) fn with_secret(
    stored: pocket_store::model::StoredResponse,
    field: &str,
    secret: &str,
) -> Response {
    let mut stored = stored;
    if let Ok(serde_json::Value::Object(mut o)) =
        serde_json::from_str::<serde_json::Value>(&stored.body)
    {
        o.insert(
            field.to_string(),
            serde_json::Value::String(secret.to_string()),
        );
        stored.body = serde_json::Value::Object(o).to_string();
    }
    replay(stored)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopup {
    /// A customer id (`cus_…`) or an E.164 phone number.
    pub customer: String,
    pub amount: i64,
    pub currency: String,
}

#[utoipa::path(post, path = "/v1/admin/topups", tag = "operator",
    request_body = CreateTopup,
    responses((status = 201, body = Topup), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn create_topup(
    State(state): State<AppState>,
    _: Admin,
    key: IdempotencyKey,
    body: Body<CreateTopup>,
) -> ApiResult<Response> {
    let req = body.value;
    validate::customer_ref(&req.customer, "customer")?;
    let currency = Currency::parse(&req.currency, "currency")?;
    let amount = money::check_amount(req.amount, "amount")?;
    let idem = key.for_caller(ADMIN, &body.raw, StatusCode::CREATED);
    let written = state
        .store
        .topup(req.customer, amount, currency, "operator", idem)
        .await?;
    Ok(respond(written, StatusCode::CREATED))
}

#[utoipa::path(get, path = "/v1/admin/ledger", tag = "operator",
    responses((status = 200, body = LedgerReport), (status = 401, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn ledger(State(state): State<AppState>, _: Admin) -> ApiResult<Json<LedgerReport>> {
    Ok(Json(state.store.ledger_report().await?))
}

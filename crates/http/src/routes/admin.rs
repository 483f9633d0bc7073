//! Operator endpoints: merchants, top-ups from the bank, the ledger audit.

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::extract::ListQuery;
use crate::extract::Path;
use crate::idem::{IdempotencyKey, respond};
use crate::issued::CreatedWebhookEndpoint;
use crate::issued::{RollKey, RolledKey, answer_with_new_key, roll};
use crate::routes::{no_filters, page};
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::id::MerchantId;
use pocket_core::ledger::AccountKind;
use pocket_core::{Currency, Error, ErrorKind, money};
use pocket_store::model::{Balance, BankOperation, LedgerReport, Merchant, Page, Topup};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::ADMIN;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchant {
    pub name: String,
    /// Creates a webhook endpoint for every event type at this URL.
    pub webhook_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedMerchant {
    #[serde(flatten)]
    pub merchant: Merchant,
    /// Shown only in this response.
    pub secret_key: String,
    /// Present when `webhook_url` was given; its `secret` is shown only here.
    pub webhook_endpoint: Option<CreatedWebhookEndpoint>,
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
    if let Some(url) = &req.webhook_url {
        crate::validate::check_webhook_url(&state, url, "webhook_url")?;
    }
    answer_with_new_key(&state, &key, &body.raw, ADMIN, |digest, idem| {
        state
            .store
            .create_merchant(req.name, digest, req.webhook_url, idem)
    })
    .await
}

#[utoipa::path(get, path = "/v1/admin/merchants", tag = "operator",
    params(("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query)),
    responses((status = 200, description = "Every merchant, newest first (keys are never listed)", body = Page<Merchant>),
              (status = 400, body = ErrorBody), (status = 404, description = "`starting_after` names nothing in this list", body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn list_merchants(
    State(state): State<AppState>,
    _: Admin,
    q: ListQuery,
) -> ApiResult<Response> {
    no_filters(&q)?;
    let page = page(&q, "mer")?;
    Ok(Json(state.store.list_merchants(page).await?).into_response())
}

/// A customer as the operator sees it: who, and what the wallet holds.
#[derive(Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    #[schema(value_type = String, example = "customer")]
    pub object: &'static str,
    pub phone: String,
    pub name: String,
    pub balances: Vec<Balance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    phone: String,
}

#[utoipa::path(get, path = "/v1/admin/customers", tag = "operator",
    params(("phone" = String, Query, description = "A phone number: E.164, or as typed locally (`138 0013 8000`)")),
    responses((status = 200, description = "The customer with this phone number (an empty list when there is none)", body = Page<CustomerView>),
              (status = 400, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn find_customers(
    State(state): State<AppState>,
    _: Admin,
    query: Result<axum::extract::Query<CustomerQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Page<CustomerView>>> {
    let phone = query
        .map_err(|_| Error::invalid("phone", "Expected `phone`, an E.164 phone number."))?
        .0
        .phone;
    let phone = validate::typed_phone(&phone, "phone", &state.settings.qr.place.country)?;
    let mut found = Vec::new();
    if let Some(pin_state) = state.store.pin_state_by_phone(phone).await? {
        let c = pin_state.customer;
        let balances = state
            .store
            .balances(AccountKind::Wallet, c.id.clone())
            .await?;
        found.push(CustomerView {
            id: c.id,
            object: "customer",
            phone: c.phone,
            name: c.name,
            balances,
        });
    }
    Ok(Json(Page::new(found, 1)))
}

#[utoipa::path(post, path = "/v1/admin/merchants/{id}/keys", tag = "operator", params(("id" = String, Path)),
    request_body = RollKey,
    responses((status = 201, body = RolledKey), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn roll_key(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<MerchantId>,
    key: IdempotencyKey,
    body: Body<RollKey>,
) -> ApiResult<Response> {
    roll(&state, id.into_string(), ADMIN, None, &key, body).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopup {
    /// A customer id (`cus_…`) or a phone number (E.164, or as typed locally).
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
    let mut req = body.value;
    req.customer =
        validate::customer_ref(&req.customer, "customer", &state.settings.qr.place.country)?;
    let currency = Currency::parse(&req.currency, "currency")?;
    let amount = money::check_amount(req.amount, "amount")?;
    let idem = key.for_caller(ADMIN, &body.raw, StatusCode::CREATED);
    let written = state
        .store
        .topup(req.customer, amount, currency, "operator", idem)
        .await?;
    Ok(respond(written, StatusCode::CREATED))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    audit: Option<String>,
}

#[utoipa::path(get, path = "/v1/admin/ledger", tag = "operator",
    params(("audit" = Option<String>, Query, description = "`full` reads and replays the whole book (slow on a big one); by default the running totals, kept and checked with every transfer, are reported")),
    responses((status = 200, body = LedgerReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn ledger(
    State(state): State<AppState>,
    _: Admin,
    query: Result<axum::extract::Query<LedgerQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<LedgerReport>> {
    let bad = || Error::invalid("audit", "`audit` may only be `full` or `running_totals`.");
    let full = match query.map_err(|_| bad())?.0.audit.as_deref() {
        None | Some("running_totals") => false,
        Some("full") => true,
        Some(_) => return Err(bad().into()),
    };
    Ok(Json(state.store.ledger_report(full).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationQuery {
    connector: Option<String>,
    date: Option<String>,
    format: Option<String>,
}

/// A statement the bank did not give (`503 connector_unavailable`), or gave malformed
/// (`503 statement_invalid`: refused whole, the reason in the message).
fn statement_refused(e: pocket_connectors::ConnectorError) -> ApiError {
    use pocket_connectors::ConnectorError;
    match e {
        ConnectorError::Invalid { why } | ConnectorError::Disagrees { why } => {
            tracing::error!(%why, "a statement was refused");
            ApiError(Error::new(
                ErrorKind::Unavailable,
                "statement_invalid",
                format!("The bank's statement was refused as a whole: {why}."),
            ))
        }
        _ => ApiError(Error::new(
            ErrorKind::Unavailable,
            "connector_unavailable",
            "The bank did not give its statement; retry after a moment.",
        )),
    }
}

/// Pocket's side of a day's reconciliation: its operations as statement lines (a
/// payout `paid` is the bank's `succeeded`), and the bank answers it refused.
fn our_lines(
    mine: Vec<BankOperation>,
) -> (
    Vec<pocket_connectors::reconcile::Line>,
    Vec<pocket_connectors::reconcile::RefusedAnswer>,
) {
    use pocket_connectors::reconcile::{Line, RefusedAnswer};
    let refused = mine
        .iter()
        .filter_map(|op| {
            op.refused_answer.clone().map(|why| RefusedAnswer {
                operation_id: op.id.clone(),
                why,
            })
        })
        .collect();
    let ours = mine
        .into_iter()
        .map(|op| Line {
            operation_id: op.id,
            amount: op.amount,
            currency: op.currency.code().to_string(),
            status: if op.status == "paid" {
                "succeeded".into()
            } else {
                op.status
            },
        })
        .collect();
    (ours, refused)
}

#[utoipa::path(get, path = "/v1/admin/reconciliation", tag = "operator",
    params(("connector" = String, Query), ("date" = String, Query, description = "YYYY-MM-DD (UTC)"),
           ("format" = Option<String>, Query, description = "`json` (default) or `csv`")),
    responses((status = 200, body = pocket_connectors::reconcile::Report), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn reconciliation(
    State(state): State<AppState>,
    _: Admin,
    query: Result<
        axum::extract::Query<ReconciliationQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> ApiResult<Response> {
    use pocket_connectors::reconcile::{line_of, reconcile};
    let q = query
        .map_err(|_| {
            Error::invalid(
                "query",
                "Expected `connector`, `date` and optionally `format`.",
            )
        })?
        .0;
    let name = q.connector.ok_or_else(|| Error::missing("connector"))?;
    let date = q.date.ok_or_else(|| Error::missing("date"))?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(Error::invalid("format", "`format` may be `json` or `csv`.").into()),
    };
    let (from, to) = pocket_core::time::utc_day_range(&date)
        .ok_or_else(|| Error::invalid("date", "`date` must be YYYY-MM-DD."))?;
    let connector = state.connectors.pick(Some(&name)).ok_or_else(|| {
        Error::invalid(
            "connector",
            format!("No connector called '{name}' is configured."),
        )
    })?;
    let statement = connector
        .statement(&date)
        .await
        .map_err(statement_refused)?;
    let mine = state
        .store
        .bank_operations_between(name.clone(), from, to)
        .await?;
    let (ours, refused) = our_lines(mine);
    let theirs = statement.iter().map(line_of).collect();
    let report = reconcile(&name, &date, ours, theirs, refused);
    if csv {
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report.csv(),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

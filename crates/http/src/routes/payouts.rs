//! Merchants' bank accounts and payouts: money out of a merchant balance through a
//! connector, two-phase like a withdrawal (reserved at once, posted or released when
//! the bank answers).

use crate::AppState;
use crate::auth::MerchantCaller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::extract::Path;
use crate::idem::{IdempotencyKey, precheck, replay, respond};
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use pocket_core::id::PayoutId;
use pocket_core::ledger::AccountKind;
use pocket_core::{Currency, Error, ErrorKind, money};
use pocket_store::model::{
    BankAccount, BankOperation, NewBankAccount, NewBankOperation, Page, Written,
};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub holder_name: String,
    /// 6 to 34 letters and digits (spaces allowed between groups).
    pub account_number: String,
    pub bank_code: String,
    pub currency: String,
    /// Which connector pays out to it; the first configured for the currency by default.
    pub connector: Option<String>,
}

fn account_number(raw: &str) -> Result<String, Error> {
    let cleaned: String = raw.chars().filter(|c| *c != ' ').collect();
    if (6..=34).contains(&cleaned.len()) && cleaned.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(cleaned.to_ascii_uppercase())
    } else {
        Err(Error::invalid(
            "account_number",
            "`account_number` must be 6 to 34 letters and digits.",
        ))
    }
}

#[utoipa::path(post, path = "/v1/bank_accounts", tag = "merchant", request_body = NewAccount,
    responses((status = 201, body = BankAccount), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_account(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    key: IdempotencyKey,
    body: Body<NewAccount>,
) -> ApiResult<Response> {
    let req = body.value;
    validate::text(&req.holder_name, "holder_name", validate::MAX_NAME_CHARS)?;
    let number = account_number(&req.account_number)?;
    if req.bank_code.is_empty()
        || req.bank_code.len() > 20
        || !req.bank_code.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(Error::invalid(
            "bank_code",
            "`bank_code` must be 1 to 20 letters and digits.",
        )
        .into());
    }
    let currency = Currency::parse(&req.currency, "currency")?;
    let connector = match req.connector.as_deref() {
        Some(name) => state.connectors.pick(Some(name)),
        None => state
            .connectors
            .names()
            .into_iter()
            .find(|n| state.connectors.moves(n, currency.code()))
            .and_then(|n| state.connectors.pick(Some(&n))),
    }
    .ok_or_else(|| {
        ApiError(Error::invalid(
            "connector",
            "No connector configured here pays out in this currency.",
        ))
    })?;
    if !state.connectors.moves(connector.name(), currency.code()) {
        return Err(ApiError(
            Error::new(
                ErrorKind::InvalidRequest,
                "currency_unsupported",
                format!("This connector does not pay out in {}.", currency.code()),
            )
            .with_param("currency"),
        ));
    }
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::CREATED);
    let new = NewBankAccount {
        connector: connector.name().to_string(),
        holder_name: req.holder_name,
        account_number: number,
        bank_code: req.bank_code,
        currency,
    };
    let written = state.store.add_bank_account(merchant.id, new, idem).await?;
    Ok(respond(written, StatusCode::CREATED))
}

#[utoipa::path(get, path = "/v1/bank_accounts", tag = "merchant",
    responses((status = 200, body = Page<BankAccount>)), security(("secret_key" = [])))]
pub async fn list_accounts(
    State(state): State<AppState>,
    merchant: MerchantCaller,
) -> ApiResult<Json<Page<BankAccount>>> {
    let data = state.store.list_bank_accounts(merchant.id).await?;
    let n = data.len();
    Ok(Json(Page::new(data, n)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayout {
    pub amount: i64,
    pub currency: String,
    /// The bank account (`ba_…`) to pay out to.
    pub bank_account: String,
}

/// Without a final answer from the bank by then, Pocket asks it where things stand.
const ANSWER_WITHIN_MS: i64 = 10_000;

#[utoipa::path(post, path = "/v1/payouts", tag = "merchant", request_body = NewPayout,
    responses((status = 201, body = BankOperation), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_payout(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    key: IdempotencyKey,
    body: Body<NewPayout>,
) -> ApiResult<Response> {
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::CREATED);
    if let Some(stored) = precheck(&state, idem.as_ref()).await? {
        return Ok(replay(stored));
    }
    let req = body.value;
    let currency = Currency::parse(&req.currency, "currency")?;
    let amount = money::check_amount(req.amount, "amount")?;
    pocket_core::id::check(&req.bank_account, "ba", "bank_account")?;
    let account = match state.store.bank_account(req.bank_account.clone()).await? {
        Some((a, _, _)) if a.merchant == merchant.id => a,
        _ => {
            return Err(Error::not_found("bank_account", &req.bank_account)
                .with_param("bank_account")
                .into());
        }
    };
    if account.currency != currency {
        return Err(Error::invalid("currency", "The bank account is in another currency.").into());
    }
    let new = NewBankOperation {
        id: pocket_store::ids::new_id("po"),
        kind: "payout",
        connector: account.connector,
        owner_kind: AccountKind::Merchant,
        owner: merchant.id,
        card: None,
        bank_account: Some(account.id),
        amount,
        currency,
        answer_within_ms: ANSWER_WITHIN_MS,
    };
    // The rest runs to its end even if the client hangs up: the bank is asked once.
    let store = state.store.clone();
    let connectors = state.connectors.clone();
    crate::pins::to_completion(async move {
        let op = match store.begin_bank_operation(new, None, idem.clone()).await? {
            Written::Replayed(stored) => return Ok(replay(stored)),
            Written::Fresh(op) => op,
        };
        pocket_connectors::operations::send(store.as_ref(), &connectors, &op).await;
        let now = store.bank_operation(op.id.clone()).await?.unwrap_or(op);
        Ok(crate::idem::answer_recorded(store.as_ref(), idem, StatusCode::CREATED, &now).await)
    })
    .await
}

#[utoipa::path(get, path = "/v1/payouts/{id}", tag = "merchant", params(("id" = String, Path)),
    responses((status = 200, body = BankOperation), (status = 404, body = ErrorBody)), security(("secret_key" = [])))]
pub async fn get_payout(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<PayoutId>,
) -> ApiResult<Json<BankOperation>> {
    match state.store.bank_operation(id.to_string()).await? {
        Some(op) if op.owner == merchant.id && op.object == "payout" => Ok(Json(op)),
        _ => Err(Error::not_found("payout", id.as_str()).into()),
    }
}

#[utoipa::path(get, path = "/v1/payouts", tag = "merchant",
    responses((status = 200, body = Page<BankOperation>)), security(("secret_key" = [])))]
pub async fn list_payouts(
    State(state): State<AppState>,
    merchant: MerchantCaller,
) -> ApiResult<Json<Page<BankOperation>>> {
    let ops = state
        .store
        .list_bank_operations(merchant.id, "payout", 101)
        .await?;
    Ok(Json(Page::new(ops, 100)))
}

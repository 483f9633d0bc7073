//! Money in and out of wallets through banks: top-ups (from a bound card, or by the
//! wallet itself on a sandbox server) and withdrawals to a card. Each card operation
//! is written first (a withdrawal reserves its amount in that transaction), then its
//! connector is asked; an answer that is not final yet is looked for again by the
//! operations poller (`pocket_connectors::operations`), on any node, after a restart.

use crate::AppState;
use crate::auth::CustomerCaller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Path};
use crate::idem::{IdempotencyKey, respond};
use crate::limits::ClientIp;
use crate::pins::{check_holder_pin, guarded_precheck, holder_subject, to_completion};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::id::{TopupId, WithdrawalId};
use pocket_core::ledger::AccountKind;
use pocket_core::{Currency, Error, ErrorKind, money};
use pocket_store::model::{BankOperation, NewBankOperation, Page, Topup, Written};
use serde::Deserialize;
use utoipa::ToSchema;

/// Without a final answer from the bank by then, Pocket asks it where things stand.
const ANSWER_WITHIN_MS: i64 = 10_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletTopup {
    pub amount: i64,
    pub currency: String,
    /// A bound card (`card_…`) to take the money from; without it, only a sandbox
    /// server lets a wallet top itself up.
    pub card: Option<String>,
    /// The wallet's PIN (with `card`).
    pub pin: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    pub amount: i64,
    pub currency: String,
    /// The bound card (`card_…`) to send the money to.
    pub card: String,
    pub pin: String,
}

/// A card operation as the wallet asked for it: a top-up from the card or a
/// withdrawal to it, its figures as sent (checked by [`card_operation`]).
struct CardOperation {
    kind: &'static str,
    /// Of its id: `top` or `wd`.
    prefix: &'static str,
    amount: i64,
    currency: String,
    card: String,
    pin: String,
}

/// Begins a card operation for the caller's wallet and asks the bank at once.
async fn card_operation(
    state: AppState,
    ip: ClientIp,
    caller: CustomerCaller,
    key: IdempotencyKey,
    raw: &[u8],
    asked: CardOperation,
) -> ApiResult<Response> {
    let customer = caller.customer;
    let idem = key.for_caller(&customer.id, raw, StatusCode::CREATED);
    let subject = holder_subject(&customer.id);
    if let Some(stored) = guarded_precheck(&state, ip, subject, idem.as_ref()).await? {
        return Ok(crate::idem::replay(stored));
    }
    let currency = Currency::parse(&asked.currency, "currency")?;
    let amount = money::check_amount(asked.amount, "amount")?;
    pocket_core::id::check(&asked.card, "card", "card")?;
    let (found, _) = state
        .store
        .card_token(customer.id.clone(), asked.card.clone())
        .await?
        .ok_or_else(|| Error::not_found("card", &asked.card).with_param("card"))?;
    if !state.connectors.moves(&found.connector, currency.code()) {
        return Err(ApiError(
            Error::new(
                ErrorKind::InvalidRequest,
                "currency_unsupported",
                format!("The bank of this card does not move {}.", currency.code()),
            )
            .with_param("currency"),
        ));
    }
    let attempt = check_holder_pin(&state, ip, &customer, &asked.pin).await?;
    let new = NewBankOperation {
        id: pocket_store::ids::new_id(asked.prefix),
        kind: asked.kind,
        connector: found.connector,
        owner_kind: AccountKind::Wallet,
        owner: customer.id,
        card: Some(asked.card),
        bank_account: None,
        amount,
        currency,
        answer_within_ms: ANSWER_WITHIN_MS,
    };
    let written = state
        .store
        .begin_bank_operation(new, Some(attempt), idem.clone())
        .await?;
    let op = match written {
        Written::Replayed(stored) => return Ok(crate::idem::replay(stored)),
        Written::Fresh(op) => op,
    };
    pocket_connectors::operations::send(state.store.as_ref(), &state.connectors, &op).await;
    // As it stands now: final, or still processing (the poller takes it from here);
    // a replay answers the same.
    let now = state
        .store
        .bank_operation(op.id.clone())
        .await?
        .unwrap_or(op);
    let store = state.store.as_ref();
    Ok(crate::idem::answer_recorded(store, idem, StatusCode::CREATED, &now).await)
}

#[utoipa::path(post, path = "/v1/wallet/topups", tag = "wallet", request_body = WalletTopup,
    responses((status = 201, description = "The top-up: a card top-up (`top_…`, with `status`) or, on a sandbox server without `card`, an instant one", body = BankOperation),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn topup(
    State(state): State<AppState>,
    ip: ClientIp,
    caller: CustomerCaller,
    key: IdempotencyKey,
    body: Body<WalletTopup>,
) -> ApiResult<Response> {
    to_completion(async move {
        let raw = body.raw.clone();
        let req = body.value;
        if let Some(card) = req.card {
            let pin = req.pin.ok_or_else(|| Error::missing("pin"))?;
            let op = CardOperation {
                kind: "topup",
                prefix: "top",
                amount: req.amount,
                currency: req.currency,
                card,
                pin,
            };
            return card_operation(state, ip, caller, key, &raw, op).await;
        }
        if req.pin.is_some() {
            return Err(Error::invalid("pin", "`pin` goes with `card`.").into());
        }
        if !state.settings.sandbox {
            return Err(ApiError(Error::new(
                ErrorKind::Permission,
                "sandbox_only",
                "Wallets can add money themselves only on a server started with --sandbox.",
            )));
        }
        let currency = Currency::parse(&req.currency, "currency")?;
        let amount = money::check_amount(req.amount, "amount")?;
        let idem = key.for_caller(&caller.customer.id, &raw, StatusCode::CREATED);
        let written: Written<Topup> = state
            .store
            .topup(caller.customer.id, amount, currency, "sandbox", idem)
            .await?;
        Ok(respond(written, StatusCode::CREATED))
    })
    .await
}

#[utoipa::path(post, path = "/v1/wallet/withdrawals", tag = "wallet", request_body = Withdrawal,
    responses((status = 201, body = BankOperation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 402, body = ErrorBody), (status = 404, body = ErrorBody), (status = 423, body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn withdraw(
    State(state): State<AppState>,
    ip: ClientIp,
    caller: CustomerCaller,
    key: IdempotencyKey,
    body: Body<Withdrawal>,
) -> ApiResult<Response> {
    to_completion(async move {
        let raw = body.raw.clone();
        let r = body.value;
        let op = CardOperation {
            kind: "withdrawal",
            prefix: "wd",
            amount: r.amount,
            currency: r.currency,
            card: r.card,
            pin: r.pin,
        };
        card_operation(state, ip, caller, key, &raw, op).await
    })
    .await
}

/// One of the caller's operations of `kind`.
async fn own(
    state: &AppState,
    customer_id: &str,
    id: &str,
    kind: &'static str,
) -> ApiResult<Json<BankOperation>> {
    match state.store.bank_operation(id.to_string()).await? {
        Some(op) if op.owner == customer_id && op.object == kind => Ok(Json(op)),
        _ => Err(Error::not_found(kind, id).into()),
    }
}

#[utoipa::path(get, path = "/v1/wallet/topups/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = BankOperation), (status = 404, body = ErrorBody)), security(("session_token" = [])))]
pub async fn get_topup(
    State(state): State<AppState>,
    caller: CustomerCaller,
    Path(id): Path<TopupId>,
) -> ApiResult<Json<BankOperation>> {
    own(&state, &caller.customer.id, id.as_str(), "topup").await
}

#[utoipa::path(get, path = "/v1/wallet/withdrawals/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = BankOperation), (status = 404, body = ErrorBody)), security(("session_token" = [])))]
pub async fn get_withdrawal(
    State(state): State<AppState>,
    caller: CustomerCaller,
    Path(id): Path<WithdrawalId>,
) -> ApiResult<Json<BankOperation>> {
    own(&state, &caller.customer.id, id.as_str(), "withdrawal").await
}

/// Most operations a list shows.
const LIST_LIMIT: usize = 100;

#[utoipa::path(get, path = "/v1/wallet/topups", tag = "wallet",
    responses((status = 200, body = Page<BankOperation>)), security(("session_token" = [])))]
pub async fn list_topups(
    State(state): State<AppState>,
    caller: CustomerCaller,
) -> ApiResult<Json<Page<BankOperation>>> {
    let ops = state
        .store
        .list_bank_operations(caller.customer.id, "topup", LIST_LIMIT + 1)
        .await?;
    Ok(Json(Page::new(ops, LIST_LIMIT)))
}

#[utoipa::path(get, path = "/v1/wallet/withdrawals", tag = "wallet",
    responses((status = 200, body = Page<BankOperation>)), security(("session_token" = [])))]
pub async fn list_withdrawals(
    State(state): State<AppState>,
    caller: CustomerCaller,
) -> ApiResult<Json<Page<BankOperation>>> {
    let ops = state
        .store
        .list_bank_operations(caller.customer.id, "withdrawal", LIST_LIMIT + 1)
        .await?;
    Ok(Json(Page::new(ops, LIST_LIMIT)))
}

/// What a connector tells Pocket when an operation becomes final (the same fields as
/// any answer about an operation, `docs/CONNECTORS.md`).
#[derive(Deserialize, ToSchema)]
pub struct Notification {
    pub operation_id: String,
    /// `charge` or `payout`.
    pub kind: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub decline_code: Option<String>,
}

fn refused_signature() -> ApiError {
    ApiError(Error::new(
        ErrorKind::Authentication,
        "invalid_signature",
        "The notification's Pocket-Connector-Signature is missing, wrong or stale.",
    ))
}

#[utoipa::path(post, path = "/v1/connectors/{name}/notifications", tag = "connectors", params(("name" = String, Path)),
    request_body = Notification,
    responses((status = 200, description = "Recorded (or already known)"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn notification(
    State(state): State<AppState>,
    Path(name): Path<pocket_connectors::ConnectorName>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    raw: axum::body::Bytes,
) -> ApiResult<Response> {
    use pocket_connectors::{ConnectorError, OpStatus, operations, protocol};
    let secret = state
        .connectors
        .secret(name.as_str())
        .ok_or_else(|| Error::not_found("connector", name.as_str()).with_param("name"))?;
    let header = headers.get(protocol::HEADER).and_then(|v| v.to_str().ok());
    let now_s = state.store.now_ms() / 1000;
    protocol::verify_request(secret, header, now_s, "POST", uri.path(), &raw)
        .map_err(|_| refused_signature())?;
    let answer = serde_json::from_slice(&raw)
        .map_err(|_| "not JSON".to_string())
        .and_then(|v| protocol::read_answer(&v))
        .map_err(|why| {
            Error::invalid(
                "body",
                format!("Not a notification of the Pocket Connector Protocol: {why}."),
            )
        })?;
    let op = state
        .store
        .bank_operation(answer.operation_id.clone())
        .await?
        .filter(|op| op.connector == name.as_str())
        .ok_or_else(|| Error::not_found("operation", &answer.operation_id))?;
    match operations::judge(&op, Ok(answer)) {
        Ok(OpStatus::Succeeded) => {
            state.store.apply_bank_answer(op.id, true, None).await?;
        }
        Ok(OpStatus::Failed { decline_code }) => {
            state
                .store
                .apply_bank_answer(op.id, false, Some(decline_code))
                .await?;
        }
        Ok(OpStatus::Pending) => {}
        Err(ConnectorError::Disagrees { why }) | Err(ConnectorError::Invalid { why }) => {
            tracing::error!(operation = %op.id, connector = name.as_str(), %why, "a notification was refused");
            state.store.flag_bank_operation(op.id, why).await?;
            return Err(Error::conflict(
                "notification_mismatch",
                "The kind, amount or currency differs from the operation's.",
            )
            .into());
        }
        Err(_) => return Err(Error::internal().into()),
    }
    Ok(Json(serde_json::json!({"received": true})).into_response())
}

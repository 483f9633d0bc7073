//! Customer (wallet app) endpoints: sign-up and sessions, balances and history,
//! payments addressed to the customer or open, confirm and decline, sandbox top-ups.

use super::{no_status, page, status_filter};
use crate::AppState;
use crate::auth::CustomerCaller;
use crate::device_keys::invalid_signature;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, ListQuery};
use crate::idem::{IdempotencyKey, precheck, respond};
use crate::secrets::{check_pin_format, digest, hash_pin, issue_secret, verify_pin};
use crate::validate;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::ledger::AccountKind;
use pocket_core::payment::{
    Payment, Proof, confirm_message, device_signature_required, pin_required, visible_to,
};
use pocket_core::policy::Authentication;
use pocket_core::time::MS_PER_SECOND;
use pocket_core::{Currency, Error, ErrorKind, money};
use pocket_store::PaymentOwner;
use pocket_store::model::{Balance, Customer, PinState, Topup, Transaction, Written};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Idempotency keys of requests without a caller yet (sign-up, sign-in).
const PUBLIC: &str = "public";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    /// E.164, e.g. `+8613800138000`.
    pub phone: String,
    pub name: String,
    /// Exactly 6 digits.
    pub pin: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    pub customer: Customer,
    /// The wallet session token (`pst_…`), valid 30 days.
    pub token: String,
}

/// `{customer, token}` from the customer record (fresh or stored) and the token.
fn session_body(customer: serde_json::Value, token: &str) -> serde_json::Value {
    serde_json::json!({"customer": customer, "token": token})
}

fn session_response(status: StatusCode, customer: Customer, token: String) -> Response {
    let customer = serde_json::to_value(&customer).unwrap_or(serde_json::Value::Null);
    (status, Json(session_body(customer, &token))).into_response()
}

/// Replays of sign-up and sign-in store only the customer; the token is derived again
/// from the idempotency record, never stored.
fn session_replay(stored: pocket_store::model::StoredResponse, token: &str) -> Response {
    let mut stored = stored;
    if let Ok(customer) = serde_json::from_str(&stored.body) {
        stored.body = session_body(customer, token).to_string();
    }
    crate::idem::replay(stored)
}

#[utoipa::path(post, path = "/v1/wallet/signup", tag = "wallet", request_body = Signup,
    responses((status = 201, body = SessionResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    key: IdempotencyKey,
    body: Body<Signup>,
) -> ApiResult<Response> {
    let req = body.value;
    validate::phone(&req.phone, "phone")?;
    validate::text(&req.name, "name", validate::MAX_NAME_CHARS)?;
    check_pin_format(&req.pin)?;
    let idem = key.for_caller(PUBLIC, &body.raw, StatusCode::CREATED);
    let token = issue_secret(&state.settings.server_key, "pst", idem.as_ref());
    if let Some(stored) = precheck(&state, idem.as_ref()).await? {
        return Ok(session_replay(stored, &token));
    }
    let pin_hash = hash_pin(
        state.settings.pin_hashing,
        state.settings.server_key,
        req.pin,
    )
    .await?;
    let expires_at = state.store.now_ms() + state.settings.session_ttl_seconds * MS_PER_SECOND;
    let session = (digest(&state.settings.server_key, &token), expires_at);
    match state
        .store
        .signup(req.phone, req.name, pin_hash, session, idem)
        .await?
    {
        Written::Fresh(c) => Ok(session_response(StatusCode::CREATED, c, token)),
        Written::Replayed(stored) => Ok(session_replay(stored, &token)),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub phone: String,
    pub pin: String,
}

fn pin_locked(until_ms: i64, now_ms: i64) -> ApiError {
    let minutes = ((until_ms - now_ms) / 60_000).max(1);
    ApiError(Error::new(
        ErrorKind::Locked,
        "pin_locked",
        format!("Too many wrong PINs; the PIN is locked for about {minutes} more minute(s)."),
    ))
}

fn incorrect_pin() -> ApiError {
    ApiError(
        Error::new(
            ErrorKind::Authentication,
            "incorrect_pin",
            "The PIN is not correct.",
        )
        .with_param("pin"),
    )
}

/// The PIN rule shared by sign-in and confirm: refuse while locked, verify (slowly,
/// off the async threads), count a wrong PIN and lock after too many in a row.
pub(crate) async fn check_pin(state: &AppState, who: &PinState, pin: &str) -> ApiResult<()> {
    let now = state.store.now_ms();
    if let Some(until) = who.pin_locked_until.filter(|u| *u > now) {
        return Err(pin_locked(until, now));
    }
    check_pin_format(pin).map_err(|_| incorrect_pin())?;
    if verify_pin(
        state.settings.server_key,
        who.pin_hash.clone(),
        pin.to_string(),
    )
    .await?
    {
        return Ok(());
    }
    let s = &state.settings;
    let locked = state
        .store
        .record_pin_failure(
            who.customer.id.clone(),
            s.pin_max_failures,
            s.pin_lock_seconds * MS_PER_SECOND,
        )
        .await?;
    if locked {
        let now = state.store.now_ms();
        return Err(pin_locked(now + s.pin_lock_seconds * MS_PER_SECOND, now));
    }
    Err(incorrect_pin())
}

#[utoipa::path(post, path = "/v1/wallet/sessions", tag = "wallet", request_body = SignIn,
    responses((status = 201, body = SessionResponse), (status = 401, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    key: IdempotencyKey,
    body: Body<SignIn>,
) -> ApiResult<Response> {
    let req = body.value;
    validate::phone(&req.phone, "phone")?;
    let idem = key.for_caller(PUBLIC, &body.raw, StatusCode::CREATED);
    let token = issue_secret(&state.settings.server_key, "pst", idem.as_ref());
    if let Some(stored) = precheck(&state, idem.as_ref()).await? {
        return Ok(session_replay(stored, &token));
    }
    let Some(who) = state.store.pin_state_by_phone(req.phone).await? else {
        // Same answer (and about the same time) as a wrong PIN: phones are not revealed.
        let _ = hash_pin(
            state.settings.pin_hashing,
            state.settings.server_key,
            req.pin,
        )
        .await;
        return Err(incorrect_pin());
    };
    check_pin(&state, &who, &req.pin).await?;
    let expires_at = state.store.now_ms() + state.settings.session_ttl_seconds * MS_PER_SECOND;
    let session = (digest(&state.settings.server_key, &token), expires_at);
    match state
        .store
        .create_session(who.customer.id, session, idem)
        .await?
    {
        Written::Fresh(c) => Ok(session_response(StatusCode::CREATED, c, token)),
        Written::Replayed(stored) => Ok(session_replay(stored, &token)),
    }
}

#[utoipa::path(delete, path = "/v1/wallet/sessions/current", tag = "wallet",
    responses((status = 204), (status = 401, body = ErrorBody)), security(("session_token" = [])))]
pub async fn sign_out(
    State(state): State<AppState>,
    caller: CustomerCaller,
) -> ApiResult<StatusCode> {
    state.sessions.remove(&caller.token_digest);
    state.store.delete_session(caller.token_digest).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: String,
    pub phone: String,
    pub name: String,
    pub balances: Vec<Balance>,
}

#[utoipa::path(get, path = "/v1/wallet/me", tag = "wallet",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)), security(("session_token" = [])))]
pub async fn me(State(state): State<AppState>, caller: CustomerCaller) -> ApiResult<Json<Me>> {
    let c = caller.customer;
    let balances = state
        .store
        .balances(AccountKind::Wallet, c.id.clone())
        .await?;
    Ok(Json(Me {
        id: c.id,
        phone: c.phone,
        name: c.name,
        balances,
    }))
}

#[utoipa::path(get, path = "/v1/wallet/payments", tag = "wallet",
    params(("status" = Option<String>, Query), ("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query)),
    responses((status = 200, description = "A list of payments"), (status = 400, body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn list_payments(
    State(state): State<AppState>,
    caller: CustomerCaller,
    q: ListQuery,
) -> ApiResult<Response> {
    let status = status_filter(&q)?;
    let page = page(&q, "pay")?;
    let owner = PaymentOwner::Customer(caller.customer.id);
    Ok(Json(state.store.list_payments(owner, status, page).await?).into_response())
}

/// A payment the customer may see: addressed to them, or open.
async fn visible_payment(state: &AppState, customer_id: &str, id: &str) -> ApiResult<Payment> {
    validate::id(id, "pay", "id")?;
    match state.store.payment(id.to_string()).await? {
        Some(p) if visible_to(&p, customer_id) => Ok(p),
        _ => Err(Error::not_found("payment", id).into()),
    }
}

#[utoipa::path(get, path = "/v1/wallet/payments/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody)), security(("session_token" = [])))]
pub async fn get_payment(
    State(state): State<AppState>,
    caller: CustomerCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Payment>> {
    Ok(Json(
        visible_payment(&state, &caller.customer.id, &id).await?,
    ))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// Required when the payment's policy asks for `pin` or `pin_and_device`.
    pub pin: Option<String>,
    /// The registered device key (`dev_…`) that made `signature`; for `pin_and_device`.
    pub device: Option<String>,
    /// base64url of the raw `r‖s` ECDSA P-256 SHA-256 signature over
    /// `pocket-confirm:v1:<payment id>:<amount>:<currency>:<merchant id>:<expires_at>`.
    pub signature: Option<String>,
}

/// Checks the device signature of a `pin_and_device` confirm; returns the device id.
async fn check_device(
    state: &AppState,
    customer_id: &str,
    p: &Payment,
    device: &str,
    signature: &str,
) -> ApiResult<String> {
    let unknown =
        || invalid_signature("This device key is not registered to this wallet, or was revoked.");
    if !pocket_store::ids::is_id(device, "dev") {
        return Err(unknown().into());
    }
    let d = state
        .store
        .device(customer_id.to_string(), device.to_string())
        .await?;
    let d = d.filter(|d| d.revoked_at.is_none()).ok_or_else(unknown)?;
    crate::device_keys::verify(&d.public_key, confirm_message(p).as_bytes(), signature)?;
    Ok(d.id)
}

#[utoipa::path(post, path = "/v1/wallet/payments/{id}/confirm", tag = "wallet", params(("id" = String, Path)),
    request_body = Confirm,
    responses((status = 200, body = Payment), (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: CustomerCaller,
    Path(id): Path<String>,
    key: IdempotencyKey,
    body: Body<Confirm>,
) -> ApiResult<Response> {
    let customer_id = caller.customer.id;
    let idem = key.for_caller(&customer_id, &body.raw, StatusCode::OK);
    if let Some(stored) = precheck(&state, idem.as_ref()).await? {
        return Ok(crate::idem::replay(stored));
    }
    let req = body.value;
    if req.pin.is_none() && req.device.is_none() && req.signature.is_none() {
        // A tap: nothing to verify here. The confirming transaction checks that the
        // payment's policy asks for nothing more (`pin_required` otherwise).
        validate::id(&id, "pay", "id")?;
        let written = state
            .store
            .confirm(id, customer_id, Proof::default(), None, idem)
            .await?;
        return Ok(respond(written, StatusCode::OK));
    }
    let p = visible_payment(&state, &customer_id, &id).await?;
    let auth = p.policy.authentication;
    // Refuse incomplete proofs before spending a PIN attempt on them.
    if auth.needs_pin() && req.pin.is_none() {
        return Err(pin_required().into());
    }
    let device_proof = match (auth, req.device.as_deref(), req.signature.as_deref()) {
        (Authentication::PinAndDevice, Some(device), Some(signature)) => Some((device, signature)),
        (Authentication::PinAndDevice, _, _) => return Err(device_signature_required().into()),
        _ => None,
    };
    let mut proof = Proof::default();
    if let Some(pin) = req.pin.as_deref().filter(|_| auth.needs_pin()) {
        let who = state
            .store
            .pin_state(customer_id.clone())
            .await?
            .ok_or_else(|| Error::not_found("customer", &customer_id))?;
        check_pin(&state, &who, pin).await?;
        proof.pin = true;
    }
    let device = match device_proof {
        Some((device, signature)) => {
            Some(check_device(&state, &customer_id, &p, device, signature).await?)
        }
        None => None,
    };
    proof.device = device.is_some();
    let written = state
        .store
        .confirm(id, customer_id, proof, device, idem)
        .await?;
    Ok(respond(written, StatusCode::OK))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Decline {}

#[utoipa::path(post, path = "/v1/wallet/payments/{id}/decline", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn decline(
    State(state): State<AppState>,
    caller: CustomerCaller,
    Path(id): Path<String>,
    key: IdempotencyKey,
    body: Body<Decline>,
) -> ApiResult<Response> {
    validate::id(&id, "pay", "id")?;
    let idem = key.for_caller(&caller.customer.id, &body.raw, StatusCode::OK);
    let written = state.store.decline(id, caller.customer.id, idem).await?;
    Ok(respond(written, StatusCode::OK))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletTopup {
    pub amount: i64,
    pub currency: String,
}

#[utoipa::path(post, path = "/v1/wallet/topups", tag = "wallet", request_body = WalletTopup,
    responses((status = 201, body = Topup), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn topup(
    State(state): State<AppState>,
    caller: CustomerCaller,
    key: IdempotencyKey,
    body: Body<WalletTopup>,
) -> ApiResult<Response> {
    if !state.settings.sandbox {
        return Err(ApiError(Error::new(
            ErrorKind::Permission,
            "sandbox_only",
            "Wallets can add money themselves only on a server started with --sandbox.",
        )));
    }
    let req = body.value;
    let currency = Currency::parse(&req.currency, "currency")?;
    let amount = money::check_amount(req.amount, "amount")?;
    let idem = key.for_caller(&caller.customer.id, &body.raw, StatusCode::CREATED);
    let written = state
        .store
        .topup(caller.customer.id, amount, currency, "sandbox", idem)
        .await?;
    Ok(respond(written, StatusCode::CREATED))
}

#[utoipa::path(get, path = "/v1/wallet/transactions", tag = "wallet",
    params(("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query)),
    responses((status = 200, description = "A list of transactions", body = [Transaction])),
    security(("session_token" = [])))]
pub async fn transactions(
    State(state): State<AppState>,
    caller: CustomerCaller,
    q: ListQuery,
) -> ApiResult<Response> {
    no_status(&q)?;
    let page = page(&q, "txn")?;
    let list = state
        .store
        .transactions(AccountKind::Wallet, caller.customer.id, page)
        .await?;
    Ok(Json(list).into_response())
}

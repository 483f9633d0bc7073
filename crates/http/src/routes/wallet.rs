//! Customer (wallet app) endpoints: sign-up and sessions, balances and history,
//! payments addressed to the customer or open, confirm and decline, sandbox top-ups.

use super::{no_customer, no_filters, page, status_filter};
use crate::AppState;
use crate::auth::CustomerCaller;
use crate::device_keys::invalid_signature;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Path;
use crate::extract::{Body, ListQuery};
use crate::idem::{IdempotencyKey, precheck, respond};
use crate::limits::ClientIp;
use crate::pins::{
    check_holder_pin, check_pin_format, check_signin_pin, guarded_precheck, holder_subject,
    needs_rehash, phone_scope, signin_subject, to_completion,
};
use crate::secrets::{digest, issue_secret};
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::id::PaymentId;
use pocket_core::ledger::AccountKind;
use pocket_core::payment::{
    Payment, Proof, confirm_message, device_signature_required, pin_required, visible_to,
};
use pocket_core::policy::Authentication;
use pocket_core::time::MS_PER_SECOND;
use pocket_core::{Error, ErrorKind};
use pocket_store::model::{Balance, Customer, Page, Transaction, Written};
use pocket_store::{PaymentOwner, PinRehash};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    /// E.164, e.g. `+8613800138000`.
    pub phone: String,
    pub name: String,
    /// Exactly 6 digits.
    pub pin: String,
}

pub use super::SessionResponse;

/// `{customer, token}` from the customer record (fresh or stored) and the token.
fn session_body(customer: serde_json::Value, token: &str) -> serde_json::Value {
    serde_json::json!({"customer": customer, "token": token})
}

fn session_response(status: StatusCode, customer: Customer, token: String) -> Response {
    let customer = serde_json::to_value(&customer).unwrap_or(serde_json::Value::Null);
    (status, Json(session_body(customer, &token))).into_response()
}

/// Replays of sign-up and sign-in store only the customer; the token is derived again
/// from the idempotency record, never stored. A session that has ended since (signed
/// out, expired) is not handed out again: `409 session_ended`.
async fn session_replay(
    state: &AppState,
    stored: pocket_store::model::StoredResponse,
    token: &str,
) -> ApiResult<Response> {
    let alive = state
        .store
        .session(digest(&state.settings.server_key, token))
        .await?;
    if alive.is_none() {
        return Err(ApiError(Error::new(
            ErrorKind::Idempotency,
            "session_ended",
            "The session this request created has ended (signed out or expired); sign in again with a new Idempotency-Key.",
        )));
    }
    let mut stored = stored;
    if let Ok(customer) = serde_json::from_str(&stored.body) {
        stored.body = session_body(customer, token).to_string();
    }
    Ok(crate::idem::replay(stored))
}

#[utoipa::path(post, path = "/v1/wallet/signup", tag = "wallet", request_body = Signup,
    responses((status = 201, body = SessionResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    ip: ClientIp,
    key: IdempotencyKey,
    body: Body<Signup>,
) -> ApiResult<Response> {
    to_completion(async move {
        let req = body.value;
        validate::phone(&req.phone, "phone")?;
        validate::text(&req.name, "name", validate::MAX_NAME_CHARS)?;
        check_pin_format(&req.pin)?;
        let server_key = state.settings.server_key;
        let idem = key.for_caller(
            &phone_scope(&server_key, &req.phone),
            &body.raw,
            StatusCode::CREATED,
        );
        let token = issue_secret(&server_key, "pst", idem.as_ref());
        // Hashing a PIN is PIN work: budgeted per client and per phone like a check.
        state.pins.spend_budget(
            ip.0,
            &format!("signup:{}", phone_scope(&server_key, &req.phone)),
        )?;
        let subject = signin_subject(&server_key, &req.phone);
        if let Some(stored) = guarded_precheck(&state, ip, subject, idem.as_ref()).await? {
            return session_replay(&state, stored, &token).await;
        }
        // A taken phone costs no hash (the writer checks again as it commits).
        if state
            .store
            .pin_state_by_phone(req.phone.clone())
            .await?
            .is_some()
        {
            return Err(ApiError(
                Error::conflict(
                    "phone_taken",
                    "A wallet with this phone number already exists.",
                )
                .with_param("phone"),
            ));
        }
        let pin_hash = state
            .pins
            .workers
            .hash(state.settings.pin_hashing, server_key, req.pin)
            .await?;
        let expires_at = state.store.now_ms() + state.settings.session_ttl_seconds * MS_PER_SECOND;
        let session = (digest(&server_key, &token), expires_at);
        match state
            .store
            .signup(req.phone, req.name, pin_hash, session, idem)
            .await?
        {
            Written::Fresh(c) => Ok(session_response(StatusCode::CREATED, c, token)),
            Written::Replayed(stored) => session_replay(&state, stored, &token).await,
        }
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub phone: String,
    pub pin: String,
}

#[utoipa::path(post, path = "/v1/wallet/sessions", tag = "wallet", request_body = SignIn,
    responses((status = 201, body = SessionResponse), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 423, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    ip: ClientIp,
    key: IdempotencyKey,
    body: Body<SignIn>,
) -> ApiResult<Response> {
    to_completion(async move {
        let req = body.value;
        validate::phone(&req.phone, "phone")?;
        let server_key = state.settings.server_key;
        let idem = key.for_caller(
            &phone_scope(&server_key, &req.phone),
            &body.raw,
            StatusCode::CREATED,
        );
        let token = issue_secret(&server_key, "pst", idem.as_ref());
        let subject = signin_subject(&server_key, &req.phone);
        if let Some(stored) = guarded_precheck(&state, ip, subject, idem.as_ref()).await? {
            return session_replay(&state, stored, &token).await;
        }
        // Known and unknown numbers go through the same guard, budgets and wait, and
        // answer alike; only a known one costs a hash.
        let (who, attempt) = check_signin_pin(&state, ip, &req.phone, &req.pin).await?;
        let (customer_id, stored_hash) = (who.customer.id, Some(who.pin_hash));
        // A hash made at an older cost is made again at today's, now that the PIN is
        // known right (one more hash, once per wallet).
        let params = state.settings.pin_hashing;
        let rehash = match stored_hash {
            Some(old_hash) if needs_rehash(&old_hash, params) => {
                match state
                    .pins
                    .workers
                    .hash(params, server_key, req.pin.clone())
                    .await
                {
                    Ok(new_hash) => Some(PinRehash { old_hash, new_hash }),
                    // A full PIN queue: sign in now, rehash another time.
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let expires_at = state.store.now_ms() + state.settings.session_ttl_seconds * MS_PER_SECOND;
        let session = (digest(&server_key, &token), expires_at);
        match state
            .store
            .create_session(customer_id, session, attempt, rehash, idem)
            .await?
        {
            Written::Fresh(c) => Ok(session_response(StatusCode::CREATED, c, token)),
            Written::Replayed(stored) => session_replay(&state, stored, &token).await,
        }
    })
    .await
}

#[utoipa::path(delete, path = "/v1/wallet/sessions/current", tag = "wallet",
    responses((status = 204), (status = 401, body = ErrorBody)), security(("session_token" = [])))]
pub async fn sign_out(
    State(state): State<AppState>,
    caller: CustomerCaller,
) -> ApiResult<StatusCode> {
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
    responses((status = 200, description = "A list of payments", body = Page<Payment>), (status = 400, body = ErrorBody), (status = 404, description = "`starting_after` names nothing in this list", body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn list_payments(
    State(state): State<AppState>,
    caller: CustomerCaller,
    q: ListQuery,
) -> ApiResult<Response> {
    let status = status_filter(&q)?;
    no_customer(&q)?;
    let page = page(&q, "pay")?;
    let owner = PaymentOwner::Customer(caller.customer.id);
    Ok(Json(state.store.list_payments(owner, status, page).await?).into_response())
}

/// A payment the customer may see: addressed to them, or open.
async fn visible_payment(
    state: &AppState,
    customer_id: &str,
    id: &PaymentId,
) -> ApiResult<Payment> {
    match state.store.payment(id.to_string()).await? {
        Some(p) if visible_to(&p, customer_id) => Ok(p),
        _ => Err(Error::not_found("payment", id.as_str()).into()),
    }
}

#[utoipa::path(get, path = "/v1/wallet/payments/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody)), security(("session_token" = [])))]
pub async fn get_payment(
    State(state): State<AppState>,
    caller: CustomerCaller,
    Path(id): Path<PaymentId>,
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
    ip: ClientIp,
    caller: CustomerCaller,
    Path(id): Path<PaymentId>,
    key: IdempotencyKey,
    body: Body<Confirm>,
) -> ApiResult<Response> {
    to_completion(async move {
        let customer = caller.customer;
        let idem = key.for_caller(&customer.id, &body.raw, StatusCode::OK);
        let req = body.value;
        if req.pin.is_none() && req.device.is_none() && req.signature.is_none() {
            // A tap: nothing to verify here, so nothing to look up first either (the
            // confirming transaction replays a retried key and refuses a reused one).
            // It checks that the payment's policy asks for nothing more
            // (`pin_required` otherwise).
            let written = state
                .store
                .confirm(
                    id.into_string(),
                    customer.id,
                    Proof::default(),
                    None,
                    None,
                    idem,
                )
                .await?;
            return Ok(respond(written, StatusCode::OK));
        }
        // A replay is answered before a PIN is hashed or a signature checked.
        let stored = if req.pin.is_some() {
            let subject = holder_subject(&customer.id);
            guarded_precheck(&state, ip, subject, idem.as_ref()).await?
        } else {
            precheck(&state, idem.as_ref()).await?
        };
        if let Some(stored) = stored {
            return Ok(crate::idem::replay(stored));
        }
        let p = visible_payment(&state, &customer.id, &id).await?;
        let auth = p.policy.authentication;
        // Refuse incomplete proofs before spending a PIN attempt on them.
        if auth.needs_pin() && req.pin.is_none() {
            return Err(pin_required().into());
        }
        // The signature first: it costs little and spends no PIN attempt.
        let device = signed_by(&state, &customer.id, &p, &req).await?;
        let mut proof = Proof {
            device: device.is_some(),
            ..Proof::default()
        };
        let mut attempt = None;
        if let Some(pin) = req.pin.as_deref() {
            attempt = Some(check_holder_pin(&state, ip, &customer, pin).await?);
            proof.pin = true;
        }
        let written = state
            .store
            .confirm(id.into_string(), customer.id, proof, device, attempt, idem)
            .await?;
        Ok(respond(written, StatusCode::OK))
    })
    .await
}

/// The device whose key signed this confirm, checked; none when it was not signed and
/// the payment's policy does not ask for it. A proof offered beyond what the stored
/// policy asks is checked too: a risk rule may raise the proof inside the confirming
/// transaction.
async fn signed_by(
    state: &AppState,
    customer_id: &str,
    p: &Payment,
    req: &Confirm,
) -> ApiResult<Option<String>> {
    match (
        p.policy.authentication,
        req.device.as_deref(),
        req.signature.as_deref(),
    ) {
        (_, Some(device), Some(signature)) => Ok(Some(
            check_device(state, customer_id, p, device, signature).await?,
        )),
        (Authentication::PinAndDevice, _, _) => Err(device_signature_required().into()),
        _ => Ok(None),
    }
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
    Path(id): Path<PaymentId>,
    key: IdempotencyKey,
    body: Body<Decline>,
) -> ApiResult<Response> {
    let idem = key.for_caller(&caller.customer.id, &body.raw, StatusCode::OK);
    let written = state
        .store
        .decline(id.into_string(), caller.customer.id, idem)
        .await?;
    Ok(respond(written, StatusCode::OK))
}

#[utoipa::path(get, path = "/v1/wallet/transactions", tag = "wallet",
    params(("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query)),
    responses((status = 200, description = "A list of transactions", body = Page<Transaction>), (status = 404, description = "`starting_after` names nothing in this list", body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn transactions(
    State(state): State<AppState>,
    caller: CustomerCaller,
    q: ListQuery,
) -> ApiResult<Response> {
    no_filters(&q)?;
    let page = page(&q, "txn")?;
    let list = state
        .store
        .transactions(AccountKind::Wallet, caller.customer.id, page)
        .await?;
    Ok(Json(list).into_response())
}

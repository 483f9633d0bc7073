//! The wallet's PIN after sign-up: changed by its holder (the old PIN proven under the
//! holder's guard), and the way back in for a forgotten one — a one-time code an
//! operator issues (there is no SMS gateway), good once within 15 minutes and for at
//! most 5 guesses, stored only as its keyed digest.

use crate::AppState;
use crate::auth::{Admin, CustomerCaller};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::extract::Path;
use crate::idem::{IdempotencyKey, respond};
use crate::limits::ClientIp;
use crate::pins::{
    check_holder_pin, check_pin_format, guarded_precheck, holder_subject, phone_scope,
    signin_subject, to_completion,
};
use crate::routes::SessionResponse;
use crate::secrets::{digest, issue_secret};
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::Error;
use pocket_core::id::CustomerId;
use pocket_core::time::{self, MS_PER_SECOND};
use pocket_store::model::Customer;
use pocket_store::{PinRehash, PinReset};
use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// How long a PIN-reset code lives.
pub const RESET_CODE_TTL_SECONDS: i64 = 15 * 60;

/// Digits in a PIN-reset code: 10^10 codes, of which an attacker tries at most 5.
const RESET_CODE_DIGITS: usize = 10;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePin {
    /// The PIN in use now (6 digits).
    pub old_pin: String,
    /// The new PIN (6 digits, not the old one).
    pub new_pin: String,
}

/// A new PIN must be a PIN, and a new one.
fn check_new_pin(old_pin: &str, new_pin: &str) -> Result<(), Error> {
    check_pin_format(new_pin)
        .map_err(|_| Error::invalid("new_pin", "`new_pin` must be exactly 6 digits."))?;
    if old_pin == new_pin {
        return Err(Error::invalid(
            "new_pin",
            "`new_pin` must differ from the PIN in use.",
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/wallet/pin", tag = "wallet", request_body = ChangePin,
    responses((status = 200, description = "The PIN is changed; every other session of the wallet has ended", body = Customer),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 423, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("session_token" = [])))]
/// Changes the wallet's PIN: the old one is checked as a confirm's is (the lockout
/// applies); the sessions on other phones end, with the device keys they registered.
pub async fn change_pin(
    State(state): State<AppState>,
    ip: ClientIp,
    caller: CustomerCaller,
    key: IdempotencyKey,
    body: Body<ChangePin>,
) -> ApiResult<Response> {
    to_completion(async move {
        let customer = caller.customer;
        let idem = key.for_caller(&customer.id, &body.raw, StatusCode::OK);
        let subject = holder_subject(&customer.id);
        if let Some(stored) = guarded_precheck(&state, ip, subject, idem.as_ref()).await? {
            return Ok(respond::<Customer>(
                pocket_store::model::Written::Replayed(stored),
                StatusCode::OK,
            ));
        }
        let req = body.value;
        check_pin_format(&req.old_pin)
            .map_err(|_| Error::invalid("old_pin", "`old_pin` must be exactly 6 digits."))?;
        check_new_pin(&req.old_pin, &req.new_pin)?;
        let old_hash = state
            .store
            .pin_state(customer.id.clone())
            .await?
            .ok_or_else(|| Error::not_found("customer", &customer.id))?
            .pin_hash;
        let attempt = check_holder_pin(&state, ip, &customer, &req.old_pin).await?;
        let (params, server_key) = (state.settings.pin_hashing, state.settings.server_key);
        let new_hash = state
            .pins
            .workers
            .hash(params, server_key, req.new_pin)
            .await?;
        let change = PinRehash { old_hash, new_hash };
        let written = state
            .store
            .change_pin(customer.id, caller.token_digest, attempt, change, idem)
            .await?;
        Ok(respond(written, StatusCode::OK))
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct IssuedPinReset {
    #[schema(value_type = String, example = "pin_reset")]
    pub object: &'static str,
    pub customer: String,
    /// The one-time code to hand to the customer (10 digits); shown only here.
    pub code: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct IssuePinReset {}

#[utoipa::path(post, path = "/v1/admin/customers/{id}/pin_reset", tag = "operator",
    params(("id" = String, Path)), request_body = IssuePinReset,
    responses((status = 201, body = IssuedPinReset), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
/// Issues a one-time code that lets the customer set a new PIN within 15 minutes,
/// replacing any code issued before. Not replayed: a retry issues a new code, and the
/// one before stops working.
pub async fn issue_reset(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<CustomerId>,
    _body: Body<IssuePinReset>,
) -> ApiResult<(StatusCode, Json<IssuedPinReset>)> {
    let code: String = {
        let mut rng = rand::rng();
        (0..RESET_CODE_DIGITS)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect()
    };
    let server_key = &state.settings.server_key;
    let expires_at = state.store.now_ms() + RESET_CODE_TTL_SECONDS * MS_PER_SECOND;
    let c = state
        .store
        .issue_pin_reset(
            id.into_string(),
            reset_digest(server_key, &code),
            expires_at,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedPinReset {
            object: "pin_reset",
            customer: c.id,
            code,
            expires_at: time::rfc3339_ms(expires_at),
        }),
    ))
}

/// The keyed digest a reset code is stored under.
fn reset_digest(server_key: &[u8; 32], code: &str) -> String {
    digest(server_key, &format!("pin-reset:{code}"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemPinReset {
    /// The wallet's phone (E.164, or typed the local way).
    pub phone: String,
    /// The operator's one-time code (10 digits; spaces are ignored).
    pub code: String,
    /// The new PIN (6 digits).
    pub new_pin: String,
}

#[utoipa::path(post, path = "/v1/wallet/pin_reset", tag = "wallet", request_body = RedeemPinReset,
    responses((status = 201, description = "The new PIN is set, every earlier session has ended, and this is a new one", body = SessionResponse),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Sets a new PIN with an operator's one-time code and signs in. Wrong, used or
/// expired codes and phones without a code all answer `401 reset_code_invalid`.
pub async fn redeem_reset(
    State(state): State<AppState>,
    ip: ClientIp,
    body: Body<RedeemPinReset>,
) -> ApiResult<Response> {
    to_completion(async move {
        let req = body.value;
        let country = &state.settings.qr.place.country;
        let phone = validate::typed_phone(&req.phone, "phone", country)?;
        let code: String = req.code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != RESET_CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError(Error::invalid(
                "code",
                format!("`code` must be the {RESET_CODE_DIGITS} digits the operator gave."),
            )));
        }
        check_pin_format(&req.new_pin)
            .map_err(|_| Error::invalid("new_pin", "`new_pin` must be exactly 6 digits."))?;
        let server_key = state.settings.server_key;
        // Hashing the new PIN is PIN work: budgeted per client and per phone.
        state
            .pins
            .spend_budget(ip.0, &format!("reset:{}", phone_scope(&server_key, &phone)))?;
        let guess = state.store.take_reset_guess(phone.clone()).await?;
        let wanted = reset_digest(&server_key, &code);
        let Some((customer_id, stored)) = guess else {
            return Err(ApiError(pocket_store::reset_code_invalid()));
        };
        if !bool::from(wanted.as_bytes().ct_eq(stored.as_bytes())) {
            return Err(ApiError(pocket_store::reset_code_invalid()));
        }
        let params = state.settings.pin_hashing;
        let pin_hash = state
            .pins
            .workers
            .hash(params, server_key, req.new_pin)
            .await?;
        let token = issue_secret(&server_key, "pst", None);
        let expires_at = state.store.now_ms() + state.settings.session_ttl_seconds * MS_PER_SECOND;
        let reset = PinReset {
            guards: vec![
                signin_subject(&server_key, &phone),
                holder_subject(&customer_id),
            ],
            customer_id,
            code_digest: stored,
            pin_hash,
            session: (digest(&server_key, &token), expires_at),
        };
        let customer = state.store.redeem_pin_reset(reset).await?;
        Ok((
            StatusCode::CREATED,
            Json(SessionResponse { customer, token }),
        )
            .into_response())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_pin_is_six_digits_and_new() {
        assert!(check_new_pin("123456", "654321").is_ok());
        for (old, new) in [
            ("123456", "123456"),
            ("123456", "12345"),
            ("123456", "abcdef"),
        ] {
            let e = check_new_pin(old, new).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("new_pin"), "{new}");
        }
    }

    #[test]
    fn reset_digests_are_keyed() {
        let a = reset_digest(&[1; 32], "0123456789");
        assert!(!a.contains("0123456789"));
        assert_ne!(a, reset_digest(&[2; 32], "0123456789"));
        assert_ne!(a, reset_digest(&[1; 32], "0123456788"));
    }
}

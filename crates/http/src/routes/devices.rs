//! Wallet device keys: register (needs the PIN), list, revoke.

use crate::AppState;
use crate::auth::CustomerCaller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Body;
use crate::extract::Path;
use crate::idem::IdempotencyKey;
use crate::issued::secret_response;
use crate::limits::ClientIp;
use crate::pins::{check_holder_pin, guarded_precheck, holder_subject, to_completion};
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use pocket_core::id::DeviceId;
use pocket_store::model::{Device, Written};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    pub name: String,
    /// The ECDSA P-256 public key as a JWK (`crypto.subtle.exportKey("jwk", publicKey)`).
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
    /// The wallet's PIN: registering a key is as sensitive as paying.
    pub pin: String,
}

/// A registered device with its payment code secret, shown only in this answer.
#[derive(Serialize, ToSchema)]
pub struct RegisteredDevice {
    #[serde(flatten)]
    pub device: Device,
    /// 32 bytes, base64url: the HMAC key of the device's payment codes. Keep it on
    /// the device; it is never shown again.
    pub code_secret: String,
}

#[utoipa::path(post, path = "/v1/wallet/devices", tag = "wallet", request_body = RegisterDevice,
    responses((status = 201, body = RegisteredDevice), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 423, body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    caller: CustomerCaller,
    key: IdempotencyKey,
    body: Body<RegisterDevice>,
) -> ApiResult<Response> {
    to_completion(async move {
        let customer = caller.customer;
        let idem = key.for_caller(&customer.id, &body.raw, StatusCode::CREATED);
        let subject = holder_subject(&customer.id);
        let server_key = &state.settings.server_key;
        if let Some(stored) = guarded_precheck(&state, ip, subject, idem.as_ref()).await? {
            return Ok(secret_response::<Device>(
                Written::Replayed(stored),
                StatusCode::CREATED,
                &[],
                server_key,
            ));
        }
        let req = body.value;
        validate::text(&req.name, "name", validate::MAX_NAME_CHARS)?;
        let public_key = crate::device_keys::parse_public_key(&req.public_key)?;
        let attempt = check_holder_pin(&state, ip, &customer, &req.pin).await?;
        let written = state
            .store
            .add_device(
                customer.id,
                req.name,
                public_key,
                caller.token_digest,
                attempt,
                idem,
            )
            .await?;
        // The device's payment code secret, in this answer (and its replays) only.
        Ok(secret_response(
            written,
            StatusCode::CREATED,
            &[],
            server_key,
        ))
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct Devices {
    pub object: &'static str,
    pub data: Vec<Device>,
    pub has_more: bool,
}

#[utoipa::path(get, path = "/v1/wallet/devices", tag = "wallet",
    responses((status = 200, body = Devices)), security(("session_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: CustomerCaller,
) -> ApiResult<Json<Devices>> {
    let data = state.store.list_devices(caller.customer.id).await?;
    Ok(Json(Devices {
        object: "list",
        has_more: false,
        data,
    }))
}

#[utoipa::path(delete, path = "/v1/wallet/devices/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = Device), (status = 404, body = ErrorBody)), security(("session_token" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: CustomerCaller,
    Path(id): Path<DeviceId>,
) -> ApiResult<Json<Device>> {
    Ok(Json(
        state
            .store
            .revoke_device(caller.customer.id, id.into_string())
            .await?,
    ))
}

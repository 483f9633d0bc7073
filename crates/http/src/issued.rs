//! Responses that carry a secret issued now — a merchant's secret key, a webhook
//! endpoint's signing secret, a device's payment code secret — and merchant key rolls.
//! Secrets are derived (from the idempotency record, or the endpoint's or the device's
//! id), never stored, and the same function renders the first answer and every replay. Shared by the operator's and the merchant's
//! routes, so neither calls the other.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Body;
use crate::idem::{IdempotencyKey, precheck, replay};
use crate::secrets::{issue_secret, key_digest};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pocket_core::Error;
use pocket_core::time::MS_PER_SECOND;
use pocket_store::KeyDigest;
use pocket_store::model::{Idem, Merchant, Written};
use pocket_webhooks::signature::endpoint_secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The stored response of a credential-issuing request with its secrets put in: the
/// same function renders the first answer and every replay, so they are identical.
/// Secrets are derived (from the idempotency record or the endpoint id), never stored.
pub(crate) fn with_secrets(
    mut body: Value,
    secrets: &[(&str, String)],
    server_key: &[u8; 32],
) -> Value {
    if let Value::Object(o) = &mut body {
        for (field, secret) in secrets {
            o.insert(field.to_string(), Value::String(secret.clone()));
        }
        if o.get("object").and_then(Value::as_str) == Some("device")
            && let Some(id) = o.get("id").and_then(Value::as_str)
        {
            let secret = pocket_core::code::device_secret(server_key, id);
            o.insert(
                "code_secret".into(),
                Value::String(URL_SAFE_NO_PAD.encode(secret)),
            );
        }
        if let Some(Value::Object(endpoint)) = o.get_mut("webhook_endpoint")
            && let Some(id) = endpoint.get("id").and_then(Value::as_str).map(String::from)
        {
            endpoint.insert(
                "secret".into(),
                Value::String(endpoint_secret(server_key, &id)),
            );
        }
    }
    body
}

/// Answers with `body` plus secrets, fresh or replayed.
pub(crate) fn secret_response<T: Serialize>(
    written: Written<T>,
    status: StatusCode,
    secrets: &[(&str, String)],
    server_key: &[u8; 32],
) -> Response {
    match written {
        Written::Fresh(v) => {
            let body = serde_json::to_value(&v).unwrap_or(Value::Null);
            (status, Json(with_secrets(body, secrets, server_key))).into_response()
        }
        Written::Replayed(mut stored) => {
            if let Ok(body) = serde_json::from_str::<Value>(&stored.body) {
                stored.body = with_secrets(body, secrets, server_key).to_string();
            }
            replay(stored)
        }
    }
}

/// A merchant secret key for a key-issuing request: new (derived from the
/// idempotency record when there is one), or the first answer when this is a retry.
enum Issued {
    New {
        idem: Option<Idem>,
        secret_key: String,
    },
    Replay(Response),
}

async fn issue_key(
    state: &AppState,
    key: &IdempotencyKey,
    raw: &[u8],
    caller: &str,
) -> ApiResult<Issued> {
    let idem = key.for_caller(caller, raw, StatusCode::CREATED);
    let secret_key = issue_secret(&state.settings.server_key, "sk", idem.as_ref());
    if let Some(stored) = precheck(state, idem.as_ref()).await? {
        let secrets = [("secret_key", secret_key)];
        let replayed = secret_response::<Value>(
            Written::Replayed(stored),
            StatusCode::CREATED,
            &secrets,
            &state.settings.server_key,
        );
        return Ok(Issued::Replay(replayed));
    }
    Ok(Issued::New { idem, secret_key })
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RollKey {
    /// Seconds the merchant's current keys keep working (0 to 86400; default 0: at once).
    pub expire_current_in: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RolledKey {
    #[serde(flatten)]
    pub merchant: Merchant,
    /// The new key, shown only in this response.
    pub secret_key: String,
}

/// Longest a rolled-over key may keep working.
const MAX_KEY_OVERLAP_SECONDS: i64 = 86_400;

/// Issues a new key for `merchant_id`; the current ones live `expire_current_in` more.
pub(crate) async fn roll(
    state: &AppState,
    merchant_id: String,
    caller: &str,
    by_key: Option<String>,
    key: &IdempotencyKey,
    body: Body<RollKey>,
) -> ApiResult<Response> {
    let overlap = body.value.expire_current_in.unwrap_or(0);
    if !(0..=MAX_KEY_OVERLAP_SECONDS).contains(&overlap) {
        return Err(Error::invalid(
            "expire_current_in",
            format!("`expire_current_in` must be 0 to {MAX_KEY_OVERLAP_SECONDS} seconds."),
        )
        .into());
    }
    let old_expires_at = state.store.now_ms() + overlap * MS_PER_SECOND;
    answer_with_new_key(state, key, &body.raw, caller, |digest, idem| {
        state
            .store
            .roll_merchant_key(merchant_id, digest, old_expires_at, by_key, idem)
    })
    .await
}

/// Issues a merchant secret key (derived from the idempotency record when there is
/// one), lets `write` store its digest, and answers `201` with the key put in — or, for
/// a retry, the first answer with the same key put in again.
pub(crate) async fn answer_with_new_key<T, F, Fut>(
    state: &AppState,
    key: &IdempotencyKey,
    raw: &[u8],
    caller: &str,
    write: F,
) -> ApiResult<Response>
where
    T: Serialize,
    F: FnOnce(KeyDigest, Option<Idem>) -> Fut,
    Fut: std::future::Future<Output = Result<Written<T>, Error>>,
{
    let (idem, secret_key) = match issue_key(state, key, raw, caller).await? {
        Issued::New { idem, secret_key } => (idem, secret_key),
        Issued::Replay(r) => return Ok(r),
    };
    let server_key = &state.settings.server_key;
    let written = write(key_digest(server_key, &secret_key), idem).await?;
    Ok(secret_response(
        written,
        StatusCode::CREATED,
        &[("secret_key", secret_key)],
        server_key,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct CreatedWebhookEndpoint {
    #[serde(flatten)]
    pub endpoint: pocket_store::model::WebhookEndpoint,
    /// `whsec_…`, the key of `Pocket-Signature`; shown only when the endpoint is created.
    pub secret: String,
}

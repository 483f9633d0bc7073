//! The `Idempotency-Key` header: parsing, request fingerprints, and answering with a
//! fresh or replayed response (`Idempotent-Replayed: true`).

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pocket_core::Error;
use pocket_store::model::{Idem, StoredResponse, Written};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;

/// The header (if any) and what identifies the request it came with.
pub struct IdempotencyKey {
    key: Option<String>,
    method_and_path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let key = match parts.headers.get(HEADER) {
            None => None,
            Some(v) => {
                let k = v
                    .to_str()
                    .ok()
                    .filter(|k| (1..=MAX_KEY_LEN).contains(&k.len()))
                    .ok_or_else(|| {
                        ApiError(Error::invalid(
                            "Idempotency-Key",
                            "`Idempotency-Key` must be 1 to 255 visible ASCII characters.",
                        ))
                    })?;
                Some(k.to_string())
            }
        };
        Ok(IdempotencyKey {
            key,
            method_and_path: format!("{} {}", parts.method, parts.uri.path()),
        })
    }
}

impl IdempotencyKey {
    /// The idempotency context for `caller` sending `body`; `None` without a key.
    pub fn for_caller(&self, caller: &str, body: &[u8], status: StatusCode) -> Option<Idem> {
        let key = self.key.as_ref()?;
        let mut h = Sha256::new();
        h.update(self.method_and_path.as_bytes());
        h.update(b"\n");
        h.update(body);
        Some(Idem {
            caller: caller.to_string(),
            key: key.clone(),
            fingerprint: hex::encode(h.finalize()),
            status: status.as_u16(),
        })
    }
}

/// A read-side look-up before doing expensive work (hashing a PIN): the stored
/// response to replay, `409` for a reused key, or `None` to go on. The writer checks
/// again inside the transaction, which is what makes it exact.
pub async fn precheck(state: &AppState, idem: Option<&Idem>) -> ApiResult<Option<StoredResponse>> {
    let Some(idem) = idem else { return Ok(None) };
    match state
        .store
        .find_idempotent(idem.caller.clone(), idem.key.clone())
        .await?
    {
        Some((fingerprint, stored)) if fingerprint == idem.fingerprint => Ok(Some(stored)),
        Some(_) => Err(ApiError(pocket_store::sqlite::key_reused())),
        None => Ok(None),
    }
}

/// Answers a replay exactly as the first time, marked as a replay.
pub fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut r = (status, stored.body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    r
}

/// Answers a write: the fresh value with `status`, or the replayed first response.
pub fn respond<T: Serialize>(written: Written<T>, status: StatusCode) -> Response {
    match written {
        Written::Fresh(v) => (status, axum::Json(v)).into_response(),
        Written::Replayed(stored) => replay(stored),
    }
}

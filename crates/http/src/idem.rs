//! The `Idempotency-Key` header: parsing, request fingerprints, and answering with a
//! fresh or replayed response (`Idempotent-Replayed: true`).
//!
//! A fingerprint is an HMAC under the server key of the method, the path and the
//! body in canonical form (no body is `{}`, object keys sorted, no whitespace): bodies
//! carry PINs, and an unkeyed digest in the database would give them away to a
//! million guesses. Keys are scoped by caller: a credential, or for sign-up and
//! sign-in the phone number the request is about.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use pocket_core::Error;
use pocket_store::model::{Idem, StoredResponse, Written};
use serde::Serialize;
use sha2::Sha256;

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;

/// The header (if any) and what identifies the request it came with.
pub struct IdempotencyKey {
    key: Option<String>,
    method_and_path: String,
    server_key: [u8; 32],
}

impl FromRequestParts<AppState> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
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
            server_key: state.settings.server_key,
        })
    }
}

/// Writes `v` in canonical form: object keys sorted, no whitespace.
fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// The body as fingerprinted: canonical JSON, `{}` for none. (Handlers only get here
/// with a body that parsed, so the raw-bytes fallback is for completeness.)
fn canonical_body(body: &[u8]) -> Vec<u8> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return b"{}".to_vec();
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let mut out = Vec::with_capacity(body.len());
            write_canonical(&v, &mut out);
            out
        }
        Err(_) => body.to_vec(),
    }
}

impl IdempotencyKey {
    /// The idempotency context for `caller` sending `body`; `None` without a key.
    pub fn for_caller(&self, caller: &str, body: &[u8], status: StatusCode) -> Option<Idem> {
        let key = self.key.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.server_key).ok()?;
        mac.update(b"pocket-idempotency-fingerprint:v1\0");
        mac.update(self.method_and_path.as_bytes());
        mac.update(b"\n");
        mac.update(&canonical_body(body));
        Some(Idem {
            caller: caller.to_string(),
            key: key.clone(),
            fingerprint: hex::encode(mac.finalize().into_bytes()),
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
        Some((fingerprint, stored))
            if pocket_store::model::fingerprints_match(&fingerprint, &idem.fingerprint) =>
        {
            Ok(Some(stored))
        }
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

/// Answers a write whose answer is decided after its record was written (a bank
/// operation: written as `processing`, then the bank asked): the answer sent, made
/// the record's, so a replay gets this very body. (A replay that arrives before this
/// second write gets the record as first written.)
pub async fn answer_recorded<T: Serialize>(
    store: &pocket_store::SqlStore,
    idem: Option<Idem>,
    status: StatusCode,
    value: &T,
) -> Response {
    let body = match serde_json::to_string(value) {
        Ok(b) => b,
        Err(_) => return ApiError(Error::internal()).into_response(),
    };
    if let Some(idem) = idem
        && let Err(e) = store.record_answer(idem, body.clone()).await
    {
        tracing::warn!(
            code = e.code,
            "could not record the answer sent for replays"
        );
    }
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Answers a write: the fresh value with `status`, or the replayed first response.
pub fn respond<T: Serialize>(written: Written<T>, status: StatusCode) -> Response {
    match written {
        Written::Fresh(v) => (status, axum::Json(v)).into_response(),
        Written::Replayed(stored) => replay(stored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_requests_have_one_canonical_body() {
        assert_eq!(canonical_body(b""), b"{}");
        assert_eq!(canonical_body(b"{}"), b"{}");
        assert_eq!(canonical_body(b" { } "), b"{}");
        assert_eq!(
            canonical_body(br#"{"b": 1, "a": {"d": [1, "x"], "c": null}}"#),
            br#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#
        );
        assert_ne!(
            canonical_body(br#"{"pin":"123456"}"#),
            canonical_body(br#"{"pin":"123457"}"#)
        );
    }

    fn key(server_key: [u8; 32]) -> IdempotencyKey {
        IdempotencyKey {
            key: Some("k".into()),
            method_and_path: "POST /v1/wallet/sessions".into(),
            server_key,
        }
    }

    #[test]
    fn fingerprints_are_keyed_and_not_a_digest_of_the_body() {
        let body = br#"{"phone":"+8613800000001","pin":"123456"}"#;
        let a = key([1; 32])
            .for_caller("c", body, StatusCode::CREATED)
            .unwrap();
        let b = key([2; 32])
            .for_caller("c", body, StatusCode::CREATED)
            .unwrap();
        assert_ne!(a.fingerprint, b.fingerprint, "the server key matters");
        use sha2::Digest;
        for plain in [
            hex::encode(Sha256::digest(body)),
            hex::encode(Sha256::digest(canonical_body(body))),
        ] {
            assert_ne!(a.fingerprint, plain);
        }
    }
}

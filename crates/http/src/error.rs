//! Turning [`pocket_core::Error`] into the contract's error response:
//! `{"error": {"type", "code", "message", "param"}}` with the kind's status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pocket_core::{Error, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// The error body every failing request gets.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    /// Only on `402 card_declined`: why the bank refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    /// Only on `401 incorrect_pin`: how many more wrong PINs lock the wallet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u32>,
    /// Only on `400 rule_invalid`: where in `when` it fails (1-based, in characters),
    /// when the parser can tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u16>,
}

/// Wrapper so handlers can return `Result<_, ApiError>` and use `?` on core errors.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Seconds a client should wait after `503 server_busy` or `429`.
const RETRY_AFTER_SECONDS: &str = "1";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        // Why an internal error happened is logged once, here, inside the request's
        // span (its request id), and never answered.
        if let Some(cause) = &e.cause {
            tracing::error!(code = e.code, cause = %cause, "internal error");
        }
        let retry_after = e.retry_after_seconds;
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                kind: e.kind.type_name(),
                code: e.code,
                message: e.message,
                param: e.param,
                decline_code: e.decline_code,
                tries_left: e.tries_left,
                position: e.position,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(e.kind, ErrorKind::BodyTooLarge | ErrorKind::Timeout) {
            // The rest of the body is never read: the connection cannot be reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::RateLimited) {
            let value = match retry_after {
                Some(s) => HeaderValue::from_str(&s.to_string())
                    .unwrap_or(HeaderValue::from_static(RETRY_AFTER_SECONDS)),
                None => HeaderValue::from_static(RETRY_AFTER_SECONDS),
            };
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// `404` for paths that do not exist.
pub async fn no_such_route() -> ApiError {
    ApiError(Error::new(
        ErrorKind::NotFound,
        "resource_missing",
        "No such endpoint; see /openapi.json.",
    ))
}

/// `405` as a contract-shaped error.
pub async fn method_not_allowed() -> Response {
    let mut r = ApiError(Error::new(
        ErrorKind::InvalidRequest,
        "method_not_allowed",
        "This endpoint does not accept that method; see /openapi.json.",
    ))
    .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

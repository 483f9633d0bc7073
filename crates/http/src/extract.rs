//! Request extractors that answer bad input in the contract's shape.
//!
//! - [`Body`]: a JSON body of at most 64 KiB, parsed strictly (unknown fields, wrong
//!   types, floats for integers are refused, naming the parameter). An empty body is
//!   read as `{}` so endpoints whose fields are all optional accept a bare `POST`.
//! - [`ListQuery`]: `limit`, `starting_after` and `status` for lists.
//! - [`Path`]: a path's one parameter as a typed value (`Path<PaymentId>`), parsed by
//!   its `FromStr`, which answers a malformed one with the contract's `400`.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use pocket_core::{Error, ErrorKind};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest a request body may take to arrive once its head has (`408` after), by default.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Whether `e` or one of its causes is a `C`.
fn caused_by<C: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<C>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A path's one parameter, parsed by `T`'s `FromStr` (which names the parameter in
/// its error): `Path<PaymentId>` never hands a malformed id to a handler.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: std::str::FromStr<Err = Error>> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Percent-decoded by axum; a segment that is not UTF-8 cannot be any id.
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| Error::invalid("id", "The path's parameter is not valid UTF-8."))?;
        Ok(Path(raw.parse()?))
    }
}

/// A strictly parsed JSON body, with the raw bytes kept for idempotency fingerprints.
pub struct Body<T> {
    pub value: T,
    pub raw: Bytes,
}

/// Why a body could not be read: too large (`413`) or broken (`400`).
fn unreadable(too_large: bool) -> ApiError {
    if too_large {
        body_too_large()
    } else {
        ApiError(Error::new(
            ErrorKind::InvalidRequest,
            "invalid_body",
            "The request body could not be read.",
        ))
    }
}

/// Middleware: reads the whole request body (up to [`MAX_BODY_BYTES`]) before any
/// handler or credential check runs, so a request refused early (a `401` before its
/// body was looked at) leaves nothing unread and its keep-alive connection stays
/// usable. A body that cannot be read is answered here, with `Connection: close`.
///
/// The whole body must arrive within the body-read timeout (not only each piece of
/// it: a body sent a byte at a time would otherwise hold its connection forever).
pub async fn buffer_body(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, MAX_BODY_BYTES);
    match tokio::time::timeout(state.settings.body_read_timeout, read).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => {
            let too_large = caused_by::<http_body_util::LengthLimitError>(&e);
            unreadable(too_large).into_response()
        }
        Err(_) => ApiError(Error::new(
            ErrorKind::Timeout,
            "body_timeout",
            "The request body did not arrive in time.",
        ))
        .into_response(),
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            let too_large = rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE;
            unreadable(too_large)
        })?;
        let text: &[u8] = if raw.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &raw
        };
        let value = parse_json(text)?;
        Ok(Body { value, raw })
    }
}

pub fn body_too_large() -> ApiError {
    ApiError(Error::new(
        ErrorKind::BodyTooLarge,
        "body_too_large",
        format!(
            "Request bodies are limited to {} KiB.",
            MAX_BODY_BYTES / 1024
        ),
    ))
}

/// Parses JSON, turning serde's complaints into `unknown_field`, `parameter_missing`,
/// `parameter_invalid` or `invalid_json` with the offending parameter's path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // Report broken JSON as such even when a type error came first ("[1,2").
        if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
            return ApiError(Error::new(
                ErrorKind::InvalidRequest,
                "invalid_json",
                "The request body is not valid JSON.",
            ));
        }
        ApiError(describe(e))
    })?;
    // Trailing bytes after the JSON value are malformed input too.
    de.end().map_err(|_| {
        ApiError(Error::new(
            ErrorKind::InvalidRequest,
            "invalid_json",
            "The request body is not valid JSON.",
        ))
    })?;
    Ok(value)
}

fn between_backticks(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

fn describe(e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let msg = inner.to_string();
    // The path may or may not already end with the field serde complains about.
    let join = |field: &str| {
        if path == "." || path.is_empty() {
            field.to_string()
        } else if path == field || path.ends_with(&format!(".{field}")) {
            path.clone()
        } else {
            format!("{path}.{field}")
        }
    };
    if inner.is_syntax() || inner.is_eof() {
        return Error::new(
            ErrorKind::InvalidRequest,
            "invalid_json",
            "The request body is not valid JSON.",
        );
    }
    if msg.starts_with("unknown field") {
        let field = between_backticks(&msg).unwrap_or("?");
        let param = join(field);
        return Error::new(
            ErrorKind::InvalidRequest,
            "unknown_field",
            format!("Unknown field `{param}`."),
        )
        .with_param(param);
    }
    if msg.starts_with("missing field") {
        let param = join(between_backticks(&msg).unwrap_or("?"));
        return Error::missing(&param);
    }
    let param = if path == "." || path.is_empty() {
        "body".to_string()
    } else {
        path
    };
    let why = if msg.contains("floating point") {
        "must be an integer (amounts are whole minor units; floats are never accepted)"
    } else if msg.contains("invalid type") {
        "has the wrong type"
    } else {
        "is not acceptable"
    };
    Error::invalid(&param, format!("`{param}` {why}."))
}

/// Query parameters of a list endpoint.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub limit: usize,
    pub starting_after: Option<String>,
    pub status: Option<String>,
    /// A merchant's payment list: one customer's (a `cus_` id or a phone).
    pub customer: Option<String>,
}

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError(Error::invalid(
                    "query",
                    "The query string could not be read.",
                ))
            })?;
        let mut q = ListQuery {
            limit: DEFAULT_LIMIT,
            ..ListQuery::default()
        };
        for (k, v) in map {
            match k.as_str() {
                "limit" => {
                    q.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            ApiError(Error::invalid(
                                "limit",
                                format!("`limit` must be 1 to {MAX_LIMIT}."),
                            ))
                        })?;
                }
                "starting_after" => q.starting_after = Some(v),
                "status" => q.status = Some(v),
                "customer" => q.customer = Some(v),
                other => {
                    return Err(ApiError(
                        Error::new(
                            ErrorKind::InvalidRequest,
                            "unknown_field",
                            format!("Unknown query parameter `{other}`."),
                        )
                        .with_param(other),
                    ));
                }
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        quantity: i64,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        amount: i64,
        items: Option<Vec<Line>>,
    }

    fn err(json: &str) -> Error {
        parse_json::<Req>(json.as_bytes()).unwrap_err().0
    }

    #[test]
    fn names_the_parameter() {
        let e = err(r#"{"amount": 12.5}"#);
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("parameter_invalid", Some("amount"))
        );
        let e = err(r#"{"amount": "12"}"#);
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("parameter_invalid", Some("amount"))
        );
        let e = err(r#"{"amount": 1, "bogus": 1}"#);
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("unknown_field", Some("bogus"))
        );
        let e = err(r#"{"items": []}"#);
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("parameter_missing", Some("amount"))
        );
        let e = err(r#"{"amount": 1, "items": [{"sku": "a", "quantity": 1.5}]}"#);
        assert_eq!(e.param.as_deref(), Some("items[0].quantity"));
        let e = err(r#"{"amount": 1, "items": [{"sku": "a", "quantity": 1, "x": 2}]}"#);
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("unknown_field", Some("items[0].x"))
        );
        assert_eq!(err(r#"{"amount": 1"#).code, "invalid_json");
        assert_eq!(err(r#"{"amount": 1} trailing"#).code, "invalid_json");
        assert_eq!(
            err(r#"{"amount": 99999999999999999999}"#).code,
            "parameter_invalid"
        );
    }
}

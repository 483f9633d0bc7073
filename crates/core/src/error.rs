//! The error every layer speaks: a kind (which decides HTTP status and `type`), a
//! stable machine `code`, a human sentence and the offending parameter.
//!
//! The codes are the contract's (`docs/API.md`, "Errors"); clients branch on them.

use std::fmt;

/// Families of errors. Each maps to exactly one HTTP status and contract `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    Payment,
    Permission,
    NotFound,
    Conflict,
    Idempotency,
    BodyTooLarge,
    /// The request (its body) did not arrive in time.
    Timeout,
    Locked,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::Payment => 402,
            ErrorKind::Permission => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict | ErrorKind::Idempotency => 409,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::Timeout => 408,
            ErrorKind::Locked => 423,
            ErrorKind::RateLimited => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::BodyTooLarge
            | ErrorKind::Timeout => "invalid_request_error",
            ErrorKind::Authentication | ErrorKind::Locked => "authentication_error",
            ErrorKind::Payment => "payment_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::Idempotency => "idempotency_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Unavailable | ErrorKind::Internal => "api_error",
        }
    }
}

/// An error with a stable code. `message` is for humans and never carries internals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    /// Why a bank refused (`402 card_declined`): `insufficient_funds`, `expired_card`…
    pub decline_code: Option<String>,
    /// Only on `401 incorrect_pin`: wrong PINs left before the lock.
    pub tries_left: Option<u32>,
    /// For `429`/`503`: how long to wait before retrying, when known (else 1 s).
    pub retry_after_seconds: Option<u32>,
    /// Only on `400 rule_invalid`: where in `when` it fails (1-based, in characters).
    pub position: Option<u16>,
    /// Why an internal error happened, for the log (never in the answer): logged once,
    /// with the request id, where the answer is made.
    pub cause: Option<Box<String>>,
}

impl Error {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            code,
            message: message.into(),
            param: None,
            decline_code: None,
            tries_left: None,
            retry_after_seconds: None,
            position: None,
            cause: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(u32::try_from(seconds.max(1)).unwrap_or(u32::MAX));
        self
    }

    pub fn with_position(mut self, position: u16) -> Self {
        self.position = Some(position);
        self
    }

    pub fn with_decline_code(mut self, code: impl Into<String>) -> Self {
        self.decline_code = Some(code.into());
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// `400 parameter_invalid` naming `param`.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidRequest, "parameter_invalid", message).with_param(param)
    }

    pub fn missing(param: &str) -> Self {
        Error::new(
            ErrorKind::InvalidRequest,
            "parameter_missing",
            format!("`{param}` is required."),
        )
        .with_param(param)
    }

    /// `404 resource_missing`. Also what another owner's object looks like.
    pub fn not_found(what: &str, id: &str) -> Self {
        Error::new(
            ErrorKind::NotFound,
            "resource_missing",
            format!("No such {what}: '{id}'."),
        )
        .with_param("id")
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, code, message)
    }

    pub fn internal() -> Self {
        Error::new(
            ErrorKind::Internal,
            "internal",
            "Something went wrong on our side; the request may be retried safely.",
        )
    }

    /// `500 internal`, keeping why for the log.
    pub fn internal_because(cause: impl std::fmt::Display) -> Self {
        let mut e = Error::internal();
        e.cause = Some(Box::new(cause.to_string()));
        e
    }

    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

/// For `map_err`: an internal error that keeps what failed and why, for the log.
pub fn internal<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::internal_because(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_internal_error_keeps_its_cause_for_the_log_not_the_answer() {
        let e = Result::<(), &str>::Err("disk on fire")
            .map_err(super::internal("writing a row"))
            .unwrap_err();
        assert_eq!((e.code, e.http_status()), ("internal", 500));
        assert_eq!(
            e.cause.as_deref().map(String::as_str),
            Some("writing a row: disk on fire")
        );
        assert!(!e.message.contains("disk"), "{}", e.message);
    }
    use super::*;

    #[test]
    fn kinds_map_to_contract_statuses() {
        assert_eq!(Error::invalid("amount", "x").http_status(), 400);
        assert_eq!(Error::not_found("payment", "pay_x").http_status(), 404);
        assert_eq!(ErrorKind::Idempotency.type_name(), "idempotency_error");
        assert_eq!(ErrorKind::Locked.http_status(), 423);
        assert_eq!(ErrorKind::Locked.type_name(), "authentication_error");
    }
}

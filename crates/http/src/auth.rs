//! Who is calling: the operator (admin key), a merchant (`sk_…`) or a customer's
//! wallet session (`pst_…`), each from `Authorization: Bearer …`.
//!
//! Secrets are never compared or stored in clear: the admin key is compared by digest
//! in constant time; merchant keys and session tokens are looked up by digest.

use crate::AppState;
use crate::error::ApiError;
use crate::secrets::digest;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use pocket_core::{Error, ErrorKind};
use pocket_store::model::Customer;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest credential worth looking at.
const MAX_CREDENTIAL_LEN: usize = 200;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty() && token.len() <= MAX_CREDENTIAL_LEN).then_some(token)
}

fn refuse(code: &'static str, message: &str) -> ApiError {
    ApiError(Error::new(ErrorKind::Authentication, code, message))
}

/// The operator.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let given = bearer(&parts.headers).map(|t| Sha256::digest(t.as_bytes()));
        match given {
            Some(d) if bool::from(d.as_slice().ct_eq(&state.settings.admin_key_digest)) => {
                Ok(Admin)
            }
            _ => Err(refuse(
                "invalid_api_key",
                "This endpoint needs the operator's admin key.",
            )),
        }
    }
}

/// The caller name under which operator idempotency keys are kept.
pub(crate) const ADMIN: &str = "admin";

/// A merchant, by its secret key, a restricted key or a staff session — each allowed
/// only what its scopes say for the route called ([`pocket_core::scope`]).
pub struct MerchantCaller {
    pub id: String,
    pub name: String,
    /// The keyed digest of the key it called with.
    pub key_digest: String,
    /// `None`: the secret key.
    pub scopes: Option<Vec<pocket_core::scope::Scope>>,
    /// A staff session's role, and its member of the staff.
    pub role: Option<String>,
    pub staff_id: Option<String>,
}

/// The prefixes of the credentials a merchant's caller may hold.
const MERCHANT_PREFIXES: [&str; 3] = ["sk_", "rk_", "sst_"];

/// `401 invalid_api_key` for a missing, unknown, rolled or expired merchant key.
pub fn invalid_merchant_key() -> ApiError {
    refuse(
        "invalid_api_key",
        "This endpoint needs a valid merchant secret key (sk_…).",
    )
}

impl FromRequestParts<AppState> for MerchantCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(&parts.headers)
            .filter(|t| MERCHANT_PREFIXES.iter().any(|p| t.starts_with(p)))
            .ok_or_else(invalid_merchant_key)?;
        let key_digest = digest(&state.settings.server_key, key);
        let found = state.store.merchant_by_key(key_digest.clone()).await?;
        let m = found.ok_or_else(invalid_merchant_key)?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|p| p.as_str())
            .unwrap_or("");
        pocket_core::scope::allows(m.scopes.as_deref(), parts.method.as_str(), route)?;
        Ok(MerchantCaller {
            id: m.merchant_id,
            name: m.name,
            key_digest,
            scopes: m.scopes,
            role: m.role,
            staff_id: m.staff_id,
        })
    }
}

/// A signed-in customer, by wallet session token.
pub struct CustomerCaller {
    pub customer: Customer,
    pub token_digest: String,
}

impl CustomerCaller {
    /// The customer whose session token is in the `Authorization` header.
    pub async fn from_headers(headers: &HeaderMap, state: &AppState) -> Result<Self, ApiError> {
        let refused = || {
            refuse(
                "invalid_token",
                "This endpoint needs a valid wallet session token.",
            )
        };
        let token = bearer(headers)
            .filter(|t| t.starts_with("pst_"))
            .ok_or_else(refused)?;
        let token_digest = digest(&state.settings.server_key, token);
        let customer = state
            .store
            .session(token_digest.clone())
            .await?
            .ok_or_else(refused)?;
        Ok(CustomerCaller {
            customer,
            token_digest,
        })
    }
}

impl FromRequestParts<AppState> for CustomerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        CustomerCaller::from_headers(&parts.headers, state).await
    }
}

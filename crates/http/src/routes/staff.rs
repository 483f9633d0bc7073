//! Who else acts for a merchant: restricted keys (`rk_…`, the scopes the owner chose)
//! and staff (wallet holders invited by phone with a role, signing in to the console
//! with their own phone and PIN for a session of the role's scopes). The scope each
//! endpoint needs is `pocket_core::scope::needed`, enforced in `auth::MerchantCaller`.

use super::Deleted;
use crate::AppState;
use crate::auth::MerchantCaller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::extract::Path;
use crate::limits::ClientIp;
use crate::pins::{check_signin_pin, to_completion};
use crate::secrets::{digest, issue_secret, key_digest};
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::id::{RestrictedKeyId, StaffId};
use pocket_core::scope::{self, Role};
use pocket_core::time::{self, MS_PER_SECOND};
use pocket_core::{Error, ErrorKind};
use pocket_store::model::{Membership, RestrictedKey, Staff};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a staff member's console session lasts: a working day.
pub const STAFF_SESSION_TTL_SECONDS: i64 = 12 * 3600;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRestrictedKey {
    /// What it is for (1 to 100 characters).
    pub name: String,
    /// What it may do: `read`, `payments:write`, `refunds:write`, `catalog:write`,
    /// `payouts:write`, `webhooks:write`.
    pub scopes: Vec<String>,
}

#[utoipa::path(post, path = "/v1/restricted_keys", tag = "keys", request_body = CreateRestrictedKey,
    responses((status = 201, description = "The key; its `secret` is in this answer only", body = RestrictedKey),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("secret_key" = [])))]
/// A key that may do only what its scopes say. Not replayed: a retry makes another
/// key (revoke the one not used).
pub async fn create_key(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    body: Body<CreateRestrictedKey>,
) -> ApiResult<(StatusCode, Json<RestrictedKey>)> {
    let req = body.value;
    validate::text(&req.name, "name", validate::MAX_NAME_CHARS)?;
    let scopes = scope::check_requested(&req.scopes)?;
    let secret = issue_secret(&state.settings.server_key, "rk", None);
    let key = key_digest(&state.settings.server_key, &secret);
    let mut made = state
        .store
        .create_restricted_key(merchant.id, req.name, scopes, key, merchant.staff_id)
        .await?;
    made.secret = Some(secret);
    Ok((StatusCode::CREATED, Json(made)))
}

#[derive(Serialize, ToSchema)]
pub struct RestrictedKeys {
    #[schema(value_type = String, example = "list")]
    pub object: &'static str,
    pub data: Vec<RestrictedKey>,
    pub has_more: bool,
}

#[utoipa::path(get, path = "/v1/restricted_keys", tag = "keys",
    responses((status = 200, body = RestrictedKeys), (status = 403, body = ErrorBody)), security(("secret_key" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    merchant: MerchantCaller,
) -> ApiResult<Json<RestrictedKeys>> {
    let data = state.store.list_restricted_keys(merchant.id).await?;
    Ok(Json(RestrictedKeys {
        object: "list",
        data,
        has_more: false,
    }))
}

#[utoipa::path(delete, path = "/v1/restricted_keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
/// Revokes a restricted key: it stops at once.
pub async fn revoke_key(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<RestrictedKeyId>,
) -> ApiResult<Json<Deleted>> {
    state
        .store
        .revoke_restricted_key(merchant.id, id.to_string())
        .await?;
    Ok(Json(Deleted {
        id: id.into_string(),
        object: "restricted_key",
        deleted: true,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddStaff {
    /// The wallet phone of the person (E.164, or typed the local way).
    pub phone: String,
    /// `owner`, `manager`, `cashier` or `developer`.
    pub role: String,
}

fn role_of(text: &str) -> Result<Role, Error> {
    Role::parse(text).ok_or_else(|| {
        Error::invalid(
            "role",
            "`role` must be one of owner, manager, cashier, developer.",
        )
    })
}

#[utoipa::path(post, path = "/v1/staff", tag = "keys", request_body = AddStaff,
    responses((status = 201, body = Staff), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, description = "No wallet has this phone", body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("secret_key" = [])))]
/// Adds a wallet holder to the shop's staff with a role; they sign in to the console
/// with their own phone and PIN.
pub async fn add_staff(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    body: Body<AddStaff>,
) -> ApiResult<(StatusCode, Json<Staff>)> {
    let req = body.value;
    let role = role_of(&req.role)?;
    let phone = validate::typed_phone(&req.phone, "phone", &state.settings.qr.place.country)?;
    let staff = state.store.add_staff(merchant.id, phone, role).await?;
    Ok((StatusCode::CREATED, Json(staff)))
}

#[derive(Serialize, ToSchema)]
pub struct StaffList {
    #[schema(value_type = String, example = "list")]
    pub object: &'static str,
    pub data: Vec<Staff>,
    pub has_more: bool,
}

#[utoipa::path(get, path = "/v1/staff", tag = "keys",
    responses((status = 200, body = StaffList), (status = 403, body = ErrorBody)), security(("secret_key" = [])))]
pub async fn list_staff(
    State(state): State<AppState>,
    merchant: MerchantCaller,
) -> ApiResult<Json<StaffList>> {
    let data = state.store.list_staff(merchant.id).await?;
    Ok(Json(StaffList {
        object: "list",
        data,
        has_more: false,
    }))
}

#[utoipa::path(delete, path = "/v1/staff/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
/// Removes a member of the staff; their console sessions end at once.
pub async fn remove_staff(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<StaffId>,
) -> ApiResult<Json<Deleted>> {
    state
        .store
        .remove_staff(merchant.id, id.to_string())
        .await?;
    Ok(Json(Deleted {
        id: id.into_string(),
        object: "staff",
        deleted: true,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffSignIn {
    pub phone: String,
    pub pin: String,
    /// Which shop (`mer_…`), for someone on the staff of more than one.
    pub merchant: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StaffSession {
    #[schema(value_type = String, example = "staff_session")]
    pub object: &'static str,
    /// The console session (`sst_…`), used as the bearer credential.
    pub token: String,
    pub merchant: String,
    pub role: String,
    pub scopes: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: String,
}

/// The shop a staff sign-in is for: the one asked, or the only one.
fn chosen(members: Vec<Membership>, asked: Option<&str>) -> Result<Membership, Error> {
    match asked {
        Some(m) => members
            .into_iter()
            .find(|x| x.merchant_id == m)
            .ok_or_else(|| Error::not_found("staff", m).with_param("merchant")),
        None if members.len() == 1 => members.into_iter().next().ok_or_else(Error::internal),
        None if members.is_empty() => Err(Error::new(
            ErrorKind::NotFound,
            "resource_missing",
            "This wallet is on no shop's staff.",
        )),
        None => Err(Error::new(
            ErrorKind::InvalidRequest,
            "parameter_missing",
            "This wallet is on the staff of several shops: say which (`merchant`).",
        )
        .with_param("merchant")),
    }
}

#[utoipa::path(post, path = "/v1/staff/sessions", tag = "keys", request_body = StaffSignIn,
    responses((status = 201, body = StaffSession), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 423, body = ErrorBody), (status = 429, body = ErrorBody)))]
/// A member of the staff signs in with their wallet's phone and PIN (the PIN checked
/// under the same guard and lockout as the wallet's sign-in) to a console session of
/// their role, for 12 hours.
pub async fn sign_in(
    State(state): State<AppState>,
    ip: ClientIp,
    body: Body<StaffSignIn>,
) -> ApiResult<Response> {
    to_completion(async move {
        let req = body.value;
        let country = &state.settings.qr.place.country;
        let phone = validate::typed_phone(&req.phone, "phone", country)?;
        if let Some(m) = &req.merchant {
            pocket_core::id::check(m, "mer", "merchant")?;
        }
        let server_key = state.settings.server_key;
        let (who, attempt) = check_signin_pin(&state, ip, &phone, &req.pin).await?;
        let members = state.store.memberships(who.customer.id).await?;
        let member = match chosen(members, req.merchant.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                state.store.settle_right_pin(attempt).await?;
                return Err(ApiError(e));
            }
        };
        let token = issue_secret(&server_key, "sst", None);
        let expires_at = state.store.now_ms() + STAFF_SESSION_TTL_SECONDS * MS_PER_SECOND;
        let session = state
            .store
            .create_staff_session(
                member.staff_id,
                digest(&server_key, &token),
                expires_at,
                attempt,
            )
            .await?;
        let role = Role::parse(&session.role).ok_or_else(Error::internal)?;
        let body = StaffSession {
            object: "staff_session",
            token,
            merchant: session.merchant_id,
            role: session.role,
            scopes: role
                .scopes()
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
            expires_at: time::rfc3339_ms(expires_at),
        };
        Ok((StatusCode::CREATED, Json(body)).into_response())
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct Account {
    /// The merchant (`mer_…`).
    pub id: String,
    #[schema(value_type = String, example = "account")]
    pub object: &'static str,
    pub name: String,
    /// `secret_key`, `restricted_key` or `staff_session`.
    pub credential: &'static str,
    /// A staff session's role.
    pub role: Option<String>,
    /// What the credential may do (every scope for the secret key).
    pub scopes: Vec<String>,
}

#[utoipa::path(get, path = "/v1/account", tag = "keys",
    responses((status = 200, body = Account), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("secret_key" = [])))]
/// Whose credential this is and what it may do: what the console shows and hides.
pub async fn account(merchant: MerchantCaller) -> Json<Account> {
    let credential = match (&merchant.scopes, &merchant.role) {
        (None, _) => "secret_key",
        (Some(_), Some(_)) => "staff_session",
        (Some(_), None) => "restricted_key",
    };
    let scopes = merchant.scopes.as_deref().unwrap_or(&scope::ALL);
    Json(Account {
        id: merchant.id,
        object: "account",
        name: merchant.name,
        credential,
        role: merchant.role,
        scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
    })
}

//! Operator risk rules: CEL expressions that block payments or raise the proof they
//! need (the rules themselves are `pocket_core::risk`; the store applies them inside the
//! transactions that create and confirm payments).

use crate::AppState;
use crate::auth::ADMIN;
use crate::auth::Admin;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Body;
use crate::extract::Path;
use crate::idem::{IdempotencyKey, respond};
use crate::routes::Deleted;
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use pocket_core::Error;
use pocket_core::id::RuleId;
use pocket_core::risk::Action;
use pocket_store::model::RiskRule;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    /// Shown in `402 payment_blocked` and in a raised payment's `policy.rule`.
    pub name: String,
    /// A CEL expression over `payment` (`amount`, `currency`, `merchant`, `tier`),
    /// `customer` (`age_days`, `payments_last_hour`, `spent_today`) and `device`
    /// (`registered`) that gives a boolean.
    #[schema(example = "payment.amount > 100000 && customer.age_days < 7")]
    pub when: String,
    #[schema(value_type = String, example = "require_pin")]
    pub action: String,
}

#[utoipa::path(post, path = "/v1/admin/rules", tag = "operator", request_body = CreateRule,
    responses((status = 201, body = RiskRule), (status = 400, description = "`rule_invalid` with the parser's message, or a bad field", body = ErrorBody),
              (status = 409, description = "`too_many_rules`", body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _: Admin,
    key: IdempotencyKey,
    body: Body<CreateRule>,
) -> ApiResult<Response> {
    let req = body.value;
    validate::text(&req.name, "name", pocket_core::risk::MAX_NAME_CHARS)?;
    let action = Action::parse(&req.action).ok_or_else(|| {
        Error::invalid(
            "action",
            "`action` is \"block\", \"require_pin\" or \"require_pin_and_device\".",
        )
    })?;
    let idem = key.for_caller(ADMIN, &body.raw, StatusCode::CREATED);
    let written = state
        .store
        .add_rule(req.name, req.when, action, idem)
        .await?;
    Ok(respond(written, StatusCode::CREATED))
}

#[derive(Serialize, ToSchema)]
pub struct RuleList {
    #[schema(value_type = String, example = "list")]
    pub object: &'static str,
    /// Every rule, oldest first (the order they are evaluated in).
    pub data: Vec<RiskRule>,
    pub has_more: bool,
}

#[utoipa::path(get, path = "/v1/admin/rules", tag = "operator",
    responses((status = 200, body = RuleList)), security(("admin_key" = [])))]
pub async fn list(State(state): State<AppState>, _: Admin) -> ApiResult<Json<RuleList>> {
    Ok(Json(RuleList {
        object: "list",
        data: state.store.rules().await?,
        has_more: false,
    }))
}

#[utoipa::path(delete, path = "/v1/admin/rules/{id}", tag = "operator", params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<RuleId>,
) -> ApiResult<Json<Deleted>> {
    state.store.remove_rule(id.to_string()).await?;
    Ok(Json(Deleted {
        id: id.into_string(),
        object: "rule",
        deleted: true,
    }))
}

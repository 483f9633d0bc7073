//! Merchant webhook endpoints, and the delivery history of events.

use super::{no_filters, page};
use crate::AppState;
use crate::auth::MerchantCaller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Path;
use crate::extract::{Body, ListQuery};
use crate::idem::IdempotencyKey;
use crate::issued::CreatedWebhookEndpoint;
use crate::issued::secret_response;
use crate::routes::Deleted;
use crate::validate::check_webhook_url;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pocket_core::Error;
use pocket_core::id::{EndpointId, EventId};
use pocket_store::model::{DeliveryAttempt, Page, WebhookEndpoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Event types an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 8] = [
    "payment.created",
    "payment.reminded",
    "payment.authorized",
    "payment.succeeded",
    "payment.declined",
    "payment.expired",
    "payment.canceled",
    "refund.succeeded",
];

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    pub url: String,
    /// Event types to send; omitted or `["*"]`: all.
    pub events: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/v1/webhook_endpoints", tag = "webhooks", request_body = CreateWebhookEndpoint,
    responses((status = 201, body = CreatedWebhookEndpoint), (status = 400, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    key: IdempotencyKey,
    body: Body<CreateWebhookEndpoint>,
) -> ApiResult<Response> {
    let req = body.value;
    check_webhook_url(&state, &req.url, "url")?;
    if let Some(events) = &req.events {
        if events.is_empty() || events.len() > EVENT_TYPES.len() {
            return Err(Error::invalid(
                "events",
                "`events` must list 1 to 7 event types, or \"*\".",
            )
            .into());
        }
        for (i, e) in events.iter().enumerate() {
            if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
                return Err(Error::invalid(
                    &format!("events[{i}]"),
                    format!("Unknown event type \"{e}\"."),
                )
                .into());
            }
        }
    }
    let idem = key.for_caller(&merchant.id, &body.raw, StatusCode::CREATED);
    let written = state
        .store
        .create_webhook_endpoint(merchant.id, req.url, req.events, idem)
        .await?;
    // The endpoint's secret is derived from its id; `with_secrets` adds it.
    let id = match &written {
        pocket_store::model::Written::Fresh(e) => e.id.clone(),
        pocket_store::model::Written::Replayed(stored) => {
            serde_json::from_str::<serde_json::Value>(&stored.body)
                .ok()
                .and_then(|v| v["id"].as_str().map(String::from))
                .unwrap_or_default()
        }
    };
    let secret = pocket_webhooks::signature::endpoint_secret(&state.settings.server_key, &id);
    Ok(secret_response(
        written,
        StatusCode::CREATED,
        &[("secret", secret)],
        &state.settings.server_key,
    ))
}

#[utoipa::path(get, path = "/v1/webhook_endpoints", tag = "webhooks",
    params(("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query)),
    responses((status = 200, description = "A list of webhook endpoints", body = Page<WebhookEndpoint>), (status = 404, description = "`starting_after` names nothing in this list", body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    q: ListQuery,
) -> ApiResult<Response> {
    no_filters(&q)?;
    let page = page(&q, "we")?;
    Ok(Json(
        state
            .store
            .list_webhook_endpoints(merchant.id, page)
            .await?,
    )
    .into_response())
}

#[utoipa::path(delete, path = "/v1/webhook_endpoints/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<EndpointId>,
) -> ApiResult<Json<Deleted>> {
    let e = state
        .store
        .delete_webhook_endpoint(merchant.id, id.into_string())
        .await?;
    Ok(Json(Deleted {
        id: e.id,
        object: "webhook_endpoint",
        deleted: true,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Attempts {
    pub object: &'static str,
    pub data: Vec<DeliveryAttempt>,
    pub has_more: bool,
}

#[utoipa::path(get, path = "/v1/events/{id}/deliveries", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Attempts), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<EventId>,
) -> ApiResult<Json<Attempts>> {
    let data = state
        .store
        .delivery_attempts(merchant.id, id.into_string())
        .await?;
    Ok(Json(Attempts {
        object: "list",
        has_more: data.len() >= 100,
        data,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Redelivery {
    pub object: &'static str,
    pub event: String,
    /// Endpoints the event is queued for.
    pub deliveries: usize,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Redeliver {}

#[utoipa::path(post, path = "/v1/events/{id}/redeliver", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202, body = Redelivery), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<EventId>,
    _body: Body<Redeliver>,
) -> ApiResult<Response> {
    let n = state.store.redeliver(merchant.id, id.to_string()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Redelivery {
            object: "redelivery",
            event: id.into_string(),
            deliveries: n,
        }),
    )
        .into_response())
}

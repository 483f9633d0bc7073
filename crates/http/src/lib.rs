//! Pocket's HTTP API: the contract of `docs/API.md` on axum.
//!
//! A request flows: [`router`] → layers (body limit, sandbox header, tracing) →
//! an auth extractor ([`auth`]) → the strict body/query extractors ([`extract`]) →
//! a handler in [`routes`] that validates and calls one [`pocket_store::SqlStore`]
//! method → the answer, or an [`error::ApiError`] in the contract's shape.
//!
//! This crate must not touch SQL or decide money rules; it translates HTTP to store
//! calls and back. The OpenAPI document is generated from the handlers' annotations.
//!
//! Architecture invariant, checked (`routes::architecture`): no SQL here, and route
//! modules import no other route module.

pub mod auth;
pub mod codes;
pub mod device_keys;
pub mod error;
pub mod extract;
pub mod idem;
pub mod issued;
pub mod limits;
pub mod metrics;
pub mod pins;
pub mod request_id;
pub mod routes;
pub mod secrets;
pub mod settings;
pub mod validate;
pub mod waiting;
pub mod web;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use pocket_store::SqlStore;
use routes::{
    activity, admin, bank, cards, devices, export, merchant, payments, payouts, pin, public, qr,
    rules, service, staff, stream, wallet, webhooks,
};
pub use settings::{PinHashing, Settings};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<SqlStore>,
    pub settings: Arc<Settings>,
    /// Permits for open wallet event streams (a limit on everything).
    pub streams: Arc<tokio::sync::Semaphore>,
    pub limits: Arc<limits::RateLimits>,
    /// PIN hashing, budgets and lockout guards.
    pub pins: Arc<pins::PinGate>,
    /// What `GET /metrics` renders (`None` when no recorder could be installed).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The banks, by connector name.
    pub connectors: Arc<pocket_connectors::Registry>,
    /// Which device shows a payment code, and the bound on wrong codes.
    pub codes: Arc<codes::CodeDirectory>,
    pub code_guesses: Arc<codes::CodeGuesses>,
}

impl AppState {
    pub fn new(store: Arc<SqlStore>, settings: Arc<Settings>) -> AppState {
        let streams = Arc::new(tokio::sync::Semaphore::new(settings.max_streams));
        let limits = Arc::new(limits::RateLimits::new(
            settings.rate_per_ip,
            settings.rate_per_credential,
        ));
        let pins = Arc::new(pins::PinGate::new(
            settings.pin_queue_depth,
            settings.pin_hashing,
            settings.pin_budget_per_ip,
            settings.pin_budget_per_phone,
            settings.pin_lock,
        ));
        AppState {
            store,
            settings: settings.clone(),
            streams,
            limits,
            pins,
            metrics: metrics::install(),
            connectors: Arc::default(),
            codes: Arc::new(codes::CodeDirectory::new(settings.server_key)),
            code_guesses: Arc::new(codes::CodeGuesses::new(settings.code_failures_per_minute)),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Pocket API", version = "1", description = "Mobile payments: merchants, wallets, time-boxed payment requests and a double-entry ledger. The contract is docs/API.md."),
    modifiers(&SecuritySchemes),
    tags((name = "operator"), (name = "wallet"), (name = "merchant"), (name = "payments"), (name = "webhooks"), (name = "service"))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, format) in [
            ("admin_key", "admin key"),
            ("secret_key", "sk_…"),
            ("session_token", "pst_…"),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format(format)
                        .build(),
                ),
            );
        }
    }
}

/// The error answers any operation may give beyond those its handler names: every
/// request may be refused by rate limits (`429`) or a failing store (`503`); one with
/// a credential may find it refused (`401`); one with a path id may find nothing
/// (`404`); one with a body may send a bad (`400`), oversized (`413`) or stalled
/// (`408`) one, or reuse an idempotency key (`409`). The document says so on each.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_id = path.contains('{');
            for (method, op) in [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("delete", item.delete.as_mut()),
            ] {
                let Some(op) = op else { continue };
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut add = vec![
                    (
                        "400",
                        "Invalid request (a parameter, the query or the body)",
                    ),
                    ("429", "Rate limited; see Retry-After"),
                    ("500", "Internal error; the request may be retried"),
                    (
                        "503",
                        "Busy, or the store is unavailable; nothing was done; see Retry-After",
                    ),
                ];
                if secured {
                    add.push((
                        "401",
                        "The credential is missing, wrong, or of the wrong kind",
                    ));
                }
                if has_id {
                    add.push(("404", "No such object (or not this caller's)"));
                }
                if method == "post" {
                    add.push(("408", "The request body did not arrive in time"));
                    add.push((
                        "409",
                        "Conflict, or an Idempotency-Key reused with another request",
                    ));
                    add.push(("413", "The request body is too large"));
                }
                for (status, description) in add {
                    if !op.responses.responses.contains_key(status) {
                        op.responses
                            .responses
                            .insert(status.to_string(), error(description).into());
                    }
                }
            }
        }
    }
}

/// The API's routes and the OpenAPI document describing them.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(operator_routes())
        .merge(merchant_routes())
        .merge(wallet_routes())
        .merge(service_routes());
    let (router, mut doc) = router.split_for_parts();
    // After the routes are in: it looks at every operation.
    CommonErrors.modify(&mut doc);
    (router, doc)
}

/// The operator's routes (the admin key): merchants, customers, top-ups, the ledger, rules.
fn operator_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(admin::create_merchant, admin::list_merchants))
        .routes(routes!(admin::find_customers))
        .routes(routes!(admin::roll_key))
        .routes(routes!(admin::create_topup))
        .routes(routes!(admin::ledger))
        .routes(routes!(admin::reconciliation))
        .routes(routes!(rules::create, rules::list))
        .routes(routes!(rules::delete))
}

/// A merchant's routes (secret, restricted and staff keys): payments, catalog, balance, payouts, webhooks, staff.
fn merchant_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(merchant::roll_own_key))
        .routes(routes!(staff::create_key, staff::list_keys))
        .routes(routes!(staff::revoke_key))
        .routes(routes!(staff::add_staff, staff::list_staff))
        .routes(routes!(staff::remove_staff))
        .routes(routes!(staff::sign_in))
        .routes(routes!(staff::account))
        .routes(routes!(payouts::create_account, payouts::list_accounts))
        .routes(routes!(payouts::create_payout, payouts::list_payouts))
        .routes(routes!(payouts::get_payout))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(merchant::create_product, merchant::list_products))
        .routes(routes!(merchant::update_product))
        .routes(routes!(merchant::balance))
        .routes(routes!(merchant::balance_transactions))
        .routes(routes!(merchant::takings))
        .routes(routes!(export::export))
        .routes(routes!(merchant::events))
        .routes(routes!(payments::create, payments::list))
        .routes(routes!(payments::get))
        .routes(routes!(payments::cancel))
        .routes(routes!(payments::remind))
        .routes(routes!(payments::capture))
        .routes(routes!(payments::refund))
        .routes(routes!(qr::qr))
}

/// The wallet's routes (session tokens), the public ones it uses before sign-in, and the connectors' notifications.
fn wallet_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(public::settings))
        .routes(routes!(public::payment_preview))
        .routes(routes!(wallet::signup))
        .routes(routes!(wallet::sign_in))
        .routes(routes!(wallet::sign_out))
        .routes(routes!(wallet::me))
        .routes(routes!(pin::change_pin))
        .routes(routes!(pin::redeem_reset))
        .routes(routes!(pin::issue_reset))
        .routes(routes!(wallet::list_payments))
        .routes(routes!(wallet::get_payment))
        .routes(routes!(wallet::confirm))
        .routes(routes!(wallet::decline))
        .routes(routes!(bank::topup, bank::list_topups))
        .routes(routes!(bank::get_topup))
        .routes(routes!(bank::withdraw, bank::list_withdrawals))
        .routes(routes!(bank::get_withdrawal))
        .routes(routes!(bank::notification))
        .routes(routes!(wallet::transactions))
        .routes(routes!(activity::activity))
        .routes(routes!(devices::register, devices::list))
        .routes(routes!(devices::revoke))
        .routes(routes!(cards::bind, cards::list))
        .routes(routes!(cards::unbind))
        .routes(routes!(stream::create_ticket))
        .routes(routes!(stream::wallet_events))
}

/// Health and metrics.
fn service_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(service::healthz))
        .routes(routes!(metrics::metrics))
}

/// The OpenAPI 3.1 document as JSON.
pub fn openapi_json() -> String {
    api().1.to_json().unwrap_or_else(|_| String::from("{}"))
}

async fn sandbox_header(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("pocket-mode", HeaderValue::from_static("sandbox"));
    response
}

/// Every answer's `Date` is the store's clock (on PostgreSQL the database's, which
/// decides deadlines and payment-code steps), not this machine's: a wallet that learns
/// the time from it shows codes the till's commit accepts, whichever node it asked.
async fn store_date(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let now_ms = state.store.now_ms();
    let mut response = next.run(request).await;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms.max(0) as u64);
    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, date);
    }
    response
}

/// The whole HTTP application. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so per-IP limits see the peer.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = api();
    let doc_json: Arc<str> = doc.to_json().unwrap_or_else(|_| String::from("{}")).into();
    let sandbox = state.settings.sandbox;
    let mut app = routes
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc_json = doc_json.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc_json.to_string(),
                    )
                        .into_response()
                }
            }),
        )
        .merge(web::routes())
        .fallback(error::no_such_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            extract::buffer_body,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::enforce,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::forwarded,
        ))
        .layer(middleware::from_fn(metrics::track))
        .layer(middleware::from_fn_with_state(state.clone(), store_date))
        .with_state(state);
    if sandbox {
        app = app.layer(middleware::from_fn(sandbox_header));
    }
    app.layer(middleware::from_fn(web::security_headers))
        .layer(middleware::from_fn(request_id::tag))
}

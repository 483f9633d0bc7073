//! `GET /v1/payments/export`: every payment the filters match as CSV, streamed page by
//! page from the store (never the whole list in memory), cells quoted and safe from
//! formula injection (`pocket_core::csv`).

use crate::AppState;
use crate::auth::MerchantCaller;
use crate::error::{ApiResult, ErrorBody};
use crate::validate;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pocket_core::payment::{Payment, Status};
use pocket_core::{Error, csv, phone, time};
use pocket_store::PaymentOwner;
use pocket_store::model::{Page, PageRequest};
use serde::Deserialize;

/// Payments read from the store per look while an export streams.
const EXPORT_PAGE: usize = 500;

/// The columns, in order. Amounts are in major units of the row's currency.
const COLUMNS: [&str; 15] = [
    "id",
    "created_at",
    "completed_at",
    "status",
    "currency",
    "amount",
    "amount_captured",
    "amount_refunded",
    "customer",
    "items",
    "tier",
    "description",
    "failure_code",
    "customer_name",
    "customer_phone",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    customer: Option<String>,
}

/// What an export selects: a status, and created in `[from, to)`.
#[derive(Clone, Copy)]
struct Selection {
    status: Option<Status>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

impl ExportParams {
    fn check(self) -> Result<Selection, Error> {
        let status = super::status_of(self.status.as_deref())?;
        let instant = |param: &str, text: Option<String>| {
            text.map(|t| validate::timestamp(&t, param)).transpose()
        };
        let (from_ms, to_ms) = (instant("from", self.from)?, instant("to", self.to)?);
        if let (Some(f), Some(t)) = (from_ms, to_ms)
            && t <= f
        {
            return Err(Error::invalid("to", "`to` must be later than `from`."));
        }
        Ok(Selection {
            status,
            from_ms,
            to_ms,
        })
    }
}

/// One payment as a CSV line; the customer's phone masked, without the calling code of
/// the server's country (`calling_code`).
fn row(p: &Payment, calling_code: Option<&str>) -> String {
    let major = |minor: i64| p.currency.format_major(minor);
    let items: Vec<String> = p
        .items
        .iter()
        .map(|i| format!("{} x{}", i.sku, i.quantity))
        .collect();
    csv::row(&[
        p.id.clone(),
        time::rfc3339_ms(p.created_at),
        p.completed_at.map(time::rfc3339_ms).unwrap_or_default(),
        p.status.as_str().to_owned(),
        p.currency.code().to_owned(),
        major(p.amount),
        major(p.amount_captured),
        major(p.amount_refunded),
        p.customer.clone().unwrap_or_default(),
        items.join(" "),
        p.policy.tier.clone(),
        p.description.clone().unwrap_or_default(),
        p.failure_code.clone().unwrap_or_default(),
        p.customer_name.clone().unwrap_or_default(),
        p.customer_phone
            .as_deref()
            .map(|e164| phone::masked_locally(e164, calling_code))
            .unwrap_or_default(),
    ])
}

/// How far the list's order may stray from `created_at`: on PostgreSQL a payment is
/// stamped when its batch begins and placed when it is inserted, so batches side by
/// side interleave (each lives seconds at most: `statement_timeout`,
/// `idle_in_transaction_session_timeout`).
const ORDER_SLACK_MS: i64 = 5 * 60 * 1_000;

/// A page's rows inside the selection's dates (the list runs newest first), and
/// whether older pages may still hold some.
fn rows_of(page: &Page<Payment>, s: &Selection, calling_code: Option<&str>) -> (String, bool) {
    let mut out = String::new();
    for p in &page.data {
        if s.from_ms.is_some_and(|f| p.created_at < f - ORDER_SLACK_MS) {
            return (out, false);
        }
        if s.from_ms.is_some_and(|f| p.created_at < f) {
            continue;
        }
        if s.to_ms.is_none_or(|t| p.created_at < t) {
            out.push_str(&row(p, calling_code));
        }
    }
    (out, page.has_more)
}

/// What the stream does next.
enum Next {
    Page(Page<Payment>),
    Failed(Error),
    End,
}

async fn look(
    state: &AppState,
    owner: &PaymentOwner,
    s: &Selection,
    after: Option<String>,
) -> Next {
    let page = PageRequest {
        limit: EXPORT_PAGE,
        starting_after: after,
    };
    match state
        .store
        .list_payments(owner.clone(), s.status, page)
        .await
    {
        Ok(p) => Next::Page(p),
        Err(e) => Next::Failed(e),
    }
}

#[utoipa::path(get, path = "/v1/payments/export", tag = "payments",
    params(("status" = Option<String>, Query), ("customer" = Option<String>, Query, description = "A `cus_` id or a phone number: that customer's payments"), ("from" = Option<String>, Query, description = "RFC 3339: created at or after"),
           ("to" = Option<String>, Query, description = "RFC 3339: created before")),
    responses((status = 200, description = "Every payment the filters match, newest first, as CSV (a header line, then one line each; amounts in major units)", content_type = "text/csv", body = String),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("secret_key" = [])))]
/// Every payment the filters match as CSV, streamed: the first page is read before the
/// answer begins (a store that cannot answer gets `503`); a store failing later ends
/// the transfer unfinished, never a file that looks complete.
pub async fn export(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    query: Result<Query<ExportParams>, QueryRejection>,
) -> ApiResult<Response> {
    let params = query
        .map_err(|_| {
            Error::invalid(
                "query",
                "Expected `status`, `from`, `to` and `customer`, each optional.",
            )
        })?
        .0;
    let owner = super::owner_of(&state, merchant.id, params.customer.as_deref())?;
    let selection = params.check()?;
    let calling_code = phone::calling_code(&state.settings.qr.place.country);
    let first = match look(&state, &owner, &selection, None).await {
        Next::Failed(e) => return Err(e.into()),
        next => next,
    };
    let header = csv::row(&COLUMNS);
    let body = futures_util::stream::unfold((first, Some(header)), move |(next, header)| {
        let (state, owner) = (state.clone(), owner.clone());
        async move {
            let page = match next {
                Next::End => return None,
                Next::Failed(e) => {
                    tracing::warn!(
                        code = e.code,
                        "an export ended unfinished: the store failed"
                    );
                    return Some((
                        Err(std::io::Error::other("the store failed")),
                        (Next::End, None),
                    ));
                }
                Next::Page(page) => page,
            };
            let (rows, more) = rows_of(&page, &selection, calling_code);
            let next = match (more, page.data.last()) {
                (true, Some(last)) => look(&state, &owner, &selection, Some(last.id.clone())).await,
                _ => Next::End,
            };
            let chunk = header.unwrap_or_default() + &rows;
            Some((Ok::<_, std::io::Error>(chunk), (next, None)))
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"payments.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

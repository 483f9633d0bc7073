//! `GET /v1/wallet/activity`: the wallet's history as its holder reads it — payments,
//! holds and what became of them, refunds naming the merchant, top-ups, withdrawals,
//! requests declined or expired — with money in and out of each month on the page,
//! summed by the server from the ledger.

use crate::AppState;
use crate::auth::CustomerCaller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{DEFAULT_LIMIT, MAX_LIMIT};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use pocket_core::Error;
use pocket_core::activity::{Activity, Kind};
use pocket_core::time;
use pocket_store::model::{MonthFlow, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most minutes east or west of UTC a `utc_offset` may be.
const MAX_UTC_OFFSET_MINUTES: i32 = 14 * 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityParams {
    kind: Option<String>,
    limit: Option<String>,
    starting_after: Option<String>,
    utc_offset: Option<String>,
}

/// What a history page asks for, checked.
struct Asked {
    kind: Option<Kind>,
    page: PageRequest,
    utc_offset: i32,
}

impl ActivityParams {
    fn check(self) -> Result<Asked, Error> {
        let kind = match self.kind.as_deref() {
            None => None,
            Some(k) => Some(Kind::parse(k).ok_or_else(|| {
                Error::invalid(
                    "kind",
                    "`kind` must be one of payment, hold, capture, release, canceled, declined, expired, refund, topup, withdrawal.",
                )
            })?),
        };
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    Error::invalid("limit", format!("`limit` must be 1 to {MAX_LIMIT}."))
                })?,
        };
        if let Some(after) = &self.starting_after {
            pocket_core::id::check(after, "evt", "starting_after")?;
        }
        let utc_offset = match self.utc_offset {
            None => 0,
            Some(o) => o
                .parse::<i32>()
                .ok()
                .filter(|o| o.abs() <= MAX_UTC_OFFSET_MINUTES)
                .ok_or_else(|| {
                    Error::invalid(
                        "utc_offset",
                        "`utc_offset` must be minutes east of UTC, -840 to 840.",
                    )
                })?,
        };
        Ok(Asked {
            kind,
            page: PageRequest {
                limit,
                starting_after: self.starting_after,
            },
            utc_offset,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct ActivityPage {
    #[schema(value_type = String, example = "list")]
    pub object: &'static str,
    pub data: Vec<Activity>,
    pub has_more: bool,
    /// Money into and out of the wallet in each month the page's lines fall in (by
    /// `utc_offset`), per currency, over the whole month.
    pub months: Vec<MonthFlow>,
}

#[utoipa::path(get, path = "/v1/wallet/activity", tag = "wallet",
    params(("kind" = Option<String>, Query, description = "Only lines of this kind"),
           ("limit" = Option<u32>, Query), ("starting_after" = Option<String>, Query),
           ("utc_offset" = Option<i32>, Query, description = "Minutes east of UTC where months begin (default 0)")),
    responses((status = 200, body = ActivityPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, description = "`starting_after` names nothing in this list", body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn activity(
    State(state): State<AppState>,
    caller: CustomerCaller,
    query: Result<Query<ActivityParams>, QueryRejection>,
) -> ApiResult<Json<ActivityPage>> {
    let asked = query
        .map_err(|_| {
            Error::invalid(
                "query",
                "Expected `kind`, `limit`, `starting_after` and `utc_offset`, each optional.",
            )
        })?
        .0
        .check()?;
    let customer = caller.customer.id;
    let page = state
        .store
        .activity(customer.clone(), asked.kind, asked.page)
        .await?;
    let mut months: Vec<(String, i64, i64)> = Vec::new();
    for line in &page.data {
        let month = time::month_of(line.created_at, asked.utc_offset);
        if !months.iter().any(|m| m.0 == month.0) {
            months.push(month);
        }
    }
    let months = state.store.wallet_months(customer, months).await?;
    Ok(Json(ActivityPage {
        object: "list",
        data: page.data,
        has_more: page.has_more,
        months,
    }))
}

//! Wallet bank cards: bind (with the PIN, through a connector), list, unbind. The
//! number and CVC are checked here (Luhn, expiry, length) before any bank is asked,
//! handed to the connector, and then forgotten: only the bank's token, the brand, the
//! last four digits, the expiry and a keyed fingerprint are kept.

use crate::AppState;
use crate::auth::CustomerCaller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::extract::Path;
use crate::idem::{IdempotencyKey, replay, respond};
use crate::limits::ClientIp;
use crate::pins::{check_holder_pin, guarded_precheck, holder_subject, to_completion};
use crate::secrets::digest;
use crate::validate;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use pocket_connectors::{CardDetails, ConnectorError};
use pocket_core::card::{CardNumber, check_cvc, check_expiry, parse_number};
use pocket_core::id::CardId;
use pocket_core::{Error, ErrorKind};
use pocket_store::model::{Card, NewCard, Page};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindCard {
    /// The card number (12 to 19 digits; spaces and dashes allowed). Never stored.
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    /// Never stored.
    pub cvc: String,
    pub holder_name: Option<String>,
    /// The wallet's PIN.
    pub pin: String,
    /// Which connector (bank) to bind it with; the first configured by default.
    pub connector: Option<String>,
}

fn no_connector(name: Option<&str>) -> ApiError {
    ApiError(
        Error::invalid(
            "connector",
            match name {
                Some(n) => format!("No connector called '{n}' is configured."),
                None => "No bank connector is configured on this server.".to_string(),
            },
        )
        .with_param("connector"),
    )
}

#[utoipa::path(post, path = "/v1/wallet/cards", tag = "wallet", request_body = BindCard,
    responses((status = 201, body = Card), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 402, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody),
              (status = 503, body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn bind(
    State(state): State<AppState>,
    ip: ClientIp,
    caller: CustomerCaller,
    key: IdempotencyKey,
    body: Body<BindCard>,
) -> ApiResult<Response> {
    to_completion(async move {
        let customer = caller.customer;
        let idem = key.for_caller(&customer.id, &body.raw, StatusCode::CREATED);
        let subject = holder_subject(&customer.id);
        if let Some(stored) = guarded_precheck(&state, ip, subject, idem.as_ref()).await? {
            return Ok(replay(stored));
        }
        let req = body.value;
        let number = checked_card(&req, state.store.now_ms())?;
        let connector = state
            .connectors
            .pick(req.connector.as_deref())
            .ok_or_else(|| no_connector(req.connector.as_deref()))?;
        let fingerprint = digest(
            &state.settings.server_key,
            &format!("card-number:{}", number.digits()),
        );
        // The PIN first: whether a card is bound is not told to someone without it.
        let attempt = check_holder_pin(&state, ip, &customer, &req.pin).await?;
        let bound_already = state
            .store
            .card_bound(customer.id.clone(), fingerprint.clone())
            .await?;
        let details = CardDetails {
            number,
            exp_month: req.exp_month,
            exp_year: req.exp_year,
            cvc: req.cvc,
            holder_name: req.holder_name,
        };
        let bound = match bound_already {
            true => Err(already_bound()),
            false => bind_at_bank(connector.as_ref(), &details).await,
        };
        // Brand and last four digits are Pocket's own reading of the number, not what
        // the bank says; only the token comes from the bank (its form checked there).
        let (brand, last4) = (
            details.number.brand.as_str().to_string(),
            details.number.last4(),
        );
        drop(details);
        let token = match bound {
            Ok(t) => t,
            Err(e) => {
                // The PIN was right: its attempt is settled as such.
                state.store.settle_right_pin(attempt).await?;
                return Err(ApiError(e));
            }
        };
        let card = NewCard {
            connector: connector.name().to_string(),
            token,
            brand,
            last4,
            exp_month: req.exp_month,
            exp_year: req.exp_year,
            fingerprint,
        };
        let written = state.store.add_card(customer.id, card, attempt, idem);
        Ok(respond(written.await?, StatusCode::CREATED))
    })
    .await
}

fn already_bound() -> Error {
    Error::conflict(
        "card_already_bound",
        "This card is already bound to this wallet.",
    )
    .with_param("number")
}

/// The card's number, once its number, expiry (against `now_ms`'s month), CVC and
/// holder's name are each well-formed.
fn checked_card(req: &BindCard, now_ms: i64) -> Result<CardNumber, Error> {
    let number = parse_number(&req.number)?;
    let today = pocket_core::time::utc_year_month(now_ms);
    check_expiry(req.exp_month, req.exp_year, today)?;
    check_cvc(&req.cvc, number.brand)?;
    if let Some(name) = &req.holder_name {
        validate::text(name, "holder_name", validate::MAX_NAME_CHARS)?;
    }
    Ok(number)
}

/// Asks the bank to bind the card: its token (of the allowed form), or the contract's
/// error — declined (`402 card_declined`), or no believable answer (`503`).
async fn bind_at_bank(
    connector: &dyn pocket_connectors::Connector,
    details: &CardDetails,
) -> Result<String, Error> {
    connector
        .bind_card(&pocket_store::ids::new_id("op"), details)
        .await
        .and_then(|token| match pocket_connectors::token_ok(&token) {
            true => Ok(token),
            false => Err(ConnectorError::Invalid {
                why: "the card token is not [A-Za-z0-9._:-]{1,200}".into(),
            }),
        })
        .inspect_err(|e| {
            if let ConnectorError::Invalid { why } | ConnectorError::Disagrees { why } = e {
                tracing::error!(connector = %connector.name(), %why, "a binding answer was refused");
            }
        })
        .map_err(|e| match e {
            ConnectorError::Declined { decline_code } => Error::new(
                ErrorKind::Payment,
                "card_declined",
                "The bank refused this card.",
            )
            .with_param("number")
            .with_decline_code(decline_code),
            ConnectorError::Unavailable { .. }
            | ConnectorError::UnknownOperation
            | ConnectorError::Invalid { .. }
            | ConnectorError::Disagrees { .. } => Error::new(
                ErrorKind::Unavailable,
                "connector_unavailable",
                "The bank did not answer; nothing was bound. Retry after a moment.",
            ),
        })
}

#[utoipa::path(get, path = "/v1/wallet/cards", tag = "wallet",
    responses((status = 200, body = Page<Card>)), security(("session_token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: CustomerCaller,
) -> ApiResult<Json<Page<Card>>> {
    let data = state.store.list_cards(caller.customer.id).await?;
    let n = data.len();
    Ok(Json(Page::new(data, n)))
}

#[utoipa::path(delete, path = "/v1/wallet/cards/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = Card), (status = 404, body = ErrorBody)), security(("session_token" = [])))]
pub async fn unbind(
    State(state): State<AppState>,
    caller: CustomerCaller,
    Path(id): Path<CardId>,
) -> ApiResult<Json<Card>> {
    Ok(Json(
        state
            .store
            .remove_card(caller.customer.id, id.into_string())
            .await?,
    ))
}

//! What the wallet app may read before anyone signs in: how to take phone numbers and
//! whether sandbox top-ups exist here, and the merchant and amount of an open payment
//! whose link (or QR code) was opened.

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use pocket_core::Error;
use pocket_core::id::PaymentId;
use pocket_core::payment::{Payment, Status};
use pocket_core::phone::calling_code;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct WalletSettings {
    #[schema(value_type = String, example = "wallet_settings")]
    pub object: &'static str,
    /// ISO 3166-1 alpha-2 of the country this server serves (`qr.country`).
    pub country: String,
    /// Its calling code with `+` (`"+86"`): numbers typed without `+` get it put in
    /// front; `null` when unknown (then only E.164 numbers are taken).
    pub calling_code: Option<String>,
    /// Whether wallets may add money without a card (a server started with `--sandbox`).
    pub sandbox_topups: bool,
}

#[utoipa::path(get, path = "/v1/wallet/settings", tag = "wallet",
    responses((status = 200, body = WalletSettings)))]
pub async fn settings(State(state): State<AppState>) -> Json<WalletSettings> {
    let country = state.settings.qr.place.country.clone();
    Json(WalletSettings {
        object: "wallet_settings",
        calling_code: calling_code(&country).map(|c| format!("+{c}")),
        country,
        sandbox_topups: state.settings.sandbox,
    })
}

#[derive(Serialize, ToSchema)]
pub struct PreviewItem {
    pub name: String,
    pub quantity: i64,
}

/// An open payment as the person who opened its link sees it before signing in.
#[derive(Serialize, ToSchema)]
pub struct PaymentPreview {
    pub id: String,
    #[schema(value_type = String, example = "payment_preview")]
    pub object: &'static str,
    pub merchant_name: String,
    pub amount: i64,
    #[schema(value_type = String, example = "CNY")]
    pub currency: String,
    pub status: Status,
    pub items: Vec<PreviewItem>,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: String,
}

fn preview(p: Payment) -> PaymentPreview {
    PaymentPreview {
        object: "payment_preview",
        merchant_name: p.merchant_name,
        amount: p.amount,
        currency: p.currency.to_string(),
        status: p.status,
        items: p
            .items
            .into_iter()
            .map(|i| PreviewItem {
                name: i.name,
                quantity: i.quantity,
            })
            .collect(),
        expires_at: pocket_core::time::rfc3339_ms(p.expires_at),
        id: p.id,
    }
}

#[utoipa::path(get, path = "/v1/pay/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = PaymentPreview),
              (status = 404, description = "No such payment, or one addressed to a customer or already paid (only open payments are previewed)", body = ErrorBody)))]
pub async fn payment_preview(
    State(state): State<AppState>,
    Path(id): Path<PaymentId>,
) -> ApiResult<Json<PaymentPreview>> {
    match state.store.payment(id.to_string()).await? {
        // Only an open payment: its id is on a QR code anyone may see. One addressed to
        // a customer (or paid, so now someone's) stays between them and the merchant.
        Some(p) if p.customer.is_none() => Ok(Json(preview(p))),
        _ => Err(Error::not_found("payment", id.as_str()).into()),
    }
}

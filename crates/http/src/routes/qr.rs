//! The payment's QR code as SVG, drawn from its EMVCo payload (`qr_payload`).

use crate::AppState;
use crate::auth::MerchantCaller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Path;
use crate::routes::own_payment;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pocket_core::Error;
use pocket_core::error::internal;
use pocket_core::id::PaymentId;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// Renders `payload` as an SVG QR code (error correction M, 8 px modules).
pub fn svg_of(payload: &str) -> Result<String, Error> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
        .map_err(internal("QR code of a payment payload"))?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

#[utoipa::path(get, path = "/v1/payments/{id}/qr", tag = "payments", params(("id" = String, Path)),
    responses((status = 200, content_type = "image/svg+xml", description = "QR code of the payment's EMVCo payload"), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn qr(
    State(state): State<AppState>,
    merchant: MerchantCaller,
    Path(id): Path<PaymentId>,
) -> ApiResult<Response> {
    let p = own_payment(&state, &merchant.id, &id).await?;
    let svg = svg_of(&p.qr_payload)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        svg,
    )
        .into_response())
}

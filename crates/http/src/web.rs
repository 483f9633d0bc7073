//! The wallet app (`/`, `/pay/{id}`), the merchant console (`/merchant`) and the
//! operator console (`/admin`): static
//! files embedded in the binary (no CDN, no build step), served with a strict
//! Content-Security-Policy and the other browser security headers on every response.

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const WALLET_HTML: &str = include_str!("../web/wallet.html");
const MERCHANT_HTML: &str = include_str!("../web/merchant.html");
const ADMIN_HTML: &str = include_str!("../web/admin.html");
const ICON_SVG: &str = include_str!("../web/icon.svg");

/// `(name, content type, body)` of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../web/app.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/common.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/i18n.js"),
    ),
    (
        "wallet.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet.js"),
    ),
    (
        "wallet-state.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet-state.js"),
    ),
    (
        "wallet-keys.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet-keys.js"),
    ),
    (
        "wallet-pinpad.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet-pinpad.js"),
    ),
    (
        "wallet-sheet.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet-sheet.js"),
    ),
    (
        "wallet-history.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet-history.js"),
    ),
    (
        "wallet-pay.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet-pay.js"),
    ),
    (
        "wallet-cards.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet-cards.js"),
    ),
    (
        "wallet-me.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/wallet-me.js"),
    ),
    (
        "paycode.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/paycode.js"),
    ),
    // Vendored, unchanged (web/vendor/README.md: versions and licences).
    (
        "qrcode.mjs",
        "text/javascript; charset=utf-8",
        include_str!("../web/vendor/qrcode.mjs"),
    ),
    (
        "jsbarcode.code128.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/vendor/jsbarcode.code128.min.js"),
    ),
    (
        "jsQR.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/vendor/jsQR.js"),
    ),
    (
        "merchant.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/merchant.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/admin.js"),
    ),
    ("icon.svg", "image/svg+xml", ICON_SVG),
    (
        "wallet.webmanifest",
        "application/manifest+json",
        include_str!("../web/wallet.webmanifest"),
    ),
];

/// No inline script or style, nothing from elsewhere, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn html(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

const SERVICE_WORKER: &str = include_str!("../web/sw.js");

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => file(content_type, body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { html(WALLET_HTML) }))
        .route("/pay/{id}", get(|| async { html(WALLET_HTML) }))
        .route("/merchant", get(|| async { html(MERCHANT_HTML) }))
        .route(
            "/merchant/",
            get(|| async { Redirect::permanent("/merchant") }),
        )
        .route("/admin", get(|| async { html(ADMIN_HTML) }))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route(
            "/favicon.ico",
            get(|| async { file("image/svg+xml", ICON_SVG) }),
        )
        // The wallet's offline shell: a service worker controls only what is under its
        // own path, so it is served from the root.
        .route(
            "/sw.js",
            get(|| async { file("text/javascript; charset=utf-8", SERVICE_WORKER) }),
        )
        .route("/assets/{name}", get(asset))
}

/// Adds the browser security headers to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut r = next.run(request).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"),
    );
    r
}

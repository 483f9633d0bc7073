//! Every kind of bad input gets the contract's error and changes nothing: each test
//! snapshots the ledger, both balances, the payments, events and catalog before and
//! after the bad request and asserts they are identical.

use crate::common::{ADMIN_KEY, Reply, Server};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

struct Fx {
    s: Server,
    sk: String,
    token: String,
    customer: String,
    /// A pending `small` payment addressed to the customer.
    pending: String,
}

async fn fixture() -> Fx {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Tea House").await;
    s.product(&sk, "tea", 1299, "CNY").await;
    s.product(&sk, "sushi", 800, "JPY").await;
    let r = s
        .post("/v1/products/sushi", &sk, json!({"active": false}))
        .await;
    assert_eq!(r.body["active"], false);
    let (customer, token) = s.customer("+8613800000001", 10_000).await;
    let p = s.payment(&sk, json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": 1}], "customer": customer})).await;
    Fx {
        pending: p["id"].as_str().unwrap().to_string(),
        s,
        sk,
        token,
        customer,
    }
}

impl Fx {
    /// Sends a request that must fail with `(status, code, param)` — `param` when
    /// given — and change nothing.
    async fn refused(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
        (status, code, param): (u16, &str, Option<&str>),
    ) -> Reply {
        let before = self.s.snapshot(&self.sk, &self.token).await;
        let r = self.s.call(method, path, auth, body, None).await;
        r.assert_error(status, code);
        if let Some(p) = param {
            assert_eq!(r.param(), Some(p), "{}", r.text);
        }
        let after = self.s.snapshot(&self.sk, &self.token).await;
        assert_eq!(before, after, "a refused request changed state");
        r
    }

    async fn bad_payment(&self, body: Value, status: u16, code: &str, param: Option<&str>) {
        self.refused(
            Method::POST,
            "/v1/payments",
            Some(&self.sk),
            Some(body),
            (status, code, param),
        )
        .await;
    }

    async fn with_status(&self, status: &str) -> String {
        let p = self.s.payment(&self.sk, json!({"currency": "CNY", "amount": 100, "customer": self.customer, "expires_in": 1})).await;
        let id = p["id"].as_str().unwrap().to_string();
        match status {
            "succeeded" => assert_eq!(
                self.s.confirm(&self.token, &id, json!({})).await.status,
                200
            ),
            "declined" => assert_eq!(
                self.s
                    .post(
                        &format!("/v1/wallet/payments/{id}/decline"),
                        &self.token,
                        json!({})
                    )
                    .await
                    .status,
                200
            ),
            "canceled" => assert_eq!(
                self.s
                    .post(&format!("/v1/payments/{id}/cancel"), &self.sk, json!({}))
                    .await
                    .status,
                200
            ),
            "expired" => loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if self
                    .s
                    .get(&format!("/v1/payments/{id}"), &self.sk)
                    .await
                    .body["status"]
                    == "expired"
                {
                    break;
                }
            },
            _ => unreachable!(),
        }
        id
    }
}

#[tokio::test]
async fn malformed_json() {
    let fx = fixture().await;
    let before = fx.s.snapshot(&fx.sk, &fx.token).await;
    for raw in [
        r#"{"currency": "CNY", "amount": 5"#,
        "not json",
        r#"{"currency":"CNY","amount":5} {}"#,
        "[1,2",
    ] {
        let r = fx.s.post_raw("/v1/payments", &fx.sk, raw.to_string()).await;
        r.assert_error(400, "invalid_json");
    }
    assert_eq!(before, fx.s.snapshot(&fx.sk, &fx.token).await);
}

#[tokio::test]
async fn wrong_types() {
    let fx = fixture().await;
    fx.bad_payment(
        json!({"currency": 156, "amount": 100}),
        400,
        "parameter_invalid",
        Some("currency"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100, "metadata": {"a": 1}}),
        400,
        "parameter_invalid",
        Some("metadata.a"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "items": {"sku": "tea"}}),
        400,
        "parameter_invalid",
        Some("items"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": true}),
        400,
        "parameter_invalid",
        Some("amount"),
    )
    .await;
}

#[tokio::test]
async fn float_or_string_amounts() {
    let fx = fixture().await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 12.5}),
        400,
        "parameter_invalid",
        Some("amount"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100.0}),
        400,
        "parameter_invalid",
        Some("amount"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": "100"}),
        400,
        "parameter_invalid",
        Some("amount"),
    )
    .await;
    let r =
        fx.s.post_raw(
            "/v1/payments",
            &fx.sk,
            r#"{"currency":"CNY","amount":1e3}"#.to_string(),
        )
        .await;
    r.assert_error(400, "parameter_invalid");
    fx.refused(
        Method::POST,
        "/v1/admin/topups",
        Some(ADMIN_KEY),
        Some(json!({"customer": fx.customer, "amount": 1.5, "currency": "CNY"})),
        (400, "parameter_invalid", Some("amount")),
    )
    .await;
}

#[tokio::test]
async fn zero_negative_and_over_limit_amounts() {
    let fx = fixture().await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 0}),
        400,
        "parameter_invalid",
        Some("amount"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": -100}),
        400,
        "parameter_invalid",
        Some("amount"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 1_000_000_000_000_001_i64}),
        400,
        "amount_too_large",
        Some("amount"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 5_000_001}),
        400,
        "amount_too_large",
        Some("amount"),
    )
    .await;
    let r =
        fx.s.post_raw(
            "/v1/payments",
            &fx.sk,
            r#"{"currency":"CNY","amount":99999999999999999999999}"#.to_string(),
        )
        .await;
    r.assert_error(400, "parameter_invalid");
    fx.refused(
        Method::POST,
        "/v1/admin/topups",
        Some(ADMIN_KEY),
        Some(json!({"customer": fx.customer, "amount": 0, "currency": "CNY"})),
        (400, "parameter_invalid", Some("amount")),
    )
    .await;
    fx.refused(Method::POST, "/v1/admin/topups", Some(ADMIN_KEY), Some(json!({"customer": fx.customer, "amount": 1_000_000_000_000_001_i64, "currency": "CNY"})), (400, "amount_too_large", Some("amount"))).await;
    fx.refused(
        Method::POST,
        "/v1/products",
        Some(&fx.sk),
        Some(json!({"sku": "z", "name": "z", "unit_amount": -1, "currency": "CNY"})),
        (400, "parameter_invalid", Some("unit_amount")),
    )
    .await;
}

#[tokio::test]
async fn unknown_and_lower_case_currencies() {
    let fx = fixture().await;
    for c in ["XYZ", "cny", "Cny", "XAU", ""] {
        fx.bad_payment(
            json!({"currency": c, "amount": 100}),
            400,
            "currency_unsupported",
            Some("currency"),
        )
        .await;
    }
    fx.refused(
        Method::POST,
        "/v1/admin/topups",
        Some(ADMIN_KEY),
        Some(json!({"customer": fx.customer, "amount": 100, "currency": "usd"})),
        (400, "currency_unsupported", Some("currency")),
    )
    .await;
}

#[tokio::test]
async fn unknown_fields() {
    let fx = fixture().await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100, "tip": 5}),
        400,
        "unknown_field",
        Some("tip"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": 1, "price": 1}]}),
        400,
        "unknown_field",
        Some("items[0].price"),
    )
    .await;
    fx.refused(
        Method::POST,
        "/v1/wallet/topups",
        Some(&fx.token),
        Some(json!({"amount": 1, "currency": "CNY", "x": 1})),
        (400, "unknown_field", Some("x")),
    )
    .await;
    fx.refused(
        Method::GET,
        "/v1/payments?colour=red",
        Some(&fx.sk),
        None,
        (400, "unknown_field", Some("colour")),
    )
    .await;
}

#[tokio::test]
async fn bodies_over_64_kib() {
    let fx = fixture().await;
    let before = fx.s.snapshot(&fx.sk, &fx.token).await;
    let big = format!(
        r#"{{"currency":"CNY","amount":100,"description":"{}"}}"#,
        "x".repeat(65 * 1024)
    );
    fx.s.post_raw("/v1/payments", &fx.sk, big)
        .await
        .assert_error(413, "body_too_large");
    // Also without a Content-Length (chunked).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..70).map(|_| Ok(vec![b' '; 1024])).collect();
    let stream = reqwest::Body::wrap_stream(futures_stream(chunks));
    fx.s.post_raw("/v1/payments", &fx.sk, stream)
        .await
        .assert_error(413, "body_too_large");
    assert_eq!(before, fx.s.snapshot(&fx.sk, &fx.token).await);
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static {
    struct It(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);
    impl futures_core::Stream for It {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    It(chunks.into_iter())
}

#[tokio::test]
async fn credentials_of_the_wrong_kind() {
    let fx = fixture().await;
    let body = json!({"currency": "CNY", "amount": 100});
    fx.refused(
        Method::POST,
        "/v1/payments",
        Some(&fx.token),
        Some(body.clone()),
        (401, "invalid_api_key", None),
    )
    .await;
    fx.refused(
        Method::POST,
        "/v1/payments",
        Some(ADMIN_KEY),
        Some(body.clone()),
        (401, "invalid_api_key", None),
    )
    .await;
    fx.refused(
        Method::POST,
        "/v1/payments",
        None,
        Some(body),
        (401, "invalid_api_key", None),
    )
    .await;
    fx.refused(
        Method::POST,
        "/v1/payments",
        Some("sk_forged00000000000000000000000000"),
        Some(json!({})),
        (401, "invalid_api_key", None),
    )
    .await;
    let confirm = format!("/v1/wallet/payments/{}/confirm", fx.pending);
    fx.refused(
        Method::POST,
        &confirm,
        Some(&fx.sk),
        Some(json!({})),
        (401, "invalid_token", None),
    )
    .await;
    fx.refused(
        Method::POST,
        &confirm,
        Some(ADMIN_KEY),
        Some(json!({})),
        (401, "invalid_token", None),
    )
    .await;
    fx.refused(
        Method::POST,
        "/v1/admin/topups",
        Some(&fx.sk),
        Some(json!({"customer": fx.customer, "amount": 100, "currency": "CNY"})),
        (401, "invalid_api_key", None),
    )
    .await;
    fx.refused(
        Method::POST,
        "/v1/admin/merchants",
        Some(&fx.token),
        Some(json!({"name": "x"})),
        (401, "invalid_api_key", None),
    )
    .await;
    fx.refused(
        Method::GET,
        "/v1/admin/ledger",
        Some(&fx.sk),
        None,
        (401, "invalid_api_key", None),
    )
    .await;
}

#[tokio::test]
async fn another_merchants_payment() {
    let fx = fixture().await;
    let (_, other_sk) = fx.s.merchant("Other").await;
    let id = &fx.pending;
    fx.refused(
        Method::GET,
        &format!("/v1/payments/{id}"),
        Some(&other_sk),
        None,
        (404, "resource_missing", None),
    )
    .await;
    fx.refused(
        Method::POST,
        &format!("/v1/payments/{id}/cancel"),
        Some(&other_sk),
        Some(json!({})),
        (404, "resource_missing", None),
    )
    .await;
    let done = fx.with_status("succeeded").await;
    fx.refused(
        Method::POST,
        &format!("/v1/payments/{done}/refunds"),
        Some(&other_sk),
        Some(json!({})),
        (404, "resource_missing", None),
    )
    .await;
}

#[tokio::test]
async fn confirming_a_payment_that_is_not_pending() {
    let fx = fixture().await;
    for (status, code) in [
        ("succeeded", "payment_not_pending"),
        ("declined", "payment_not_pending"),
        ("canceled", "payment_not_pending"),
        ("expired", "payment_expired"),
    ] {
        let id = fx.with_status(status).await;
        let path = format!("/v1/wallet/payments/{id}/confirm");
        fx.refused(
            Method::POST,
            &path,
            Some(&fx.token),
            Some(json!({})),
            (409, code, None),
        )
        .await;
        let got = fx.s.get(&format!("/v1/payments/{id}"), &fx.sk).await;
        assert_eq!(got.body["status"], status);
    }
}

#[tokio::test]
async fn a_refund_above_what_is_left() {
    let fx = fixture().await;
    let id = fx.with_status("succeeded").await;
    let path = format!("/v1/payments/{id}/refunds");
    fx.refused(
        Method::POST,
        &path,
        Some(&fx.sk),
        Some(json!({"amount": 101})),
        (409, "refund_exceeds_payment", Some("amount")),
    )
    .await;
    assert_eq!(
        fx.s.post(&path, &fx.sk, json!({"amount": 60})).await.status,
        201
    );
    fx.refused(
        Method::POST,
        &path,
        Some(&fx.sk),
        Some(json!({"amount": 41})),
        (409, "refund_exceeds_payment", Some("amount")),
    )
    .await;
    // A payment that never succeeded cannot be refunded at all.
    let pending = format!("/v1/payments/{}/refunds", fx.pending);
    fx.refused(
        Method::POST,
        &pending,
        Some(&fx.sk),
        Some(json!({})),
        (409, "payment_not_succeeded", None),
    )
    .await;
}

#[tokio::test]
async fn a_taken_phone() {
    let fx = fixture().await;
    fx.refused(
        Method::POST,
        "/v1/wallet/signup",
        None,
        Some(json!({"phone": "+8613800000001", "name": "Dup", "pin": "111111"})),
        (409, "phone_taken", Some("phone")),
    )
    .await;
}

#[tokio::test]
async fn a_pin_that_is_not_six_digits() {
    let fx = fixture().await;
    for pin in ["12345", "1234567", "12345a", "", "１２３４５６"] {
        fx.refused(
            Method::POST,
            "/v1/wallet/signup",
            None,
            Some(json!({"phone": "+8613800000099", "name": "N", "pin": pin})),
            (400, "parameter_invalid", Some("pin")),
        )
        .await;
    }
    fx.refused(
        Method::POST,
        "/v1/wallet/signup",
        None,
        Some(json!({"phone": "+8613800000099", "name": "N", "pin": 123456})),
        (400, "parameter_invalid", Some("pin")),
    )
    .await;
    fx.refused(
        Method::POST,
        "/v1/wallet/signup",
        None,
        Some(json!({"phone": "13800000099", "name": "N", "pin": "123456"})),
        (400, "parameter_invalid", Some("phone")),
    )
    .await;
}

#[tokio::test]
async fn more_than_twenty_metadata_keys() {
    let fx = fixture().await;
    let meta: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100, "metadata": meta}),
        400,
        "parameter_invalid",
        Some("metadata"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100, "metadata": {"k": "v".repeat(501)}}),
        400,
        "parameter_invalid",
        Some("metadata.k"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100, "description": "d".repeat(501)}),
        400,
        "parameter_invalid",
        Some("description"),
    )
    .await;
}

#[tokio::test]
async fn expires_in_above_the_tier_window() {
    let fx = fixture().await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100, "expires_in": 301}),
        400,
        "parameter_invalid",
        Some("expires_in"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 30_000, "expires_in": 121}),
        400,
        "parameter_invalid",
        Some("expires_in"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100, "expires_in": 0}),
        400,
        "parameter_invalid",
        Some("expires_in"),
    )
    .await;
}

#[tokio::test]
async fn limits_outside_one_to_a_hundred() {
    let fx = fixture().await;
    for path in [
        "/v1/payments?limit=0",
        "/v1/payments?limit=101",
        "/v1/events?limit=0",
        "/v1/events?limit=101",
        "/v1/payments?limit=abc",
    ] {
        fx.refused(
            Method::GET,
            path,
            Some(&fx.sk),
            None,
            (400, "parameter_invalid", Some("limit")),
        )
        .await;
    }
    fx.refused(
        Method::GET,
        "/v1/wallet/transactions?limit=101",
        Some(&fx.token),
        None,
        (400, "parameter_invalid", Some("limit")),
    )
    .await;
    fx.refused(
        Method::GET,
        "/v1/payments?status=paid",
        Some(&fx.sk),
        None,
        (400, "parameter_invalid", Some("status")),
    )
    .await;
}

#[tokio::test]
async fn malformed_ids() {
    let fx = fixture().await;
    for id in [
        "123",
        "pay_short",
        "cus_AAAAAAAAAAAAAAAAAAAAAAAA",
        "pay_AAAAAAAAAAAAAAAAAAAAAAA!",
    ] {
        fx.refused(
            Method::GET,
            &format!("/v1/payments/{id}"),
            Some(&fx.sk),
            None,
            (400, "parameter_invalid", Some("id")),
        )
        .await;
        fx.refused(
            Method::POST,
            &format!("/v1/wallet/payments/{id}/confirm"),
            Some(&fx.token),
            Some(json!({})),
            (400, "parameter_invalid", Some("id")),
        )
        .await;
    }
    fx.refused(
        Method::GET,
        "/v1/payments?starting_after=evt_x",
        Some(&fx.sk),
        None,
        (400, "parameter_invalid", Some("starting_after")),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100, "customer": "bob"}),
        400,
        "parameter_invalid",
        Some("customer"),
    )
    .await;
    // Well-formed but unknown: 404.
    fx.refused(
        Method::GET,
        "/v1/payments/pay_AAAAAAAAAAAAAAAAAAAAAAAA",
        Some(&fx.sk),
        None,
        (404, "resource_missing", None),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "amount": 100, "customer": "cus_AAAAAAAAAAAAAAAAAAAAAAAA"}),
        404,
        "resource_missing",
        Some("customer"),
    )
    .await;
}

/// Every path that names an id refuses one of another kind, or of no kind, with
/// `400 parameter_invalid` (param `id`) — the typed path parameter — and changes nothing.
#[tokio::test]
async fn every_path_id_is_checked_before_anything_happens() {
    let fx = fixture().await;
    let (sk, token) = (Some(fx.sk.as_str()), Some(fx.token.as_str()));
    let routes: [(Method, &str, Option<&str>); 23] = [
        (Method::GET, "/v1/payments/{}", sk),
        (Method::GET, "/v1/payments/{}/qr", sk),
        (Method::POST, "/v1/payments/{}/cancel", sk),
        (Method::POST, "/v1/payments/{}/capture", sk),
        (Method::POST, "/v1/payments/{}/refunds", sk),
        (Method::POST, "/v1/payments/{}/remind", sk),
        (Method::GET, "/v1/payouts/{}", sk),
        (Method::GET, "/v1/events/{}/deliveries", sk),
        (Method::POST, "/v1/events/{}/redeliver", sk),
        (Method::DELETE, "/v1/webhook_endpoints/{}", sk),
        (Method::DELETE, "/v1/restricted_keys/{}", sk),
        (Method::DELETE, "/v1/staff/{}", sk),
        (Method::GET, "/v1/pay/{}", None),
        (Method::GET, "/v1/wallet/payments/{}", token),
        (Method::POST, "/v1/wallet/payments/{}/confirm", token),
        (Method::POST, "/v1/wallet/payments/{}/decline", token),
        (Method::GET, "/v1/wallet/topups/{}", token),
        (Method::GET, "/v1/wallet/withdrawals/{}", token),
        (Method::DELETE, "/v1/wallet/cards/{}", token),
        (Method::DELETE, "/v1/wallet/devices/{}", token),
        (Method::DELETE, "/v1/admin/rules/{}", Some(ADMIN_KEY)),
        (Method::POST, "/v1/admin/merchants/{}/keys", Some(ADMIN_KEY)),
        (
            Method::POST,
            "/v1/admin/customers/{}/pin_reset",
            Some(ADMIN_KEY),
        ),
    ];
    for (method, path, auth) in routes {
        for id in [
            "123",
            "zzz_AAAAAAAAAAAAAAAAAAAAAAAA",
            "pay_AAAA%2F..%2FAAAAAAAAAAAAAAAA",
        ] {
            let body = (method == Method::POST).then(|| json!({}));
            let url = path.replace("{}", id);
            fx.refused(
                method.clone(),
                &url,
                auth,
                body,
                (400, "parameter_invalid", Some("id")),
            )
            .await;
        }
    }
    // A sku names a product: the same rule with its own name.
    fx.refused(
        Method::POST,
        "/v1/products/a%20b",
        sk,
        Some(json!({"active": false})),
        (400, "parameter_invalid", Some("sku")),
    )
    .await;
}

#[tokio::test]
async fn quantities_of_zero_or_over_ten_thousand() {
    let fx = fixture().await;
    fx.bad_payment(
        json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": 0}]}),
        400,
        "parameter_invalid",
        Some("items[0].quantity"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": 10_001}]}),
        400,
        "parameter_invalid",
        Some("items[0].quantity"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": -1}]}),
        400,
        "parameter_invalid",
        Some("items[0].quantity"),
    )
    .await;
}

#[tokio::test]
async fn carts_that_do_not_price() {
    let fx = fixture().await;
    fx.bad_payment(json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": 1}, {"sku": "nope", "quantity": 1}]}), 400, "unknown_sku", Some("items[1].sku")).await;
    fx.bad_payment(
        json!({"currency": "JPY", "items": [{"sku": "sushi", "quantity": 1}]}),
        400,
        "sku_inactive",
        Some("items[0].sku"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "JPY", "items": [{"sku": "tea", "quantity": 1}]}),
        400,
        "currency_mismatch",
        Some("items[0].sku"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": 2}], "amount": 2597}),
        400,
        "amount_mismatch",
        Some("amount"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY", "items": []}),
        400,
        "parameter_invalid",
        Some("items"),
    )
    .await;
    fx.bad_payment(
        json!({"currency": "CNY"}),
        400,
        "parameter_missing",
        Some("amount"),
    )
    .await;
    fx.bad_payment(
        json!({"amount": 100}),
        400,
        "parameter_missing",
        Some("currency"),
    )
    .await;
    let lines: Vec<Value> = (0..101)
        .map(|_| json!({"sku": "tea", "quantity": 1}))
        .collect();
    fx.bad_payment(
        json!({"currency": "CNY", "items": lines}),
        400,
        "parameter_invalid",
        Some("items"),
    )
    .await;
    // With a matching check amount it prices fine.
    let p =
        fx.s.payment(
            &fx.sk,
            json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": 2}], "amount": 2598}),
        )
        .await;
    assert_eq!(p["amount"], 2598);
}

#[tokio::test]
async fn not_enough_money_leaves_the_payment_payable() {
    let fx = fixture().await;
    let p =
        fx.s.payment(
            &fx.sk,
            json!({"currency": "CNY", "amount": 10_001, "customer": fx.customer}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    fx.refused(
        Method::POST,
        &format!("/v1/wallet/payments/{id}/confirm"),
        Some(&fx.token),
        Some(json!({})),
        (402, "insufficient_funds", None),
    )
    .await;
    fx.s.topup(&fx.customer, 1, "CNY").await;
    assert_eq!(fx.s.confirm(&fx.token, id, json!({})).await.status, 200);
    assert_eq!(fx.s.wallet_balance(&fx.token, "CNY").await, 0);
}

#[tokio::test]
async fn sku_taken_and_unknown_product() {
    let fx = fixture().await;
    fx.refused(
        Method::POST,
        "/v1/products",
        Some(&fx.sk),
        Some(json!({"sku": "tea", "name": "Tea", "unit_amount": 1, "currency": "CNY"})),
        (409, "sku_taken", Some("sku")),
    )
    .await;
    fx.refused(
        Method::POST,
        "/v1/products/none",
        Some(&fx.sk),
        Some(json!({"name": "x"})),
        (404, "resource_missing", None),
    )
    .await;
    fx.refused(
        Method::POST,
        "/v1/products",
        Some(&fx.sk),
        Some(json!({"sku": "bad sku", "name": "x", "unit_amount": 1, "currency": "CNY"})),
        (400, "parameter_invalid", Some("sku")),
    )
    .await;
}

#[tokio::test]
async fn idempotency_key_too_long() {
    let fx = fixture().await;
    let before = fx.s.snapshot(&fx.sk, &fx.token).await;
    let r =
        fx.s.call(
            Method::POST,
            "/v1/payments",
            Some(&fx.sk),
            Some(json!({"currency": "CNY", "amount": 1})),
            Some(&"k".repeat(256)),
        )
        .await;
    r.assert_error(400, "parameter_invalid");
    assert_eq!(before, fx.s.snapshot(&fx.sk, &fx.token).await);
}

/// Names that reorder or hide text (U+202E shows "Tea House" backwards in every list
/// that prints it) and card numbers in no issuer's range (twelve zeros pass Luhn) are
/// refused and change nothing.
#[tokio::test]
async fn names_that_reorder_text_and_numbers_no_issuer_gives_out() {
    let fx = fixture().await;
    for name in [
        "Tea\u{202E}esuoH",
        "\u{2066}Li\u{2069}",
        "Li\u{200B}Lei",
        "\u{FEFF}Li",
    ] {
        fx.refused(
            Method::POST,
            "/v1/wallet/signup",
            None,
            Some(json!({"phone": "+8613800000098", "name": name, "pin": "123456"})),
            (400, "parameter_invalid", Some("name")),
        )
        .await;
        fx.refused(
            Method::POST,
            "/v1/products",
            Some(&fx.sk),
            Some(json!({"sku": "bidi", "name": name, "unit_amount": 1, "currency": "CNY"})),
            (400, "parameter_invalid", Some("name")),
        )
        .await;
    }
    for number in [
        "000000000000",
        "0000000000000",
        "9999999999999995",
        "42424242424242",
    ] {
        fx.refused(Method::POST, "/v1/wallet/cards", Some(&fx.token), Some(json!({"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123", "pin": "123456"})), (400, "card_number_invalid", Some("number")))
        .await;
    }
}

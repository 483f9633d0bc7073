//! `pocket sandbox-bank`: the sandbox bank as a process of its own, speaking the
//! Pocket Connector Protocol (`docs/CONNECTORS.md`) — what an `http` connector of a
//! real bank would be. It checks every request's signature, signs every answer, and
//! posts signed notifications when an asynchronous operation becomes final, retrying
//! until Pocket answers `200`. `--fail-rate` answers a share of requests with `500`.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pocket_connectors::protocol::{self, HEADER};
use pocket_connectors::sandbox::SandboxBank;
use pocket_connectors::{
    CardDetails, Connector, ConnectorError, Destination, OpKind, OpStatus, Operation,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub struct Options {
    pub listen: String,
    pub secret: String,
    pub notify: Option<String>,
    pub async_delay_seconds: u64,
    pub fail_rate: f64,
    /// Loses, repeats and delays notifications (each with this probability), as a
    /// misbehaving bank would.
    pub notification_chaos: f64,
}

#[derive(Clone)]
struct Bank {
    bank: Arc<SandboxBank>,
    secret: Arc<str>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn status_json(s: &OpStatus) -> Value {
    match s {
        OpStatus::Pending => json!({"status": "pending", "decline_code": null}),
        OpStatus::Succeeded => json!({"status": "succeeded", "decline_code": null}),
        OpStatus::Failed { decline_code } => {
            json!({"status": "failed", "decline_code": decline_code})
        }
    }
}

fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
    a
}

fn kind_str(k: OpKind) -> &'static str {
    match k {
        OpKind::Charge => "charge",
        OpKind::Payout => "payout",
    }
}

/// Signs an answer with its request's method and path.
fn signed(secret: &str, method: &str, path: &str, status: StatusCode, body: Value) -> Response {
    let bytes = body.to_string();
    let signature = protocol::sign(secret, unix_now(), method, path, bytes.as_bytes());
    let mut r = (status, bytes).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&signature) {
        r.headers_mut().insert(HEADER, v);
    }
    r
}

async fn handle(State(b): State<Bank>, request: Request) -> Response {
    let method = request.method().as_str().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let header = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Bytes = match axum::body::to_bytes(request.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    if protocol::verify(
        &b.secret,
        header.as_deref(),
        unix_now(),
        &method,
        &path,
        &body,
    )
    .is_err()
    {
        return signed(
            &b.secret,
            &method,
            &path,
            StatusCode::UNAUTHORIZED,
            json!({"error": "bad_signature"}),
        );
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = route(&b.bank, &method, &path, &req).await;
    let (status, body) = match answer {
        Ok(v) => (StatusCode::OK, v),
        Err(ConnectorError::UnknownOperation) => {
            (StatusCode::NOT_FOUND, json!({"error": "unknown_operation"}))
        }
        Err(ConnectorError::Declined { decline_code }) => (
            StatusCode::OK,
            json!({"status": "failed", "decline_code": decline_code}),
        ),
        Err(ConnectorError::Unavailable { why }) => {
            if why.contains("late card") {
                // Never in time: past the caller's timeout.
                tokio::time::sleep(pocket_connectors::http::TIMEOUT + Duration::from_secs(2)).await;
            }
            (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": why}))
        }
    };
    signed(&b.secret, &method, &path, status, body)
}

fn operation_of(req: &Value) -> Option<Operation> {
    serde_json::from_value(req.clone()).ok()
}

async fn route(
    bank: &SandboxBank,
    method: &str,
    path: &str,
    req: &Value,
) -> Result<Value, ConnectorError> {
    let bad = || ConnectorError::Declined {
        decline_code: "bad_request".into(),
    };
    match (method, path) {
        ("POST", "/v1/cards") => {
            let number = pocket_core::card::parse_number(req["number"].as_str().unwrap_or(""))
                .map_err(|_| bad())?;
            let card = CardDetails {
                number,
                exp_month: req["exp_month"].as_u64().unwrap_or(0) as u32,
                exp_year: req["exp_year"].as_u64().unwrap_or(0) as u32,
                cvc: req["cvc"].as_str().unwrap_or("").to_string(),
                holder_name: req["holder_name"].as_str().map(str::to_string),
            };
            let id = req["operation_id"].as_str().unwrap_or("");
            let bound = bank.bind_card(id, &card).await?;
            Ok(merged(
                json!({"status": "succeeded"}),
                serde_json::to_value(bound).unwrap_or_default(),
            ))
        }
        ("POST", "/v1/charges") => {
            let op = operation_of(req).ok_or_else(bad)?;
            let token = req["card_token"].as_str().ok_or_else(bad)?;
            let s = bank.charge(&op, token).await?;
            Ok(merged(
                json!({"operation_id": op.operation_id}),
                status_json(&s),
            ))
        }
        ("POST", "/v1/payouts") => {
            let op = operation_of(req).ok_or_else(bad)?;
            let to: Destination =
                serde_json::from_value(req["destination"].clone()).map_err(|_| bad())?;
            let s = bank.payout(&op, &to).await?;
            Ok(merged(
                json!({"operation_id": op.operation_id}),
                status_json(&s),
            ))
        }
        ("GET", p) if p.starts_with("/v1/operations/") => {
            let id = &p["/v1/operations/".len()..];
            let (kind, op, s) = bank.status(id).await?;
            Ok(merged(
                json!({"operation_id": op.operation_id, "kind": kind_str(kind), "amount": op.amount, "currency": op.currency}),
                status_json(&s),
            ))
        }
        ("GET", p) if p.starts_with("/v1/statements/") => {
            let date = &p["/v1/statements/".len()..];
            let lines: Vec<Value> = bank
                .statement(date)
                .await?
                .into_iter()
                .map(|l| {
                    merged(
                        json!({"operation_id": l.operation_id, "kind": kind_str(l.kind), "amount": l.amount, "currency": l.currency}),
                        status_json(&l.status),
                    )
                })
                .collect();
            Ok(json!({"date": date, "lines": lines}))
        }
        _ => Err(ConnectorError::UnknownOperation),
    }
}

/// Posts the final answers of asynchronous operations to Pocket, until each is taken
/// (or, with `chaos`, loses some, sends some twice, and sends some late).
async fn notify(bank: Arc<SandboxBank>, secret: Arc<str>, url: String, chaos: f64) {
    use rand::Rng;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let path = reqwest::Url::parse(&url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let mut outbox: Vec<(Value, tokio::time::Instant)> = Vec::new();
    loop {
        let now = tokio::time::Instant::now();
        for (kind, op, status) in bank.due_notifications() {
            let n = merged(
                json!({"operation_id": op.operation_id, "kind": kind_str(kind), "amount": op.amount, "currency": op.currency}),
                status_json(&status),
            );
            let mut rng = rand::rng();
            if chaos > 0.0 && rng.random_bool(chaos) {
                continue; // lost
            }
            if chaos > 0.0 && rng.random_bool(chaos) {
                outbox.push((n.clone(), now)); // sent twice
            }
            let late = if chaos > 0.0 && rng.random_bool(chaos) {
                Duration::from_millis(rng.random_range(500..3_000))
            } else {
                Duration::ZERO
            };
            outbox.push((n, now + late));
        }
        let mut kept = Vec::new();
        for (n, not_before) in outbox.drain(..) {
            if not_before > now {
                kept.push((n, not_before));
                continue;
            }
            let body = n.to_string();
            let signature = protocol::sign(&secret, unix_now(), "POST", &path, body.as_bytes());
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .header(HEADER, signature)
                .body(body)
                .send()
                .await;
            if !sent.is_ok_and(|r| r.status().is_success()) {
                kept.push((n, not_before));
            }
        }
        outbox = kept;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(o: Options) -> Result<(), String> {
    let clock: pocket_connectors::sandbox::Clock = Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    });
    let bank = Arc::new(SandboxBank::new(
        "sandbox",
        o.async_delay_seconds as i64 * 1000,
        o.fail_rate,
        clock,
    ));
    let secret: Arc<str> = o.secret.into();
    let listener = tokio::net::TcpListener::bind(&o.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", o.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("Sandbox bank listening on http://{addr}");
    if let Some(url) = o.notify {
        tokio::spawn(notify(
            bank.clone(),
            secret.clone(),
            url,
            o.notification_chaos,
        ));
    }
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(Bank { bank, secret });
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("sandbox bank: {e}"))
}

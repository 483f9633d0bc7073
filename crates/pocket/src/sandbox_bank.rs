//! `pocket sandbox-bank`: the sandbox bank as a process of its own, speaking the
//! Pocket Connector Protocol v2 (`docs/CONNECTORS.md`) — what an `http` connector of a
//! real bank would be, and the reference connector authors copy. It checks every
//! request's signature, signs every answer for the request it answers, refuses
//! amounts that are not positive and currencies it does not move, keeps its operations
//! in a file (`--state`) so a re-sent operation is answered after a restart rather than
//! done twice, and posts signed notifications when an asynchronous operation becomes
//! final, retrying until Pocket answers `200`. `--fail-rate` answers a share of
//! requests with `500`.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pocket_connectors::protocol::{self, HEADER};
use pocket_connectors::sandbox::SandboxBank;
use pocket_connectors::{
    CardDetails, Connector, ConnectorError, Destination, OpAnswer, OpKind, OpStatus, Operation,
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
    /// The currencies it moves.
    pub currencies: Vec<String>,
    /// Where it keeps its operations (none: in memory only).
    pub state: Option<std::path::PathBuf>,
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

/// Signs an answer for the request it answers.
fn signed(secret: &str, to: &protocol::Request<'_>, status: StatusCode, body: Value) -> Response {
    let bytes = body.to_string();
    let signature =
        protocol::sign_response(secret, unix_now(), to, status.as_u16(), bytes.as_bytes());
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
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let now = unix_now();
    let nonce =
        match protocol::verify_request(&b.secret, header.as_deref(), now, &method, &path, &body) {
            Ok(n) => n.to_string(),
            // Nothing to bind an answer to: a plain refusal, unsigned.
            Err(_) => return (StatusCode::UNAUTHORIZED, "bad_signature").into_response(),
        };
    let asked = protocol::Request {
        nonce: &nonce,
        method: &method,
        path: &path,
        body: &body,
    };
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, reply) = match route(&b.bank, &method, &path, &req).await {
        Ok(v) => (StatusCode::OK, v),
        Err(ConnectorError::UnknownOperation) => {
            (StatusCode::NOT_FOUND, json!({"error": "unknown_operation"}))
        }
        Err(ConnectorError::Declined { decline_code }) => {
            (StatusCode::OK, declined(&req, &path, &decline_code))
        }
        Err(
            ConnectorError::Unavailable { why }
            | ConnectorError::Invalid { why }
            | ConnectorError::Disagrees { why },
        ) => {
            if why.contains("late card") {
                // Never in time: past the caller's timeout.
                tokio::time::sleep(pocket_connectors::http::TIMEOUT + Duration::from_secs(2)).await;
            }
            (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": why}))
        }
    };
    signed(&b.secret, &asked, status, reply)
}

/// A refusal, as the request's answer: a binding's, or a `failed` operation's.
fn declined(req: &Value, path: &str, decline_code: &str) -> Value {
    let failed = OpStatus::Failed {
        decline_code: decline_code.to_string(),
    };
    let kind = match path {
        "/v1/charges" => Some(OpKind::Charge),
        "/v1/payouts" => Some(OpKind::Payout),
        _ => None,
    };
    match (kind, operation_of(req)) {
        (Some(kind), Some(op)) => protocol::answer_json(&OpAnswer::of(kind, &op, failed)),
        // A binding's refusal, or a request too malformed to name its operation.
        _ => {
            json!({"operation_id": req["operation_id"], "status": "failed", "decline_code": decline_code})
        }
    }
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
            let id = req["operation_id"].as_str().ok_or_else(bad)?;
            let token = bank.bind_card(id, &card).await?;
            Ok(json!({"operation_id": id, "status": "succeeded", "token": token}))
        }
        ("POST", "/v1/charges") => {
            let op = operation_of(req).ok_or_else(bad)?;
            let token = req["card_token"].as_str().ok_or_else(bad)?;
            Ok(protocol::answer_json(&bank.charge(&op, token).await?))
        }
        ("POST", "/v1/payouts") => {
            let op = operation_of(req).ok_or_else(bad)?;
            let to: Destination =
                serde_json::from_value(req["destination"].clone()).map_err(|_| bad())?;
            Ok(protocol::answer_json(&bank.payout(&op, &to).await?))
        }
        ("GET", p) if p.starts_with("/v1/operations/") => {
            let id = &p["/v1/operations/".len()..];
            Ok(protocol::answer_json(&bank.status(id).await?))
        }
        ("GET", p) if p.starts_with("/v1/statements/") => {
            let date = &p["/v1/statements/".len()..];
            let lines: Vec<Value> = bank
                .statement(date)
                .await?
                .iter()
                .map(protocol::answer_json)
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
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap_or_default();
    let path = reqwest::Url::parse(&url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let mut outbox: Vec<(Value, tokio::time::Instant)> = Vec::new();
    loop {
        let now = tokio::time::Instant::now();
        for a in bank.due_notifications() {
            let n = protocol::answer_json(&a);
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
            let nonce = protocol::new_nonce();
            let request = protocol::Request {
                nonce: &nonce,
                method: "POST",
                path: &path,
                body: body.as_bytes(),
            };
            let signature = protocol::sign_request(&secret, unix_now(), &request);
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
    let mut bank = SandboxBank::new(
        "sandbox",
        o.async_delay_seconds as i64 * 1000,
        o.fail_rate,
        clock,
    )
    .accepting(o.currencies);
    if let Some(path) = &o.state {
        bank = bank.keeping_state(path)?;
    }
    let bank = Arc::new(bank);
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

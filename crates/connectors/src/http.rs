//! A connector of kind `http`: any program speaking the Pocket Connector Protocol
//! (`docs/CONNECTORS.md`). Requests are signed with the shared secret; an answer
//! counts only if it is a `2xx` with a valid signature, anything else is *unknown*.

use crate::protocol::{self, HEADER};
use crate::{
    BoundCard, CardDetails, Connector, ConnectorError, Destination, OpKind, OpStatus, Operation,
    Result, StatementLine,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// How long Pocket waits for a connector's answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct HttpConnector {
    name: String,
    base: String,
    secret: String,
    client: reqwest::Client,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn unavailable(why: impl Into<String>) -> ConnectorError {
    ConnectorError::Unavailable { why: why.into() }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    decline_code: Option<String>,
}

fn status_of(a: &Answer) -> Result<OpStatus> {
    match a.status.as_str() {
        "pending" => Ok(OpStatus::Pending),
        "succeeded" => Ok(OpStatus::Succeeded),
        "failed" => Ok(OpStatus::Failed {
            decline_code: a.decline_code.clone().unwrap_or_else(|| "declined".into()),
        }),
        other => Err(unavailable(format!("unknown status {other:?}"))),
    }
}

impl HttpConnector {
    pub fn new(name: &str, base: &str, secret: &str) -> std::result::Result<HttpConnector, String> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the client of connector {name}: {e}"))?;
        Ok(HttpConnector {
            name: name.to_string(),
            base: base.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            client,
        })
    }

    /// Sends a signed request; returns the status and the body of a signed answer.
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let signature = protocol::sign(&self.secret, unix_now(), method, path, &bytes);
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(bytes),
            _ => self.client.get(url),
        };
        let r = request
            .header(HEADER, signature)
            .send()
            .await
            .map_err(|e| unavailable(format!("no answer: {e}")))?;
        let status = r.status().as_u16();
        let header = r
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = r
            .bytes()
            .await
            .map_err(|e| unavailable(format!("answer cut: {e}")))?;
        protocol::verify(
            &self.secret,
            header.as_deref(),
            unix_now(),
            method,
            path,
            &body,
        )
        .map_err(|why| unavailable(format!("answer refused: {why:?}")))?;
        let value = serde_json::from_slice(&body).map_err(|_| unavailable("answer is not JSON"))?;
        Ok((status, value))
    }

    async fn operation(&self, path: &str, body: Value) -> Result<OpStatus> {
        match self.call("POST", path, Some(&body)).await? {
            (200..=299, v) => {
                let a: Answer =
                    serde_json::from_value(v).map_err(|_| unavailable("answer without status"))?;
                status_of(&a)
            }
            (code, _) => Err(unavailable(format!("HTTP {code}"))),
        }
    }
}

#[async_trait::async_trait]
impl Connector for HttpConnector {
    fn name(&self) -> &str {
        &self.name
    }

    async fn bind_card(&self, operation_id: &str, card: &CardDetails) -> Result<BoundCard> {
        let body = json!({
            "operation_id": operation_id,
            "number": card.number.digits(),
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "cvc": card.cvc,
            "holder_name": card.holder_name,
        });
        match self.call("POST", "/v1/cards", Some(&body)).await? {
            (200..=299, v) => match v["status"].as_str() {
                Some("succeeded") => serde_json::from_value(v)
                    .map_err(|_| unavailable("a bound card without token, brand or last4")),
                Some("failed") => Err(ConnectorError::Declined {
                    decline_code: v["decline_code"].as_str().unwrap_or("declined").to_string(),
                }),
                _ => Err(unavailable("unknown binding status")),
            },
            (code, _) => Err(unavailable(format!("HTTP {code}"))),
        }
    }

    async fn charge(&self, op: &Operation, card_token: &str) -> Result<OpStatus> {
        let body = json!({
            "operation_id": op.operation_id, "card_token": card_token,
            "amount": op.amount, "currency": op.currency,
        });
        self.operation("/v1/charges", body).await
    }

    async fn payout(&self, op: &Operation, to: &Destination) -> Result<OpStatus> {
        let body = json!({
            "operation_id": op.operation_id, "amount": op.amount, "currency": op.currency,
            "destination": to,
        });
        self.operation("/v1/payouts", body).await
    }

    async fn status(&self, operation_id: &str) -> Result<(OpKind, Operation, OpStatus)> {
        let path = format!("/v1/operations/{operation_id}");
        match self.call("GET", &path, None).await? {
            (404, _) => Err(ConnectorError::UnknownOperation),
            (200..=299, v) => {
                let kind: OpKind = serde_json::from_value(v["kind"].clone())
                    .map_err(|_| unavailable("operation without kind"))?;
                let op: Operation = serde_json::from_value(v.clone())
                    .map_err(|_| unavailable("operation without amount"))?;
                let a: Answer = serde_json::from_value(v)
                    .map_err(|_| unavailable("operation without status"))?;
                Ok((kind, op, status_of(&a)?))
            }
            (code, _) => Err(unavailable(format!("HTTP {code}"))),
        }
    }

    async fn statement(&self, date: &str) -> Result<Vec<StatementLine>> {
        let path = format!("/v1/statements/{date}");
        match self.call("GET", &path, None).await? {
            (200..=299, v) => {
                let mut lines = Vec::new();
                for l in v["lines"].as_array().cloned().unwrap_or_default() {
                    let kind: OpKind = serde_json::from_value(l["kind"].clone())
                        .map_err(|_| unavailable("statement line without kind"))?;
                    let a: Answer = serde_json::from_value(l.clone())
                        .map_err(|_| unavailable("statement line without status"))?;
                    let op: Operation = serde_json::from_value(l)
                        .map_err(|_| unavailable("statement line without amount"))?;
                    lines.push(StatementLine {
                        operation_id: op.operation_id,
                        kind,
                        amount: op.amount,
                        currency: op.currency,
                        status: status_of(&a)?,
                    });
                }
                Ok(lines)
            }
            (code, _) => Err(unavailable(format!("HTTP {code}"))),
        }
    }
}

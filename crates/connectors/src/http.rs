//! A connector of kind `http`: any program speaking the Pocket Connector Protocol
//! (`docs/CONNECTORS.md`). Every request is signed with a fresh nonce; an answer
//! counts only if it is signed for that very request, fits in its size cap, arrives
//! within the timeouts and reads as the protocol says — anything else is *unknown*.

use crate::protocol::{self, HEADER, Request};
use crate::{CardDetails, Connector, ConnectorError, Destination, OpAnswer, Operation, Result};
use serde_json::{Value, json};
use std::time::Duration;

/// How long Pocket waits for a connector's whole answer, body included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long Pocket waits for a connection to a connector.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest answer about one operation or card Pocket reads.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Largest daily statement Pocket reads.
pub const MAX_STATEMENT_BYTES: usize = 8 * 1024 * 1024;
/// Most lines of a daily statement.
pub const MAX_STATEMENT_LINES: usize = 50_000;

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

/// Reads at most `cap` bytes of an answer's body; a longer one is refused as soon as
/// it is longer, never read whole.
async fn capped_body(mut r: reqwest::Response, cap: usize) -> Result<Vec<u8>> {
    if r.content_length().is_some_and(|n| n > cap as u64) {
        return Err(unavailable(format!("answer over {cap} bytes")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = r
        .chunk()
        .await
        .map_err(|e| unavailable(format!("answer cut: {e}")))?
    {
        if body.len() + chunk.len() > cap {
            return Err(unavailable(format!("answer over {cap} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl HttpConnector {
    pub fn new(name: &str, base: &str, secret: &str) -> std::result::Result<HttpConnector, String> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the client of connector {name}: {e}"))?;
        Ok(HttpConnector {
            name: name.to_string(),
            base: base.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            client,
        })
    }

    /// Sends a signed request; returns the status and the body of an answer signed for
    /// this request, read up to `cap` bytes.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        cap: usize,
    ) -> Result<(u16, Value)> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let nonce = protocol::new_nonce();
        let asked = Request {
            nonce: &nonce,
            method,
            path,
            body: &bytes,
        };
        let signature = protocol::sign_request(&self.secret, unix_now(), &asked);
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(bytes.clone()),
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
        let answer = capped_body(r, cap).await?;
        protocol::verify_response(
            &self.secret,
            header.as_deref(),
            unix_now(),
            &asked,
            status,
            &answer,
        )
        .map_err(|why| unavailable(format!("answer refused: {why:?}")))?;
        let value =
            serde_json::from_slice(&answer).map_err(|_| unavailable("answer is not JSON"))?;
        Ok((status, value))
    }

    async fn operation(&self, path: &str, body: Value) -> Result<OpAnswer> {
        match self
            .call("POST", path, Some(&body), MAX_ANSWER_BYTES)
            .await?
        {
            (200..=299, v) => protocol::read_answer(&v).map_err(|why| ConnectorError::Invalid {
                why: format!("answer refused: {why}"),
            }),
            (code, _) => Err(unavailable(format!("HTTP {code}"))),
        }
    }
}

/// A binding's answer: the bank's token, for exactly this binding.
fn bound_token(v: &Value, operation_id: &str) -> Result<String> {
    let invalid = |why: &str| ConnectorError::Invalid {
        why: format!("binding answer refused: {why}"),
    };
    if v["operation_id"].as_str() != Some(operation_id) {
        return Err(invalid("it names another binding"));
    }
    match v["status"].as_str() {
        Some("succeeded") => match v["token"].as_str() {
            Some(t) if crate::token_ok(t) => Ok(t.to_string()),
            _ => Err(invalid("the token is not [A-Za-z0-9._:-]{1,200}")),
        },
        Some("failed") => {
            let code = v["decline_code"]
                .as_str()
                .filter(|c| protocol::decline_code_ok(c))
                .unwrap_or("declined");
            Err(ConnectorError::Declined {
                decline_code: code.to_string(),
            })
        }
        _ => Err(invalid("unknown binding status")),
    }
}

#[async_trait::async_trait]
impl Connector for HttpConnector {
    fn name(&self) -> &str {
        &self.name
    }

    async fn bind_card(&self, operation_id: &str, card: &CardDetails) -> Result<String> {
        let body = json!({
            "operation_id": operation_id,
            "number": card.number.digits(),
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "cvc": card.cvc,
            "holder_name": card.holder_name,
        });
        match self
            .call("POST", "/v1/cards", Some(&body), MAX_ANSWER_BYTES)
            .await?
        {
            (200..=299, v) => bound_token(&v, operation_id),
            (code, _) => Err(unavailable(format!("HTTP {code}"))),
        }
    }

    async fn charge(&self, op: &Operation, card_token: &str) -> Result<OpAnswer> {
        let body = json!({
            "operation_id": op.operation_id, "card_token": card_token,
            "amount": op.amount, "currency": op.currency,
        });
        self.operation("/v1/charges", body).await
    }

    async fn payout(&self, op: &Operation, to: &Destination) -> Result<OpAnswer> {
        let body = json!({
            "operation_id": op.operation_id, "amount": op.amount, "currency": op.currency,
            "destination": to,
        });
        self.operation("/v1/payouts", body).await
    }

    async fn status(&self, operation_id: &str) -> Result<OpAnswer> {
        let path = format!("/v1/operations/{operation_id}");
        match self.call("GET", &path, None, MAX_ANSWER_BYTES).await? {
            (404, _) => Err(ConnectorError::UnknownOperation),
            (200..=299, v) => protocol::read_answer(&v).map_err(|why| ConnectorError::Invalid {
                why: format!("status answer refused: {why}"),
            }),
            (code, _) => Err(unavailable(format!("HTTP {code}"))),
        }
    }

    async fn statement(&self, date: &str) -> Result<Vec<OpAnswer>> {
        let path = format!("/v1/statements/{date}");
        match self.call("GET", &path, None, MAX_STATEMENT_BYTES).await? {
            (200..=299, v) => read_statement(&v, date),
            (code, _) => Err(unavailable(format!("HTTP {code}"))),
        }
    }
}

/// A statement, whole or not at all: its date is the one asked for, it has at most
/// [`MAX_STATEMENT_LINES`] lines, and every line reads as an operation's answer.
fn read_statement(v: &Value, date: &str) -> Result<Vec<OpAnswer>> {
    let invalid = |why: String| ConnectorError::Invalid {
        why: format!("statement refused: {why}"),
    };
    if v["date"].as_str() != Some(date) {
        return Err(invalid(format!("it is not the statement of {date}")));
    }
    let lines = v["lines"]
        .as_array()
        .ok_or_else(|| invalid("`lines` is not a list".into()))?;
    if lines.len() > MAX_STATEMENT_LINES {
        return Err(invalid(format!("over {MAX_STATEMENT_LINES} lines")));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            protocol::read_answer(l).map_err(|why| invalid(format!("line {}: {why}", i + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_answer_must_name_the_binding_and_carry_a_sane_token() {
        let v = |id: &str, token: &str| json!({"operation_id": id, "status": "succeeded", "token": token});
        assert_eq!(bound_token(&v("op_1", "tok_1"), "op_1"), Ok("tok_1".into()));
        for (id, token) in [
            ("op_2", "tok_1"),
            ("op_1", ""),
            ("op_1", "<img src=x>"),
            ("op_1", "tok\u{0}1"),
            ("op_1", &"t".repeat(201)),
        ] {
            assert!(
                matches!(
                    bound_token(&v(id, token), "op_1"),
                    Err(ConnectorError::Invalid { .. })
                ),
                "{id} {token}"
            );
        }
        let declined =
            json!({"operation_id": "op_1", "status": "failed", "decline_code": "=cmd|x"});
        assert_eq!(
            bound_token(&declined, "op_1"),
            Err(ConnectorError::Declined {
                decline_code: "declined".into()
            })
        );
    }

    #[test]
    fn a_statement_with_one_bad_line_is_refused_whole() {
        let line = |currency: &str| {
            json!({"operation_id": "top_1", "kind": "charge", "amount": 5,
                                            "currency": currency, "status": "succeeded"})
        };
        let good = json!({"date": "2026-11-26", "lines": [line("CNY"), line("USD")]});
        assert_eq!(read_statement(&good, "2026-11-26").unwrap().len(), 2);
        let bad = json!({"date": "2026-11-26", "lines": [line("CNY"), line("XX")]});
        match read_statement(&bad, "2026-11-26") {
            Err(ConnectorError::Invalid { why }) => assert!(why.contains("line 2"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(read_statement(&good, "2026-11-27").is_err());
        assert!(read_statement(&json!({"date": "2026-11-26"}), "2026-11-26").is_err());
    }
}

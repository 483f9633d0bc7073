//! The benchmark's HTTP client: one shared keep-alive pool, every call timed into the
//! recorder under its endpoint's name, every answer checked against what is expected.

use crate::report::Recorder;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The parts of an answer the benchmark looks at.
#[derive(Default, serde::Deserialize)]
pub struct Answer {
    pub id: Option<String>,
    pub error: Option<ErrorCode>,
}

#[derive(Default, serde::Deserialize)]
pub struct ErrorCode {
    pub code: String,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// A POST the load generator makes: its name in the report, where, as whom, what, and
/// the statuses that count as the expected answer.
pub struct Post<'a> {
    pub name: &'static str,
    pub path: &'a str,
    pub credential: &'a str,
    pub body: Option<&'a Value>,
    pub idem: Option<&'a str>,
    pub expected: &'a [u16],
}

impl Client {
    pub fn new(base: &str, clients: usize) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients.max(1))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        credential: &str,
        body: Option<&Value>,
        idem: Option<&str>,
    ) -> reqwest::Result<(u16, String)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !credential.is_empty() {
            req = req.bearer_auth(credential);
        }
        if let Some(k) = idem {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    /// Setup calls: any failure stops the benchmark with a message.
    pub async fn post_json(
        &self,
        path: &str,
        credential: &str,
        body: Value,
    ) -> Result<Value, String> {
        let (status, text) = self
            .send(reqwest::Method::POST, path, credential, Some(&body), None)
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!("POST {path}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("POST {path}: {e}"))
    }

    pub async fn get_json(&self, path: &str, credential: &str) -> Result<Value, String> {
        let text = self.get_text(path, credential).await?;
        serde_json::from_str(&text).map_err(|e| format!("GET {path}: {e}"))
    }

    /// A GET whose answer is text (`/metrics`); `Err` unless 2xx.
    pub async fn get_text(&self, path: &str, credential: &str) -> Result<String, String> {
        let (status, text) = self
            .send(reqwest::Method::GET, path, credential, None, None)
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!("GET {path}: {status} {text}"));
        }
        Ok(text)
    }

    /// A timed POST; returns the answer's `id` (if any) when the status is one of
    /// `expected`, and records anything else as an error by code (unexpected ones fail
    /// the run). Only the fields needed are parsed: the load generator must stay cheap,
    /// it shares the machine with the server.
    pub async fn call(&self, rec: &mut Recorder, post: Post<'_>) -> Option<Answer> {
        let Post {
            name,
            path,
            credential,
            body,
            idem,
            expected,
        } = post;
        let started = Instant::now();
        let result = self
            .send(reqwest::Method::POST, path, credential, body, idem)
            .await;
        rec.latency(name, started.elapsed());
        match result {
            Ok((status, text)) => {
                let answer: Answer = serde_json::from_str(&text).unwrap_or_default();
                let code = answer
                    .error
                    .as_ref()
                    .map(|e| e.code.as_str())
                    .unwrap_or("no_code");
                if expected.contains(&status) {
                    if !(200..300).contains(&status) {
                        rec.expected_error(code);
                    }
                    Some(answer)
                } else {
                    rec.unexpected(&format!("{status} {code}"));
                    None
                }
            }
            Err(e) => {
                rec.unexpected(if e.is_timeout() {
                    "timeout"
                } else {
                    "connection"
                });
                None
            }
        }
    }
}

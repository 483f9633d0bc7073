//! A webhook receiver on loopback for tests: records every request and answers as
//! told (2xx, an error status, a redirect, a slow answer, or a dropped connection).
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Ok,
    Status(u16),
    Redirect,
    /// Sleep this long, then 200.
    Slow(Duration),
    /// Close the connection without an answer.
    Drop,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub signature: String,
    pub event_id: String,
    pub body: String,
    pub at: Instant,
}

#[derive(Clone)]
struct Shared {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answers for the 1st, 2nd… request; after them, `then`.
    script: Arc<Mutex<Vec<Answer>>>,
    then: Arc<Mutex<Answer>>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
}

async fn hook(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    s.got.lock().unwrap().push(Received {
        signature: header("pocket-signature"),
        event_id: header("pocket-event-id"),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let answer = {
        let mut script = s.script.lock().unwrap();
        if script.is_empty() {
            *s.then.lock().unwrap()
        } else {
            script.remove(0)
        }
    };
    match answer {
        Answer::Ok => StatusCode::OK.into_response(),
        Answer::Status(c) => StatusCode::from_u16(c).unwrap().into_response(),
        Answer::Redirect => (
            StatusCode::FOUND,
            [("location", "http://127.0.0.1:1/elsewhere")],
        )
            .into_response(),
        Answer::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
        Answer::Drop => {
            // Panicking in a handler makes hyper drop the connection unanswered.
            panic!("drop the connection");
        }
    }
}

impl Receiver {
    /// Starts a receiver answering `script` in order, then `then` forever.
    pub async fn start(script: Vec<Answer>, then: Answer) -> Receiver {
        let shared = Shared {
            got: Arc::default(),
            script: Arc::new(Mutex::new(script)),
            then: Arc::new(Mutex::new(then)),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, shared }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }

    pub fn set_then(&self, a: Answer) {
        *self.shared.then.lock().unwrap() = a;
    }

    /// Waits until `pred` holds for what was received, up to `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            assert!(
                start.elapsed() < timeout,
                "receiver did not get what was expected; got {} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

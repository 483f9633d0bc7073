//! Results as they happen: the wallet's Server-Sent Events stream (with single-use
//! tickets for browsers), and the long-poll behind `GET /v1/payments/{id}?wait=N`.
//!
//! Both wake on the store's post-commit announcements (this process) and also poll
//! the database every second, so changes made by another node are seen too.

use crate::AppState;
use crate::auth::CustomerCaller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::secrets::{digest, issue_secret};
use crate::waiting::{POLL_EVERY, next_note};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use pocket_core::time::{MS_PER_SECOND, rfc3339_ms};
use pocket_core::{Error, ErrorKind};
use pocket_store::model::{Customer, Event, EventNote};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, broadcast};
use utoipa::ToSchema;

/// How long a stream ticket is valid.
pub const TICKET_TTL_SECONDS: i64 = 60;
/// Events fetched per look.
const BATCH: usize = 100;

#[derive(Serialize, ToSchema)]
pub struct Ticket {
    /// Single use; open `GET /v1/wallet/events?ticket=…` within 60 s.
    pub ticket: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: String,
}

#[utoipa::path(post, path = "/v1/wallet/events/tickets", tag = "wallet",
    responses((status = 201, body = Ticket), (status = 401, body = ErrorBody)), security(("session_token" = [])))]
pub async fn create_ticket(
    State(state): State<AppState>,
    caller: CustomerCaller,
) -> ApiResult<(axum::http::StatusCode, Json<Ticket>)> {
    let ticket = issue_secret(&state.settings.server_key, "stk", None);
    let expires_at = state.store.now_ms() + TICKET_TTL_SECONDS * MS_PER_SECOND;
    state
        .store
        .create_ticket(
            caller.customer.id,
            digest(&state.settings.server_key, &ticket),
            caller.token_digest,
            expires_at,
        )
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(Ticket {
            ticket,
            expires_at: rfc3339_ms(expires_at),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    ticket: Option<String>,
}

/// What the stream remembers between two events.
struct Cursor {
    state: AppState,
    customer_id: String,
    /// The session the stream lives by: signed out (on any node), the stream ends.
    session_digest: String,
    after_seq: i64,
    ready: VecDeque<Event>,
    notes: broadcast::Receiver<EventNote>,
    _permit: OwnedSemaphorePermit,
}

impl Cursor {
    /// Whether the stream's session is still signed in (a failing store keeps the
    /// stream; the next look decides).
    async fn session_alive(&self) -> bool {
        match self.state.store.session(self.session_digest.clone()).await {
            Ok(found) => found.is_some(),
            Err(_) => true,
        }
    }

    /// The next event for this customer, waiting for it as long as it takes; `None`
    /// ends the stream (signed out, or the server stopping).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            if !self.session_alive().await {
                return None;
            }
            match self
                .state
                .store
                .customer_events(self.customer_id.clone(), self.after_seq, BATCH)
                .await
            {
                Ok(batch) if !batch.is_empty() => {
                    for (seq, event) in batch {
                        self.after_seq = self.after_seq.max(seq);
                        self.ready.push_back(event);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(code = e.code, "wallet stream could not read events"),
            }
            // Nothing new: wait for an announcement about this customer, or the poll.
            let customer = self.customer_id.as_str();
            let wait = next_note(&mut self.notes, |n| {
                n.customer_id.as_deref() == Some(customer)
            });
            tokio::select! {
                open = wait => if !open { return None },
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }
}

fn sse_event(e: &Event) -> SseEvent {
    let data = serde_json::to_string(e).unwrap_or_else(|_| String::from("{}"));
    SseEvent::default()
        .id(e.id.clone())
        .event(e.kind.clone())
        .data(data)
}

/// A stream ticket's customer and session: once, and only while that session lives.
async fn redeem(state: &AppState, ticket: &str) -> ApiResult<(Customer, String)> {
    let refused = || {
        ApiError(Error::new(
            ErrorKind::Authentication,
            "invalid_token",
            "This stream ticket is unknown, used or expired.",
        ))
    };
    if !ticket.starts_with("stk_") || ticket.len() > 64 {
        return Err(refused());
    }
    let d = digest(&state.settings.server_key, ticket);
    let (customer, session) = state.store.redeem_ticket(d).await?.ok_or_else(refused)?;
    // A ticket lives no longer than the session that took it.
    if state.store.session(session.clone()).await?.is_none() {
        return Err(refused());
    }
    Ok((customer, session))
}

/// The seq a stream resumes after: that of `Last-Event-ID`, one of this wallet's events.
async fn resume_after(state: &AppState, customer_id: &str, id: &str) -> ApiResult<i64> {
    let seq = if pocket_store::ids::is_id(id, "evt") {
        state
            .store
            .customer_event_seq(customer_id.to_string(), id.to_string())
            .await?
    } else {
        None
    };
    Ok(seq.ok_or_else(|| {
        Error::invalid(
            "Last-Event-ID",
            "`Last-Event-ID` is not one of this wallet's events.",
        )
    })?)
}

#[utoipa::path(get, path = "/v1/wallet/events", tag = "wallet",
    params(("ticket" = Option<String>, Query, description = "a single-use ticket from POST /v1/wallet/events/tickets, for clients that cannot send headers"),
           ("Last-Event-ID" = Option<String>, Header, description = "replay what came after this event")),
    responses((status = 200, description = "text/event-stream of this customer's payment events"), (status = 401, body = ErrorBody)),
    security(("session_token" = [])))]
pub async fn wallet_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let Ok(Query(q)) = query else {
        return Err(Error::invalid("query", "The only query parameter is `ticket`.").into());
    };
    let (customer, session_digest) = match q.ticket {
        Some(ticket) => redeem(&state, &ticket).await?,
        None => {
            let caller = CustomerCaller::from_headers(&headers, &state).await?;
            (caller.customer, caller.token_digest)
        }
    };
    let permit = Arc::clone(&state.streams)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError(Error::new(
                ErrorKind::Unavailable,
                "server_busy",
                "Too many open event streams; retry after a moment.",
            ))
        })?;
    // Subscribe before reading the start, so nothing committed in between is missed.
    let notes = state.store.subscribe();
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let after_seq = match last_event_id.filter(|id| !id.is_empty()) {
        Some(id) => resume_after(&state, &customer.id, id).await?,
        None => state.store.latest_event_seq().await?,
    };
    let cursor = Cursor {
        state,
        customer_id: customer.id,
        session_digest,
        after_seq,
        ready: VecDeque::new(),
        notes,
        _permit: permit,
    };
    let events = stream::unfold(cursor, |mut c| async move {
        let e = c.next().await?;
        Some((Ok(sse_event(&e)), c))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

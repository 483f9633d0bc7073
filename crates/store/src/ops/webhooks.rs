//! Webhook endpoints and the delivery outbox. Deliveries are created with their event
//! (see `events::emit`); the dispatcher claims due ones with a lease, so a crashed or
//! restarted server simply retries them when the lease runs out.

use super::{Db, cursor_seq, events};
use crate::ids::new_id;
use crate::model::{
    AttemptOutcome, AttemptRecord, DeliveryAttempt, DeliveryJob, Page, PageRequest, WebhookEndpoint,
};
use crate::sql::{Conn, Optional, Row, params};
use pocket_core::Error;
use pocket_core::error::internal;

/// Endpoints one merchant may have.
pub const MAX_ENDPOINTS_PER_MERCHANT: i64 = 16;

fn decode_events(stored: &str) -> Vec<String> {
    if stored == "*" {
        return vec!["*".to_string()];
    }
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn encode_events(events: &Option<Vec<String>>) -> String {
    match events {
        None => "*".to_string(),
        Some(list) if list.iter().any(|e| e == "*") => "*".to_string(),
        Some(list) => format!(",{},", list.join(",")),
    }
}

fn endpoint(r: &Row<'_>) -> crate::sql::Result<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: r.get(0)?,
        object: "webhook_endpoint",
        url: r.get(1)?,
        events: decode_events(&r.get::<_, String>(2)?),
        created_at: r.get(3)?,
    })
}

pub(crate) fn create(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    url: &str,
    events: &Option<Vec<String>>,
) -> Result<WebhookEndpoint, Error> {
    super::lock_owner(conn, super::Owner::Merchant, merchant_id)?;
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM webhook_endpoints WHERE merchant_id = ?1 AND deleted_at IS NULL",
        )
        .db()?
        .query_row([merchant_id], |r| r.get(0))
        .db()?;
    if count >= MAX_ENDPOINTS_PER_MERCHANT {
        return Err(Error::invalid(
            "url",
            format!("A merchant may have at most {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints."),
        ));
    }
    let e = WebhookEndpoint {
        id: new_id("we"),
        object: "webhook_endpoint",
        url: url.to_string(),
        events: decode_events(&encode_events(events)),
        created_at: now,
    };
    conn.prepare_cached(
        "INSERT INTO webhook_endpoints (id, merchant_id, url, events, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db()?
    .execute(params![e.id, merchant_id, e.url, encode_events(events), now])
    .db()?;
    Ok(e)
}

pub(crate) fn list(
    conn: &Conn,
    merchant_id: &str,
    page: &PageRequest,
) -> Result<Page<WebhookEndpoint>, Error> {
    let before = cursor_seq(
        conn,
        "SELECT seq FROM webhook_endpoints WHERE id = ?1 AND merchant_id = ?2 AND deleted_at IS NULL",
        page.starting_after.as_deref(),
        merchant_id,
    )?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, url, events, created_at FROM webhook_endpoints
             WHERE merchant_id = ?1 AND deleted_at IS NULL AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
        )
        .db()?;
    let rows = stmt
        .query_map(
            params![merchant_id, before, (page.limit + 1) as i64],
            endpoint,
        )
        .db()?;
    Ok(Page::new(
        rows.collect::<crate::sql::Result<_>>().db()?,
        page.limit,
    ))
}

/// Deletes an endpoint: nothing more is sent to it, pending deliveries are dropped.
pub(crate) fn delete(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    id: &str,
) -> Result<WebhookEndpoint, Error> {
    let found = conn
        .prepare_cached(
            "SELECT id, url, events, created_at FROM webhook_endpoints
             WHERE id = ?1 AND merchant_id = ?2 AND deleted_at IS NULL",
        )
        .db()?
        .query_row(params![id, merchant_id], endpoint)
        .optional()
        .db()?
        .ok_or_else(|| Error::not_found("webhook endpoint", id))?;
    conn.prepare_cached("UPDATE webhook_endpoints SET deleted_at = ?2 WHERE id = ?1")
        .db()?
        .execute(params![id, now])
        .db()?;
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'failed' WHERE endpoint_id = ?1 AND status = 'pending'",
    )
    .db()?
    .execute([id])
    .db()?;
    Ok(found)
}

/// How long after an endpoint's deletion the dispatcher still looks for deliveries to
/// it left pending (see [`fail_orphans`]): far longer than a batch stays open.
const ORPHAN_LOOKBACK_MS: i64 = 10 * 60 * 1000;

/// Fails due deliveries to endpoints deleted lately. On PostgreSQL a batch that read
/// an endpoint as live before its deletion committed can write a delivery after it:
/// the deletion's own update did not see that row, so it would stay pending for
/// ever (never sent: [`claim`] joins live endpoints only).
fn fail_orphans(conn: &Conn, now: i64) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'failed'
         WHERE status = 'pending' AND next_attempt_at <= ?1 AND endpoint_id IN
               (SELECT id FROM webhook_endpoints WHERE deleted_at IS NOT NULL AND deleted_at > ?2)",
    )
    .db()?
    .execute(params![now, now - ORPHAN_LOOKBACK_MS])
    .db()?;
    Ok(())
}

/// Claims due deliveries: at most `per_endpoint` per endpoint (so one dead endpoint
/// cannot take every slot), none for `busy` endpoints, at most `limit` in all. Each
/// claimed delivery is leased until `now + lease_ms`.
pub(crate) fn claim(
    conn: &Conn,
    now: i64,
    busy: &[String],
    per_endpoint: usize,
    limit: usize,
    lease_ms: i64,
) -> Result<Vec<DeliveryJob>, Error> {
    if conn.is_postgres() {
        fail_orphans(conn, now)?;
    }
    let seqs = due(conn, now, busy, per_endpoint, limit)?;
    let mut jobs = Vec::with_capacity(seqs.len());
    for seq in seqs {
        if let Some(job) = lease(conn, now, seq, lease_ms)? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// Due deliveries (`seq`s), at most `per_endpoint` per endpoint and `limit` in all,
/// of endpoints not in `busy`.
fn due(
    conn: &Conn,
    now: i64,
    busy: &[String],
    per_endpoint: usize,
    limit: usize,
) -> Result<Vec<i64>, Error> {
    let placeholders: String = (0..busy.len()).map(|i| format!(", ?{}", i + 4)).collect();
    let exclude = if busy.is_empty() {
        String::new()
    } else {
        format!("AND d.endpoint_id NOT IN ('' {placeholders})")
    };
    let sql = format!(
        "SELECT seq FROM (
             SELECT d.seq, ROW_NUMBER() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.seq) AS rn
             FROM deliveries d
             JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.deleted_at IS NULL
             WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 {exclude}
         ) AS due WHERE rn <= ?2 LIMIT ?3"
    );
    let seqs: Vec<i64> = {
        let mut stmt = conn.prepare(&sql).db()?;
        let mut args: Vec<crate::sql::Value> = vec![
            crate::sql::Value::Int(now),
            crate::sql::Value::Int(per_endpoint as i64),
            crate::sql::Value::Int(limit as i64),
        ];
        args.extend(busy.iter().map(|b| crate::sql::Value::Text(b)));
        let rows = stmt
            .query_map(crate::sql::params_from_iter(args), |r| r.get(0))
            .db()?;
        rows.collect::<crate::sql::Result<_>>().db()?
    };
    Ok(seqs)
}

/// Leases delivery `seq` for `lease_ms` unless another node took it meanwhile: its job.
fn lease(conn: &Conn, now: i64, seq: i64, lease_ms: i64) -> Result<Option<DeliveryJob>, Error> {
    let leased = conn
        .prepare_cached(
            "UPDATE deliveries SET next_attempt_at = ?2 WHERE seq = ?1 AND status = 'pending' AND next_attempt_at <= ?3",
        )
        .db()?
        .execute(params![seq, now + lease_ms, now])
        .db()?;
    if leased != 1 {
        return Ok(None); // another node took it
    }
    let row = conn
        .prepare_cached(
            "SELECT d.event_id, d.endpoint_id, w.url, d.attempts, e.merchant_id, e.created_at
             FROM deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN events e ON e.id = d.event_id
             WHERE d.seq = ?1",
        )
        .db()?
        .query_row([seq], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .db()?;
    let (event_id, endpoint_id, url, attempts, merchant_id, event_created_at) = row;
    let event =
        events::merchant_event(conn, &merchant_id, &event_id)?.ok_or_else(Error::internal)?;
    Ok(Some(DeliveryJob {
        delivery_seq: seq,
        body: serde_json::to_string(&event).map_err(internal("webhook event body"))?,
        event_id,
        endpoint_id,
        url,
        attempts,
        event_created_at,
    }))
}

/// Longest error text kept per attempt.
const MAX_ERROR_CHARS: usize = 200;

pub(crate) fn record_attempt(conn: &Conn, a: &AttemptRecord) -> Result<(), Error> {
    let error: Option<String> = a
        .error
        .as_ref()
        .map(|e| e.chars().take(MAX_ERROR_CHARS).collect());
    conn.prepare_cached(
        "INSERT INTO delivery_attempts (delivery_seq, event_id, endpoint_id, attempted_at, status_code, error, duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![a.delivery_seq, a.event_id, a.endpoint_id, a.attempted_at, a.status_code, error, a.duration_ms])
    .db()?;
    let (status, next) = match a.outcome {
        AttemptOutcome::Delivered => ("delivered", a.attempted_at),
        AttemptOutcome::RetryAt(at) => ("pending", at),
        AttemptOutcome::GiveUp => ("failed", a.attempted_at),
    };
    // Only a delivery still pending changes (a deleted endpoint's stays failed).
    conn.prepare_cached(
        "UPDATE deliveries SET status = ?2, next_attempt_at = ?3, attempts = attempts + 1
         WHERE seq = ?1 AND status = 'pending'",
    )
    .db()?
    .execute(params![a.delivery_seq, status, next])
    .db()?;
    Ok(())
}

pub(crate) fn attempts(
    conn: &Conn,
    merchant_id: &str,
    event_id: &str,
) -> Result<Vec<DeliveryAttempt>, Error> {
    if events::merchant_event(conn, merchant_id, event_id)?.is_none() {
        return Err(Error::not_found("event", event_id));
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT event_id, endpoint_id, attempted_at, status_code, error, duration_ms FROM delivery_attempts
             WHERE event_id = ?1 ORDER BY seq DESC LIMIT 100",
        )
        .db()?;
    let rows = stmt
        .query_map([event_id], |r| {
            Ok(DeliveryAttempt {
                object: "delivery_attempt",
                event: r.get(0)?,
                webhook_endpoint: r.get(1)?,
                attempted_at: r.get(2)?,
                status_code: r.get(3)?,
                error: r.get(4)?,
                duration_ms: r.get(5)?,
            })
        })
        .db()?;
    rows.collect::<crate::sql::Result<_>>().db()
}

/// Sends an event again to every endpoint currently subscribed to it.
pub(crate) fn redeliver(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    event_id: &str,
) -> Result<usize, Error> {
    let Some(event) = events::merchant_event(conn, merchant_id, event_id)? else {
        return Err(Error::not_found("event", event_id));
    };
    conn.prepare_cached(
        "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
         SELECT CAST(?1 AS TEXT), id, 'pending', 0, CAST(?3 AS BIGINT), CAST(?3 AS BIGINT) FROM webhook_endpoints
         WHERE merchant_id = ?2 AND deleted_at IS NULL AND (events = '*' OR events LIKE ?4)
         ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = 'pending', next_attempt_at = excluded.next_attempt_at",
    )
    .db()?
    .execute(params![event_id, merchant_id, now, format!("%,{},%", event.kind)])
    .db()
}

pub(crate) fn next_due(conn: &Conn) -> Result<Option<i64>, Error> {
    conn.prepare_cached("SELECT next_attempt_at FROM deliveries WHERE status = 'pending' ORDER BY next_attempt_at LIMIT 1")
        .db()?
        .query_row([], |r| r.get(0))
        .optional()
        .db()
}

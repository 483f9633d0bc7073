//! Events: one row per state change, written in the change's transaction. This
//! table is the outbox that webhook delivery will read.

use super::{Db, cursor_seq};
use crate::ids::new_id;
use crate::model::{Event, EventData, EventNote, Page, PageRequest};
use crate::sql::{Conn, Optional, params};
use pocket_core::Error;
use pocket_core::activity::Kind;
use pocket_core::error::internal;
use serde_json::value::RawValue;

/// Who an event concerns.
pub(crate) struct Subject<'a> {
    pub merchant_id: &'a str,
    pub customer_id: Option<&'a str>,
    pub payment_id: Option<&'a str>,
}

pub(crate) fn emit<T: serde::Serialize>(
    conn: &Conn,
    now: i64,
    kind: &str,
    subject: Subject<'_>,
    object: &T,
) -> Result<(), Error> {
    emit_with(conn, now, kind, subject, object, None)
}

/// More writes for the event's own statement on PostgreSQL: data-modifying CTEs
/// (`name AS (…), ` each) whose parameters follow the event's eight (`?9` on), so a
/// state change's last writes share one round trip. SQLite takes none.
pub(crate) type Also<'a> = (&'static str, &'a [&'a dyn crate::sql::ToSql]);

/// [`emit`], with `also` written in the same statement (PostgreSQL only).
pub(crate) fn emit_with<T: serde::Serialize>(
    conn: &Conn,
    now: i64,
    kind: &str,
    subject: Subject<'_>,
    object: &T,
    also: Option<Also<'_>>,
) -> Result<(), Error> {
    let data = serde_json::to_string(object).map_err(internal("event object as JSON"))?;
    let id = new_id("evt");
    let wanted = format!(",{kind},");
    let event = params![
        id,
        kind,
        subject.merchant_id,
        subject.customer_id,
        subject.payment_id,
        data,
        now,
        wanted
    ];
    if conn.is_postgres() {
        // The event and its outbox (and `also`) in one round trip.
        let (ctes, more) = also.unwrap_or(("", &[]));
        let sql = format!(
            "WITH {ctes}e AS (INSERT INTO events (id, type, merchant_id, customer_id, payment_id, data, created_at)
                        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id, seq),
             d AS (INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
                   SELECT e.id, w.id, 'pending', 0, ?7, ?7 FROM e, webhook_endpoints w
                   WHERE w.merchant_id = ?3 AND w.deleted_at IS NULL
                     AND (w.events = '*' OR strpos(w.events, ?8) > 0))
             SELECT seq FROM e"
        );
        let mut all = event.to_vec();
        all.extend_from_slice(more);
        let pending: i64 = conn
            .prepare_cached(&sql)
            .db()?
            .query_row(&all[..], |r| r.get(0))
            .db()?;
        // Numbered after the commit by the settlement (schema v8).
        conn.note_pending_event(pending);
        return Ok(());
    }
    debug_assert!(also.is_none(), "SQLite writes each statement on its own");
    conn.prepare_cached(
        "INSERT INTO events (id, type, merchant_id, customer_id, payment_id, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(&event[..7])
    .db()?;
    outbox(conn, now, &id, subject.merchant_id, &wanted)
}

/// The webhook outbox of event `id` (SQLite): one delivery per endpoint of the merchant
/// subscribed to `wanted` (`,kind,`), in this transaction. (Filtered here rather than
/// with `LIKE ?`, which makes SQLite re-prepare.)
fn outbox(conn: &Conn, now: i64, id: &str, merchant_id: &str, wanted: &str) -> Result<(), Error> {
    let endpoints: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare_cached("SELECT id, events FROM webhook_endpoints WHERE merchant_id = ?1 AND deleted_at IS NULL")
            .db()?;
        let rows = stmt
            .query_map([merchant_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .db()?;
        rows.collect::<crate::sql::Result<_>>().db()?
    };
    for (endpoint, events) in endpoints {
        if events == "*" || events.contains(wanted) {
            conn.prepare_cached(
                "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
                 VALUES (?1, ?2, 'pending', 0, ?3, ?3)",
            )
            .db()?
            .execute(params![id, endpoint, now])
            .db()?;
        }
    }
    Ok(())
}

fn event_row(r: &crate::sql::Row<'_>) -> crate::sql::Result<(String, String, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_event(row: (String, String, i64, String)) -> Result<Event, Error> {
    let (id, kind, created_at, data) = row;
    let object = RawValue::from_string(data).map_err(internal("stored event data"))?;
    Ok(Event {
        id,
        object: "event",
        kind,
        created_at,
        data: EventData { object },
    })
}

/// Events committed after `after_seq`, oldest first, for announcing them.
/// Most notes read at once (the announcer reads again while pages come back full).
pub(crate) const NOTES_PAGE: usize = 10_000;

pub(crate) fn notes_since(conn: &Conn, after_seq: i64) -> Result<Vec<EventNote>, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, id, type, merchant_id, customer_id, payment_id FROM events
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .db()?;
    let rows = stmt
        .query_map(params![after_seq, NOTES_PAGE], |r| {
            Ok(EventNote {
                seq: r.get(0)?,
                id: r.get(1)?,
                kind: r.get(2)?,
                merchant_id: r.get(3)?,
                customer_id: r.get(4)?,
                payment_id: r.get(5)?,
            })
        })
        .db()?;
    rows.collect::<crate::sql::Result<_>>().db()
}

pub(crate) fn last_seq(conn: &Conn) -> Result<i64, Error> {
    conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events")
        .db()?
        .query_row([], |r| r.get(0))
        .db()
}

/// A customer's events after `after_seq`, oldest first, with their seq.
pub(crate) fn for_customer_since(
    conn: &Conn,
    customer_id: &str,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<(i64, Event)>, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, type, created_at, data, seq FROM events
             WHERE customer_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .db()?;
    let rows = stmt
        .query_map(params![customer_id, after_seq, limit as i64], |r| {
            Ok((event_row(r)?, r.get::<_, i64>(4)?))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (row, seq) = row.db()?;
        out.push((seq, to_event(row)?));
    }
    Ok(out)
}

/// The seq of `event_id` if it belongs to the customer (for `Last-Event-ID`).
pub(crate) fn customer_event_seq(
    conn: &Conn,
    customer_id: &str,
    event_id: &str,
) -> Result<Option<i64>, Error> {
    conn.prepare_cached("SELECT seq FROM events WHERE id = ?1 AND customer_id = ?2")
        .db()?
        .query_row(params![event_id, customer_id], |r| r.get(0))
        .optional()
        .db()
}

/// The merchant's event with `id`, as its webhook body (the `GET /v1/events` shape).
pub(crate) fn merchant_event(
    conn: &Conn,
    merchant_id: &str,
    id: &str,
) -> Result<Option<Event>, Error> {
    conn.prepare_cached(
        "SELECT id, type, created_at, data FROM events WHERE id = ?1 AND merchant_id = ?2",
    )
    .db()?
    .query_row(params![id, merchant_id], event_row)
    .optional()
    .db()?
    .map(to_event)
    .transpose()
}

pub(crate) fn list(
    conn: &Conn,
    merchant_id: &str,
    page: &PageRequest,
) -> Result<Page<Event>, Error> {
    let before = cursor_seq(
        conn,
        "SELECT seq FROM events WHERE id = ?1 AND merchant_id = ?2",
        page.starting_after.as_deref(),
        merchant_id,
    )?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, type, created_at, data FROM events
             WHERE merchant_id = ?1 AND seq > 0 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
        )
        .db()?;
    let rows = stmt
        .query_map(
            params![merchant_id, before, (page.limit + 1) as i64],
            event_row,
        )
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        out.push(to_event(row.db()?)?);
    }
    Ok(Page::new(out, page.limit))
}

/// What tells apart the kinds that share an event type: a capture from a payment, a
/// release from a cancellation (the payment's row, joined as `p`).
fn kind_condition(kind: Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::Capture) => "AND p.capture = 'manual'",
        Some(Kind::Payment) => "AND p.capture <> 'manual'",
        Some(Kind::Release) => "AND p.capture_before IS NOT NULL",
        Some(Kind::Canceled) => "AND p.capture_before IS NULL",
        _ => "",
    }
}

/// A page of the customer's history, newest first (all of it, or one `kind`): their
/// events as lines, each with its payment's merchant and currency for what its object
/// does not say.
pub(crate) fn activity(
    conn: &Conn,
    customer_id: &str,
    kind: Option<Kind>,
    page: &PageRequest,
) -> Result<Page<pocket_core::activity::Activity>, Error> {
    use pocket_core::activity::{self, EVENT_TYPES, OfPayment};
    let types = kind.map_or(&EVENT_TYPES[..], Kind::event_types);
    let before = cursor_seq(
        conn,
        "SELECT seq FROM events WHERE id = ?1 AND customer_id = ?2",
        page.starting_after.as_deref(),
        customer_id,
    )?;
    // The names are the core's constants, never a request's text.
    let listed: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
    let sql = format!(
        "SELECT e.id, e.type, e.created_at, e.data, p.merchant_name, p.currency
         FROM events e LEFT JOIN payments p ON p.id = e.payment_id
         WHERE e.customer_id = ?1 AND e.seq > 0 AND e.seq < ?2 AND e.type IN ({}) {}
         ORDER BY e.seq DESC LIMIT ?3",
        listed.join(", "),
        kind_condition(kind)
    );
    type Row = (String, String, i64, String, Option<String>, Option<String>);
    let rows = conn
        .prepare_cached(&sql)
        .db()?
        .query_map(
            params![customer_id, before, (page.limit + 1) as i64],
            |r| -> crate::sql::Result<Row> {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, created_at, data, merchant_name, currency) = row.db()?;
        let object: serde_json::Value = serde_json::from_str(&data).map_err(|_| {
            tracing::error!(event = %id, "undecodable event row");
            Error::internal()
        })?;
        let of_payment = OfPayment {
            merchant_name,
            currency,
        };
        if let Some(line) = activity::from_event(&id, &kind, &object, of_payment, created_at) {
            out.push(line);
        }
    }
    Ok(Page::new(out, page.limit))
}

//! Events: one row per state change, written in the change's transaction. This
//! table is the outbox that webhook delivery will read.

use super::{Db, cursor_seq};
use crate::ids::new_id;
use crate::model::{Event, EventData, Page, PageRequest};
use pocket_core::Error;
use rusqlite::{Connection, params};
use serde_json::value::RawValue;

/// Who an event concerns.
pub(in crate::sqlite) struct Subject<'a> {
    pub merchant_id: &'a str,
    pub customer_id: Option<&'a str>,
    pub payment_id: Option<&'a str>,
}

pub(in crate::sqlite) fn emit<T: serde::Serialize>(
    conn: &Connection,
    now: i64,
    kind: &str,
    subject: Subject<'_>,
    object: &T,
) -> Result<(), Error> {
    let data = serde_json::to_string(object).map_err(|_| Error::internal())?;
    conn.prepare_cached(
        "INSERT INTO events (id, type, merchant_id, customer_id, payment_id, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![
        new_id("evt"),
        kind,
        subject.merchant_id,
        subject.customer_id,
        subject.payment_id,
        data,
        now
    ])
    .db()?;
    Ok(())
}

pub(in crate::sqlite) fn list(
    conn: &Connection,
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
             WHERE merchant_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
        )
        .db()?;
    let rows = stmt
        .query_map(params![merchant_id, before, (page.limit + 1) as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, created_at, data) = row.db()?;
        let object = RawValue::from_string(data).map_err(|_| Error::internal())?;
        out.push(Event {
            id,
            object: "event",
            kind,
            created_at,
            data: EventData { object },
        });
    }
    Ok(Page::new(out, page.limit))
}

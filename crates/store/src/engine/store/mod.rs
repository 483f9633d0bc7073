//! The store over either engine: reads on the pool, writes
//! through the group-committing writer, every operation's SQL in `crate::ops`.

mod bank;
mod cards;
mod catalog;
mod devices;
mod events;
mod ledger;
mod merchants;
mod payments;
mod pins;
mod risk;
mod wallet;
mod webhooks;

use crate::clock::Clock;
use crate::engine::Announcer;
use crate::engine::credentials::{Credentials, Grant, Remembered};
use crate::engine::readers::Readers;
use crate::engine::writer::Writer;
use crate::model::*;
use crate::ops;
use crate::ops::Outcome;
use crate::sql::Conn;
use pocket_core::Error;
use std::sync::Arc;

/// A store on SQLite or PostgreSQL (see `crate::sqlite::open`, `crate::postgres::open`).
pub struct SqlStore {
    writer: Writer,
    readers: Readers,
    announcer: Arc<Announcer>,
    clock: Arc<dyn Clock>,
    /// Keys and sessions remembered (SQLite) so authentication costs no read.
    credentials: Arc<Credentials>,
    /// Stops the store's background thread (PostgreSQL: the `LISTEN` thread) with it.
    _stop: Option<super::StopOnDrop>,
    /// SQLite: the data file's ownership lock, released with the store.
    _owner: Option<std::fs::File>,
    /// Risk rules (compiled, refreshed when they change) and daily limits.
    risk: Arc<ops::risk::Risk>,
}

impl SqlStore {
    /// The store's clock (the one used inside transactions).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn new(
        writer: Writer,
        readers: Readers,
        announcer: Arc<Announcer>,
        clock: Arc<dyn Clock>,
        credentials: Credentials,
        stop: Option<super::StopOnDrop>,
        owner: Option<std::fs::File>,
    ) -> SqlStore {
        SqlStore {
            writer,
            readers,
            announcer,
            clock,
            credentials: Arc::new(credentials),
            _stop: stop,
            _owner: owner,
            risk: Arc::new(ops::risk::Risk::new(Default::default())),
        }
    }

    /// Caps what one customer may spend per UTC day, per currency (ISO code → minor
    /// units; `[limits] customer_daily_spend`): over it, `402 limit_exceeded`.
    pub fn with_daily_limits(
        mut self,
        limits: std::collections::BTreeMap<String, i64>,
    ) -> SqlStore {
        self.risk = Arc::new(ops::risk::Risk::new(limits));
        self
    }

    /// Runs `f` on a read connection in the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Fn(&Conn<'_>) -> Result<T, Error> + Send + 'static,
    {
        self.readers.run(f).await
    }

    /// A credential's holder: from memory when it is remembered, else read (and then
    /// remembered unless it was forgotten meanwhile, see `credentials.rs`).
    async fn remembered<G, F>(&self, digest: String, read: F) -> Result<Option<G::Holder>, Error>
    where
        G: Grant + Send + 'static,
        F: Fn(&Conn<'_>, &str, i64) -> Result<Option<G>, Error> + Send + 'static,
    {
        let now = self.now_ms();
        let generation = match self.credentials.look::<G>(&digest, now) {
            Remembered::Valid(holder) => return Ok(Some(holder)),
            Remembered::Over => return Ok(None),
            Remembered::Unknown(generation) => generation,
        };
        let looked_up = digest.clone();
        let grant = self.read(move |c| read(c, &looked_up, now)).await?;
        Ok(grant.map(|g| {
            self.credentials.remember(digest, g.clone(), generation);
            g.holder()
        }))
    }

    async fn write_idem<T, F>(&self, idem: Option<Idem>, f: F) -> Result<Written<T>, Error>
    where
        T: serde::Serialize + Send + 'static,
        F: FnMut(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
    {
        let mut f = f;
        self.writer
            .run(move |conn, now| {
                ops::idempotency::wrap(conn, now, idem.as_ref(), |conn| {
                    f(conn, now).map(Outcome::Done)
                })
            })
            .await?
            .into_result()
    }
}

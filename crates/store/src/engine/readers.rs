//! A fixed pool of read connections used from tokio's blocking threads. Readers see
//! the last commit and never wait for the writer (SQLite in WAL mode; PostgreSQL by
//! MVCC). The pool is bounded: a read waits for a free connection rather than opening
//! another one (opening a connection costs far more than waiting for one).

use super::Session;
use crate::sql::Conn;
use pocket_core::Error;
use pocket_core::error::internal;
use std::sync::{Arc, Condvar, Mutex};

pub(crate) struct Readers {
    shared: Arc<Shared>,
}

struct Shared {
    idle: Mutex<Vec<Session>>,
    freed: Condvar,
}

impl Readers {
    pub(crate) fn new(sessions: Vec<Session>) -> Readers {
        Readers {
            shared: Arc::new(Shared {
                idle: Mutex::new(sessions),
                freed: Condvar::new(),
            }),
        }
    }

    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Fn(&Conn<'_>) -> Result<T, Error> + Send + 'static,
    {
        let shared = self.shared.clone();
        let job = move || {
            let mut session = {
                let mut idle = shared.idle.lock().map_err(internal("reader pool lock"))?;
                loop {
                    if let Some(c) = idle.pop() {
                        break c;
                    }
                    idle = shared
                        .freed
                        .wait(idle)
                        .map_err(internal("reader pool wait"))?;
                }
            };
            let mut out = read_once(&mut session, &f);
            if out.is_err() && session.lost() {
                // The connection died under the read (a restarted or failed-over
                // server): a read may be tried again, once, on a new connection.
                out = read_once(&mut session, &f);
            }
            // A connection whose statement failed is still usable: SQLite resets
            // statements on drop; a lost PostgreSQL connection is opened again by
            // its next use.
            if let Ok(mut idle) = shared.idle.lock() {
                idle.push(session);
                shared.freed.notify_one();
            }
            out
        };
        tokio::task::spawn_blocking(job).await.map_err(|e| {
            tracing::error!(error = %e, "read task failed");
            Error::internal()
        })?
    }
}

/// One read; a read that panics answers `500` and gives its connection back (it is
/// not lost to the pool).
fn read_once<T>(
    session: &mut Session,
    f: &impl Fn(&Conn<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.with(f))).unwrap_or_else(
        |_| {
            tracing::error!("a read panicked");
            Err(Error::internal())
        },
    )
}

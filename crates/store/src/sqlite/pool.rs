//! A fixed pool of read-only connections used from tokio's blocking threads. In WAL
//! mode readers see the last commit and never wait for the writer. The pool is
//! bounded: a read waits for a free connection rather than opening another one
//! (opening a connection costs far more than waiting for one).

use pocket_core::Error;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

pub(super) struct Readers {
    shared: Arc<Shared>,
}

struct Shared {
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
}

impl Readers {
    pub(super) fn new(path: PathBuf, size: usize) -> Result<Readers, String> {
        let mut idle = Vec::with_capacity(size.max(1));
        for _ in 0..size.max(1) {
            idle.push(
                open_reader(&path).map_err(|e| format!("cannot open a read connection: {e}"))?,
            );
        }
        Ok(Readers {
            shared: Arc::new(Shared {
                idle: Mutex::new(idle),
                freed: Condvar::new(),
            }),
        })
    }

    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let shared = self.shared.clone();
        let job = move || {
            let conn = {
                let mut idle = shared.idle.lock().map_err(|_| Error::internal())?;
                loop {
                    if let Some(c) = idle.pop() {
                        break c;
                    }
                    idle = shared.freed.wait(idle).map_err(|_| Error::internal())?;
                }
            };
            let out = f(&conn);
            // A connection whose statement panicked or failed is still usable: SQLite
            // resets statements on drop.
            if let Ok(mut idle) = shared.idle.lock() {
                idle.push(conn);
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

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(super::STATEMENT_CACHE);
    Ok(conn)
}

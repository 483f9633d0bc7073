//! A small pool of read-only connections used from tokio's blocking threads.
//! In WAL mode readers see the last commit and never wait for the writer.

use pocket_core::Error;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub(super) struct Readers {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    /// Most idle connections kept; more may exist briefly under load.
    max_idle: usize,
}

impl Readers {
    pub(super) fn new(path: PathBuf, max_idle: usize) -> Readers {
        Readers {
            path,
            idle: Arc::new(Mutex::new(Vec::new())),
            max_idle: max_idle.max(1),
        }
    }

    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let idle = self.idle.clone();
        let path = self.path.clone();
        let max_idle = self.max_idle;
        let job = move || {
            let pooled = idle.lock().ok().and_then(|mut v| v.pop());
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&path).map_err(super::sql_error)?,
            };
            let out = f(&conn);
            if let Ok(mut v) = idle.lock()
                && v.len() < max_idle
            {
                v.push(conn);
            }
            out
        };
        tokio::task::spawn_blocking(job).await.map_err(|e| {
            tracing::error!(error = %e, "read task failed");
            Error::internal()
        })?
    }
}

fn open_reader(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

//! WAL checkpoints off the write path. The writer's connection has auto-checkpoints
//! off; this thread copies committed pages from the WAL into the database file
//! (`PASSIVE`: it never blocks the writer or readers) every [`EVERY`], and truncates
//! the WAL when it has grown past [`TRUNCATE_ABOVE_PAGES`] and nothing reads it.

use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(500);
const TRUNCATE_ABOVE_PAGES: i64 = 20_000;

pub(super) fn start(path: &Path) -> Result<(), String> {
    let conn = Connection::open(path)
        .map_err(|e| format!("cannot open the checkpoint connection: {e}"))?;
    conn.busy_timeout(Duration::from_millis(100))
        .map_err(|e| format!("cannot configure the checkpoint connection: {e}"))?;
    std::thread::Builder::new()
        .name("pocket-checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EVERY);
                // (busy, pages in the WAL, pages checkpointed)
                let r: rusqlite::Result<(i64, i64, i64)> =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    });
                match r {
                    Ok((_, log, done)) if log > TRUNCATE_ABOVE_PAGES && done == log => {
                        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "checkpoint skipped"),
                }
            }
        })
        .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
    Ok(())
}

//! WAL checkpoints off the write path. The writer's connection has auto-checkpoints
//! off; this thread copies committed pages from the WAL into the database file every
//! [`EVERY`] with `PASSIVE` checkpoints, which never block the writer or readers.
//! Once a checkpoint has caught up, the writer starts the WAL over from its
//! beginning by itself (and `journal_size_limit` trims the file then).

use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(500);

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
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "checkpoint skipped");
                }
            }
        })
        .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
    Ok(())
}

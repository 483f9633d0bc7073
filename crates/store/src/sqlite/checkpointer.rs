//! WAL checkpoints off the write path. The writer's connection has auto-checkpoints
//! off; this thread copies committed pages from the WAL into the database file every
//! [`EVERY`] with `PASSIVE` checkpoints, which never block the writer or readers.
//! Under continuous load some reader always holds a snapshot, so a passive checkpoint
//! alone never lets the WAL start over and it would grow without bound; once it holds
//! more than [`RESTART_ABOVE_FRAMES`], a `RESTART` checkpoint (which briefly waits for
//! readers and holds off the writer) resets it. `journal_size_limit` trims the file.

use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(500);
/// WAL frames (4 KiB pages) above which the WAL is restarted: ~16 MiB.
const RESTART_ABOVE_FRAMES: i64 = 4_096;

pub(super) fn start(path: &Path) -> Result<(), String> {
    let conn = Connection::open(path)
        .map_err(|e| format!("cannot open the checkpoint connection: {e}"))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| format!("cannot configure the checkpoint connection: {e}"))?;
    std::thread::Builder::new()
        .name("pocket-checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EVERY);
                // (busy, frames in the WAL, frames checkpointed)
                let passive: rusqlite::Result<(i64, i64, i64)> =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    });
                match passive {
                    Ok((_, frames, _)) if frames > RESTART_ABOVE_FRAMES => {
                        if let Err(e) =
                            conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                        {
                            tracing::debug!(error = %e, "WAL restart postponed");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "checkpoint skipped"),
                }
            }
        })
        .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
    Ok(())
}

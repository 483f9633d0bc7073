//! WAL checkpoints off the write path. The writer's connection has auto-checkpoints
//! off; this thread copies committed pages from the WAL into the database file every
//! [`EVERY`] with `PASSIVE` checkpoints, which never block the writer or readers.
//!
//! A passive checkpoint never lets the WAL start over, so under continuous load it
//! would grow without bound (seen: 783 MB after 8 s). Starting over takes a `RESTART`
//! checkpoint, which needs the write lock: run from this thread it queued behind the
//! writer's back-to-back batches and, once it had the lock, held off the writer while
//! it waited for readers. So once the WAL holds more than [`RESTART_ABOVE_FRAMES`] this
//! thread only asks, and the writer restarts the WAL itself between two batches
//! ([`restart_when_asked`]), waiting for readers at most [`RESTART_PATIENCE_LOOKS`]
//! × 100 µs (a long read postpones it to the next batch rather than stall writes).
//!
//! The writer is asked only when the passive checkpoints left little to copy
//! ([`LEFT_FOR_THE_WRITER`]): after a long reader held them back, they catch up first.
//!
//! Commits never shrink the file (`journal_size_limit = -1`: freeing its blocks took
//! 210 ms inside a commit); once writes paused for [`QUIET_TICKS_BEFORE_TRUNCATE`]
//! ticks and the file is larger than [`SHRINK_ABOVE_BYTES`], a `TRUNCATE` checkpoint
//! empties it here (a write arriving meanwhile waits for it).

use crate::engine::{Session, Upkeep};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(500);
/// WAL frames (4 KiB pages) above which the WAL is restarted: 256 MiB. Each restart
/// holds the writer 10–15 ms (it copies what the last passive checkpoint left and syncs
/// the database file); 16 MiB made that every 500 ms at 5,000 payments/s (p99 16 ms).
const RESTART_ABOVE_FRAMES: i64 = 65_536;
/// Most frames a passive checkpoint may leave uncopied for the writer's restart to
/// copy itself (16 MiB).
const LEFT_FOR_THE_WRITER: i64 = 4_096;
/// Ticks without a write before a large WAL file is truncated (2 s).
const QUIET_TICKS_BEFORE_TRUNCATE: u32 = 4;
/// A WAL file larger than this is truncated when writes pause: 64 MiB.
const SHRINK_ABOVE_BYTES: u64 = 64 * 1024 * 1024;
/// How long the writer waits for readers to leave the WAL before restarting it, in
/// 100-µs looks: 2 ms.
const RESTART_PATIENCE_LOOKS: i32 = 20;

/// Starts the checkpoint thread; returns the writer's part (restarting the WAL when
/// this thread asks).
pub(super) fn start(path: &Path) -> Result<Upkeep, String> {
    let conn = Connection::open(path)
        .map_err(|e| format!("cannot open the checkpoint connection: {e}"))?;
    // Passive checkpoints never wait; a TRUNCATE holds the write lock while it waits
    // for readers, so it waits 2 ms at most.
    conn.busy_handler(Some(patient))
        .map_err(|e| format!("cannot configure the checkpoint connection: {e}"))?;
    let wal = super::beside(path, "-wal");
    let asked = Arc::new(AtomicBool::new(false));
    let ask = asked.clone();
    std::thread::Builder::new()
        .name("pocket-checkpoint".into())
        .spawn(move || {
            // Frames in the WAL at the last tick: unchanged means no write since.
            let mut last_frames = -1;
            let mut quiet_ticks = 0;
            loop {
                std::thread::sleep(EVERY);
                // (busy, frames in the WAL, frames checkpointed)
                let passive: rusqlite::Result<(i64, i64, i64)> =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    });
                let (frames, copied) = match passive {
                    Ok((_, frames, copied)) => (frames, copied),
                    Err(e) => {
                        tracing::debug!(error = %e, "checkpoint skipped");
                        continue;
                    }
                };
                let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
                quiet_ticks = if frames == last_frames {
                    quiet_ticks + 1
                } else {
                    0
                };
                match after_passive(frames, frames - copied, quiet_ticks, wal_bytes) {
                    Some(Next::Truncate) => {
                        let truncated =
                            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                        if let Err(e) = truncated {
                            tracing::debug!(error = %e, "WAL truncation postponed");
                        }
                    }
                    Some(Next::AskRestart) => ask.store(true, Ordering::Relaxed),
                    None => {}
                }
                last_frames = frames;
            }
        })
        .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
    Ok(Box::new(move |session| restart_when_asked(session, &asked)))
}

#[derive(Debug, PartialEq, Eq)]
enum Next {
    Truncate,
    AskRestart,
}

/// What follows a passive checkpoint that left `frames` in a WAL file of `wal_bytes`,
/// `left` of them not yet copied (a reader on an old snapshot holds them), after
/// `quiet_ticks` ticks without a write.
fn after_passive(frames: i64, left: i64, quiet_ticks: u32, wal_bytes: u64) -> Option<Next> {
    if quiet_ticks >= QUIET_TICKS_BEFORE_TRUNCATE && wal_bytes > SHRINK_ABOVE_BYTES {
        Some(Next::Truncate)
    } else if quiet_ticks == 0 && frames > RESTART_ABOVE_FRAMES && left <= LEFT_FOR_THE_WRITER {
        // (With more left, the writer would copy it all on its own thread: wait for
        // the passive checkpoints to catch up.)
        Some(Next::AskRestart)
    } else {
        None
    }
}

/// Patient for [`RESTART_PATIENCE_LOOKS`] looks of 100 µs.
fn patient(looks: i32) -> bool {
    super::look_again(looks, RESTART_PATIENCE_LOOKS)
}

/// On the writer's thread, between batches: restarts the WAL if the checkpointer asked.
fn restart_when_asked(session: &mut Session, asked: &AtomicBool) {
    let Session::Sqlite(conn) = session else {
        return;
    };
    if !asked.swap(false, Ordering::Relaxed) {
        return;
    }
    let restarted = conn.busy_handler(Some(patient)).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
    });
    if let Err(e) = conn.busy_handler(Some(super::wait_briefly)) {
        tracing::error!(error = %e, "cannot restore the writer's busy handler");
    }
    match restarted {
        // Busy: a reader still needs the WAL; asked again at the next tick.
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "WAL restart postponed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_wal_is_truncated_once_writes_pause_and_restarted_while_they_go_on() {
        let large = SHRINK_ABOVE_BYTES + 1;
        let many = RESTART_ABOVE_FRAMES + 1;
        let quiet = QUIET_TICKS_BEFORE_TRUNCATE;
        assert_eq!(
            after_passive(10, 0, 0, large),
            None,
            "still writing, few frames"
        );
        assert_eq!(
            after_passive(10, 0, quiet - 1, large),
            None,
            "not quiet for long"
        );
        assert_eq!(after_passive(10, 0, quiet, large), Some(Next::Truncate));
        assert_eq!(
            after_passive(10, 0, quiet, SHRINK_ABOVE_BYTES),
            None,
            "small enough"
        );
        assert_eq!(after_passive(many, 0, 0, large), Some(Next::AskRestart));
        // A reader held the passive checkpoint back: the writer would copy it all.
        let behind = LEFT_FOR_THE_WRITER + 1;
        assert_eq!(after_passive(many, behind, 0, large), None);
        // Nothing written since the last tick: nothing for the writer to restart.
        assert_eq!(after_passive(many, 0, 1, 0), None);
    }
}

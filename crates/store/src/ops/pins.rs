//! PIN lockout guards: the stored side of `pocket_core::lockout`. Every change locks
//! and reads the guard and writes the core's answer inside the writer's transaction,
//! so reservations are serialised however many guesses arrive at once, on any nodes.

use super::Db;
use super::Outcome;
use crate::model::{Idem, PinAttempt, ReplayJudged};
use crate::sql::{Conn, Optional, params};
use pocket_core::Error;
use pocket_core::lockout::{Guard, Verdict};

/// The subject's guard, locked until the commit. PostgreSQL: one statement creates
/// (empty), locks and reads it, so guesses on several nodes are counted one after the
/// other; SQLite's one writer reads it.
fn load(conn: &Conn, now: i64, subject: &str) -> Result<Guard, Error> {
    let sql = if conn.is_postgres() {
        "INSERT INTO pin_guards (subject, failures, pending, pending_until, last_failure_at, locked_until, updated_at)
         VALUES (?1, 0, 0, 0, 0, NULL, ?2)
         ON CONFLICT (subject) DO UPDATE SET subject = excluded.subject
         RETURNING failures, pending, pending_until, last_failure_at, locked_until"
    } else {
        "SELECT failures, pending, pending_until, last_failure_at, locked_until
         FROM pin_guards WHERE subject = ?1 AND ?2 = ?2"
    };
    let guard = conn
        .prepare_cached(sql)
        .db()?
        .query_row(params![subject, now], |r| {
            Ok(Guard {
                failures: r.get(0)?,
                pending: r.get(1)?,
                pending_until_ms: r.get(2)?,
                last_failure_ms: r.get(3)?,
                locked_until_ms: r.get(4)?,
            })
        })
        .optional()
        .db()?;
    Ok(guard.unwrap_or_default())
}

/// Stores the guard, or forgets it when there is nothing left to remember.
fn save(conn: &Conn, now: i64, subject: &str, g: &Guard) -> Result<(), Error> {
    if g.is_empty() {
        conn.prepare_cached("DELETE FROM pin_guards WHERE subject = ?1")
            .db()?
            .execute([subject])
            .db()?;
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO pin_guards (subject, failures, pending, pending_until, last_failure_at, locked_until, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, pending = excluded.pending,
             pending_until = excluded.pending_until, last_failure_at = excluded.last_failure_at,
             locked_until = excluded.locked_until, updated_at = excluded.updated_at",
    )
    .db()?
    .execute(params![
        subject,
        g.failures,
        g.pending,
        g.pending_until_ms,
        g.last_failure_ms,
        g.locked_until_ms,
        now
    ])
    .db()?;
    Ok(())
}

/// A replay of a request that carried a PIN, judged in one transaction: its PIN is
/// compared with the first request's by their fingerprints (same body, same PIN), a
/// guess judged at once (`Guard::judge_at_once`), so no reservation is taken — after a
/// crash, the dead process's reservations never make a replay wait. No record
/// (`Fresh`). The same body gets the stored answer unless the guard is locked;
/// another body is counted as a wrong PIN (`409 idempotency_key_reused`, or `423`), and
/// that count commits with the answer.
pub(crate) fn judge_replay(
    conn: &Conn,
    now: i64,
    attempt: &PinAttempt,
    idem: &Idem,
) -> Result<ReplayJudged, Error> {
    let Some((fingerprint, stored)) = super::idempotency::find(conn, &idem.caller, &idem.key, now)?
    else {
        return Ok(ReplayJudged::Fresh);
    };
    let same = crate::model::fingerprints_match(&fingerprint, &idem.fingerprint);
    let before = load(conn, now, &attempt.subject)?;
    let locked_before = before.locked_until(&attempt.rule, now).is_some();
    let (g, verdict) = before.judge_at_once(&attempt.rule, now, same);
    save(conn, now, &attempt.subject, &g)?;
    Ok(match verdict {
        Verdict::Accepted => ReplayJudged::Replay(stored),
        Verdict::Locked { .. } => ReplayJudged::Refused {
            error: verdict.error(now).unwrap_or_else(Error::internal),
            counted: !locked_before,
        },
        _ => ReplayJudged::Refused {
            error: super::idempotency::key_reused(),
            counted: true,
        },
    })
}

/// Reserves one attempt before a PIN is verified; `Err` is `423 pin_locked`.
pub(crate) fn reserve(conn: &Conn, now: i64, attempt: &PinAttempt) -> Result<(), Error> {
    let guard = load(conn, now, &attempt.subject)?;
    match guard.reserve(&attempt.rule, now) {
        Ok(g) => save(conn, now, &attempt.subject, &g),
        Err(refused) => Err(refused.error(now).unwrap_or_else(Error::internal)),
    }
}

/// Settles a reserved attempt with the verification's result.
pub(crate) fn settle(
    conn: &Conn,
    now: i64,
    attempt: &PinAttempt,
    correct: bool,
) -> Result<Verdict, Error> {
    let (g, verdict) = load(conn, now, &attempt.subject)?.settle(&attempt.rule, now, correct);
    save(conn, now, &attempt.subject, &g)?;
    Ok(verdict)
}

/// Releases a reserved attempt that was never verified.
pub(crate) fn abandon(conn: &Conn, now: i64, attempt: &PinAttempt) -> Result<(), Error> {
    let g = load(conn, now, &attempt.subject)?.abandon(&attempt.rule, now);
    save(conn, now, &attempt.subject, &g)
}

/// Settles a verified-correct attempt, then runs `action` in the same transaction,
/// only if the guard is not locked at this moment. The settlement commits whatever
/// the action answers (its changes roll back alone when it fails), so a right PIN
/// with, say, too little money still ends the run of wrong ones and frees its
/// reservation. Errors inside the `Ok` are answers that commit.
pub(crate) fn with_correct_pin<T>(
    conn: &Conn,
    now: i64,
    attempt: Option<&PinAttempt>,
    action: impl FnOnce(&Conn) -> Result<Outcome<T>, Error>,
) -> Result<Outcome<T>, Error> {
    let Some(attempt) = attempt else {
        return action(conn);
    };
    if let Some(refused) = settle(conn, now, attempt, true)?.error(now) {
        return Ok(Outcome::Refused(refused));
    }
    conn.prepare_cached("SAVEPOINT pin_action")
        .db()?
        .execute([])
        .db()?;
    let result = action(conn);
    let end = match result {
        Ok(_) => "RELEASE pin_action",
        Err(_) => "ROLLBACK TO pin_action",
    };
    conn.prepare_cached(end).db()?.execute([]).db()?;
    if result.is_err() {
        conn.prepare_cached("RELEASE pin_action")
            .db()?
            .execute([])
            .db()?;
    }
    match result {
        // Rows held by another transaction: the whole job runs again (the settlement
        // too), rather than committing a settlement with a 503.
        Err(e) if crate::sql::contention_seen() => Err(e),
        result => Ok(result.unwrap_or_else(Outcome::Refused)),
    }
}

/// Forgets guards untouched for longer than `idle_ms` whose state has run out.
pub(crate) fn forget_idle(
    conn: &Conn,
    now: i64,
    idle_ms: i64,
    limit: usize,
) -> Result<usize, Error> {
    conn.prepare_cached(
        "DELETE FROM pin_guards WHERE subject IN (
             SELECT subject FROM pin_guards
             WHERE updated_at < ?1 AND (locked_until IS NULL OR locked_until <= ?2)
               AND pending_until <= ?2
             ORDER BY updated_at LIMIT ?3)",
    )
    .db()?
    .execute(params![now - idle_ms, now, limit as i64])
    .db()
}

//! Time sources. The store reads the time inside each committing transaction from a
//! [`Clock`]; production uses [`SystemClock`], tests use [`ManualClock`] to make
//! time pass without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Whether this is the machine's wall clock (which a store on PostgreSQL replaces
    /// with the database's, see [`DatabaseClock`]); a test's clock is kept as it is.
    fn is_wall(&self) -> bool {
        false
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }

    fn is_wall(&self) -> bool {
        true
    }
}

/// The database's clock, as seen from this process: every write batch reads the
/// database's time in its first round trip ([`DatabaseClock::observe`]), and the time
/// is the local clock moved by the last offset seen, never going back. So every node
/// of one database decides deadlines, lock periods and day boundaries on one clock,
/// whatever its own says; jobs of a batch get the time read in that transaction.
#[derive(Debug)]
pub struct DatabaseClock {
    local: SystemClock,
    offset_ms: AtomicI64,
    last_ms: AtomicI64,
}

impl DatabaseClock {
    /// Starts from a first reading of the database's time (`db_ms`, taken while the
    /// local clock read `local_ms`).
    pub fn new(db_ms: i64, local_ms: i64) -> DatabaseClock {
        DatabaseClock {
            local: SystemClock,
            offset_ms: AtomicI64::new(db_ms - local_ms),
            last_ms: AtomicI64::new(0),
        }
    }

    /// A new reading: the database said `db_ms` during a round trip that the local
    /// clock saw begin at `sent_ms` and end at `received_ms`.
    pub fn observe(&self, db_ms: i64, sent_ms: i64, received_ms: i64) {
        let local_mid = sent_ms + (received_ms - sent_ms) / 2;
        self.offset_ms.store(db_ms - local_mid, Ordering::Relaxed);
    }

    /// How far the database's clock is ahead of this machine's (negative: behind).
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

impl Clock for DatabaseClock {
    fn now_ms(&self) -> i64 {
        let now = self.local.now_ms() + self.offset_ms.load(Ordering::Relaxed);
        // Never backwards, even when a new reading moves the offset back a little.
        let last = self.last_ms.fetch_max(now, Ordering::Relaxed);
        now.max(last)
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        ManualClock(AtomicI64::new(start_ms))
    }

    pub fn advance_ms(&self, delta_ms: i64) {
        self.0.fetch_add(delta_ms, Ordering::SeqCst);
    }

    pub fn set_ms(&self, at_ms: i64) {
        self.0.store(at_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_clock_follows_the_database_and_never_goes_back() {
        let local = SystemClock.now_ms();
        let clock = DatabaseClock::new(local + 60_000, local);
        let ahead = clock.now_ms() - SystemClock.now_ms();
        assert!((59_000..=61_000).contains(&ahead), "{ahead}");
        let before = clock.now_ms();
        // A reading that puts the database back by ten seconds: time holds still
        // rather than going back.
        let now = SystemClock.now_ms();
        clock.observe(now + 50_000, now, now);
        assert_eq!(clock.offset_ms(), 50_000);
        assert!(clock.now_ms() >= before);
    }
}

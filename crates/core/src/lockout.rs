//! The PIN lockout rule: how many wrong guesses may ever be *verified* before a PIN locks.
//!
//! A guess is verified only after it has **reserved** an attempt, and a reservation is
//! granted only while `failures + pending < max_failures`. So however many guesses
//! arrive at once, at most `max_failures` of them are ever in flight or counted wrong
//! in a run, and a run of `max_failures` wrong ones locks the guard for `lock_ms`.
//! Every reservation is **settled** once: wrong (counted), correct (accepted only if
//! the guard is not locked at that moment: the lock is checked where the success
//! commits; it ends the run once no other guess is in flight) or abandoned (not
//! verified after all: released uncounted).
//!
//! A reservation that is never settled (the process died while verifying) told nobody
//! anything — a guess is answered only after its settlement commits — so once
//! `reservation_ms` has passed it is released uncounted: after a crash a wallet gets
//! its attempts back by itself, and a crash still answers no guess. A run of wrong guesses is forgotten `lock_ms` after its last wrong guess,
//! so a guard returns to its empty state by itself and its row can be deleted.
//!
//! Each guard has one subject. Pocket keeps two per wallet: one for sign-ins (anyone
//! who knows the phone number can guess there, and unknown numbers have guards too,
//! so both answer alike) and one for the signed-in holder (confirms, device keys), so
//! a stranger's sign-in guesses never stop the owner's session from paying.
//!
//! Pure: the time is an argument; the shell stores [`Guard`] and applies the results.

use crate::error::{Error, ErrorKind};

/// The configured limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockRule {
    /// Wrong guesses in a run before the guard locks (the contract's 5).
    pub max_failures: u32,
    /// How long a lock lasts, and how long a run of wrong guesses is remembered.
    pub lock_ms: i64,
    /// After this long an unsettled reservation counts as a wrong guess.
    pub reservation_ms: i64,
}

impl Default for LockRule {
    fn default() -> Self {
        LockRule {
            max_failures: 5,
            lock_ms: 15 * 60 * 1000,
            reservation_ms: 5 * 1000,
        }
    }
}

/// The stored state of one guard. `Guard::default()` is a subject never guessed at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    /// Wrong guesses settled in the current run.
    pub failures: u32,
    /// Reservations granted and not settled yet.
    pub pending: u32,
    /// When the newest reservation goes stale (meaningful while `pending > 0`).
    pub pending_until_ms: i64,
    /// When the last wrong guess was settled (meaningful while `failures > 0`).
    pub last_failure_ms: i64,
    /// Locked until then (exclusive).
    pub locked_until_ms: Option<i64>,
}

/// What a settled guess comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The PIN was right and the guard is not locked: the action may commit.
    Accepted,
    /// Wrong, counted; `tries_left` more wrong guesses before the lock.
    Wrong { tries_left: u32 },
    /// Not checked: every attempt left is in flight (until the newest goes stale).
    Busy { until_ms: i64 },
    /// Locked until then: nothing is accepted before it.
    Locked { until_ms: i64 },
}

impl Guard {
    /// The guard as time has left it: an ended lock or a forgotten run cleared, stale
    /// reservations (their guesses were never answered) released.
    #[must_use]
    pub fn at(self, rule: &LockRule, now_ms: i64) -> Guard {
        let mut g = self;
        if g.pending > 0 && now_ms >= g.pending_until_ms {
            g.pending = 0;
        }
        if let Some(until) = g.locked_until_ms
            && now_ms >= until
        {
            g.locked_until_ms = None;
            g.failures = 0;
        }
        if g.locked_until_ms.is_none()
            && g.failures > 0
            && now_ms >= g.last_failure_ms.saturating_add(rule.lock_ms)
        {
            g.failures = 0;
        }
        g
    }

    /// Whether nothing is left to remember (the shell may delete the guard).
    pub fn is_empty(&self) -> bool {
        self.failures == 0 && self.pending == 0 && self.locked_until_ms.is_none()
    }

    /// The lock in force at `now_ms`, if any.
    pub fn locked_until(&self, rule: &LockRule, now_ms: i64) -> Option<i64> {
        self.at(rule, now_ms).locked_until_ms
    }

    /// Reserves one attempt, or refuses: locked, or every attempt left is in flight
    /// (busy: the guesses in flight decide what happens next; ask again shortly).
    pub fn reserve(self, rule: &LockRule, now_ms: i64) -> Result<Guard, Verdict> {
        let mut g = self.at(rule, now_ms);
        if let Some(until_ms) = g.locked_until_ms {
            return Err(Verdict::Locked { until_ms });
        }
        if g.failures.saturating_add(g.pending) >= rule.max_failures {
            return Err(Verdict::Busy {
                until_ms: g.pending_until_ms,
            });
        }
        g.pending += 1;
        g.pending_until_ms = now_ms.saturating_add(rule.reservation_ms);
        Ok(g)
    }

    /// Settles one reservation with the verification's result.
    pub fn settle(self, rule: &LockRule, now_ms: i64, correct: bool) -> (Guard, Verdict) {
        let mut g = self.at(rule, now_ms);
        // A reservation already counted as stale is not released twice.
        g.pending = g.pending.saturating_sub(1);
        if let Some(until_ms) = g.locked_until_ms {
            return (g, Verdict::Locked { until_ms });
        }
        g.judged(rule, now_ms, correct)
    }

    /// Judges a guess verified inside the same transaction that answers it: nothing
    /// is in flight, so no reservation is taken and none is needed — a guess a crashed
    /// process left in flight never makes it wait. (A replay of a stored request is
    /// such a guess: its PIN is compared with the first request's by their
    /// fingerprints.) Locked: refused. Wrong: counted at once, whatever else is in
    /// flight, so the wrong guesses answered in a lock period stay within the limit.
    pub fn judge_at_once(self, rule: &LockRule, now_ms: i64, correct: bool) -> (Guard, Verdict) {
        let g = self.at(rule, now_ms);
        if let Some(until_ms) = g.locked_until_ms {
            return (g, Verdict::Locked { until_ms });
        }
        g.judged(rule, now_ms, correct)
    }

    /// A verified guess on an unlocked guard: accepted, or counted as wrong.
    fn judged(self, rule: &LockRule, now_ms: i64, correct: bool) -> (Guard, Verdict) {
        let mut g = self;
        if correct {
            // A right PIN ends the run of wrong ones, but not while other guesses are
            // in flight with it: those are counted against the same run, so a burst
            // that holds the right PIN still gets no more than the limit verified.
            if g.pending == 0 {
                g.failures = 0;
            }
            return (g, Verdict::Accepted);
        }
        g.failures = g.failures.saturating_add(1);
        g.last_failure_ms = now_ms;
        if g.failures >= rule.max_failures {
            let until_ms = now_ms.saturating_add(rule.lock_ms);
            g.locked_until_ms = Some(until_ms);
            return (g, Verdict::Locked { until_ms });
        }
        let tries_left = rule
            .max_failures
            .saturating_sub(g.failures)
            .saturating_sub(g.pending);
        (g, Verdict::Wrong { tries_left })
    }

    /// Releases a reservation whose guess was never verified (uncounted).
    #[must_use]
    pub fn abandon(self, rule: &LockRule, now_ms: i64) -> Guard {
        let mut g = self.at(rule, now_ms);
        g.pending = g.pending.saturating_sub(1);
        g
    }
}

impl Verdict {
    /// The contract's error for a refused guess (`None` when accepted).
    pub fn error(self, now_ms: i64) -> Option<Error> {
        match self {
            Verdict::Accepted => None,
            Verdict::Wrong { tries_left } => Some(incorrect_pin(tries_left)),
            Verdict::Locked { until_ms } => Some(pin_locked(until_ms, now_ms)),
            Verdict::Busy { .. } => Some(pins_in_flight()),
        }
    }
}

/// `401 incorrect_pin`.
pub fn incorrect_pin(tries_left: u32) -> Error {
    let message = match tries_left {
        0 => "The PIN is not correct.".to_string(),
        1 => "The PIN is not correct; 1 more wrong PIN locks it.".to_string(),
        n => format!("The PIN is not correct; {n} more wrong PINs lock it."),
    };
    let mut e = Error::new(ErrorKind::Authentication, "incorrect_pin", message).with_param("pin");
    e.tries_left = Some(tries_left);
    e
}

/// `429 rate_limited`: every attempt left is already being checked (they take well
/// under a second; a crashed process's are released by `reservation_ms`).
pub fn pins_in_flight() -> Error {
    Error::new(
        ErrorKind::RateLimited,
        "rate_limited",
        "Other PIN checks for this wallet are under way; retry after the time in Retry-After.",
    )
    .with_retry_after(1)
}

/// `423 pin_locked`.
pub fn pin_locked(until_ms: i64, now_ms: i64) -> Error {
    let seconds = ((until_ms - now_ms) / 1000).max(1);
    let wait = if seconds >= 120 {
        format!("about {} more minutes", seconds / 60)
    } else {
        format!("{seconds} more second(s)")
    };
    Error::new(
        ErrorKind::Locked,
        "pin_locked",
        format!("Too many wrong PINs; the PIN is locked for {wait}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RULE: LockRule = LockRule {
        max_failures: 5,
        lock_ms: 900_000,
        reservation_ms: 60_000,
    };

    fn wrong(g: Guard, now: i64) -> (Guard, Verdict) {
        g.reserve(&RULE, now).unwrap().settle(&RULE, now, false)
    }

    #[test]
    fn five_wrong_in_a_row_lock_for_the_lock_period() {
        let mut g = Guard::default();
        for left in (1..5).rev() {
            let (next, v) = wrong(g, 0);
            assert_eq!(v, Verdict::Wrong { tries_left: left });
            g = next;
        }
        let (g, v) = wrong(g, 0);
        assert_eq!(v, Verdict::Locked { until_ms: 900_000 });
        assert_eq!(
            g.reserve(&RULE, 899_999),
            Err(Verdict::Locked { until_ms: 900_000 })
        );
        let g = g.reserve(&RULE, 900_000).expect("the lock ended");
        assert_eq!(g.failures, 0);
        assert!(g.at(&RULE, 900_000).locked_until_ms.is_none());
    }

    #[test]
    fn a_right_pin_ends_a_run_but_not_a_lock() {
        let (g, _) = wrong(Guard::default(), 0);
        let (g, v) = g.reserve(&RULE, 1).unwrap().settle(&RULE, 1, true);
        assert_eq!(v, Verdict::Accepted);
        assert!(g.is_empty());
        let mut g = Guard::default();
        let reserved = g.reserve(&RULE, 0).unwrap();
        g = reserved;
        // Four wrong guesses in flight with the right one: they settle first.
        for _ in 0..4 {
            g = g.reserve(&RULE, 0).unwrap();
        }
        for _ in 0..4 {
            g = g.settle(&RULE, 0, false).0;
        }
        assert_eq!(g.pending, 1);
        assert_eq!(
            g.reserve(&RULE, 0).map(|_| ()),
            Err(Verdict::Busy { until_ms: 60_000 })
        );
        assert_eq!(g.settle(&RULE, 0, true).1, Verdict::Accepted);
        // The right PIN settling first, with wrong ones still in flight, does not
        // reopen the run for more guesses.
        let mut g = Guard::default().reserve(&RULE, 0).unwrap();
        for _ in 0..4 {
            g = g.reserve(&RULE, 0).unwrap();
        }
        let (g, v) = g.settle(&RULE, 0, true);
        assert_eq!((v, g.failures, g.pending), (Verdict::Accepted, 0, 4));
        // The four settle wrong: they and one more make the run's five.
        let mut g = g.settle(&RULE, 0, false).0;
        g = g
            .reserve(&RULE, 0)
            .expect("one more: 1 wrong + 4 in flight");
        assert!(g.reserve(&RULE, 0).is_err(), "the run is full");
        for _ in 0..3 {
            g = g.settle(&RULE, 0, false).0;
        }
        let (_, v) = g.settle(&RULE, 0, false);
        assert_eq!(v, Verdict::Locked { until_ms: 900_000 });
    }

    #[test]
    fn a_guess_judged_at_once_needs_no_free_reservation() {
        let mut g = Guard::default();
        for _ in 0..5 {
            g = g.reserve(&RULE, 0).unwrap();
        }
        // Every attempt is in flight (a crashed process's, say): a new guess that
        // needs a reservation waits, one judged at once does not.
        assert!(g.reserve(&RULE, 0).is_err());
        let (g, v) = g.judge_at_once(&RULE, 0, true);
        assert_eq!(v, Verdict::Accepted);
        let (g, v) = g.judge_at_once(&RULE, 0, false);
        assert_eq!(v, Verdict::Wrong { tries_left: 0 });
        assert_eq!(g.failures, 1);
        let mut g = g;
        for _ in 0..3 {
            g = g.judge_at_once(&RULE, 0, false).0;
        }
        let (g, v) = g.judge_at_once(&RULE, 0, false);
        assert_eq!(v, Verdict::Locked { until_ms: 900_000 });
        assert_eq!(
            g.judge_at_once(&RULE, 1, true).1,
            Verdict::Locked { until_ms: 900_000 },
            "a right guess while locked is refused"
        );
    }

    #[test]
    fn unsettled_reservations_are_released_once_stale() {
        let mut g = Guard::default();
        for _ in 0..5 {
            g = g.reserve(&RULE, 0).unwrap();
        }
        assert!(g.reserve(&RULE, 59_999).is_err(), "all in flight");
        // Their process died: nothing was answered, nothing is counted.
        let at = g.at(&RULE, 60_000);
        assert!(at.is_empty(), "{at:?}");
        assert!(g.reserve(&RULE, 60_000).is_ok());
    }

    #[test]
    fn abandoned_reservations_are_not_counted() {
        let g = Guard::default()
            .reserve(&RULE, 0)
            .unwrap()
            .abandon(&RULE, 0);
        assert!(g.is_empty());
    }

    #[test]
    fn a_run_is_forgotten_a_lock_period_after_its_last_wrong_guess() {
        let (g, _) = wrong(Guard::default(), 0);
        let (g, _) = wrong(g, 10);
        assert_eq!(g.at(&RULE, 900_009).failures, 2);
        assert!(g.at(&RULE, 900_010).is_empty());
    }

    /// One step of a concurrent schedule: a new guess reserves, or one in flight settles.
    #[derive(Clone, Debug)]
    enum Step {
        Reserve,
        Settle { correct: bool },
        Abandon,
        Wait { ms: i64 },
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            prop_oneof![
                4 => Just(Step::Reserve),
                4 => prop::bool::weighted(0.1)
                    .prop_map(|correct| Step::Settle { correct }),
                1 => Just(Step::Abandon),
                1 => (0i64..120_000).prop_map(|ms| Step::Wait { ms }),
            ],
            0..200,
        )
    }

    proptest! {
        /// An attacker who never knows the PIN gets at most `max_failures` guesses
        /// answered per lock period, however the guesses interleave and whatever dies
        /// (a reservation never settled answered nothing).
        #[test]
        fn wrong_guesses_verified_are_bounded_per_lock_period(steps in steps()) {
            let mut g = Guard::default();
            let mut now = 0i64;
            let mut in_flight = 0usize;
            let mut answered_at: Vec<i64> = Vec::new();
            for step in steps {
                match step {
                    Step::Reserve => if let Ok(next) = g.reserve(&RULE, now) {
                        g = next;
                        in_flight += 1;
                    },
                    Step::Settle { .. } | Step::Abandon if in_flight > 0 => {
                        // Attacker's guesses are always wrong; abandoning is not allowed
                        // to the attacker (only the server abandons before verifying).
                        g = g.settle(&RULE, now, false).0;
                        in_flight -= 1;
                        answered_at.push(now);
                    }
                    Step::Wait { ms } => {
                        now += ms;
                        // Past their deadline, guesses in flight died with their process.
                        if now >= g.pending_until_ms {
                            in_flight = 0;
                        }
                    }
                    _ => {}
                }
                // Guesses answered within any lock period (window of lock_ms ending now)
                // never exceed the limit.
                let recent = answered_at.iter().filter(|t| **t > now - RULE.lock_ms).count();
                prop_assert!(recent <= RULE.max_failures as usize, "{recent} guesses in one period");
            }
        }

        /// Guesses judged at once (replays compared by fingerprint) interleaved with
        /// reserved ones, whatever is in flight or died in flight: the wrong guesses
        /// whose answer says so (`Wrong`, or the `Locked` their own count set off) stay
        /// within the limit per lock period; a guess judged at once is never `Busy`.
        #[test]
        fn guesses_judged_at_once_keep_the_bound(steps in steps(), at_once in prop::collection::vec(any::<bool>(), 200)) {
            let mut g = Guard::default();
            let mut now = 0i64;
            let mut in_flight = 0usize;
            let mut told_at: Vec<i64> = Vec::new();
            for (step, once) in steps.into_iter().zip(at_once) {
                let before = g.locked_until(&RULE, now).is_some();
                let verdict = match step {
                    Step::Reserve if once => Some(g.judge_at_once(&RULE, now, false)),
                    Step::Reserve => {
                        if let Ok(next) = g.reserve(&RULE, now) {
                            g = next;
                            in_flight += 1;
                        }
                        None
                    }
                    Step::Settle { .. } | Step::Abandon if in_flight > 0 => {
                        in_flight -= 1;
                        Some(g.settle(&RULE, now, false))
                    }
                    Step::Wait { ms } => {
                        now += ms;
                        if now >= g.pending_until_ms {
                            in_flight = 0;
                        }
                        None
                    }
                    _ => None,
                };
                if let Some((next, v)) = verdict {
                    let busy = matches!(v, Verdict::Busy { .. });
                    prop_assert!(!(busy && once), "a guess judged at once was busy");
                    g = next;
                    let told = matches!(v, Verdict::Wrong { .. })
                        || (matches!(v, Verdict::Locked { .. }) && !before);
                    if told {
                        told_at.push(now);
                    }
                }
                let recent = told_at.iter().filter(|t| **t > now - RULE.lock_ms).count();
                prop_assert!(recent <= RULE.max_failures as usize, "{recent} wrong guesses told in one period");
            }
        }

        /// With the clock stopped, a burst that holds right PINs too gets at most the
        /// limit of wrong guesses verified between two moments when nothing was in
        /// flight and a right PIN ended the run.
        #[test]
        fn a_burst_with_the_right_pin_still_verifies_at_most_the_limit(steps in steps()) {
            let mut g = Guard::default();
            let mut in_flight = 0u32;
            let mut wrong_since_reset = 0u32;
            for step in steps {
                match step {
                    Step::Reserve => if let Ok(next) = g.reserve(&RULE, 0) {
                        g = next;
                        in_flight += 1;
                    },
                    Step::Settle { correct } if in_flight > 0 => {
                        let (next, v) = g.settle(&RULE, 0, correct);
                        g = next;
                        in_flight -= 1;
                        if !correct {
                            wrong_since_reset += 1;
                        } else if v == Verdict::Accepted && in_flight == 0 {
                            wrong_since_reset = 0;
                        }
                    }
                    Step::Abandon if in_flight > 0 => {
                        g = g.abandon(&RULE, 0);
                        in_flight -= 1;
                    }
                    _ => {}
                }
                prop_assert!(wrong_since_reset <= RULE.max_failures);
            }
        }

        /// Bookkeeping holds under any interleaving, with right and wrong guesses:
        /// never more in flight than the limit, `pending` counts what is in flight
        /// (until reservations go stale), and an accepted guess never comes while locked.
        #[test]
        fn any_interleaving_keeps_the_books(steps in steps()) {
            let mut g = Guard::default();
            let mut now = 0i64;
            let mut in_flight = 0u32;
            for step in steps {
                match step {
                    Step::Reserve => if let Ok(next) = g.reserve(&RULE, now) {
                        g = next;
                        in_flight += 1;
                    },
                    Step::Settle { correct, .. } if in_flight > 0 => {
                        let locked = g.locked_until(&RULE, now).is_some();
                        let (next, v) = g.settle(&RULE, now, correct);
                        prop_assert!(!(locked && v == Verdict::Accepted));
                        prop_assert_eq!(v == Verdict::Accepted, correct && !locked);
                        g = next;
                        in_flight -= 1;
                    }
                    Step::Abandon if in_flight > 0 => {
                        g = g.abandon(&RULE, now);
                        in_flight -= 1;
                    }
                    Step::Wait { ms } => {
                        now += ms;
                        if now >= g.pending_until_ms { in_flight = 0; g = g.at(&RULE, now); }
                    }
                    _ => {}
                }
                prop_assert!(g.pending <= in_flight);
                prop_assert!(g.failures.saturating_add(g.pending) <= RULE.max_failures);
            }
        }
    }
}

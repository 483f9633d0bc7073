//! Logging a failing condition once per interval, with how often it happened since.
//!
//! A full disk fails every write; a log line per failure would fill what is left of
//! it (62 MB of log in two minutes was measured). Each condition gets one
//! [`Throttle`]: the first occurrence is logged at once, later ones are counted and
//! reported with the next line, at most once per interval.

use std::sync::Mutex;

/// How often a failing condition is logged at most.
pub const LOG_EVERY_MS: i64 = 10_000;

pub struct Throttle {
    /// `(when the last line was logged, occurrences since)`.
    state: Mutex<(Option<i64>, u64)>,
    every_ms: i64,
}

impl Throttle {
    pub const fn new(every_ms: i64) -> Throttle {
        Throttle {
            state: Mutex::new((None, 0)),
            every_ms,
        }
    }

    /// Counts one occurrence at `now_ms`; `Some(n)` when a line should be logged now,
    /// `n` being the occurrences it stands for (this one included).
    pub fn hit(&self, now_ms: i64) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 += 1;
        match s.0 {
            Some(last) if now_ms - last < self.every_ms => None,
            _ => {
                let n = s.1;
                *s = (Some(now_ms), 0);
                Some(n)
            }
        }
    }
}

/// Milliseconds since the Unix epoch by the system clock (for throttles only: they
/// pace log lines, they decide nothing).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_the_first_then_once_per_interval_with_a_count() {
        let t = Throttle::new(1_000);
        assert_eq!(t.hit(0), Some(1));
        assert_eq!(t.hit(10), None);
        assert_eq!(t.hit(999), None);
        assert_eq!(t.hit(1_000), Some(3));
        assert_eq!(t.hit(5_000), Some(1));
    }
}

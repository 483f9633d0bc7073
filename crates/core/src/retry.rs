//! When to try a failed webhook delivery again: exponential backoff with jitter,
//! giving up three days after the event.

use crate::time::MS_PER_SECOND;

/// Delays after the 1st, 2nd, … failed attempt (seconds). They add up to ~2.9 days.
pub const DEFAULT_SCHEDULE_SECONDS: [i64; 9] =
    [15, 60, 300, 1_800, 7_200, 21_600, 43_200, 86_400, 86_400];
/// No attempt is made later than this after the event.
pub const GIVE_UP_AFTER_MS: i64 = 3 * 86_400 * MS_PER_SECOND;
/// Jitter spreads retries by up to ±10 % so failed endpoints are not hit in waves.
pub const MAX_JITTER_PERMILLE: i64 = 100;

/// The time of the next attempt after `failed_attempts` (≥ 1) failures, or `None` to
/// give up. `jitter_permille` in `-100..=100` is chosen by the caller (randomly).
pub fn next_attempt_ms(
    schedule_seconds: &[i64],
    failed_attempts: usize,
    now_ms: i64,
    event_created_ms: i64,
    jitter_permille: i64,
) -> Option<i64> {
    let base_seconds = *schedule_seconds.get(failed_attempts.checked_sub(1)?)?;
    let jitter = jitter_permille.clamp(-MAX_JITTER_PERMILLE, MAX_JITTER_PERMILLE);
    let delay_ms = base_seconds * MS_PER_SECOND * (1000 + jitter) / 1000;
    let at = now_ms.checked_add(delay_ms.max(0))?;
    (at <= event_created_ms + GIVE_UP_AFTER_MS).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let s = &DEFAULT_SCHEDULE_SECONDS;
        assert_eq!(next_attempt_ms(s, 1, 0, 0, 0), Some(15_000));
        assert_eq!(next_attempt_ms(s, 2, 15_000, 0, 0), Some(75_000));
        assert_eq!(next_attempt_ms(s, 1, 0, 0, 100), Some(16_500));
        assert_eq!(next_attempt_ms(s, 1, 0, 0, -100), Some(13_500));
        assert_eq!(next_attempt_ms(s, 10, 0, 0, 0), None, "schedule exhausted");
        assert_eq!(next_attempt_ms(s, 0, 0, 0, 0), None);
        assert_eq!(
            next_attempt_ms(s, 9, GIVE_UP_AFTER_MS, 0, 0),
            None,
            "past three days"
        );
        assert!(s.iter().sum::<i64>() * 1000 < GIVE_UP_AFTER_MS);
    }

    proptest! {
        #[test]
        fn never_sooner_than_ninety_percent_nor_past_three_days(n in 1usize..=9, jitter in -1000i64..=1000, now in 0i64..GIVE_UP_AFTER_MS) {
            if let Some(at) = next_attempt_ms(&DEFAULT_SCHEDULE_SECONDS, n, now, 0, jitter) {
                prop_assert!(at - now >= DEFAULT_SCHEDULE_SECONDS[n - 1] * 900);
                prop_assert!(at - now <= DEFAULT_SCHEDULE_SECONDS[n - 1] * 1100);
                prop_assert!(at <= GIVE_UP_AFTER_MS);
            }
        }
    }
}

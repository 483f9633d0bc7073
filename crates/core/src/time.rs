//! Timestamps: Pocket keeps instants as milliseconds since the Unix epoch (`i64`,
//! named `*_ms` or `*_at`) and writes them on the wire as RFC 3339 UTC with
//! milliseconds (`2026-11-25T10:00:00.123Z`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// Milliseconds in a second, for unit-honest arithmetic.
pub const MS_PER_SECOND: i64 = 1_000;

/// Formats epoch milliseconds as the contract's timestamp.
pub fn rfc3339_ms(at_ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(at_ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        // Out of chrono's range: cannot come from Pocket's own clock.
        None => String::from("invalid-timestamp"),
    }
}

/// Reads an RFC 3339 timestamp (any offset) as epoch milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// serde helper: `#[serde(serialize_with = "time::ser")]` on an `i64` millisecond field.
/// The UTC `(year, month)` of an instant: what a card's expiry is compared with.
pub fn utc_year_month(at_ms: i64) -> (u32, u32) {
    use chrono::Datelike;
    DateTime::<Utc>::from_timestamp_millis(at_ms)
        .map(|t| (t.year().max(0) as u32, t.month()))
        .unwrap_or((1970, 1))
}

/// The instants `[start, end)` of a UTC calendar day given as `YYYY-MM-DD`.
pub fn utc_day_range(date: &str) -> Option<(i64, i64)> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    if date.len() != 10 {
        return None;
    }
    let start = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    Some((start, start + 86_400_000))
}

/// The calendar month an instant falls in where the clock is `utc_offset_minutes` east
/// of UTC: its name (`YYYY-MM`) and its instants `[start, end)`.
pub fn month_of(at_ms: i64, utc_offset_minutes: i32) -> (String, i64, i64) {
    use chrono::{Datelike, NaiveDate};
    let shift_ms = i64::from(utc_offset_minutes) * 60_000;
    let local = DateTime::<Utc>::from_timestamp_millis(at_ms.saturating_add(shift_ms))
        .unwrap_or_default()
        .date_naive();
    let first = NaiveDate::from_ymd_opt(local.year(), local.month(), 1).unwrap_or(local);
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let at = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis() - shift_ms)
            .unwrap_or(at_ms)
    };
    (first.format("%Y-%m").to_string(), at(first), at(next))
}

/// The UTC calendar date (`YYYY-MM-DD`) of an instant: the day of a statement.
pub fn utc_date(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default()
}

pub fn ser<S: Serializer>(at_ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_ms(*at_ms))
}

/// serde helper for optional timestamps (`null` when absent).
pub fn ser_opt<S: Serializer>(at_ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match at_ms {
        Some(ms) => s.serialize_str(&rfc3339_ms(*ms)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_764_000_000_000), "2025-11-24");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(86_399_999), "1970-01-01");
        assert_eq!(utc_year_month(1_764_000_000_000), (2025, 11));
        assert_eq!(utc_day_range("1970-01-02"), Some((86_400_000, 172_800_000)));
        assert_eq!(utc_day_range("2026-13-01"), None);
        assert_eq!(utc_day_range("2026-1-01"), None);
    }

    #[test]
    fn formats_with_millis_and_z() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_600_800_123), "2026-11-25T10:00:00.123Z");
    }

    #[test]
    fn timestamps_read_back_as_written_whatever_their_offset() {
        let at = 1_764_720_000_123;
        assert_eq!(parse_rfc3339_ms(&rfc3339_ms(at)), Some(at));
        assert_eq!(
            parse_rfc3339_ms("2026-12-03T08:00:00+08:00"),
            parse_rfc3339_ms("2026-12-03T00:00:00Z")
        );
        assert_eq!(parse_rfc3339_ms("2026-12-03"), None);
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn months_begin_where_the_clock_says() {
        let at = parse_rfc3339_ms("2026-11-30T18:00:00Z").unwrap();
        let (name, start, end) = month_of(at, 0);
        assert_eq!(name, "2026-11");
        assert_eq!(rfc3339_ms(start), "2026-11-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(end), "2026-12-01T00:00:00.000Z");
        // 18:00 UTC is 02:00 on December 1st in Beijing (UTC+8).
        let (name, start, end) = month_of(at, 480);
        assert_eq!(name, "2026-12");
        assert_eq!(rfc3339_ms(start), "2026-11-30T16:00:00.000Z");
        assert_eq!(rfc3339_ms(end), "2026-12-31T16:00:00.000Z");
        assert!(start <= at && at < end);
    }
}

//! FHIR date and dateTime values as the range of UTC milliseconds they cover, for consent periods.
//!
//! Owns only that; concord-fhir has the full primitive rules, but this crate depends on no other
//! and needs just the range. A value without a time of day covers its whole year, month or day in
//! UTC, because a consent period written as dates means whole days and the few hours a time zone
//! moves the boundary cannot be known.

/// The first and last millisecond a FHIR date or dateTime covers, or `None` when it is not one.
pub(crate) fn range_ms(text: &str) -> Option<(i64, i64)> {
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = bytes.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let year = digits(0, 4)?;
    if bytes.len() == 4 {
        let start = day_ms(year, 1, 1)?;
        return Some((start, day_ms(year + 1, 1, 1)? - 1));
    }
    if bytes.get(4) != Some(&b'-') {
        return None;
    }
    let month = digits(5, 2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if bytes.len() == 7 {
        let start = day_ms(year, month, 1)?;
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        return Some((start, day_ms(next_year, next_month, 1)? - 1));
    }
    if bytes.get(7) != Some(&b'-') {
        return None;
    }
    let day = digits(8, 2)?;
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let start = day_ms(year, month, day)?;
    if bytes.len() == 10 {
        return Some((start, start + 86_400_000 - 1));
    }
    if bytes.get(10) != Some(&b'T') || bytes.get(13) != Some(&b':') || bytes.get(16) != Some(&b':')
    {
        return None;
    }
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    let mut fraction_digits = 0;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        while let Some(d) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            if fraction_digits < 3 {
                millis = millis * 10 + i64::from(d - b'0');
            }
            fraction_digits += 1;
            at += 1;
        }
        if fraction_digits == 0 {
            return None;
        }
        for _ in fraction_digits..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match bytes.get(at) {
        Some(b'Z') if bytes.len() == at + 1 => 0,
        Some(sign @ (b'+' | b'-')) if bytes.len() == at + 6 && bytes.get(at + 3) == Some(&b':') => {
            let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if h > 14 || m > 59 {
                return None;
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        _ => return None,
    };
    let instant = start + ((hour * 60 + minute - offset_minutes) * 60 + second) * 1000 + millis;
    Some((instant, instant))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Milliseconds since the epoch at the start of a UTC day (Howard Hinnant's days-from-civil).
fn day_ms(year: i64, month: i64, day: i64) -> Option<i64> {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days.checked_mul(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_cover_their_whole_span() {
        assert_eq!(range_ms("1970"), Some((0, 365 * 86_400_000 - 1)));
        assert_eq!(range_ms("1970-01-01"), Some((0, 86_400_000 - 1)));
        assert_eq!(
            range_ms("1970-02"),
            Some((31 * 86_400_000, 59 * 86_400_000 - 1))
        );
        assert_eq!(
            range_ms("2024-02-29").map(|r| r.1 - r.0 + 1),
            Some(86_400_000)
        );
        assert_eq!(range_ms("2000-03-01").map(|r| r.0), Some(951_868_800_000));
    }

    #[test]
    fn date_times_are_instants_in_utc() {
        assert_eq!(range_ms("1970-01-01T00:00:01Z"), Some((1000, 1000)));
        assert_eq!(range_ms("1970-01-01T01:00:00+01:00"), Some((0, 0)));
        assert_eq!(
            range_ms("1970-01-01T00:00:00.5-00:30"),
            Some((1_800_500, 1_800_500))
        );
        assert_eq!(
            range_ms("2026-12-03T15:10:39.123456Z").map(|r| r.0),
            Some(1_796_310_639_123)
        );
    }

    #[test]
    fn junk_is_none() {
        for bad in [
            "",
            "197",
            "1970-1",
            "1970-13",
            "1970-02-30",
            "2023-02-29",
            "1970-01-01T",
            "1970-01-01T00:00Z",
            "1970-01-01T00:00:00",
            "1970-01-01T24:00:00Z",
            "1970-01-01T00:00:00.Z",
            "1970-01-01T00:00:00+1:00",
            "1970-01-01x",
            "abcd",
            "１９７０",
        ] {
            assert_eq!(range_ms(bad), None, "{bad}");
        }
    }
}

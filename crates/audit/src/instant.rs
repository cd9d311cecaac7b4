//! FHIR `instant`s in UTC with millisecond precision, to and from milliseconds since the epoch.
//!
//! Owns the one date arithmetic this crate needs (`AuditEvent.recorded`). It is written here because
//! the audit core depends on no other Concord crate and takes no date crate for two functions.

const DAY_MS: i64 = 86_400_000;

/// Formats milliseconds since the epoch as `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn format_instant(epoch_ms: i64) -> String {
    let days = epoch_ms.div_euclid(DAY_MS);
    let ms_of_day = epoch_ms.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let h = ms_of_day / 3_600_000;
    let mi = ms_of_day / 60_000 % 60;
    let s = ms_of_day / 1000 % 60;
    let ms = ms_of_day % 1000;
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// Reads what [`format_instant`] writes (exactly that shape; other instants give `None`).
pub fn parse_instant(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, s, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    let month = u32::try_from(mo).ok().filter(|m| (1..=12).contains(m))?;
    let day = u32::try_from(d).ok().filter(|d| (1..=31).contains(d))?;
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(y, month, day);
    if civil_from_days(days) != (y, month, day) {
        return None;
    }
    Some(days * DAY_MS + h * 3_600_000 + mi * 60_000 + s * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_instant(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            parse_instant("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_instant("2023-02-29T00:00:00.000Z"), None);
        assert_eq!(parse_instant("2023-11-14T22:13:20Z"), None);
        assert_eq!(parse_instant("2023-11-14T24:00:00.000Z"), None);
    }

    proptest::proptest! {
        #[test]
        fn round_trip(ms in 0i64..253_402_300_799_999) {
            proptest::prop_assert_eq!(parse_instant(&format_instant(ms)), Some(ms));
        }
    }
}

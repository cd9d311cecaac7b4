//! HL7 v2 date/time values (DT, DTM, TS) turned into FHIR `date`, `dateTime` and `instant`.
//!
//! Owns: parsing `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`, the precision rules of the FHIR
//! primitives (a time needs seconds and a UTC offset; a date does not), and the offset to assume
//! when a value has none ([`crate::LocalTime`], including the UK's GMT/BST rule).
//!
//! Does not: read a clock or a time zone database, or decide what to do with a value that cannot
//! be converted (the caller warns and keeps the date, or leaves the element out).

use crate::LocalTime;

/// A parsed v2 date/time; components after the first absent one are absent too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dtm {
    year: u16,
    month: Option<u8>,
    day: Option<u8>,
    hour: Option<u8>,
    minute: Option<u8>,
    second: Option<u8>,
    /// Fractional seconds, the digits after the point.
    fraction: Option<String>,
    /// Minutes east of UTC, when the value carries an offset.
    offset: Option<i32>,
}

/// Why a value with a time could not become a FHIR `dateTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoTime {
    /// The value has a time but no offset, and none could be assumed.
    NoOffset,
}

impl Dtm {
    /// Parses a v2 DT/DTM/TS value; `None` when it is not one (bad digits, month 13, ...).
    /// A TS's degree-of-precision component is the caller's to strip (it is a separate component).
    pub(crate) fn parse(text: &str) -> Option<Dtm> {
        let text = text.trim();
        let (body, offset) = match text.find(['+', '-']) {
            Some(at) => {
                let (body, zone) = text.split_at(at);
                (body, Some(parse_offset(zone)?))
            }
            None => (text, None),
        };
        let (digits, fraction) = match body.split_once('.') {
            Some((d, f)) => {
                if f.is_empty() || f.len() > 4 || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (d, Some(f.to_string()))
            }
            None => (body, None),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit())
            || !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14)
        {
            return None;
        }
        if fraction.is_some() && digits.len() != 14 {
            return None;
        }
        let num = |from: usize, len: usize| -> Option<u32> {
            digits.get(from..from + len).and_then(|s| s.parse().ok())
        };
        let two = |from: usize| num(from, 2).and_then(|n| u8::try_from(n).ok());
        let year = u16::try_from(num(0, 4)?).ok()?;
        let month = two(4);
        let day = two(6);
        let hour = two(8);
        let minute = two(10);
        let second = two(12);
        if month.is_some_and(|m| !(1..=12).contains(&m))
            || day.is_some_and(|d| d == 0 || d > days_in_month(year, month.unwrap_or(1)))
            || hour.is_some_and(|h| h > 23)
            || minute.is_some_and(|m| m > 59)
            || second.is_some_and(|s| s > 59)
            || year == 0
        {
            return None;
        }
        Some(Dtm {
            year,
            month,
            day,
            hour,
            minute,
            second,
            fraction,
            offset,
        })
    }

    /// True when the value has a time of day.
    pub(crate) fn has_time(&self) -> bool {
        self.hour.is_some()
    }

    /// The FHIR `date`: as precise as the value, at most a day.
    pub(crate) fn date(&self) -> String {
        match (self.month, self.day) {
            (Some(m), Some(d)) => format!("{:04}-{m:02}-{d:02}", self.year),
            (Some(m), None) => format!("{:04}-{m:02}", self.year),
            _ => format!("{:04}", self.year),
        }
    }

    /// The FHIR `dateTime`. A value with a time needs an offset: its own, else the one `local`
    /// gives for that local time, else `fallback` (the offset of MSH-7).
    pub(crate) fn date_time(
        &self,
        local: LocalTime,
        fallback: Option<i32>,
    ) -> Result<String, NoTime> {
        let Some(hour) = self.hour else {
            return Ok(self.date());
        };
        let offset = self
            .offset
            .or_else(|| self.local_offset(local))
            .or(fallback)
            .ok_or(NoTime::NoOffset)?;
        let mut out = format!(
            "{}T{hour:02}:{:02}:{:02}",
            self.date(),
            self.minute.unwrap_or(0),
            self.second.unwrap_or(0)
        );
        if let Some(f) = &self.fraction {
            out.push('.');
            out.push_str(f);
        }
        out.push_str(&format_offset(offset));
        Ok(out)
    }

    /// The FHIR `instant` (a full date and time with an offset), when the value is precise enough.
    pub(crate) fn instant(&self, local: LocalTime, fallback: Option<i32>) -> Option<String> {
        if self.day.is_none() || self.hour.is_none() {
            return None;
        }
        self.date_time(local, fallback).ok()
    }

    /// The same local time `minutes` later (for an end computed from a start and a duration);
    /// `None` without a day and an hour.
    pub(crate) fn plus_minutes(&self, minutes: u32) -> Option<Dtm> {
        let (month, day, hour) = (self.month?, self.day?, self.hour?);
        let days = days_from_civil(i64::from(self.year), i64::from(month), i64::from(day));
        let total = (days * 24 + i64::from(hour)) * 60
            + i64::from(self.minute.unwrap_or(0))
            + i64::from(minutes);
        let (d, rest) = (total.div_euclid(1440), total.rem_euclid(1440));
        let (y, m, dd) = civil_from_days(d);
        Some(Dtm {
            year: u16::try_from(y).ok()?,
            month: Some(u8::try_from(m).ok()?),
            day: Some(u8::try_from(dd).ok()?),
            hour: Some(u8::try_from(rest / 60).ok()?),
            minute: Some(u8::try_from(rest % 60).ok()?),
            second: self.second,
            fraction: self.fraction.clone(),
            offset: self.offset,
        })
    }

    /// The offset `local` gives for this value's own (local) date and time.
    fn local_offset(&self, local: LocalTime) -> Option<i32> {
        match local {
            LocalTime::Unknown => None,
            LocalTime::FixedOffset(minutes) => Some(minutes),
            LocalTime::EuropeLondon => {
                let (month, day) = (self.month?, self.day?);
                Some(london_offset(
                    self.year,
                    month,
                    day,
                    self.hour.unwrap_or(0),
                    self.minute.unwrap_or(0),
                ))
            }
        }
    }
}

/// Parses `+HHMM` / `-HHMM` (also `+HH`) into minutes east of UTC.
fn parse_offset(zone: &str) -> Option<i32> {
    let (sign, digits) = zone.split_at(1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        2 => (digits.parse::<i32>().ok()?, 0),
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    let minutes = h * 60 + m;
    Some(if sign == "-" { -minutes } else { minutes })
}

/// The offset of MSH-7, used when a value in the message carries none and no local rule is set.
pub(crate) fn offset_of(text: &str) -> Option<i32> {
    Dtm::parse(text.split('^').next().unwrap_or_default())?.offset
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn format_offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week, 0 = Sunday (Sakamoto's method).
fn weekday(year: u16, month: u8, day: u8) -> u8 {
    const T: [u32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = u32::from(year) - u32::from(month < 3);
    let idx = usize::from(month.saturating_sub(1)).min(11);
    let dow = (y + y / 4 - y / 100 + y / 400 + T[idx] + u32::from(day)) % 7;
    u8::try_from(dow).unwrap_or(0)
}

/// The last Sunday of a 31-day month.
fn last_sunday(year: u16, month: u8) -> u8 {
    31 - weekday(year, month, 31)
}

/// UK civil time: BST (+01:00) from 01:00 local on the last Sunday of March until 02:00 local on
/// the last Sunday of October, GMT otherwise. The hour that October repeats is read as BST; the
/// hour that March skips as BST too.
fn london_offset(year: u16, month: u8, day: u8, hour: u8, minute: u8) -> i32 {
    let key = |m: u8, d: u8, h: u8, min: u8| {
        (u32::from(m) << 24) | (u32::from(d) << 16) | (u32::from(h) << 8) | u32::from(min)
    };
    let now = key(month, day, hour, minute);
    let start = key(3, last_sunday(year, 3), 1, 0);
    let end = key(10, last_sunday(year, 10), 2, 0);
    if now >= start && now < end { 60 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(text: &str, local: LocalTime) -> Result<String, NoTime> {
        Dtm::parse(text).expect("parses").date_time(local, None)
    }

    #[test]
    fn precisions_become_fhir_primitives() {
        assert_eq!(dt("2024", LocalTime::Unknown).unwrap(), "2024");
        assert_eq!(dt("202403", LocalTime::Unknown).unwrap(), "2024-03");
        assert_eq!(dt("20240315", LocalTime::Unknown).unwrap(), "2024-03-15");
        assert_eq!(
            dt("202403151230+0100", LocalTime::Unknown).unwrap(),
            "2024-03-15T12:30:00+01:00"
        );
        assert_eq!(
            dt("20240315123059.25-0500", LocalTime::Unknown).unwrap(),
            "2024-03-15T12:30:59.25-05:00"
        );
        assert_eq!(
            dt("2024031512", LocalTime::FixedOffset(0)).unwrap(),
            "2024-03-15T12:00:00+00:00"
        );
        assert_eq!(
            dt("202403151230", LocalTime::Unknown),
            Err(NoTime::NoOffset)
        );
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for bad in [
            "",
            "20241",
            "20241301",
            "20240230",
            "2024021525",
            "abc",
            "20240101+01",
            "20240101.5",
        ] {
            let parsed = Dtm::parse(bad);
            if bad == "20240101+01" {
                // A date with an offset is odd but legal.
                assert!(parsed.is_some());
            } else {
                assert!(parsed.is_none(), "{bad}");
            }
        }
    }

    #[test]
    fn london_time_follows_bst() {
        let at = |s: &str| dt(s, LocalTime::EuropeLondon).unwrap();
        // 2024: BST from 31 March 01:00 GMT to 27 October 02:00 BST.
        assert_eq!(at("202403310059"), "2024-03-31T00:59:00+00:00");
        assert_eq!(at("202403310200"), "2024-03-31T02:00:00+01:00");
        assert_eq!(at("202407011200"), "2024-07-01T12:00:00+01:00");
        assert_eq!(at("202410270130"), "2024-10-27T01:30:00+01:00");
        assert_eq!(at("202410270200"), "2024-10-27T02:00:00+00:00");
        assert_eq!(at("202412251200"), "2024-12-25T12:00:00+00:00");
        // An explicit offset wins over the rule.
        assert_eq!(at("202407011200+0000"), "2024-07-01T12:00:00+00:00");
    }

    #[test]
    fn adds_minutes_across_days() {
        let d = Dtm::parse("202412312330+0000")
            .unwrap()
            .plus_minutes(45)
            .unwrap();
        assert_eq!(
            d.date_time(LocalTime::Unknown, None).unwrap(),
            "2025-01-01T00:15:00+00:00"
        );
        let d = Dtm::parse("202402281200")
            .unwrap()
            .plus_minutes(24 * 60)
            .unwrap();
        assert_eq!(d.date(), "2024-02-29");
    }

    #[test]
    fn weekday_is_right() {
        assert_eq!(weekday(2024, 3, 31), 0);
        assert_eq!(weekday(2025, 10, 26), 0);
        assert_eq!(last_sunday(2025, 3), 30);
    }

    #[test]
    fn instants_need_a_time() {
        let d = Dtm::parse("20240315").unwrap();
        assert_eq!(d.instant(LocalTime::FixedOffset(0), None), None);
        let d = Dtm::parse("202403151230").unwrap();
        assert_eq!(
            d.instant(LocalTime::Unknown, Some(120)).as_deref(),
            Some("2024-03-15T12:30:00+02:00")
        );
        assert_eq!(offset_of("198908181126+0215"), Some(135));
    }
}

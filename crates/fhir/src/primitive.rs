//! FHIR R4 primitive datatypes (<https://hl7.org/fhir/R4/datatypes.html#primitive>).
//!
//! Owns: the lexical checks for every primitive type and the conversion of `date`, `dateTime` and
//! `instant` values into the UTC millisecond range they denote (a partial date such as `2020-03`
//! covers the whole month), which search relies on. Does not: read a clock. Dates without a time
//! zone are taken as UTC, because the spec leaves the zone to the server and Concord's is UTC.
//!
//! The checks are hand-written rather than regex-driven: the patterns are short, they run on every
//! element of every write, and a regex engine would add a dependency to the pure core for no gain.

/// The primitive types of FHIR R4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    Boolean,
    Integer,
    UnsignedInt,
    PositiveInt,
    Decimal,
    String,
    Markdown,
    Code,
    Id,
    Uri,
    Url,
    Canonical,
    Oid,
    Uuid,
    Base64Binary,
    Date,
    DateTime,
    Instant,
    Time,
    /// `xhtml` (Narrative.div): a string here; its content rules are not checked.
    Xhtml,
}

impl Primitive {
    /// Looks up a primitive by its FHIR type name (`dateTime`, `positiveInt`, ...).
    pub fn from_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "boolean" => Primitive::Boolean,
            "integer" => Primitive::Integer,
            "unsignedInt" => Primitive::UnsignedInt,
            "positiveInt" => Primitive::PositiveInt,
            "decimal" => Primitive::Decimal,
            "string" => Primitive::String,
            "markdown" => Primitive::Markdown,
            "code" => Primitive::Code,
            "id" => Primitive::Id,
            "uri" => Primitive::Uri,
            "url" => Primitive::Url,
            "canonical" => Primitive::Canonical,
            "oid" => Primitive::Oid,
            "uuid" => Primitive::Uuid,
            "base64Binary" => Primitive::Base64Binary,
            "date" => Primitive::Date,
            "dateTime" => Primitive::DateTime,
            "instant" => Primitive::Instant,
            "time" => Primitive::Time,
            "xhtml" => Primitive::Xhtml,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            Primitive::Boolean => "boolean",
            Primitive::Integer => "integer",
            Primitive::UnsignedInt => "unsignedInt",
            Primitive::PositiveInt => "positiveInt",
            Primitive::Decimal => "decimal",
            Primitive::String => "string",
            Primitive::Markdown => "markdown",
            Primitive::Code => "code",
            Primitive::Id => "id",
            Primitive::Uri => "uri",
            Primitive::Url => "url",
            Primitive::Canonical => "canonical",
            Primitive::Oid => "oid",
            Primitive::Uuid => "uuid",
            Primitive::Base64Binary => "base64Binary",
            Primitive::Date => "date",
            Primitive::DateTime => "dateTime",
            Primitive::Instant => "instant",
            Primitive::Time => "time",
            Primitive::Xhtml => "xhtml",
        }
    }

    /// Checks a JSON value against this primitive's JSON representation and lexical space.
    /// Returns a sentence describing the problem, or `None` when the value is valid.
    pub fn check(self, value: &serde_json::Value) -> Option<String> {
        use serde_json::Value;
        match self {
            Primitive::Boolean => match value {
                Value::Bool(_) => None,
                other => Some(format!(
                    "expected a boolean (true or false), found {}",
                    json_kind(other)
                )),
            },
            Primitive::Integer | Primitive::UnsignedInt | Primitive::PositiveInt => {
                let Value::Number(n) = value else {
                    return Some(format!("expected an integer, found {}", json_kind(value)));
                };
                let Some(i) = n
                    .as_i64()
                    .filter(|_| !n.to_string().contains(['.', 'e', 'E']))
                else {
                    return Some(format!("expected an integer, found {n}"));
                };
                let (min, max) = match self {
                    Primitive::Integer => (i64::from(i32::MIN), i64::from(i32::MAX)),
                    Primitive::UnsignedInt => (0, i64::from(i32::MAX)),
                    _ => (1, i64::from(i32::MAX)),
                };
                if i < min || i > max {
                    Some(format!(
                        "{i} is outside the range of {} ({min} to {max})",
                        self.name()
                    ))
                } else {
                    None
                }
            }
            Primitive::Decimal => match value {
                Value::Number(n) if is_decimal(&n.to_string()) => None,
                Value::Number(n) => Some(format!("{n} is not a valid decimal")),
                other => Some(format!(
                    "expected a decimal number, found {}",
                    json_kind(other)
                )),
            },
            _ => {
                let Value::String(s) = value else {
                    return Some(format!(
                        "expected a string ({}), found {}",
                        self.name(),
                        json_kind(value)
                    ));
                };
                self.check_str(s)
            }
        }
    }

    /// Checks the lexical form of a string-represented primitive.
    pub fn check_str(self, s: &str) -> Option<String> {
        if s.is_empty() {
            return Some("empty strings are not allowed; leave the element out instead".into());
        }
        let ok = match self {
            Primitive::String | Primitive::Markdown | Primitive::Xhtml => {
                return (s.len() > 1024 * 1024).then(|| "string longer than 1 MiB".to_string());
            }
            Primitive::Code => is_code(s),
            Primitive::Id => is_id(s),
            Primitive::Uri | Primitive::Url | Primitive::Canonical => {
                !s.chars().any(char::is_whitespace)
            }
            Primitive::Oid => is_oid(s),
            Primitive::Uuid => is_uuid_urn(s),
            Primitive::Base64Binary => is_base64(s),
            Primitive::Date => parse_date_like(s, DateKind::Date).is_some(),
            Primitive::DateTime => parse_date_like(s, DateKind::DateTime).is_some(),
            Primitive::Instant => parse_date_like(s, DateKind::Instant).is_some(),
            Primitive::Time => is_time(s),
            Primitive::Boolean
            | Primitive::Integer
            | Primitive::UnsignedInt
            | Primitive::PositiveInt => false,
            Primitive::Decimal => is_decimal(s),
        };
        if ok {
            None
        } else {
            Some(format!(
                "'{}' is not a valid {}",
                truncate(s, 64),
                self.name()
            ))
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

/// Describes a JSON value's kind for error messages.
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `id`: 1 to 64 of `[A-Za-z0-9-.]`.
pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `code`: no leading or trailing whitespace, single spaces only.
fn is_code(s: &str) -> bool {
    !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
        && !s.contains("  ")
        && !s.chars().any(|c| c.is_whitespace() && c != ' ')
}

fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut parts = rest.split('.');
    matches!(parts.next(), Some("0" | "1" | "2"))
        && rest.contains('.')
        && parts.all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0'))
        })
}

fn is_uuid_urn(s: &str) -> bool {
    s.strip_prefix("urn:uuid:").is_some_and(is_uuid)
}

/// A lower- or upper-case hyphenated UUID.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_base64(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let padding = compact.iter().rev().take_while(|b| **b == b'=').count();
    compact.len().is_multiple_of(4)
        && padding <= 2
        && compact[..compact.len() - padding]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// `decimal`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let int_ok = int == "0"
        || (!int.is_empty() && !int.starts_with('0') && int.bytes().all(|b| b.is_ascii_digit()));
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    let exp_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    int_ok && frac_ok && exp_ok
}

/// `time`: `hh:mm:ss(.fraction)?`.
fn is_time(s: &str) -> bool {
    parse_clock(s).is_some()
}

/// Parses `hh:mm:ss(.fff...)` into (hour, minute, second, milliseconds).
fn parse_clock(s: &str) -> Option<(u32, u32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let hour = digits(&s[0..2])?;
    let minute = digits(&s[3..5])?;
    let second = digits(&s[6..8])?;
    let mut millis = 0;
    if b.len() > 8 {
        let frac = s[8..].strip_prefix('.')?;
        if frac.is_empty() || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let padded: String = frac.chars().chain("000".chars()).take(3).collect();
        millis = padded.parse().ok()?;
    }
    // 60 seconds is allowed for leap seconds, as XML Schema does.
    (hour < 24 && minute < 60 && second <= 60).then_some((hour, minute, second, millis))
}

fn digits(s: &str) -> Option<u32> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateKind {
    Date,
    DateTime,
    Instant,
}

/// How precisely a date-like value was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DatePrecision {
    Year,
    Month,
    Day,
    Minute,
    Second,
    Millisecond,
}

/// The UTC interval a date-like value denotes, in milliseconds since 1970-01-01, both ends
/// inclusive: `2020` is [2020-01-01T00:00:00.000, 2020-12-31T23:59:59.999].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub low: i64,
    pub high: i64,
    pub precision: DatePrecision,
}

/// Parses a FHIR `date`, `dateTime` or `instant` (any of them) into its range.
pub fn date_range(s: &str) -> Option<DateRange> {
    parse_date_like(s, DateKind::DateTime)
}

/// Parses a date-like search value, which may also give hours and minutes without seconds
/// (`2020-01-01T10:00Z`), as the search specification allows.
pub fn search_date_range(s: &str) -> Option<DateRange> {
    parse_date_like(s, DateKind::DateTime).or_else(|| {
        // Accept `YYYY-MM-DDThh:mm` with an optional zone by inserting seconds.
        let (date, rest) = s.split_once('T')?;
        if rest.len() >= 5
            && rest.as_bytes().get(2) == Some(&b':')
            && rest.as_bytes().get(5) != Some(&b':')
        {
            let with_seconds = format!("{date}T{}:00{}", &rest[..5], &rest[5..]);
            let mut range = parse_date_like(&with_seconds, DateKind::DateTime)?;
            range.high = range.low + 60_000 - 1;
            range.precision = DatePrecision::Minute;
            Some(range)
        } else {
            None
        }
    })
}

fn parse_date_like(s: &str, kind: DateKind) -> Option<DateRange> {
    let (date_part, time_part) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    if kind == DateKind::Date && time_part.is_some() {
        return None;
    }
    let b = date_part.as_bytes();
    let (year, month, day, precision) = match b.len() {
        4 => (digits(date_part)?, None, None, DatePrecision::Year),
        7 if b[4] == b'-' => (
            digits(&date_part[..4])?,
            Some(digits(&date_part[5..7])?),
            None,
            DatePrecision::Month,
        ),
        10 if b[4] == b'-' && b[7] == b'-' => (
            digits(&date_part[..4])?,
            Some(digits(&date_part[5..7])?),
            Some(digits(&date_part[8..10])?),
            DatePrecision::Day,
        ),
        _ => return None,
    };
    let year = i64::from(year);
    if let Some(m) = month
        && !(1..=12).contains(&m)
    {
        return None;
    }
    if let (Some(m), Some(d)) = (month, day)
        && (d < 1 || d > days_in_month(year, m))
    {
        return None;
    }
    match time_part {
        None => {
            if kind == DateKind::Instant {
                return None;
            }
            let (low, high) = match (month, day) {
                (None, _) => (days_from_civil(year, 1, 1), days_from_civil(year + 1, 1, 1)),
                (Some(m), None) => {
                    let (ny, nm) = if m == 12 {
                        (year + 1, 1)
                    } else {
                        (year, m + 1)
                    };
                    (days_from_civil(year, m, 1), days_from_civil(ny, nm, 1))
                }
                (Some(m), Some(d)) => {
                    let start = days_from_civil(year, m, d);
                    (start, start + 1)
                }
            };
            Some(DateRange {
                low: low * DAY_MS,
                high: high * DAY_MS - 1,
                precision,
            })
        }
        Some(time) => {
            let (month, day) = (month?, day?);
            // The zone is required when a time is given.
            let (clock, offset_minutes) = if let Some(c) = time.strip_suffix('Z') {
                (c, 0i64)
            } else {
                let split = time.rfind(['+', '-'])?;
                let (c, zone) = time.split_at(split);
                let zb = zone.as_bytes();
                if zb.len() != 6 || zb[3] != b':' {
                    return None;
                }
                let hours = i64::from(digits(&zone[1..3])?);
                let minutes = i64::from(digits(&zone[4..6])?);
                if hours > 14 || minutes > 59 {
                    return None;
                }
                let sign = if zb[0] == b'-' { -1 } else { 1 };
                (c, sign * (hours * 60 + minutes))
            };
            let (h, mi, sec, ms) = parse_clock(clock)?;
            let has_fraction = clock.len() > 8;
            let day_ms = days_from_civil(year, month, day) * DAY_MS;
            let local = day_ms
                + i64::from(h) * 3_600_000
                + i64::from(mi) * 60_000
                + i64::from(sec.min(59)) * 1000
                + i64::from(ms);
            let low = local - offset_minutes * 60_000;
            let (high, precision) = if has_fraction {
                (low, DatePrecision::Millisecond)
            } else {
                (low + 999, DatePrecision::Second)
            };
            Some(DateRange {
                low,
                high,
                precision,
            })
        }
    }
}

const DAY_MS: i64 = 86_400_000;

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
/// Written here because the pure core takes no date crate for one arithmetic function.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats milliseconds since the epoch as a FHIR `instant` in UTC with millisecond precision.
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

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn partial_dates_cover_their_whole_period() {
        let year = date_range("2020").unwrap();
        assert_eq!(format_instant(year.low), "2020-01-01T00:00:00.000Z");
        assert_eq!(format_instant(year.high), "2020-12-31T23:59:59.999Z");
        let month = date_range("2020-02").unwrap();
        assert_eq!(format_instant(month.high), "2020-02-29T23:59:59.999Z");
        let day = date_range("1999-12-31").unwrap();
        assert_eq!(format_instant(day.low), "1999-12-31T00:00:00.000Z");
        assert_eq!(day.precision, DatePrecision::Day);
    }

    #[test]
    fn date_times_honour_their_zone() {
        let r = date_range("2015-02-07T13:28:17-05:00").unwrap();
        assert_eq!(format_instant(r.low), "2015-02-07T18:28:17.000Z");
        assert_eq!(r.high - r.low, 999);
        let r = date_range("2015-02-07T13:28:17.239+02:00").unwrap();
        assert_eq!(format_instant(r.low), "2015-02-07T11:28:17.239Z");
        assert_eq!(r.low, r.high);
        let r = search_date_range("2015-02-07T13:28Z").unwrap();
        assert_eq!(r.precision, DatePrecision::Minute);
    }

    #[test]
    fn invalid_dates_are_rejected() {
        for bad in [
            "2020-13",
            "2020-02-30",
            "20201",
            "2020-1-1",
            "2020-01-01T10:00:00",
            "2020-01-01T25:00:00Z",
            "abcd",
            "",
        ] {
            assert!(date_range(bad).is_none(), "{bad}");
        }
        assert!(Primitive::Instant.check_str("2020-01-01").is_some());
        assert!(Primitive::Date.check_str("2020-01-01T00:00:00Z").is_some());
    }

    #[test]
    fn primitives_check_their_json_shape() {
        assert!(Primitive::Boolean.check(&json!("true")).is_some());
        assert!(Primitive::Integer.check(&json!(1.5)).is_some());
        assert!(Primitive::PositiveInt.check(&json!(0)).is_some());
        assert!(Primitive::UnsignedInt.check(&json!(0)).is_none());
        assert!(Primitive::Integer.check(&json!(3_000_000_000i64)).is_some());
        assert!(Primitive::Decimal.check(&json!(1.5)).is_none());
        assert!(Primitive::Id.check(&json!("a_b")).is_some());
        assert!(Primitive::Id.check(&json!("a-b.c")).is_none());
        assert!(Primitive::Code.check(&json!(" x")).is_some());
        assert!(Primitive::Uri.check(&json!("a b")).is_some());
        assert!(Primitive::Oid.check(&json!("urn:oid:1.2.3")).is_none());
        assert!(
            Primitive::Uuid
                .check(&json!("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"))
                .is_none()
        );
        assert!(Primitive::Base64Binary.check(&json!("aGVsbG8=")).is_none());
        assert!(Primitive::Base64Binary.check(&json!("aGVsbG8")).is_some());
        assert!(Primitive::String.check(&json!("")).is_some());
        assert!(Primitive::Time.check(&json!("10:30:00")).is_none());
        assert!(Primitive::Time.check(&json!("10:30")).is_some());
    }

    #[test]
    fn decimal_lexical_form() {
        for ok in ["0", "-1", "1.50", "1e3", "1.2E-7"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["01", "1.", ".5", "1e", "+1", "NaN"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }
}

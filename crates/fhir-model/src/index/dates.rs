//! FHIR date/dateTime/instant text to the half-open instant range its precision implies.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// A half-open range `[start, end)` of instants.
pub(crate) type Range = (DateTime<Utc>, DateTime<Utc>);

fn digits(s: &str, n: usize) -> Option<u32> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn utc_midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))
}

fn first_of_next_month(y: i32, m: u32) -> Option<NaiveDate> {
    if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
}

/// Parse `Z`, `+hh:mm` or `-hh:mm`; an empty zone is taken as UTC because the server has no
/// better local time zone to assume.
fn parse_zone(z: &str) -> Option<FixedOffset> {
    if z.is_empty() || z == "Z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let secs = (digits(h, 2)? * 3600 + digits(m, 2)? * 60) as i32;
    if secs > 14 * 3600 {
        return None;
    }
    FixedOffset::east_opt(sign * secs)
}

/// The range covered by a FHIR date, dateTime or instant at its stated precision.
///
/// `2024` is the whole year, `2024-03` the month, `2024-03-05` the day (all in UTC);
/// times are exact to the minute, second or fraction given.
pub(crate) fn date_range(text: &str) -> Option<Range> {
    let text = text.trim();
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let year = digits(parts.first()?, 4)? as i32;
    let month = match parts.get(1) {
        Some(m) => Some(digits(m, 2)?),
        None => None,
    };
    let day = match parts.get(2) {
        Some(d) => Some(digits(d, 2)?),
        None => None,
    };
    if parts.len() > 3 {
        return None;
    }
    let Some(time) = time else {
        return match (month, day) {
            (None, _) => {
                let s = NaiveDate::from_ymd_opt(year, 1, 1)?;
                let e = NaiveDate::from_ymd_opt(year + 1, 1, 1)?;
                Some((utc_midnight(s), utc_midnight(e)))
            }
            (Some(m), None) => {
                let s = NaiveDate::from_ymd_opt(year, m, 1)?;
                let e = first_of_next_month(year, m)?;
                Some((utc_midnight(s), utc_midnight(e)))
            }
            (Some(m), Some(d)) => {
                let s = NaiveDate::from_ymd_opt(year, m, d)?;
                Some((utc_midnight(s), utc_midnight(s.succ_opt()?)))
            }
        };
    };
    let d = NaiveDate::from_ymd_opt(year, month?, day?)?;
    let zone_at = time.find(['Z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    // Search values come from clients: anything but ASCII here is malformed, and checking it
    // first keeps the byte-offset slicing below on character boundaries.
    if !clock.is_ascii() {
        return None;
    }
    let offset = parse_zone(zone)?;
    let (hm, seconds) = match clock.len() {
        5 => (clock, None),
        n if n >= 8 => (&clock[..5], Some(&clock[6..])),
        _ => return None,
    };
    let (h, mi) = hm.split_once(':')?;
    let (h, mi) = (digits(h, 2)?, digits(mi, 2)?);
    let (sec, nanos, step) = match seconds {
        None => (0, 0, Duration::minutes(1)),
        Some(s) => {
            if clock.as_bytes()[5] != b':' {
                return None;
            }
            let (whole, frac) = match s.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (s, None),
            };
            let sec = digits(whole, 2)?;
            match frac {
                None => (sec, 0, Duration::seconds(1)),
                Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
                    // Precision beyond nanoseconds cannot be represented; clamp it.
                    let f = &f[..f.len().min(9)];
                    let scale = 10u32.pow(9 - f.len() as u32);
                    let nanos: u32 = f.parse::<u32>().ok()? * scale;
                    (sec, nanos, Duration::nanoseconds(i64::from(scale)))
                }
                Some(_) => return None,
            }
        }
    };
    let t = NaiveTime::from_hms_nano_opt(h, mi, sec, nanos)?;
    let local = NaiveDateTime::new(d, t);
    let start = offset
        .from_local_datetime(&local)
        .single()?
        .with_timezone(&Utc);
    Some((start, start + step))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn partial_precision_ranges() {
        let cases: &[(&str, &str, &str)] = &[
            ("2024", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
            ("2024-02", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"),
            ("2023-12", "2023-12-01T00:00:00Z", "2024-01-01T00:00:00Z"),
            ("2024-03-05", "2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z"),
            (
                "2024-03-05T10:20",
                "2024-03-05T10:20:00Z",
                "2024-03-05T10:21:00Z",
            ),
            (
                "2024-03-05T10:20:30",
                "2024-03-05T10:20:30Z",
                "2024-03-05T10:20:31Z",
            ),
            (
                "2024-03-05T10:20:30+02:00",
                "2024-03-05T08:20:30Z",
                "2024-03-05T08:20:31Z",
            ),
            (
                "2024-03-05T10:20:30.25-05:00",
                "2024-03-05T15:20:30.25Z",
                "2024-03-05T15:20:30.26Z",
            ),
            (
                "2024-12-31T23:59:59Z",
                "2024-12-31T23:59:59Z",
                "2025-01-01T00:00:00Z",
            ),
        ];
        for (input, start, end) in cases {
            assert_eq!(date_range(input), Some((ts(start), ts(end))), "{input}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "24",
            "2024-13",
            "2024-02-30",
            "2024-1-05",
            "2024-03-05T10",
            "2024-03-05T25:00:00Z",
            "2024-03-05T10:20:30+2",
            "2024-03-05T10:20:30.Z",
            "2024-03-05T10:2é:00Z",
            "2024-03-05T10:20:3éZ",
            "2024-03-05Té",
            "yesterday",
        ] {
            assert_eq!(date_range(bad), None, "{bad}");
        }
    }
}

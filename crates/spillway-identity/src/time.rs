//! The two timestamp formats SigV4 and IAM use, as Unix seconds, without a calendar crate:
//! `20161107T173933Z` (X-Amz-Date) and ISO 8601 (`2016-11-07T17:39:33Z`, `2016-11-07`).

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Years are bounded (0-9999, as ISO 8601 writes them) so that no caller-supplied date can
/// overflow the arithmetic.
fn to_unix(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let valid = (0..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && (1..=days_in_month(y, mo)).contains(&d)
        && (0..=23).contains(&h)
        && (0..=59).contains(&mi)
        && (0..=60).contains(&s);
    valid.then(|| days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // ASCII first: the slices below are byte ranges, which must not split a character.
    if !s.is_ascii() || b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    to_unix(
        digits(&s[0..4])?,
        digits(&s[4..6])?,
        digits(&s[6..8])?,
        digits(&s[9..11])?,
        digits(&s[11..13])?,
        digits(&s[13..15])?,
    )
}

/// ISO 8601 as IAM's date conditions take it: a date, or a UTC date-time with optional
/// fractional seconds; or epoch seconds.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    if let Some(n) = digits(s) {
        return Some(n);
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (y, mo, d) = (
        digits(parts.next()?)?,
        digits(parts.next()?)?,
        digits(parts.next()?)?,
    );
    if parts.next().is_some() {
        return None;
    }
    let (h, mi, sec) = match time {
        None => (0, 0, 0),
        Some(t) => {
            let t = t.strip_suffix('Z')?;
            let t = t.split('.').next()?;
            let mut p = t.split(':');
            (
                digits(p.next()?)?,
                digits(p.next()?)?,
                p.next().map_or(Some(0), digits)?,
            )
        }
    };
    to_unix(y, mo, d, h, mi, sec)
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `YYYYMMDDTHHMMSSZ` of Unix seconds (for signing in tests and tools).
pub fn format_amz_date(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // civil_from_days, the inverse of days_from_civil.
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds (STS's Expiration).
pub fn format_iso8601(t: i64) -> String {
    let d = format_amz_date(t);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    )
}

/// `12/Mar/2020:19:03:58 +0000` of Unix seconds: the common log format's time, which API
/// Gateway uses for `$context.requestTime` and an event's `requestContext.time`.
pub fn format_clf(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let d = format_amz_date(t);
    let month = d[4..6]
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{}/{month}/{}:{}:{}:{} +0000",
        &d[6..8],
        &d[0..4],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_matches_api_gateways_example() {
        // The 2.0 event example: "time": "12/Mar/2020:19:03:58 +0000" (1584039838).
        assert_eq!(format_clf(1_584_039_838), "12/Mar/2020:19:03:58 +0000");
        assert_eq!(format_clf(1_587_481_701), "21/Apr/2020:15:08:21 +0000");
    }

    #[test]
    fn formats_agree() {
        let t = parse_amz_date("20161107T173933Z");
        assert_eq!(t, Some(1_478_540_373));
        assert_eq!(parse_iso8601("2016-11-07T17:39:33Z"), t);
        assert_eq!(parse_iso8601("2016-11-07T17:39:33.250Z"), t);
        assert_eq!(parse_iso8601("1478540373"), t);
        assert_eq!(parse_iso8601("2016-11-07"), Some(1_478_476_800));
        assert_eq!(format_amz_date(1_478_540_373), "20161107T173933Z");
        assert_eq!(format_iso8601(1_478_540_373), "2016-11-07T17:39:33Z");
        assert_eq!(format_amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(parse_amz_date("20161307T173933Z"), None);
        assert_eq!(parse_amz_date("2016-11-07T17:39"), None);
        assert_eq!(parse_iso8601("2016-11-07T17:39:33+09:00"), None);
        // Hostile input: multi-byte characters, huge years, impossible days.
        assert_eq!(parse_amz_date("201\u{e9}107T173933Z"), None);
        assert_eq!(parse_iso8601("9223372036854775807-01-01"), None);
        assert_eq!(parse_iso8601("2016-02-30"), None);
        assert_eq!(parse_iso8601("2015-02-29"), None);
        assert!(parse_iso8601("2024-02-29").is_some());
    }
}

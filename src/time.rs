//! RFC 3339 timestamps (UTC) without a date crate: for JSON log lines and token API answers.

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`, or with `.mmm` before the `Z` when
/// `millis` is given.
pub(crate) fn rfc3339(secs: i64, millis: Option<u32>) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fraction = millis.map(|m| format!(".{m:03}")).unwrap_or_default();
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// Unix seconds of midnight UTC starting the day `YYYY-MM-DD` (an HTML date input), `None`
/// unless it is a real date between years 1970 and 9999.
#[cfg(feature = "portal")]
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1970 || !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), the inverse of the one above.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[cfg(feature = "portal")]
    #[test]
    fn dates_parse_to_their_midnight() {
        use super::parse_date;
        for (date, secs) in [
            ("1970-01-01", 0),
            ("2000-02-29", 951_782_400),
            ("2026-12-02", 1_796_169_600),
        ] {
            assert_eq!(parse_date(date), Some(secs), "{date}");
            assert!(rfc3339(secs, None).starts_with(date));
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "+026-01-01",
            "1969-12-31",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, None), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_083_199, Some(7)), "2026-11-30T23:59:59.007Z");
        assert_eq!(rfc3339(253_402_300_799, None), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1, None), "1969-12-31T23:59:59Z");
    }
}

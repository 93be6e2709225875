//! Durations as people write them: `5s`, `1m`, `24h`, `7d`, `1y`, `500ms`.
//! Used by the server's configuration and the history API's parameters.

/// Parses a duration like `5s`, `15m`, `24h`, `7d`, `2w`, `1y` or `250ms` into
/// milliseconds. A bare number is not accepted: the unit is always explicit.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit (use ms, s, m, h, d, w or y)"))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number"))?;
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}` (use ms, s, m, h, d, w or y)"
            ));
        }
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// Formats milliseconds with the largest unit that divides them (`300000` → `5m`).
pub fn format_duration_ms(ms: i64) -> String {
    const UNITS: [(i64, &str); 6] = [
        (365 * 86_400_000, "y"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    if ms == 0 {
        return "0s".into();
    }
    let (unit, name) = UNITS
        .iter()
        .find(|(unit, _)| ms % unit == 0)
        .copied()
        .unwrap_or((1, "ms"));
    format!("{}{name}", ms / unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("24h"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("1y"), Ok(31_536_000_000));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse_duration_ms("5").unwrap_err().contains("no unit"));
        assert!(
            parse_duration_ms("5x")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration_ms("m").is_err());
        assert!(parse_duration_ms("-5m").is_err());
        assert!(parse_duration_ms("99999999999999999y").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for text in ["5s", "1m", "5m", "1h", "7d", "1y", "250ms"] {
            assert_eq!(format_duration_ms(parse_duration_ms(text).unwrap()), text);
        }
    }
}

/// Parses an RFC 3339 timestamp (`2026-01-01T00:00:00Z`,
/// `2026-01-01T01:30:00.250+01:30`) into Unix milliseconds (a fraction finer
/// than a millisecond is cut off). The parsing is `jiff`'s (its Temporal
/// grammar, a superset of RFC 3339: a space for `T`, lower case `t`/`z`, an
/// offset of hours only); only the server parses, so the wasm client does
/// not carry it.
#[cfg(feature = "rfc3339")]
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            // jiff's message quotes the input; ours keeps it short and
            // escaped (the caller echoes it in a 400).
            let shown: String = text.chars().take(40).collect();
            format!("{shown:?} is not an RFC 3339 time like 2026-01-01T00:00:00Z")
        })
}

/// Formats Unix milliseconds as RFC 3339 in UTC (`2026-01-01T00:00:00.000Z`).
pub fn format_rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1_000 % 60,
        rem % 1_000
    )
}

// Howard Hinnant's algorithm: days since 1970-01-01 -> proleptic Gregorian
// date. Formatting stays here, without jiff, because the wasm client formats
// times too; a property test checks it against jiff.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(all(test, feature = "rfc3339"))]
mod rfc3339_tests {
    use super::*;

    #[test]
    fn parses_utc_offsets_and_fractions() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_ms("2026-01-01T00:00:00Z"),
            Ok(1_767_225_600_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-01-01T01:30:00.25+01:30"),
            Ok(1_767_225_600_250)
        );
        assert_eq!(
            parse_rfc3339_ms("2025-12-31T19:00:00-05:00"),
            Ok(1_767_225_600_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:00:00Z"),
            Ok(1_709_208_000_000)
        );
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "",
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00+1:00",
            "yesterday",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_and_parses_back() {
        for ms in [0, 1_767_225_600_250, 951_782_400_000, -86_400_000] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Ok(ms));
        }
    }

    /// A multi-byte character where an offset or fraction is expected used
    /// to panic the hand-written parser, which sliced by byte index.
    #[test]
    fn multi_byte_characters_are_refused_not_a_panic() {
        for bad in [
            "2026-01-01T00:00:00\u{e9}1:00",
            "2026-01-01T00:00:00+0\u{e9}00",
            "2026-01-01T00:00:00+01\u{e9}0",
            "2026-01-01T00:00:00.5\u{e9}1:00",
            "2026-01-01T00:00:00\u{1F600}",
            "\u{e9}\u{e9}\u{e9}\u{e9}-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_an_answer_never_a_panic(text in "\\PC{0,40}") {
            let _ = parse_rfc3339_ms(&text);
            let _ = parse_duration_ms(&text);
        }

        #[test]
        fn near_timestamps_are_an_answer_never_a_panic(
            prefix in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}",
            tail in "[.,0-9:+\\-Zz\u{e9}\u{1F600} ]{0,10}",
        ) {
            let _ = parse_rfc3339_ms(&format!("{prefix}{tail}"));
        }

        /// The formatter the wasm client keeps agrees with jiff's calendar
        /// over years 0000 to 9999 (four-digit years).
        #[test]
        fn formatting_agrees_with_jiff(ms in -62_167_219_200_000i64..=253_402_300_799_999) {
            let text = format_rfc3339_ms(ms);
            let expected = jiff::Timestamp::from_millisecond(ms).unwrap();
            proptest::prop_assert_eq!(
                text.parse::<jiff::Timestamp>().ok(),
                Some(expected),
                "{}", text
            );
        }
    }
}

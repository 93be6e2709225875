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
        _ => return Err(format!("`{text}` has an unknown unit `{unit}` (use ms, s, m, h, d, w or y)")),
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
        assert!(parse_duration_ms("5x").unwrap_err().contains("unknown unit"));
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

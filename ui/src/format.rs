//! Numbers as people read them: bytes, rates, percentages, frequencies,
//! durations and times. Pure functions, tested natively.

/// Bytes with binary units: `512 B`, `1.5 KiB`, `16.0 GiB`.
pub fn bytes(value: f64) -> String {
    scaled(value, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"])
}

/// Bytes per second: `0 B/s`, `120 KiB/s`.
pub fn rate(value: f64) -> String {
    format!("{}/s", bytes(value))
}

fn scaled(value: f64, step: f64, units: &[&str]) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    let mut v = value.abs();
    let mut unit = 0;
    while v >= step && unit + 1 < units.len() {
        v /= step;
        unit += 1;
    }
    let sign = if value < 0.0 { "-" } else { "" };
    if unit == 0 {
        format!("{sign}{v:.0} {}", units[0])
    } else if v < 10.0 {
        format!("{sign}{v:.2} {}", units[unit])
    } else if v < 100.0 {
        format!("{sign}{v:.1} {}", units[unit])
    } else {
        format!("{sign}{v:.0} {}", units[unit])
    }
}

/// A percentage with one decimal: `12.5 %`.
pub fn pct(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1} %")
    } else {
        "—".into()
    }
}

/// A clock frequency: `800 MHz`, `3.40 GHz`.
pub fn mhz(value: f64) -> String {
    if !value.is_finite() {
        "—".into()
    } else if value >= 1000.0 {
        format!("{:.2} GHz", value / 1000.0)
    } else {
        format!("{value:.0} MHz")
    }
}

/// A load average: two decimals.
pub fn load(value: f64) -> String {
    format!("{value:.2}")
}

/// A temperature: `55.0 °C`.
pub fn celsius(value: f64) -> String {
    format!("{value:.1} °C")
}

/// A duration in seconds, the two largest units: `45 s`, `3 min 20 s`,
/// `5 h 12 min`, `12 d 3 h`.
pub fn duration_s(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{s} s")
    }
}

/// How long ago `then_ms` was, seen at `now_ms`: `just now`, `12 s ago`,
/// `3 min ago`, `2 h ago`, `4 d ago`.
pub fn ago(now_ms: i64, then_ms: i64) -> String {
    let secs = (now_ms - then_ms).max(0) / 1000;
    match secs {
        0..=2 => "just now".into(),
        3..=59 => format!("{secs} s ago"),
        60..=3_599 => format!("{} min ago", secs / 60),
        3_600..=86_399 => format!("{} h ago", secs / 3_600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// A countdown as `m:ss`, never negative.
pub fn countdown(remaining_ms: i64) -> String {
    let secs = (remaining_ms.max(0) + 999) / 1000;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// Local date and time of a Unix timestamp, in the browser's locale and time
/// zone: the one format of every chart and table (the chart glue formats its
/// tooltips with the same function). UTC on the server, where it is only
/// used for placeholders.
pub fn datetime(ms: i64) -> String {
    #[cfg(feature = "hydrate")]
    {
        js::fmt_date_time(ms as f64)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        utc_datetime(ms)
    }
}

/// A moment people place at a glance: the time of day for today, else the
/// date and time ("offline since 12:03"). Browser locale, like [`datetime`].
pub fn since(ms: i64) -> String {
    #[cfg(feature = "hydrate")]
    {
        js::fmt_since(ms as f64)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        utc_datetime(ms)
    }
}

#[cfg(feature = "hydrate")]
mod js {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(module = "/js/charts.js")]
    extern "C" {
        #[wasm_bindgen(js_name = fmtDateTime)]
        pub fn fmt_date_time(ms: f64) -> String;
        #[wasm_bindgen(js_name = fmtSince)]
        pub fn fmt_since(ms: f64) -> String;
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC: the model's RFC 3339 formatter (one copy
/// of the calendar arithmetic), without the `T`, milliseconds and zone.
pub fn utc_datetime(ms: i64) -> String {
    let mut text = storage::model::time::format_rfc3339_ms(ms);
    text.truncate(19);
    text.replace('T', " ")
}

/// Milliseconds since the Unix epoch, from the browser clock (0 on the server).
pub fn now_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pick_a_readable_unit() {
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.50 KiB");
        assert_eq!(bytes(16_777_216_000.0), "15.6 GiB");
        assert_eq!(bytes(500_107_862_016.0), "466 GiB");
        assert_eq!(rate(120_000.0), "117 KiB/s");
        assert_eq!(bytes(f64::NAN), "—");
    }

    #[test]
    fn small_formats() {
        assert_eq!(pct(12.345), "12.3 %");
        assert_eq!(mhz(3400.0), "3.40 GHz");
        assert_eq!(mhz(800.0), "800 MHz");
        assert_eq!(load(0.5), "0.50");
        assert_eq!(celsius(55.0), "55.0 °C");
    }

    #[test]
    fn durations_show_two_units() {
        assert_eq!(duration_s(45), "45 s");
        assert_eq!(duration_s(200), "3 min 20 s");
        assert_eq!(duration_s(18_720), "5 h 12 min");
        assert_eq!(duration_s(86_400 * 12 + 3 * 3600), "12 d 3 h");
    }

    #[test]
    fn ago_and_countdown() {
        assert_eq!(ago(10_000, 9_000), "just now");
        assert_eq!(ago(60_000, 0), "1 min ago");
        assert_eq!(ago(0, 5_000), "just now");
        assert_eq!(countdown(300_000), "5:00");
        assert_eq!(countdown(299_001), "5:00");
        assert_eq!(countdown(61_000), "1:01");
        assert_eq!(countdown(-5), "0:00");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(utc_datetime(1_795_608_000_000), "2026-11-25 12:00:00");
    }
}

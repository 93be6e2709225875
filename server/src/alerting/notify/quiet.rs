//! Quiet hours and times in messages. A user's quiet hours are a daily
//! window of local time (`23:00`–`07:00` in `Europe/Berlin`, across
//! midnight when the start is after the end) in an IANA time zone, read
//! with `jiff` and its bundled time-zone database, so daylight-saving
//! changes move the window with the wall clock.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use storage::catalog::NotifyPrefsRecord;

/// The error of a delivery held for the summary.
pub const HELD: &str = "held for the quiet-hours summary";
/// The error of a held delivery once the summary carrying it was sent.
pub const SUMMARISED: &str = "sent in the quiet-hours summary";

/// `HH:MM` as minutes of the day.
pub fn parse_hhmm(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

pub fn format_hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The time zone named `name`, if the database knows it.
pub fn time_zone(name: &str) -> Option<TimeZone> {
    TimeZone::get(name).ok()
}

/// When the quiet period that `now_ms` falls in ends (Unix ms), or `None`
/// outside quiet hours (and without any).
pub fn quiet_end(prefs: &NotifyPrefsRecord, now_ms: i64) -> Option<i64> {
    let (start, end, tz) = prefs.quiet.as_ref()?;
    if start == end {
        return None;
    }
    let tz = time_zone(tz)?;
    let now = Timestamp::from_millisecond(now_ms)
        .ok()?
        .to_zoned_datetime(tz.clone());
    let minute = u16::from(now.hour().unsigned_abs()) * 60 + u16::from(now.minute().unsigned_abs());
    let quiet = if start < end {
        (*start..*end).contains(&minute)
    } else {
        minute >= *start || minute < *end
    };
    if !quiet {
        return None;
    }
    let mut day = now.date();
    if minute >= *end {
        day = day.tomorrow().ok()?;
    }
    let end_at = day
        .at(
            i8::try_from(end / 60).ok()?,
            i8::try_from(end % 60).ok()?,
            0,
            0,
        )
        .to_zoned_datetime(tz)
        .ok()?;
    Some(end_at.timestamp().as_millisecond())
}

/// `2026-01-01 23:05 UTC`: how messages say when.
pub fn when(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(start: &str, end: &str, tz: &str) -> NotifyPrefsRecord {
        NotifyPrefsRecord {
            quiet: Some((
                parse_hhmm(start).unwrap(),
                parse_hhmm(end).unwrap(),
                tz.into(),
            )),
            ..Default::default()
        }
    }

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn a_window_across_midnight_in_berlin_follows_the_local_clock() {
        let p = prefs("23:00", "07:00", "Europe/Berlin");
        // Winter: Berlin is UTC+1. 22:30 UTC = 23:30 local: quiet until 06:00 UTC.
        assert_eq!(
            quiet_end(&p, ms("2026-01-10T22:30:00Z")),
            Some(ms("2026-01-11T06:00:00Z"))
        );
        // 05:59 UTC = 06:59 local: still quiet, same end.
        assert_eq!(
            quiet_end(&p, ms("2026-01-11T05:59:00Z")),
            Some(ms("2026-01-11T06:00:00Z"))
        );
        assert_eq!(quiet_end(&p, ms("2026-01-11T06:00:00Z")), None);
        assert_eq!(quiet_end(&p, ms("2026-01-11T12:00:00Z")), None);
        // Summer: UTC+2, the window moves with the wall clock.
        assert_eq!(
            quiet_end(&p, ms("2026-07-10T21:30:00Z")),
            Some(ms("2026-07-11T05:00:00Z"))
        );
    }

    #[test]
    fn a_daytime_window_and_bad_input() {
        let p = prefs("12:00", "13:00", "UTC");
        assert_eq!(
            quiet_end(&p, ms("2026-01-10T12:30:00Z")),
            Some(ms("2026-01-10T13:00:00Z"))
        );
        assert_eq!(quiet_end(&p, ms("2026-01-10T13:00:00Z")), None);
        for bad in ["24:00", "7:00", "07:60", "ab:cd", "", "07:00:00"] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
        assert!(time_zone("Europe/Berlin").is_some());
        assert!(time_zone("Mars/Olympus").is_none());
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
    }
}

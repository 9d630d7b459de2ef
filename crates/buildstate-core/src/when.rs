//! How people write times and durations, read the same way by the CLI's flags and the
//! API's query parameters: `2026-02-12T10:00:00Z`, `2026-02-12` (midnight UTC), and how
//! long ago (`90d`, `2w`, `36h`, `1h30m`). Pure: "ago" is counted from a `now` the
//! caller gives.

use std::time::Duration;

use jiff::Timestamp;

/// An RFC 3339 time (`2026-02-12T10:00:00Z`), a date and time without an offset (UTC),
/// or a UTC date (`2026-02-12`, midnight).
pub fn parse_time(raw: &str) -> Result<Timestamp, String> {
    let s = raw.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    // A date and time without an offset is UTC, as every time buildstate prints is; the
    // time is never dropped (a plain date is midnight).
    if s.len() > 10
        && let Ok(dt) = s.parse::<jiff::civil::DateTime>()
    {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| format!("`{s}` is not a time buildstate can use: {e}"));
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| {
            "expected an RFC 3339 time such as 2026-02-12T10:00:00Z or a date such as 2026-02-12".to_owned()
        })
}

/// A duration more than zero: `500ms`, `90s`, `2m`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration =
        s.parse().map_err(|_| format!("`{s}` is not a duration: use forms like 500ms, 90s, 2m or 1h30m"))?;
    Duration::try_from(d).ok().filter(|d| !d.is_zero()).ok_or_else(|| format!("`{s}` must be more than zero"))
}

/// A time, or how long before now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    At(Timestamp),
    Ago(Duration),
}

impl Since {
    /// The time meant, with "ago" counted back from `now`.
    pub fn at(self, now: Timestamp) -> Timestamp {
        match self {
            Since::At(t) => t,
            Since::Ago(d) => jiff::SignedDuration::try_from(d)
                .ok()
                .and_then(|d| now.checked_sub(d).ok())
                .unwrap_or(Timestamp::MIN),
        }
    }
}

/// A time as [`parse_time`] reads it, or how long ago: `90d`, `2w` (24-hour days), or
/// any duration [`parse_duration`] reads (`36h`, `1h30m`).
pub fn parse_since(raw: &str) -> Result<Since, String> {
    let s = raw.trim();
    if let Ok(t) = parse_time(s) {
        return Ok(Since::At(t));
    }
    // Days and weeks of 24-hour days, which jiff's durations leave out on purpose.
    let day_units = [('d', 86_400u64), ('w', 7 * 86_400)];
    for (unit, secs) in day_units {
        if let Some(n) = s.strip_suffix(unit).and_then(|n| n.trim().parse::<u64>().ok()) {
            return n
                .checked_mul(secs)
                .filter(|&total| total > 0 && total <= 100 * 365 * 86_400)
                .map(|total| Since::Ago(Duration::from_secs(total)))
                .ok_or_else(|| {
                    format!("`{s}` is out of range: give 1{unit} or more (or a shorter time such as 36h), up to 100 years")
                });
        }
    }
    if s.parse::<jiff::SignedDuration>().is_ok() {
        // A duration, but not a usable one (zero or negative): say so.
        return parse_duration(s).map(Since::Ago);
    }
    parse_duration(s).map(Since::Ago).map_err(|_| {
        format!(
            "`{}` is neither a time nor a duration: use 2026-02-12, 2026-02-12T10:00:00Z, or how long ago (90d, 2w, 36h)",
            s.escape_debug()
        )
    })
}

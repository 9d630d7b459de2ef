//! Human durations in pipeline files: `90s`, `5m`, `1h30m`, `500ms`.
//!
//! jiff's "friendly" format (ISO 8601 such as `PT5M` is accepted too). Days and weeks
//! are refused because their length is a calendar question; write `48h`.

use std::time::Duration;

use jiff::SignedDuration;

const EXPECTED: &str = "expected a duration such as 90s, 5m or 1h30m (units: ms, s, m, h)";

/// Parses a positive duration of at least one millisecond. The error is the message
/// for the caller to place (what was wrong; what was expected).
pub(super) fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let signed: SignedDuration =
        trimmed.parse().map_err(|_| format!("`{trimmed}` is not a duration; {EXPECTED}"))?;
    if signed.is_negative() {
        return Err(format!("`{trimmed}` is negative; {EXPECTED}"));
    }
    let duration =
        Duration::try_from(signed).map_err(|_| format!("`{trimmed}` is out of range; {EXPECTED}"))?;
    if duration < Duration::from_millis(1) {
        return Err(format!("`{trimmed}` is {}; expected a duration of at least 1ms", describe(duration)));
    }
    Ok(duration)
}

/// Milliseconds, for the fields of `buildstate_core::Backoff`.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn describe(d: Duration) -> String {
    if d.is_zero() { "zero".to_owned() } else { "shorter than a millisecond".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_forms() {
        let ok = |s: &str| parse(s).expect(s);
        assert_eq!(ok("90s"), Duration::from_secs(90));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("5 minutes"), Duration::from_secs(300));
        assert_eq!(ok("PT5M"), Duration::from_secs(300));
        assert_eq!(ok(" 2h "), Duration::from_secs(7200));
        assert_eq!(millis(ok("1m")), 60_000);
    }

    #[test]
    fn refusals_say_what_is_expected() {
        assert_eq!(
            parse("5").unwrap_err(),
            "`5` is not a duration; expected a duration such as 90s, 5m or 1h30m (units: ms, s, m, h)"
        );
        assert_eq!(
            parse("2d").unwrap_err(),
            "`2d` is not a duration; expected a duration such as 90s, 5m or 1h30m (units: ms, s, m, h)"
        );
        assert_eq!(
            parse("-5m").unwrap_err(),
            "`-5m` is negative; expected a duration such as 90s, 5m or 1h30m (units: ms, s, m, h)"
        );
        assert_eq!(parse("0s").unwrap_err(), "`0s` is zero; expected a duration of at least 1ms");
        assert_eq!(
            parse("10us").unwrap_err(),
            "`10us` is shorter than a millisecond; expected a duration of at least 1ms"
        );
        assert!(parse("").is_err());
        assert!(parse("soon").is_err());
    }
}

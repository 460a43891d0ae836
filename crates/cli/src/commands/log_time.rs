//! Times on the logs commands' lines: `--since` read as `aws logs tail`
//! reads it (a duration back from now: `30s`, `10m`, `1h`, `2d`, `1w`; or
//! an RFC 3339 time), and lines' timestamps printed.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::exit::CliError;

/// The Unix time in ns that `--since VALUE` names, given `now_ns`.
pub fn parse_since(value: &str, now_ns: i64) -> Result<i64, CliError> {
    let usage = || {
        CliError::usage(format!(
            "Error parsing parameter '--since': '{value}' is neither a duration back from now \
             (30s, 10m, 1h, 2d, 1w) nor an RFC 3339 time (2026-01-02T15:04:05Z)"
        ))
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return t.timestamp_nanos_opt().ok_or_else(usage);
    }
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .filter(|i| *i > 0)
        .ok_or_else(usage)?;
    let (number, unit) = value.split_at(split);
    let count: i64 = number.parse().map_err(|_| usage())?;
    let unit_secs: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(usage()),
    };
    let back = count
        .checked_mul(unit_secs)
        .and_then(|s| s.checked_mul(1_000_000_000))
        .ok_or_else(usage)?;
    Ok(now_ns.saturating_sub(back).max(0))
}

/// Now, in ns since the Unix epoch.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn utc(time_ns: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_nanos(time_ns)
}

/// `2026-11-29T04:37:21.123456789Z`: `orca logs --timestamps`.
pub fn rfc3339_nanos(time_ns: i64) -> String {
    utc(time_ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `2026-11-29T04:37:21.123456+00:00`: `aws logs tail --format detailed`.
pub fn detailed(time_ns: i64) -> String {
    utc(time_ns)
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// `2026-11-29T04:37:21`: `aws logs tail --format short`.
pub fn short(time_ns: i64) -> String {
    utc(time_ns).format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    #[test]
    fn since_takes_durations_back_from_now_and_times() {
        assert_eq!(parse_since("30s", NOW).ok(), Some(NOW - 30_000_000_000));
        assert_eq!(parse_since("1h", NOW).ok(), Some(NOW - 3_600_000_000_000));
        assert_eq!(parse_since("2d", NOW).ok(), Some(NOW - 172_800_000_000_000));
        assert_eq!(
            parse_since("2027-01-15T07:00:00Z", NOW).ok(),
            Some(NOW - 3_600_000_000_000)
        );
        for bad in ["", "h", "1y", "-1h", "1.5h", "yesterday", "99999999999999w"] {
            assert!(parse_since(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_print_as_each_format_wants() {
        let t = 1_800_000_000_123_456_789;
        assert_eq!(rfc3339_nanos(t), "2027-01-15T08:00:00.123456789Z");
        assert_eq!(detailed(t), "2027-01-15T08:00:00.123456+00:00");
        assert_eq!(short(t), "2027-01-15T08:00:00");
    }
}

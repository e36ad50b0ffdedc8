//! Times of `--at` / `--from` / `--to`: RFC 3339 (UTC, `2026-12-03T09:30:00Z`, fractions
//! allowed; `T` may be a space), `now`, or a humantime duration before now (`-5m`, `-1h 30m`).

use std::time::{Duration, UNIX_EPOCH};

/// The wall-clock ns (since the Unix epoch) `text` names, given the time now.
pub fn parse_time(text: &str, now_ns: u64) -> Result<u64, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now_ns);
    }
    if let Some(ago) = text.strip_prefix('-') {
        let ago = humantime::parse_duration(ago.trim())
            .map_err(|e| format!("{text}: not a duration before now ({e}; e.g. -5m)"))?;
        return Ok(now_ns.saturating_sub(ago.as_nanos().min(u64::MAX as u128) as u64));
    }
    let time = humantime::parse_rfc3339_weak(text).map_err(|e| {
        format!("{text}: not a time ({e}; RFC 3339 in UTC like 2026-12-03T09:30:00Z, or -5m)")
    })?;
    let since = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    Ok(since.min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_written() {
        let now = 1_000 * 1_000_000_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("-5m", now), Ok(now - 300 * 1_000_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z", now), Ok(1_500_000_000));
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("-5 parsecs", now).is_err());
    }
}

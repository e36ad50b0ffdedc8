//! Human units for the screen: bytes (KiB/MiB), ages, CPU time, lag, rates, percentages.
//! Every function is pure and short-output (table cells are narrow); tests pin the forms.

const NS_PER_US: u64 = 1_000;
const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;

/// Bytes in binary units: `512 B`, `1.5 KiB`, `12.0 MiB`, `1.20 GiB`. At most 10 characters.
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let value = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if value < KIB * KIB {
        format!("{:.1} KiB", value / KIB)
    } else if value < KIB * KIB * KIB {
        format!("{:.1} MiB", value / (KIB * KIB))
    } else {
        format!("{:.2} GiB", value / (KIB * KIB * KIB))
    }
}

/// A duration in the short humantime-like form used for ages: `850ms`, `42s`, `3m12s`,
/// `2h05m`, `3d04h`. At most 6 characters for anything under 100 days.
pub fn age(ns: u64) -> String {
    let s = ns / NS_PER_S;
    if ns < NS_PER_S {
        format!("{}ms", ns / NS_PER_MS)
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3_600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3_600)
    }
}

/// CPU time as htop's TIME+: `0:01.23` (minutes:seconds.hundredths) below an hour, then
/// `1h02:03` (hours, minutes, seconds).
pub fn cpu_time(ns: u64) -> String {
    let hundredths = ns / (NS_PER_MS * 10);
    let s = ns / NS_PER_S;
    if s < 3_600 {
        format!("{}:{:02}.{:02}", s / 60, s % 60, hundredths % 100)
    } else {
        format!("{}h{:02}:{:02}", s / 3_600, (s % 3_600) / 60, s % 60)
    }
}

/// A latency: `850ns`, `12µs`, `1.2ms`, `340ms`, `1.2s`, `75s`. Two or three significant digits.
pub fn latency(ns: u64) -> String {
    if ns < NS_PER_US {
        format!("{ns}ns")
    } else if ns < 10 * NS_PER_US {
        format!("{:.1}µs", ns as f64 / NS_PER_US as f64)
    } else if ns < NS_PER_MS {
        format!("{}µs", ns / NS_PER_US)
    } else if ns < 10 * NS_PER_MS {
        format!("{:.1}ms", ns as f64 / NS_PER_MS as f64)
    } else if ns < NS_PER_S {
        format!("{}ms", ns / NS_PER_MS)
    } else if ns < 10 * NS_PER_S {
        format!("{:.1}s", ns as f64 / NS_PER_S as f64)
    } else {
        format!("{}s", ns / NS_PER_S)
    }
}

/// An event rate per second: `0`, `12`, `950`, `1.2k`, `34k`, `1.2M`.
pub fn rate(per_s: f64) -> String {
    let r = per_s.max(0.0);
    if r < 1_000.0 {
        format!("{}", r.round() as u64)
    } else if r < 10_000.0 {
        format!("{:.1}k", r / 1_000.0)
    } else if r < 1_000_000.0 {
        format!("{}k", (r / 1_000.0).round() as u64)
    } else {
        format!("{:.1}M", r / 1_000_000.0)
    }
}

/// A percentage with one decimal below 100 (`0.0`, `12.3`), none from 100 (`100`, `250`).
pub fn percent(p: f64) -> String {
    let p = p.max(0.0);
    if p < 99.95 {
        format!("{p:.1}")
    } else {
        format!("{}", p.round() as u64)
    }
}

/// A count with thousands grouped by a thin space is hard to read in a cell; plain digits are
/// used up to 6 digits, then `1.2M`.
pub fn count(n: u64) -> String {
    if n < 1_000_000 {
        n.to_string()
    } else {
        format!("{:.1}M", n as f64 / 1_000_000.0)
    }
}

/// The name of a signal number, for exit statuses (`SIGKILL`); `None` for unusual numbers.
pub fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// When a process started (`start_monotonic_ns`, CLOCK_MONOTONIC) as local clock time, the
/// way htop's START column shows it: `HH:MM` when it started today, `MonDD` (e.g. `Dec01`)
/// before. The monotonic time is placed on the wall clock with the offset between the two
/// clocks read now.
pub fn start_clock(start_monotonic_ns: u64) -> String {
    let now_wall_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let now_monotonic_ns = bridge::stats::monotonic_ns() as i128;
    let start_wall_s = (now_wall_ns - (now_monotonic_ns - start_monotonic_ns as i128))
        .div_euclid(NS_PER_S as i128) as i64;
    let now_wall_s = now_wall_ns.div_euclid(NS_PER_S as i128) as i64;
    match (local_time(start_wall_s), local_time(now_wall_s)) {
        (Some(start), Some(now)) => clock_text(&start, &now),
        _ => "?".into(),
    }
}

/// `HH:MM` when `start` is on `now`'s local date, else `MonDD`.
fn clock_text(start: &libc::tm, now: &libc::tm) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if (start.tm_year, start.tm_yday) == (now.tm_year, now.tm_yday) {
        format!("{:02}:{:02}", start.tm_hour, start.tm_min)
    } else {
        let month = MONTHS.get(start.tm_mon as usize).copied().unwrap_or("???");
        format!("{month}{:02}", start.tm_mday)
    }
}

/// Local broken-down time of a Unix time (the process's time zone, as `TZ` or
/// /etc/localtime say).
fn local_time(unix_s: i64) -> Option<libc::tm> {
    let time = unix_s as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the
    // call, and localtime_r is the thread-safe variant.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let filled = unsafe { libc::localtime_r(&time, &mut tm) };
    (!filled.is_null()).then_some(tm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_clock_is_a_time_today_and_a_date_before() {
        let tm = |year, yday, mon, mday, hour, min| libc::tm {
            tm_year: year,
            tm_yday: yday,
            tm_mon: mon,
            tm_mday: mday,
            tm_hour: hour,
            tm_min: min,
            // SAFETY: the other fields are plain integers (and a pointer left null).
            ..unsafe { std::mem::zeroed() }
        };
        let now = tm(126, 335, 11, 2, 13, 45);
        assert_eq!(clock_text(&tm(126, 335, 11, 2, 9, 5), &now), "09:05");
        assert_eq!(clock_text(&tm(126, 334, 11, 1, 23, 59), &now), "Dec01");
        assert_eq!(
            clock_text(&tm(125, 335, 11, 2, 9, 5), &now),
            "Dec02",
            "a year ago"
        );
        // Started a moment ago: today's time, never a date or `?`.
        let just_now = bridge::stats::monotonic_ns();
        let text = start_clock(just_now);
        assert!(text.len() == 5 && text.as_bytes()[2] == b':', "{text}");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 << 20), "12.0 MiB");
        assert_eq!(bytes(3 << 29), "1.50 GiB");
        assert!(bytes(1024 * 1024 - 1).len() <= 10);
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age(850 * NS_PER_MS), "850ms");
        assert_eq!(age(42 * NS_PER_S), "42s");
        assert_eq!(age(192 * NS_PER_S), "3m12s");
        assert_eq!(age((2 * 3600 + 5 * 60) * NS_PER_S), "2h05m");
        assert_eq!(age((3 * 86400 + 4 * 3600) * NS_PER_S), "3d04h");
        assert!(age(99 * 86_400 * NS_PER_S).len() <= 6);
    }

    #[test]
    fn cpu_time_is_htop_like() {
        assert_eq!(cpu_time(1_234 * NS_PER_MS), "0:01.23");
        assert_eq!(cpu_time(61 * NS_PER_S + 500 * NS_PER_MS), "1:01.50");
        assert_eq!(cpu_time(3_723 * NS_PER_S), "1h02:03");
    }

    #[test]
    fn latency_switches_units() {
        assert_eq!(latency(850), "850ns");
        assert_eq!(latency(1_500), "1.5µs");
        assert_eq!(latency(12_000), "12µs");
        assert_eq!(latency(1_200_000), "1.2ms");
        assert_eq!(latency(340_000_000), "340ms");
        assert_eq!(latency(1_200_000_000), "1.2s");
        assert_eq!(latency(75 * NS_PER_S), "75s");
    }

    #[test]
    fn rates_and_percentages() {
        assert_eq!(rate(0.4), "0");
        assert_eq!(rate(950.0), "950");
        assert_eq!(rate(1_234.0), "1.2k");
        assert_eq!(rate(34_400.0), "34k");
        assert_eq!(rate(1_250_000.0), "1.2M");
        assert_eq!(percent(0.0), "0.0");
        assert_eq!(percent(12.34), "12.3");
        assert_eq!(percent(100.0), "100");
        assert_eq!(percent(-1.0), "0.0");
        assert_eq!(count(999_999), "999999");
        assert_eq!(count(1_200_000), "1.2M");
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(signal_name(64), None);
    }
}

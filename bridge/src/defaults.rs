//! Every default of the bridge, in one place: the session's defaults, the command line's and
//! the documentation's are these values.

use std::time::Duration;

/// Ring buffer size, bytes.
pub const RING_BYTES: u32 = 4 << 20;
/// Ring wake-up sampling: 0 = no wake-up per record (the consumer drains every
/// [`STREAM_DRAIN_INTERVAL`]; the kernel still wakes it when the ring is half full); 1 = wake
/// per record; N = every Nth record. 0 was chosen by measurement (BENCHMARKS.md, section 8):
/// a wake-up per record cost an exec storm up to a third of its rate.
pub const RING_WAKEUP_EVERY: u32 = 0;
/// Pages per CPU of each perf buffer.
pub const PERF_PAGES: usize = 64;
/// Perf wake-up sampling: 0 = no wake-up per record (the consumer drains every
/// [`STREAM_DRAIN_INTERVAL`]; the kernel still wakes it when a CPU's buffer is half full);
/// 1 = wake per record; N = every Nth record.
pub const PERF_WAKEUP_EVERY: u32 = 0;
/// How often the ring and perf consumers drain when wake-ups are sampled or off (wake-up
/// setting != 1): the bound on their lag when no wake-up comes. 15 ms by measurement
/// (BENCHMARKS.md 8g): during a max-rate exec storm ring/perf p99 lag was 10.5/10.6 ms at
/// 10 ms, 15.5/15.8 at 15 ms and 20.2/20.7 at 20 ms (over the 20 ms budget), and each
/// consumer's CPU fell by a quarter to a third from 10 to 15 ms.
pub const STREAM_DRAIN_INTERVAL: Duration = Duration::from_millis(15);
/// [`STREAM_DRAIN_INTERVAL`] as the command line writes it (humantime); a test checks they agree.
pub const STREAM_DRAIN_INTERVAL_TEXT: &str = "15ms";
/// Poll mode's snapshot interval (and the dashboard's refresh).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Flush period of what changes without an event of its own.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(100);
/// [`UPDATE_INTERVAL`] as the command line writes it (humantime); a test checks they agree.
pub const UPDATE_INTERVAL_TEXT: &str = "100ms";
/// How long finished entries stay in the kernel state maps: three poll intervals at the default
/// interval (the session never uses less than three of its interval), so poll reads every
/// finished entry at least twice and a resync after a loss still finds it. Not longer: the map
/// holds up to rate × retention finished entries, and every read, lookup and reap pays for
/// them (BENCHMARKS.md, section 8e).
pub const KERNEL_RETENTION: Duration = Duration::from_secs(3);
/// How long finished rows stay in the user-space tables.
pub const RETENTION_AGE: Duration = Duration::from_secs(60);
/// At most this many finished rows per table.
pub const RETENTION_ROWS: usize = 10_000;
/// Capacity of the connections state map: twice the kernel's default `tcp_max_tw_buckets` /
/// `tcp_max_orphans` (131,072), room for every socket a busy server holds plus recently
/// closed ones awaiting the reaper. Not preallocated.
pub const CONN_MAP_ENTRIES: u32 = 262_144;

/// Capacity of the processes state map: the machine's `kernel.pid_max` (every live process
/// fits) plus 65,536 exited ones awaiting the reaper, at most 2^20. Not preallocated, so
/// capacity costs nothing until used.
pub fn proc_map_entries() -> u32 {
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(32_768);
    pid_max.saturating_add(65_536).min(1 << 20)
}

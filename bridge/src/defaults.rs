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
/// The fewest pages per CPU of each perf buffer by default (what a machine with many CPUs gets).
pub const PERF_PAGES_MIN: usize = 64;
/// The most pages per CPU of each perf buffer by default.
pub const PERF_PAGES_MAX: usize = 4096;

/// Pages per CPU of each perf buffer by default, for `cpus` buffers of `page_bytes` pages: as
/// many as give the perf buffers together the ring's kernel memory ([`RING_BYTES`]), rounded
/// down to a power of two, within [`PERF_PAGES_MIN`]..=[`PERF_PAGES_MAX`]. So perf and ring are
/// compared with the same memory: 512 pages per CPU on 2 CPUs with 4 KiB pages, 64 from 16
/// CPUs on. With 64 pages (256 KiB per CPU, the old default) a max-rate mixed storm on 2 CPUs
/// filled perf's buffers whenever its thread waited for a CPU: 8–75k records lost and resynced
/// in 8 s, p99 lag 104–405 ms, against 0 lost and 21.9 ms with 512 (BENCHMARKS.md 8g).
pub fn perf_pages(cpus: usize, page_bytes: usize) -> usize {
    let per_cpu_bytes = RING_BYTES as usize / cpus.max(1);
    let pages = per_cpu_bytes / page_bytes.max(1);
    let pages = if pages == 0 { 1 } else { 1 << pages.ilog2() };
    pages.clamp(PERF_PAGES_MIN, PERF_PAGES_MAX)
}

/// [`perf_pages`] for this machine (its online CPUs, its page size); the minimum when either
/// cannot be read.
pub fn perf_pages_here() -> usize {
    let cpus = aya::util::online_cpus().map_or(0, |cpus| cpus.len());
    if cpus == 0 {
        return PERF_PAGES_MIN;
    }
    perf_pages(cpus, rustix::param::page_size())
}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_buffers_get_the_rings_memory_within_their_bounds() {
        // 4 MiB over 2 CPUs of 4 KiB pages: 512 pages each, 4 MiB in all.
        assert_eq!(perf_pages(2, 4096), 512);
        assert_eq!(perf_pages(2, 4096) * 2 * 4096, RING_BYTES as usize);
        // Not a power of two of CPUs: rounded down (4 MiB / 3 / 4 KiB = 341 -> 256).
        assert_eq!(perf_pages(3, 4096), 256);
        // Many CPUs: never below the old per-CPU default.
        assert_eq!(perf_pages(16, 4096), 64);
        assert_eq!(perf_pages(256, 4096), PERF_PAGES_MIN);
        // One CPU with 64 KiB pages: 64; absurd inputs stay within bounds.
        assert_eq!(perf_pages(1, 65536), 64);
        assert_eq!(perf_pages(0, 0), PERF_PAGES_MAX);
        assert_eq!(perf_pages(1, 1 << 30), PERF_PAGES_MIN);
        assert!(perf_pages_here().is_power_of_two());
    }
}

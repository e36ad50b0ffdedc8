//! The baseline a user would otherwise use: a collector that polls /proc (what top / ps / ss
//! do) at a fixed interval and remembers every pid and TCP 4-tuple it ever saw.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bridge::{procfs_seed, stats::thread_cpu_ns};
use probe_common::AF_INET;

/// What the /proc poller saw.
#[derive(Debug, Default)]
pub struct ProcfsSeen {
    /// pid -> the start times (CLOCK_MONOTONIC ns, tick-accurate) it was seen with.
    pub pids: HashMap<u32, Vec<u64>>,
    /// IPv4 loopback 4-tuples seen in /proc/net/tcp, as (local port, remote port).
    pub tuples: HashSet<(u16, u16)>,
    /// Scans done.
    pub ticks: u64,
    /// CPU time of the poller thread, ns (CLOCK_THREAD_CPUTIME_ID, measured inside it).
    pub cpu_ns: u64,
    /// Longest single scan (wall clock), ns.
    pub scan_max_ns: u64,
    /// Scans that failed (e.g. /proc/net/tcp unreadable).
    pub errors: u64,
}

/// A running /proc poller.
pub struct ProcfsPoller {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<ProcfsSeen>,
}

impl ProcfsPoller {
    /// Starts scanning every `interval`: processes if `processes`, TCP sockets if `tcp`.
    pub fn start(interval: Duration, processes: bool, tcp: bool) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("bench-procfs".into())
            .spawn(move || {
                let cpu_start = thread_cpu_ns();
                let root = Path::new("/proc");
                let mut seen = ProcfsSeen::default();
                let mut next = Instant::now();
                loop {
                    let scan_start = Instant::now();
                    if processes {
                        match procfs_seed::read_processes(root) {
                            Ok(procs) => {
                                for p in procs {
                                    seen.pids
                                        .entry(p.key.tgid)
                                        .or_default()
                                        .push(p.key.start_ns);
                                }
                            }
                            Err(_) => seen.errors += 1,
                        }
                    }
                    if tcp {
                        match procfs_seed::read_tcp_connections(root) {
                            Ok(conns) => {
                                for c in conns.iter().filter(|c| is_loopback_v4(&c.key)) {
                                    seen.tuples.insert((c.key.sport, c.key.dport));
                                }
                            }
                            Err(_) => seen.errors += 1,
                        }
                    }
                    seen.ticks += 1;
                    seen.scan_max_ns = seen.scan_max_ns.max(scan_start.elapsed().as_nanos() as u64);
                    next += interval;
                    // Sleep in short steps so that stop is noticed promptly.
                    loop {
                        if flag.load(Ordering::Relaxed) {
                            seen.cpu_ns = thread_cpu_ns() - cpu_start;
                            return seen;
                        }
                        let now = Instant::now();
                        if now >= next {
                            break;
                        }
                        std::thread::sleep((next - now).min(Duration::from_millis(20)));
                    }
                }
            })?;
        Ok(ProcfsPoller { stop, handle })
    }

    /// Stops the poller after its current sleep step and returns what it saw.
    pub fn finish(self) -> ProcfsSeen {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("procfs poller panicked")
    }
}

/// IPv4 127.0.0.1 -> 127.0.0.1 (the bench's own connections; anything else is not counted).
pub fn is_loopback_v4(key: &probe_common::ConnKey) -> bool {
    key.family == AF_INET && key.saddr[..4] == [127, 0, 0, 1] && key.daddr[..4] == [127, 0, 0, 1]
}

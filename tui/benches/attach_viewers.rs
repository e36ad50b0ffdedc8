//! 50 viewers on one collector during a loopback connection storm (~10,000 kernel events/s):
//! the collector's CPU, each viewer's lag (kernel change → applied in the viewer's replica),
//! and the memory one viewer costs the collector. Needs root (the collector loads the probes).
//! `cargo bench -p bpftop-ordered --bench attach_viewers` (figures in BENCHMARKS.md).
//!
//! Environment: `VIEWERS` (default 50), `SECONDS` (default 20), `CONNECTIONS_PER_S` (default
//! 1000; each loopback connection is about ten kernel events on both ends).

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use bpftop_ordered::remote::replica::{apply_to, Replica};
use bridge::{contract::ModeKind, store::TableStore, table::Retention};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of a process, ns.
fn cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    ticks * 1_000_000_000 / 100
}

/// Resident memory of a process, bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

struct Guard(Child, PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// A viewer thread: connects, keeps a replica until `stop`, returns its replica's stats.
/// `applied` gets the replica's count of applied changes as it goes.
fn viewer(
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    applied: Arc<AtomicU64>,
) -> thread::JoinHandle<(u64, u64, u64, u64)> {
    thread::spawn(move || {
        let mut replica = Replica::connect(&socket, None).expect("viewer connects");
        let mut store = TableStore::new(0, Retention::default());
        while !stop.load(Ordering::Relaxed) {
            if let Some(event) = replica.next_event().expect("link holds") {
                apply_to(&mut store, event);
                applied.store(store.mode(ModeKind::Ring).apply.applied, Ordering::Relaxed);
            }
        }
        let stats = store.stats(ModeKind::Ring);
        (
            stats.lag_p50_ns,
            stats.lag_p99_ns,
            replica.counters().resyncs,
            stats.user_bytes,
        )
    })
}

/// Opens, writes to and closes loopback connections at `per_s` until `stop`.
fn storm(per_s: u64, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let accept_stop = Arc::clone(&stop);
    thread::spawn(move || {
        while !accept_stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let mut b = [0u8; 1];
                    let _ = s.read(&mut b);
                }
                Err(_) => thread::sleep(Duration::from_micros(200)),
            }
        }
    });
    thread::spawn(move || {
        let started = Instant::now();
        let mut made = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let due = started.elapsed().as_secs_f64() * per_s as f64;
            if (made as f64) < due {
                if let Ok(mut s) = TcpStream::connect(addr) {
                    let _ = s.write_all(b"x");
                }
                made += 1;
            } else {
                thread::sleep(Duration::from_micros(500));
            }
        }
        made
    })
}

fn percentile(values: &mut [u64], q: f64) -> u64 {
    values.sort_unstable();
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let viewers = env_or("VIEWERS", 50) as usize;
    let seconds = env_or("SECONDS", 20);
    let per_s = env_or("CONNECTIONS_PER_S", 1000);
    let dir = std::env::temp_dir().join(format!("bto-bench-attach-{}", std::process::id()));
    let socket = dir.join("run").join("c.sock");
    let log = std::env::temp_dir().join(format!("bto-bench-attach-{}.log", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_bpftop-ordered"))
        .args(["serve", "--modes", "ring", "--group", "root", "--socket"])
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("serve");
    let pid = child.id();
    let _guard = Guard(child, dir);
    let started = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("serving")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not start"
        );
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_secs(1));
    let rss_before = rss_bytes(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let applied = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..viewers)
        .map(|i| {
            let counter = if i == 0 {
                Arc::clone(&applied)
            } else {
                Arc::new(AtomicU64::new(0))
            };
            viewer(socket.clone(), Arc::clone(&stop), counter)
        })
        .collect();
    thread::sleep(Duration::from_secs(2));
    let rss_viewers = rss_bytes(pid);
    let storm_stop = Arc::new(AtomicBool::new(false));
    let storm = storm(per_s, Arc::clone(&storm_stop));
    let (cpu_start, wall_start, events_start) =
        (cpu_ns(pid), Instant::now(), applied.load(Ordering::Relaxed));
    thread::sleep(Duration::from_secs(seconds));
    let (cpu_end, wall, events_end) = (
        cpu_ns(pid),
        wall_start.elapsed(),
        applied.load(Ordering::Relaxed),
    );
    let rss_storm = rss_bytes(pid);
    storm_stop.store(true, Ordering::Relaxed);
    let connections = storm.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(u64, u64, u64, u64)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut p50s: Vec<u64> = results.iter().map(|r| r.0).collect();
    let mut p99s: Vec<u64> = results.iter().map(|r| r.1).collect();
    let resyncs: u64 = results.iter().map(|r| r.2).sum();
    let replica_bytes = results.iter().map(|r| r.3).sum::<u64>() / viewers as u64;
    let events_line = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    println!(
        "viewers={viewers} seconds={seconds} connections/s={:.0} events/s={:.0} collector_cpu={:.1}% \
         viewer_lag_p50 median/max={}/{} ns viewer_lag_p99 median/max={}/{} ns resyncs={resyncs} \
         collector_rss before/with viewers/after storm={}/{}/{} KiB per_viewer_collector_kib={:.0} \
         viewer_replica_bytes={replica_bytes}",
        connections as f64 / wall.as_secs_f64(),
        (events_end - events_start) as f64 / wall.as_secs_f64(),
        (cpu_end - cpu_start) as f64 * 100.0 / wall.as_nanos() as f64,
        percentile(&mut p50s, 0.5),
        percentile(&mut p50s, 1.0),
        percentile(&mut p99s, 0.5),
        percentile(&mut p99s, 1.0),
        rss_before / 1024,
        rss_viewers / 1024,
        rss_storm / 1024,
        (rss_viewers.saturating_sub(rss_before)) as f64 / 1024.0 / viewers as f64,
    );
    if events_line.contains("overflowed") {
        println!("note: some queues overflowed (see resyncs)");
    }
}

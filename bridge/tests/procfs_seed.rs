//! `bridge::procfs_seed` against the real `/proc` of the machine running the tests.

use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};

use bridge::procfs_seed::{
    clock_tick_ns, read_processes, read_tcp_connections, start_ns_matches, SeededConnection,
    START_NS_SLACK_NS,
};
use probe_common::{conn_flags, AF_INET, AF_INET6};

const PROC: &str = "/proc";

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn comm_str(comm: &[u8]) -> &[u8] {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    &comm[..end]
}

/// Kills and reaps the child even when an assertion fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn procfs_seed_sees_spawned_child() {
    let before = monotonic_ns();
    let child = KillOnDrop(Command::new("sleep").arg("5").spawn().expect("spawn sleep"));
    let after = monotonic_ns();
    let child_pid = child.0.id();
    let me = std::process::id();

    let procs = read_processes(Path::new(PROC)).unwrap();
    let found = procs
        .iter()
        .find(|p| p.key.tgid == child_pid)
        .unwrap_or_else(|| panic!("child {child_pid} not in {} processes", procs.len()));
    assert_eq!(found.state.ppid, me);
    assert_eq!(comm_str(&found.state.comm), b"sleep");
    assert_eq!(found.state.uid, unsafe { libc::getuid() });
    assert!(!found.kernel_thread);
    // A user process has an address space (VmRSS and VmSize known) and, where cgroup2 is
    // mounted, a cgroup v2; its command line is /proc's.
    use probe_common::proc_flags::{CGROUP_KNOWN, RSS_KNOWN};
    let cgroup = if bridge::cgroups::cgroup2_mount().is_some() {
        CGROUP_KNOWN
    } else {
        0
    };
    assert_eq!(found.state.flags, RSS_KNOWN | cgroup);
    assert!(found.state.rss_bytes > 0 && found.state.virt_bytes >= found.state.rss_bytes);
    let cmdline = found.cmdline.expect("the child's command line");
    assert_eq!(&cmdline.bytes[..cmdline.len as usize], b"sleep\x005\x00");
    assert_eq!(found.state.nice, 0);
    assert_eq!((found.state.exit_ns, found.state.exit_code), (0, 0));
    assert_eq!(found.key.start_ns, found.state.start_ns);

    // The exact start time lies in [before, after]; the seeded one is within a tick of it.
    let tick = clock_tick_ns();
    let seeded = found.key.start_ns;
    assert!(
        seeded + tick + START_NS_SLACK_NS >= before && seeded <= after + START_NS_SLACK_NS,
        "seeded start {seeded} outside [{before}, {after}] ± tick {tick}"
    );
    assert!(start_ns_matches(seeded, before, tick + (after - before)));

    // The test process itself is there too, a user process started before the child.
    let myself = procs.iter().find(|p| p.key.tgid == me).expect("own pid");
    assert!(!myself.kernel_thread);
    assert!(myself.key.start_ns <= seeded);
    // Only thread-group leaders: no pid appears twice.
    let mut pids: Vec<u32> = procs.iter().map(|p| p.key.tgid).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), procs.len());
}

fn find(conns: &[SeededConnection], family: u16, sport: u16, dport: u16) -> &SeededConnection {
    conns
        .iter()
        .find(|c| c.key.family == family && c.key.sport == sport && c.key.dport == dport)
        .unwrap_or_else(|| panic!("no connection family {family} {sport} -> {dport}"))
}

fn check_owned_by_me(c: &SeededConnection, tcp_state: u32) {
    assert_eq!(c.state.tcp_state, tcp_state, "{c:?}");
    assert_eq!(c.state.pid, std::process::id(), "{c:?}");
    assert_ne!(c.state.flags & conn_flags::OWNER_KNOWN, 0, "{c:?}");
    assert!(!comm_str(&c.state.comm).is_empty());
    assert_ne!(c.inode, 0);
    assert_eq!(
        (c.state.bytes_sent, c.state.bytes_received, c.state.start_ns),
        (0, 0, 0)
    );
}

#[test]
fn procfs_seed_sees_loopback_connection_v4() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_server_side, _) = listener.accept().unwrap();
    let client_port = client.local_addr().unwrap().port();

    let conns = read_tcp_connections(Path::new(PROC)).unwrap();
    let loopback = [127, 0, 0, 1];

    let out = find(&conns, AF_INET, client_port, server_port);
    check_owned_by_me(out, 1);
    assert_eq!(&out.key.saddr[..4], &loopback);
    assert_eq!(&out.key.daddr[..4], &loopback);
    assert!(out.key.saddr[4..].iter().all(|&b| b == 0));

    let inbound = find(&conns, AF_INET, server_port, client_port);
    check_owned_by_me(inbound, 1);
    assert_eq!(&inbound.key.saddr[..4], &loopback);
    assert_eq!(&inbound.key.daddr[..4], &loopback);

    let listen = find(&conns, AF_INET, server_port, 0);
    check_owned_by_me(listen, 10);
}

#[test]
fn procfs_seed_sees_loopback_connection_v6() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    };
    let addr: SocketAddr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (_server_side, _) = listener.accept().unwrap();
    let (server_port, client_port) = (addr.port(), client.local_addr().unwrap().port());

    let conns = read_tcp_connections(Path::new(PROC)).unwrap();
    let lo = Ipv6Addr::LOCALHOST.octets();
    for (s, d) in [(client_port, server_port), (server_port, client_port)] {
        let c = find(&conns, AF_INET6, s, d);
        check_owned_by_me(c, 1);
        assert_eq!((c.key.saddr, c.key.daddr), (lo, lo));
    }
}

#[test]
fn procfs_seed_reads_whole_proc_without_skips_as_root() {
    use bridge::procfs_seed::{read_processes_with_report, read_tcp_connections_with_report};
    // Our own process's live threads' runtime (schedstat, ns) around the read: the seed's
    // cpu_ns for us is at least the first (exact, not rounded down to a clock tick) and at
    // most the second — or the tick-based total of /proc/self/stat, which also counts the
    // harness threads that already exited.
    let own_runtime_ns = || -> u64 {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    let before = own_runtime_ns();
    let (procs, report) = read_processes_with_report(Path::new(PROC)).unwrap();
    let after = own_runtime_ns();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let upper = after.max(ticks * clock_tick_ns());
    let me = procs
        .iter()
        .find(|p| p.key.tgid == std::process::id())
        .expect("own process seeded");
    assert!(
        (before..=upper).contains(&me.state.cpu_ns),
        "seeded cpu_ns {} outside {before}..={upper} (schedstat before, max(schedstat after, \
         utime+stime))",
        me.state.cpu_ns
    );
    let kthreads = procs.iter().filter(|p| p.kernel_thread).count();
    let (conns, conn_report) = read_tcp_connections_with_report(Path::new(PROC)).unwrap();
    let owned = conns
        .iter()
        .filter(|c| c.state.flags & conn_flags::OWNER_KNOWN != 0)
        .count();
    eprintln!(
        "{} processes ({kthreads} kernel threads), {report:?}; {} connections ({owned} with owner), {conn_report:?}",
        procs.len(),
        conns.len()
    );
    assert!(!procs.is_empty());
    // Kernel threads have no user-space parent other than kthreadd (pid 2) or the idle task.
    for p in procs.iter().filter(|p| p.kernel_thread) {
        assert_eq!(p.state.uid, 0, "{p:?}");
    }
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(report.skipped, 0);
        assert_eq!(conn_report.skipped, 0);
        assert_eq!(conn_report.fd_dirs_unreadable, 0);
    }
}

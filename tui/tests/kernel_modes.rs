//! Real-kernel tests of the three bridge modes side by side (issue 3), through the real binary:
//! `bpftop-ordered dump --modes ring,perf,poll ...` while the test generates the workload.
mod kernel_support;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr},
    process::{Command, Stdio},
    time::Duration,
};

use kernel_support::{
    dump_exec_burst, num, privileged, row_endpoints, run_dumps, text, Children, DumpOutput,
    DumpSpec, HeldConnections, TempDir,
};
use serde_json::Value;

const MODES: [&str; 3] = ["ring", "perf", "poll"];

fn me() -> u64 {
    std::process::id() as u64
}

/// Every mode must have produced a stats line and no failure.
fn check_modes_ran(out: &DumpOutput) {
    for mode in MODES {
        out.stats_of(mode);
    }
    assert!(!out.stderr.contains("mode failed"), "{}", out.stderr);
}

/// The rows of every mode that involve `port` (either end), by 4-tuple.
fn connections_on_port(
    out: &DumpOutput,
    mode: &str,
    port: u16,
) -> BTreeMap<(String, String), Value> {
    out.rows_of(mode)
        .filter(|r| num(r, "sport") == port as u64 || num(r, "dport") == port as u64)
        .map(|r| (row_endpoints(r), r.clone()))
        .collect()
}

#[test]
fn same_long_lived_workload_gives_the_same_rows_in_every_mode() {
    let test = privileged!("same_long_lived_workload_gives_the_same_rows_in_every_mode");
    let dir = TempDir::new("modes");
    let sleeper = dir.program("/bin/sleep", "bto_sleep");
    let common = ["--modes", "ring,perf,poll", "--interval", "500ms"];
    let processes = DumpSpec::json("processes", &common);
    let connections = DumpSpec::json("connections", &common);
    let (outputs, (children, held)) = run_dumps(
        &[processes, connections],
        Duration::from_secs(4),
        Duration::from_millis(1500),
        || {
            let mut children = Children::default();
            for _ in 0..5 {
                children.0.push(
                    Command::new(&sleeper)
                        .arg("30")
                        .stdin(Stdio::null())
                        .spawn()
                        .expect("spawn bto_sleep"),
                );
            }
            let held = HeldConnections::open(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                5,
                "bto-hold-c",
                "bto-hold-s",
            );
            (children, held)
        },
    );
    let (procs_out, conns_out) = (&outputs[0], &outputs[1]);
    check_modes_ran(procs_out);
    check_modes_ran(conns_out);

    // Processes: key pid + start_ns; fields comm, ppid, state, origin.
    let pids: BTreeSet<u64> = children.pids().into_iter().map(u64::from).collect();
    let mut per_mode = Vec::new();
    for mode in MODES {
        let rows: BTreeMap<(u64, u64), (String, u64, String, String)> = procs_out
            .rows_of(mode)
            .filter(|r| pids.contains(&num(r, "pid")))
            .map(|r| {
                (
                    (num(r, "pid"), num(r, "start_ns")),
                    (
                        text(r, "comm").to_string(),
                        num(r, "ppid"),
                        text(r, "state").to_string(),
                        text(r, "origin").to_string(),
                    ),
                )
            })
            .collect();
        println!("{test}: {mode}: {} sleeper rows", rows.len());
        assert_eq!(rows.len(), 5, "{mode}: {rows:?}");
        for (key, fields) in &rows {
            assert_eq!(
                fields,
                &("bto_sleep".into(), me(), "running".into(), "kernel".into()),
                "{mode} {key:?}"
            );
        }
        per_mode.push((mode, rows));
    }
    for (mode, rows) in &per_mode[1..] {
        assert_eq!(rows, &per_mode[0].1, "{mode} vs ring");
    }

    // Connections: key 4-tuple; fields state, pid, comm.
    let port = held.port();
    let mut per_mode = Vec::new();
    for mode in MODES {
        let rows: BTreeMap<(String, String), (String, u64, String)> =
            connections_on_port(conns_out, mode, port)
                .into_iter()
                .map(|(k, r)| {
                    let fields = (
                        text(&r, "state").to_string(),
                        num(&r, "pid"),
                        text(&r, "comm").to_string(),
                    );
                    (k, fields)
                })
                .collect();
        let established: Vec<_> = rows.iter().filter(|(_, f)| f.0 == "ESTABLISHED").collect();
        println!(
            "{test}: {mode}: {} rows on port {port}, {} established",
            rows.len(),
            established.len()
        );
        assert_eq!(established.len(), 10, "{mode}: {rows:#?}");
        // Owners are named as `ss -p` names them: the process's comm, not a thread's.
        let process_comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let process_comm = process_comm.trim();
        for (client, server) in &held.streams {
            let c = (
                client.local_addr().unwrap().to_string(),
                client.peer_addr().unwrap().to_string(),
            );
            let s = (
                server.local_addr().unwrap().to_string(),
                server.peer_addr().unwrap().to_string(),
            );
            assert_eq!(
                rows.get(&c),
                Some(&("ESTABLISHED".into(), me(), process_comm.into())),
                "{mode} client {c:?}"
            );
            assert_eq!(
                rows.get(&s),
                Some(&("ESTABLISHED".into(), me(), process_comm.into())),
                "{mode} server {s:?}"
            );
        }
        per_mode.push((mode, rows));
    }
    for (mode, rows) in &per_mode[1..] {
        assert_eq!(rows, &per_mode[0].1, "{mode} vs ring");
    }
    drop(held);
    drop(children);
}

#[test]
fn exec_burst_ring_and_perf_see_all_poll_sees_a_correct_subset() {
    let test = privileged!("exec_burst_ring_and_perf_see_all_poll_sees_a_correct_subset");
    let spec = DumpSpec::json(
        "processes",
        &["--modes", "ring,perf,poll", "--interval", "1s"],
    );
    let (out, burst) = dump_exec_burst(
        spec,
        1000,
        Duration::from_secs(8),
        Duration::from_millis(1500),
    );
    check_modes_ran(&out);
    let burst_pids: BTreeSet<u64> = burst.iter().map(|(p, _)| *p as u64).collect();
    for mode in MODES {
        // Exited `true` children of this test, by pid.
        let mut exited: HashMap<u64, &Value> = HashMap::new();
        let mut running = 0;
        for row in out.rows_of(mode) {
            let pid = num(row, "pid");
            if !burst_pids.contains(&pid) || num(row, "ppid") != me() {
                continue;
            }
            if text(row, "state") == "exited" {
                assert_eq!(text(row, "comm"), "true", "{mode}: {row}");
                assert_eq!(row["exit_code"], 0, "{mode}: {row}");
                exited.insert(pid, row);
            } else {
                running += 1;
            }
        }
        let stats = out.stats_of(mode);
        println!(
            "{test}: {mode}: {} of 1000 seen exited, {running} shown running, events {}, \
             drops {}, resyncs {}, unobserved_changes {}, lag p50/p99/max {}/{}/{} ns, \
             cpu_ns {}, kernel_bytes {}, user_bytes {}",
            exited.len(),
            num(stats, "events"),
            num(stats, "drops"),
            num(stats, "resyncs"),
            num(stats, "unobserved_changes"),
            num(stats, "lag_p50_ns"),
            num(stats, "lag_p99_ns"),
            num(stats, "lag_max_ns"),
            num(stats, "cpu_ns"),
            num(stats, "kernel_bytes"),
            num(stats, "user_bytes"),
        );
        if mode == "poll" {
            // Poll sees snapshots: whatever it shows as exited is correct (checked above); what
            // it skipped is counted. Each child had at least a fork, an exec and an exit: a
            // snapshot every second cannot have seen them all one by one.
            assert!(
                stats.get("unobserved_changes").is_some_and(Value::is_u64),
                "{stats}"
            );
            assert!(num(stats, "unobserved_changes") > 0, "{stats}");
        } else {
            assert_eq!(running, 0, "{mode}: exited children shown running");
            let missing: Vec<_> = burst_pids
                .iter()
                .filter(|p| !exited.contains_key(p))
                .collect();
            assert!(
                missing.is_empty(),
                "{mode}: {} of 1000 missing (drops {}, resyncs {}): {:?}",
                missing.len(),
                num(stats, "drops"),
                num(stats, "resyncs"),
                &missing[..missing.len().min(20)]
            );
        }
    }
}

/// The (local, peer) endpoints `ss -tnH` lists as established with `port` at either end.
fn ss_established_on(port: u16) -> BTreeSet<(String, String)> {
    let ss = ["/usr/bin/ss", "/bin/ss", "/usr/sbin/ss", "/sbin/ss"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("`ss` (iproute2) is not installed: apt-get install iproute2"));
    let out = Command::new(ss).arg("-tnH").output().expect("run ss");
    assert!(out.status.success(), "ss failed: {out:?}");
    let port_of = |endpoint: &str| endpoint.rsplit(':').next().and_then(|p| p.parse().ok());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // State Recv-Q Send-Q Local:Port Peer:Port
            if cols.len() < 5 || cols[0] != "ESTAB" {
                return None;
            }
            let (local, peer) = (cols[3], cols[4]);
            (port_of(local) == Some(port) || port_of(peer) == Some(port))
                .then(|| (local.to_string(), peer.to_string()))
        })
        .collect()
}

#[test]
fn twenty_held_connections_are_established_in_every_mode_as_ss_lists_them() {
    let test =
        privileged!("twenty_held_connections_are_established_in_every_mode_as_ss_lists_them");
    let spec = DumpSpec::json("connections", &["--modes", "ring,perf,poll"]);
    let (outputs, held) = run_dumps(
        &[spec],
        Duration::from_secs(4),
        Duration::from_millis(1500),
        || HeldConnections::open(IpAddr::V4(Ipv4Addr::LOCALHOST), 20, "bto-20-c", "bto-20-s"),
    );
    let out = &outputs[0];
    check_modes_ran(out);
    let port = held.port();
    // The connections are still open: ss shows the same moment's truth.
    let ss = ss_established_on(port);
    println!(
        "{test}: ss lists {} established endpoints on port {port}",
        ss.len()
    );
    assert_eq!(ss.len(), 40, "ss: {ss:#?}");
    for mode in MODES {
        let established: BTreeSet<(String, String)> = connections_on_port(out, mode, port)
            .into_iter()
            .filter(|(_, r)| text(r, "state") == "ESTABLISHED")
            .map(|(k, _)| k)
            .collect();
        println!(
            "{test}: {mode}: {} established on port {port}",
            established.len()
        );
        assert_eq!(established, ss, "{mode} vs ss");
    }
    drop(held);
}

#[test]
fn provoked_ring_loss_is_counted_resynced_and_recovered() {
    let test = privileged!("provoked_ring_loss_is_counted_resynced_and_recovered");
    let spec = DumpSpec::json("processes", &["--mode", "ring", "--ring-bytes", "4096"]);
    // A spawn burst, then 300 exits at once (one SIGKILL to a process group).
    let (outputs, (burst, killed)) = run_dumps(
        &[spec],
        Duration::from_secs(6),
        Duration::from_millis(800),
        || {
            (
                kernel_support::exec_burst_in_waves("/bin/true", 500, 2, 50),
                kernel_support::mass_exit(300),
            )
        },
    );
    let out = &outputs[0];
    let stats = out.stats_of("ring");
    let exited: BTreeSet<(u64, &str, u64)> = out
        .rows_of("ring")
        .filter(|r| text(r, "state") == "exited" && num(r, "ppid") == me())
        .map(|r| (num(r, "pid"), text(r, "comm"), num(r, "exit_code")))
        .collect();
    let missing_true = burst
        .iter()
        .filter(|(p, _)| !exited.contains(&(*p as u64, "true", 0)))
        .count();
    let missing_killed = killed
        .iter()
        .filter(|(p, _)| !exited.contains(&(*p as u64, "sleep", 137)))
        .count();
    println!(
        "{test}: ring 4096 B, 500 spawned + 300 killed at once: drops {}, kernel_drops {}, \
         resyncs {}, events {}, missing after resync {missing_true} + {missing_killed}",
        num(stats, "drops"),
        num(stats, "kernel_drops"),
        num(stats, "resyncs"),
        num(stats, "events"),
    );
    assert!(num(stats, "drops") > 0, "no loss provoked: {stats}");
    assert!(num(stats, "resyncs") > 0, "{stats}");
    let missing = missing_true + missing_killed;
    assert_eq!(missing, 0, "the resync must restore every exited process");
}

/// Sampled wake-ups (`--ring-wakeup-every`, `--perf-wakeup-every`) change when the consumers
/// are woken, never what they see: a 300-exec burst is complete in both incremental modes.
#[test]
fn sampled_wakeups_lose_nothing_in_ring_and_perf() {
    let test = privileged!("sampled_wakeups_lose_nothing_in_ring_and_perf");
    let spec = DumpSpec::json(
        "processes",
        &[
            "--modes",
            "ring,perf",
            "--ring-wakeup-every",
            "64",
            "--perf-wakeup-every",
            "64",
        ],
    );
    let (out, burst) = dump_exec_burst(
        spec,
        300,
        Duration::from_secs(6),
        Duration::from_millis(1500),
    );
    let burst_pids: BTreeSet<u64> = burst.iter().map(|(p, _)| *p as u64).collect();
    for mode in ["ring", "perf"] {
        let seen: BTreeSet<u64> = out
            .rows_of(mode)
            .filter(|r| text(r, "state") == "exited" && text(r, "comm") == "true")
            .map(|r| num(r, "pid"))
            .filter(|pid| burst_pids.contains(pid))
            .collect();
        let stats = out.stats_of(mode);
        println!(
            "{test}: {mode}: {} of {} seen, drops {}, lag p50/p99 {}/{} ns",
            seen.len(),
            burst_pids.len(),
            num(stats, "drops"),
            num(stats, "lag_p50_ns"),
            num(stats, "lag_p99_ns")
        );
        assert_eq!(seen, burst_pids, "{mode} missed burst processes");
        assert_eq!(num(stats, "drops"), 0, "{mode}: {stats}");
    }
}

/// `--poll-map lru` with a map far smaller than the burst: the kernel's LRU evicts cold (exited)
/// entries, so poll misses some short-lived processes and says so (`unobserved_changes`), while
/// ring still sees every one (its records do not depend on the map) and a process that was
/// running before the dump (seeded from /proc) stays in every table.
#[test]
fn lru_state_map_bounds_kernel_memory_and_poll_reports_what_it_missed() {
    let test = privileged!("lru_state_map_bounds_kernel_memory_and_poll_reports_what_it_missed");
    let spec = DumpSpec::json(
        "processes",
        &[
            "--modes",
            "ring,poll",
            "--poll-map",
            "lru",
            "--state-map-entries",
            "256",
            "--interval",
            "1s",
        ],
    );
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let sleeper_pid = sleeper.id() as u64;
    let (out, burst) = dump_exec_burst(
        spec,
        600,
        Duration::from_secs(6),
        Duration::from_millis(1500),
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let burst_pids: BTreeSet<u64> = burst.iter().map(|(p, _)| *p as u64).collect();
    let seen = |mode: &str| -> usize {
        out.rows_of(mode)
            .filter(|r| text(r, "comm") == "true" && burst_pids.contains(&num(r, "pid")))
            .count()
    };
    let (ring_seen, poll_seen) = (seen("ring"), seen("poll"));
    let poll = out.stats_of("poll");
    println!(
        "{test}: ring saw {ring_seen}/600, poll saw {poll_seen}/600, poll unobserved_changes {}, \
         evictions {}, kernel_bytes {}",
        num(poll, "unobserved_changes"),
        num(poll, "evictions"),
        num(poll, "kernel_bytes")
    );
    assert_eq!(ring_seen, burst_pids.len(), "ring must see every process");
    assert!(
        poll_seen < burst_pids.len(),
        "a 256-entry LRU map cannot hold a 600-exec burst"
    );
    assert!(num(poll, "unobserved_changes") > 0, "{poll}");
    // Bounded kernel memory: the two LRU state maps and the command-line map of 256 entries,
    // far below the default.
    assert!(num(poll, "kernel_bytes") < 1 << 20, "{poll}");
    for mode in ["ring", "poll"] {
        assert!(
            out.rows_of(mode).any(|r| num(r, "pid") == sleeper_pid),
            "{mode} lost the live sleeper"
        );
    }
}

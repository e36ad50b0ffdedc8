//! Real-kernel oracle tests of the connections table: each test runs a loopback workload while
//! `bpftop-ordered dump --modes ring,perf,poll --table connections` collects, reads `ss -tanpi`
//! shortly before the dump's collection window closes (the workload's connections idle by
//! then, so ss and the tool's converged final values must agree exactly), and compares every
//! contract field of every socket in each of ring, perf and poll: state, owner pid and comm,
//! bytes_sent, bytes_received, start_ns, end_ns, states_seen, origin — with the oracle being
//! ss where ss knows (live sockets) and what the test itself did where ss cannot (closed,
//! refused and reset sockets). Each test prints one `matched/total` line per mode; a failure
//! lists oracle and tool side by side.
//!
//! Tolerances: wherever a test says start_ns or end_ns is set for something that happened
//! during the dump, it must lie within the workload's own CLOCK_MONOTONIC window (read by the
//! test just before and just after it ran the workload); byte counters are exact (idle
//! loopback, no retransmissions: ss `bytes_retrans` is subtracted anyway); owners exact (ss -p shows the process: tgid and its leader's comm);
//! poll may miss short-lived connections only as far as its `unobserved_changes` + `drops`
//! count them (test 5), and with a full state map each mode may miss only as many sockets as
//! `map_full` counts (test 7).
mod kernel_support;
#[path = "oracle_support/ss_oracle.rs"]
mod ss_oracle;

use std::{
    collections::{BTreeSet, HashSet},
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use kernel_support::{accept_within, privileged_or_skip, skip_or_fail, DumpOutput};
use ss_oracle::{
    check_mode, check_modes_ran, connections_spec, hold_connections, listener_tuple, me,
    merge_oracle, my_comm, open_pair, parse_ss, raise_nofile, refused_connect, rows_on_ports,
    run_with_oracle, set_accept_timeout, set_linger_zero, show_row, ss_on_ports, stat, stats_line,
    Expect, Pair, PyHelper, Report, SsSocket, Stamp, Tuple, MODES, V4, V6,
};

const ESTAB: &str = "ESTABLISHED";
const KERNEL: &[&str] = &["kernel"];
const SEEDED_OR_KERNEL: &[&str] = &["procfs", "kernel"];
const DURATION: Duration = Duration::from_secs(4);

/// True when python3 runs (the helpers that own sockets in another process need it).
fn python_or_skip(test: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import ctypes, socket"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok || skip_or_fail(test, "python3 is needed for the helper processes")
}

/// True when the test may load probes (see `privileged_or_skip`).
fn privileged(test: &str) -> bool {
    privileged_or_skip(test)
}

/// Rows of `mode` on `ports` that no expectation describes (ghosts, duplicates of a closed
/// connection, rows of sockets that never existed).
fn check_no_extra_rows(
    report: &mut Report,
    out: &DumpOutput,
    mode: &str,
    ports: &[u16],
    expects: &[Expect],
) {
    let known: HashSet<Tuple> = expects.iter().map(|e| e.tuple).collect();
    let extra: Vec<String> = rows_on_ports(out, mode, ports)
        .into_iter()
        .filter(|r| !known.contains(&ss_oracle::row_tuple(r)))
        .map(show_row)
        .collect();
    report.check(extra.is_empty(), || {
        format!(
            "{mode}: {} row(s) on ports {ports:?} that match no socket of the workload or ss:\n    \
             {}",
            extra.len(),
            extra.join("\n    ")
        )
    });
}

/// No row of `mode`'s whole table is a ghost: local port 0, or remote port 0 on a socket that
/// never listened (the old defect: `sport 0, state CLOSE, end_ns null` rows after resets).
fn check_no_ghosts(report: &mut Report, out: &DumpOutput, mode: &str) {
    let ghosts: Vec<String> = out
        .rows_of(mode)
        .filter(|r| {
            let listened = r["states_seen"]
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s == "LISTEN"));
            r["sport"].as_u64() == Some(0) || (r["dport"].as_u64() == Some(0) && !listened)
        })
        .map(show_row)
        .collect();
    report.check(ghosts.is_empty(), || {
        format!(
            "{mode}: {} ghost row(s) (port 0):\n    {}",
            ghosts.len(),
            ghosts.join("\n    ")
        )
    });
}

/// Every ss socket on the workload's ports is one the test expects (else the oracle saw
/// something the test does not describe: a test bug, reported as a failure with the socket).
fn check_oracle_covered(report: &mut Report, uncovered: &[&SsSocket]) {
    report.check(uncovered.is_empty(), || {
        format!(
            "ss lists sockets on the workload's ports that the test does not describe: {}",
            uncovered
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("\n    ")
        )
    });
}

/// The number of `expects` that ss lists (each must be listed when `all_live`).
fn ss_listed(ss: &[SsSocket], ports: &[u16], expects: &[Expect]) -> usize {
    let by = ss_on_ports(ss, ports);
    expects.iter().filter(|e| by.contains_key(&e.tuple)).count()
}

/// A unique set of tuples (the workload must not reuse a 4-tuple, or one row stands for two
/// connections).
fn assert_unique(test: &str, tuples: impl IntoIterator<Item = Tuple>) {
    let mut seen = HashSet::new();
    for t in tuples {
        assert!(
            seen.insert(t),
            "{test}: the workload reused the 4-tuple {t:?}; the test cannot tell its two \
             connections apart (rerun)"
        );
    }
}

/// The ss parser (no privileges needed): states and their contract spelling, addresses with
/// brackets, interface suffixes and `*`, several holders, counters, and the oracle's derived
/// values (retransmissions and the FIN subtracted, none for TIME-WAIT). Exact.
#[test]
fn ss_parser_reads_states_owners_and_counters() {
    let text = "\
LISTEN     0      128          [::1]:52413         [::]:*     users:((\"python3\",pid=4289,fd=3))
\t bbr cwnd:10
ESTAB      0      0       127.0.0.1:60350   127.0.0.1:52413 users:((\"a b\",pid=4289,fd=4),(\"x\",pid=7,fd=9))
\t bbr wscale:10,10 rto:204 mss:38400 bytes_sent:1234 bytes_acked:1235 bytes_retrans:10 bytes_received:37 segs_out:4
TIME-WAIT  0      0       127.0.0.1:40000   127.0.0.1:80
\t                                     
CLOSE-WAIT 1      0      127.0.0.53%lo:80   127.0.0.1:40002 users:((\"srv\",pid=5,fd=7))
\t bbr rto:200 bytes_received:1 segs_out:1
LISTEN     0      4096             *:22             *:*
";
    let s = parse_ss(text);
    assert_eq!(s.len(), 5, "{s:#?}");
    assert_eq!(s[0].contract_state(), "LISTEN");
    assert_eq!(s[0].tuple(), listener_tuple("[::1]:52413".parse().unwrap()));
    assert_eq!(s[0].owner(), Some((4289, "python3")));
    assert_eq!(
        (s[0].expected_sent(), s[0].expected_received()),
        (Some(0), Some(0))
    );
    assert_eq!(s[1].contract_state(), ESTAB);
    assert_eq!(s[1].users.len(), 2);
    assert_eq!(s[1].owner(), Some((4289, "a b")));
    assert_eq!(s[1].users[1].fd, 9);
    assert_eq!(s[1].expected_sent(), Some(1224));
    assert_eq!(s[1].expected_received(), Some(37));
    assert_eq!(s[2].contract_state(), "CLOSE");
    assert_eq!(s[2].owner(), None);
    assert_eq!(s[2].expected_sent(), None, "TIME-WAIT has no counters");
    assert_eq!(s[3].local, "127.0.0.53:80".parse().unwrap());
    assert_eq!(s[3].expected_received(), Some(0), "the FIN is not payload");
    assert_eq!(s[4].local.port(), 22);
    assert_eq!(s[4].peer.port(), 0);
}

/// Server side of test 1: listens on 127.0.0.1 and ::1, accepts `n` connections (odd ones on
/// IPv4), reads exactly 1000·i bytes from connection i and answers 37·i, then renames itself
/// (prctl PR_SET_NAME on its main thread, the group leader) and holds everything.
const SERVE_PY: &str = r#"
import ctypes, socket, sys
n, new_name = int(sys.argv[1]), sys.argv[2].encode()
def listener(family, host):
    l = socket.socket(family, socket.SOCK_STREAM)
    l.bind((host, 0))
    l.listen(512)
    l.settimeout(10)
    return l
l4 = listener(socket.AF_INET, "127.0.0.1")
l6 = listener(socket.AF_INET6, "::1")
print(l4.getsockname()[1], l6.getsockname()[1], flush=True)
held = []
for i in range(1, n + 1):
    s, _ = (l4 if i % 2 else l6).accept()
    s.settimeout(10)
    need = 1000 * i
    while need > 0:
        chunk = s.recv(min(need, 1 << 16))
        if not chunk:
            sys.exit("connection %d closed early" % i)
        need -= len(chunk)
    s.sendall(b"s" * (37 * i))
    held.append(s)
if ctypes.CDLL(None).prctl(15, ctypes.c_char_p(new_name), 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_NAME) failed")
print("ready", flush=True)
sys.stdin.read()
"#;

/// Renames itself, listens on argv[3] (an address), accepts argv[1] connections without any
/// I/O and holds them.
const ACCEPT_PY: &str = r#"
import ctypes, socket, sys
n, name, host = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
if ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_NAME) failed")
l = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
l.bind((host, 0))
l.listen(512)
l.settimeout(10)
print(l.getsockname()[1], flush=True)
held = [l.accept()[0] for _ in range(n)]
print("ready", flush=True)
sys.stdin.read()
"#;

/// Renames itself, connects argv[1] times to argv[3]:argv[4] without any I/O and holds them.
const CONNECT_PY: &str = r#"
import ctypes, socket, sys
n, name, host, port = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], int(sys.argv[4])
if ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_NAME) failed")
held = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
print("ready", flush=True)
sys.stdin.read()
"#;

/// Test 1. 50 loopback connections (25 over 127.0.0.1, 25 over ::1) between the test process
/// (clients) and a python3 server process that renames itself after all I/O; connection i
/// moved 1000·i bytes client → server and 37·i back, then idles.
///
/// Proves, in each of ring, perf and poll, for all 102 sockets (2 listeners, 50 clients, 50
/// servers): exactly one row per socket; state, owner pid and comm exactly as `ss -tanpi`
/// shows them at the same moment (comm follows the server's rename: the owner is named as the
/// process is named now); bytes_sent and bytes_received exactly equal to ss (`bytes_sent −
/// bytes_retrans`, `bytes_received`) and to what the test wrote and read; start_ns set, end_ns
/// null, origin kernel, clients saw SYN-SENT, servers and listeners did not; no other rows on
/// the two ports. Tolerance: none (exact).
#[test]
fn fifty_connections_match_ss_state_owner_renamed_comm_and_exact_bytes() {
    let test = "fifty_connections_match_ss_state_owner_renamed_comm_and_exact_bytes";
    if !privileged(test) || !python_or_skip(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    const N: usize = 50;
    const RENAMED: &str = "bto_renamed";
    let run = run_with_oracle(
        test,
        &connections_spec(&[]),
        DURATION,
        || (),
        |_| {
            let mut py = PyHelper::start(SERVE_PY, &[N.to_string(), RENAMED.into()])
                .expect("start python3 server");
            let ports: Vec<u16> = py
                .line()
                .split_whitespace()
                .map(|p| p.parse().expect("port"))
                .collect();
            let (p4, p6) = (ports[0], ports[1]);
            let mut clients = Vec::new();
            for i in 1..=N {
                let addr = if i % 2 == 1 {
                    SocketAddr::new(V4, p4)
                } else {
                    SocketAddr::new(V6, p6)
                };
                let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                    .expect("connect to the python server");
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                (&s).write_all(&vec![b'c'; 1000 * i]).expect("write");
                let mut back = vec![0u8; 37 * i];
                (&s).read_exact(&mut back).expect("read the answer");
                clients.push((i, s));
            }
            assert_eq!(py.line(), "ready");
            std::thread::sleep(Duration::from_millis(300));
            (py, p4, p6, clients)
        },
    );
    let within = run.within();
    let (py, p4, p6, clients) = &run.during;
    let ports = [*p4, *p6];
    let comm = my_comm();
    let mut expects = Vec::new();
    for l in [SocketAddr::new(V4, *p4), SocketAddr::new(V6, *p6)] {
        expects.push(
            Expect::new(format!("listener {l}"), listener_tuple(l), "LISTEN")
                .owner(py.pid(), RENAMED)
                .bytes(0, 0)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .not_seen(&["SYN-SENT", ESTAB]),
        );
    }
    for (i, s) in clients {
        let t = (s.local_addr().unwrap(), s.peer_addr().unwrap());
        let (i, up, down) = (*i, 1000 * *i as u64, 37 * *i as u64);
        expects.push(
            Expect::new(format!("client {i}"), t, ESTAB)
                .owner(me(), &comm)
                .bytes(up, down)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .seen(&["SYN-SENT", ESTAB]),
        );
        expects.push(
            Expect::new(format!("server {i}"), (t.1, t.0), ESTAB)
                .owner(py.pid(), RENAMED)
                .bytes(down, up)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .seen(&[ESTAB])
                .not_seen(&["SYN-SENT"]),
        );
    }
    let mut report = Report::new(test);
    check_modes_ran(&mut report, &run.out, false);
    let uncovered = merge_oracle(test, &mut expects, &run.ss, &ports);
    check_oracle_covered(&mut report, &uncovered);
    let listed = ss_listed(&run.ss, &ports, &expects);
    report.note(&format!(
        "ss lists {listed}/{} of the workload's sockets",
        expects.len()
    ));
    report.check(listed == expects.len(), || {
        format!(
            "ss lists only {listed} of the {} live sockets (test bug)",
            expects.len()
        )
    });
    for mode in MODES {
        report.strict(
            "vs ss -tanpi and the workload",
            check_mode(&run.out, mode, &expects),
        );
        check_no_extra_rows(&mut report, &run.out, mode, &ports, &expects);
    }
    report.finish();
}

/// What test 2 opened before the dump.
struct Preexisting {
    l4: TcpListener,
    l6: TcpListener,
    open: Vec<(usize, Pair)>,
    closing: Vec<(usize, Pair)>,
    /// (i, client tuple, c2s, s2c) of connections whose client is in TIME-WAIT.
    time_wait: Vec<(usize, Tuple, u64, u64)>,
}

/// Test 2. Connections opened (with known bytes each way) BEFORE the dump starts: (a) 10 stay
/// open and idle; (b) 10 are closed during the run (half client first, half server first);
/// (c) 10 are already in TIME-WAIT when the dump starts (client closed first).
///
/// Proves in every mode: (a) both ends ESTABLISHED, origin kernel or procfs, owner the test
/// process (from the /proc seed), start_ns null (predates the probes), end_ns null, and the
/// LIFETIME byte counts (moved before the dump started) exactly as ss shows them; (b) both ends
/// CLOSE with end_ns set, start_ns null, still owned by the test process (not null), lifetime
/// bytes exact; (c) the TIME-WAIT client sockets are CLOSE rows with end_ns null and start_ns
/// null (not live, never TIME-WAIT), owner null or the test process, bytes null or exact, and
/// their server halves (gone before the dump) have no row; the two listeners LISTEN with
/// start_ns null. Every ss socket on the two ports matches. Tolerance: none (exact).
#[test]
fn connections_from_before_the_dump_keep_owner_lifetime_bytes_and_close_properly() {
    let test = "connections_from_before_the_dump_keep_owner_lifetime_bytes_and_close_properly";
    if !privileged(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    let c2s = |i: usize| 700 * i + 3;
    let s2c = |i: usize| 29 * i + 1;
    let run = run_with_oracle(
        test,
        &connections_spec(&[]),
        DURATION,
        || {
            let l4 = TcpListener::bind((V4, 0)).expect("listen 127.0.0.1");
            let l6 = TcpListener::bind((V6, 0)).expect("listen ::1");
            let mut pair = |i: usize| {
                let l = if i % 2 == 1 { &l4 } else { &l6 };
                (i, open_pair(l, c2s(i), s2c(i)))
            };
            let open: Vec<_> = (1..=10).map(&mut pair).collect();
            let closing: Vec<_> = (11..=20).map(&mut pair).collect();
            let tw_pairs: Vec<_> = (21..=30).map(&mut pair).collect();
            let mut time_wait = Vec::new();
            for (i, p) in tw_pairs {
                time_wait.push((i, p.client_tuple(), p.c2s, p.s2c));
                drop(p.client);
                std::thread::sleep(Duration::from_millis(2));
                drop(p.server);
            }
            std::thread::sleep(Duration::from_millis(100));
            Preexisting {
                l4,
                l6,
                open,
                closing,
                time_wait,
            }
        },
        |pre| {
            std::thread::sleep(Duration::from_millis(300));
            let mut closed = Vec::new();
            for (i, p) in std::mem::take(&mut pre.closing) {
                closed.push((i, p.client_tuple(), p.c2s, p.s2c));
                if i % 2 == 0 {
                    drop(p.client);
                    std::thread::sleep(Duration::from_millis(2));
                    drop(p.server);
                } else {
                    drop(p.server);
                    std::thread::sleep(Duration::from_millis(2));
                    drop(p.client);
                }
            }
            std::thread::sleep(Duration::from_millis(300));
            closed
        },
    );
    let within = run.within();
    let pre = &run.before;
    let ports = [
        pre.l4.local_addr().unwrap().port(),
        pre.l6.local_addr().unwrap().port(),
    ];
    let comm = my_comm();
    let mut expects = Vec::new();
    for l in [&pre.l4, &pre.l6] {
        let a = l.local_addr().unwrap();
        expects.push(
            Expect::new(format!("listener {a}"), listener_tuple(a), "LISTEN")
                .owner(me(), &comm)
                .bytes(0, 0)
                .stamps(Stamp::Null, Stamp::Null)
                .origin(SEEDED_OR_KERNEL),
        );
    }
    for (i, p) in &pre.open {
        let t = p.client_tuple();
        expects.push(
            Expect::new(format!("(a) open client {i}"), t, ESTAB)
                .owner(me(), &comm)
                .bytes(p.c2s, p.s2c)
                .stamps(Stamp::Null, Stamp::Null)
                .origin(SEEDED_OR_KERNEL),
        );
        expects.push(
            Expect::new(format!("(a) open server {i}"), (t.1, t.0), ESTAB)
                .owner(me(), &comm)
                .bytes(p.s2c, p.c2s)
                .stamps(Stamp::Null, Stamp::Null)
                .origin(SEEDED_OR_KERNEL),
        );
    }
    for (i, t, up, down) in &run.during {
        expects.push(
            Expect::new(format!("(b) closed-in-run client {i}"), *t, "CLOSE")
                .owner(me(), &comm)
                .bytes(*up, *down)
                .stamps(Stamp::Null, within)
                .origin(KERNEL),
        );
        expects.push(
            Expect::new(format!("(b) closed-in-run server {i}"), (t.1, t.0), "CLOSE")
                .owner(me(), &comm)
                .bytes(*down, *up)
                .stamps(Stamp::Null, within)
                .origin(KERNEL),
        );
    }
    for (i, t, up, down) in &pre.time_wait {
        expects.push(
            Expect::new(format!("(c) TIME-WAIT client {i}"), *t, "CLOSE")
                .owner_or_null(me(), &comm)
                .bytes_or_null(*up, *down)
                .stamps(Stamp::Null, Stamp::Null)
                .origin(SEEDED_OR_KERNEL),
        );
    }
    let mut report = Report::new(test);
    check_modes_ran(&mut report, &run.out, false);
    let uncovered = merge_oracle(test, &mut expects, &run.ss, &ports);
    check_oracle_covered(&mut report, &uncovered);
    let tw_in_ss = ss_on_ports(&run.ss, &ports)
        .values()
        .filter(|s| s.ss_state == "TIME-WAIT")
        .count();
    report.note(&format!(
        "ss lists {} of the workload's sockets, {tw_in_ss} of them in TIME-WAIT",
        ss_listed(&run.ss, &ports, &expects)
    ));
    report.check(tw_in_ss >= 20, || {
        format!("ss shows only {tw_in_ss} TIME-WAIT sockets, expected at least 20 (test bug)")
    });
    for mode in MODES {
        let label = |g: &str| format!("group {g}");
        for (g, prefix) in [
            ("(a) open", "(a)"),
            ("(b) closed during the run", "(b)"),
            ("(c) TIME-WAIT at start", "(c)"),
            ("listeners", "listener"),
        ] {
            let group: Vec<Expect> = expects
                .iter()
                .filter(|e| e.what.starts_with(prefix))
                .cloned()
                .collect();
            report.strict(&label(g), check_mode(&run.out, mode, &group));
        }
        check_no_ghosts(&mut report, &run.out, mode);
        // The TIME-WAIT connections' server halves were gone before the dump: no row.
        let rows = ss_oracle::rows_by_tuple(&run.out, mode);
        let ghosts: Vec<String> = pre
            .time_wait
            .iter()
            .filter_map(|(i, t, _, _)| {
                rows.get(&(t.1, t.0))
                    .map(|r| format!("(c) server {i} (gone before the dump): {}", show_row(r[0])))
            })
            .collect();
        report.check(ghosts.is_empty(), || {
            format!(
                "{mode}: rows of sockets that no longer existed at start-up:\n    {}",
                ghosts.join("\n    ")
            )
        });
    }
    report.finish();
}

/// Test 2b. The old defect behind test 2 (c): seeded TIME-WAIT rows were live rows that never
/// finished. A finished row is subject to `--retention`, a live one never is: with
/// `--retention 1s`, 10 connections whose client is in TIME-WAIT before the dump (still listed
/// by ss as TIME-WAIT: the kernel keeps them 60 s) and 5 idle open ones (control).
///
/// Proves in every mode: none of the 10 TIME-WAIT remnants is still in the table at the end
/// (each was a finished CLOSE row, reaped 1 s after it was seeded), while all 10 sockets of
/// the open connections are, ESTABLISHED with their owner and lifetime bytes as ss shows them.
/// Tolerance: none.
#[test]
fn seeded_time_wait_rows_are_finished_and_expire_with_retention() {
    let test = "seeded_time_wait_rows_are_finished_and_expire_with_retention";
    if !privileged(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    let run = run_with_oracle(
        test,
        &connections_spec(&["--retention", "1s"]),
        DURATION,
        || {
            let listener = TcpListener::bind((V4, 0)).expect("listen");
            let open: Vec<Pair> = (1..=5)
                .map(|i| open_pair(&listener, 100 * i, 10 * i))
                .collect();
            let mut time_wait = Vec::new();
            for i in 1..=10 {
                let p = open_pair(&listener, 50 * i, 5 * i);
                time_wait.push(p.client_tuple());
                drop(p.client);
                std::thread::sleep(Duration::from_millis(2));
                drop(p.server);
            }
            std::thread::sleep(Duration::from_millis(100));
            (listener, open, time_wait)
        },
        |_| std::thread::sleep(Duration::from_millis(200)),
    );
    let (listener, open, time_wait) = &run.before;
    let port = listener.local_addr().unwrap().port();
    let comm = my_comm();
    let mut expects = Vec::new();
    for (n, p) in open.iter().enumerate() {
        let t = p.client_tuple();
        expects.push(
            Expect::new(format!("open client {n}"), t, ESTAB)
                .owner(me(), &comm)
                .bytes(p.c2s, p.s2c)
                .stamps(Stamp::Null, Stamp::Null)
                .origin(SEEDED_OR_KERNEL),
        );
        expects.push(
            Expect::new(format!("open server {n}"), (t.1, t.0), ESTAB)
                .owner(me(), &comm)
                .bytes(p.s2c, p.c2s)
                .stamps(Stamp::Null, Stamp::Null)
                .origin(SEEDED_OR_KERNEL),
        );
    }
    let mut report = Report::new(test);
    check_modes_ran(&mut report, &run.out, false);
    merge_oracle(test, &mut expects, &run.ss, &[port]);
    let by_ss = ss_on_ports(&run.ss, &[port]);
    let tw_listed = time_wait
        .iter()
        .filter(|t| by_ss.get(t).is_some_and(|s| s.ss_state == "TIME-WAIT"))
        .count();
    report.note(&format!(
        "ss still lists {tw_listed}/10 of the remnants as TIME-WAIT"
    ));
    report.check(tw_listed == 10, || {
        format!("ss lists only {tw_listed} of the 10 TIME-WAIT remnants (test bug)")
    });
    for mode in MODES {
        let rows = ss_oracle::rows_by_tuple(&run.out, mode);
        let live: Vec<String> = time_wait
            .iter()
            .filter_map(|t| rows.get(t))
            .map(|r| show_row(r[0]))
            .collect();
        report.note(&format!(
            "{mode}: {}/10 seeded TIME-WAIT rows left after a 1s retention",
            live.len()
        ));
        report.check(live.is_empty(), || {
            format!(
                "{mode}: {} seeded TIME-WAIT row(s) outlived --retention 1s (not finished):\n    \
                 {}",
                live.len(),
                live.join("\n    ")
            )
        });
        report.strict(
            "open connections (control)",
            check_mode(&run.out, mode, &expects),
        );
    }
    report.finish();
}

/// Test 3. 100 connect()s to a closed loopback port (refused: RST to the SYN), each from a
/// socket the kernel auto-binds; interleaved with them, 50 connections accepted (without I/O)
/// by a python3 process named `bto_acceptor` and 100 accepted (without I/O) by the test
/// process itself, on new listeners.
///
/// Proves in every mode: exactly 100 rows to the closed port, one per refused connect (by the
/// local port the kernel chose), each SYN-SENT → CLOSE (states_seen has SYN-SENT and CLOSE, not
/// ESTABLISHED), owned by the test process, end_ns and start_ns set, bytes 0; no accepted row
/// and no listener has SYN-SENT in states_seen, and each accepted row is owned by its
/// listener's process as ss -p shows it (the python process for its 50: never the connect()
/// owner, the test process); every socket on the two listener ports matches ss. Tolerance:
/// none.
#[test]
fn refused_connects_are_syn_sent_close_rows_and_never_lend_their_owner() {
    let test = "refused_connects_are_syn_sent_close_rows_and_never_lend_their_owner";
    if !privileged(test) || !python_or_skip(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    const ACCEPTOR: &str = "bto_acceptor";
    struct Work {
        closed: u16,
        refused: Vec<u16>,
        py: PyHelper,
        py_port: u16,
        to_py: Vec<TcpStream>,
        listener: TcpListener,
        pairs: Vec<(TcpStream, TcpStream)>,
    }
    let run = run_with_oracle(
        test,
        &connections_spec(&[]),
        DURATION,
        // A free port, taken (bind + listen + close) before the dump so that its short-lived
        // listener is no row of the dump.
        || {
            TcpListener::bind((V4, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        },
        |closed| {
            let closed = *closed;
            let mut py = PyHelper::start(
                ACCEPT_PY,
                &["50".into(), ACCEPTOR.into(), "127.0.0.1".into()],
            )
            .expect("start python3 acceptor");
            let py_port: u16 = py.line().trim().parse().expect("port");
            let listener = TcpListener::bind((V4, 0)).expect("listen");
            let mut w = Work {
                closed,
                refused: Vec::new(),
                py,
                py_port,
                to_py: Vec::new(),
                listener,
                pairs: Vec::new(),
            };
            let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, closed);
            let py_addr = SocketAddr::new(V4, py_port);
            let addr = w.listener.local_addr().unwrap();
            for _round in 0..2 {
                for _ in 0..50 {
                    w.refused
                        .push(refused_connect(to).expect("connect to the closed port refused"));
                }
                for _ in 0..25 {
                    w.to_py.push(
                        TcpStream::connect_timeout(&py_addr, Duration::from_secs(10))
                            .expect("connect to the python acceptor"),
                    );
                }
                for _ in 0..50 {
                    let c = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                        .expect("connect");
                    let s = accept_within(&w.listener, Duration::from_secs(10)).expect("accept");
                    w.pairs.push((c, s));
                }
            }
            assert_eq!(w.py.line(), "ready");
            std::thread::sleep(Duration::from_millis(300));
            w
        },
    );
    let within = run.within();
    let w = &run.during;
    let comm = my_comm();
    let lport = w.listener.local_addr().unwrap().port();
    let ports = [w.py_port, lport];
    let distinct: BTreeSet<u16> = w.refused.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        100,
        "{test}: the kernel reused a local port among the refused connects"
    );
    let closed_addr = SocketAddr::new(V4, w.closed);
    let refused: Vec<Expect> = w
        .refused
        .iter()
        .enumerate()
        .map(|(n, port)| {
            Expect::new(
                format!("refused connect {n}"),
                (SocketAddr::new(V4, *port), closed_addr),
                "CLOSE",
            )
            .owner(me(), &comm)
            .bytes(0, 0)
            .stamps(within, within)
            .origin(KERNEL)
            .seen(&["SYN-SENT", "CLOSE"])
            .not_seen(&[ESTAB, "SYN-RECV", "LISTEN"])
        })
        .collect();
    let mut expects = Vec::new();
    let py_listen = SocketAddr::new(V4, w.py_port);
    expects.push(
        Expect::new("python listener", listener_tuple(py_listen), "LISTEN")
            .owner(w.py.pid(), ACCEPTOR)
            .bytes(0, 0)
            .stamps(within, Stamp::Null)
            .origin(KERNEL)
            .not_seen(&["SYN-SENT", ESTAB]),
    );
    expects.push(
        Expect::new(
            "test listener",
            listener_tuple(w.listener.local_addr().unwrap()),
            "LISTEN",
        )
        .owner(me(), &comm)
        .bytes(0, 0)
        .stamps(within, Stamp::Null)
        .origin(KERNEL)
        .not_seen(&["SYN-SENT", ESTAB]),
    );
    for (n, c) in w.to_py.iter().enumerate() {
        let t = (c.local_addr().unwrap(), c.peer_addr().unwrap());
        expects.push(
            Expect::new(format!("client {n} of the python listener"), t, ESTAB)
                .owner(me(), &comm)
                .bytes(0, 0)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .seen(&["SYN-SENT", ESTAB]),
        );
        expects.push(
            Expect::new(format!("accepted {n} by python"), (t.1, t.0), ESTAB)
                .owner(w.py.pid(), ACCEPTOR)
                .bytes(0, 0)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .seen(&[ESTAB])
                .not_seen(&["SYN-SENT"]),
        );
    }
    for (n, (c, _s)) in w.pairs.iter().enumerate() {
        let t = (c.local_addr().unwrap(), c.peer_addr().unwrap());
        expects.push(
            Expect::new(format!("client {n} of the test listener"), t, ESTAB)
                .owner(me(), &comm)
                .bytes(0, 0)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .seen(&["SYN-SENT", ESTAB]),
        );
        expects.push(
            Expect::new(format!("accepted {n} by the test"), (t.1, t.0), ESTAB)
                .owner(me(), &comm)
                .bytes(0, 0)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .seen(&[ESTAB])
                .not_seen(&["SYN-SENT"]),
        );
    }
    let mut report = Report::new(test);
    check_modes_ran(&mut report, &run.out, false);
    let uncovered = merge_oracle(test, &mut expects, &run.ss, &ports);
    check_oracle_covered(&mut report, &uncovered);
    let listed = ss_listed(&run.ss, &ports, &expects);
    report.check(listed == expects.len(), || {
        format!(
            "ss lists {listed} of {} live sockets (test bug)",
            expects.len()
        )
    });
    let refused_tuples: HashSet<Tuple> = refused.iter().map(|e| e.tuple).collect();
    for mode in MODES {
        report.strict("refused connects", check_mode(&run.out, mode, &refused));
        let to_closed: Vec<String> = run
            .out
            .rows_of(mode)
            .filter(|r| r["dport"].as_u64() == Some(w.closed as u64))
            .filter(|r| !refused_tuples.contains(&ss_oracle::row_tuple(r)))
            .map(show_row)
            .collect();
        report.check(to_closed.is_empty(), || {
            format!(
                "{mode}: {} row(s) to the closed port that are none of the 100 refused \
                 connects:\n    {}",
                to_closed.len(),
                to_closed.join("\n    ")
            )
        });
        check_no_ghosts(&mut report, &run.out, mode);
        // The defect signature, counted on its own for the summary.
        let rows = ss_oracle::rows_by_tuple(&run.out, mode);
        let accepted: Vec<&Expect> = expects
            .iter()
            .filter(|e| {
                e.what.starts_with("accepted")
                    || (e.what.ends_with(" listener") && !e.what.starts_with("client"))
            })
            .collect();
        let with_syn_sent = accepted
            .iter()
            .filter_map(|e| rows.get(&e.tuple))
            .filter(|r| {
                r[0]["states_seen"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|s| s == "SYN-SENT"))
            })
            .count();
        let stale_owner = accepted
            .iter()
            .filter(|e| e.what.contains("by python") || e.what == "python listener")
            .filter_map(|e| rows.get(&e.tuple))
            .filter(|r| r[0]["pid"].as_u64() == Some(me() as u64))
            .count();
        report.note(&format!(
            "{mode}: {} accepted rows + listeners: {with_syn_sent} with SYN-SENT seen, \
             {stale_owner} of the python process's owned by the connect() caller",
            accepted.len()
        ));
        report.strict(
            "listeners and accepted/connected sockets vs ss",
            check_mode(&run.out, mode, &expects),
        );
        check_no_extra_rows(&mut report, &run.out, mode, &ports, &expects);
    }
    report.finish();
}

/// Test 4. 20 connections where the client writes 5 bytes and closes with SO_LINGER 0 (an RST
/// instead of a FIN); afterwards the server recv()s on its reset socket (half of the server
/// sockets are then closed, half kept open).
///
/// Proves in every mode: no ghost rows — no row with local port 0, no row on the workload's
/// ports other than the 20 clients, 20 servers and the listener (the old defect was extra rows
/// `sport 0, state CLOSE, end_ns null` that never finished); each client row CLOSE with
/// bytes_sent 5, bytes_received 0, end_ns set; each server row CLOSE with bytes_received 5 (the
/// RST takes no sequence number: nothing is subtracted), bytes_sent 0, end_ns set, no SYN-SENT;
/// all owned by the test process; the listener matches ss. Tolerance: none.
#[test]
fn rst_closes_leave_no_ghost_rows_and_servers_count_five_bytes() {
    let test = "rst_closes_leave_no_ghost_rows_and_servers_count_five_bytes";
    if !privileged(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    struct Work {
        listener: TcpListener,
        clients: Vec<Tuple>,
        reads: Vec<String>,
        _kept: Vec<TcpStream>,
    }
    let run = run_with_oracle(
        test,
        &connections_spec(&[]),
        DURATION,
        || (),
        |_| {
            let listener = TcpListener::bind((V4, 0)).expect("listen");
            let addr = listener.local_addr().unwrap();
            let mut servers = Vec::new();
            let mut clients = Vec::new();
            for _ in 0..20 {
                let client =
                    TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
                let server = accept_within(&listener, Duration::from_secs(10)).expect("accept");
                clients.push((client.local_addr().unwrap(), client.peer_addr().unwrap()));
                (&client).write_all(b"hello").expect("write 5 bytes");
                set_linger_zero(&client);
                drop(client); // RST
                servers.push(server);
            }
            std::thread::sleep(Duration::from_millis(50));
            let mut reads = Vec::new();
            let mut kept = Vec::new();
            for (n, server) in servers.into_iter().enumerate() {
                server
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut buf = [0u8; 64];
                let first = (&server).read(&mut buf);
                let second = (&server).read(&mut buf);
                reads.push(format!("{first:?}/{second:?}"));
                if n % 2 == 0 {
                    kept.push(server);
                }
            }
            std::thread::sleep(Duration::from_millis(300));
            Work {
                listener,
                clients,
                reads,
                _kept: kept,
            }
        },
    );
    let within = run.within();
    let w = &run.during;
    let comm = my_comm();
    assert_unique(test, w.clients.iter().copied());
    // Only the listener's port: a client's ephemeral port may be another connection's too.
    let ports = [w.listener.local_addr().unwrap().port()];
    let mut report = Report::new(test);
    report.note(&format!(
        "server reads after the RST (first/second recv): {:?}",
        w.reads.iter().collect::<BTreeSet<_>>()
    ));
    let mut expects = vec![Expect::new(
        "listener",
        listener_tuple(w.listener.local_addr().unwrap()),
        "LISTEN",
    )
    .owner(me(), &comm)
    .bytes(0, 0)
    .stamps(within, Stamp::Null)
    .origin(KERNEL)];
    for (n, t) in w.clients.iter().enumerate() {
        expects.push(
            Expect::new(format!("reset client {n}"), *t, "CLOSE")
                .owner(me(), &comm)
                .bytes(5, 0)
                .stamps(within, within)
                .origin(KERNEL)
                .seen(&["SYN-SENT", ESTAB, "CLOSE"]),
        );
        expects.push(
            Expect::new(format!("reset server {n}"), (t.1, t.0), "CLOSE")
                .owner(me(), &comm)
                .bytes(0, 5)
                .stamps(within, within)
                .origin(KERNEL)
                .seen(&[ESTAB, "CLOSE"])
                .not_seen(&["SYN-SENT"]),
        );
    }
    check_modes_ran(&mut report, &run.out, false);
    let uncovered = merge_oracle(test, &mut expects, &run.ss, &ports);
    check_oracle_covered(&mut report, &uncovered);
    for mode in MODES {
        check_no_ghosts(&mut report, &run.out, mode);
        report.strict("reset connections", check_mode(&run.out, mode, &expects));
        check_no_extra_rows(&mut report, &run.out, mode, &ports, &expects);
    }
    report.finish();
}

/// Test 5. 500 short connections from 2 client threads (connect, send 100 B, recv 10 B, close)
/// to 2 server threads (accept, recv 100 B, send 10 B, recv the FIN, close).
///
/// Proves: in ring and perf, all 500 client rows and all 500 server rows are present, CLOSE,
/// end_ns and start_ns set, owned by the test process, with exact bytes (client 100 sent / 10
/// received, server 10 / 100 — the FIN is not counted); the 500 client TIME-WAIT sockets ss
/// shows are CLOSE rows. Poll: a row may be missing or stale only as far as poll counted what it
/// could not see: missing + stale ≤ unobserved_changes + drops. Tolerance: exact for ring and
/// perf; the counted bound for poll.
#[test]
fn five_hundred_short_connections_are_all_listed_with_exact_bytes() {
    let test = "five_hundred_short_connections_are_all_listed_with_exact_bytes";
    if !privileged(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    const N: usize = 500;
    let run = run_with_oracle(
        test,
        &connections_spec(&[]),
        DURATION,
        || (),
        |_| {
            let listener = TcpListener::bind((V4, 0)).expect("listen");
            set_accept_timeout(&listener, Duration::from_secs(10));
            let addr = listener.local_addr().unwrap();
            let taken = Arc::new(AtomicUsize::new(0));
            let servers: Vec<_> = (0..2)
                .map(|t| {
                    let l = listener.try_clone().unwrap();
                    let taken = taken.clone();
                    std::thread::Builder::new()
                        .name(format!("bto-short-s{t}"))
                        .spawn(move || -> std::io::Result<()> {
                            while taken.fetch_add(1, Ordering::SeqCst) < N {
                                let (s, _) = l.accept()?;
                                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                                let mut req = [0u8; 100];
                                (&s).read_exact(&mut req)?;
                                (&s).write_all(&[b'r'; 10])?;
                                let mut rest = [0u8; 16];
                                while (&s).read(&mut rest)? > 0 {}
                            }
                            Ok(())
                        })
                        .unwrap()
                })
                .collect();
            let clients: Vec<_> = (0..2)
                .map(|t| {
                    std::thread::Builder::new()
                        .name(format!("bto-short-c{t}"))
                        .spawn(move || -> std::io::Result<Vec<Tuple>> {
                            (0..N / 2)
                                .map(|_| {
                                    let s =
                                        TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
                                    s.set_read_timeout(Some(Duration::from_secs(10)))?;
                                    let t = (s.local_addr()?, s.peer_addr()?);
                                    (&s).write_all(&[b'q'; 100])?;
                                    let mut answer = [0u8; 10];
                                    (&s).read_exact(&mut answer)?;
                                    Ok(t)
                                })
                                .collect()
                        })
                        .unwrap()
                })
                .collect();
            let tuples: Vec<Tuple> = clients
                .into_iter()
                .flat_map(|h| h.join().unwrap().expect("client thread"))
                .collect();
            for s in servers {
                s.join().unwrap().expect("server thread");
            }
            std::thread::sleep(Duration::from_millis(300));
            (listener, tuples)
        },
    );
    let within = run.within();
    let (listener, tuples) = &run.during;
    assert_eq!(tuples.len(), N);
    assert_unique(test, tuples.iter().copied());
    let comm = my_comm();
    let port = listener.local_addr().unwrap().port();
    let mut expects = vec![Expect::new(
        "listener",
        listener_tuple(listener.local_addr().unwrap()),
        "LISTEN",
    )
    .owner(me(), &comm)
    .bytes(0, 0)
    .stamps(within, Stamp::Null)
    .origin(KERNEL)];
    for (n, t) in tuples.iter().enumerate() {
        expects.push(
            Expect::new(format!("short client {n}"), *t, "CLOSE")
                .owner(me(), &comm)
                .bytes(100, 10)
                .stamps(within, within)
                .origin(KERNEL)
                .seen(&["SYN-SENT", ESTAB, "CLOSE"]),
        );
        expects.push(
            Expect::new(format!("short server {n}"), (t.1, t.0), "CLOSE")
                .owner(me(), &comm)
                .bytes(10, 100)
                .stamps(within, within)
                .origin(KERNEL)
                .seen(&[ESTAB, "CLOSE"])
                .not_seen(&["SYN-SENT"]),
        );
    }
    let mut report = Report::new(test);
    check_modes_ran(&mut report, &run.out, false);
    let uncovered = merge_oracle(test, &mut expects, &run.ss, &[port]);
    check_oracle_covered(&mut report, &uncovered);
    let tw = ss_on_ports(&run.ss, &[port])
        .values()
        .filter(|s| s.ss_state == "TIME-WAIT")
        .count();
    report.note(&format!("ss shows {tw} TIME-WAIT sockets on the port"));
    for mode in MODES {
        report.note(&stats_line(&run.out, mode));
        let c = check_mode(&run.out, mode, &expects);
        if mode == "poll" {
            let missed = c.missing + c.wrong;
            let counted =
                stat(&run.out, mode, "unobserved_changes") + stat(&run.out, mode, "drops");
            report.note(&format!(
                "poll: {}/{} match, missed {missed} (missing {}, stale {}) ≤ counted {counted}?",
                c.matched, c.total, c.missing, c.wrong
            ));
            if missed as u64 > counted {
                report.fail(format!(
                    "poll missed {missed} rows but counted only {counted} \
                     (unobserved_changes + drops):"
                ));
                report.strict("short connections (poll, uncounted loss)", c);
            }
        } else {
            report.strict("short connections", c);
        }
        check_no_extra_rows(&mut report, &run.out, mode, &[port], &expects);
        check_no_ghosts(&mut report, &run.out, mode);
    }
    report.finish();
}

/// Test 6. Accepted sockets that never do any I/O: 20 connections from the test process to a
/// python3 process (`bto_listener`, listening on ::1) that accepts them; 20 connections from
/// another python3 process (`bto_connector`) to a listener of the test process, which accepts.
/// No byte moves.
///
/// Proves in every mode: each accepted socket's owner is the listening (and accepting) process
/// exactly as ss -p shows it — pid and comm, never null — and each connecting socket's owner is
/// its connect() caller; bytes 0 each way; states ESTABLISHED/LISTEN as ss shows; no SYN-SENT
/// on accepted sockets. Run with `--kernel-only`: no `procfs` row is printed. Tolerance: none.
#[test]
fn accepted_sockets_without_io_are_owned_by_the_accepting_process() {
    let test = "accepted_sockets_without_io_are_owned_by_the_accepting_process";
    if !privileged(test) || !python_or_skip(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    const LISTENER: &str = "bto_listener";
    const CONNECTOR: &str = "bto_connector";
    const N: usize = 20;
    struct Work {
        py_listener: PyHelper,
        py_port: u16,
        to_py: Vec<TcpStream>,
        py_connector: PyHelper,
        listener: TcpListener,
        accepted: Vec<TcpStream>,
    }
    let run = run_with_oracle(
        test,
        &connections_spec(&["--kernel-only"]),
        DURATION,
        || (),
        |_| {
            let mut py_listener =
                PyHelper::start(ACCEPT_PY, &[N.to_string(), LISTENER.into(), "::1".into()])
                    .expect("start python3 listener");
            let py_port: u16 = py_listener.line().trim().parse().expect("port");
            let to_py: Vec<TcpStream> = (0..N)
                .map(|_| {
                    TcpStream::connect_timeout(
                        &SocketAddr::new(V6, py_port),
                        Duration::from_secs(10),
                    )
                    .expect("connect to the python listener")
                })
                .collect();
            assert_eq!(py_listener.line(), "ready");
            let listener = TcpListener::bind((V4, 0)).expect("listen");
            let lport = listener.local_addr().unwrap().port();
            let mut py_connector = PyHelper::start(
                CONNECT_PY,
                &[
                    N.to_string(),
                    CONNECTOR.into(),
                    "127.0.0.1".into(),
                    lport.to_string(),
                ],
            )
            .expect("start python3 connector");
            let accepted: Vec<TcpStream> = (0..N)
                .map(|_| accept_within(&listener, Duration::from_secs(10)).expect("accept"))
                .collect();
            assert_eq!(py_connector.line(), "ready");
            std::thread::sleep(Duration::from_millis(300));
            Work {
                py_listener,
                py_port,
                to_py,
                py_connector,
                listener,
                accepted,
            }
        },
    );
    let within = run.within();
    let w = &run.during;
    let comm = my_comm();
    let laddr = w.listener.local_addr().unwrap();
    let ports = [w.py_port, laddr.port()];
    let mut expects = vec![
        Expect::new(
            "python listener",
            listener_tuple(SocketAddr::new(V6, w.py_port)),
            "LISTEN",
        )
        .owner(w.py_listener.pid(), LISTENER)
        .bytes(0, 0)
        .stamps(within, Stamp::Null)
        .origin(KERNEL),
        Expect::new("test listener", listener_tuple(laddr), "LISTEN")
            .owner(me(), &comm)
            .bytes(0, 0)
            .stamps(within, Stamp::Null)
            .origin(KERNEL),
    ];
    for (n, c) in w.to_py.iter().enumerate() {
        let t = (c.local_addr().unwrap(), c.peer_addr().unwrap());
        expects.push(
            Expect::new(format!("test client {n}"), t, ESTAB)
                .owner(me(), &comm)
                .bytes(0, 0)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .seen(&["SYN-SENT"]),
        );
        expects.push(
            Expect::new(
                format!("accepted {n} by python (no I/O)"),
                (t.1, t.0),
                ESTAB,
            )
            .owner(w.py_listener.pid(), LISTENER)
            .bytes(0, 0)
            .stamps(within, Stamp::Null)
            .origin(KERNEL)
            .not_seen(&["SYN-SENT"]),
        );
    }
    for (n, s) in w.accepted.iter().enumerate() {
        let t = (s.local_addr().unwrap(), s.peer_addr().unwrap());
        expects.push(
            Expect::new(format!("accepted {n} by the test (no I/O)"), t, ESTAB)
                .owner(me(), &comm)
                .bytes(0, 0)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .not_seen(&["SYN-SENT"]),
        );
        expects.push(
            Expect::new(format!("python client {n}"), (t.1, t.0), ESTAB)
                .owner(w.py_connector.pid(), CONNECTOR)
                .bytes(0, 0)
                .stamps(within, Stamp::Null)
                .origin(KERNEL)
                .seen(&["SYN-SENT"]),
        );
    }
    let mut report = Report::new(test);
    check_modes_ran(&mut report, &run.out, true);
    let uncovered = merge_oracle(test, &mut expects, &run.ss, &ports);
    check_oracle_covered(&mut report, &uncovered);
    let listed = ss_listed(&run.ss, &ports, &expects);
    report.check(listed == expects.len(), || {
        format!(
            "ss lists {listed} of {} live sockets (test bug)",
            expects.len()
        )
    });
    let accepted_only: Vec<Expect> = expects
        .iter()
        .filter(|e| e.what.starts_with("accepted"))
        .cloned()
        .collect();
    for mode in MODES {
        report.strict(
            "accepted sockets without I/O",
            check_mode(&run.out, mode, &accepted_only),
        );
        report.strict("every socket vs ss", check_mode(&run.out, mode, &expects));
        check_no_extra_rows(&mut report, &run.out, mode, &ports, &expects);
    }
    report.finish();
}

/// Test 7. `--state-map-entries 256` (both kernel state maps hold 256 entries), with small
/// transports (`--ring-bytes 4096 --perf-pages 1`) so ring and perf lose records and resync
/// from the incomplete maps: first 50 held connections (100 sockets, + 2 listeners) that fit,
/// then 950 more (1,900 sockets) that cannot all fit: 2,000 held sockets in total.
///
/// Proves in every mode: map_full > 0 and drops ≥ map_full; the 102 sockets that fit before the
/// map filled are all still listed, exactly as ss shows them (a resync of an incomplete map
/// must not delete live rows); of the rest, every listed row matches ss exactly and the missing
/// ones are at most map_full (the loss is counted); ring and perf list at least what poll lists,
/// and every socket poll lists. Tolerance: missing ≤ map_full for the second batch; exact
/// otherwise.
#[test]
fn full_state_map_counts_map_full_and_keeps_the_live_rows_it_had() {
    let test = "full_state_map_counts_map_full_and_keeps_the_live_rows_it_had";
    if !privileged(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    let limit = raise_nofile(4096);
    if limit < 2_100 {
        skip_or_fail(test, &format!("RLIMIT_NOFILE {limit} is below 2,100"));
        return;
    }
    let spec = connections_spec(&[
        "--state-map-entries",
        "256",
        "--ring-bytes",
        "4096",
        "--perf-pages",
        "1",
    ]);
    let run = run_with_oracle(
        test,
        &spec,
        DURATION,
        || (),
        |_| {
            let first_listener = TcpListener::bind((V4, 0)).expect("listen");
            let second_listener = TcpListener::bind((V4, 0)).expect("listen");
            let first = hold_connections(&first_listener, 50);
            std::thread::sleep(Duration::from_millis(1200)); // every mode, poll too, saw them
            let second = hold_connections(&second_listener, 950);
            std::thread::sleep(Duration::from_millis(300));
            (first_listener, second_listener, first, second)
        },
    );
    let within = run.within();
    let (l1, l2, first, second) = &run.during;
    let comm = my_comm();
    let ports = [
        l1.local_addr().unwrap().port(),
        l2.local_addr().unwrap().port(),
    ];
    let held = |label: &str, pairs: &[Pair]| -> Vec<Expect> {
        pairs
            .iter()
            .enumerate()
            .flat_map(|(n, p)| {
                let t = p.client_tuple();
                [
                    Expect::new(format!("{label} client {n}"), t, ESTAB)
                        .owner(me(), &comm)
                        .bytes(4, 4)
                        .stamps(within, Stamp::Null)
                        .origin(KERNEL),
                    Expect::new(format!("{label} server {n}"), (t.1, t.0), ESTAB)
                        .owner(me(), &comm)
                        .bytes(4, 4)
                        .stamps(within, Stamp::Null)
                        .origin(KERNEL),
                ]
            })
            .collect()
    };
    let mut early = held("first", first);
    for l in [l1, l2] {
        let a = l.local_addr().unwrap();
        early.push(
            Expect::new(format!("listener {a}"), listener_tuple(a), "LISTEN")
                .owner(me(), &comm)
                .bytes(0, 0)
                .stamps(within, Stamp::Null)
                .origin(KERNEL),
        );
    }
    let mut late = held("second", second);
    let mut report = Report::new(test);
    check_modes_ran(&mut report, &run.out, false);
    let mut all: Vec<Expect> = early.iter().chain(late.iter()).cloned().collect();
    let uncovered = merge_oracle(test, &mut all, &run.ss, &ports);
    check_oracle_covered(&mut report, &uncovered);
    let listed = ss_listed(&run.ss, &ports, &all);
    report.check(listed == all.len(), || {
        format!("ss lists {listed} of {} live sockets (test bug)", all.len())
    });
    merge_oracle(test, &mut early, &run.ss, &ports);
    merge_oracle(test, &mut late, &run.ss, &ports);
    let mut listed_late = Vec::new();
    for mode in MODES {
        report.note(&stats_line(&run.out, mode));
        let map_full = stat(&run.out, mode, "map_full");
        let drops = stat(&run.out, mode, "drops");
        report.check(map_full > 0, || {
            format!("{mode}: map_full is 0 with 2,000 held sockets in a 256-entry map")
        });
        report.check(drops >= map_full, || {
            format!("{mode}: drops {drops} < map_full {map_full} (map_full counts as drops)")
        });
        report.strict(
            "sockets that fit before the map filled",
            check_mode(&run.out, mode, &early),
        );
        let c = check_mode(&run.out, mode, &late);
        let present = c.total - c.missing;
        report.note(&format!(
            "{mode}: second batch: {present}/{} listed, {} wrong, missing {} ≤ map_full \
             {map_full}?",
            c.total, c.wrong, c.missing
        ));
        report.check(c.missing as u64 <= map_full, || {
            format!(
                "{mode}: {} held sockets missing but map_full counts only {map_full}",
                c.missing
            )
        });
        let rows = ss_oracle::rows_by_tuple(&run.out, mode);
        let listed: HashSet<Tuple> = late
            .iter()
            .map(|e| e.tuple)
            .filter(|t| rows.contains_key(t))
            .collect();
        for p in c.problems.iter().filter(|p| !p.contains(": no row |")) {
            report.fail(p.clone());
        }
        listed_late.push((mode, listed));
        check_no_extra_rows(&mut report, &run.out, mode, &ports, &all);
    }
    let poll = &listed_late[2].1;
    for (mode, listed) in &listed_late[..2] {
        let lost: Vec<&Tuple> = poll.difference(listed).collect();
        report.check(lost.is_empty(), || {
            format!(
                "{mode}: {} held sockets that poll lists (they are in the state map) are not in \
                 {mode}'s table, e.g. {:?}",
                lost.len(),
                lost.iter().take(5).collect::<Vec<_>>()
            )
        });
        report.check(listed.len() >= poll.len(), || {
            format!(
                "{mode} lists {} held sockets, fewer than poll's {}",
                listed.len(),
                poll.len()
            )
        });
    }
    report.finish();
}

/// Test 7b. With the default state-map size, 10,000 held sockets (5,000 loopback connections
/// with 4 bytes each way) are all listed.
///
/// Proves in every mode: all 10,001 sockets (and the listener) present, ESTABLISHED/LISTEN,
/// owned by the test process, bytes exactly as ss shows them (4/4), start_ns set; map_full 0.
/// Tolerance: none.
#[test]
fn default_state_map_lists_ten_thousand_held_sockets() {
    let test = "default_state_map_lists_ten_thousand_held_sockets";
    if !privileged(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    let limit = raise_nofile(12_000);
    let connections = if limit >= 10_200 {
        5_000
    } else if limit >= 4_200 {
        eprintln!("note: {test}: RLIMIT_NOFILE {limit}: holding 4,000 sockets instead of 10,000");
        2_000
    } else {
        skip_or_fail(test, &format!("RLIMIT_NOFILE {limit} is below 4,200"));
        return;
    };
    let run = run_with_oracle(
        test,
        &connections_spec(&[]),
        Duration::from_secs(6),
        || (),
        |_| {
            let listener = TcpListener::bind((V4, 0)).expect("listen");
            let started = Instant::now();
            let pairs = hold_connections(&listener, connections);
            println!(
                "{test}: opened {} sockets in {:?}",
                2 * pairs.len(),
                started.elapsed()
            );
            std::thread::sleep(Duration::from_millis(300));
            (listener, pairs)
        },
    );
    let within = run.within();
    let (listener, pairs) = &run.during;
    let comm = my_comm();
    let addr = listener.local_addr().unwrap();
    let mut expects = vec![Expect::new("listener", listener_tuple(addr), "LISTEN")
        .owner(me(), &comm)
        .bytes(0, 0)
        .stamps(within, Stamp::Null)
        .origin(KERNEL)];
    for (n, p) in pairs.iter().enumerate() {
        let t = p.client_tuple();
        expects.push(
            Expect::new(format!("client {n}"), t, ESTAB)
                .owner(me(), &comm)
                .bytes(4, 4)
                .stamps(within, Stamp::Null)
                .origin(KERNEL),
        );
        expects.push(
            Expect::new(format!("server {n}"), (t.1, t.0), ESTAB)
                .owner(me(), &comm)
                .bytes(4, 4)
                .stamps(within, Stamp::Null)
                .origin(KERNEL),
        );
    }
    let mut report = Report::new(test);
    check_modes_ran(&mut report, &run.out, false);
    let uncovered = merge_oracle(test, &mut expects, &run.ss, &[addr.port()]);
    check_oracle_covered(&mut report, &uncovered);
    let listed = ss_listed(&run.ss, &[addr.port()], &expects);
    report.check(listed == expects.len(), || {
        format!(
            "ss lists {listed} of {} live sockets (test bug)",
            expects.len()
        )
    });
    for mode in MODES {
        report.note(&stats_line(&run.out, mode));
        report.check(stat(&run.out, mode, "map_full") == 0, || {
            format!("{mode}: map_full > 0 with the default map size")
        });
        report.strict("held sockets", check_mode(&run.out, mode, &expects));
        check_no_extra_rows(&mut report, &run.out, mode, &[addr.port()], &expects);
    }
    report.finish();
}

/// Test 8. `--filter-port P`: 5 connections on listener P and 5 on listener Q opened before the
/// dump (seeded from /proc), 5 more on each during the run.
///
/// Proves in every mode: every row of the whole table has sport P or dport P (the /proc seed is
/// filtered as the kernel rows are: no row of Q or of any other socket of the machine); every
/// socket on P that ss lists has its row, exactly as ss shows it (state, owner, bytes), the
/// pre-existing ones with start_ns null, the new ones with start_ns set and origin kernel.
/// Tolerance: none.
#[test]
fn filter_port_limits_kernel_rows_and_the_proc_seed_to_that_port() {
    let test = "filter_port_limits_kernel_rows_and_the_proc_seed_to_that_port";
    if !privileged(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    let p_listener = TcpListener::bind((V4, 0)).expect("listen P");
    let q_listener = TcpListener::bind((V4, 0)).expect("listen Q");
    let p = p_listener.local_addr().unwrap().port();
    let q = q_listener.local_addr().unwrap().port();
    let spec = connections_spec(&["--filter-port", &p.to_string()]);
    let bytes = |i: usize| (300 * i + 7, 13 * i + 2);
    let run = run_with_oracle(
        test,
        &spec,
        DURATION,
        || {
            let mk = |l: &TcpListener, i| {
                let (up, down) = bytes(i);
                open_pair(l, up, down)
            };
            let on_p: Vec<Pair> = (1..=5).map(|i| mk(&p_listener, i)).collect();
            let on_q: Vec<Pair> = (1..=5).map(|i| mk(&q_listener, i)).collect();
            (on_p, on_q)
        },
        |_| {
            let mk = |l: &TcpListener, i| {
                let (up, down) = bytes(i);
                open_pair(l, up, down)
            };
            let on_p: Vec<Pair> = (6..=10).map(|i| mk(&p_listener, i)).collect();
            let on_q: Vec<Pair> = (6..=10).map(|i| mk(&q_listener, i)).collect();
            std::thread::sleep(Duration::from_millis(300));
            (on_p, on_q)
        },
    );
    let within = run.within();
    let comm = my_comm();
    let mut expects = vec![Expect::new(
        "listener P",
        listener_tuple(p_listener.local_addr().unwrap()),
        "LISTEN",
    )
    .owner(me(), &comm)
    .bytes(0, 0)
    .stamps(Stamp::Null, Stamp::Null)
    .origin(SEEDED_OR_KERNEL)];
    for (label, pairs, start, origins) in [
        ("seeded", &run.before.0, Stamp::Null, SEEDED_OR_KERNEL),
        ("new", &run.during.0, within, KERNEL),
    ] {
        for (n, pr) in pairs.iter().enumerate() {
            let t = pr.client_tuple();
            expects.push(
                Expect::new(format!("{label} client {n}"), t, ESTAB)
                    .owner(me(), &comm)
                    .bytes(pr.c2s, pr.s2c)
                    .stamps(start, Stamp::Null)
                    .origin(origins),
            );
            expects.push(
                Expect::new(format!("{label} server {n}"), (t.1, t.0), ESTAB)
                    .owner(me(), &comm)
                    .bytes(pr.s2c, pr.c2s)
                    .stamps(start, Stamp::Null)
                    .origin(origins),
            );
        }
    }
    let mut report = Report::new(test);
    check_modes_ran(&mut report, &run.out, false);
    let uncovered = merge_oracle(test, &mut expects, &run.ss, &[p]);
    check_oracle_covered(&mut report, &uncovered);
    let listed = ss_listed(&run.ss, &[p], &expects);
    report.check(listed == expects.len(), || {
        format!(
            "ss lists {listed} of {} live sockets (test bug)",
            expects.len()
        )
    });
    for mode in MODES {
        let all = run.out.rows_of(mode).count();
        let off: Vec<String> = run
            .out
            .rows_of(mode)
            .filter(|r| {
                r["sport"].as_u64() != Some(p as u64) && r["dport"].as_u64() != Some(p as u64)
            })
            .map(show_row)
            .collect();
        let on_q = off.iter().filter(|r| r.contains(&format!(":{q} "))).count();
        report.note(&format!(
            "{mode}: {all} rows, {} not on port {p} ({on_q} of them on Q {q})",
            off.len()
        ));
        report.check(off.is_empty(), || {
            format!(
                "{mode}: {} row(s) with neither port {p} (--filter-port):\n    {}",
                off.len(),
                off.iter()
                    .take(20)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n    ")
            )
        });
        report.strict(
            "sockets on the filtered port",
            check_mode(&run.out, mode, &expects),
        );
    }
    report.finish();
}

/// The helper of the per-process traffic test: connects `n` times to 127.0.0.1:`port`, sends
/// 1000·i bytes on connection i and reads 37·i back, closes the first connection, then holds
/// the others until stdin closes.
const NET_CLIENT_PY: &str = r#"
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(1, n + 1):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"p" * (1000 * i))
    want, got = 37 * i, 0
    while got < want:
        b = s.recv(want - got)
        if not b:
            raise SystemExit("eof on connection %d" % i)
        got += len(b)
    socks.append(s)
socks[0].close()
print("ready", flush=True)
sys.stdin.read()
"#;

/// Issue 10: a process's `net_bytes_sent` / `net_bytes_received` in `dump --table processes`
/// equal, per mode, the sum over its connection rows in `dump --table connections` (run at
/// the same time over the same workload) and the oracle: `ss -ti` for its live sockets plus
/// what the workload moved over the one it closed during the dump (which stays in the table
/// and counts).
#[test]
fn process_net_totals_are_the_sum_of_its_connections_and_match_ss() {
    use kernel_support::{DumpSpec, RunningDump};
    let test = "process_net_totals_are_the_sum_of_its_connections_and_match_ss";
    if !privileged(test) || !python_or_skip(test) {
        return;
    }
    let _serial = ss_oracle::serial();
    const N: usize = 6;
    let modes = ["--modes", "ring,perf,poll"];
    let mut duration = DURATION;
    let (processes, connections, ss, py, port) = loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().unwrap().port();
        let mut dumps = [
            RunningDump::start(&DumpSpec::json("processes", &modes), duration),
            RunningDump::start(&connections_spec(&[]), duration),
        ];
        for d in &mut dumps {
            d.wait_ready();
        }
        let started = Instant::now();
        let mut py = PyHelper::start(NET_CLIENT_PY, &[port.to_string(), N.to_string()])
            .expect("start python3 client");
        let mut servers = Vec::new();
        for i in 1..=N {
            let s = accept_within(&listener, Duration::from_secs(10)).expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = vec![0u8; 1000 * i];
            (&s).read_exact(&mut buf).expect("read the client's bytes");
            (&s).write_all(&vec![b's'; 37 * i]).expect("answer");
            servers.push(s);
        }
        assert_eq!(py.line(), "ready");
        // The client closed connection 1: read its FIN, then close this side too.
        let mut rest = Vec::new();
        (&servers[0]).read_to_end(&mut rest).expect("EOF");
        assert!(rest.is_empty());
        drop(servers.remove(0));
        std::thread::sleep(Duration::from_millis(300));
        let deadline = dumps.iter().map(|d| d.deadline()).min().unwrap();
        let snap_at = deadline - ss_oracle::ORACLE_LEAD;
        if Instant::now() > snap_at {
            assert!(duration < DURATION * 4, "{test}: workload too slow");
            eprintln!(
                "note: {test}: workload took {:?}; retrying with twice the duration",
                started.elapsed()
            );
            duration *= 2;
            continue;
        }
        std::thread::sleep(snap_at - Instant::now());
        let ss = ss_oracle::snapshot();
        let [p, c] = dumps;
        let (processes, connections) = (p.finish(), c.finish());
        drop(servers);
        break (processes, connections, ss, py, port);
    };
    let pid = py.pid();
    // The oracle: ss for the helper's live sockets on the port, and the closed one (1000 B
    // sent, 37 B received) from what the workload did.
    let live: Vec<&SsSocket> = ss
        .iter()
        .filter(|s| s.peer.port() == port && s.owner().is_some_and(|(p, _)| p == pid))
        .collect();
    let ss_sent: u64 = live.iter().filter_map(|s| s.expected_sent()).sum();
    let ss_received: u64 = live.iter().filter_map(|s| s.expected_received()).sum();
    let workload_sent: u64 = (1..=N as u64).map(|i| 1000 * i).sum();
    let workload_received: u64 = (1..=N as u64).map(|i| 37 * i).sum();
    let oracle = (ss_sent + 1000, ss_received + 37);
    let mut report = Report::new(test);
    report.note(&format!(
        "ss: {} live sockets of pid {pid} on port {port}: sent {ss_sent}, received \
         {ss_received}; plus the closed one (1000, 37) = {oracle:?}; the workload moved \
         ({workload_sent}, {workload_received})",
        live.len()
    ));
    report.check(
        live.len() == N - 1 && oracle == (workload_sent, workload_received),
        || {
            format!(
                "ss does not list the helper's {} live sockets with the workload's bytes \
                 (test bug): {}",
                N - 1,
                live.iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("\n    ")
            )
        },
    );
    for mode in MODES {
        let process_rows: Vec<&serde_json::Value> = processes
            .rows_of(mode)
            .filter(|r| r["pid"].as_u64() == Some(pid as u64))
            .collect();
        let own: Vec<&serde_json::Value> = connections
            .rows_of(mode)
            .filter(|r| r["pid"].as_u64() == Some(pid as u64))
            .collect();
        let sum = |field: &str| -> Option<u64> {
            own.iter().map(|r| r[field].as_u64()).sum::<Option<u64>>()
        };
        let rows_sum = (sum("bytes_sent"), sum("bytes_received"));
        let closed = own.iter().filter(|r| r["state"] == "CLOSE").count();
        let Some(process) = process_rows.first() else {
            report.fail(format!(
                "{mode}: no process row of the helper (pid {pid}) in dump --table processes"
            ));
            continue;
        };
        let totals = (
            process["net_bytes_sent"].as_u64(),
            process["net_bytes_received"].as_u64(),
        );
        println!(
            "{test}: {mode}: processes dump net totals {totals:?}; sum over its {} connection \
             rows ({closed} closed) {rows_sum:?}; ss + closed {oracle:?}",
            own.len()
        );
        report.check(process_rows.len() == 1, || {
            format!("{mode}: {} process rows of pid {pid}", process_rows.len())
        });
        report.check(own.len() == N && closed == 1, || {
            format!(
                "{mode}: {} connection rows of pid {pid} ({closed} closed), expected {N} (1 \
                 closed):\n    {}",
                own.len(),
                own.iter()
                    .map(|r| show_row(r))
                    .collect::<Vec<_>>()
                    .join("\n    ")
            )
        });
        report.check(totals == rows_sum, || {
            format!(
                "{mode}: net totals {totals:?} of pid {pid} are not the sum of its connection \
                 rows {rows_sum:?}"
            )
        });
        report.check(totals == (Some(oracle.0), Some(oracle.1)), || {
            format!("{mode}: net totals {totals:?} of pid {pid}, but ss + closed say {oracle:?}")
        });
    }
    report.finish();
}

//! `serve` and `--attach` end to end, on real sockets and the real kernel (root; a skip is a
//! failure under `CI=true`): an unprivileged viewer sees what an in-process `dump` sees, the
//! socket's modes and access rules, a second collector, a stopped reader, bad clients, and a
//! collector killed and restarted under an attached viewer.

mod kernel_support;
mod serve_support;

use std::{
    io::Write,
    net::{IpAddr, Ipv4Addr},
    os::unix::{fs::MetadataExt, net::UnixStream},
    process::Command,
    time::{Duration, Instant},
};

use bpftop_ordered::remote::{
    feed::{self, FeedEvent},
    frame::{decode, write_message, FrameReader},
    protocol::{CollectorMessage, ViewerMessage, PROTOCOL_VERSION},
    replica::{Replica, ReplicaEvent},
};
use kernel_support::{num, privileged, run_dumps, text, DumpSpec, HeldConnections, BIN};
use serde_json::Value;
use serve_support::{as_nobody, attached_dump, Collector};

/// The fields of a process row that two sessions of their own report alike (not `seq`, which
/// each mode counts per session, nor the times each session's probes read from the clock
/// themselves, such as `exit_ns`, nor sampled figures).
const PROCESS_FIELDS: &[&str] = &[
    "pid",
    "ppid",
    "comm",
    "uid",
    "state",
    "start_ns",
    "exit_code",
    "exit_signal",
    "core_dumped",
    "kernel_thread",
    "origin",
    "cmdline",
];

/// The same for a connection row.
const CONNECTION_FIELDS: &[&str] = &[
    "family",
    "saddr",
    "sport",
    "daddr",
    "dport",
    "state",
    "pid",
    "comm",
    "bytes_sent",
    "bytes_received",
    "origin",
];

fn fields(row: &Value, names: &[&str]) -> Vec<(String, Value)> {
    names
        .iter()
        .map(|n| (n.to_string(), row[*n].clone()))
        .collect()
}

fn find<'a>(rows: &'a [Value], what: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    rows.iter()
        .find(|r| r.get("stats").is_none() && pick(r))
        .unwrap_or_else(|| panic!("no {what} among {} lines", rows.len()))
}

#[test]
fn an_unprivileged_viewer_sees_what_an_in_process_dump_sees() {
    let _test = privileged!("an_unprivileged_viewer_sees_what_an_in_process_dump_sees");
    let collector = Collector::start("serve-rows", &["--modes", "ring"]);
    let specs = [
        DumpSpec::json("processes", &["--mode", "ring"]),
        DumpSpec::json("connections", &["--mode", "ring"]),
    ];
    let (outputs, (exited, held)) = run_dumps(
        &specs,
        Duration::from_secs(3),
        Duration::from_millis(1500),
        || {
            let status = Command::new("/bin/sh")
                .args(["-c", "exit 7"])
                .spawn()
                .and_then(|mut c| c.wait().map(|s| (c.id(), s)))
                .expect("sh");
            let held =
                HeldConnections::open(IpAddr::V4(Ipv4Addr::LOCALHOST), 1, "bto-cli", "bto-srv");
            (status, held)
        },
    );
    assert_eq!(exited.1.code(), Some(7));
    let pid = exited.0 as u64;
    let port = held.port() as u64;
    let processes = attached_dump(
        &collector.socket,
        collector.group.gid,
        "processes",
        &["--duration", "500ms"],
    );
    let connections = attached_dump(
        &collector.socket,
        collector.group.gid,
        "connections",
        &["--duration", "0s"],
    );
    let attached = find(&processes, "exited sh", |r| num(r, "pid") == pid);
    assert_eq!(num(attached, "exit_code"), 7, "{attached}");
    assert_eq!(text(attached, "state"), "exited");
    let local = find(&outputs[0].rows, "exited sh in-process", |r| {
        num(r, "pid") == pid
    });
    assert_eq!(
        fields(attached, PROCESS_FIELDS),
        fields(local, PROCESS_FIELDS)
    );
    let client = |r: &Value| num(r, "dport") == port && text(r, "saddr") == "127.0.0.1";
    let attached = find(&connections, "the loopback client", client);
    assert_eq!(num(attached, "bytes_sent"), 4, "{attached}");
    assert_eq!(num(attached, "bytes_received"), 4, "{attached}");
    let local = find(&outputs[1].rows, "the loopback client in-process", client);
    assert_eq!(
        fields(attached, CONNECTION_FIELDS),
        fields(local, CONNECTION_FIELDS)
    );
    let link = processes
        .iter()
        .find_map(|l| l.get("attach"))
        .expect("attach line");
    assert_eq!(num(link, "collector_pid"), collector.pid() as u64);
    assert_eq!(num(link, "snapshots"), 1);
    assert!(
        collector.log_text().contains("uid 65534"),
        "{}",
        collector.log_text()
    );
    drop(held);
}

#[test]
fn socket_modes_access_and_a_second_collector() {
    let _test = privileged!("socket_modes_access_and_a_second_collector");
    let collector = Collector::start("serve-access", &["--modes", "poll"]);
    let socket = std::fs::metadata(&collector.socket).unwrap();
    assert_eq!(socket.mode() & 0o7777, 0o660);
    assert_eq!((socket.uid(), socket.gid()), (0, collector.group.gid));
    let directory = std::fs::metadata(collector.socket.parent().unwrap()).unwrap();
    assert_eq!(directory.mode() & 0o7777, 0o750);
    assert_eq!((directory.uid(), directory.gid()), (0, collector.group.gid));
    // Not in the group: exit 3, naming the socket, the group and how to join it.
    let path = collector.socket.to_str().unwrap();
    let refused = as_nobody(None, &["dump", "--attach", path, "--table", "processes"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(path) && stderr.contains(&collector.group.name),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("usermod -aG {}", collector.group.name)),
        "{stderr}"
    );
    // A second collector on the same path: exit 1, naming the first one's pid.
    let second = Command::new(BIN)
        .args(["serve", "--socket", path, "--group", &collector.group.name])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("already running (pid {})", collector.pid())),
        "{stderr}"
    );
    // A group that does not exist: exit 2 before anything is loaded.
    let missing = Command::new(BIN)
        .args(["serve", "--socket", path, "--group", "no-such-group-bto"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("group `no-such-group-bto` does not exist"),
        "{stderr}"
    );
}

/// A raw viewer: handshake and Watch done, then it reads only when the test says.
fn raw_viewer(socket: &std::path::Path) -> (UnixStream, FrameReader<UnixStream>) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write_message(
        &mut stream,
        &ViewerMessage::Hello {
            proto: PROTOCOL_VERSION,
        },
    )
    .unwrap();
    write_message(&mut stream, &ViewerMessage::Watch { since: None }).unwrap();
    let reader = FrameReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

/// `serve` options: ring mode, viewers' queue of `queue` deltas, their timeout `timeout`.
fn viewer_limits(queue: &'static str, timeout: &'static str) -> [&'static str; 6] {
    [
        "--modes",
        "ring",
        "--viewer-queue",
        queue,
        "--viewer-timeout",
        timeout,
    ]
}

#[test]
fn a_viewer_that_stops_reading_is_resynced_and_blocks_nobody() {
    let _test = privileged!("a_viewer_that_stops_reading_is_resynced_and_blocks_nobody");
    let collector = Collector::start("serve-slow", &viewer_limits("4", "30s"));
    let (mut stopped, mut reader) = raw_viewer(&collector.socket);
    // 10 s without reading, while the kernel makes changes and another viewer comes and goes.
    let end = Instant::now() + Duration::from_secs(10);
    let mut other_viewer_s = Vec::new();
    while Instant::now() < end {
        kernel_support::exec_burst("/bin/true", 50, 2);
        let started = Instant::now();
        let rows = attached_dump(
            &collector.socket,
            collector.group.gid,
            "processes",
            &["--duration", "0s"],
        );
        other_viewer_s.push(started.elapsed().as_secs_f64());
        assert!(rows.len() > 10);
        write_message(&mut stopped, &ViewerMessage::Ping).unwrap();
    }
    assert!(
        other_viewer_s.iter().all(|s| *s < 5.0),
        "another viewer was slowed down: {other_viewer_s:?}"
    );
    // Reading again: a snapshot for the overflow comes, and heartbeats count the resync. (The
    // viewer's task is blocked writing to the full socket until then, so the collector logs
    // the overflow only once it can send again — or, on a loaded machine, earlier, when a
    // burst of deltas outran the task before the socket filled.)
    let limit = Instant::now() + Duration::from_secs(20);
    let (mut resync_snapshot, mut resyncs) = (false, 0);
    while !(resync_snapshot && resyncs > 0) {
        assert!(
            Instant::now() < limit,
            "no resync seen (snapshot {resync_snapshot}, heartbeat {resyncs})"
        );
        let Some(frame) = reader.read_frame().unwrap() else {
            continue;
        };
        match decode::<CollectorMessage>(&frame).unwrap() {
            CollectorMessage::SnapshotBegin { reason, .. } if reason == "queue overflow" => {
                resync_snapshot = true
            }
            CollectorMessage::Heartbeat { resyncs: n, .. } => resyncs = n,
            _ => {}
        }
        write_message(&mut stopped, &ViewerMessage::Ping).unwrap();
    }
    collector.wait_for_log("queue overflowed", Duration::from_secs(5));
}

#[test]
fn bad_clients_are_disconnected_and_logged() {
    let _test = privileged!("bad_clients_are_disconnected_and_logged");
    let collector = Collector::start("serve-bad", &["--modes", "poll", "--viewer-timeout", "1s"]);
    let connect = || {
        let stream = UnixStream::connect(&collector.socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    };
    let closed_by_collector = |mut stream: UnixStream| {
        use std::io::Read;
        let mut rest = Vec::new();
        // The collector closes: EOF (or a reset) within the timeout, not our read timeout.
        let started = Instant::now();
        let _ = stream.read_to_end(&mut rest);
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "not disconnected"
        );
    };
    // Garbage in a well-formed frame.
    let mut garbage = connect();
    garbage
        .write_all(&[0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb])
        .unwrap();
    closed_by_collector(garbage);
    collector.wait_for_log("undecodable message", Duration::from_secs(5));
    // A length over the limit.
    let mut oversized = connect();
    oversized.write_all(&u32::MAX.to_be_bytes()).unwrap();
    closed_by_collector(oversized);
    collector.wait_for_log("bad frame", Duration::from_secs(5));
    // Half a frame, then silence.
    let mut half = connect();
    half.write_all(&[0, 0, 0, 9, 1, 2]).unwrap();
    closed_by_collector(half);
    collector.wait_for_log("silent for", Duration::from_secs(5));
    // The debug encoding: JSON lines both ways (what `socat` would show).
    let mut debug = connect();
    debug
        .write_all(b"{\"Hello\":{\"proto\":2}}\n{\"Watch\":{\"since\":null}}\n")
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(debug.try_clone().unwrap()));
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with(r#"{"HelloAck":{"proto":2,"epoch":"#),
        "{first}"
    );
    let second = lines.next().unwrap().unwrap();
    assert!(
        second.starts_with(r#"{"SnapshotBegin":{"position":{"epoch":"#),
        "{second}"
    );
    drop(lines);
    drop(debug);
    // The collector carries on, and so does a good viewer.
    let rows = attached_dump(
        &collector.socket,
        collector.group.gid,
        "processes",
        &["--mode", "poll", "--duration", "0s"],
    );
    assert!(rows.len() > 10);
}

#[test]
fn an_attached_viewer_survives_a_collector_restart() {
    let _test = privileged!("an_attached_viewer_survives_a_collector_restart");
    let mut collector = Collector::start("serve-restart", &["--modes", "ring"]);
    let replica = Replica::connect(&collector.socket, None).unwrap();
    let first_epoch = replica.info().epoch;
    let (events, _requests) = feed::spawn(replica).unwrap();
    let next = |what: &str, pick: &dyn Fn(&FeedEvent) -> bool| {
        let limit = Instant::now() + Duration::from_secs(30);
        loop {
            let left = limit.saturating_duration_since(Instant::now());
            let event = events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} within 30 s"));
            if pick(&event) {
                return event;
            }
        }
    };
    next("first snapshot", &|e| {
        matches!(e, FeedEvent::Data(ReplicaEvent::Replaced(_)))
    });
    collector.kill9();
    next("collector gone", &|e| matches!(e, FeedEvent::Gone(_)));
    // The socket of the killed collector is stale: the new one replaces it.
    assert!(collector.socket.exists());
    collector.restart();
    let FeedEvent::Connected(info) = next("reconnect", &|e| matches!(e, FeedEvent::Connected(_)))
    else {
        unreachable!()
    };
    assert_ne!(info.epoch, first_epoch, "a new run, a new epoch");
    assert_eq!(info.pid, collector.pid());
    // Another epoch: the held position cannot resume, so a full snapshot comes.
    let FeedEvent::Data(ReplicaEvent::Replaced(store)) = next("new snapshot", &|e| {
        matches!(e, FeedEvent::Data(ReplicaEvent::Replaced(_)))
    }) else {
        unreachable!()
    };
    let me = std::process::id();
    let ring = store.mode(bridge::contract::ModeKind::Ring);
    assert!(
        ring.processes.latest_for_tgid(me).is_some(),
        "this test's process is in the new tables"
    );
}

#[test]
fn the_collector_signals_for_a_viewer_that_may() {
    let _test = privileged!("the_collector_signals_for_a_viewer_that_may");
    let collector = Collector::start("serve-signal", &["--modes", "ring"]);
    let mut sleeper =
        kernel_support::Children(vec![Command::new("sleep").arg("60").spawn().unwrap()]);
    let pid = sleeper.pids()[0];
    // The row's key: the start time as the collector's tables have it.
    let mut replica = Replica::connect(&collector.socket, None).unwrap();
    let limit = Instant::now() + Duration::from_secs(20);
    let start_ns = loop {
        assert!(Instant::now() < limit, "sleep {pid} never showed up");
        if let Some(ReplicaEvent::Replaced(store)) = replica.next_event().unwrap() {
            let tables = store.mode(bridge::contract::ModeKind::Ring);
            if let Some(row) = tables.processes.latest_for_tgid(pid) {
                break row.key.start_ns;
            }
            replica = Replica::connect(&collector.socket, None).unwrap();
        }
    };
    replica
        .request(&ViewerMessage::Signal {
            request: 1,
            tgid: pid,
            start_ns,
            signal: libc::SIGTERM,
            comm: "sleep".into(),
        })
        .unwrap();
    let limit = Instant::now() + Duration::from_secs(10);
    let text = loop {
        assert!(Instant::now() < limit, "no answer to the signal request");
        if let Some(ReplicaEvent::SignalResult(text)) = replica.next_event().unwrap() {
            break text;
        }
    };
    assert_eq!(text, format!("sent SIGTERM to sleep (pid {pid})"));
    let status = sleeper.0[0].wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

#[test]
fn a_viewer_that_takes_no_frames_is_disconnected() {
    let _test = privileged!("a_viewer_that_takes_no_frames_is_disconnected");
    // A queue that never overflows: the collector's write to the viewer blocks instead, and
    // gives up after the timeout.
    let collector = Collector::start("serve-stalled", &viewer_limits("1000000", "2s"));
    let (mut stalled, _reader) = raw_viewer(&collector.socket);
    let limit = Instant::now() + Duration::from_secs(60);
    while !collector.log_text().contains("took no frame for 2s") {
        assert!(
            Instant::now() < limit,
            "not disconnected; log:\n{}",
            collector.log_text()
        );
        kernel_support::exec_burst("/bin/true", 40, 2);
        // Pings keep it from being silent; they are never read while the write is blocked.
        if write_message(&mut stalled, &ViewerMessage::Ping).is_err() {
            break;
        }
    }
    collector.wait_for_log(
        "took no frame for 2s (stopped reading)",
        Duration::from_secs(5),
    );
    let rows = attached_dump(
        &collector.socket,
        collector.group.gid,
        "processes",
        &["--duration", "0s"],
    );
    assert!(rows.len() > 10);
}

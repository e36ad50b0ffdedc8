//! `serve --prometheus` against a real Prometheus server (Debian's `prometheus`, installed by
//! `.ci/run`): the server scrapes the collector every second; its API answers are checked
//! against `dump --attach` at the same moment (bracketed by the scrapes before and after the
//! dump), `promtool check metrics` lints the exposition, and the endpoint's refusals are
//! checked with raw HTTP. Real kernel (root; a skip is a failure under `CI=true`).

mod kernel_support;
mod serve_support;

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use kernel_support::{num, privileged, skip_or_fail, text, HeldConnections, TempDir, BIN};
use serde_json::Value;
use serve_support::{attached_dump, Collector};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

/// An HTTP/1.0 exchange (no chunked bodies, the connection closes after the answer): the
/// status line, the headers (lower-case names) and the body.
fn http(address: SocketAddr, request: &str) -> (String, BTreeMap<String, String>, String) {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read the answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn get(
    address: SocketAddr,
    path: &str,
    accept: &str,
) -> (String, BTreeMap<String, String>, String) {
    http(
        address,
        &format!("GET {path} HTTP/1.0\r\nHost: test\r\nAccept: {accept}\r\n\r\n"),
    )
}

/// Percent-encodes a query parameter.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The address the collector printed for its `/metrics` (it was started with port 0).
fn metrics_address(collector: &Collector) -> SocketAddr {
    collector.wait_for_log("Prometheus series at http://", Duration::from_secs(30));
    let log = collector.log_text();
    let rest = log.split("Prometheus series at http://").nth(1).unwrap();
    rest.split("/metrics")
        .next()
        .unwrap()
        .parse()
        .expect("address in the log")
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server on 127.0.0.1 with a temporary config and data directory, scraping one
/// target every second; killed on drop.
struct PrometheusServer {
    child: Child,
    address: SocketAddr,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl PrometheusServer {
    fn start(target: SocketAddr) -> PrometheusServer {
        let dir = TempDir::new("prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
                 scrape_configs:\n  - job_name: bpftop\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port());
        let log = dir.path().join("prometheus.log");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus");
        PrometheusServer {
            child,
            address,
            log,
            _dir: dir,
        }
    }

    /// An instant query's result: (labels, value) per series.
    fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let (status, _, body) = get(
            self.address,
            &format!("/api/v1/query?query={}", url_encode(promql)),
            "application/json",
        );
        assert!(status.contains("200"), "query {promql}: {status} {body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON answer");
        answer["data"]["result"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|series| {
                let labels = series["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let value = series["value"][1].as_str().unwrap().parse().unwrap();
                (labels, value)
            })
            .collect()
    }

    /// The one value `promql` gives (panics unless exactly one series answers).
    fn value(&self, promql: &str) -> f64 {
        let result = self.query(promql);
        assert_eq!(result.len(), 1, "{promql}: {result:?}");
        result[0].1
    }

    /// The latest scrape's time (ms since the epoch) of `up`: a scrape after `after` has
    /// happened once this passes it.
    fn wait_for_scrape_after(&self, after: std::time::SystemTime) {
        let after_s = after
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let limit = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, _, body) = get(
                self.address,
                &format!(
                    "/api/v1/query?query={}",
                    url_encode("timestamp(up{job=\"bpftop\"})")
                ),
                "application/json",
            );
            let scraped = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
                v["data"]["result"][0]["value"][1]
                    .as_str()?
                    .parse::<f64>()
                    .ok()
            });
            if scraped.is_some_and(|t| t > after_s) {
                return;
            }
            assert!(
                Instant::now() < limit,
                "no scrape after {after_s} within 30 s (last {scraped:?}); prometheus log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the target is up (at most 60 s).
    fn wait_until_up(&self) {
        let limit = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = std::panic::catch_unwind(|| {
                TcpStream::connect_timeout(&self.address, Duration::from_secs(1)).ok()?;
                let up = self.query("up{job=\"bpftop\"}");
                (up.len() == 1 && up[0].1 == 1.0).then_some(())
            });
            if matches!(ready, Ok(Some(()))) {
                return;
            }
            assert!(
                Instant::now() < limit,
                "the target is not up after 60 s; prometheus log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the Prometheus server and promtool are installed (a skip, or a failure under
/// `CI=true`, when not: `.ci/run` installs them).
fn prometheus_installed(test: &str) -> bool {
    if Path::new(PROMETHEUS).exists() && Path::new(PROMTOOL).exists() {
        return true;
    }
    skip_or_fail(
        test,
        "Debian's prometheus package is not installed (.ci/run installs it)",
    )
}

/// A process row stands for a process that exists (`ps -e` would list it).
fn exists(row: &Value) -> bool {
    text(row, "state") != "exited" || text(row, "task_state") == "Z"
}

#[test]
fn prometheus_scrapes_the_collector_and_agrees_with_dump() {
    let test = privileged!("prometheus_scrapes_the_collector_and_agrees_with_dump");
    if !prometheus_installed(test) {
        return;
    }
    // Ten minutes of retention: nothing is reaped during the test, so the tables hold every
    // exit and every connection since the probes attached.
    let collector = Collector::start(
        "prom",
        &["--prometheus", "127.0.0.1:0", "--retention", "10m"],
    );
    let metrics = metrics_address(&collector);

    // The exposition itself: Prometheus text by default, lint-clean; OpenMetrics on request.
    let (status, headers, body) = get(metrics, "/metrics", "*/*");
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let mut promtool = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let lint = promtool.wait_with_output().unwrap();
    assert!(
        lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}",
        lint.status,
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    let (_, headers, open_metrics) = get(
        metrics,
        "/metrics",
        "application/openmetrics-text;version=1.0.0",
    );
    assert!(headers["content-type"].starts_with("application/openmetrics-text"));
    assert!(open_metrics.ends_with("# EOF\n"), "{open_metrics}");
    for forbidden in ["pid=", "sport=", "dport=", "saddr=", "daddr="] {
        assert!(
            !body.contains(forbidden),
            "a per-entity label ({forbidden}) in:\n{body}"
        );
    }

    let prometheus = PrometheusServer::start(metrics);
    prometheus.wait_until_up();
    for mode in ["ring", "perf", "poll"] {
        assert_eq!(
            prometheus.value(&format!("bpftop_mode_up{{mode=\"{mode}\"}}")),
            1.0
        );
    }
    let before = std::time::SystemTime::now();
    prometheus.wait_for_scrape_after(before);
    let execs_before = prometheus.value("bpftop_process_execs_total");
    let exits_before = prometheus.value("bpftop_process_exits_total");
    let sent_before = prometheus.value("bpftop_tcp_sent_bytes_total{mode=\"ring\"}");

    // The workload: 20 processes exiting with 7 (waitpid is the oracle), a held loopback
    // connection moving 100,000 bytes one way and 50,000 the other.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let status = Command::new("/bin/sh")
            .args(["-c", "exit 7"])
            .status()
            .unwrap();
        statuses.push(status.code());
    }
    assert!(statuses.iter().all(|c| *c == Some(7)), "{statuses:?}");
    let held = HeldConnections::open(IpAddr::V4(Ipv4Addr::LOCALHOST), 1, "promcli", "promsrv");
    {
        let (client, server) = &held.streams[0];
        let (mut client, mut server) = (client, server);
        client.write_all(&[1u8; 100_000]).unwrap();
        let mut sink = vec![0u8; 100_000];
        server.read_exact(&mut sink).unwrap();
        server.write_all(&[2u8; 50_000]).unwrap();
        client.read_exact(&mut sink[..50_000]).unwrap();
    }
    // The kernel's trailing-edge flush sends the byte counts within an update interval.
    std::thread::sleep(Duration::from_secs(2));

    // The same moment: a scrape, the dump, a scrape.
    let t1 = std::time::SystemTime::now();
    prometheus.wait_for_scrape_after(t1);
    let first = Snapshot::of(&prometheus);
    let processes = attached_dump(
        &collector.socket,
        collector.group.gid,
        "processes",
        &["--duration", "1s", "--modes", "ring,perf,poll"],
    );
    let connections = attached_dump(
        &collector.socket,
        collector.group.gid,
        "connections",
        &["--duration", "1s", "--modes", "ring,perf,poll"],
    );
    let t2 = std::time::SystemTime::now();
    prometheus.wait_for_scrape_after(t2);
    let second = Snapshot::of(&prometheus);

    let execs = second.execs - execs_before;
    let exits = second.exits - exits_before;
    assert!(
        execs >= 20.0,
        "execs went from {execs_before} to {}: {execs} < 20",
        second.execs
    );
    assert!(
        exits >= 20.0,
        "exits went from {exits_before} to {}: {exits} < 20",
        second.exits
    );
    let sent = second.sent["ring"] - sent_before;
    assert!(
        sent >= 150_000.0,
        "ring sent bytes grew by {sent} (< 150,000)"
    );
    for mode in ["ring", "perf", "poll"] {
        let rows: Vec<&Value> = processes
            .iter()
            .filter(|r| r.get("pid").is_some() && r["mode"] == mode)
            .collect();
        // Every exit since the probes attached is an exited row (nothing was reaped), except
        // zombies found at start-up (their exit predates the probes).
        let exited = rows
            .iter()
            .filter(|r| {
                text(r, "state") == "exited"
                    && r["exit_ns"].is_u64()
                    && text(r, "origin") == "kernel"
            })
            .count() as f64;
        let live = rows.iter().filter(|r| exists(r)).count() as f64;
        let conn_rows: Vec<&Value> = connections
            .iter()
            .filter(|r| r.get("sport").is_some() && r["mode"] == mode)
            .collect();
        let established = conn_rows
            .iter()
            .filter(|r| text(r, "state") == "ESTABLISHED")
            .count() as f64;
        let dump_sent: f64 = conn_rows
            .iter()
            .filter(|r| r["bytes_sent"].is_u64())
            .map(|r| num(r, "bytes_sent") as f64)
            .sum();
        let dump_received: f64 = conn_rows
            .iter()
            .filter(|r| r["bytes_received"].is_u64())
            .map(|r| num(r, "bytes_received") as f64)
            .sum();
        println!(
            "{mode}: exits prometheus {}..{} dump {exited}; processes {}..{} dump {live}; \
             established {}..{} dump {established}; sent {}..{} dump {dump_sent}; \
             received {}..{} dump {dump_received}",
            first.exits,
            second.exits,
            first.processes[mode],
            second.processes[mode],
            first.established[mode],
            second.established[mode],
            first.sent[mode],
            second.sent[mode],
            first.received[mode],
            second.received[mode]
        );
        // Tolerances: the dump ran between the two scrapes, so each figure lies between them;
        // 3 processes of slack for the dump's own helpers (setpriv, the dump) and 2
        // connections for the scrapes' own (Prometheus keeps one open and the API queries
        // come and go).
        let within = |name: &str, low: f64, dump: f64, high: f64, slack: f64| {
            assert!(
                low.min(high) - slack <= dump && dump <= low.max(high) + slack,
                "{mode} {name}: dump {dump} outside prometheus {low}..{high} (± {slack})"
            );
        };
        within("exits", first.exits, exited, second.exits, 3.0);
        within(
            "processes",
            first.processes[mode],
            live,
            second.processes[mode],
            3.0,
        );
        within(
            "established",
            first.established[mode],
            established,
            second.established[mode],
            2.0,
        );
        // Bytes: the scrapes and queries move a few KiB a second on loopback.
        within(
            "sent bytes",
            first.sent[mode],
            dump_sent,
            second.sent[mode],
            65_536.0,
        );
        within(
            "received bytes",
            first.received[mode],
            dump_received,
            second.received[mode],
            65_536.0,
        );
        let held_row = conn_rows
            .iter()
            .find(|r| num(r, "dport") == held.port() as u64)
            .unwrap_or_else(|| panic!("{mode}: no row of the held connection"));
        // 4 bytes each way of the helper's ping-pong, then the workload's.
        assert_eq!(num(held_row, "bytes_sent"), 100_004, "{mode}: {held_row}");
        assert_eq!(
            num(held_row, "bytes_received"),
            50_004,
            "{mode}: {held_row}"
        );
    }
    // The dumps left: no viewer is attached (a scrape after they left says so).
    prometheus.wait_for_scrape_after(std::time::SystemTime::now());
    assert_eq!(prometheus.value("bpftop_viewers"), 0.0);
    // The comm series are bounded: top 10 and "other", per mode.
    let comms = prometheus.query("bpftop_processes_by_comm{mode=\"ring\"}");
    assert!(
        comms.len() <= 11 && comms.iter().any(|(l, _)| l["comm"] == "other"),
        "{comms:?}"
    );
    drop(held);
}

/// What Prometheus holds for the figures compared with a dump.
struct Snapshot {
    exits: f64,
    execs: f64,
    processes: BTreeMap<String, f64>,
    established: BTreeMap<String, f64>,
    sent: BTreeMap<String, f64>,
    received: BTreeMap<String, f64>,
}

impl Snapshot {
    fn of(prometheus: &PrometheusServer) -> Snapshot {
        let by_mode = |promql: &str| -> BTreeMap<String, f64> {
            prometheus
                .query(promql)
                .into_iter()
                .map(|(labels, v)| (labels["mode"].clone(), v))
                .collect()
        };
        Snapshot {
            exits: prometheus.value("bpftop_process_exits_total"),
            execs: prometheus.value("bpftop_process_execs_total"),
            processes: by_mode("sum by (mode) (bpftop_processes)"),
            established: by_mode("bpftop_tcp_connections{state=\"established\"}"),
            sent: by_mode("bpftop_tcp_sent_bytes_total"),
            received: by_mode("bpftop_tcp_received_bytes_total"),
        }
    }
}

#[test]
fn the_metrics_endpoint_answers_only_what_it_serves_and_survives_idle_clients() {
    let _test =
        privileged!("the_metrics_endpoint_answers_only_what_it_serves_and_survives_idle_clients");
    // Recording too: the recorder's series appear, and say it records.
    let recording = TempDir::new("promrec");
    let record_dir = recording.path().join("rec");
    let collector = Collector::start(
        "promhttp",
        &[
            "--prometheus",
            "127.0.0.1:0",
            "--modes",
            "ring",
            "--record",
            record_dir.to_str().unwrap(),
            "--record-keyframe-every",
            "1s",
        ],
    );
    let metrics = metrics_address(&collector);
    let (status, headers, _) = http(
        metrics,
        "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(status.contains("405"), "{status}");
    assert_eq!(headers["allow"], "GET, HEAD");
    let (status, _, _) = get(metrics, "/nothing-here", "*/*");
    assert!(status.contains("404"), "{status}");
    let (status, headers, body) = http(metrics, "HEAD /metrics HTTP/1.0\r\n\r\n");
    assert!(
        status.contains("200") && body.is_empty(),
        "{status} {body:?}"
    );
    assert!(headers["content-type"].starts_with("text/plain"));
    // Garbage, then 40 clients that connect and send nothing: the endpoint stays bounded and
    // serves again once their header timeout (5 s) has closed them.
    let (status, _, _) = http(metrics, "\x00\x01 not http\r\n\r\n");
    assert!(!status.contains("200"), "{status}");
    let idle: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect(metrics).ok())
        .collect();
    let limit = Instant::now() + Duration::from_secs(20);
    loop {
        let served = std::panic::catch_unwind(|| get(metrics, "/metrics", "*/*"));
        if let Ok((status, _, body)) = served {
            if status.contains("200") && body.contains("bpftop_mode_up{mode=\"ring\"} 1") {
                break;
            }
        }
        assert!(
            Instant::now() < limit,
            "/metrics not served within 20 s of 40 idle clients"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(idle);
    let (_, _, body) = get(metrics, "/metrics", "*/*");
    let value = |name: &str| -> u64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{body}"))
    };
    assert_eq!(value("bpftop_recording_up"), 1);
    assert!(value("bpftop_recording_keyframes_total") >= 1, "{body}");
    assert!(value("bpftop_recording_records_total") >= value("bpftop_recording_keyframes_total"));
    assert!(value("bpftop_recording_disk_bytes") > 0, "{body}");
    assert_eq!(value("bpftop_recording_dropped_records_total"), 0);
    // A second collector cannot take a port in use: exit 1, named.
    let output = Command::new(BIN)
        .args([
            "serve",
            "--socket",
            "/tmp/bto-prom-unused/s.sock",
            "--group",
            &collector.group.name,
        ])
        .args(["--prometheus", &metrics.to_string()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains(&format!("cannot serve /metrics on {metrics}")));
    let output = Command::new(BIN)
        .args(["serve", "--prometheus", "localhost:nope"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "a bad address is a usage error"
    );
}

//! `bpftop-ordered bench`: generate a workload with known ground truth (exec storm, loopback
//! connect storm, or both), run the chosen modes side by side in one session, and report per
//! mode how much of the workload it captured, plus its own measured stats. A /proc-polling
//! collector (what top / ps / ss do) runs at the same interval during the same workload as the
//! baseline row `procfs`.
//!
//! Everything printed is measured; what cannot be measured for a row is `null` (JSON) or `-`
//! (table). See BENCHMARKS.md.

mod observer;
mod overhead;
mod procfs;
mod storm_process;

pub use storm_process::StormKind;
mod transport;
mod transport_bench;
mod workload;

use std::{
    collections::HashSet,
    io::Write,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bridge::{contract::ModeKind, session::Session, store::TableStore};
use serde_json::{json, Map, Value};

use crate::cli::{BenchArgs, BenchFormat as Format, Workload};
use procfs::{is_loopback_v4, ProcfsPoller, ProcfsSeen};
use workload::{ConnectTruth, ExecTruth};

/// A process row counts for a spawn when its start time is within this much before the
/// recorded spawn time (clock reads are not atomic with the fork) ...
pub(super) const START_SLACK_BEFORE_NS: u64 = 1_000_000;
/// ... or at most this much after it.
pub(super) const START_SLACK_AFTER_NS: u64 = 5_000_000_000;

/// Runs the hidden `bench-storm` (the storm process of `bench --overhead`); returns the exit
/// code.
pub fn run_storm_child(args: &crate::cli::StormArgs) -> i32 {
    storm_process::run_child(args)
}

/// Runs `bench`; returns the process exit code.
pub fn run(args: &BenchArgs) -> anyhow::Result<i32> {
    if args.transport {
        return transport::run(args);
    }
    if args.overhead {
        return overhead::run(args);
    }
    // --modes ring,ring,perf compares ring and perf (each once, in the order given).
    let mut modes: Vec<ModeKind> = Vec::new();
    for mode in &args.modes {
        if !modes.contains(mode) {
            modes.push(*mode);
        }
    }
    let mut config = args.bridge.session_config(modes.clone());
    // The bench counts rows at the end: nothing finished may be reaped from the tables before.
    config.retention.max_finished = usize::MAX;
    config.retention.max_age_ns = u64::MAX;
    let interval = config.poll_interval;
    let mut session = match crate::headless::start_session(config) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let mut store = session.new_store();
    wait_until_modes_deliver(&session, &mut store, &modes, interval);
    let generated = generate(args, &session, &mut store, &modes, interval)?;
    session.finish_into(&mut store);

    let common = Common {
        workload: match args.workload {
            Workload::Exec => "exec",
            Workload::Connect => "connect",
            Workload::Mixed => "mixed",
        },
        generated_s: generated.generated_for.as_secs_f64(),
        spawners: args.spawners,
        rate_target: args.rate,
        exec: generated.exec.as_ref(),
        connect: generated.connect.as_ref(),
    };
    let mut rows = Vec::new();
    let mut failed = false;
    for (mode, during) in modes.iter().zip(&generated.applied_during) {
        if let Some(error) = &store.mode(*mode).failure {
            eprintln!("bpftop-ordered: {mode} mode failed: {error}");
            failed = true;
        }
        rows.push(mode_row(&store, *mode, *during, &common));
    }
    if let Some(seen) = &generated.procfs {
        rows.push(procfs_row(seen, &common));
    }
    session.stop();
    print_rows(args.format, &rows, &common)?;
    Ok(if failed { 1 } else { 0 })
}

/// Applies messages until every mode has delivered a batch (its probes and consumer are live)
/// or failed, at most three intervals (5 s at least); notes a mode that stayed silent.
fn wait_until_modes_deliver(
    session: &Session,
    store: &mut TableStore,
    modes: &[ModeKind],
    interval: Duration,
) {
    let ready_by = Instant::now() + (interval * 3).max(Duration::from_secs(5));
    let settled = |store: &TableStore| {
        modes.iter().all(|m| {
            let t = store.mode(*m);
            t.active || t.failure.is_some()
        })
    };
    while !settled(store) {
        let now = Instant::now();
        if now >= ready_by {
            break;
        }
        match session.messages().recv_timeout(ready_by - now) {
            Ok(message) => store.handle(message),
            Err(_) => break,
        }
    }
    for mode in modes {
        let t = store.mode(*mode);
        if !t.active && t.failure.is_none() {
            eprintln!("bpftop-ordered: note: {mode} sent no batch before the workload started");
        }
    }
}

/// What the workload generated, as its generators recorded it, and what was applied meanwhile.
struct Generated {
    generated_for: Duration,
    exec: Option<ExecTruth>,
    connect: Option<ConnectTruth>,
    /// Per mode (in the order of `modes`), rows applied while the load ran.
    applied_during: Vec<u64>,
    /// What the /proc poller saw, when it ran.
    procfs: Option<ProcfsSeen>,
}

/// Runs the workload (and the /proc poller beside it) while applying the session's messages,
/// then one more poll interval so every collector gets a look after the last entity.
fn generate(
    args: &BenchArgs,
    session: &Session,
    store: &mut TableStore,
    modes: &[ModeKind],
    interval: Duration,
) -> anyhow::Result<Generated> {
    let (run_exec, run_connect) = match args.workload {
        Workload::Exec => (true, false),
        Workload::Connect => (false, true),
        Workload::Mixed => (true, true),
    };
    // Mixed: the rate is split evenly between the two generators.
    let rate = if run_exec && run_connect {
        args.rate.div_ceil(2)
    } else {
        args.rate
    };
    let poller = if args.procfs {
        Some(ProcfsPoller::start(interval, run_exec, run_connect)?)
    } else {
        None
    };
    let applied_before: Vec<u64> = modes.iter().map(|m| store.mode(*m).apply.applied).collect();
    let started = Instant::now();
    let deadline = started + args.duration;
    let exec_handles = if run_exec {
        workload::start_exec(args.spawners, rate, deadline)
    } else {
        Vec::new()
    };
    let listener = if run_connect {
        Some(workload::Listener::start()?)
    } else {
        None
    };
    let connect_handles = match &listener {
        Some(l) => workload::start_connect(args.spawners, rate, deadline, l.addr),
        None => Vec::new(),
    };
    // Apply while the load runs (the store owner must keep up, or the modes back up).
    session.pump_until(store, deadline);
    while !exec_handles.iter().all(JoinHandle::is_finished)
        || !connect_handles.iter().all(JoinHandle::is_finished)
    {
        session.pump_until(store, Instant::now() + Duration::from_millis(10));
    }
    let generated_for = started.elapsed();
    let exec = run_exec.then(|| workload::join_exec(exec_handles));
    let connect = run_connect.then(|| workload::join_connect(connect_handles));
    if let Some(l) = listener {
        l.stop();
    }
    let applied_during = modes
        .iter()
        .zip(&applied_before)
        .map(|(m, before)| store.mode(*m).apply.applied - before)
        .collect();
    // Settle: one more poll interval (and then some) so that the /proc poller gets a scan after
    // the last entity; the session's final flush and the modes' last drain come after.
    session.pump_until(
        store,
        Instant::now() + interval + Duration::from_millis(500),
    );
    Ok(Generated {
        generated_for,
        exec,
        connect,
        applied_during,
        procfs: poller.map(ProcfsPoller::finish),
    })
}

/// Prints the rows: one `{"stats": …}` object a line, or the text table.
fn print_rows(format: Format, rows: &[Value], common: &Common) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            for row in rows {
                writeln!(out, "{}", json!({ "stats": row }))?;
            }
        }
        Format::Table => print_table(&mut out, rows, common)?,
    }
    Ok(())
}

/// What every row shares: the workload and its ground truth.
struct Common<'a> {
    workload: &'static str,
    generated_s: f64,
    spawners: usize,
    rate_target: u64,
    exec: Option<&'a ExecTruth>,
    connect: Option<&'a ConnectTruth>,
}

impl Common<'_> {
    /// Adds capture and workload fields given what a collector saw of each kind.
    fn add(&self, map: &mut Map<String, Value>, exec_seen: usize, connect_seen: usize) {
        let exec_generated = self.exec.map_or(0, |t| t.pids.len());
        let connect_generated = self.connect.map_or(0, |t| t.tuples.len());
        let generated = exec_generated + connect_generated;
        let seen = exec_seen + connect_seen;
        let ratio =
            |seen: usize, generated: usize| (generated > 0).then(|| seen as f64 / generated as f64);
        map.insert("capture_ratio".into(), json!(ratio(seen, generated)));
        map.insert("generated".into(), json!(generated));
        map.insert("seen".into(), json!(seen));
        map.insert("workload".into(), json!(self.workload));
        map.insert(
            "exec_generated".into(),
            json!(self.exec.map(|_| exec_generated)),
        );
        map.insert("exec_seen".into(), json!(self.exec.map(|_| exec_seen)));
        // Spawns; more than `exec_generated` only if a pid was reused within the run (then the
        // earlier process of that pid is not counted at all).
        map.insert("exec_spawned".into(), json!(self.exec.map(|t| t.spawned)));
        map.insert(
            "connect_completed".into(),
            json!(self.connect.map(|t| t.connections)),
        );
        map.insert(
            "connect_generated".into(),
            json!(self.connect.map(|_| connect_generated)),
        );
        map.insert(
            "connect_seen".into(),
            json!(self.connect.map(|_| connect_seen)),
        );
        map.insert(
            "generator_errors".into(),
            json!(self.exec.map_or(0, |t| t.errors) + self.connect.map_or(0, |t| t.errors)),
        );
        map.insert("generated_s".into(), json!(self.generated_s));
        map.insert(
            "generated_per_s".into(),
            json!(generated as f64 / self.generated_s.max(1e-9)),
        );
        map.insert("spawners".into(), json!(self.spawners));
        map.insert(
            "rate_target".into(),
            json!((self.rate_target > 0).then_some(self.rate_target)),
        );
    }
}

fn mode_row(store: &TableStore, mode: ModeKind, applied_during: u64, common: &Common) -> Value {
    use bridge::contract::RowOrigin;
    let tables = store.mode(mode);
    let mut exec_seen = HashSet::new();
    let mut exec_comm_true = 0usize;
    if let Some(truth) = common.exec {
        for row in tables.processes.rows().iter() {
            if row.origin != RowOrigin::Kernel {
                continue;
            }
            let Some(at) = truth.pids.get(&row.key.tgid) else {
                continue;
            };
            let start = row.key.start_ns;
            let in_window =
                start + START_SLACK_BEFORE_NS >= *at && start <= at + START_SLACK_AFTER_NS;
            if in_window && exec_seen.insert(row.key.tgid) && row.comm() == "true" {
                exec_comm_true += 1;
            }
        }
    }
    let mut connect_seen = HashSet::new();
    if let Some(truth) = common.connect {
        for row in tables.connections.iter() {
            if row.origin == RowOrigin::Kernel && is_loopback_v4(&row.key) {
                let tuple = (row.key.sport, row.key.dport);
                if truth.tuples.contains(&tuple) {
                    connect_seen.insert(tuple);
                }
            }
        }
    }
    let stats = store.stats(mode);
    let mut map = match serde_json::to_value(&stats) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    common.add(&mut map, exec_seen.len(), connect_seen.len());
    map.insert(
        "exec_seen_as_true".into(),
        json!(common.exec.map(|_| exec_comm_true)),
    );
    map.insert("events_during_workload".into(), json!(applied_during));
    map.insert(
        "workload_events_per_s".into(),
        json!(applied_during as f64 / common.generated_s.max(1e-9)),
    );
    Value::Object(map)
}

fn procfs_row(seen: &ProcfsSeen, common: &Common) -> Value {
    let mut map = Map::new();
    map.insert("mode".into(), json!("procfs"));
    // A /proc poller has no change stream: no events, no kernel time stamp to measure lag
    // from, no sequence numbers to count drops with, no kernel buffers.
    for key in [
        "events",
        "events_per_s",
        "lag_p50_ns",
        "lag_p99_ns",
        "lag_max_ns",
        "drops",
        "resyncs",
        "kernel_bytes",
        "user_bytes",
    ] {
        map.insert(key.into(), Value::Null);
    }
    map.insert("cpu_ns".into(), json!(seen.cpu_ns));
    let mut exec_seen = 0;
    if let Some(truth) = common.exec {
        // /proc start times are tick-accurate (USER_HZ): allow one tick (10 ms) before.
        let tick = bridge::procfs_seed::clock_tick_ns() + bridge::procfs_seed::START_NS_SLACK_NS;
        for (pid, at) in &truth.pids {
            if let Some(starts) = seen.pids.get(pid) {
                if starts
                    .iter()
                    .any(|s| s + tick >= *at && *s <= at + START_SLACK_AFTER_NS)
                {
                    exec_seen += 1;
                }
            }
        }
    }
    let connect_seen = common.connect.map_or(0, |t| {
        t.tuples.iter().filter(|x| seen.tuples.contains(x)).count()
    });
    common.add(&mut map, exec_seen, connect_seen);
    map.insert("procfs_scans".into(), json!(seen.ticks));
    map.insert("procfs_scan_max_ns".into(), json!(seen.scan_max_ns));
    map.insert("procfs_scan_errors".into(), json!(seen.errors));
    Value::Object(map)
}

fn print_table(out: &mut impl Write, rows: &[Value], common: &Common) -> anyhow::Result<()> {
    let generated = rows
        .first()
        .and_then(|r| r.get("generated"))
        .cloned()
        .unwrap_or(Value::Null);
    writeln!(
        out,
        "# workload={} generated={} in {:.2} s ({:.0}/s) spawners={} rate={}",
        common.workload,
        generated,
        common.generated_s,
        generated.as_f64().unwrap_or(0.0) / common.generated_s.max(1e-9),
        common.spawners,
        if common.rate_target > 0 {
            common.rate_target.to_string()
        } else {
            "max".into()
        }
    )?;
    let header = [
        "MODE",
        "SEEN",
        "CAPTURE",
        "EVENTS/S",
        "LOAD EV/S",
        "LAG P50",
        "LAG P99",
        "LAG MAX",
        "DROPS",
        "K_DROPS",
        "RESYNCS",
        "KERNEL_B",
        "USER_B",
        "CPU_MS",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let num = |k: &str| r.get(k).and_then(Value::as_f64);
            let int = |k: &str| num(k).map_or("-".into(), |v| format!("{v:.0}"));
            let lag = |k: &str| num(k).map_or("-".into(), format_ns);
            vec![
                r.get("mode").and_then(Value::as_str).unwrap_or("?").into(),
                int("seen"),
                num("capture_ratio").map_or("-".into(), |v| format!("{:.2}%", v * 100.0)),
                int("events_per_s"),
                int("workload_events_per_s"),
                lag("lag_p50_ns"),
                lag("lag_p99_ns"),
                lag("lag_max_ns"),
                int("drops"),
                int("kernel_drops"),
                int("resyncs"),
                int("kernel_bytes"),
                int("user_bytes"),
                num("cpu_ns").map_or("-".into(), |v| format!("{:.1}", v / 1e6)),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut dyn Write, fields: &[&str]| -> std::io::Result<()> {
        let text: Vec<String> = fields
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (f, w))| {
                if i == 0 {
                    format!("{f:<w$}")
                } else {
                    format!("{f:>w$}")
                }
            })
            .collect();
        writeln!(out, "{}", text.join("  "))
    };
    line(out, &header)?;
    for row in &cells {
        let fields: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &fields)?;
    }
    Ok(())
}

/// ns as a short human figure: 850ns, 12.3us, 4.56ms, 1.20s.
fn format_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e6 {
        format!("{:.1}us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

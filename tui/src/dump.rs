//! `bpftop-ordered dump`: run the chosen modes for a while, then print the chosen table of each
//! mode in first-seen order, followed by one stats line per mode.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use bridge::{
    contract::ModeKind,
    session::{Session, SessionConfig},
    stats::monotonic_ns,
    store::TableStore,
};

use crate::{
    cli::{DumpArgs, Format, TableName},
    row_json::{ConnectionJson, ProcessJson},
};

/// Runs `dump`; returns the process exit code.
pub fn run(args: &DumpArgs) -> anyhow::Result<i32> {
    let modes = args.modes();
    let config = args.bridge.session_config(modes.clone());
    let session = match start_session(config) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let mut session = session;
    let mut store = session.new_store();
    collect(&session, &mut store, args.duration);
    finish(&mut session, &mut store);
    session.stop();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    print_tables(&mut out, &store, &modes, args)?;
    for mode in &modes {
        if let Some(error) = &store.mode(*mode).failure {
            eprintln!("bpftop-ordered: {mode} mode failed: {error}");
        }
        let stats = store.stats(*mode);
        match args.format {
            Format::Json => {
                writeln!(out, "{}", serde_json::json!({ "stats": stats }))?;
            }
            Format::Table => {
                writeln!(
                    out,
                    "# {mode}: events={} events/s={:.0} lag p50/p99/max={}/{}/{} ns drops={} \
                     resyncs={} kernel_bytes={} user_bytes={} cpu_ns={}",
                    stats.events,
                    stats.events_per_s,
                    stats.lag_p50_ns,
                    stats.lag_p99_ns,
                    stats.lag_max_ns,
                    stats.drops,
                    stats.resyncs,
                    stats.kernel_bytes,
                    stats.user_bytes,
                    stats.cpu_ns
                )?;
            }
        }
    }
    let failed = modes.iter().any(|m| store.mode(*m).failure.is_some());
    Ok(if failed { 1 } else { 0 })
}

/// Starts a session for a headless command, printing the probes' notes to stderr. On failure
/// the error is printed and the contract's exit code returned (3: privileges / kernel support).
pub(crate) fn start_session(config: SessionConfig) -> Result<Session, i32> {
    match Session::start(config) {
        Ok(session) => {
            for note in session.probes().notes() {
                eprintln!("bpftop-ordered: note: {note}");
            }
            Ok(session)
        }
        Err(e) => {
            eprintln!("bpftop-ordered: {e}");
            Err(e.exit_code())
        }
    }
}

/// Applies the session's messages to `store` for `duration`.
pub fn collect(session: &Session, store: &mut TableStore, duration: Duration) {
    let deadline = Instant::now() + duration;
    let mut next_reap = Instant::now() + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match session.messages().recv_timeout(deadline - now) {
            Ok(message) => store.handle(message),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_reap {
            store.reap(monotonic_ns());
            next_reap += Duration::from_secs(1);
        }
    }
}

/// Ends collection with converged tables: the session's final kernel flush, then every mode's
/// last batch (ring/perf drain once more, poll takes one more snapshot) is applied.
pub fn finish(session: &mut Session, store: &mut TableStore) {
    session.finish();
    // Bounded: a mode thread stuck in the kernel must not hang the command.
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        let left = limit.saturating_duration_since(Instant::now());
        match session.messages().recv_timeout(left) {
            Ok(message) => store.handle(message),
            Err(_) => break,
        }
    }
}

fn print_tables(
    out: &mut impl Write,
    store: &TableStore,
    modes: &[ModeKind],
    args: &DumpArgs,
) -> anyhow::Result<()> {
    use bridge::contract::RowOrigin;
    let keep = |origin: RowOrigin| !args.kernel_only || origin == RowOrigin::Kernel;
    for mode in modes {
        let tables = store.mode(*mode);
        match (args.table, args.format) {
            (TableName::Processes, Format::Json) => {
                for row in tables.processes.rows().iter().filter(|r| keep(r.origin)) {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&ProcessJson::new(*mode, row))?
                    )?;
                }
            }
            (TableName::Connections, Format::Json) => {
                for row in tables.connections.iter().filter(|r| keep(r.origin)) {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&ConnectionJson::new(*mode, row, tables))?
                    )?;
                }
            }
            (TableName::Processes, Format::Table) => {
                writeln!(
                    out,
                    "{:<5} {:>8} {:>8} {:<16} {:>6} {:<8} {:>2} {:>8} {:>14} {:>8}",
                    "MODE", "PID", "PPID", "COMM", "UID", "STATE", "S", "EXIT", "CPU_NS", "SEQ"
                )?;
                for row in tables.processes.rows().iter().filter(|r| keep(r.origin)) {
                    let j = ProcessJson::new(*mode, row);
                    writeln!(
                        out,
                        "{:<5} {:>8} {:>8} {:<16} {:>6} {:<8} {:>2} {:>8} {:>14} {:>8}",
                        mode.name(),
                        j.pid,
                        j.ppid,
                        j.comm,
                        j.uid,
                        j.state,
                        j.task_state,
                        or_dash(j.exit_code),
                        j.cpu_ns,
                        j.seq
                    )?;
                }
            }
            (TableName::Connections, Format::Table) => {
                writeln!(
                    out,
                    "{:<5} {:<2} {:>39} {:>39} {:<12} {:>8} {:<16} {:>12} {:>12}",
                    "MODE", "IP", "LOCAL", "REMOTE", "STATE", "PID", "COMM", "SENT", "RECV"
                )?;
                for row in tables.connections.iter().filter(|r| keep(r.origin)) {
                    let j = ConnectionJson::new(*mode, row, tables);
                    writeln!(
                        out,
                        "{:<5} {:<2} {:>39} {:>39} {:<12} {:>8} {:<16} {:>12} {:>12}",
                        mode.name(),
                        j.family,
                        format!("{}:{}", j.saddr, j.sport),
                        format!("{}:{}", j.daddr, j.dport),
                        j.state,
                        or_dash(j.pid),
                        j.comm.as_deref().unwrap_or("-"),
                        or_dash(j.bytes_sent),
                        or_dash(j.bytes_received)
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// A value, or `-` when it is unknown.
fn or_dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

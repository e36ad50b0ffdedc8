//! `bpftop-ordered dump`: run the chosen modes for a while, then print the chosen table of each
//! mode in first-seen order, followed by one stats line per mode.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use bridge::{
    mode::{ModeKind, ModeMessage},
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
    let mut store = session.new_store();
    collect(&session, &mut store, args.duration);
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

/// Applies the session's messages to `store` for `duration`, then drains what is in flight.
pub fn collect(session: &Session, store: &mut TableStore, duration: Duration) {
    let deadline = Instant::now() + duration;
    let mut next_reap = Instant::now() + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match session.messages().recv_timeout(deadline - now) {
            Ok(message) => apply(store, message),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_reap {
            store.reap(monotonic_ns());
            next_reap += Duration::from_secs(1);
        }
    }
    // Records emitted just before the deadline: give the modes one more drain.
    let settle = Instant::now() + Duration::from_millis(150);
    while let Ok(message) = session
        .messages()
        .recv_timeout(settle.saturating_duration_since(Instant::now()))
    {
        apply(store, message);
    }
}

fn apply(store: &mut TableStore, message: ModeMessage) {
    match message {
        ModeMessage::Batch(batch) => store.apply(batch),
        ModeMessage::Failed { mode, error } => store.mark_failed(mode, error),
    }
}

fn print_tables(
    out: &mut impl Write,
    store: &TableStore,
    modes: &[ModeKind],
    args: &DumpArgs,
) -> anyhow::Result<()> {
    use bridge::row::RowOrigin;
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
                        serde_json::to_string(&ConnectionJson::new(*mode, row))?
                    )?;
                }
            }
            (TableName::Processes, Format::Table) => {
                writeln!(
                    out,
                    "{:<5} {:>8} {:>8} {:<16} {:>6} {:<8} {:>8} {:>14} {:>8}",
                    "MODE", "PID", "PPID", "COMM", "UID", "STATE", "EXIT", "CPU_NS", "SEQ"
                )?;
                for row in tables.processes.rows().iter().filter(|r| keep(r.origin)) {
                    let j = ProcessJson::new(*mode, row);
                    writeln!(
                        out,
                        "{:<5} {:>8} {:>8} {:<16} {:>6} {:<8} {:>8} {:>14} {:>8}",
                        mode.name(),
                        j.pid,
                        j.ppid,
                        j.comm,
                        j.uid,
                        j.state,
                        j.exit_code
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "-".into()),
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
                    let j = ConnectionJson::new(*mode, row);
                    writeln!(
                        out,
                        "{:<5} {:<2} {:>39} {:>39} {:<12} {:>8} {:<16} {:>12} {:>12}",
                        mode.name(),
                        j.family,
                        format!("{}:{}", j.saddr, j.sport),
                        format!("{}:{}", j.daddr, j.dport),
                        j.state,
                        j.pid,
                        j.comm,
                        j.bytes_sent,
                        j.bytes_received
                    )?;
                }
            }
        }
    }
    Ok(())
}

//! `bpftop-ordered dump`: run the chosen modes for a while, then print the chosen table of each
//! mode in first-seen order, followed by one stats line per mode.

use std::{io::Write, time::Instant};

use bridge::{contract::ModeKind, store::TableStore};

use crate::{
    cli::{DumpArgs, Format, TableName},
    headless,
    row_json::{ConnectionJson, ProcessJson},
};

/// Runs `dump`; returns the process exit code.
pub fn run(args: &DumpArgs) -> anyhow::Result<i32> {
    let modes = args.modes();
    let config = args.bridge.session_config(modes.clone());
    let mut session = match headless::start_session(config) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let mut store = session.new_store();
    session.pump_until(&mut store, Instant::now() + args.duration);
    session.finish_into(&mut store);
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

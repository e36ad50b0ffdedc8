//! `bpftop-ordered dump`: run the chosen modes for a while, then print the chosen table of each
//! mode in first-seen order, followed by one stats line per mode.

use std::{io::Write, time::Instant};

use bridge::{
    contract::{ConnectionRow, Entity, ModeKind, ProcessRow, RowOrigin},
    store::{ModeTables, TableStore},
};

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
    for mode in modes {
        let tables = store.mode(*mode);
        match args.table {
            TableName::Processes => print_rows::<ProcessRow>(out, *mode, tables, args)?,
            TableName::Connections => print_rows::<ConnectionRow>(out, *mode, tables, args)?,
        }
    }
    Ok(())
}

/// Prints one mode's table of `R` in first-seen order: one JSON object a line, or a text table
/// under its header. `--kernel-only` leaves out rows still from /proc.
fn print_rows<R: DumpedRow>(
    out: &mut impl Write,
    mode: ModeKind,
    tables: &ModeTables,
    args: &DumpArgs,
) -> anyhow::Result<()> {
    let rows = R::rows(tables).filter(|r| !args.kernel_only || r.origin() == RowOrigin::Kernel);
    match args.format {
        Format::Json => {
            for row in rows {
                writeln!(out, "{}", row.json(mode, tables)?)?;
            }
        }
        Format::Table => {
            writeln!(out, "{}", R::text_header())?;
            for row in rows {
                writeln!(out, "{}", row.text_line(mode, tables))?;
            }
        }
    }
    Ok(())
}

/// How the rows of one table print in `dump`.
trait DumpedRow: Entity + 'static {
    /// The table's rows in `tables`, in first-seen order.
    fn rows(tables: &ModeTables) -> impl Iterator<Item = &Self>;
    /// The row in the JSON contract (`docs/contract.md`).
    fn json(&self, mode: ModeKind, tables: &ModeTables) -> serde_json::Result<String>;
    /// The text table's header line.
    fn text_header() -> String;
    /// The row as a line of the text table (unknown values as `-`).
    fn text_line(&self, mode: ModeKind, tables: &ModeTables) -> String;
}

impl DumpedRow for ProcessRow {
    fn rows(tables: &ModeTables) -> impl Iterator<Item = &Self> {
        tables.processes.rows().iter()
    }
    fn json(&self, mode: ModeKind, _tables: &ModeTables) -> serde_json::Result<String> {
        serde_json::to_string(&ProcessJson::new(mode, self))
    }
    fn text_header() -> String {
        format!(
            "{:<5} {:>8} {:>8} {:<16} {:>6} {:<8} {:>2} {:>8} {:>14} {:>8}",
            "MODE", "PID", "PPID", "COMM", "UID", "STATE", "S", "EXIT", "CPU_NS", "SEQ"
        )
    }
    fn text_line(&self, mode: ModeKind, _tables: &ModeTables) -> String {
        let j = ProcessJson::new(mode, self);
        format!(
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
        )
    }
}

impl DumpedRow for ConnectionRow {
    fn rows(tables: &ModeTables) -> impl Iterator<Item = &Self> {
        tables.connections.iter()
    }
    fn json(&self, mode: ModeKind, tables: &ModeTables) -> serde_json::Result<String> {
        serde_json::to_string(&ConnectionJson::new(mode, self, tables))
    }
    fn text_header() -> String {
        format!(
            "{:<5} {:<2} {:>39} {:>39} {:<12} {:>8} {:<16} {:>12} {:>12}",
            "MODE", "IP", "LOCAL", "REMOTE", "STATE", "PID", "COMM", "SENT", "RECV"
        )
    }
    fn text_line(&self, mode: ModeKind, tables: &ModeTables) -> String {
        let j = ConnectionJson::new(mode, self, tables);
        format!(
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
        )
    }
}

/// A value, or `-` when it is unknown.
fn or_dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

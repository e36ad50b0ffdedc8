//! `bpftop-ordered dump`: run the chosen modes for a while, then print the chosen table of each
//! mode in first-seen order, followed by one stats line per mode.

use std::{io::Write, time::Instant};

use std::collections::HashMap;

use bridge::{
    cgroups::CgroupPaths,
    cmdlines::CommandLines,
    contract::{ConnectionRow, Entity, ModeKind, ProcessRow, RowOrigin},
    store::{ModeTables, TableStore},
};

use bpftop_ordered::model::{
    columns::{endpoint, Align, UNKNOWN},
    net::ProcessNet,
};
use unicode_width::UnicodeWidthStr;

use crate::{
    cli::{DumpArgs, Format, TableName},
    headless,
    row_json::{ConnectionJson, ProcessJson},
};

/// Runs `dump`; returns the process exit code.
pub fn run(args: &DumpArgs) -> anyhow::Result<i32> {
    if let Some(path) = &args.attach {
        return crate::dump_attached::run(path, args);
    }
    if let Some(dir) = &args.replay {
        return crate::dump_replay::run(dir, args);
    }
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
    print_output(&store, &modes, args)
}

/// Prints the tables of `modes` and one stats line per mode; returns the exit code (1 when a
/// mode failed).
pub fn print_output(
    store: &TableStore,
    modes: &[ModeKind],
    args: &DumpArgs,
) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    print_tables(&mut out, store, modes, args)?;
    for mode in modes {
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
    let mut cgroups = CgroupPaths::for_host(0);
    for mode in modes {
        match args.table {
            TableName::Processes => {
                print_rows::<ProcessRow>(out, *mode, store, args, &mut cgroups)?
            }
            TableName::Connections => {
                print_rows::<ConnectionRow>(out, *mode, store, args, &mut cgroups)?
            }
        }
    }
    Ok(())
}

/// Prints one mode's table of `R` in first-seen order: one JSON object a line, or a text table
/// under its header. `--kernel-only` leaves out rows still from /proc.
fn print_rows<R: DumpedRow>(
    out: &mut impl Write,
    mode: ModeKind,
    store: &TableStore,
    args: &DumpArgs,
    cgroups: &mut CgroupPaths,
) -> anyhow::Result<()> {
    let tables = store.mode(mode);
    let rows = R::rows(tables).filter(|r| !args.kernel_only || r.origin() == RowOrigin::Kernel);
    let extra = R::extra(store, tables, cgroups);
    match args.format {
        Format::Json => {
            for row in rows {
                writeln!(out, "{}", row.json(mode, tables, &extra)?)?;
            }
        }
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .map(|row| row.text_cells(mode, tables, &extra))
                .collect();
            for line in text_table(R::TEXT_COLUMNS, &cells) {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// The text table: the header, then one line per row, each column as wide as its widest cell
/// (or title), one space apart, trailing spaces trimmed.
fn text_table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (title, _))| {
            rows.iter()
                .map(|cells| cells[i].width())
                .chain(std::iter::once(title.width()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push(' ');
            }
            let pad = " ".repeat(widths[i].saturating_sub(cell.width()));
            match columns[i].1 {
                Align::Left => {
                    text.push_str(cell);
                    text.push_str(&pad);
                }
                Align::Right => {
                    text.push_str(&pad);
                    text.push_str(cell);
                }
            }
        }
        text.trim_end().to_string()
    };
    std::iter::once(line(&mut columns.iter().map(|(title, _)| *title)))
        .chain(
            rows.iter()
                .map(|cells| line(&mut cells.iter().map(String::as_str))),
        )
        .collect()
}

/// What process rows print besides their own fields, computed once per mode.
struct ProcessExtra<'a> {
    /// Per-process traffic over the mode's connections.
    net: ProcessNet,
    /// The session's command lines.
    cmdlines: &'a CommandLines,
    /// Path of every cgroup id the table's rows name (`None`: not found in the mount).
    cgroups: HashMap<u64, Option<String>>,
}

impl ProcessExtra<'_> {
    fn cgroup(&self, row: &ProcessRow) -> Option<&str> {
        self.cgroups.get(&row.cgroup_id()?)?.as_deref()
    }

    /// `row` of `mode` in the JSON contract, with everything this extra knows of it.
    fn json(&self, mode: ModeKind, row: &ProcessRow) -> ProcessJson {
        ProcessJson::new(mode, row)
            .with_net(&self.net, row)
            .with_cmdline(self.cmdlines.of(row))
            .with_cgroup(self.cgroup(row))
    }
}

/// How the rows of one table print in `dump`.
trait DumpedRow: Entity + 'static {
    /// The text table's column titles and alignments.
    const TEXT_COLUMNS: &'static [(&'static str, Align)];
    /// What the rows of one mode need besides `tables` (sums over the mode's tables, the
    /// session's command lines, cgroup paths), computed once per mode.
    type Extra<'a>;
    /// The table's rows in `tables`, in first-seen order.
    fn rows(tables: &ModeTables) -> impl Iterator<Item = &Self>;
    /// See [`DumpedRow::Extra`].
    fn extra<'a>(
        store: &'a TableStore,
        tables: &ModeTables,
        cgroups: &mut CgroupPaths,
    ) -> Self::Extra<'a>;
    /// The row in the JSON contract (`docs/contract.md`).
    fn json(
        &self,
        mode: ModeKind,
        tables: &ModeTables,
        extra: &Self::Extra<'_>,
    ) -> serde_json::Result<String>;
    /// The row's cells in the text table, one per [`DumpedRow::TEXT_COLUMNS`] entry: unknown
    /// values as `?` (as in the dashboard), values that do not apply as `-`.
    fn text_cells(
        &self,
        mode: ModeKind,
        tables: &ModeTables,
        extra: &Self::Extra<'_>,
    ) -> Vec<String>;
}

impl DumpedRow for ProcessRow {
    const TEXT_COLUMNS: &'static [(&'static str, Align)] = &[
        ("MODE", Align::Left),
        ("PID", Align::Right),
        ("PPID", Align::Right),
        ("COMM", Align::Left),
        ("UID", Align::Right),
        ("STATE", Align::Left),
        ("S", Align::Left),
        ("EXIT", Align::Right),
        ("CPU_NS", Align::Right),
        ("RSS_BYTES", Align::Right),
        ("NET_SENT", Align::Right),
        ("NET_RECV", Align::Right),
        ("SEQ", Align::Right),
        ("CGROUP", Align::Left),
        ("CMDLINE", Align::Left),
    ];
    type Extra<'a> = ProcessExtra<'a>;
    fn rows(tables: &ModeTables) -> impl Iterator<Item = &Self> {
        tables.processes.rows().iter()
    }
    fn extra<'a>(
        store: &'a TableStore,
        tables: &ModeTables,
        cgroups: &mut CgroupPaths,
    ) -> ProcessExtra<'a> {
        let now_ns = bridge::stats::monotonic_ns();
        let cgroups = tables
            .processes
            .rows()
            .iter()
            .filter_map(ProcessRow::cgroup_id)
            .map(|id| (id, cgroups.path(id, now_ns).map(str::to_string)))
            .collect();
        ProcessExtra {
            net: ProcessNet::build(tables, None),
            cmdlines: store.cmdlines(),
            cgroups,
        }
    }
    fn json(
        &self,
        mode: ModeKind,
        _tables: &ModeTables,
        extra: &ProcessExtra<'_>,
    ) -> serde_json::Result<String> {
        serde_json::to_string(&extra.json(mode, self))
    }
    fn text_cells(
        &self,
        mode: ModeKind,
        _tables: &ModeTables,
        extra: &ProcessExtra<'_>,
    ) -> Vec<String> {
        let j = extra.json(mode, self);
        let known = |v: Option<u64>| v.map_or_else(|| UNKNOWN.to_string(), |v| v.to_string());
        vec![
            mode.name().to_string(),
            j.pid.to_string(),
            j.ppid.to_string(),
            j.comm,
            j.uid.to_string(),
            j.state.to_string(),
            j.task_state.to_string(),
            // A running process has no exit status: not unknown, not applicable.
            j.exit_code
                .map_or_else(|| "-".into(), |code| code.to_string()),
            j.cpu_ns.to_string(),
            // Not applicable (kernel thread, exited) and unknown are both `-` here: the JSON's
            // null says which fields have no value.
            j.rss_bytes.map_or_else(|| "-".into(), |b| b.to_string()),
            known(j.net_bytes_sent),
            known(j.net_bytes_received),
            j.seq.to_string(),
            j.cgroup.unwrap_or_else(|| UNKNOWN.to_string()),
            j.cmdline.map_or_else(
                || UNKNOWN.to_string(),
                |c| {
                    if j.cmdline_truncated == Some(true) {
                        format!("{c}…")
                    } else {
                        c
                    }
                },
            ),
        ]
    }
}

impl DumpedRow for ConnectionRow {
    const TEXT_COLUMNS: &'static [(&'static str, Align)] = &[
        ("MODE", Align::Left),
        ("IP", Align::Left),
        ("LOCAL", Align::Left),
        ("REMOTE", Align::Left),
        ("STATE", Align::Left),
        ("PID", Align::Right),
        ("COMM", Align::Left),
        ("SENT", Align::Right),
        ("RECV", Align::Right),
    ];
    type Extra<'a> = ();
    fn rows(tables: &ModeTables) -> impl Iterator<Item = &Self> {
        tables.connections.iter()
    }
    fn extra(_store: &TableStore, _tables: &ModeTables, _cgroups: &mut CgroupPaths) {}
    fn json(&self, mode: ModeKind, tables: &ModeTables, _: &()) -> serde_json::Result<String> {
        serde_json::to_string(&ConnectionJson::new(mode, self, tables))
    }
    fn text_cells(&self, mode: ModeKind, tables: &ModeTables, _: &()) -> Vec<String> {
        let j = ConnectionJson::new(mode, self, tables);
        vec![
            mode.name().to_string(),
            j.family.to_string(),
            // The dashboard's rendering: `[::1]:22`, `10.0.0.5:443`, a listener's remote `*:*`.
            endpoint(self.saddr(), self.key.sport),
            endpoint(self.daddr(), self.key.dport),
            j.state.to_string(),
            or_unknown(j.pid),
            or_unknown(j.comm),
            or_unknown(j.bytes_sent),
            or_unknown(j.bytes_received),
        ]
    }
}

/// A value, or [`UNKNOWN`] (`?`, as the dashboard shows it) when the tool cannot know it.
fn or_unknown<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| UNKNOWN.to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge::{store::TableStore, table::Retention};
    use probe_common::{
        conn_flags, proc_flags, ConnKey, ConnState, ProcKey, ProcState, AF_INET6, COMM_LEN,
    };

    fn comm(name: &str) -> [u8; COMM_LEN] {
        let mut bytes = [0u8; COMM_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        bytes
    }

    fn connection(key: ConnKey, state: ConnState) -> ConnectionRow {
        ConnectionRow {
            key,
            state: bridge::contract::KernelState::info(&state),
            seq: 1,
            changed_ns: 0,
            origin: RowOrigin::Kernel,
        }
    }

    /// `dump --format table` of connections, byte for byte: IPv4 as `addr:port`, IPv6 in
    /// brackets, a listener's remote `*:*` and an unknown owner `?` as the dashboard shows
    /// them; LOCAL and REMOTE as wide as their widest endpoint.
    #[test]
    fn connection_text_table() {
        let store = TableStore::new(0, Retention::default());
        let tables = store.mode(ModeKind::Ring);
        let v4 = ConnKey::ipv4([127, 0, 0, 1], 47020, [127, 0, 0, 1], 8080);
        let closed = connection(
            v4,
            ConnState {
                tcp_state: 7,
                pid: 4242,
                comm: comm("curl"),
                bytes_sent: 123_456,
                bytes_received: 7_890,
                flags: conn_flags::CLOSED | conn_flags::OWNER_KNOWN,
                ..Default::default()
            },
        );
        let v6 = ConnKey::ipv6(
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            47020,
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            22,
        );
        let unknown_owner = connection(
            v6,
            ConnState {
                tcp_state: 1,
                flags: conn_flags::BYTES_UNKNOWN,
                ..Default::default()
            },
        );
        let listener = connection(
            ConnKey {
                family: AF_INET6,
                sport: 22,
                ..Default::default()
            },
            ConnState {
                tcp_state: 10,
                pid: 1,
                comm: comm("sshd"),
                flags: conn_flags::OWNER_KNOWN,
                ..Default::default()
            },
        );
        let cells: Vec<Vec<String>> = [&closed, &unknown_owner, &listener]
            .iter()
            .map(|row| row.text_cells(ModeKind::Ring, tables, &()))
            .collect();
        assert_eq!(
            text_table(ConnectionRow::TEXT_COLUMNS, &cells),
            [
                "MODE IP LOCAL           REMOTE         STATE        PID COMM   SENT RECV",
                "ring 4  127.0.0.1:47020 127.0.0.1:8080 CLOSE       4242 curl 123456 7890",
                "ring 6  [::1]:47020     [::1]:22       ESTABLISHED    ? ?         ?    ?",
                "ring 6  [::]:22         *:*            LISTEN         1 sshd      0    0",
            ]
        );
    }

    /// A running process's EXIT does not apply (`-`); an exited one shows its status.
    #[test]
    fn process_text_table() {
        let store = TableStore::new(0, Retention::default());
        let tables = store.mode(ModeKind::Perf);
        let row = |tgid: u32, state: ProcState| {
            ProcessRow::from_record(ProcKey::new(tgid, state.start_ns), state, 3, 0)
        };
        let running = row(
            1,
            ProcState {
                task_state: 1,
                cpu_ns: 5,
                comm: comm("init"),
                ..Default::default()
            },
        );
        let killed = row(
            4242,
            ProcState {
                ppid: 1,
                uid: 1000,
                exit_code: 9,
                flags: proc_flags::EXITED,
                exit_state: 0x10,
                comm: comm("sleep"),
                ..Default::default()
            },
        );
        let mut cmdlines = CommandLines::default();
        let mut init_args = probe_common::Cmdline::default();
        init_args.bytes[..11].copy_from_slice(b"/sbin/init\0");
        init_args.len = 11;
        cmdlines.absorb(&[(ProcKey::seeded_cmdline(1), init_args)]);
        let mut running = running;
        running.state.flags |= proc_flags::CGROUP_KNOWN | proc_flags::FIRST_SEEN_RUNNING;
        running.state.cgroup_id = 77;
        let extra = ProcessExtra {
            net: ProcessNet::default(),
            cmdlines: &cmdlines,
            cgroups: HashMap::from([(77, Some("/init.scope".to_string()))]),
        };
        let cells: Vec<Vec<String>> = [&running, &killed]
            .iter()
            .map(|r| r.text_cells(ModeKind::Perf, tables, &extra))
            .collect();
        assert_eq!(
            text_table(ProcessRow::TEXT_COLUMNS, &cells),
            [
                "MODE  PID PPID COMM   UID STATE   S EXIT CPU_NS RSS_BYTES NET_SENT NET_RECV SEQ \
                 CGROUP      CMDLINE",
                "perf    1    0 init     0 running S    -      5         -        0        0   3 \
                 /init.scope /sbin/init",
                "perf 4242    1 sleep 1000 exited  X  137      0         -        0        0   3 \
                 ?           ?",
            ]
        );
    }
}

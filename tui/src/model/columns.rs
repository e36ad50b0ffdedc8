//! The columns of the two tables, as data: a title, a width, an alignment, how to format a cell
//! and how to compare two rows. The generic table widget (`view::table`) renders any list of
//! these; sorting, the plain-text filter, the column picker and the config file use the same
//! lists, so adding a column is one entry here.

use std::cmp::Ordering;

use bridge::{
    cmdlines::CommandLines,
    contract::{tcp_state_name, ConnectionRow, ProcessRow, RowOrigin},
    table::ProcessTable,
};

use super::{
    cgroup_names::CgroupNames,
    format,
    host_names::HostNames,
    net::{ModeNet, ProcessTraffic},
    process_cpu::ProcessCpu,
    user_names::UserNames,
};

/// What formatting and comparing a row may need besides the row.
pub struct RowContext<'a> {
    /// "Now" for ages (CLOCK_MONOTONIC ns); frozen while paused.
    pub now_ns: u64,
    /// CPU% per process of the visible mode.
    pub cpu: &'a ProcessCpu,
    /// uid → name.
    pub users: &'a UserNames,
    /// The visible mode's processes, for a connection owner's current name.
    pub processes: Option<&'a ProcessTable>,
    /// Remote host names, when the user asked for them (`None`: addresses).
    pub hosts: Option<&'a HostNames>,
    /// Connection rates and per-process traffic of the visible mode (`None`: unknown).
    pub net: Option<&'a ModeNet>,
    /// Command lines of the processes (`None`: unknown).
    pub cmdlines: Option<&'a CommandLines>,
    /// cgroup id → path (`None`: unknown).
    pub cgroups: Option<&'a CgroupNames>,
    /// The host's memory (`/proc/meminfo` MemTotal), bytes, for %MEM (`None`: unknown).
    pub mem_total_bytes: Option<u64>,
}

impl<'a> RowContext<'a> {
    /// A context with CPU% and user names and nothing else known (no process table, host
    /// names, traffic, command lines, cgroups or memory size), at `now_ns`.
    pub fn new(now_ns: u64, cpu: &'a ProcessCpu, users: &'a UserNames) -> Self {
        RowContext {
            now_ns,
            cpu,
            users,
            processes: None,
            hosts: None,
            net: None,
            cmdlines: None,
            cgroups: None,
            mem_total_bytes: None,
        }
    }
}

impl RowContext<'_> {
    /// The command line as the COMMAND column shows it: the arguments (`…` when cut at 256
    /// bytes), a kernel thread's name in brackets as `ps` and htop show it, `None` when
    /// unknown.
    pub fn command_text(&self, row: &ProcessRow) -> Option<String> {
        if row.is_kernel_thread() {
            return Some(format!("[{}]", row.comm()));
        }
        let line = self.cmdlines?.of(row)?;
        Some(if line.truncated {
            format!("{}…", line.text)
        } else {
            line.text.to_string()
        })
    }

    /// The path of the process's cgroup v2, `None` when unknown.
    pub fn cgroup_path(&self, row: &ProcessRow) -> Option<String> {
        self.cgroups?.path(row.cgroup_id()?, self.now_ns)
    }

    /// The process's resident memory as a % of the host's memory; `None` when unknown.
    pub fn mem_percent(&self, row: &ProcessRow) -> Option<f64> {
        let total = self.mem_total_bytes.filter(|t| *t > 0)?;
        Some(row.rss_bytes()? as f64 * 100.0 / total as f64)
    }

    /// A connection owner's name as it is now (see [`bridge::store::ModeTables::owner_comm`]);
    /// `None` when the owner is unknown.
    pub fn owner_comm(&self, row: &ConnectionRow) -> Option<String> {
        let pid = row.owner_pid()?;
        let current = self
            .processes
            .and_then(|p| p.latest_for_tgid(pid))
            .filter(|p| {
                row.start_ns()
                    .is_none_or(|started| p.key.start_ns <= started)
            });
        Some(current.map_or_else(|| row.comm(), |p| p.comm()))
    }

    /// (sent, received) bytes/s of a connection over the last refresh window.
    pub fn connection_rates(&self, row: &ConnectionRow) -> Option<(f64, f64)> {
        self.net.and_then(|n| n.connections.rates(&row.key))
    }

    /// A process's traffic over its connections; `None` when not computed.
    pub fn process_traffic(&self, row: &ProcessRow) -> Option<ProcessTraffic> {
        self.net.map(|n| n.processes.of(row))
    }
}

/// Horizontal alignment of a column's cells and title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Numeric columns.
    Right,
}

/// One column of a table of `R` rows.
pub struct ColumnSpec<R> {
    /// Name in the config file and the picker (`cpu_time`).
    pub name: &'static str,
    /// Title in the table header (`CPU TIME`).
    pub title: &'static str,
    /// What the column shows, for the picker and the help.
    pub description: &'static str,
    /// Width in cells; for a column sized to its content, the least it takes.
    pub width: u16,
    /// `Some(max)`: sized to the widest cell in view, from `width` up to `max` cells, and may
    /// shrink to the room left on a narrow screen; `None`: always `width`.
    pub fit: Option<u16>,
    /// Cell alignment.
    pub align: Align,
    /// First direction when sorting by this column (numbers high→low, names A→Z).
    pub descending_first: bool,
    /// The cell text.
    pub text: fn(&R, &RowContext) -> String,
    /// Ascending order of two rows by this column.
    pub compare: fn(&R, &R, &RowContext) -> Ordering,
}

/// How a row looks beyond its cells.
pub trait DisplayRow {
    /// Exited process / closed connection: drawn dimmed until retention removes it.
    fn is_finished(&self) -> bool;
    /// Seeded from /proc at start-up and not yet reported by the probes: marked `·`.
    fn is_seeded(&self) -> bool;
    /// A kernel thread (`PF_KTHREAD`); connections never are.
    fn is_kernel_thread(&self) -> bool {
        false
    }
}

impl DisplayRow for ProcessRow {
    fn is_finished(&self) -> bool {
        self.is_exited()
    }
    fn is_kernel_thread(&self) -> bool {
        ProcessRow::is_kernel_thread(self)
    }
    fn is_seeded(&self) -> bool {
        self.origin == RowOrigin::Procfs
    }
}

impl DisplayRow for ConnectionRow {
    fn is_finished(&self) -> bool {
        self.is_closed()
    }
    fn is_seeded(&self) -> bool {
        self.origin == RowOrigin::Procfs
    }
}

fn by<T: Ord>(a: T, b: T) -> Ordering {
    a.cmp(&b)
}

fn by_f64(a: Option<f64>, b: Option<f64>) -> Ordering {
    a.unwrap_or(-1.0).total_cmp(&b.unwrap_or(-1.0))
}

fn process_cpu_percent(row: &ProcessRow, ctx: &RowContext) -> Option<f64> {
    ctx.cpu.percent(&row.key)
}

/// Exit status for the EXIT column: the number a shell shows (`137` for SIGKILL).
fn exit_text(row: &ProcessRow) -> String {
    row.exit_status().map_or(String::new(), |s| s.to_string())
}

/// Columns of the processes table, in default display order.
pub static PROCESS_COLUMNS: &[ColumnSpec<ProcessRow>] = &[
    ColumnSpec {
        name: "pid",
        title: "PID",
        description: "process id (tgid)",
        width: 7,
        fit: None,
        align: Align::Right,
        descending_first: false,
        text: |r, _| r.pid().to_string(),
        compare: |a, b, _| by((a.key.tgid, a.key.start_ns), (b.key.tgid, b.key.start_ns)),
    },
    ColumnSpec {
        name: "ppid",
        title: "PPID",
        description: "parent's pid",
        width: 7,
        fit: None,
        align: Align::Right,
        descending_first: false,
        text: |r, _| r.state.ppid.to_string(),
        compare: |a, b, _| by(a.state.ppid, b.state.ppid),
    },
    ColumnSpec {
        name: "user",
        title: "USER",
        description: "real user (uid resolved through /etc/passwd)",
        width: 9,
        fit: None,
        align: Align::Left,
        descending_first: false,
        text: |r, ctx| ctx.users.name_or_uid(r.state.uid),
        compare: |a, b, ctx| {
            by(
                ctx.users.get(a.state.uid).unwrap_or(""),
                ctx.users.get(b.state.uid).unwrap_or(""),
            )
            .then(by(a.state.uid, b.state.uid))
        },
    },
    ColumnSpec {
        name: "comm",
        title: "COMM",
        description: "command name (kernel comm, 15 bytes)",
        // comm never exceeds 15 bytes: extra width would only push the numbers away.
        width: 15,
        fit: None,
        align: Align::Left,
        descending_first: false,
        text: |r, _| r.comm(),
        compare: |a, b, _| by(a.state.comm, b.state.comm),
    },
    ColumnSpec {
        name: "state",
        title: "S",
        description: "task state as ps shows it: R running, S sleeping, D disk sleep, T stopped, \
                      t traced, Z zombie, X dead (exited and reaped), I idle",
        width: 2,
        fit: None,
        align: Align::Left,
        descending_first: false,
        text: |r, _| r.task_state().to_string(),
        compare: |a, b, _| {
            by(
                (a.is_exited(), a.task_state()),
                (b.is_exited(), b.task_state()),
            )
        },
    },
    ColumnSpec {
        name: "cpu",
        title: "CPU%",
        description: "CPU over the refresh window, % of one core",
        width: 6,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, ctx| process_cpu_percent(r, ctx).map_or("–".into(), format::percent),
        compare: |a, b, ctx| by_f64(process_cpu_percent(a, ctx), process_cpu_percent(b, ctx)),
    },
    ColumnSpec {
        name: "cpu_time",
        title: "CPU TIME",
        description: "lifetime on-CPU time of all threads, dead ones included (m:ss.cc; ≥ when \
                      the process has more threads than the probes sum)",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, _| {
            let partial = r.state.flags & probe_common::proc_flags::CPU_PARTIAL != 0;
            let time = format::cpu_time(r.state.cpu_ns);
            if partial {
                format!("≥{time}")
            } else {
                time
            }
        },
        compare: |a, b, _| by(a.state.cpu_ns, b.state.cpu_ns),
    },
    ColumnSpec {
        name: "start",
        title: "START",
        description: "start time, local clock as htop shows it (HH:MM today, else MonDD)",
        width: 6,
        fit: None,
        align: Align::Right,
        // Newest first (what was the youngest-first age sort).
        descending_first: true,
        text: |r, _| format::start_clock(r.key.start_ns),
        compare: |a, b, _| by(a.key.start_ns, b.key.start_ns),
    },
    ColumnSpec {
        name: "exit",
        title: "EXIT",
        description: "exit status (128+N when killed by signal N)",
        width: 5,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, _| exit_text(r),
        compare: |a, b, _| by(a.exit_status(), b.exit_status()),
    },
    ColumnSpec {
        name: "nice",
        title: "NI",
        description: "nice value of the process (its main thread), -20..19",
        width: 3,
        fit: None,
        align: Align::Right,
        descending_first: false,
        text: |r, _| r.nice().to_string(),
        compare: |a, b, _| by(a.nice(), b.nice()),
    },
    ColumnSpec {
        name: "rss",
        title: "RES",
        description: "resident memory (VmRSS: file, anon and shmem pages); ? for kernel threads \
                      and exited processes",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, _| bytes_text(r.rss_bytes()),
        compare: |a, b, _| by(a.rss_bytes(), b.rss_bytes()),
    },
    ColumnSpec {
        name: "virt",
        title: "VIRT",
        description: "virtual memory size (VmSize: mm->total_vm pages); ? for kernel threads \
                      and exited processes",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, _| bytes_text(r.virt_bytes()),
        compare: |a, b, _| by(a.virt_bytes(), b.virt_bytes()),
    },
    ColumnSpec {
        name: "mem",
        title: "MEM%",
        description: "resident memory as % of the host's memory (RES / MemTotal)",
        width: 5,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, ctx| ctx.mem_percent(r).map_or(UNKNOWN.into(), format::percent),
        compare: |a, b, ctx| by_f64(ctx.mem_percent(a), ctx.mem_percent(b)),
    },
    ColumnSpec {
        name: "threads",
        title: "THR",
        description: "live threads (signal->nr_threads); ? when unknown",
        width: 4,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, _| threads_text(r),
        compare: |a, b, _| by(a.state.threads, b.state.threads),
    },
    ColumnSpec {
        name: "net_sent",
        title: "NET SENT",
        description: "payload bytes sent over the process's connections in the table (open \
                      and closed), lifetime; ? when one of them has unknown counts",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, ctx| bytes_text(process_bytes(r, ctx, Dir::Sent)),
        compare: |a, b, ctx| {
            by(
                process_bytes(a, ctx, Dir::Sent),
                process_bytes(b, ctx, Dir::Sent),
            )
        },
    },
    ColumnSpec {
        name: "net_recv",
        title: "NET RECV",
        description: "payload bytes received over the process's connections in the table \
                      (open and closed), lifetime; ? when one of them has unknown counts",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, ctx| bytes_text(process_bytes(r, ctx, Dir::Received)),
        compare: |a, b, ctx| {
            by(
                process_bytes(a, ctx, Dir::Received),
                process_bytes(b, ctx, Dir::Received),
            )
        },
    },
    ColumnSpec {
        name: "net_sent_rate",
        title: "SENT/S",
        description: "bytes/s sent over the process's connections in the last refresh window",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, ctx| rate_text(process_rate(r, ctx, Dir::Sent)),
        compare: |a, b, ctx| {
            by_f64(
                process_rate(a, ctx, Dir::Sent),
                process_rate(b, ctx, Dir::Sent),
            )
        },
    },
    ColumnSpec {
        name: "net_recv_rate",
        title: "RECV/S",
        description: "bytes/s received over the process's connections in the last refresh \
                      window",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, ctx| rate_text(process_rate(r, ctx, Dir::Received)),
        compare: |a, b, ctx| {
            by_f64(
                process_rate(a, ctx, Dir::Received),
                process_rate(b, ctx, Dir::Received),
            )
        },
    },
    ColumnSpec {
        name: "cgroup",
        title: "CGROUP",
        description: "cgroup v2 of the process as its unit or container: ssh.service, \
                      session-3.scope, a container's 12-digit id, / for the root (the full \
                      path in the detail pane)",
        width: 8,
        fit: Some(24),
        align: Align::Left,
        descending_first: false,
        text: |r, ctx| cgroup_name(r, ctx).unwrap_or_else(|| UNKNOWN.into()),
        compare: |a, b, ctx| by(cgroup_name(a, ctx), cgroup_name(b, ctx)),
    },
    ColumnSpec {
        name: "command",
        title: "COMMAND",
        description: "command line: captured by the kernel at exec (at most 256 bytes, … when \
                      cut), inherited at fork, from /proc for processes older than the probes; \
                      [name] for kernel threads",
        width: 12,
        fit: Some(200),
        align: Align::Left,
        descending_first: false,
        text: |r, ctx| ctx.command_text(r).unwrap_or_else(|| UNKNOWN.into()),
        compare: |a, b, ctx| by(ctx.command_text(a), ctx.command_text(b)),
    },
];

fn cgroup_name(row: &ProcessRow, ctx: &RowContext) -> Option<String> {
    ctx.cgroups?.name(row.cgroup_id()?, ctx.now_ns)
}

/// THR: a /proc row has its thread count; a kernel row always does.
fn threads_text(row: &ProcessRow) -> String {
    match row.state.threads {
        0 if row.is_exited() => "0".into(),
        0 => UNKNOWN.into(),
        n => n.to_string(),
    }
}

/// A direction of traffic.
#[derive(Clone, Copy)]
enum Dir {
    Sent,
    Received,
}

impl Dir {
    fn of<T>(self, (sent, received): (T, T)) -> T {
        match self {
            Dir::Sent => sent,
            Dir::Received => received,
        }
    }
}

/// A process's lifetime bytes in one direction over its connections; `None` when unknown.
fn process_bytes(row: &ProcessRow, ctx: &RowContext, dir: Dir) -> Option<u64> {
    ctx.process_traffic(row)
        .and_then(|t| t.bytes)
        .map(|b| dir.of(b))
}

/// A process's bytes/s in one direction over its connections; `None` when unknown.
fn process_rate(row: &ProcessRow, ctx: &RowContext, dir: Dir) -> Option<f64> {
    ctx.process_traffic(row)
        .and_then(|t| t.rates)
        .map(|r| dir.of(r))
}

/// A connection's bytes/s in one direction over the last window; `None` when unknown.
fn connection_rate(row: &ConnectionRow, ctx: &RowContext, dir: Dir) -> Option<f64> {
    ctx.connection_rates(row).map(|r| dir.of(r))
}

/// A rate in bytes/s in human units (`1.5 KiB`, the title says `/S`), [`UNKNOWN`] when unknown.
fn rate_text(rate: Option<f64>) -> String {
    rate.map_or(UNKNOWN.into(), |r| format::bytes(r.max(0.0).round() as u64))
}

/// The longest endpoint: a full IPv6 address in brackets with a 5-digit port,
/// `[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535`.
pub const ENDPOINT_MAX_WIDTH: u16 = 47;

/// What a socket without that end shows (a listener's remote), in the dashboard and in
/// `dump --format table`, as `ss` writes a wildcard.
pub const NO_ENDPOINT: &str = "*:*";

/// `addr:port` as the dashboard and `dump --format table` show it: IPv4 `127.0.0.1:47020`,
/// IPv6 in brackets `[::1]:47020`; the unspecified address with port 0 (a listener's remote)
/// is [`NO_ENDPOINT`].
pub fn endpoint(addr: std::net::IpAddr, port: u16) -> String {
    match (addr, port) {
        (a, 0) if a.is_unspecified() => NO_ENDPOINT.into(),
        (std::net::IpAddr::V6(v6), p) => format!("[{v6}]:{p}"),
        (std::net::IpAddr::V4(v4), p) => format!("{v4}:{p}"),
    }
}

/// Time since the connection started (also after it closed, as for processes); `None` when
/// that is unknown (it predates the probes).
fn connection_age_ns(row: &ConnectionRow, ctx: &RowContext) -> Option<u64> {
    row.start_ns().map(|start| ctx.now_ns.saturating_sub(start))
}

/// Payload bytes sent, lifetime; `None` when unknown.
fn bytes_sent(row: &ConnectionRow) -> Option<u64> {
    row.bytes().map(|(sent, _)| sent)
}

/// Payload bytes received, lifetime; `None` when unknown.
fn bytes_received(row: &ConnectionRow) -> Option<u64> {
    row.bytes().map(|(_, received)| received)
}

/// A byte count in human units, [`UNKNOWN`] when unknown.
fn bytes_text(bytes: Option<u64>) -> String {
    bytes.map_or(UNKNOWN.into(), format::bytes)
}

/// Text of an unknown value, the same in every column and in the detail pane.
pub const UNKNOWN: &str = "?";

/// Columns of the connections table, in default display order.
pub static CONNECTION_COLUMNS: &[ColumnSpec<ConnectionRow>] = &[
    ColumnSpec {
        name: "proto",
        title: "PROTO",
        description: "tcp (IPv4) or tcp6",
        width: 6,
        fit: None,
        align: Align::Left,
        descending_first: false,
        text: |r, _| {
            if r.family_number() == 6 {
                "tcp6"
            } else {
                "tcp"
            }
            .into()
        },
        compare: |a, b, _| by(a.family_number(), b.family_number()),
    },
    ColumnSpec {
        name: "local",
        title: "LOCAL",
        description: "local address:port",
        width: 9,
        fit: Some(ENDPOINT_MAX_WIDTH),
        align: Align::Left,
        descending_first: false,
        text: |r, _| endpoint(r.saddr(), r.key.sport),
        compare: |a, b, _| by((a.saddr(), a.key.sport), (b.saddr(), b.key.sport)),
    },
    ColumnSpec {
        name: "remote",
        title: "REMOTE",
        description: "remote address:port (*:* for a listener); host name:port when names are on",
        width: 9,
        fit: Some(ENDPOINT_MAX_WIDTH),
        align: Align::Left,
        descending_first: false,
        text: |r, ctx| match ctx.hosts.and_then(|hosts| hosts.name(r.daddr())) {
            Some(name) => format!("{name}:{}", r.key.dport),
            None => endpoint(r.daddr(), r.key.dport),
        },
        compare: |a, b, _| by((a.daddr(), a.key.dport), (b.daddr(), b.key.dport)),
    },
    ColumnSpec {
        name: "state",
        title: "STATE",
        description: "TCP state, as ss names it",
        width: 11,
        fit: None,
        align: Align::Left,
        descending_first: false,
        text: |r, _| tcp_state_name(r.state.tcp_state).into(),
        compare: |a, b, _| by(a.state.tcp_state, b.state.tcp_state),
    },
    ColumnSpec {
        name: "pid",
        title: "PID",
        description: "owning process as ss -p shows it (? when unknown)",
        width: 7,
        fit: None,
        align: Align::Right,
        descending_first: false,
        text: |r, _| r.owner_pid().map_or(UNKNOWN.into(), |pid| pid.to_string()),
        compare: |a, b, _| by(a.owner_pid(), b.owner_pid()),
    },
    ColumnSpec {
        name: "comm",
        title: "COMM",
        description: "owning process's current name (? when unknown)",
        width: 15,
        fit: None,
        align: Align::Left,
        descending_first: false,
        text: |r, ctx| ctx.owner_comm(r).unwrap_or_else(|| UNKNOWN.into()),
        compare: |a, b, ctx| by(ctx.owner_comm(a), ctx.owner_comm(b)),
    },
    ColumnSpec {
        name: "sent",
        title: "SENT",
        description: "payload bytes sent, lifetime (ss bytes_sent - bytes_retrans)",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, _| bytes_text(bytes_sent(r)),
        compare: |a, b, _| by(bytes_sent(a), bytes_sent(b)),
    },
    ColumnSpec {
        name: "recv",
        title: "RECV",
        description: "payload bytes received, lifetime (ss bytes_received)",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, _| bytes_text(bytes_received(r)),
        compare: |a, b, _| by(bytes_received(a), bytes_received(b)),
    },
    ColumnSpec {
        name: "age",
        title: "AGE",
        description: "time since the connection started (? when it predates the probes)",
        width: 6,
        fit: None,
        align: Align::Right,
        descending_first: false,
        text: |r, ctx| connection_age_ns(r, ctx).map_or(UNKNOWN.into(), format::age),
        compare: |a, b, ctx| {
            by(
                connection_age_ns(a, ctx).unwrap_or(u64::MAX),
                connection_age_ns(b, ctx).unwrap_or(u64::MAX),
            )
        },
    },
    ColumnSpec {
        name: "sent_rate",
        title: "SENT/S",
        description: "bytes/s sent in the last refresh window, between two kernel samples (? \
                      when not yet sampled twice)",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, ctx| rate_text(connection_rate(r, ctx, Dir::Sent)),
        compare: |a, b, ctx| {
            by_f64(
                connection_rate(a, ctx, Dir::Sent),
                connection_rate(b, ctx, Dir::Sent),
            )
        },
    },
    ColumnSpec {
        name: "recv_rate",
        title: "RECV/S",
        description: "bytes/s received in the last refresh window, between two kernel samples \
                      (? when not yet sampled twice)",
        width: 10,
        fit: None,
        align: Align::Right,
        descending_first: true,
        text: |r, ctx| rate_text(connection_rate(r, ctx, Dir::Received)),
        compare: |a, b, ctx| {
            by_f64(
                connection_rate(a, ctx, Dir::Received),
                connection_rate(b, ctx, Dir::Received),
            )
        },
    },
];

/// Index of a column by config name.
pub fn column_index<R>(columns: &[ColumnSpec<R>], name: &str) -> Option<usize> {
    columns.iter().position(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 443),
            "10.0.0.5:443"
        );
        assert_eq!(endpoint(IpAddr::V6(Ipv6Addr::LOCALHOST), 22), "[::1]:22");
        assert_eq!(endpoint(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0), "*:*");
        let widest = endpoint(IpAddr::V6(Ipv6Addr::from([0xffff; 8])), 65535);
        assert_eq!(widest.len(), ENDPOINT_MAX_WIDTH as usize, "{widest}");
        assert_eq!(endpoint(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0), "*:*");
        // A listener's local side keeps its address: only the port-less wildcard is `*:*`.
        assert_eq!(endpoint(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 22), "[::]:22");
        assert_eq!(
            endpoint(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 22),
            "0.0.0.0:22"
        );
    }

    #[test]
    fn names_are_unique_and_titles_fit() {
        for names in [
            PROCESS_COLUMNS
                .iter()
                .map(|c| (c.name, c.title, c.width))
                .collect::<Vec<_>>(),
            CONNECTION_COLUMNS
                .iter()
                .map(|c| (c.name, c.title, c.width))
                .collect(),
        ] {
            for (i, (name, title, width)) in names.iter().enumerate() {
                assert!(
                    title.chars().count() < *width as usize,
                    "{title} + marker fits"
                );
                assert!(names[i + 1..].iter().all(|(n, _, _)| n != name), "{name}");
            }
        }
        assert_eq!(column_index(PROCESS_COLUMNS, "cpu_time"), Some(6));
    }
}

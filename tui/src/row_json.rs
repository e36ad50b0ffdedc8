//! Rows in the JSON contract's field names (`docs/contract.md`).
//! More fields may be added; these names do not change without a changelog entry.

use bridge::{
    contract::{
        tcp_state_name, tcp_states_in_mask, ConnectionRow, ModeKind, ProcessRow, RowOrigin,
    },
    store::ModeTables,
};
use serde::Serialize;

/// A process row as printed by `dump --format json`.
#[derive(Debug, Serialize)]
pub struct ProcessJson {
    /// The mode whose table the row comes from.
    pub mode: ModeKind,
    /// tgid.
    pub pid: u32,
    /// Parent's tgid at fork (or when first seen).
    pub ppid: u32,
    /// Program name (kernel `comm`, at most 15 bytes).
    pub comm: String,
    /// Real uid.
    pub uid: u32,
    /// `running` or `exited`.
    pub state: &'static str,
    /// The task state as `ps` shows it: R S D T t Z I X (P parked), as of `sampled_ns`.
    pub task_state: String,
    /// Start, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// Exit, CLOCK_MONOTONIC ns; null while running or when unknown (a zombie found at
    /// start-up).
    pub exit_ns: Option<u64>,
    /// Exit status as a shell reports it: the `exit()` status, or 128 + signal when a signal
    /// killed it; null while running.
    pub exit_code: Option<i32>,
    /// The signal that killed the process; null while running or when it called exit().
    pub exit_signal: Option<u32>,
    /// Whether it dumped core; null while running.
    pub core_dumped: Option<bool>,
    /// Lifetime on-CPU time of all threads (dead ones included), ns, as of `sampled_ns`.
    pub cpu_ns: u64,
    /// True when `cpu_ns` is a lower bound (more threads than the probes sum up).
    pub cpu_partial: bool,
    /// Live threads (0 = unknown: a /proc row).
    pub threads: u32,
    /// When the kernel fields were read, CLOCK_MONOTONIC ns (0 = unknown).
    pub sampled_ns: u64,
    /// A kernel thread (`PF_KTHREAD`).
    pub kernel_thread: bool,
    /// Sequence number of the last change applied (per mode; 0 for /proc rows).
    pub seq: u64,
    /// `kernel` or `procfs` (seeded at start-up, not yet seen by the probes).
    pub origin: RowOrigin,
}

impl ProcessJson {
    /// Converts a row of `mode`'s table.
    pub fn new(mode: ModeKind, row: &ProcessRow) -> Self {
        ProcessJson {
            mode,
            pid: row.pid(),
            ppid: row.state.ppid,
            comm: row.comm(),
            uid: row.state.uid,
            state: if row.is_exited() { "exited" } else { "running" },
            task_state: row.task_state().to_string(),
            start_ns: row.key.start_ns,
            exit_ns: row.exit_ns(),
            exit_code: row.exit_status(),
            exit_signal: row.exit_signal(),
            core_dumped: row.is_exited().then(|| row.core_dumped()),
            cpu_ns: row.state.cpu_ns,
            cpu_partial: row.state.flags & probe_common::proc_flags::CPU_PARTIAL != 0,
            threads: row.state.threads,
            sampled_ns: row.state.sampled_ns,
            kernel_thread: row.is_kernel_thread(),
            seq: row.seq,
            origin: row.origin,
        }
    }
}

/// A connection row as printed by `dump --format json`.
#[derive(Debug, Serialize)]
pub struct ConnectionJson {
    /// The mode whose table the row comes from.
    pub mode: ModeKind,
    /// 4 or 6.
    pub family: u8,
    /// Local address.
    pub saddr: String,
    /// Local port.
    pub sport: u16,
    /// Remote address.
    pub daddr: String,
    /// Remote port.
    pub dport: u16,
    /// TCP state as `ss` names it (`ESTABLISHED`, `CLOSE`, …).
    pub state: &'static str,
    /// Owning process (as `ss -p` shows it); null when unknown.
    pub pid: Option<u32>,
    /// Owner's process name as it is now (`ss -p`); null when unknown.
    pub comm: Option<String>,
    /// Bytes the peer acknowledged (`ss -ti` bytes_acked), lifetime; null when unknown.
    pub bytes_sent: Option<u64>,
    /// Bytes received (`ss -ti` bytes_received), lifetime; null when unknown.
    pub bytes_received: Option<u64>,
    /// Start (connect, accept handshake, listen), CLOCK_MONOTONIC ns; null when the connection
    /// predates the probes.
    pub start_ns: Option<u64>,
    /// Reached CLOSE, CLOCK_MONOTONIC ns; null while open, or closed at an unknown time.
    pub end_ns: Option<u64>,
    /// Sequence number of the last change applied.
    pub seq: u64,
    /// Every TCP state the connection has been in, in kernel numbering order.
    pub states_seen: Vec<&'static str>,
    /// `kernel` or `procfs`.
    pub origin: RowOrigin,
}

impl ConnectionJson {
    /// Converts a row of `mode`'s table (`tables`: that mode's tables, for the owner's name).
    pub fn new(mode: ModeKind, row: &ConnectionRow, tables: &ModeTables) -> Self {
        ConnectionJson {
            mode,
            family: row.family_number(),
            saddr: row.saddr().to_string(),
            sport: row.key.sport,
            daddr: row.daddr().to_string(),
            dport: row.key.dport,
            state: tcp_state_name(row.state.tcp_state),
            pid: row.owner_pid(),
            comm: tables.owner_comm(row),
            bytes_sent: row.bytes().map(|(sent, _)| sent),
            bytes_received: row.bytes().map(|(_, received)| received),
            start_ns: row.start_ns(),
            end_ns: row.end_ns(),
            seq: row.seq,
            states_seen: tcp_states_in_mask(row.state.states_seen_mask),
            origin: row.origin,
        }
    }
}

//! Rows and stats in the JSON contract's field names (DESIGN "CLI and JSON contract").
//! More fields may be added; these names do not change without a changelog entry.

use bridge::{
    mode::ModeKind,
    row::{tcp_state_name, tcp_states_in_mask, ConnectionRow, ProcessRow, RowOrigin},
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
    /// Start, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// Exit, CLOCK_MONOTONIC ns; null while running.
    pub exit_ns: Option<u64>,
    /// Exit status (128 + signal when killed); null while running.
    pub exit_code: Option<i32>,
    /// On-CPU time of all threads, ns.
    pub cpu_ns: u64,
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
            start_ns: row.key.start_ns,
            exit_ns: row.is_exited().then_some(row.state.exit_ns),
            exit_code: row.exit_status(),
            cpu_ns: row.state.cpu_ns,
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
    /// Owning process (0 = unknown).
    pub pid: u32,
    /// Owner's `comm` ("" = unknown).
    pub comm: String,
    /// Payload bytes sent since the probes attached.
    pub bytes_sent: u64,
    /// Payload bytes received since the probes attached.
    pub bytes_received: u64,
    /// First seen, CLOCK_MONOTONIC ns (0 for /proc rows).
    pub start_ns: u64,
    /// Reached CLOSE, CLOCK_MONOTONIC ns; null while open.
    pub end_ns: Option<u64>,
    /// Sequence number of the last change applied.
    pub seq: u64,
    /// Every TCP state the connection has been in, in kernel numbering order.
    pub states_seen: Vec<&'static str>,
    /// `kernel` or `procfs`.
    pub origin: RowOrigin,
}

impl ConnectionJson {
    /// Converts a row of `mode`'s table.
    pub fn new(mode: ModeKind, row: &ConnectionRow) -> Self {
        ConnectionJson {
            mode,
            family: row.family_number(),
            saddr: row.saddr().to_string(),
            sport: row.key.sport,
            daddr: row.daddr().to_string(),
            dport: row.key.dport,
            state: tcp_state_name(row.state.tcp_state),
            pid: row.state.pid,
            comm: row.comm(),
            bytes_sent: row.state.bytes_sent,
            bytes_received: row.state.bytes_received,
            start_ns: row.state.start_ns,
            end_ns: row.is_closed().then_some(row.state.end_ns),
            seq: row.seq,
            states_seen: tcp_states_in_mask(row.state.states_seen_mask),
            origin: row.origin,
        }
    }
}

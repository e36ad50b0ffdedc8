//! User-space rows of the two tables, built from kernel records, state-map entries or /proc.
//!
//! A row keeps the kernel's raw state (`probe_common` types) and formats nothing: views format
//! only the rows they show.

use probe_common::{conn_flags, proc_flags, ConnKey, ConnState, ProcKey, ProcState, COMM_LEN};

/// Where a row's current content came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOrigin {
    /// A change record or a state-map entry: kernel data.
    Kernel,
    /// Read from /proc at start-up (exists before the probes attached); replaced by kernel data
    /// as soon as the probes see the entity.
    Procfs,
}

/// Something a table can hold: identified by a key, versioned by a sequence number, and
/// possibly finished (exited process / closed connection) and due for reaping.
pub trait TableRow: Clone {
    /// Identity of the entity.
    type Key: Copy + Eq + std::hash::Hash + std::fmt::Debug;
    /// The row's key.
    fn key(&self) -> Self::Key;
    /// Sequence number of the change the row reflects (per mode; 0 for /proc rows).
    fn seq(&self) -> u64;
    /// CLOCK_MONOTONIC ns of the change the row reflects (0 when unknown, e.g. /proc rows).
    fn changed_ns(&self) -> u64;
    /// CLOCK_MONOTONIC ns when the entity finished (exited/closed), `None` while live.
    fn finished_ns(&self) -> Option<u64>;
    /// Called when this row replaces `previous`, an older row of the same entity: fills in
    /// what this row does not know but `previous` did (e.g. the owner of a connection that
    /// predates the probes, found in /proc at start-up). Default: nothing.
    fn inherit_unknowns(&mut self, _previous: &Self) {}
}

/// Converts a NUL-padded kernel `comm` to text (lossy for non-UTF-8 bytes).
pub fn comm_to_string(comm: &[u8; COMM_LEN]) -> String {
    let len = comm.iter().position(|b| *b == 0).unwrap_or(COMM_LEN);
    String::from_utf8_lossy(&comm[..len]).into_owned()
}

/// One process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessRow {
    /// Identity: tgid + start time.
    pub key: ProcKey,
    /// Kernel state as of `seq`.
    pub state: ProcState,
    /// Sequence number of the change applied last (see [`TableRow::seq`]).
    pub seq: u64,
    /// CLOCK_MONOTONIC ns of that change.
    pub changed_ns: u64,
    /// Kernel data or /proc seed.
    pub origin: RowOrigin,
}

impl ProcessRow {
    /// A row from a state-map entry: kernel data, versioned by `seq`, changed when the entry was
    /// last written (`last_emit_ns`).
    pub fn from_state_map(key: ProcKey, state: ProcState, seq: u64) -> Self {
        ProcessRow {
            key,
            state: crate::record::sanitize_proc(state),
            seq,
            changed_ns: state.last_emit_ns,
            origin: RowOrigin::Kernel,
        }
    }

    /// The pid (tgid) as user space knows it.
    pub fn pid(&self) -> u32 {
        self.key.tgid
    }

    /// `comm` as text.
    pub fn comm(&self) -> String {
        comm_to_string(&self.state.comm)
    }

    /// True once the last thread exited.
    pub fn is_exited(&self) -> bool {
        self.state.flags & proc_flags::EXITED != 0
    }

    /// The task state letter as `ps` shows it (see [`crate::task_state::letter`]).
    pub fn task_state(&self) -> char {
        crate::task_state::letter(self.state.task_state, self.state.exit_state)
    }

    /// The signal that killed the process; `None` while running or when it called exit().
    pub fn exit_signal(&self) -> Option<u32> {
        let signal = self.state.exit_code & 0x7f;
        (self.is_exited() && signal != 0).then_some(signal)
    }

    /// True when the process dumped core (`WCOREDUMP`).
    pub fn core_dumped(&self) -> bool {
        self.is_exited() && self.state.exit_code & 0x80 != 0
    }

    /// When the process exited, CLOCK_MONOTONIC ns; `None` while running or when the exit
    /// time is unknown (a zombie found at start-up).
    pub fn exit_ns(&self) -> Option<u64> {
        (self.is_exited() && self.state.flags & proc_flags::EXIT_TIME_UNKNOWN == 0)
            .then_some(self.state.exit_ns)
    }

    /// True for a kernel thread.
    pub fn is_kernel_thread(&self) -> bool {
        self.state.flags & proc_flags::KERNEL_THREAD != 0
    }

    /// Exit status as a shell reports it: the `exit()` status, or `128 + signal` when a signal
    /// killed the process; `None` while running.
    pub fn exit_status(&self) -> Option<i32> {
        if !self.is_exited() {
            return None;
        }
        let code = self.state.exit_code;
        let signal = code & 0x7f;
        Some(if signal != 0 {
            128 + signal as i32
        } else {
            ((code >> 8) & 0xff) as i32
        })
    }
}

impl TableRow for ProcessRow {
    type Key = ProcKey;
    fn key(&self) -> ProcKey {
        self.key
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn changed_ns(&self) -> u64 {
        self.changed_ns
    }
    fn finished_ns(&self) -> Option<u64> {
        self.is_exited().then_some(self.state.exit_ns)
    }
}

/// One TCP connection (or listening socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRow {
    /// Identity: family + 4-tuple.
    pub key: ConnKey,
    /// Kernel state as of `seq`.
    pub state: ConnState,
    /// Sequence number of the change applied last.
    pub seq: u64,
    /// CLOCK_MONOTONIC ns of that change.
    pub changed_ns: u64,
    /// Kernel data or /proc seed.
    pub origin: RowOrigin,
}

impl ConnectionRow {
    /// A row from a state-map entry: kernel data, versioned by `seq`, changed when the entry was
    /// last written (`last_emit_ns`).
    pub fn from_state_map(key: ConnKey, state: ConnState, seq: u64) -> Self {
        ConnectionRow {
            key,
            state: crate::record::sanitize_conn(state),
            seq,
            changed_ns: state.last_emit_ns,
            origin: RowOrigin::Kernel,
        }
    }

    /// True once the socket reached `TCP_CLOSE`.
    pub fn is_closed(&self) -> bool {
        self.state.flags & conn_flags::CLOSED != 0
    }

    /// `comm` of the owner as text (empty when unknown).
    pub fn comm(&self) -> String {
        comm_to_string(&self.state.comm)
    }

    /// The owning process, when known.
    pub fn owner_pid(&self) -> Option<u32> {
        (self.state.flags & conn_flags::OWNER_KNOWN != 0 && self.state.pid != 0)
            .then_some(self.state.pid)
    }

    /// (bytes acknowledged by the peer, bytes received), lifetime; `None` when unknown.
    pub fn bytes(&self) -> Option<(u64, u64)> {
        (self.state.flags & conn_flags::BYTES_UNKNOWN == 0)
            .then_some((self.state.bytes_sent, self.state.bytes_received))
    }

    /// 4 or 6.
    pub fn family_number(&self) -> u8 {
        if self.key.family == probe_common::AF_INET6 {
            6
        } else {
            4
        }
    }

    /// Local address.
    pub fn saddr(&self) -> std::net::IpAddr {
        ip_of(self.key.family, &self.key.saddr)
    }

    /// Remote address.
    pub fn daddr(&self) -> std::net::IpAddr {
        ip_of(self.key.family, &self.key.daddr)
    }
}

fn ip_of(family: u16, bytes: &[u8; 16]) -> std::net::IpAddr {
    if family == probe_common::AF_INET6 {
        std::net::IpAddr::V6(std::net::Ipv6Addr::from(*bytes))
    } else {
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))
    }
}

/// TCP state name, as `ss` prints it, except `ESTABLISHED` spelled out (the JSON contract).
pub fn tcp_state_name(state: u32) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN-SENT",
        3 => "SYN-RECV",
        4 => "FIN-WAIT-1",
        5 => "FIN-WAIT-2",
        6 => "TIME-WAIT",
        7 => "CLOSE",
        8 => "CLOSE-WAIT",
        9 => "LAST-ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW-SYN-RECV",
        _ => "UNKNOWN",
    }
}

/// Names of the states in a `states_seen_mask`, in kernel numbering order.
pub fn tcp_states_in_mask(mask: u32) -> Vec<&'static str> {
    (1..=12)
        .filter(|s| mask & (1 << s) != 0)
        .map(tcp_state_name)
        .collect()
}

impl TableRow for ConnectionRow {
    type Key = ConnKey;
    fn key(&self) -> ConnKey {
        self.key
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn changed_ns(&self) -> u64 {
        self.changed_ns
    }
    fn finished_ns(&self) -> Option<u64> {
        self.is_closed().then_some(self.state.end_ns)
    }
    /// A connection the probes first saw mid-life (start unknown) has no owner when its first
    /// event ran in softirq context; the owner found for the same connection before (from
    /// /proc at start-up, or an earlier row) stays.
    fn inherit_unknowns(&mut self, previous: &Self) {
        // A closed previous row is an earlier connection that used the same 4-tuple.
        let same_lifetime =
            self.state.flags & conn_flags::START_UNKNOWN != 0 && !previous.is_closed();
        if same_lifetime
            && self.state.flags & conn_flags::OWNER_KNOWN == 0
            && previous.state.flags & conn_flags::OWNER_KNOWN != 0
        {
            self.state.pid = previous.state.pid;
            self.state.comm = previous.state.comm;
            self.state.flags |= conn_flags::OWNER_KNOWN;
        }
    }
}

impl ConnectionRow {
    /// Start of the connection, CLOCK_MONOTONIC ns; `None` when it predates the probes (only
    /// when they first saw it is known).
    pub fn start_ns(&self) -> Option<u64> {
        (self.state.flags & conn_flags::START_UNKNOWN == 0 && self.state.start_ns != 0)
            .then_some(self.state.start_ns)
    }

    /// When the connection closed, CLOCK_MONOTONIC ns; `None` while open or when the close
    /// time is unknown (a TIME-WAIT remnant found at start-up).
    pub fn end_ns(&self) -> Option<u64> {
        (self.is_closed() && self.state.flags & conn_flags::END_UNKNOWN == 0)
            .then_some(self.state.end_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: u32) -> ProcessRow {
        ProcessRow {
            key: ProcKey::default(),
            state: ProcState {
                flags: proc_flags::EXITED,
                exit_code: code,
                ..Default::default()
            },
            seq: 1,
            changed_ns: 1,
            origin: RowOrigin::Kernel,
        }
    }

    #[test]
    fn exit_status_decodes_wait_status() {
        assert_eq!(exited(7 << 8).exit_status(), Some(7));
        assert_eq!(exited(7 << 8).exit_signal(), None);
        assert_eq!(exited(9).exit_status(), Some(137));
        assert_eq!(exited(9).exit_signal(), Some(9));
        // `exit 137` and SIGKILL read the same as a status, and differ in exit_signal.
        assert_eq!(exited(137 << 8).exit_status(), Some(137));
        assert_eq!(exited(137 << 8).exit_signal(), None);
        assert_eq!(exited(0).exit_status(), Some(0));
        // SIGSEGV with a core dump.
        let core = exited(11 | 0x80);
        assert_eq!(core.exit_signal(), Some(11));
        assert!(core.core_dumped());
        assert_eq!(core.exit_status(), Some(139));
        assert!(!exited(11).core_dumped());
    }

    #[test]
    fn comm_stops_at_nul_and_handles_full_length() {
        let mut comm = [0u8; COMM_LEN];
        comm[..3].copy_from_slice(b"sh\0");
        assert_eq!(comm_to_string(&comm), "sh");
        assert_eq!(comm_to_string(&[b'a'; COMM_LEN]).len(), COMM_LEN);
    }

    #[test]
    fn state_names() {
        let expected = [
            (1, "ESTABLISHED"),
            (2, "SYN-SENT"),
            (3, "SYN-RECV"),
            (4, "FIN-WAIT-1"),
            (5, "FIN-WAIT-2"),
            (6, "TIME-WAIT"),
            (7, "CLOSE"),
            (8, "CLOSE-WAIT"),
            (9, "LAST-ACK"),
            (10, "LISTEN"),
            (11, "CLOSING"),
            (12, "NEW-SYN-RECV"),
            (0, "UNKNOWN"),
            (13, "UNKNOWN"),
            (u32::MAX, "UNKNOWN"),
        ];
        for (s, name) in expected {
            assert_eq!(tcp_state_name(s), name, "state {s}");
        }
        assert_eq!(tcp_state_name(probe_common::TCP_CLOSE), "CLOSE");
        assert_eq!(tcp_state_name(probe_common::TCP_SYN_SENT), "SYN-SENT");
    }

    #[test]
    fn state_names_follow_ss() {
        assert_eq!(tcp_state_name(1), "ESTABLISHED");
        assert_eq!(tcp_state_name(7), "CLOSE");
        assert_eq!(tcp_state_name(99), "UNKNOWN");
        assert_eq!(
            tcp_states_in_mask((1 << 1) | (1 << 7) | (1 << 2)),
            vec!["ESTABLISHED", "SYN-SENT", "CLOSE"]
        );
    }
}

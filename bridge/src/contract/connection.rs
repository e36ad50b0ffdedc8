//! TCP connections: the kernel's connection state as a row, and what a view asks of it.

use probe_common::{conn_flags, table, ConnKey, ConnState};

use super::row::{comm_to_string, KernelState, Row, RowState};

/// One TCP connection (or listening socket), keyed by family + 4-tuple.
pub type ConnectionRow = Row<ConnState>;

/// What a connection row keeps of [`ConnState`]: every field of it except the
/// kernel-internal ones (`last_emit_ns`, `poll_seq`, `sock_addr`, `retry_cycle`, padding),
/// with the same names, units and meaning (see [`ConnState`]); `flags` without the kernel's
/// `DIRTY` and `PENDING` bits. 64 bytes where the map value has 96 — with 100k connections in each of three
/// modes, 10 MB less. No padding: the layout is its bytes (the socket and recordings carry it
/// as such).
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct ConnInfo {
    /// Owning process (tgid) when known ([`conn_flags::OWNER_KNOWN`]), else 0.
    pub pid: u32,
    /// Current TCP state, kernel numbering.
    pub tcp_state: u32,
    /// Bit `1 << s` set for every TCP state `s` this connection has been seen in.
    pub states_seen_mask: u32,
    /// [`conn_flags`] bits (the kernel-internal `DIRTY` and `PENDING` cleared).
    pub flags: u32,
    /// Payload bytes sent, each counted once, lifetime.
    pub bytes_sent: u64,
    /// Payload bytes received in order, lifetime.
    pub bytes_received: u64,
    /// Connection start, CLOCK_MONOTONIC ns (first seen with [`conn_flags::START_UNKNOWN`]).
    pub start_ns: u64,
    /// Time it reached `TCP_CLOSE`, CLOCK_MONOTONIC ns; 0 while open.
    pub end_ns: u64,
    /// `comm` of the owning process, NUL-padded.
    pub comm: [u8; probe_common::COMM_LEN],
}

impl RowState for ConnInfo {
    fn finished_ns(&self) -> Option<u64> {
        (self.flags & conn_flags::CLOSED != 0).then_some(self.end_ns)
    }

    /// A connection the probes first saw mid-life (start unknown) has no owner when its first
    /// event ran in softirq context; the owner found for the same connection before (from
    /// /proc at start-up, or an earlier row) stays. A closed previous state is an earlier
    /// connection that used the same 4-tuple.
    fn inherit_unknowns(&mut self, previous: &Self) {
        let same_lifetime =
            self.flags & conn_flags::START_UNKNOWN != 0 && previous.flags & conn_flags::CLOSED == 0;
        if same_lifetime
            && self.flags & conn_flags::OWNER_KNOWN == 0
            && previous.flags & conn_flags::OWNER_KNOWN != 0
        {
            self.pid = previous.pid;
            self.comm = previous.comm;
            self.flags |= conn_flags::OWNER_KNOWN;
        }
    }
}

impl KernelState for ConnState {
    type Key = ConnKey;
    type Info = ConnInfo;
    const TABLE: u8 = table::CONNECTIONS;
    const TABLE_NAME: &'static str = "connections";

    fn poll_seq(&self) -> u64 {
        self.poll_seq
    }

    fn last_emit_ns(&self) -> u64 {
        self.last_emit_ns
    }

    fn info(&self) -> ConnInfo {
        ConnInfo {
            pid: self.pid,
            tcp_state: self.tcp_state,
            states_seen_mask: self.states_seen_mask,
            flags: self.flags & !(conn_flags::DIRTY | conn_flags::PENDING),
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            comm: self.comm,
        }
    }
}

impl ConnectionRow {
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

#[cfg(test)]
mod tests {
    use super::*;

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

//! Layouts shared by the eBPF probes (kernel side) and `bridge` (user space).
//!
//! Every type here is `#[repr(C)]` with explicit padding so that both sides agree byte for byte;
//! `tests` pins sizes and offsets. With the `user` feature the types implement `aya::Pod`.
//!
//! Contract of a change record (see `../shared/DESIGN.md`): a [`RecordHeader`] followed by the
//! entity's key and its *full current state* (not a delta). A consumer may therefore apply records
//! with "highest `seq` wins" per entity and ignore stale ones; `seq` is counted per table and per
//! mode, only for records that were offered to that mode, so a gap means a lost record.
#![no_std]

/// `comm` length, as `TASK_COMM_LEN` in the kernel (NUL-padded, not always NUL-terminated).
pub const COMM_LEN: usize = 16;

/// Which table a record or a sequence counter belongs to.
pub mod table {
    /// The processes table (key [`super::ProcKey`]).
    pub const PROCESSES: u8 = 0;
    /// The TCP connections table (key [`super::ConnKey`]).
    pub const CONNECTIONS: u8 = 1;
    /// Number of tables.
    pub const COUNT: usize = 2;
}

/// The bridge modes, as indices into per-mode kernel state (sequence counters, config bits).
pub mod mode {
    /// One BPF ring buffer.
    pub const RING: u32 = 0;
    /// A per-CPU perf event array.
    pub const PERF: u32 = 1;
    /// Periodic snapshots of the state maps.
    pub const POLL: u32 = 2;
    /// Number of modes.
    pub const COUNT: usize = 3;
}

/// Index of the sequence counter of `mode` (see [`mode`]) for `table` (see [`table`]) in the `SEQ`
/// array map.
pub const fn seq_index(mode: u32, table: u8) -> u32 {
    mode * table::COUNT as u32 + table as u32
}

/// Number of entries in the `SEQ` array map.
pub const SEQ_SLOTS: u32 = (mode::COUNT * table::COUNT) as u32;

/// What happened; carried in [`RecordHeader::kind`]. The record always holds the full new state.
pub mod kind {
    /// A process was created (fork of a new thread group).
    pub const PROC_FORK: u16 = 1;
    /// A process called exec (its `comm` changed).
    pub const PROC_EXEC: u16 = 2;
    /// The last thread of a process exited (`exit_ns`, `exit_code` set).
    pub const PROC_EXIT: u16 = 3;
    /// On-CPU time advanced (coalesced: at most one per process per `cpu_update_interval_ns`).
    pub const PROC_CPU: u16 = 4;
    /// A process that existed before the probes attached was first seen running.
    pub const PROC_FIRST_SEEN: u16 = 5;
    /// A TCP socket changed state (`inet_sock_set_state`).
    pub const CONN_STATE: u16 = 16;
    /// Bytes were sent or received on a TCP socket.
    pub const CONN_BYTES: u16 = 17;
}

/// Flags in [`ProcState::flags`].
pub mod proc_flags {
    /// The process has exited; `exit_ns` and `exit_code` are valid.
    pub const EXITED: u32 = 1;
    /// Created lazily by `sched_switch` for a process that predates the probes: `ppid`, `comm`
    /// and `uid` were read at that moment, not at fork.
    pub const FIRST_SEEN_RUNNING: u32 = 2;
}

/// Flags in [`ConnState::flags`].
pub mod conn_flags {
    /// The socket reached `TCP_CLOSE`; `end_ns` is valid.
    pub const CLOSED: u32 = 1;
    /// `pid`/`comm` were taken in process context (connect, send or receive).
    pub const OWNER_KNOWN: u32 = 2;
}

/// Per-CPU failure counters, indices into the `FAILURES` per-CPU array.
pub mod failure {
    /// `bpf_ringbuf_reserve` returned NULL (ring buffer full).
    pub const RING_RESERVE: u32 = 0;
    /// `bpf_perf_event_output` failed.
    pub const PERF_OUTPUT: u32 = 1;
    /// The processes state map was full (insert failed).
    pub const PROC_MAP_FULL: u32 = 2;
    /// The connections state map was full (insert failed).
    pub const CONN_MAP_FULL: u32 = 3;
    /// A kernel read (`bpf_probe_read_kernel`) failed; the event was skipped.
    pub const KERNEL_READ: u32 = 4;
    /// The transport benchmark's ring reserve / perf output failed.
    pub const BENCH_DROP: u32 = 5;
    /// Number of counters.
    pub const COUNT: u32 = 8;
}

/// Header of every change record. 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// One of [`kind`].
    pub kind: u16,
    /// One of [`table`].
    pub table: u8,
    /// Layout version of the record, [`RECORD_VERSION`].
    pub version: u8,
    /// Total record length in bytes, header included.
    pub len: u32,
    /// Per-(mode, table) sequence number, starting at 1, advanced once per record offered to the
    /// mode (also when the transport then fails, so that the loss shows as a gap).
    pub seq: u64,
    /// `bpf_ktime_get_ns()` when the change happened: CLOCK_MONOTONIC, nanoseconds.
    pub ktime_ns: u64,
}

/// Current layout version in [`RecordHeader::version`].
pub const RECORD_VERSION: u8 = 1;

/// Identity of a process: thread-group id plus the group leader's start time, so that a reused
/// pid makes a new key.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    /// Thread-group id (what user space calls the pid).
    pub tgid: u32,
    /// Explicit padding, always zero.
    pub pad: u32,
    /// `task->group_leader->start_time`: CLOCK_MONOTONIC ns at fork.
    pub start_ns: u64,
}

/// Current state of a process, as held in the state map and carried in records. 72 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcState {
    /// Parent's tgid at fork (or when first seen).
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
    /// Raw `task->exit_code` of the last exiting thread (wait status: `code >> 8` is the exit
    /// status, `code & 0x7f` the terminating signal).
    pub exit_code: u32,
    /// [`proc_flags`] bits.
    pub flags: u32,
    /// Start time, CLOCK_MONOTONIC ns (same as the key's `start_ns`).
    pub start_ns: u64,
    /// Exit time, CLOCK_MONOTONIC ns; 0 while running.
    pub exit_ns: u64,
    /// On-CPU time of all threads in ns, accounted at `sched_switch` and at exit.
    pub cpu_ns: u64,
    /// Kernel-internal: last time a `PROC_CPU` record was emitted (throttling).
    pub last_emit_ns: u64,
    /// Poll-mode sequence number of the last change to this entry (0 = never while poll was on).
    pub poll_seq: u64,
    /// `comm` of the group leader, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// Identity of a TCP connection: family and 4-tuple. IPv4 addresses use the first 4 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    /// `AF_INET` (2) or `AF_INET6` (10).
    pub family: u16,
    /// Local port, host byte order.
    pub sport: u16,
    /// Remote port, host byte order.
    pub dport: u16,
    /// Explicit padding, always zero.
    pub pad: u16,
    /// Local address, network byte order.
    pub saddr: [u8; 16],
    /// Remote address, network byte order.
    pub daddr: [u8; 16],
}

/// Current state of a TCP connection. 80 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnState {
    /// Owning process (tgid) when known, else 0. Only set in process context; see
    /// [`conn_flags::OWNER_KNOWN`].
    pub pid: u32,
    /// Current TCP state, kernel numbering (`TCP_ESTABLISHED` = 1 … `TCP_NEW_SYN_RECV` = 12).
    pub tcp_state: u32,
    /// Bit `1 << s` set for every TCP state `s` this connection has been in.
    pub states_seen_mask: u32,
    /// [`conn_flags`] bits.
    pub flags: u32,
    /// Payload bytes sent (successful `sendmsg` return values).
    pub bytes_sent: u64,
    /// Payload bytes received (successful `recvmsg` return values).
    pub bytes_received: u64,
    /// First time seen, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// Time it reached `TCP_CLOSE`, CLOCK_MONOTONIC ns; 0 while open.
    pub end_ns: u64,
    /// Kernel-internal: last time a `CONN_BYTES` record was emitted (throttling).
    pub last_emit_ns: u64,
    /// Poll-mode sequence number of the last change to this entry.
    pub poll_seq: u64,
    /// `comm` of the owner, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// A process change record: header, key, full state. 112 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcRecord {
    /// Common header; `table == table::PROCESSES`.
    pub header: RecordHeader,
    /// The process.
    pub key: ProcKey,
    /// Its state after the change.
    pub state: ProcState,
}

/// A connection change record: header, key, full state. 144 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnRecord {
    /// Common header; `table == table::CONNECTIONS`.
    pub header: RecordHeader,
    /// The connection.
    pub key: ConnKey,
    /// Its state after the change.
    pub state: ConnState,
}

/// Bits in [`ProbeConfig::modes_enabled`]: `1 << mode::RING` etc.
pub const fn mode_bit(mode: u32) -> u32 {
    1 << mode
}

/// Run-time configuration written by user space into the `CONFIG` array (index 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Which modes receive records / sequence numbers: bits from [`mode_bit`].
    pub modes_enabled: u32,
    /// Ring wake-up sampling: 0 or 1 = wake the consumer for every record; N > 1 = submit with
    /// `BPF_RB_NO_WAKEUP` except every Nth record (the consumer then also polls on a timer).
    pub ring_wakeup_every: u32,
    /// Minimum interval between two `PROC_CPU` / `CONN_BYTES` records of one entity, ns.
    /// State transitions, forks, execs and exits are never throttled.
    pub update_interval_ns: u64,
    /// In-kernel filter: only this tgid (0 = all).
    pub filter_tgid: u32,
    /// In-kernel filter: only connections with this local or remote port (0 = all).
    pub filter_port: u16,
    /// Explicit padding, always zero.
    pub pad: u16,
    /// Write state to the LRU variant of the state maps instead of the plain hash maps (non-zero).
    pub use_lru_maps: u32,
    /// Explicit padding, always zero.
    pub pad2: u32,
}

/// Byte offsets of kernel struct fields, resolved from the running kernel's BTF by user space
/// and written into the probe's read-only `OFFSETS` global before load (the probes read kernel
/// memory with `bpf_probe_read_kernel` at these offsets, because Rust eBPF has no CO-RE).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.pid`
    pub task_pid: u32,
    /// `task_struct.tgid`
    pub task_tgid: u32,
    /// `task_struct.start_time`
    pub task_start_time: u32,
    /// `task_struct.real_parent`
    pub task_real_parent: u32,
    /// `task_struct.group_leader`
    pub task_group_leader: u32,
    /// `task_struct.comm`
    pub task_comm: u32,
    /// `task_struct.exit_code`
    pub task_exit_code: u32,
    /// `task_struct.signal`
    pub task_signal: u32,
    /// `task_struct.real_cred`
    pub task_real_cred: u32,
    /// `signal_struct.live` (an `atomic_t`)
    pub signal_live: u32,
    /// `cred.uid`
    pub cred_uid: u32,
    /// `sock.sk_protocol` (u16)
    pub sock_protocol: u32,
    /// `sock_common.skc_family` (within `sock.__sk_common`, which is at offset 0)
    pub skc_family: u32,
    /// `sock_common.skc_num` (local port, host order)
    pub skc_num: u32,
    /// `sock_common.skc_dport` (remote port, network order)
    pub skc_dport: u32,
    /// `sock_common.skc_daddr`
    pub skc_daddr: u32,
    /// `sock_common.skc_rcv_saddr`
    pub skc_rcv_saddr: u32,
    /// `sock_common.skc_v6_daddr`
    pub skc_v6_daddr: u32,
    /// `sock_common.skc_v6_rcv_saddr`
    pub skc_v6_rcv_saddr: u32,
    /// `sock_common.skc_state` (u8, kernel TCP state numbering)
    pub skc_state: u32,
    /// Set to 1 by user space once the offsets are filled in; probes do nothing while 0.
    pub valid: u32,
}

impl KernelOffsets {
    /// All offsets zero and `valid == 0`: the probes stay inert until user space fills them in.
    pub const fn zeroed() -> Self {
        Self {
            task_pid: 0,
            task_tgid: 0,
            task_start_time: 0,
            task_real_parent: 0,
            task_group_leader: 0,
            task_comm: 0,
            task_exit_code: 0,
            task_signal: 0,
            task_real_cred: 0,
            signal_live: 0,
            cred_uid: 0,
            sock_protocol: 0,
            skc_family: 0,
            skc_num: 0,
            skc_dport: 0,
            skc_daddr: 0,
            skc_rcv_saddr: 0,
            skc_v6_daddr: 0,
            skc_v6_rcv_saddr: 0,
            skc_state: 0,
            valid: 0,
        }
    }
}

/// Linux `AF_INET`.
pub const AF_INET: u16 = 2;
/// Linux `AF_INET6`.
pub const AF_INET6: u16 = 10;
/// Linux `IPPROTO_TCP`.
pub const IPPROTO_TCP: u16 = 6;
/// Kernel `TCP_CLOSE` state number.
pub const TCP_CLOSE: u32 = 7;
/// Kernel `TCP_LISTEN` state number.
pub const TCP_LISTEN: u32 = 10;
/// Kernel `TCP_SYN_SENT` state number.
pub const TCP_SYN_SENT: u32 = 2;

/// Configuration of the transport benchmark probe (`bench_sys_enter`), index 0 of
/// `BENCH_CONFIG`. The probe is attached only by `bpftop-ordered bench --transport`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BenchConfig {
    /// Only syscalls of this thread group fire the probe (0 = probe inert).
    pub tgid: u32,
    /// Only this syscall number (x86_64 `getpgid` = 121).
    pub syscall_nr: u32,
    /// 1 = ring buffer `BENCH_RING`, 2 = perf array `BENCH_PERF`, 0 = count only.
    pub transport: u32,
    /// Ring: wake the consumer for every Nth record only (0/1 = every record).
    pub wakeup_every: u32,
}

/// [`BenchConfig::transport`]: ring buffer.
pub const BENCH_TRANSPORT_RING: u32 = 1;
/// [`BenchConfig::transport`]: perf event array.
pub const BENCH_TRANSPORT_PERF: u32 = 2;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all types are repr(C), contain only integers and byte arrays, and have explicit
    // padding fields, so every bit pattern is valid and there are no implicit padding bytes.
    unsafe impl aya::Pod for super::RecordHeader {}
    unsafe impl aya::Pod for super::ProcKey {}
    unsafe impl aya::Pod for super::ProcState {}
    unsafe impl aya::Pod for super::ConnKey {}
    unsafe impl aya::Pod for super::ConnState {}
    unsafe impl aya::Pod for super::ProcRecord {}
    unsafe impl aya::Pod for super::ConnRecord {}
    unsafe impl aya::Pod for super::ProbeConfig {}
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::BenchConfig {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    fn record_layouts_are_pinned() {
        assert_eq!(size_of::<RecordHeader>(), 24);
        assert_eq!(offset_of!(RecordHeader, seq), 8);
        assert_eq!(offset_of!(RecordHeader, ktime_ns), 16);
        assert_eq!(size_of::<ProcKey>(), 16);
        assert_eq!(size_of::<ProcState>(), 72);
        assert_eq!(offset_of!(ProcState, comm), 56);
        assert_eq!(size_of::<ConnKey>(), 40);
        assert_eq!(offset_of!(ConnKey, saddr), 8);
        assert_eq!(offset_of!(ConnKey, daddr), 24);
        assert_eq!(size_of::<ConnState>(), 80);
        assert_eq!(offset_of!(ConnState, comm), 64);
        assert_eq!(size_of::<ProcRecord>(), 24 + 16 + 72);
        assert_eq!(offset_of!(ProcRecord, key), 24);
        assert_eq!(offset_of!(ProcRecord, state), 40);
        assert_eq!(size_of::<ConnRecord>(), 24 + 40 + 80);
        assert_eq!(offset_of!(ConnRecord, state), 64);
        assert_eq!(size_of::<ProbeConfig>(), 32);
        assert_eq!(size_of::<KernelOffsets>(), 84);
        // The ring buffer reserves at 8-byte granularity; records must not need more.
        assert!(align_of::<ProcRecord>() <= 8 && align_of::<ConnRecord>() <= 8);
    }

    #[test]
    fn seq_slots_are_distinct() {
        let mut seen = [false; SEQ_SLOTS as usize];
        for m in 0..mode::COUNT as u32 {
            for t in 0..table::COUNT as u8 {
                let i = seq_index(m, t) as usize;
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }
}

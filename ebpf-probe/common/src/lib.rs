//! Layouts shared by the eBPF probes (kernel side) and `bridge` (user space).
//!
//! Every type here is `#[repr(C)]` with explicit padding so that both sides agree byte for byte;
//! `tests` pins sizes and offsets. With the `user` feature the types implement `aya::Pod` and
//! zerocopy's byte conversions (which also prove at compile time that no type has implicit
//! padding).
//!
//! Contract of a change record (see `docs/design.md`, "Kernel side"): a [`RecordHeader`] followed by the
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
    /// Trailing-edge refresh: fields that change without an event of their own (on-CPU time,
    /// task state, uid, ppid, comm after a rename) changed since the process's last record. Sent
    /// by the flush program, at most once per process per flush period (`--update-interval`).
    pub const PROC_REFRESH: u16 = 4;
    /// A process that existed before the probes attached was first seen running.
    pub const PROC_FIRST_SEEN: u16 = 5;
    /// A TCP socket changed state (`inet_sock_set_state`).
    pub const CONN_STATE: u16 = 16;
    /// Trailing-edge refresh: the socket's byte counters (or its owner) changed since its last
    /// record. Sent by the flush program, at most once per connection per flush period.
    pub const CONN_REFRESH: u16 = 17;
}

/// Flags in [`ProcState::flags`].
pub mod proc_flags {
    /// The process has exited (its last thread was switched out for good); `exit_ns`,
    /// `exit_code` and the final `cpu_ns` are valid.
    pub const EXITED: u32 = 1;
    /// The process predates the probes (or its entry was lost): first seen running, not forked.
    pub const FIRST_SEEN_RUNNING: u32 = 2;
    /// The last thread called exit (`exit_ns`, `exit_code` set); the exit record follows at that
    /// thread's final context switch, when its on-CPU time is final. Kernel-internal.
    pub const EXITING: u32 = 4;
    /// Changes are waiting for the flush program (the key is in the dirty queue).
    /// Kernel-internal: user space ignores it.
    pub const DIRTY: u32 = 8;
    /// The thread walk that sums `cpu_ns` stopped at [`super::MAX_THREADS_WALKED`] threads:
    /// `cpu_ns` is a lower bound.
    pub const CPU_PARTIAL: u32 = 16;
    /// The process is a kernel thread (`PF_KTHREAD`).
    pub const KERNEL_THREAD: u32 = 32;
    /// The parent exited: `ppid` is re-read once the kernel has reparented the process.
    /// Kernel-internal.
    pub const REPARENT_PENDING: u32 = 64;
    /// Exited at an unknown time (a zombie found at start-up): `exit_ns` is when the tool
    /// learned it, not when it exited. Set by user space only.
    pub const EXIT_TIME_UNKNOWN: u32 = 128;
    /// `rss_bytes` is known: the group leader had an address space (`mm`) when sampled. Not
    /// set for kernel threads, exited processes, or a leader whose `mm` is gone.
    pub const RSS_KNOWN: u32 = 256;
    /// `cgroup_id` is known: the group leader's default-hierarchy cgroup was read when sampled.
    pub const CGROUP_KNOWN: u32 = 512;
}

/// Flags in [`ConnState::flags`].
pub mod conn_flags {
    /// The socket reached `TCP_CLOSE`; `end_ns` is valid (unless [`END_UNKNOWN`]).
    pub const CLOSED: u32 = 1;
    /// `pid`/`comm` are known: taken in process context (connect, listen, send or receive), or
    /// inherited from the listener ([`OWNER_FROM_LISTENER`]).
    pub const OWNER_KNOWN: u32 = 2;
    /// The owner is the listener's owner (an accepted socket that did no I/O yet); the first
    /// send/receive in process context replaces it with the process that uses the socket.
    pub const OWNER_FROM_LISTENER: u32 = 4;
    /// Changes are waiting for the flush program. Kernel-internal.
    pub const DIRTY: u32 = 8;
    /// First seen after it was established (it predates the probes): `start_ns` is when the
    /// probes first saw it, not when it started.
    pub const START_UNKNOWN: u32 = 16;
    /// Closed at an unknown time (a TIME-WAIT remnant found at start-up): `end_ns` is when the
    /// tool learned it, not when it closed. Set by user space only.
    pub const END_UNKNOWN: u32 = 32;
    /// The byte counters are unknown (a connection found at start-up whose counters could not
    /// be read): they read 0 but mean "unknown". Set by user space only.
    pub const BYTES_UNKNOWN: u32 = 64;
    /// A state change that neither opened nor closed the connection (or an owner learned at
    /// its first I/O) is in the entry but not yet sent: the flush program sends it with its
    /// next record of the entry (coalescing, at most one flush period late). Kernel-internal.
    pub const PENDING: u32 = 128;
}

/// Threads summed per process by the on-CPU time walk (bounded for the verifier); a process
/// with more threads gets [`proc_flags::CPU_PARTIAL`].
pub const MAX_THREADS_WALKED: u32 = 256;

/// Arguments of the flush program (`flush_dirty`), run by user space with `BPF_PROG_TEST_RUN`:
/// `ctx[0]` is a set of these bits, `ctx[1]` the flush cycle number.
pub mod flush_op {
    /// Mark the process running on this CPU dirty (the run is pinned to each CPU in turn), so
    /// a task that never leaves the CPU still gets its on-CPU time refreshed.
    pub const SAMPLE_CURRENT: u64 = 1;
    /// Pop up to [`MAX_PER_RUN`] keys of each dirty queue and send a refresh for each entity
    /// whose fields changed.
    pub const DRAIN: u64 = 2;
    /// Keys handled per table per run.
    pub const MAX_PER_RUN: u32 = 128;
    /// Set in the program's return value when both queues were emptied (or only keys kept for
    /// a later cycle remain); otherwise user space runs it again.
    pub const DRAINED: u32 = 1 << 31;
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
    /// A dirty queue was full: the entity was not queued (its next event queues it again).
    pub const DIRTY_QUEUE_FULL: u32 = 5;
    /// A TCP socket event whose 4-tuple could not be known (local port already released and
    /// never seen bound): the event was skipped.
    pub const CONN_UNKEYED: u32 = 6;
    /// Number of counters.
    pub const COUNT: u32 = 7;
}

/// Slots of the `EVENT_COUNTS` per-CPU array: process events the probes saw, host wide (every
/// process the pid filter passes), counted in the kernel whether or not a mode emits a record
/// of them, while at least one mode is on. Summed over CPUs by user space.
pub mod event_count {
    /// New thread groups (`sched_process_fork` of a new process, not of a thread).
    pub const FORKS: u32 = 0;
    /// `sched_process_exec` calls.
    pub const EXECS: u32 = 1;
    /// Processes whose last thread exited (counted once per process).
    pub const EXITS: u32 = 2;
    /// Number of counters.
    pub const COUNT: u32 = 3;
}

/// Header of every change record. 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
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
pub const RECORD_VERSION: u8 = 3;

/// Identity of a process: thread-group id plus the group leader's start time, so that a reused
/// pid makes a new key.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
pub struct ProcKey {
    /// Thread-group id (what user space calls the pid).
    pub tgid: u32,
    /// Explicit padding, always zero.
    pub pad: u32,
    /// `task->group_leader->start_time`: CLOCK_MONOTONIC ns at fork.
    pub start_ns: u64,
}

impl ProcKey {
    /// The key of the process `tgid` that started at `start_ns` (padding zero).
    pub const fn new(tgid: u32, start_ns: u64) -> ProcKey {
        ProcKey {
            tgid,
            pad: 0,
            start_ns,
        }
    }

    /// The `PROC_CMDLINE` key under which user space stores the /proc command line of the
    /// process `tgid` that predates the probes (its exact kernel start time is not in /proc):
    /// `pad` 1, `start_ns` 0, a key no state map uses. The kernel falls back to it when a
    /// process forks without an entry of its own, and deletes it when that process exits, so a
    /// reused pid never inherits it.
    pub const fn seeded_cmdline(tgid: u32) -> ProcKey {
        ProcKey {
            tgid,
            pad: 1,
            start_ns: 0,
        }
    }
}

/// Current state of a process, as held in the state map and carried in records. 120 bytes.
///
/// Every field but the kernel-internal ones is read from the kernel's task structures when the
/// record (or the map write) is made, so it follows setuid, reparenting and renames.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
pub struct ProcState {
    /// Parent's tgid (`group_leader->real_parent->tgid`), as of `sampled_ns`.
    pub ppid: u32,
    /// Real uid (`real_cred->uid`), as of `sampled_ns`.
    pub uid: u32,
    /// Raw `task->exit_code` of the last exiting thread (wait status: `(code >> 8) & 0xff` is
    /// the exit status, `code & 0x7f` the terminating signal, `code & 0x80` core dumped).
    pub exit_code: u32,
    /// [`proc_flags`] bits.
    pub flags: u32,
    /// Start time, CLOCK_MONOTONIC ns (same as the key's `start_ns`).
    pub start_ns: u64,
    /// Exit time (the last thread's `sched_process_exit`), CLOCK_MONOTONIC ns; 0 while running.
    pub exit_ns: u64,
    /// Lifetime on-CPU time of the whole thread group, ns: `signal->sum_sched_runtime` (threads
    /// that are gone) plus `se.sum_exec_runtime` of every live thread, as of `sampled_ns`. A
    /// running thread's share is as of its last scheduler tick.
    pub cpu_ns: u64,
    /// When the fields above were read from the kernel, CLOCK_MONOTONIC ns.
    pub sampled_ns: u64,
    /// Kernel-internal: last time a record of this process was emitted.
    pub last_emit_ns: u64,
    /// Poll-mode sequence number of the last change to this entry (0 = never while poll was on).
    pub poll_seq: u64,
    /// Kernel-internal: address of the group leader's `task_struct` (validated against the key
    /// before use). User space clears it on receipt; it never leaves the collector.
    pub task_addr: u64,
    /// The group leader's `__state` (scheduler state bits), as of `sampled_ns`.
    pub task_state: u32,
    /// The group leader's `exit_state` (`EXIT_ZOMBIE` 0x20, `EXIT_DEAD` 0x10), as of
    /// `sampled_ns`.
    pub exit_state: u32,
    /// Kernel-internal: thread id of the thread that saw the group die (its final context
    /// switch completes the exit).
    pub exit_tid: u32,
    /// Kernel-internal: flush cycle in which the entry was put back into the dirty queue.
    pub retry_cycle: u32,
    /// Live threads (`signal->nr_threads`), as of `sampled_ns`.
    pub threads: u32,
    /// Nice value of the group leader (`static_prio - 120`, what `/proc/PID/stat` field 19
    /// shows), as of `sampled_ns`.
    pub nice: i32,
    /// `comm` of the group leader, NUL-padded.
    pub comm: [u8; COMM_LEN],
    /// Resident set size in bytes, as `/proc/PID/status` VmRSS: the group leader's
    /// `mm->rss_stat[MM_FILEPAGES + MM_ANONPAGES + MM_SHMEMPAGES]` global counts (each clamped
    /// at 0, like `get_mm_counter`) times the page size, as of `sampled_ns`. Valid only with
    /// [`proc_flags::RSS_KNOWN`].
    pub rss_bytes: u64,
    /// Virtual memory size in bytes, as `/proc/PID/status` VmSize: the group leader's
    /// `mm->total_vm` pages times the page size, as of `sampled_ns`. Valid only with
    /// [`proc_flags::RSS_KNOWN`] (both come from the same `mm`).
    pub virt_bytes: u64,
    /// Id of the group leader's cgroup in the default (v2, unified) hierarchy:
    /// `task->cgroups->dfl_cgrp->kn->id`, what `bpf_get_current_cgroup_id` returns and the inode
    /// number of the cgroup's directory in the cgroup2 mount, as of `sampled_ns`. Valid only
    /// with [`proc_flags::CGROUP_KNOWN`].
    pub cgroup_id: u64,
}

/// Bytes of the command line kept per process ([`Cmdline::bytes`]).
pub const CMDLINE_LEN: usize = 256;

/// Flags in [`Cmdline::flags`].
pub mod cmdline_flags {
    /// The command line was longer than [`super::CMDLINE_LEN`] bytes: `bytes` holds its start.
    pub const TRUNCATED: u32 = 1;
    /// Reading the arguments from user memory failed: nothing is known.
    pub const READ_FAILED: u32 = 2;
}

/// A process's command line as its exec left it (`mm->arg_start .. arg_end`, NUL-separated
/// arguments), captured by the kernel at `sched_process_exec`, in the `PROC_CMDLINE` map keyed
/// by [`ProcKey`]. 264 bytes. A process that did not exec while the probes ran has no entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
pub struct Cmdline {
    /// Bytes of `bytes` in use (at most [`CMDLINE_LEN`]).
    pub len: u32,
    /// [`cmdline_flags`] bits.
    pub flags: u32,
    /// The arguments, each NUL-terminated, as in `/proc/PID/cmdline`.
    pub bytes: [u8; CMDLINE_LEN],
}

impl Default for Cmdline {
    fn default() -> Self {
        Cmdline {
            len: 0,
            flags: 0,
            bytes: [0; CMDLINE_LEN],
        }
    }
}

/// Identity of a TCP connection: family and 4-tuple. IPv4 addresses use the first 4 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
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

impl ConnKey {
    /// The key of an IPv4 connection: addresses as octets (stored in the first 4 bytes), ports
    /// in host byte order.
    pub const fn ipv4(saddr: [u8; 4], sport: u16, daddr: [u8; 4], dport: u16) -> ConnKey {
        let mut key = ConnKey {
            family: AF_INET,
            sport,
            dport,
            pad: 0,
            saddr: [0; 16],
            daddr: [0; 16],
        };
        let mut i = 0;
        while i < 4 {
            key.saddr[i] = saddr[i];
            key.daddr[i] = daddr[i];
            i += 1;
        }
        key
    }

    /// The key of an IPv6 connection: addresses as octets, ports in host byte order.
    pub const fn ipv6(saddr: [u8; 16], sport: u16, daddr: [u8; 16], dport: u16) -> ConnKey {
        ConnKey {
            family: AF_INET6,
            sport,
            dport,
            pad: 0,
            saddr,
            daddr,
        }
    }
}

/// Current state of a TCP connection. 96 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
pub struct ConnState {
    /// Owning process (tgid) when known ([`conn_flags::OWNER_KNOWN`]), else 0.
    pub pid: u32,
    /// Current TCP state, kernel numbering (`TCP_ESTABLISHED` = 1 … `TCP_NEW_SYN_RECV` = 12).
    pub tcp_state: u32,
    /// Bit `1 << s` set for every TCP state `s` this connection has been seen in.
    pub states_seen_mask: u32,
    /// [`conn_flags`] bits.
    pub flags: u32,
    /// Payload bytes sent, each counted once: `tcp_sock.bytes_sent − bytes_retrans` (`ss -ti`
    /// bytes_sent minus bytes_retrans), lifetime.
    pub bytes_sent: u64,
    /// Payload bytes received in order: `tcp_sock.bytes_received`, less the peer's FIN once it
    /// arrived (`ss -ti` bytes_received), lifetime.
    pub bytes_received: u64,
    /// Connection start (connect, accept handshake, listen), CLOCK_MONOTONIC ns; first seen
    /// when [`conn_flags::START_UNKNOWN`].
    pub start_ns: u64,
    /// Time it reached `TCP_CLOSE`, CLOCK_MONOTONIC ns; 0 while open.
    pub end_ns: u64,
    /// Kernel-internal: last time a record of this connection was emitted.
    pub last_emit_ns: u64,
    /// Poll-mode sequence number of the last change to this entry.
    pub poll_seq: u64,
    /// Kernel-internal: address of the `struct sock` (validated against the key before use).
    /// User space clears it on receipt.
    pub sock_addr: u64,
    /// Kernel-internal: flush cycle in which the entry was put back into the dirty queue.
    pub retry_cycle: u32,
    /// Explicit padding, always zero.
    pub pad: u32,
    /// `comm` of the owning process (its group leader, as `ss -p` shows), NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// A process change record: header, key, full state. 160 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
pub struct ProcRecord {
    /// Common header; `table == table::PROCESSES`.
    pub header: RecordHeader,
    /// The process.
    pub key: ProcKey,
    /// Its state after the change.
    pub state: ProcState,
}

/// A connection change record: header, key, full state. 160 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
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
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
pub struct ProbeConfig {
    /// Which modes receive records / sequence numbers: bits from [`mode_bit`].
    pub modes_enabled: u32,
    /// Ring wake-up sampling: 1 = wake the consumer for every record (the kernel's default);
    /// N > 1 = submit with `BPF_RB_NO_WAKEUP` except every Nth record; 0 = always
    /// `BPF_RB_NO_WAKEUP` unless the ring is more than half full (the consumer drains on a
    /// timer whenever N != 1).
    pub ring_wakeup_every: u32,
    /// In-kernel filter: only this tgid (0 = all).
    pub filter_tgid: u32,
    /// In-kernel filter: only connections with this local or remote port (0 = all).
    pub filter_port: u16,
    /// Explicit padding, always zero.
    pub pad: u16,
    /// Write state to the LRU variant of the state maps instead of the plain hash maps (non-zero).
    pub use_lru_maps: u32,
    /// Non-zero: do not capture command lines at exec (`--no-cmdline`; arguments can hold
    /// secrets), and do not copy them at fork.
    pub skip_cmdline: u32,
}

/// Byte offsets of kernel struct fields, resolved from the running kernel's BTF by user space
/// and written into the probe's read-only `OFFSETS` global before load (the probes read kernel
/// memory with `bpf_probe_read_kernel` at these offsets, because Rust eBPF has no CO-RE).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
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
    /// `task_struct.se.sum_exec_runtime` (u64, ns)
    pub task_sum_exec_runtime: u32,
    /// `task_struct.__state` (u32)
    pub task_state: u32,
    /// `task_struct.exit_state` (int)
    pub task_exit_state: u32,
    /// `task_struct.flags` (u32, `PF_*`)
    pub task_flags: u32,
    /// `task_struct.thread_node` (list_head in `signal_struct.thread_head`)
    pub task_thread_node: u32,
    /// `task_struct.children` (list_head of child processes)
    pub task_children: u32,
    /// `task_struct.sibling` (list_head in the parent's `children`)
    pub task_sibling: u32,
    /// `signal_struct.thread_head` (list_head of live threads)
    pub signal_thread_head: u32,
    /// `signal_struct.sum_sched_runtime` (u64, ns of threads that are gone)
    pub signal_sum_sched_runtime: u32,
    /// `signal_struct.nr_threads` (int)
    pub signal_nr_threads: u32,
    /// `inet_sock.inet_sport` (be16; kept when the bound port `skc_num` is released)
    pub inet_sport: u32,
    /// `tcp_sock.bytes_sent` (u64: payload transmitted, retransmissions included)
    pub tcp_bytes_sent: u32,
    /// `tcp_sock.bytes_retrans` (u64: payload retransmitted)
    pub tcp_bytes_retrans: u32,
    /// `tcp_sock.bytes_received` (u64: sequence space received, the FIN included)
    pub tcp_bytes_received: u32,
    /// `sock_common.skc_flags` (unsigned long, `SOCK_*` bits)
    pub skc_flags: u32,
    /// Bit number of `SOCK_DONE` in `skc_flags` (set when the peer's FIN arrived)
    pub sock_done_bit: u32,
    /// `tcp_sock.snd_una` (u32)
    pub tcp_snd_una: u32,
    /// `tcp_sock.write_seq` (u32)
    pub tcp_write_seq: u32,
    /// `task_struct.static_prio` (int; nice = static_prio - 120)
    pub task_static_prio: u32,
    /// `task_struct.mm` (pointer; NULL for kernel threads and after exit_mm)
    pub task_mm: u32,
    /// `mm_struct.rss_stat[MM_FILEPAGES].count` (s64 pages, the percpu_counter's global value)
    pub mm_rss_file: u32,
    /// `mm_struct.rss_stat[MM_ANONPAGES].count`
    pub mm_rss_anon: u32,
    /// `mm_struct.rss_stat[MM_SHMEMPAGES].count`
    pub mm_rss_shmem: u32,
    /// log2 of the page size (not an offset: user space's `sysconf(_SC_PAGESIZE)`)
    pub page_shift: u32,
    /// `mm_struct.arg_start` (unsigned long, user address of the first argument)
    pub mm_arg_start: u32,
    /// `mm_struct.arg_end` (unsigned long)
    pub mm_arg_end: u32,
    /// `mm_struct.total_vm` (unsigned long, pages)
    pub mm_total_vm: u32,
    /// `task_struct.cgroups` (pointer to `struct css_set`)
    pub task_cgroups: u32,
    /// `css_set.dfl_cgrp` (pointer to the default hierarchy's `struct cgroup`)
    pub css_set_dfl_cgrp: u32,
    /// `cgroup.kn` (pointer to `struct kernfs_node`)
    pub cgroup_kn: u32,
    /// `kernfs_node.id` (u64; the cgroup id, the directory's inode number on 64-bit)
    pub kernfs_node_id: u32,
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
            task_sum_exec_runtime: 0,
            task_state: 0,
            task_exit_state: 0,
            task_flags: 0,
            task_thread_node: 0,
            task_children: 0,
            task_sibling: 0,
            signal_thread_head: 0,
            signal_sum_sched_runtime: 0,
            signal_nr_threads: 0,
            inet_sport: 0,
            tcp_bytes_sent: 0,
            tcp_bytes_retrans: 0,
            tcp_bytes_received: 0,
            skc_flags: 0,
            sock_done_bit: 0,
            tcp_snd_una: 0,
            tcp_write_seq: 0,
            task_static_prio: 0,
            task_mm: 0,
            mm_rss_file: 0,
            mm_rss_anon: 0,
            mm_rss_shmem: 0,
            page_shift: 0,
            mm_arg_start: 0,
            mm_arg_end: 0,
            mm_total_vm: 0,
            task_cgroups: 0,
            css_set_dfl_cgrp: 0,
            cgroup_kn: 0,
            kernfs_node_id: 0,
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
/// Kernel `TCP_SYN_RECV` state number.
pub const TCP_SYN_RECV: u32 = 3;
/// Kernel `TASK_DEAD` bit of `task_struct.__state` (the task's final context switch).
pub const TASK_DEAD: u32 = 0x80;
/// Kernel `EXIT_ZOMBIE` value of `task_struct.exit_state`.
pub const EXIT_ZOMBIE: u32 = 0x20;
/// Kernel `EXIT_DEAD` value of `task_struct.exit_state`.
pub const EXIT_DEAD: u32 = 0x10;
/// Kernel `PF_EXITING` bit of `task_struct.flags`.
pub const PF_EXITING: u32 = 0x4;
/// Kernel `PF_KTHREAD` bit of `task_struct.flags`.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// Configuration of the transport benchmark probe (`bench_sys_enter`, in its own object),
/// index 0 of `BENCH_CONFIG`. Loaded only by `bpftop-ordered bench --transport`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "user",
    derive(
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout
    )
)]
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
    unsafe impl aya::Pod for super::Cmdline {}
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
        assert_eq!(size_of::<ProcState>(), 136);
        assert_eq!(offset_of!(ProcState, task_addr), 64);
        assert_eq!(offset_of!(ProcState, nice), 92);
        assert_eq!(offset_of!(ProcState, comm), 96);
        assert_eq!(offset_of!(ProcState, rss_bytes), 112);
        assert_eq!(offset_of!(ProcState, cgroup_id), 128);
        assert_eq!(size_of::<ConnKey>(), 40);
        assert_eq!(offset_of!(ConnKey, saddr), 8);
        assert_eq!(offset_of!(ConnKey, daddr), 24);
        assert_eq!(size_of::<ConnState>(), 96);
        assert_eq!(offset_of!(ConnState, sock_addr), 64);
        assert_eq!(offset_of!(ConnState, comm), 80);
        assert_eq!(size_of::<ProcRecord>(), 24 + 16 + 136);
        assert_eq!(offset_of!(ProcRecord, key), 24);
        assert_eq!(offset_of!(ProcRecord, state), 40);
        assert_eq!(size_of::<ConnRecord>(), 24 + 40 + 96);
        assert_eq!(offset_of!(ConnRecord, state), 64);
        assert_eq!(size_of::<ProbeConfig>(), 24);
        assert_eq!(size_of::<KernelOffsets>(), 208);
        assert_eq!(size_of::<Cmdline>(), 8 + CMDLINE_LEN);
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

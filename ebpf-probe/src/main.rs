//! Kernel side of bpftop-ordered.
//!
//! Raw tracepoints (attached by name; no tracefs, no kprobes) keep two state maps current —
//! processes keyed by (tgid, leader start time) and TCP connections keyed by family + 4-tuple —
//! and offer every change to the enabled bridge modes:
//! - `ring`: one record into the `RING` ring buffer;
//! - `perf`: one record into the per-CPU `PERF` perf event array;
//! - `poll`: a sequence number stamped into the state entry (`poll_seq`).
//!
//! Each (mode, table) pair has its own sequence counter in `SEQ`, advanced only for records
//! offered to that mode, *before* the transport is tried, so a transport failure is a visible gap.
//! Kernel struct offsets come from user space (BTF) through the read-only `OFFSETS` global.
#![no_std]
#![no_main]
// The bpf target has no compare-and-swap, so core's AtomicU64::fetch_add is unavailable; the
// intrinsic lowers to BPF_ATOMIC (BPF_ADD | BPF_FETCH), which needs -Ctarget-cpu=v3.
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::AtomicOrdering;

use aya_ebpf::{
    bindings::{BPF_F_CURRENT_CPU, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_perf_event_output,
        bpf_probe_read_kernel,
    },
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerfEventByteArray, RingBuf},
    programs::RawTracePointContext,
    EbpfContext,
};
use probe_common::{
    conn_flags, failure, kind, mode, mode_bit, proc_flags, seq_index, table, BenchConfig, ConnKey,
    ConnRecord, ConnState, KernelOffsets, ProbeConfig, ProcKey, ProcRecord, ProcState,
    RecordHeader, AF_INET, AF_INET6, COMM_LEN, IPPROTO_TCP, RECORD_VERSION, SEQ_SLOTS, TCP_CLOSE,
    TCP_LISTEN, TCP_SYN_SENT,
};

/// Filled in by user space before load (`EbpfLoader::set_global`), frozen read-only.
#[no_mangle]
static OFFSETS: KernelOffsets = KernelOffsets::zeroed();

#[map]
static CONFIG: Array<ProbeConfig> = Array::with_max_entries(1, 0);

#[map]
static SEQ: Array<u64> = Array::with_max_entries(SEQ_SLOTS, 0);

#[map]
static FAILURES: PerCpuArray<u64> = PerCpuArray::with_max_entries(failure::COUNT, 0);

/// Per CPU: when the task now on this CPU was switched in (ns), 0 = unknown.
#[map]
static CPU_SWITCH_IN_NS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map]
static PROC_STATE: HashMap<ProcKey, ProcState> = HashMap::with_max_entries(16384, 0);

#[map]
static PROC_STATE_LRU: LruHashMap<ProcKey, ProcState> = LruHashMap::with_max_entries(16384, 0);

#[map]
static CONN_STATE: HashMap<ConnKey, ConnState> = HashMap::with_max_entries(16384, 0);

#[map]
static CONN_STATE_LRU: LruHashMap<ConnKey, ConnState> = LruHashMap::with_max_entries(16384, 0);

/// Owner of a socket that is connecting: `tcp_v{4,6}_connect` sets SYN_SENT before it picks the
/// local port, so the 4-tuple is not known yet. Keyed by the `struct sock` address.
#[map]
static CONNECTING_OWNER: LruHashMap<u64, ConnOwner> = LruHashMap::with_max_entries(4096, 0);

/// The 4-tuple of each TCP socket as last seen with its local port bound. By the time a socket
/// reaches `TCP_CLOSE` (and for time-wait hand-over) the kernel may already have released the
/// port (`inet_num == 0`), so the final transitions are keyed by this memo.
#[map]
static SOCK_KEYS: LruHashMap<u64, ConnKey> = LruHashMap::with_max_entries(16384, 0);

#[map]
static RING: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

#[map]
static PERF: PerfEventByteArray = PerfEventByteArray::new(0);

#[repr(C)]
#[derive(Clone, Copy)]
struct ConnOwner {
    pid: u32,
    pad: u32,
    since_ns: u64,
    comm: [u8; COMM_LEN],
}

/// Atomically adds `value` to `*counter` and returns the previous value.
///
/// SeqCst on purpose: with `Relaxed`, LLVM 22's BPF backend emits the non-fetching
/// `lock *(u64 *)(r) += v` and hands back the operand instead of the old value (seen here: every
/// sequence number came out as 2). SeqCst selects `atomic_fetch_add`.
///
/// # Safety
/// `counter` must point to a live, 8-byte aligned u64 (a map value field).
#[inline(always)]
unsafe fn atomic_add(counter: *mut u64, value: u64) -> u64 {
    unsafe { core::intrinsics::atomic_xadd::<u64, u64, { AtomicOrdering::SeqCst }>(counter, value) }
}

#[inline(always)]
fn offsets() -> KernelOffsets {
    // SAFETY: a plain read of a static; volatile so the compiler keeps the load from .rodata that
    // user space patched, instead of folding the zero initialiser.
    unsafe { core::ptr::read_volatile(&OFFSETS) }
}

#[inline(always)]
fn config() -> Option<ProbeConfig> {
    CONFIG.get(0).copied()
}

#[inline(always)]
fn count_failure(which: u32) {
    if let Some(counter) = FAILURES.get_ptr_mut(which) {
        // SAFETY: per-CPU slot, only this CPU writes it while preemption is off in the program.
        unsafe { *counter += 1 };
    }
}

/// Reads a `T` at `base + offset` in kernel memory; `None` (and a counted failure) on fault.
#[inline(always)]
fn read_at<T>(base: u64, offset: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel copes with any address; a bad one returns an error.
    match unsafe { bpf_probe_read_kernel((base + offset as u64) as *const T) } {
        Ok(value) => Some(value),
        Err(_) => {
            count_failure(failure::KERNEL_READ);
            None
        }
    }
}

/// Advances the (mode, table) sequence counter and returns the new value (first is 1).
#[inline(always)]
fn next_seq(mode: u32, table: u8) -> u64 {
    match SEQ.get_ptr_mut(seq_index(mode, table)) {
        // SAFETY: the pointer is to a live array slot; AtomicU64 has the layout of u64.
        Some(slot) => unsafe { atomic_add(slot, 1) + 1 },
        None => 0,
    }
}

#[inline(always)]
fn ring_flags(cfg: &ProbeConfig, seq: u64) -> u64 {
    let every = cfg.ring_wakeup_every as u64;
    if every <= 1 {
        0
    } else if seq % every == 0 {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

#[inline(always)]
fn perf_output<C: EbpfContext, T>(ctx: &C, record: &T) -> bool {
    // SAFETY: PERF is a live map definition (the static itself is what the loader relocates),
    // `record` is a valid stack object of size_of::<T>() bytes.
    let ret = unsafe {
        bpf_perf_event_output(
            ctx.as_ptr(),
            core::ptr::from_ref(&PERF).cast_mut().cast(),
            BPF_F_CURRENT_CPU,
            core::ptr::from_ref(record).cast_mut().cast(),
            core::mem::size_of::<T>() as u64,
        )
    };
    ret == 0
}

/// Stamps the poll sequence number into `state` when poll mode is on. Call before the state
/// map is written, once per change that the incremental modes also see as a record.
#[inline(always)]
fn stamp_poll_seq(cfg: &ProbeConfig, table: u8) -> Option<u64> {
    if cfg.modes_enabled & mode_bit(mode::POLL) != 0 {
        Some(next_seq(mode::POLL, table))
    } else {
        None
    }
}

#[inline(always)]
fn emit_proc<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    kind: u16,
    key: &ProcKey,
    state: &ProcState,
    now: u64,
) {
    let mut record = ProcRecord {
        header: RecordHeader {
            kind,
            table: table::PROCESSES,
            version: RECORD_VERSION,
            len: core::mem::size_of::<ProcRecord>() as u32,
            seq: 0,
            ktime_ns: now,
        },
        key: *key,
        state: *state,
    };
    if cfg.modes_enabled & mode_bit(mode::RING) != 0 {
        record.header.seq = next_seq(mode::RING, table::PROCESSES);
        if RING
            .output::<ProcRecord>(&record, ring_flags(cfg, record.header.seq))
            .is_err()
        {
            count_failure(failure::RING_RESERVE);
        }
    }
    if cfg.modes_enabled & mode_bit(mode::PERF) != 0 {
        record.header.seq = next_seq(mode::PERF, table::PROCESSES);
        if !perf_output(ctx, &record) {
            count_failure(failure::PERF_OUTPUT);
        }
    }
}

#[inline(always)]
fn emit_conn<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    kind: u16,
    key: &ConnKey,
    state: &ConnState,
    now: u64,
) {
    let mut record = ConnRecord {
        header: RecordHeader {
            kind,
            table: table::CONNECTIONS,
            version: RECORD_VERSION,
            len: core::mem::size_of::<ConnRecord>() as u32,
            seq: 0,
            ktime_ns: now,
        },
        key: *key,
        state: *state,
    };
    if cfg.modes_enabled & mode_bit(mode::RING) != 0 {
        record.header.seq = next_seq(mode::RING, table::CONNECTIONS);
        if RING
            .output::<ConnRecord>(&record, ring_flags(cfg, record.header.seq))
            .is_err()
        {
            count_failure(failure::RING_RESERVE);
        }
    }
    if cfg.modes_enabled & mode_bit(mode::PERF) != 0 {
        record.header.seq = next_seq(mode::PERF, table::CONNECTIONS);
        if !perf_output(ctx, &record) {
            count_failure(failure::PERF_OUTPUT);
        }
    }
}

#[inline(always)]
fn proc_get(cfg: &ProbeConfig, key: &ProcKey) -> Option<*mut ProcState> {
    if cfg.use_lru_maps != 0 {
        PROC_STATE_LRU.get_ptr_mut(key)
    } else {
        PROC_STATE.get_ptr_mut(key)
    }
}

#[inline(always)]
fn proc_put(cfg: &ProbeConfig, key: &ProcKey, state: &ProcState) {
    let result = if cfg.use_lru_maps != 0 {
        PROC_STATE_LRU.insert(key, state, 0)
    } else {
        PROC_STATE.insert(key, state, 0)
    };
    if result.is_err() {
        count_failure(failure::PROC_MAP_FULL);
    }
}

#[inline(always)]
fn conn_get(cfg: &ProbeConfig, key: &ConnKey) -> Option<*mut ConnState> {
    if cfg.use_lru_maps != 0 {
        CONN_STATE_LRU.get_ptr_mut(key)
    } else {
        CONN_STATE.get_ptr_mut(key)
    }
}

#[inline(always)]
fn conn_put(cfg: &ProbeConfig, key: &ConnKey, state: &ConnState) {
    let result = if cfg.use_lru_maps != 0 {
        CONN_STATE_LRU.insert(key, state, 0)
    } else {
        CONN_STATE.insert(key, state, 0)
    };
    if result.is_err() {
        count_failure(failure::CONN_MAP_FULL);
    }
}

/// Identity of the process `task` belongs to: (tgid, group leader's start time).
#[inline(always)]
fn proc_key_of(off: &KernelOffsets, task: u64) -> Option<ProcKey> {
    let tgid: u32 = read_at(task, off.task_tgid)?;
    let leader: u64 = read_at(task, off.task_group_leader)?;
    let start_ns: u64 = read_at(leader, off.task_start_time)?;
    Some(ProcKey {
        tgid,
        pad: 0,
        start_ns,
    })
}

/// Fresh state for a process read from its group leader.
#[inline(always)]
fn proc_state_of(off: &KernelOffsets, task: u64, start_ns: u64, flags: u32) -> Option<ProcState> {
    let leader: u64 = read_at(task, off.task_group_leader)?;
    let parent: u64 = read_at(leader, off.task_real_parent)?;
    let ppid: u32 = read_at(parent, off.task_tgid).unwrap_or(0);
    let cred: u64 = read_at(leader, off.task_real_cred)?;
    let uid: u32 = read_at(cred, off.cred_uid).unwrap_or(0);
    let comm: [u8; COMM_LEN] = read_at(leader, off.task_comm)?;
    Some(ProcState {
        ppid,
        uid,
        exit_code: 0,
        flags,
        start_ns,
        exit_ns: 0,
        cpu_ns: 0,
        last_emit_ns: 0,
        poll_seq: 0,
        comm,
    })
}

#[inline(always)]
fn tgid_passes(cfg: &ProbeConfig, tgid: u32) -> bool {
    cfg.filter_tgid == 0 || cfg.filter_tgid == tgid
}

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    let _ = try_process_fork(&ctx);
    0
}

fn try_process_fork(ctx: &RawTracePointContext) -> Option<()> {
    let off = offsets();
    let cfg = config()?;
    if off.valid == 0 || cfg.modes_enabled == 0 {
        return None;
    }
    let child: u64 = ctx.arg(1);
    let pid: u32 = read_at(child, off.task_pid)?;
    let tgid: u32 = read_at(child, off.task_tgid)?;
    if pid != tgid || !tgid_passes(&cfg, tgid) {
        return None; // a new thread, not a new process
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let start_ns: u64 = read_at(child, off.task_start_time)?;
    let key = ProcKey {
        tgid,
        pad: 0,
        start_ns,
    };
    let mut state = proc_state_of(&off, child, start_ns, 0)?;
    if let Some(seq) = stamp_poll_seq(&cfg, table::PROCESSES) {
        state.poll_seq = seq;
    }
    state.last_emit_ns = now;
    proc_put(&cfg, &key, &state);
    emit_proc(ctx, &cfg, kind::PROC_FORK, &key, &state, now);
    Some(())
}

/// `sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    let _ = try_process_exec(&ctx);
    0
}

fn try_process_exec(ctx: &RawTracePointContext) -> Option<()> {
    let off = offsets();
    let cfg = config()?;
    if off.valid == 0 || cfg.modes_enabled == 0 {
        return None;
    }
    let task: u64 = ctx.arg(0);
    let key = proc_key_of(&off, task)?;
    if !tgid_passes(&cfg, key.tgid) {
        return None;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    // After exec the task is the group leader and `comm` holds the new program's name.
    let comm: [u8; COMM_LEN] = read_at(task, off.task_comm)?;
    let mut state = match proc_get(&cfg, &key) {
        // SAFETY: pointer into a live map value; we copy it out.
        Some(existing) => unsafe { *existing },
        None => proc_state_of(&off, task, key.start_ns, proc_flags::FIRST_SEEN_RUNNING)?,
    };
    state.comm = comm;
    state.last_emit_ns = now;
    if let Some(seq) = stamp_poll_seq(&cfg, table::PROCESSES) {
        state.poll_seq = seq;
    }
    proc_put(&cfg, &key, &state);
    emit_proc(ctx, &cfg, kind::PROC_EXEC, &key, &state, now);
    Some(())
}

/// `sched_process_exit(struct task_struct *p, ...)`: fires per thread; the process has exited
/// when the thread group's `signal->live` count has dropped to zero.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(ctx: RawTracePointContext) -> i32 {
    let _ = try_process_exit(&ctx);
    0
}

fn try_process_exit(ctx: &RawTracePointContext) -> Option<()> {
    let off = offsets();
    let cfg = config()?;
    if off.valid == 0 || cfg.modes_enabled == 0 {
        return None;
    }
    let task: u64 = ctx.arg(0);
    let signal: u64 = read_at(task, off.task_signal)?;
    let live: i32 = read_at(signal, off.signal_live)?;
    if live != 0 {
        return None; // other threads of the group are still alive
    }
    let key = proc_key_of(&off, task)?;
    if !tgid_passes(&cfg, key.tgid) {
        return None;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let exit_code: u32 = read_at(task, off.task_exit_code)?;
    let mut state = match proc_get(&cfg, &key) {
        // SAFETY: pointer into a live map value; we copy it out.
        Some(existing) => unsafe { *existing },
        None => proc_state_of(&off, task, key.start_ns, proc_flags::FIRST_SEEN_RUNNING)?,
    };
    if state.flags & proc_flags::EXITED != 0 {
        return None;
    }
    // The exiting task is on this CPU now: account its last slice and restart the clock so the
    // final switch-out does not count it again.
    if let Some(switch_in) = CPU_SWITCH_IN_NS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot of this CPU.
        unsafe {
            let since = *switch_in;
            if since != 0 && since < now {
                state.cpu_ns += now - since;
            }
            *switch_in = now;
        }
    }
    state.flags |= proc_flags::EXITED;
    state.exit_ns = now;
    state.exit_code = exit_code;
    state.last_emit_ns = now;
    if let Some(seq) = stamp_poll_seq(&cfg, table::PROCESSES) {
        state.poll_seq = seq;
    }
    proc_put(&cfg, &key, &state);
    emit_proc(ctx, &cfg, kind::PROC_EXIT, &key, &state, now);
    Some(())
}

/// `sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int
/// prev_state)`: charges the slice that just ended to `prev`'s process.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(ctx: RawTracePointContext) -> i32 {
    let _ = try_sched_switch(&ctx);
    0
}

fn try_sched_switch(ctx: &RawTracePointContext) -> Option<()> {
    let off = offsets();
    let cfg = config()?;
    if off.valid == 0 || cfg.modes_enabled == 0 {
        return None;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let switch_in = CPU_SWITCH_IN_NS.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot of this CPU.
    let since = unsafe {
        let since = *switch_in;
        *switch_in = now;
        since
    };
    if since == 0 || since >= now {
        return None;
    }
    let slice_ns = now - since;
    let prev: u64 = ctx.arg(1);
    let key = proc_key_of(&off, prev)?;
    if key.tgid == 0 || !tgid_passes(&cfg, key.tgid) {
        return None; // the idle task
    }
    match proc_get(&cfg, &key) {
        Some(existing) => {
            // SAFETY: pointer into a live map value; threads of one process may run on both
            // CPUs at once, so the counter is advanced atomically.
            let (flags, last_emit_ns) = unsafe { ((*existing).flags, (*existing).last_emit_ns) };
            if flags & proc_flags::EXITED != 0 {
                return None;
            }
            unsafe { atomic_add(core::ptr::addr_of_mut!((*existing).cpu_ns), slice_ns) };
            if now.saturating_sub(last_emit_ns) < cfg.update_interval_ns {
                return None;
            }
            // SAFETY: as above; the copy below is what the record carries.
            let mut state = unsafe {
                (*existing).last_emit_ns = now;
                if let Some(seq) = stamp_poll_seq(&cfg, table::PROCESSES) {
                    (*existing).poll_seq = seq;
                }
                *existing
            };
            state.last_emit_ns = now;
            emit_proc(ctx, &cfg, kind::PROC_CPU, &key, &state, now);
        }
        None => {
            // A process that predates the probes (or was evicted from an LRU map).
            let mut state =
                proc_state_of(&off, prev, key.start_ns, proc_flags::FIRST_SEEN_RUNNING)?;
            state.cpu_ns = slice_ns;
            state.last_emit_ns = now;
            if let Some(seq) = stamp_poll_seq(&cfg, table::PROCESSES) {
                state.poll_seq = seq;
            }
            proc_put(&cfg, &key, &state);
            emit_proc(ctx, &cfg, kind::PROC_FIRST_SEEN, &key, &state, now);
        }
    }
    Some(())
}

/// Reads a socket's family and 4-tuple; `None` for non-TCP or non-inet sockets.
#[inline(always)]
fn tcp_conn_key(off: &KernelOffsets, sk: u64) -> Option<ConnKey> {
    let protocol: u16 = read_at(sk, off.sock_protocol)?;
    if protocol != IPPROTO_TCP {
        return None;
    }
    let family: u16 = read_at(sk, off.skc_family)?;
    let sport: u16 = read_at(sk, off.skc_num)?;
    let dport_be: u16 = read_at(sk, off.skc_dport)?;
    let mut key = ConnKey {
        family,
        sport,
        dport: u16::from_be(dport_be),
        pad: 0,
        saddr: [0; 16],
        daddr: [0; 16],
    };
    if family == AF_INET {
        let s: [u8; 4] = read_at(sk, off.skc_rcv_saddr)?;
        let d: [u8; 4] = read_at(sk, off.skc_daddr)?;
        key.saddr[..4].copy_from_slice(&s);
        key.daddr[..4].copy_from_slice(&d);
    } else if family == AF_INET6 {
        key.saddr = read_at(sk, off.skc_v6_rcv_saddr)?;
        key.daddr = read_at(sk, off.skc_v6_daddr)?;
    } else {
        return None;
    }
    Some(key)
}

#[inline(always)]
fn port_passes(cfg: &ProbeConfig, key: &ConnKey) -> bool {
    cfg.filter_port == 0 || cfg.filter_port == key.sport || cfg.filter_port == key.dport
}

#[inline(always)]
fn current_owner(now: u64) -> ConnOwner {
    ConnOwner {
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        pad: 0,
        since_ns: now,
        comm: bpf_get_current_comm().unwrap_or([0; COMM_LEN]),
    }
}

#[inline(always)]
fn fresh_conn_state(now: u64) -> ConnState {
    ConnState {
        pid: 0,
        tcp_state: 0,
        states_seen_mask: 0,
        flags: 0,
        bytes_sent: 0,
        bytes_received: 0,
        start_ns: now,
        end_ns: 0,
        last_emit_ns: 0,
        poll_seq: 0,
        comm: [0; COMM_LEN],
    }
}

/// `inet_sock_set_state(const struct sock *sk, const int oldstate, const int newstate)`
#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: RawTracePointContext) -> i32 {
    let _ = try_sock_set_state(&ctx);
    0
}

fn try_sock_set_state(ctx: &RawTracePointContext) -> Option<()> {
    let off = offsets();
    let cfg = config()?;
    if off.valid == 0 || cfg.modes_enabled == 0 {
        return None;
    }
    let sk: u64 = ctx.arg(0);
    let old_state = ctx.arg::<u64>(1) as u32;
    let new_state = ctx.arg::<u64>(2) as u32;
    let now = unsafe { bpf_ktime_get_ns() };
    if new_state == TCP_SYN_SENT {
        // connect(): process context, but the local port is not chosen yet. Remember the owner
        // by socket address; the next transition carries the full 4-tuple.
        let protocol: u16 = read_at(sk, off.sock_protocol)?;
        if protocol == IPPROTO_TCP {
            let owner = current_owner(now);
            if tgid_passes(&cfg, owner.pid) {
                let _ = CONNECTING_OWNER.insert(sk, owner, 0);
            }
        }
        return None;
    }
    let mut key = tcp_conn_key(&off, sk)?;
    if key.sport == 0 {
        // Port already released: use the socket's remembered identity, or skip a socket we
        // never saw bound (it predates the probes).
        // SAFETY: pointer into a live map value; we copy it out.
        key = unsafe { *SOCK_KEYS.get_ptr(sk)? };
    } else if new_state != TCP_CLOSE {
        let _ = SOCK_KEYS.insert(sk, key, 0);
    }
    if new_state == TCP_CLOSE {
        let _ = SOCK_KEYS.remove(sk);
    }
    if !port_passes(&cfg, &key) {
        return None;
    }
    let mut state = match conn_get(&cfg, &key) {
        // A closed entry with the same 4-tuple is a previous connection: start afresh.
        // SAFETY: pointer into a live map value; we copy it out.
        Some(existing) if unsafe { (*existing).flags } & conn_flags::CLOSED == 0 => unsafe {
            *existing
        },
        _ => fresh_conn_state(now),
    };
    if let Some(owner) = CONNECTING_OWNER.get_ptr(sk) {
        // SAFETY: pointer into a live map value; we copy it out.
        let owner = unsafe { *owner };
        state.pid = owner.pid;
        state.comm = owner.comm;
        state.start_ns = owner.since_ns;
        state.flags |= conn_flags::OWNER_KNOWN;
        state.states_seen_mask |= 1 << TCP_SYN_SENT;
        let _ = CONNECTING_OWNER.remove(sk);
    }
    if new_state == TCP_LISTEN && state.pid == 0 {
        // listen(): process context.
        let owner = current_owner(now);
        state.pid = owner.pid;
        state.comm = owner.comm;
        state.flags |= conn_flags::OWNER_KNOWN;
    }
    if state.pid != 0 && !tgid_passes(&cfg, state.pid) {
        return None;
    }
    // An accepted socket is cloned from its listener and its first transition reports the
    // listener's LISTEN as the old state; only a real listener leaves LISTEN (for CLOSE).
    if old_state < 32 && (old_state != TCP_LISTEN || new_state == TCP_CLOSE) {
        state.states_seen_mask |= 1 << old_state;
    }
    if new_state < 32 {
        state.states_seen_mask |= 1 << new_state;
    }
    state.tcp_state = new_state;
    if new_state == TCP_CLOSE {
        state.flags |= conn_flags::CLOSED;
        state.end_ns = now;
    }
    state.last_emit_ns = now;
    if let Some(seq) = stamp_poll_seq(&cfg, table::CONNECTIONS) {
        state.poll_seq = seq;
    }
    conn_put(&cfg, &key, &state);
    emit_conn(ctx, &cfg, kind::CONN_STATE, &key, &state, now);
    Some(())
}

/// `sock_send_length(struct sock *sk, int ret, int flags)`
#[raw_tracepoint(tracepoint = "sock_send_length")]
pub fn sock_send_length(ctx: RawTracePointContext) -> i32 {
    let _ = try_sock_bytes(&ctx, true);
    0
}

/// `sock_recv_length(struct sock *sk, int ret, int flags)`
#[raw_tracepoint(tracepoint = "sock_recv_length")]
pub fn sock_recv_length(ctx: RawTracePointContext) -> i32 {
    let _ = try_sock_bytes(&ctx, false);
    0
}

const MSG_PEEK: u32 = 2;

fn try_sock_bytes(ctx: &RawTracePointContext, sent: bool) -> Option<()> {
    let off = offsets();
    let cfg = config()?;
    if off.valid == 0 || cfg.modes_enabled == 0 {
        return None;
    }
    let ret = ctx.arg::<u64>(1) as i32;
    let msg_flags = ctx.arg::<u64>(2) as u32;
    if ret <= 0 || (!sent && msg_flags & MSG_PEEK != 0) {
        return None;
    }
    let sk: u64 = ctx.arg(0);
    let key = tcp_conn_key(&off, sk)?;
    if !port_passes(&cfg, &key) {
        return None;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let bytes = ret as u64;
    match conn_get(&cfg, &key) {
        Some(existing) => {
            // SAFETY: pointer into a live map value. Counters are advanced atomically because
            // two threads may use one socket from both CPUs.
            let (pid, last_emit_ns) = unsafe { ((*existing).pid, (*existing).last_emit_ns) };
            unsafe {
                let counter = if sent {
                    core::ptr::addr_of_mut!((*existing).bytes_sent)
                } else {
                    core::ptr::addr_of_mut!((*existing).bytes_received)
                };
                atomic_add(counter, bytes);
            }
            let owner_missing = pid == 0;
            if owner_missing {
                // Process context: the first sender/receiver of an accepted socket owns it.
                let owner = current_owner(now);
                unsafe {
                    (*existing).pid = owner.pid;
                    (*existing).comm = owner.comm;
                    (*existing).flags |= conn_flags::OWNER_KNOWN;
                }
            }
            if !owner_missing && now.saturating_sub(last_emit_ns) < cfg.update_interval_ns {
                return None;
            }
            // SAFETY: as above.
            let state = unsafe {
                (*existing).last_emit_ns = now;
                if let Some(seq) = stamp_poll_seq(&cfg, table::CONNECTIONS) {
                    (*existing).poll_seq = seq;
                }
                *existing
            };
            emit_conn(ctx, &cfg, kind::CONN_BYTES, &key, &state, now);
        }
        None => {
            // A connection that predates the probes: take its current TCP state from the socket.
            let tcp_state: u8 = read_at(sk, off.skc_state)?;
            let owner = current_owner(now);
            let mut state = fresh_conn_state(now);
            state.tcp_state = tcp_state as u32;
            state.states_seen_mask = 1 << (tcp_state as u32 & 31);
            state.pid = owner.pid;
            state.comm = owner.comm;
            state.flags = conn_flags::OWNER_KNOWN;
            if sent {
                state.bytes_sent = bytes;
            } else {
                state.bytes_received = bytes;
            }
            state.last_emit_ns = now;
            if let Some(seq) = stamp_poll_seq(&cfg, table::CONNECTIONS) {
                state.poll_seq = seq;
            }
            conn_put(&cfg, &key, &state);
            emit_conn(ctx, &cfg, kind::CONN_BYTES, &key, &state, now);
        }
    }
    Some(())
}

/// Transport benchmark: its own maps, so measuring never disturbs the dashboard's transports.
#[map]
static BENCH_CONFIG: Array<BenchConfig> = Array::with_max_entries(1, 0);

#[map]
static BENCH_SEQ: Array<u64> = Array::with_max_entries(1, 0);

#[map]
static BENCH_RING: RingBuf = RingBuf::with_byte_size(1 << 24, 0);

#[map]
static BENCH_PERF: PerfEventByteArray = PerfEventByteArray::new(0);

/// `sys_enter(struct pt_regs *regs, long id)`, filtered to the benchmark's own thread group
/// and one syscall: each matching call emits one process record (the same 112-byte record the
/// dashboard decodes), so the consumer can be measured with and without the full pipeline.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn bench_sys_enter(ctx: RawTracePointContext) -> i32 {
    let _ = try_bench_sys_enter(&ctx);
    0
}

fn try_bench_sys_enter(ctx: &RawTracePointContext) -> Option<()> {
    let cfg = BENCH_CONFIG.get(0)?;
    let pid_tgid = bpf_get_current_pid_tgid();
    if cfg.tgid == 0 || (pid_tgid >> 32) as u32 != cfg.tgid {
        return None;
    }
    if ctx.arg::<u64>(1) != cfg.syscall_nr as u64 {
        return None;
    }
    let slot = BENCH_SEQ.get_ptr_mut(0)?;
    // SAFETY: live array slot.
    let seq = unsafe { atomic_add(slot, 1) } + 1;
    let now = unsafe { bpf_ktime_get_ns() };
    let record = ProcRecord {
        header: RecordHeader {
            kind: kind::PROC_CPU,
            table: table::PROCESSES,
            version: RECORD_VERSION,
            len: core::mem::size_of::<ProcRecord>() as u32,
            seq,
            ktime_ns: now,
        },
        key: ProcKey {
            tgid: cfg.tgid,
            pad: 0,
            start_ns: pid_tgid & 0xffff_ffff,
        },
        state: ProcState {
            ppid: 0,
            uid: 0,
            exit_code: 0,
            flags: 0,
            start_ns: 0,
            exit_ns: 0,
            cpu_ns: seq,
            last_emit_ns: now,
            poll_seq: 0,
            comm: [0; COMM_LEN],
        },
    };
    if cfg.transport == probe_common::BENCH_TRANSPORT_RING {
        let every = cfg.wakeup_every as u64;
        let flags = if every <= 1 {
            0
        } else if seq % every == 0 {
            BPF_RB_FORCE_WAKEUP as u64
        } else {
            BPF_RB_NO_WAKEUP as u64
        };
        if BENCH_RING.output::<ProcRecord>(&record, flags).is_err() {
            count_failure(failure::BENCH_DROP);
        }
    } else if cfg.transport == probe_common::BENCH_TRANSPORT_PERF {
        // SAFETY: as in `perf_output`, for the benchmark's own array.
        let ret = unsafe {
            bpf_perf_event_output(
                ctx.as_ptr(),
                core::ptr::from_ref(&BENCH_PERF).cast_mut().cast(),
                BPF_F_CURRENT_CPU,
                core::ptr::from_ref(&record).cast_mut().cast(),
                core::mem::size_of::<ProcRecord>() as u64,
            )
        };
        if ret != 0 {
            count_failure(failure::BENCH_DROP);
        }
    }
    Some(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

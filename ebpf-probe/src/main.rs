//! Kernel side of bpftop-ordered.
//!
//! Raw and BTF tracepoints (attached by name; no tracefs, no kprobes) keep two state maps current —
//! processes keyed by (tgid, leader start time) and TCP connections keyed by family + 4-tuple —
//! and offer every change to the enabled bridge modes:
//! - `ring`: one record into the `RING` ring buffer;
//! - `perf`: one record into the per-CPU `PERF` perf event array;
//! - `poll`: a sequence number stamped into the state entry (`poll_seq`).
//!
//! Each (mode, table) pair has its own sequence counter in `SEQ`, advanced only for records
//! offered to that mode, *before* the transport is tried, so a transport failure is a visible gap.
//!
//! Forks, execs, exits and TCP state changes are sent at once. What changes without an event of
//! its own — on-CPU time, task state, byte counters, a renamed or reparented process — marks
//! the entry dirty; `flush_dirty`, run by user space every `--update-interval`, sends one
//! refresh per dirty entity (the throttle's bound, and the trailing edge that makes the last
//! values of an entity that went quiet arrive).
#![no_std]
#![no_main]
// The bpf target has no compare-and-swap, so core's atomics are unavailable; the intrinsics
// lower to BPF_ATOMIC (with BPF_FETCH), which needs -Ctarget-cpu=v3.
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod atomic;
mod emit;
mod kread;
mod maps;
mod process;
mod tcp;

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_loop},
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
    EbpfContext,
};
use probe_common::flush_op;

use crate::{
    emit::config_ptr,
    kread::offsets_valid,
    maps::{CONN_DIRTY, PROC_DIRTY},
    process::Drained,
};

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    let _ = process::on_fork(&ctx, ctx.arg(1));
    0
}

/// `sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    let _ = process::on_exec(&ctx, ctx.arg(0));
    0
}

/// `sched_process_exit(struct task_struct *p, ...)`
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(ctx: RawTracePointContext) -> i32 {
    let _ = process::on_exit(&ctx, ctx.arg(0));
    0
}

/// `sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
/// unsigned int prev_state)`: a BTF tracepoint, `prev` read by plain loads.
#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    let _ = process::on_switch(&ctx, ctx.arg(1), ctx.arg::<u64>(3) as u32);
    0
}

/// `task_rename(struct task_struct *task, const char *comm)`
#[raw_tracepoint(tracepoint = "task_rename")]
pub fn task_rename(ctx: RawTracePointContext) -> i32 {
    let _ = process::on_rename(ctx.arg(0));
    0
}

/// `inet_sock_set_state(const struct sock *sk, const int oldstate, const int newstate)`: a
/// BTF tracepoint, so `sk` is typed and read by plain loads.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: BtfTracePointContext) -> i32 {
    let _ = tcp::on_set_state(
        &ctx,
        ctx.arg(0),
        ctx.arg::<u64>(1) as u32,
        ctx.arg::<u64>(2) as u32,
    );
    0
}

/// `sock_send_length(struct sock *sk, int ret, int flags)` (BTF tracepoint)
#[btf_tracepoint(function = "sock_send_length")]
pub fn sock_send_length(ctx: BtfTracePointContext) -> i32 {
    let _ = tcp::on_io(&ctx, ctx.arg(0), ctx.arg::<u64>(1) as i32);
    0
}

/// `sock_recv_length(struct sock *sk, int ret, int flags)` (BTF tracepoint)
#[btf_tracepoint(function = "sock_recv_length")]
pub fn sock_recv_length(ctx: BtfTracePointContext) -> i32 {
    let _ = tcp::on_io(&ctx, ctx.arg(0), ctx.arg::<u64>(1) as i32);
    0
}

/// The flush program: never attached, run by user space with `BPF_PROG_TEST_RUN` (pinned to
/// each CPU for [`flush_op::SAMPLE_CURRENT`]). `ctx[0]` = operation bits, `ctx[1]` = flush
/// cycle. Returns the number of keys handled, plus [`flush_op::DRAINED`] when done.
///
/// Written without `#[raw_tracepoint]`, whose wrapper always returns 0: the return value is
/// how user space knows whether to run it again.
#[no_mangle]
#[link_section = "raw_tp/bpftop_flush"]
pub fn flush_dirty(ctx: *mut core::ffi::c_void) -> u32 {
    try_flush(&RawTracePointContext::new(ctx)).unwrap_or(flush_op::DRAINED)
}

fn try_flush(ctx: &RawTracePointContext) -> Option<u32> {
    let cfg_ptr = config_ptr()?;
    // SAFETY: a pointer to the config map's value, which lives as long as the program.
    let cfg = unsafe { &*cfg_ptr };
    if !offsets_valid() || cfg.modes_enabled == 0 {
        return None;
    }
    let op: u64 = ctx.arg(0);
    if op & flush_op::SAMPLE_CURRENT != 0 {
        let _ = process::sample_current(ctx, cfg);
    }
    if op & flush_op::DRAIN == 0 {
        return Some(flush_op::DRAINED);
    }
    let mut drain = Drain {
        ctx: ctx.as_ptr(),
        cfg: cfg_ptr,
        cycle: ctx.arg::<u64>(1) as u32,
        handled: 0,
        now: unsafe { bpf_ktime_get_ns() },
        done: 0,
    };
    // SAFETY: the callbacks are BPF functions; `drain` outlives the calls.
    unsafe {
        bpf_loop(
            flush_op::MAX_PER_RUN,
            drain_proc_step as *mut core::ffi::c_void,
            core::ptr::addr_of_mut!(drain).cast(),
            0,
        );
        let procs_done = drain.done;
        drain.done = 0;
        bpf_loop(
            flush_op::MAX_PER_RUN,
            drain_conn_step as *mut core::ffi::c_void,
            core::ptr::addr_of_mut!(drain).cast(),
            0,
        );
        let done = if procs_done != 0 && drain.done != 0 {
            flush_op::DRAINED
        } else {
            0
        };
        Some(drain.handled | done)
    }
}

/// State of one drain run, shared with the `bpf_loop` callbacks (each verified once).
#[repr(C)]
struct Drain {
    ctx: *mut core::ffi::c_void,
    /// The config map's value (8 bytes here, not a 24-byte copy: the flush's call chain is
    /// within a few bytes of the verifier's 512-byte combined stack limit).
    cfg: *const probe_common::ProbeConfig,
    cycle: u32,
    handled: u32,
    now: u64,
    /// Set when the queue is empty or only keys kept for a later cycle remain.
    done: u32,
}

#[inline(never)]
extern "C" fn drain_proc_step(_index: u64, data: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `bpf_loop` passes the `Drain` given to it.
    let drain = unsafe { &mut *(data as *mut Drain) };
    let Ok(Some(key)) = PROC_DIRTY.pop() else {
        drain.done = 1;
        return 1;
    };
    drain.handled += 1;
    let ctx = RawTracePointContext::new(drain.ctx);
    if let Drained::Wrapped =
        process::drain_one(&ctx, unsafe { &*drain.cfg }, &key, drain.cycle, drain.now)
    {
        drain.done = 1;
        return 1;
    }
    0
}

#[inline(never)]
extern "C" fn drain_conn_step(_index: u64, data: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `bpf_loop` passes the `Drain` given to it.
    let drain = unsafe { &mut *(data as *mut Drain) };
    let Ok(Some(key)) = CONN_DIRTY.pop() else {
        drain.done = 1;
        return 1;
    };
    drain.handled += 1;
    let ctx = RawTracePointContext::new(drain.ctx);
    if let Drained::Wrapped =
        tcp::drain_one(&ctx, unsafe { &*drain.cfg }, &key, drain.cycle, drain.now)
    {
        drain.done = 1;
        return 1;
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

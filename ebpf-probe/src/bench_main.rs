//! The transport benchmark's probe, an object of its own (`bpftop-bench-probe.bpf.o`): the
//! product object carries only what the product runs, so no session ever loads these maps.
//! Loaded only by `bpftop-ordered bench --transport`.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

// Shared with the product object; this probe needs only `atomic_add`.
#[allow(dead_code)]
mod atomic;

use aya_ebpf::{
    bindings::{BPF_F_CURRENT_CPU, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_perf_event_output},
    macros::{map, raw_tracepoint},
    maps::{Array, PerCpuArray, PerfEventByteArray, RingBuf},
    programs::RawTracePointContext,
    EbpfContext,
};
use probe_common::{
    kind, table, BenchConfig, ProcKey, ProcRecord, ProcState, RecordHeader, COMM_LEN,
    RECORD_VERSION,
};

use crate::atomic::atomic_add;

#[map]
static BENCH_CONFIG: Array<BenchConfig> = Array::with_max_entries(1, 0);

#[map]
static BENCH_SEQ: Array<u64> = Array::with_max_entries(1, 0);

#[map]
static BENCH_RING: RingBuf = RingBuf::with_byte_size(1 << 24, 0);

#[map]
static BENCH_PERF: PerfEventByteArray = PerfEventByteArray::new(0);

/// Records the transport refused (ring reserve / perf output failed), per CPU.
#[map]
static BENCH_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn count_drop() {
    if let Some(counter) = BENCH_DROPS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot of this CPU.
        unsafe { *counter += 1 };
    }
}

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
            kind: kind::PROC_REFRESH,
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
            cpu_ns: seq,
            sampled_ns: now,
            last_emit_ns: now,
            comm: [0; COMM_LEN],
            ..ProcState::default()
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
            count_drop();
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
            count_drop();
        }
    }
    Some(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

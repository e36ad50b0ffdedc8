//! Offering a change to the enabled modes: sequence numbers, the ring buffer, the perf array,
//! the poll sequence stamp, and the per-CPU failure counters.

use aya_ebpf::{
    bindings::{
        BPF_F_CURRENT_CPU, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP,
        BPF_RB_RING_SIZE,
    },
    helpers::bpf_perf_event_output,
    EbpfContext,
};
use probe_common::{
    failure, mode, mode_bit, seq_index, table, ConnKey, ConnRecord, ConnState, ProbeConfig,
    ProcKey, ProcRecord, ProcState, RecordHeader, RECORD_VERSION,
};

use crate::{
    atomic::atomic_add,
    maps::{CONFIG, EVENT_COUNTS, FAILURES, PERF, RING, SEQ},
};

/// The run-time configuration written by user space; `None` before it is written.
#[inline(always)]
pub fn config() -> Option<ProbeConfig> {
    CONFIG.get(0).copied()
}

/// The run-time configuration in place (the map value, not a copy; all zero before user space
/// writes it). User space may rewrite it while a program runs, as it may between runs.
#[inline(always)]
pub fn config_ptr() -> Option<*const ProbeConfig> {
    CONFIG.get_ptr(0)
}

/// Adds one to a per-CPU failure counter ([`failure`]).
#[inline(always)]
pub fn count_failure(which: u32) {
    if let Some(counter) = FAILURES.get_ptr_mut(which) {
        // SAFETY: per-CPU slot; a nested program on this CPU could race the increment, which
        // at worst loses one count of a failure counter.
        unsafe { *counter += 1 };
    }
}

/// Adds one to a per-CPU process event counter ([`probe_common::event_count`]).
#[inline(always)]
pub fn count_event(which: u32) {
    if let Some(counter) = EVENT_COUNTS.get_ptr_mut(which) {
        // SAFETY: per-CPU slot; only a nested program on this CPU could race the increment
        // (process tracepoints do not nest with each other).
        unsafe { *counter += 1 };
    }
}

/// Advances the (mode, table) sequence counter and returns the new value (first is 1).
#[inline(always)]
pub fn next_seq(mode: u32, table: u8) -> u64 {
    match SEQ.get_ptr_mut(seq_index(mode, table)) {
        // SAFETY: the pointer is to a live array slot.
        Some(slot) => unsafe { atomic_add(slot, 1) + 1 },
        None => 0,
    }
}

/// The poll sequence number for a change to an entry of `table`, when poll mode is on. Call
/// once per change that is also offered to the incremental modes (or that only poll sees).
#[inline(always)]
pub fn poll_seq(cfg: &ProbeConfig, table: u8) -> Option<u64> {
    if cfg.modes_enabled & mode_bit(mode::POLL) != 0 {
        Some(next_seq(mode::POLL, table))
    } else {
        None
    }
}

/// Wake-up flags of a ring record. `ring_wakeup_every`: 1 = the kernel's default (wake a
/// consumer that has caught up); N > 1 = force a wake-up every Nth record; 0 = never wake for
/// a record (user space drains on its timer) unless the ring is more than half full, so a
/// burst still wakes the consumer before the ring overflows.
#[inline(always)]
fn ring_flags(cfg: &ProbeConfig, seq: u64) -> u64 {
    let every = cfg.ring_wakeup_every as u64;
    if every == 1 {
        0
    } else if every == 0 {
        if RING.query(BPF_RB_AVAIL_DATA as u64) * 2 > RING.query(BPF_RB_RING_SIZE as u64) {
            BPF_RB_FORCE_WAKEUP as u64
        } else {
            BPF_RB_NO_WAKEUP as u64
        }
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

#[inline(always)]
fn header<T>(kind: u16, table: u8, now: u64) -> RecordHeader {
    RecordHeader {
        kind,
        table,
        version: RECORD_VERSION,
        len: core::mem::size_of::<T>() as u32,
        seq: 0,
        ktime_ns: now,
    }
}

/// Offers `record` to ring and perf (each enabled mode gets its own sequence number, advanced
/// before the transport is tried so a failure is a visible gap).
#[inline(always)]
fn offer<C: EbpfContext, T: 'static>(
    ctx: &C,
    cfg: &ProbeConfig,
    table: u8,
    record: &mut T,
    seq_of: fn(&mut T) -> &mut u64,
) {
    if cfg.modes_enabled & mode_bit(mode::RING) != 0 {
        let seq = next_seq(mode::RING, table);
        *seq_of(record) = seq;
        if RING.output::<T>(&*record, ring_flags(cfg, seq)).is_err() {
            count_failure(failure::RING_RESERVE);
        }
    }
    if cfg.modes_enabled & mode_bit(mode::PERF) != 0 {
        *seq_of(record) = next_seq(mode::PERF, table);
        if !perf_output(ctx, record) {
            count_failure(failure::PERF_OUTPUT);
        }
    }
}

/// True when ring or perf would receive a record.
#[inline(always)]
pub fn incremental_enabled(cfg: &ProbeConfig) -> bool {
    cfg.modes_enabled & (mode_bit(mode::RING) | mode_bit(mode::PERF)) != 0
}

/// Sends the full current state of a process to the incremental modes; the record's time is
/// the state's `last_emit_ns`. A function of its own (five arguments, the BPF maximum) so its
/// 144-byte record has its own stack frame.
#[inline(never)]
pub fn emit_proc<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    kind: u16,
    key: &ProcKey,
    state: &ProcState,
) {
    let now = state.last_emit_ns;
    if !incremental_enabled(cfg) {
        return;
    }
    let mut record = ProcRecord {
        header: header::<ProcRecord>(kind, table::PROCESSES, now),
        key: *key,
        state: *state,
    };
    offer(ctx, cfg, table::PROCESSES, &mut record, |r| {
        &mut r.header.seq
    });
}

/// Sends the full current state of a connection to the incremental modes (see [`emit_proc`]).
#[inline(never)]
pub fn emit_conn<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    kind: u16,
    key: &ConnKey,
    state: &ConnState,
) {
    let now = state.last_emit_ns;
    if !incremental_enabled(cfg) {
        return;
    }
    let mut record = ConnRecord {
        header: header::<ConnRecord>(kind, table::CONNECTIONS, now),
        key: *key,
        state: *state,
    };
    offer(ctx, cfg, table::CONNECTIONS, &mut record, |r| {
        &mut r.header.seq
    });
}

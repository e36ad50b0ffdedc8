//! Atomic read-modify-write on map values. The bpf target has no compare-and-swap, so core's
//! atomics are unavailable; these intrinsics lower to BPF_ATOMIC with BPF_FETCH (needs
//! `-Ctarget-cpu=v3`).

use core::intrinsics::AtomicOrdering;

/// Atomically adds `value` to `*counter` and returns the previous value.
///
/// SeqCst on purpose: with `Relaxed`, LLVM 22's BPF backend emits the non-fetching
/// `lock *(u64 *)(r) += v` and hands back the operand instead of the old value (seen here: every
/// sequence number came out as 2). SeqCst selects `atomic_fetch_add`.
///
/// # Safety
/// `counter` must point to a live, 8-byte aligned u64 (a map value field).
#[inline(always)]
pub unsafe fn atomic_add(counter: *mut u64, value: u64) -> u64 {
    unsafe { core::intrinsics::atomic_xadd::<u64, u64, { AtomicOrdering::SeqCst }>(counter, value) }
}

/// Atomically sets `bits` in `*flags`; returns the previous value (BPF_OR | BPF_FETCH).
///
/// # Safety
/// `flags` must point to a live, 4-byte aligned u32 (a map value field).
#[inline(always)]
pub unsafe fn atomic_set_bits(flags: *mut u32, bits: u32) -> u32 {
    unsafe { core::intrinsics::atomic_or::<u32, u32, { AtomicOrdering::SeqCst }>(flags, bits) }
}

/// Atomically clears `bits` in `*flags`; returns the previous value (BPF_AND | BPF_FETCH).
///
/// # Safety
/// As for [`atomic_set_bits`].
#[inline(always)]
pub unsafe fn atomic_clear_bits(flags: *mut u32, bits: u32) -> u32 {
    unsafe { core::intrinsics::atomic_and::<u32, u32, { AtomicOrdering::SeqCst }>(flags, !bits) }
}

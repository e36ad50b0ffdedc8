//! Reading kernel memory at offsets resolved from BTF by user space.
//!
//! Rust eBPF has no CO-RE relocations, so struct fields are read with `bpf_probe_read_kernel`
//! at byte offsets that user space writes into the read-only `OFFSETS` global before load.
//! Fields are read one at a time ([`off!`]) so a program never copies the whole table to its
//! 512-byte stack.

use aya_ebpf::helpers::bpf_probe_read_kernel;
use probe_common::{failure, KernelOffsets};

use crate::emit::count_failure;

/// Filled in by user space before load (`EbpfLoader::override_global`), frozen read-only.
#[no_mangle]
pub static OFFSETS: KernelOffsets = KernelOffsets::zeroed();

/// One offset from [`OFFSETS`]: a volatile load, so the compiler keeps the read from .rodata
/// that user space patched instead of folding the zero initialiser.
macro_rules! off {
    ($field:ident) => {{
        // SAFETY: a plain read of a field of a static.
        #[allow(unused_unsafe)]
        let value =
            unsafe { core::ptr::read_volatile(core::ptr::addr_of!($crate::kread::OFFSETS.$field)) };
        value
    }};
}
pub(crate) use off;

/// True once user space has filled in the offsets.
#[inline(always)]
pub fn offsets_valid() -> bool {
    off!(valid) != 0
}

/// Reads a `T` at `base + offset` in kernel memory; `None` (and a counted failure) on fault.
#[inline(always)]
pub fn read_at<T>(base: u64, offset: u32) -> Option<T> {
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

/// Like [`read_at`] for a kernel pointer that may be stale (a task or socket remembered from an
/// earlier event): a fault is expected, so it is not counted.
#[inline(always)]
pub fn read_maybe_stale<T>(base: u64, offset: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: as in `read_at`.
    unsafe { bpf_probe_read_kernel((base + offset as u64) as *const T) }.ok()
}

/// How a program reads a kernel object: [`Btf`] by plain loads, [`Probe`] and [`Stale`] with
/// `bpf_probe_read_kernel` (a fault counted, or expected and not counted).
pub trait Mem {
    fn read<T: Copy>(base: u64, offset: u32) -> Option<T>;
}

/// Plain loads through a BTF-typed pointer (a `tp_btf` argument, or what
/// `bpf_skc_to_tcp_sock` returned for one). The verifier knows the pointer's type and checks
/// each load against it at load time (the offsets are constants read from the frozen
/// [`OFFSETS`]); the JIT turns a faulting load into a zero. No helper call, unlike
/// `bpf_probe_read_kernel` (~45 ns a read on the test VM).
pub struct Btf;

impl Mem for Btf {
    #[inline(always)]
    fn read<T: Copy>(base: u64, offset: u32) -> Option<T> {
        if base == 0 {
            return None;
        }
        let p = (base + offset as u64) as *const u8;
        // SAFETY: see the type's documentation; the loads are sized 1, 2, 4 or 8 bytes so
        // each one lies within one member the verifier can check.
        unsafe {
            let mut out = core::mem::MaybeUninit::<T>::uninit();
            let o = out.as_mut_ptr() as *mut u8;
            match core::mem::size_of::<T>() {
                1 => *o = core::ptr::read_volatile(p),
                2 => (o as *mut u16).write_unaligned(core::ptr::read_volatile(p as *const u16)),
                4 => (o as *mut u32).write_unaligned(core::ptr::read_volatile(p as *const u32)),
                8 => (o as *mut u64).write_unaligned(core::ptr::read_volatile(p as *const u64)),
                16 => {
                    (o as *mut u64).write_unaligned(core::ptr::read_volatile(p as *const u64));
                    (o.add(8) as *mut u64)
                        .write_unaligned(core::ptr::read_volatile(p.add(8) as *const u64));
                }
                _ => return read_at(base, offset),
            }
            Some(out.assume_init())
        }
    }
}

/// [`read_at`] as a [`Mem`].
pub struct Probe;

impl Mem for Probe {
    #[inline(always)]
    fn read<T: Copy>(base: u64, offset: u32) -> Option<T> {
        read_at(base, offset)
    }
}

/// [`read_maybe_stale`] as a [`Mem`].
pub struct Stale;

impl Mem for Stale {
    #[inline(always)]
    fn read<T: Copy>(base: u64, offset: u32) -> Option<T> {
        read_maybe_stale(base, offset)
    }
}

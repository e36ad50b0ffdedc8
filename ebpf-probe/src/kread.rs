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
    ($field:ident) => {
        {
            // SAFETY: a plain read of a field of a static.
            #[allow(unused_unsafe)]
            let value = unsafe {
                core::ptr::read_volatile(core::ptr::addr_of!($crate::kread::OFFSETS.$field))
            };
            value
        }
    };
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

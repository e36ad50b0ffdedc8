//! `perf_event_open(2)` for BPF output events and the shared mapping of a perf buffer.
//!
//! rustix wraps `mmap(2)` / `munmap(2)` and the page size, but not `perf_event_open(2)`, so that
//! one call is made raw here, next to the attribute layout it needs.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `PERF_ATTR_SIZE_VER1`: the attribute prefix up to `config2`.
const PERF_ATTR_SIZE_VER1: u32 = 72;

/// `struct perf_event_attr` up to `config2` (PERF_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
}

/// The size of a memory page in bytes (from the auxiliary vector; what `mmap` rounds to).
pub fn page_size_bytes() -> usize {
    rustix::param::page_size()
}

/// Opens a `PERF_COUNT_SW_BPF_OUTPUT` software event on `cpu` for all processes, sampling
/// every event as `PERF_SAMPLE_RAW`, that wakes a poller every `wakeup_events` samples; 0 =
/// only when half the buffer has been written since the last wake-up (no `watermark` attribute:
/// the kernel's default watermark is half the buffer). The returned fd is close-on-exec and owned by the caller.
pub fn open_bpf_output_event(cpu: u32, wakeup_events: u32) -> io::Result<OwnedFd> {
    let attr = PerfEventAttr {
        type_: PERF_TYPE_SOFTWARE,
        size: PERF_ATTR_SIZE_VER1,
        config: PERF_COUNT_SW_BPF_OUTPUT,
        sample_period: 1,
        sample_type: PERF_SAMPLE_RAW,
        wakeup_events,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid, initialised perf_event_attr prefix of the size it declares,
    // alive for the call; the other arguments are plain integers.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            cpu as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// A read-write `MAP_SHARED` mapping of a whole perf event fd (metadata page plus data pages),
/// unmapped on drop. Every access is bounds-checked against the mapping's length.
pub struct SharedMapping {
    ptr: NonNull<u8>,
    len_bytes: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; it is read through `&self`
// (copies and atomics) and unmapped only in `drop`, so moving it to another thread is sound.
unsafe impl Send for SharedMapping {}

impl SharedMapping {
    /// Maps the first `len_bytes` bytes of `fd` shared, readable and writable (a perf buffer:
    /// `(1 + 2^n)` pages).
    pub fn map(fd: impl AsFd, len_bytes: usize) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel (no fixed address), so no existing
        // memory is replaced; the result is checked by rustix.
        let addr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len_bytes,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )
        }?;
        let ptr = NonNull::new(addr.cast::<u8>()).expect("mmap does not return NULL on success");
        Ok(SharedMapping { ptr, len_bytes })
    }

    /// The 8-byte word at `offset_bytes`, as an atomic shared with the kernel.
    ///
    /// # Panics
    /// When the word is not inside the mapping or `offset_bytes` is not 8-byte aligned.
    pub fn atomic_u64(&self, offset_bytes: usize) -> &AtomicU64 {
        assert!(
            offset_bytes.is_multiple_of(8) && offset_bytes + 8 <= self.len_bytes,
            "word at {offset_bytes} outside the {}-byte mapping",
            self.len_bytes
        );
        // SAFETY: in bounds and aligned (checked above; the mapping is page aligned), and the
        // mapping lives as long as `&self`.
        unsafe { &*self.ptr.as_ptr().add(offset_bytes).cast::<AtomicU64>() }
    }

    /// Appends the `len_bytes` bytes at `offset_bytes` to `out`.
    ///
    /// # Panics
    /// When the range is not inside the mapping.
    pub fn append_to(&self, offset_bytes: usize, len_bytes: usize, out: &mut Vec<u8>) {
        assert!(
            offset_bytes
                .checked_add(len_bytes)
                .is_some_and(|end| end <= self.len_bytes),
            "range {offset_bytes}+{len_bytes} outside the {}-byte mapping",
            self.len_bytes
        );
        // SAFETY: the range lies inside the live mapping (checked above).
        out.extend_from_slice(unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().add(offset_bytes), len_bytes)
        });
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `map`; nothing borrows it any more.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len_bytes) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_prefix_has_the_ver1_size() {
        assert_eq!(
            std::mem::size_of::<PerfEventAttr>(),
            PERF_ATTR_SIZE_VER1 as usize
        );
    }

    #[test]
    fn page_size_is_a_power_of_two() {
        assert!(page_size_bytes().is_power_of_two());
    }
}

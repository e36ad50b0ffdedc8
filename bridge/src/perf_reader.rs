//! A perf buffer reader with a configurable wake-up: `perf_event_open(PERF_COUNT_SW_BPF_OUTPUT)`
//! with `wakeup_events = N`, its mmap'ed ring read with the `data_head` / `data_tail` protocol.
//!
//! aya 0.14 opens its perf buffers with `wakeup_events = 1` (a wake-up per sample), so sampled
//! wake-ups for perf — the counterpart of the ring buffer's `BPF_RB_NO_WAKEUP` — need this.
//! Ownership: a [`SampledPerfBuffer`] owns its perf event fd and its mapping (both released on
//! drop); the caller stores the fd in the BPF perf event array for its CPU.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
/// `PERF_ATTR_SIZE_VER1`: the attribute prefix up to `config2`.
const PERF_ATTR_SIZE_VER1: u32 = 72;
/// Offsets in `struct perf_event_mmap_page`.
const DATA_HEAD_OFFSET: usize = 1024;
const DATA_TAIL_OFFSET: usize = 1032;
const DATA_OFFSET_OFFSET: usize = 1040;
const DATA_SIZE_OFFSET: usize = 1048;

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

/// What one read pass found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadPass {
    /// Samples handed to the callback.
    pub samples: u64,
    /// Samples the kernel reported lost (`PERF_RECORD_LOST`).
    pub lost: u64,
}

/// One CPU's perf buffer with `wakeup_events = N`.
pub struct SampledPerfBuffer {
    fd: OwnedFd,
    mmap: NonNull<u8>,
    mmap_len: usize,
    data_offset: usize,
    data_size: usize,
    /// Reassembles samples that wrap the end of the data area.
    scratch: Vec<u8>,
}

// SAFETY: the mapping is only touched through &mut self (reads) and atomics on the metadata page.
unsafe impl Send for SampledPerfBuffer {}

impl SampledPerfBuffer {
    /// Opens a BPF-output perf event on `cpu` with `pages` data pages (a power of two) that
    /// wakes a poller every `wakeup_events` samples (at least 1).
    pub fn open(cpu: u32, pages: usize, wakeup_events: u32) -> io::Result<Self> {
        if pages == 0 || !pages.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("perf pages must be a power of two, not {pages}"),
            ));
        }
        let attr = PerfEventAttr {
            type_: PERF_TYPE_SOFTWARE,
            size: PERF_ATTR_SIZE_VER1,
            config: PERF_COUNT_SW_BPF_OUTPUT,
            sample_period: 1,
            sample_type: PERF_SAMPLE_RAW,
            wakeup_events: wakeup_events.max(1),
            ..Default::default()
        };
        // SAFETY: attr is a valid, initialised perf_event_attr prefix of the size it declares.
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
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        // SAFETY: sysconf has no preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let mmap_len = (pages + 1) * page_size;
        // SAFETY: mapping a perf event fd as its ABI describes; the result is checked.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mmap_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mmap = NonNull::new(addr.cast::<u8>()).expect("mmap does not return NULL on success");
        let mut buffer = SampledPerfBuffer {
            fd,
            mmap,
            mmap_len,
            data_offset: page_size,
            data_size: pages * page_size,
            scratch: Vec::with_capacity(256),
        };
        // Kernels since 4.1 publish where the data area is; older ones use the second page.
        let (offset, size) = (
            buffer.meta(DATA_OFFSET_OFFSET),
            buffer.meta(DATA_SIZE_OFFSET),
        );
        if offset != 0 && size != 0 {
            buffer.data_offset = offset as usize;
            buffer.data_size = size as usize;
        }
        Ok(buffer)
    }

    fn meta_atomic(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: offsets within the first (metadata) page, 8-byte aligned, of a live mapping.
        unsafe { &*self.mmap.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    fn meta(&self, offset: usize) -> u64 {
        self.meta_atomic(offset).load(Ordering::Acquire)
    }

    /// Copies `len` bytes at logical position `pos` of the data area (wrapping) into `out`.
    fn copy_out(&self, pos: u64, len: usize, out: &mut Vec<u8>) {
        out.clear();
        let start = (pos % self.data_size as u64) as usize;
        let first = len.min(self.data_size - start);
        // SAFETY: both ranges lie inside the data area of the live mapping.
        unsafe {
            let base = self.mmap.as_ptr().add(self.data_offset);
            out.extend_from_slice(std::slice::from_raw_parts(base.add(start), first));
            out.extend_from_slice(std::slice::from_raw_parts(base, len - first));
        }
    }

    /// Reads every complete record, calling `on_sample` with each sample's raw bytes, then
    /// releases the space to the kernel.
    pub fn read(&mut self, mut on_sample: impl FnMut(&[u8])) -> ReadPass {
        let head = self.meta(DATA_HEAD_OFFSET);
        let mut tail = self.meta_atomic(DATA_TAIL_OFFSET).load(Ordering::Relaxed);
        let mut pass = ReadPass::default();
        let mut scratch = std::mem::take(&mut self.scratch);
        while tail + 8 <= head {
            self.copy_out(tail, 8, &mut scratch);
            let kind = u32::from_ne_bytes(scratch[0..4].try_into().expect("4 bytes"));
            let size = u16::from_ne_bytes(scratch[6..8].try_into().expect("2 bytes")) as u64;
            if size < 8 || tail + size > head {
                break; // malformed or incomplete: stop here, never read past head
            }
            match kind {
                PERF_RECORD_SAMPLE if size >= 12 => {
                    self.copy_out(tail + 8, 4, &mut scratch);
                    let raw_len = u32::from_ne_bytes(scratch[0..4].try_into().expect("4 bytes"));
                    let raw_len = (raw_len as u64).min(size - 12) as usize;
                    self.copy_out(tail + 12, raw_len, &mut scratch);
                    on_sample(&scratch);
                    pass.samples += 1;
                }
                PERF_RECORD_LOST if size >= 24 => {
                    self.copy_out(tail + 16, 8, &mut scratch);
                    pass.lost += u64::from_ne_bytes(scratch[0..8].try_into().expect("8 bytes"));
                }
                _ => {}
            }
            tail += size;
        }
        self.scratch = scratch;
        self.meta_atomic(DATA_TAIL_OFFSET)
            .store(tail, Ordering::Release);
        pass
    }
}

impl AsFd for SampledPerfBuffer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for SampledPerfBuffer {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `open`.
        unsafe { libc::munmap(self.mmap.as_ptr().cast(), self.mmap_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_power_of_two_pages() {
        assert!(SampledPerfBuffer::open(0, 3, 1).is_err());
        assert!(SampledPerfBuffer::open(0, 0, 1).is_err());
    }

    #[test]
    fn attr_prefix_has_the_ver1_size() {
        assert_eq!(
            std::mem::size_of::<PerfEventAttr>(),
            PERF_ATTR_SIZE_VER1 as usize
        );
    }
}

//! A perf buffer reader with a configurable wake-up: `perf_event_open(PERF_COUNT_SW_BPF_OUTPUT)`
//! with `wakeup_events = N`, its mmap'ed ring read with the `data_head` / `data_tail` protocol.
//!
//! aya 0.14 opens its perf buffers with `wakeup_events = 1` (a wake-up per sample), so sampled
//! wake-ups for perf — the counterpart of the ring buffer's `BPF_RB_NO_WAKEUP` — need this.
//! Ownership: a [`SampledPerfBuffer`] owns its perf event fd and its mapping (both released on
//! drop); the caller stores the fd in the BPF perf event array for its CPU.

use std::{
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    sync::atomic::{AtomicU64, Ordering},
};

use crate::sys::perf::{open_bpf_output_event, page_size_bytes, SharedMapping};

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
/// Offsets in `struct perf_event_mmap_page`.
const DATA_HEAD_OFFSET: usize = 1024;
const DATA_TAIL_OFFSET: usize = 1032;
const DATA_OFFSET_OFFSET: usize = 1040;
const DATA_SIZE_OFFSET: usize = 1048;

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
    /// Declared before `fd`, so it is unmapped before the fd is closed.
    mmap: SharedMapping,
    fd: OwnedFd,
    data_offset: usize,
    data_size: usize,
    /// Reassembles samples that wrap the end of the data area.
    scratch: Vec<u8>,
}

impl SampledPerfBuffer {
    /// Opens a BPF-output perf event on `cpu` with `pages` data pages (a power of two) that
    /// wakes a poller every `wakeup_events` samples (0: when the buffer is half full).
    pub fn open(cpu: u32, pages: usize, wakeup_events: u32) -> io::Result<Self> {
        if pages == 0 || !pages.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("perf pages must be a power of two, not {pages}"),
            ));
        }
        let fd = open_bpf_output_event(cpu, wakeup_events)?;
        let page_size = page_size_bytes();
        let mmap = SharedMapping::map(&fd, (pages + 1) * page_size)?;
        let mut buffer = SampledPerfBuffer {
            mmap,
            fd,
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
        self.mmap.atomic_u64(offset)
    }

    fn meta(&self, offset: usize) -> u64 {
        self.meta_atomic(offset).load(Ordering::Acquire)
    }

    /// Copies `len` bytes at logical position `pos` of the data area (wrapping) into `out`.
    fn copy_out(&self, pos: u64, len: usize, out: &mut Vec<u8>) {
        out.clear();
        let start = (pos % self.data_size as u64) as usize;
        let first = len.min(self.data_size - start);
        // Both ranges lie inside the data area, which lies inside the mapping.
        self.mmap.append_to(self.data_offset + start, first, out);
        self.mmap.append_to(self.data_offset, len - first, out);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_power_of_two_pages() {
        assert!(SampledPerfBuffer::open(0, 3, 1).is_err());
        assert!(SampledPerfBuffer::open(0, 0, 1).is_err());
    }
}

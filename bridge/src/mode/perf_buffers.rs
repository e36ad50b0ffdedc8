//! The per-CPU buffers behind a `PERF_EVENT_ARRAY`, with either wake-up policy:
//! - one wake-up per sample: aya's buffers (`PerfEventArray::open`, `wakeup_events = 1`);
//! - one wake-up per N samples: the project's own [`SampledPerfBuffer`]s, stored into the array
//!   by hand (aya 0.14 cannot open buffers with another `wakeup_events`).
//!
//! Ownership: `PerfBuffers` owns the array map and the buffers; the array must outlive the
//! buffers (closing its last fd clears the entries), which the field order guarantees.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use anyhow::{Context, Result};
use aya::maps::{
    perf::{PerfEvent, PerfEventArray, PerfEventArrayBuffer},
    Map, MapData,
};

use crate::{map_batch, perf_reader::SampledPerfBuffer};

/// Every online CPU's buffer of one perf event array.
pub enum PerfBuffers {
    /// aya's buffers: the kernel wakes the consumer for every sample.
    PerSample {
        /// One buffer per online CPU (dropped before the array).
        buffers: Vec<PerfEventArrayBuffer<MapData>>,
        /// The array the buffers are registered in.
        array: PerfEventArray<MapData>,
    },
    /// Own buffers opened with `wakeup_events = N`.
    Sampled {
        /// One buffer per online CPU (dropped before the array).
        buffers: Vec<SampledPerfBuffer>,
        /// The array the buffers' fds are stored in.
        array: Map,
    },
}

impl PerfBuffers {
    /// Opens a buffer of `pages` pages (a power of two) on every online CPU and registers it in
    /// `map`. `wakeup_every` 1 = a wake-up per sample; N > 1 = one per N samples; 0 = only when
    /// the buffer is half full (the kernel's default watermark).
    pub fn open(map: Map, pages: usize, wakeup_every: u32) -> Result<Self> {
        let cpus =
            aya::util::online_cpus().map_err(|(path, e)| anyhow::anyhow!("reading {path}: {e}"))?;
        if wakeup_every == 1 {
            let mut array = PerfEventArray::try_from(map).context("opening the perf array")?;
            let mut buffers = Vec::with_capacity(cpus.len());
            for cpu in cpus {
                buffers.push(
                    array
                        .open(cpu, Some(pages))
                        .with_context(|| format!("opening the perf buffer of CPU {cpu}"))?,
                );
            }
            return Ok(PerfBuffers::PerSample { buffers, array });
        }
        let Map::PerfEventArray(data) = &map else {
            anyhow::bail!("the perf map is not a perf event array");
        };
        let mut buffers = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            let buffer = SampledPerfBuffer::open(cpu, pages, wakeup_every)
                .with_context(|| format!("opening the perf buffer of CPU {cpu}"))?;
            let fd = buffer.as_fd().as_raw_fd() as u32;
            map_batch::update_elem(data.fd().as_fd(), &cpu.to_ne_bytes(), &fd.to_ne_bytes())
                .with_context(|| format!("registering the perf buffer of CPU {cpu}"))?;
            buffers.push(buffer);
        }
        Ok(PerfBuffers::Sampled {
            buffers,
            array: map,
        })
    }

    /// The fd of every CPU's buffer, for waiting on them (`wait_readable`); borrowed, so
    /// take them anew for each wait.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> + '_ {
        let (per_sample, sampled): (&[PerfEventArrayBuffer<MapData>], &[SampledPerfBuffer]) =
            match self {
                PerfBuffers::PerSample { buffers, .. } => (buffers, &[]),
                PerfBuffers::Sampled { buffers, .. } => (&[], buffers),
            };
        let per_sample = per_sample.iter().map(|b| b.as_fd());
        per_sample.chain(sampled.iter().map(|b| b.as_fd()))
    }

    /// How many CPU buffers there are (one per online CPU).
    pub fn len(&self) -> usize {
        match self {
            PerfBuffers::PerSample { buffers, .. } => buffers.len(),
            PerfBuffers::Sampled { buffers, .. } => buffers.len(),
        }
    }

    /// True when there are no buffers (no online CPU; never in practice).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drains every CPU's buffer, calling `on_sample(head, tail)` per sample (`tail` is
    /// non-empty only when aya hands out a sample that wraps its buffer's end). Returns
    /// (samples, samples the kernel reported lost).
    pub fn drain(&mut self, mut on_sample: impl FnMut(&[u8], &[u8])) -> (u64, u64) {
        let (mut samples, mut lost) = (0u64, 0u64);
        match self {
            PerfBuffers::PerSample { buffers, .. } => {
                for buffer in buffers.iter_mut() {
                    buffer.for_each(|event| match event {
                        PerfEvent::Sample { head, tail } => {
                            samples += 1;
                            on_sample(head, tail);
                        }
                        PerfEvent::Lost { count } => lost += count,
                    });
                }
            }
            PerfBuffers::Sampled { buffers, .. } => {
                for buffer in buffers.iter_mut() {
                    let pass = buffer.read(|sample| on_sample(sample, &[]));
                    samples += pass.samples;
                    lost += pass.lost;
                }
            }
        }
        (samples, lost)
    }
}

//! `perf` mode: a `PERF_EVENT_ARRAY` with one buffer per online CPU.
//!
//! All CPU buffers are drained in one pass, then the pass's records are ordered by sequence
//! number before they are applied (a record from CPU 1 does not overtake an earlier one from
//! CPU 0). Across passes the store's "highest seq wins" rule keeps late arrivals from rolling a
//! row back. `PERF_RECORD_LOST` counts are added to the mode's `perf_lost` and trigger a resync.
//! Wake-ups: one per sample (`wakeup_every == 1`, aya's buffers), or one per N samples (0: only
//! when a CPU's buffer is half full) plus a drain every `drain_interval`.
//!
//! Emission is enabled once the buffers are open (output to a CPU without a buffer fails), and
//! then the state maps are listed, so nothing that happened before is missing from the table.

use std::time::Duration;

use anyhow::{Context, Result};
use crossbeam_channel::Sender;

use crate::{
    contract::{ModeKind, ModeMessage},
    mode::{
        incremental::{wait_readable, IncrementalConsumer},
        perf_buffers::PerfBuffers,
        KernelShared, Mode,
    },
    probe::PerfTransport,
    stats::monotonic_ns,
    stop::StopToken,
};

/// How the perf consumer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerfConfig {
    /// Pages per CPU of each perf buffer (a power of two).
    pub pages: usize,
    /// The kernel wakes the consumer every Nth sample (1: every sample; 0: only when a CPU's
    /// buffer is half full); unless N == 1 the consumer also drains every `drain_interval`.
    pub wakeup_every: u32,
    /// The drain timer when `wakeup_every != 1`.
    pub drain_interval: Duration,
}

/// The perf mode, with its perf event array.
pub struct PerfMode {
    transport: PerfTransport,
    kernel: KernelShared,
    config: PerfConfig,
}

impl PerfMode {
    /// A perf mode consuming `transport`.
    pub fn new(transport: PerfTransport, kernel: KernelShared, config: PerfConfig) -> Self {
        PerfMode {
            transport,
            kernel,
            config,
        }
    }
}

impl Mode for PerfMode {
    fn kind(&self) -> ModeKind {
        ModeKind::Perf
    }

    fn run(self: Box<Self>, sender: &Sender<ModeMessage>, stop: &StopToken) -> Result<()> {
        let PerfMode {
            transport,
            kernel,
            config,
        } = *self;
        let mut buffers = PerfBuffers::open(transport.map, config.pages, config.wakeup_every)?;
        let controls = &kernel.controls;
        controls
            .set_mode_enabled(ModeKind::Perf, true)
            .context("enabling perf emission")?;
        let page_size = 4096u64;
        let buffer_bytes = buffers.len() as u64 * (config.pages as u64 + 1) * page_size;
        let mut consumer =
            IncrementalConsumer::new(ModeKind::Perf, transport.map_kernel_bytes + buffer_bytes);
        let timeout = if config.wakeup_every != 1 {
            config.drain_interval
        } else {
            Duration::from_millis(100)
        };
        if consumer.initial_list(&kernel, sender).is_ok() {
            loop {
                let stopping = stop.is_stopped();
                if !stopping {
                    wait_readable(buffers.fds().chain([stop.fd()]), timeout)
                        .context("waiting on perf buffers")?;
                }
                let (_, lost) = buffers.drain(|head, tail| consumer.push_perf_sample(head, tail));
                if consumer
                    .end_drain(&kernel, sender, || controls.perf_output_failures(), lost)
                    .is_err()
                {
                    break;
                }
                if stopping {
                    let _ = consumer.flush(sender, None, monotonic_ns(), true);
                    break;
                }
            }
        }
        let _ = controls.set_mode_enabled(ModeKind::Perf, false);
        Ok(())
    }
}

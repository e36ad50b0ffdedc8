//! `ring` mode: one BPF ring buffer, consumed in batches on this mode's thread.
//!
//! Wake-ups: with `wakeup_every == 1` the kernel wakes the consumer for every record and the
//! thread sleeps in `poll(2)`; otherwise (sampled, N > 1, or none, 0) it also drains every
//! `drain_interval`, so records submitted without a wake-up wait at most that long. On stop it drains once more, so
//! what the final kernel flush sent is in its last batch.

use std::{os::fd::AsFd, time::Duration};

use anyhow::{Context, Result};
use aya::maps::RingBuf;
use crossbeam_channel::Sender;

use crate::{
    contract::{ModeKind, ModeMessage},
    mode::{
        incremental::{wait_readable, IncrementalConsumer, MAX_BATCH},
        KernelShared, Mode,
    },
    probe::RingTransport,
    stats::monotonic_ns,
    stop::StopToken,
};

/// How the ring consumer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// The kernel wakes the consumer every Nth record (1: every record; 0: only when the
    /// ring is half full); unless N == 1 the consumer also drains every `drain_interval`.
    pub wakeup_every: u32,
    /// The drain timer when `wakeup_every != 1`.
    pub drain_interval: Duration,
}

/// The ring mode, with its ring buffer.
pub struct RingMode {
    transport: RingTransport,
    kernel: KernelShared,
    config: RingConfig,
}

impl RingMode {
    /// A ring mode consuming `transport`.
    pub fn new(transport: RingTransport, kernel: KernelShared, config: RingConfig) -> Self {
        RingMode {
            transport,
            kernel,
            config,
        }
    }
}

impl Mode for RingMode {
    fn kind(&self) -> ModeKind {
        ModeKind::Ring
    }

    fn run(self: Box<Self>, sender: &Sender<ModeMessage>, stop: &StopToken) -> Result<()> {
        let RingMode {
            transport,
            kernel,
            config,
        } = *self;
        let mut ring = RingBuf::try_from(transport.map).context("opening the ring buffer")?;
        let mut consumer = IncrementalConsumer::new(ModeKind::Ring, transport.kernel_bytes);
        if consumer.initial_list(&kernel, sender).is_err() {
            return Ok(());
        }
        let timeout = if config.wakeup_every != 1 {
            config.drain_interval
        } else {
            Duration::from_millis(100)
        };
        let controls = &kernel.controls;
        loop {
            let stopping = stop.is_stopped();
            if !stopping {
                wait_readable([ring.as_fd(), stop.fd()], timeout)
                    .context("waiting on the ring buffer")?;
            }
            loop {
                let mut drained_all = true;
                while let Some(item) = ring.next() {
                    consumer.push_bytes(&item, false);
                    if consumer.pending_len() >= MAX_BATCH {
                        drained_all = false;
                        break;
                    }
                }
                if consumer
                    .end_drain(&kernel, sender, || controls.ring_reserve_failures(), 0)
                    .is_err()
                {
                    return Ok(());
                }
                if drained_all {
                    break;
                }
            }
            if stopping {
                let _ = consumer.flush(sender, None, monotonic_ns(), true);
                return Ok(());
            }
        }
    }
}

//! `ring` mode: one BPF ring buffer, consumed in batches on this mode's thread.
//!
//! Wake-ups: with `ring_wakeup_every == 1` the kernel wakes the consumer for every record and the
//! thread sleeps in `poll(2)`; with sampled wake-ups (N > 1) it also drains on a short timer so
//! records submitted without a wake-up are not left waiting.

use std::{
    os::fd::AsRawFd,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context, Result};
use aya::maps::RingBuf;
use crossbeam_channel::Sender;

use crate::{
    loader::Probes,
    mode::{
        incremental::{wait_readable, IncrementalConsumer, MAX_BATCH},
        ModeKind, ModeMessage,
    },
    session::SessionConfig,
};

/// Runs the ring consumer until `stop` is set or the store hangs up.
pub fn run(
    probes: &Probes,
    config: &SessionConfig,
    sender: &Sender<ModeMessage>,
    stop: &AtomicBool,
) -> Result<()> {
    let map = probes
        .take_ring()
        .context("the ring buffer is already consumed by another thread")?;
    let mut ring = RingBuf::try_from(map).context("opening the ring buffer")?;
    let mut consumer = IncrementalConsumer::new(ModeKind::Ring, probes.ring_kernel_bytes());
    let timeout = if config.ring_wakeup_every > 1 {
        Duration::from_millis(10)
    } else {
        Duration::from_millis(100)
    };
    let mut pollfd = [libc::pollfd {
        fd: ring.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    while !stop.load(Ordering::Relaxed) {
        wait_readable(&mut pollfd, timeout).context("waiting on the ring buffer")?;
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
                .end_drain(probes, sender, || probes.ring_reserve_failures(), 0)
                .is_err()
            {
                return Ok(());
            }
            if drained_all {
                break;
            }
        }
    }
    Ok(())
}

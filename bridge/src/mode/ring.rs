//! `ring` mode: one BPF ring buffer, consumed in batches on this mode's thread.
//!
//! Wake-ups: with `ring_wakeup_every == 1` the kernel wakes the consumer for every record and the
//! thread sleeps in `poll(2)`; with sampled wake-ups (N > 1) it also drains on a short timer so
//! records submitted without a wake-up are not left waiting. On stop it drains once more, so
//! what the final kernel flush sent is in its last batch.

use std::{os::fd::AsRawFd, time::Duration};

use anyhow::{Context, Result};
use aya::maps::RingBuf;
use crossbeam_channel::Sender;

use crate::{
    contract::{ModeKind, ModeMessage},
    loader::Probes,
    mode::incremental::{stop_pollfd, wait_readable, IncrementalConsumer, MAX_BATCH},
    session::SessionConfig,
    stats::monotonic_ns,
    stop::StopToken,
};

/// Runs the ring consumer until `stop` is signalled (then drains once more) or the store hangs
/// up.
pub fn run(
    probes: &Probes,
    config: &SessionConfig,
    sender: &Sender<ModeMessage>,
    stop: &StopToken,
) -> Result<()> {
    let map = probes
        .take_ring()
        .context("the ring buffer is already consumed by another thread")?;
    let mut ring = RingBuf::try_from(map).context("opening the ring buffer")?;
    let mut consumer = IncrementalConsumer::new(ModeKind::Ring, probes.ring_kernel_bytes());
    if consumer.initial_list(probes, sender).is_err() {
        return Ok(());
    }
    let timeout = if config.ring_wakeup_every > 1 {
        Duration::from_millis(10)
    } else {
        Duration::from_millis(100)
    };
    let mut pollfds = [
        libc::pollfd {
            fd: ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        stop_pollfd(stop),
    ];
    loop {
        let stopping = stop.is_stopped();
        if !stopping {
            wait_readable(&mut pollfds, timeout).context("waiting on the ring buffer")?;
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
                .end_drain(probes, sender, || probes.ring_reserve_failures(), 0)
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

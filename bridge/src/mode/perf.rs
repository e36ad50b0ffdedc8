//! `perf` mode: a `PERF_EVENT_ARRAY` with one buffer per online CPU.
//!
//! All CPU buffers are drained in one pass, then the pass's records are ordered by sequence
//! number before they are applied (a record from CPU 1 does not overtake an earlier one from
//! CPU 0). Across passes the store's "highest seq wins" rule keeps late arrivals from rolling a
//! row back. `PERF_RECORD_LOST` counts are added to the mode's `perf_lost` and trigger a resync.

use std::{
    os::fd::AsRawFd,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context, Result};
use aya::maps::perf::{PerfEvent, PerfEventArray};
use crossbeam_channel::Sender;

use crate::{
    loader::Probes,
    mode::{
        incremental::{wait_readable, IncrementalConsumer},
        ModeKind, ModeMessage,
    },
    session::SessionConfig,
};

/// Runs the perf consumer until `stop` is set or the store hangs up.
pub fn run(
    probes: &Probes,
    config: &SessionConfig,
    sender: &Sender<ModeMessage>,
    stop: &AtomicBool,
) -> Result<()> {
    let map = probes
        .take_perf()
        .context("the perf event array is already consumed by another thread")?;
    let mut perf = PerfEventArray::try_from(map).context("opening the perf event array")?;
    let cpus =
        aya::util::online_cpus().map_err(|(path, e)| anyhow::anyhow!("reading {path}: {e}"))?;
    let mut buffers = Vec::with_capacity(cpus.len());
    for cpu in &cpus {
        buffers.push(
            perf.open(*cpu, Some(config.perf_pages))
                .with_context(|| format!("opening the perf buffer of CPU {cpu}"))?,
        );
    }
    probes
        .set_mode_enabled(ModeKind::Perf, true)
        .context("enabling perf emission")?;
    let page_size = 4096u64;
    let buffer_bytes = cpus.len() as u64 * (config.perf_pages as u64 + 1) * page_size;
    let mut consumer = IncrementalConsumer::new(
        ModeKind::Perf,
        probes.perf_map_kernel_bytes() + buffer_bytes,
    );
    let mut pollfds: Vec<libc::pollfd> = buffers
        .iter()
        .map(|b| libc::pollfd {
            fd: b.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        wait_readable(&mut pollfds, Duration::from_millis(100))
            .context("waiting on perf buffers")?;
        let mut lost = 0u64;
        for buffer in buffers.iter_mut() {
            buffer.for_each(|event| match event {
                PerfEvent::Sample { head, tail } => consumer.push_perf_sample(head, tail),
                PerfEvent::Lost { count } => lost += count,
            });
        }
        if consumer
            .end_drain(probes, sender, || probes.perf_output_failures(), lost)
            .is_err()
        {
            return Ok(());
        }
    }
    let _ = probes.set_mode_enabled(ModeKind::Perf, false);
    // Keep the array alive until the buffers are gone: closing its last fd clears the entries.
    drop(buffers);
    drop(perf);
    Ok(())
}

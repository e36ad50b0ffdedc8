//! `perf` mode: a `PERF_EVENT_ARRAY` with one buffer per online CPU.
//!
//! All CPU buffers are drained in one pass, then the pass's records are ordered by sequence
//! number before they are applied (a record from CPU 1 does not overtake an earlier one from
//! CPU 0). Across passes the store's "highest seq wins" rule keeps late arrivals from rolling a
//! row back. `PERF_RECORD_LOST` counts are added to the mode's `perf_lost` and trigger a resync.
//! Wake-ups: one per sample (`perf_wakeup_every == 1`, aya's buffers), or one per N samples
//! plus a 10 ms drain timer.
//!
//! Emission is enabled once the buffers are open (output to a CPU without a buffer fails), and
//! then the state maps are listed, so nothing that happened before is missing from the table.

use std::time::Duration;

use anyhow::{Context, Result};
use crossbeam_channel::Sender;

use crate::{
    contract::{ModeKind, ModeMessage},
    loader::Probes,
    mode::{
        incremental::{stop_pollfd, wait_readable, IncrementalConsumer},
        perf_buffers::PerfBuffers,
    },
    session::SessionConfig,
    stats::monotonic_ns,
    stop::StopToken,
};

/// Runs the perf consumer until `stop` is signalled (then drains once more) or the store hangs
/// up.
pub fn run(
    probes: &Probes,
    config: &SessionConfig,
    sender: &Sender<ModeMessage>,
    stop: &StopToken,
) -> Result<()> {
    let map = probes
        .take_perf()
        .context("the perf event array is already consumed by another thread")?;
    let mut buffers = PerfBuffers::open(map, config.perf_pages, config.perf_wakeup_every)?;
    probes
        .set_mode_enabled(ModeKind::Perf, true)
        .context("enabling perf emission")?;
    let mut pollfds = buffers.pollfds();
    let page_size = 4096u64;
    let buffer_bytes = pollfds.len() as u64 * (config.perf_pages as u64 + 1) * page_size;
    pollfds.push(stop_pollfd(stop));
    let mut consumer = IncrementalConsumer::new(
        ModeKind::Perf,
        probes.perf_map_kernel_bytes() + buffer_bytes,
    );
    let timeout = if config.perf_wakeup_every > 1 {
        Duration::from_millis(10)
    } else {
        Duration::from_millis(100)
    };
    if consumer.initial_list(probes, sender).is_ok() {
        loop {
            let stopping = stop.is_stopped();
            if !stopping {
                wait_readable(&mut pollfds, timeout).context("waiting on perf buffers")?;
            }
            let (_, lost) = buffers.drain(|head, tail| consumer.push_perf_sample(head, tail));
            if consumer
                .end_drain(probes, sender, || probes.perf_output_failures(), lost)
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
    let _ = probes.set_mode_enabled(ModeKind::Perf, false);
    Ok(())
}

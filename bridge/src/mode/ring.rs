//! `ring` mode (being written).
use crate::{loader::Probes, mode::ModeMessage, session::SessionConfig};
use crossbeam_channel::Sender;
use std::sync::atomic::AtomicBool;

/// Runs the mode until `stop` is set.
pub fn run(
    _probes: &Probes,
    _config: &SessionConfig,
    _sender: &Sender<ModeMessage>,
    _stop: &AtomicBool,
) -> anyhow::Result<()> {
    Ok(())
}

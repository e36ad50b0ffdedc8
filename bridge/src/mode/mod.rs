//! The three bridge modes. Each runs on its own thread, owns its transport, and sends
//! [`ModeBatch`](crate::contract::ModeBatch)es of row changes to the store owner over a
//! crossbeam channel. A mode never touches the terminal; the store owner never touches BPF
//! file descriptors.

pub mod incremental;
pub mod perf;
pub mod perf_buffers;
pub mod poll;
pub mod ring;

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::{
    contract::{ModeKind, ModeMessage},
    probe::{Controls, StateMaps},
    stop::StopToken,
};

/// What every mode thread shares besides its own transport: the probes' controls (sequence
/// and failure counters, the config map) and the state maps (for resyncs and poll).
#[derive(Clone)]
pub struct KernelShared {
    /// Config, sequence and failure counters.
    pub controls: Arc<Controls>,
    /// The state maps in use.
    pub state_maps: Arc<StateMaps>,
}

/// A bridge mode, ready to run on its own thread with everything it consumes moved in.
pub trait Mode: Send {
    /// Which mode this is.
    fn kind(&self) -> ModeKind;
    /// Runs until `stop` is signalled (then drains once more, so the last batch shows the
    /// session's final kernel flush) or the store hangs up. Batches go to `sender`.
    fn run(self: Box<Self>, sender: &Sender<ModeMessage>, stop: &StopToken) -> anyhow::Result<()>;
}
